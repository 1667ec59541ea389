import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import {
  BOT_ID,
  BOT_USER,
  type ConversationStore,
  SLACKBOT,
  type StandInChannel,
  type StandInUser,
  type StoredMessage,
  type StoredView,
  toSlackMessage,
} from './conversations.js';
import { type SignedPostResult, sendBlockAction, sendEvent, sendSlashCommand } from './sign.js';
import { APP_ID, isRecord, TEAM_ID, TEAM_NAME } from './web-api.js';

/** Where the bot listens (`${url}/slack/events`) and the secret Slack signs with. */
export interface BotConnection {
  /** the bot's base URL, e.g. `http://127.0.0.1:3000`; loopback only */
  url: string;
  signingSecret: string;
}

/** The bot's HTTP answer to a request made as a user. */
export interface BotAnswer {
  /** 0 when the bot could not be reached (refused, timed out) */
  status: number;
  body: string;
  /** how long the bot took to answer; milliseconds (Slack gives up after 3 000) */
  durationMs: number;
  /** why the bot could not be reached, when `status` is 0 */
  error?: string;
}

/** Who acts and where; each defaults to the first configured user / channel. */
export interface ActOptions {
  /** user id or name */
  user?: string;
  /** channel id, name or `#name` */
  channel?: string;
  /** act inside this thread (any message of it) */
  threadTs?: string;
}

export interface ClickOptions {
  /** the message holding the element */
  ts: string;
  /** channel id or name; needed only when the ts alone is ambiguous */
  channel?: string;
  actionId: string;
  /** which of several same-named buttons (their `value`), or the option picked in a select */
  value?: string;
  /** user id or name */
  user?: string;
}

export interface SubmitViewOptions {
  /** the modal's callback_id; without `viewId`, the newest open one with it that the user can see is submitted */
  callbackId: string;
  /** exactly this modal (`V…`, as views.open answered); it must be open, the user's, and have `callbackId` */
  viewId?: string;
  /** user id or name */
  user?: string;
  /** what the person typed, by the input element's action_id */
  values: Record<string, string>;
}

/** How the bot took a submission, as Slack would show it. */
export type ViewSubmission = BotAnswer & {
  viewId: string;
  /** false when the modal stays open: the bot answered field errors, an update, or failed */
  closed: boolean;
  /** `response_action: errors`: the message to show under each input block, by block_id */
  errors?: Record<string, string>;
};

export interface CloseViewOptions {
  viewId: string;
  /** user id or name */
  user?: string;
}

/** One POST to a response_url the stand-in handed out. */
export interface ResponseUrlPost {
  id: string;
  body: unknown;
  /** what the stand-in answered */
  status: number;
  /** epoch milliseconds */
  at: number;
}

/** A request the stand-in refuses; `status` is what the page's JSON routes answer with. */
export class StandInError extends Error {
  constructor(
    readonly code:
      | 'not_connected'
      | 'bad_bot_url'
      | 'user_not_found'
      | 'channel_not_found'
      | 'thread_not_found'
      | 'message_not_found'
      | 'action_not_found'
      | 'view_not_found',
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'StandInError';
  }
}

/** The body Slack accepts at a response_url. */
export const ResponseUrlBody = z
  .object({
    text: z.string().optional(),
    blocks: z.array(z.record(z.string(), z.unknown())).optional(),
    attachments: z.array(z.record(z.string(), z.unknown())).optional(),
    response_type: z.enum(['ephemeral', 'in_channel']).optional(),
    replace_original: z.union([z.boolean(), z.enum(['true', 'false'])]).optional(),
    delete_original: z.union([z.boolean(), z.enum(['true', 'false'])]).optional(),
    thread_ts: z.string().optional(),
  })
  .loose();
export type ResponseUrlBody = z.infer<typeof ResponseUrlBody>;

/** Slack honours a response_url this often… */
const RESPONSE_URL_USES = 5;
/** …for this long; milliseconds */
const RESPONSE_URL_TTL_MS = 30 * 60_000;
/** Slack drops a request the app has not answered by then; milliseconds */
const SLACK_ACK_DEADLINE_MS = 3_000;
/** the stand-in waits longer than Slack so a slow bot shows as slow rather than as failed; milliseconds */
const BOT_TIMEOUT_MS = 10_000;
/** of a failed answer's body, in notices; characters */
const MAX_BODY_EXCERPT = 300;

interface ResponseTarget {
  kind: 'command' | 'action';
  channel: string;
  user: string;
  threadTs?: string;
  /** the message a block action came from (replace_original / delete_original act on it) */
  sourceTs?: string;
  /** the command's latest ephemeral answer, which replace_original replaces */
  lastTs?: string;
  uses: number;
  /** epoch milliseconds */
  expiresAt: number;
}

/**
 * Acting as a person: slash commands, mentions, button clicks and plain messages, sent to the bot signed as Slack
 * signs them, with what the bot answers shown in the store. The page and tests use the same methods.
 */
export class UserActions {
  readonly responses: ResponseUrlPost[] = [];
  readonly #store: ConversationStore;
  readonly #baseUrl: () => string;
  readonly #targets = new Map<string, ResponseTarget>();
  #bot: BotConnection | null = null;

  /** `baseUrl` gives the stand-in's own `http://127.0.0.1:<port>/` (for response URLs). */
  constructor(store: ConversationStore, baseUrl: () => string) {
    this.#store = store;
    this.#baseUrl = baseUrl;
  }

  get bot(): BotConnection | null {
    return this.#bot;
  }

  connect(bot: BotConnection): void {
    let url: URL;
    try {
      url = new URL(bot.url);
    } catch {
      throw new StandInError('bad_bot_url', `bot url ${JSON.stringify(bot.url)} is not a URL`, 400);
    }
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) || !/^https?:$/.test(url.protocol)) {
      throw new StandInError('bad_bot_url', `bot url ${bot.url} is not on this machine (loopback only)`, 400);
    }
    if (bot.signingSecret === '') throw new StandInError('bad_bot_url', 'signingSecret is empty', 400);
    this.#bot = { url: bot.url.replace(/\/+$/, ''), signingSecret: bot.signingSecret };
    this.#store.emit({ type: 'bot', connected: true });
  }

  /**
   * A slash command as typed (`/incident list`; without a leading `/…` word the text goes to `/incident`). The bot's
   * synchronous answer is shown like Slack shows it: ephemeral for the user, or in the channel after the command.
   */
  async command(text: string, opts: ActOptions = {}): Promise<BotAnswer & { responseUrl: string }> {
    const bot = this.#requireBot();
    const { user, channel, threadTs } = this.#where(opts);
    const typed = text.trim();
    const match = /^(\/\S+)\s*([\s\S]*)$/.exec(typed);
    const command = match?.[1] ?? '/incident';
    const args = match ? (match[2] ?? '') : typed;
    const { id, url: responseUrl } = this.#newResponseUrl({
      kind: 'command',
      channel: channel.id,
      user: user.id,
      ...(threadTs ? { threadTs } : {}),
    });
    const answer = await this.#deliver(() =>
      sendSlashCommand(
        bot.url,
        bot.signingSecret,
        {
          command,
          text: args,
          user_id: user.id,
          user_name: user.name,
          channel_id: channel.id,
          channel_name: channel.name,
          response_url: responseUrl,
          trigger_id: this.#newTrigger(user.id),
        },
        { timeoutMs: BOT_TIMEOUT_MS },
      ),
    );
    this.#report(answer, `${command} ${args}`.trim(), user.id);
    const where = { channel: channel.id, user: user.id, ...(threadTs ? { threadTs } : {}) };
    if (answer.status < 200 || answer.status > 299) {
      const error =
        answer.error && /timeout|abort/i.test(answer.error) ? 'operation_timeout' : 'dispatch_failed';
      this.#store.add({
        ...where,
        ts: this.#store.nextTs(),
        user: SLACKBOT.id,
        text: `${command} failed with the error "${error}"`,
        ephemeralTo: user.id,
        source: 'slackbot',
      });
    } else {
      const shown = this.#showCommandAck(answer.body, `${command} ${args}`.trim(), where);
      const target = this.#targets.get(id);
      if (target && shown) target.lastTs = shown;
    }
    return { ...answer, responseUrl };
  }

  /**
   * A message mentioning the bot: stored as the user's message, then sent as an `app_mention` event. `@ai-sre` (or
   * `@name` of a known user) in `text` becomes a mention; without one, the bot is mentioned first.
   */
  async mention(text: string, opts: ActOptions = {}): Promise<BotAnswer & { ts: string; eventId: string }> {
    const bot = this.#requireBot();
    const { user, channel, threadTs } = this.#where(opts);
    let encoded = encodeTyped(text, this.#store);
    if (!encoded.includes(`<@${BOT_USER.id}>`)) encoded = `<@${BOT_USER.id}> ${encoded}`;
    const message = this.#addUserMessage(encoded, { user, channel, threadTs });
    const event: Record<string, unknown> = {
      client_msg_id: randomUUID(),
      type: 'app_mention',
      text: encoded,
      user: user.id,
      ts: message.ts,
      blocks: message.blocks,
      team: TEAM_ID,
      channel: channel.id,
      event_ts: message.ts,
    };
    if (message.threadTs) {
      event.thread_ts = message.threadTs;
      event.parent_user_id = this.#store.message(message.threadTs, channel.id)?.user;
    }
    let eventId = '';
    const answer = await this.#deliver(async () => {
      const result = await sendEvent(bot.url, bot.signingSecret, event, { timeoutMs: BOT_TIMEOUT_MS });
      eventId = result.eventId;
      return result;
    });
    this.#report(answer, 'the app_mention event', user.id);
    return { ...answer, ts: message.ts, eventId };
  }

  /**
   * Submits a modal the bot opened (`viewId`, else the newest open one with `callbackId`), as Slack's
   * `view_submission` payload: every input block's element gets the value given for its action_id (null when none
   * is given). As in Slack, the modal stays open when the bot answers `response_action: errors` (or `update`, which
   * replaces it) or fails to answer; otherwise it closes.
   */
  async submitView(opts: SubmitViewOptions): Promise<ViewSubmission> {
    const bot = this.#requireBot();
    const user = this.#user(opts.user);
    const stored = this.#openView(opts, user.id);
    const values: Record<string, Record<string, { type: string; value: string | null }>> = {};
    const blocks = Array.isArray(stored.view.blocks) ? (stored.view.blocks as Record<string, unknown>[]) : [];
    for (const [i, block] of blocks.entries()) {
      if (block.type !== 'input') continue;
      const element = (block.element ?? {}) as { type?: string; action_id?: string };
      const actionId = element.action_id ?? `input-${i}`;
      const blockId = typeof block.block_id === 'string' ? block.block_id : `block-${i}`;
      values[blockId] = {
        [actionId]: { type: element.type ?? 'plain_text_input', value: opts.values[actionId] ?? null },
      };
    }
    const payload: Record<string, unknown> = {
      type: 'view_submission',
      user: { id: user.id, username: user.name, name: user.name, team_id: TEAM_ID },
      api_app_id: APP_ID,
      team: { id: TEAM_ID, domain: TEAM_NAME },
      trigger_id: this.#newTrigger(user.id),
      view: {
        ...stored.view,
        id: stored.id,
        team_id: TEAM_ID,
        type: 'modal',
        state: { values },
        hash: `${Date.now()}.${stored.id}`,
        private_metadata: stored.view.private_metadata ?? '',
        callback_id: opts.callbackId,
      },
      response_urls: [],
      is_enterprise_install: false,
      enterprise: null,
    };
    const answer = await this.#deliver(() =>
      sendBlockAction(bot.url, bot.signingSecret, payload, { timeoutMs: BOT_TIMEOUT_MS }),
    );
    this.#report(answer, `the submission of modal ${opts.callbackId}`, user.id);
    if (answer.status < 200 || answer.status > 299) return { ...answer, viewId: stored.id, closed: false };
    const action = responseActionOf(answer.body);
    if (action?.kind === 'errors')
      return { ...answer, viewId: stored.id, closed: false, errors: action.errors };
    if (action?.kind === 'update') {
      this.#store.updateView(stored.id, action.view);
      return { ...answer, viewId: stored.id, closed: false };
    }
    // `push` and `clear` are not modelled: the modal closes, as it does for a plain ack
    this.#store.closeView(stored.id, user.id);
    return { ...answer, viewId: stored.id, closed: true };
  }

  /**
   * The person closes a modal without submitting (Cancel, ×, Esc). When the bot asked to hear of it
   * (`notify_on_close`), it gets Slack's `view_closed` payload; the answer is null otherwise.
   */
  async closeView(opts: CloseViewOptions): Promise<{ viewId: string; notified: BotAnswer | null }> {
    const user = this.#user(opts.user);
    const stored = this.#store.view(opts.viewId);
    if (!stored || !this.#store.openViews(user.id).includes(stored))
      throw new StandInError('view_not_found', `no open modal ${opts.viewId} that ${user.name} can see`, 404);
    this.#store.closeView(stored.id);
    if (stored.view.notify_on_close !== true || !this.#bot) return { viewId: stored.id, notified: null };
    const bot = this.#bot;
    const payload: Record<string, unknown> = {
      type: 'view_closed',
      user: { id: user.id, username: user.name, name: user.name, team_id: TEAM_ID },
      api_app_id: APP_ID,
      team: { id: TEAM_ID, domain: TEAM_NAME },
      view: { ...stored.view, id: stored.id, team_id: TEAM_ID, type: 'modal', state: { values: {} } },
      is_cleared: false,
      is_enterprise_install: false,
      enterprise: null,
    };
    const answer = await this.#deliver(() =>
      sendBlockAction(bot.url, bot.signingSecret, payload, { timeoutMs: BOT_TIMEOUT_MS }),
    );
    this.#report(answer, `the closing of modal ${String(stored.view.callback_id ?? stored.id)}`, user.id);
    return { viewId: stored.id, notified: answer };
  }

  /** The open modal `opts` names that `user` can see; throws view_not_found otherwise. */
  #openView(opts: Pick<SubmitViewOptions, 'callbackId' | 'viewId'>, user: string): StoredView {
    // a modal without a callback_id is named by the empty one
    const named = (v: StoredView) => (v.view.callback_id ?? '') === opts.callbackId;
    const open = this.#store.openViews(user);
    const stored =
      opts.viewId === undefined
        ? open.reverse().find(named)
        : open.find((v) => v.id === opts.viewId && named(v));
    if (stored) return stored;
    const which = opts.viewId === undefined ? '' : ` ${opts.viewId}`;
    throw new StandInError(
      'view_not_found',
      `no open modal${which} with callback_id ${opts.callbackId} for ${this.#store.user(user)?.name ?? user}`,
      404,
    );
  }

  /** A button click (or a select's choice) on a stored message, sent as Slack's `block_actions` payload. */
  async click(opts: ClickOptions): Promise<BotAnswer & { responseUrl: string }> {
    const bot = this.#requireBot();
    const user = this.#user(opts.user);
    const channelId = opts.channel === undefined ? undefined : this.#channel(opts.channel).id;
    const message = this.#store.message(opts.ts, channelId);
    if (!message || (message.ephemeralTo !== undefined && message.ephemeralTo !== user.id)) {
      throw new StandInError('message_not_found', `no message ${opts.ts} that ${user.name} can see`, 404);
    }
    const found = findElement(message, opts.actionId, opts.value);
    if (!found) {
      throw new StandInError(
        'action_not_found',
        `message ${opts.ts} has no element with action_id ${opts.actionId}${opts.value === undefined ? '' : ` and value ${opts.value}`}`,
        404,
      );
    }
    const channel = this.#channel(message.channel);
    const ephemeral = message.ephemeralTo !== undefined;
    const { url: responseUrl } = this.#newResponseUrl({
      kind: 'action',
      channel: channel.id,
      user: user.id,
      sourceTs: message.ts,
      ...(message.threadTs ? { threadTs: message.threadTs } : {}),
    });
    const payload: Record<string, unknown> = {
      type: 'block_actions',
      user: { id: user.id, username: user.name, name: user.name, team_id: TEAM_ID },
      api_app_id: APP_ID,
      container: {
        type: 'message',
        message_ts: message.ts,
        channel_id: channel.id,
        is_ephemeral: ephemeral,
        ...(message.threadTs ? { thread_ts: message.threadTs } : {}),
      },
      trigger_id: this.#newTrigger(user.id),
      team: { id: TEAM_ID, domain: TEAM_NAME },
      enterprise: null,
      is_enterprise_install: false,
      channel: { id: channel.id, name: channel.name },
      // Slack sends no message for an ephemeral one: it keeps no copy
      ...(ephemeral ? {} : { message: toSlackMessage(message, this.#store) }),
      state: { values: {} },
      response_url: responseUrl,
      actions: [{ ...found.action, action_ts: actionTs() }],
    };
    const answer = await this.#deliver(() =>
      sendBlockAction(bot.url, bot.signingSecret, payload, { timeoutMs: BOT_TIMEOUT_MS }),
    );
    this.#report(answer, `the click on ${found.label}`, user.id);
    return { ...answer, responseUrl };
  }

  /** A plain message the person typed: stored and shown, not sent to the bot (it listens to mentions only). */
  say(text: string, opts: ActOptions = {}): StoredMessage {
    return this.#addUserMessage(encodeTyped(text, this.#store), this.#where(opts));
  }

  /** Stores what a person typed (already encoded: mentions as `<@U…>`) as their message. */
  #addUserMessage(
    encoded: string,
    where: { user: { id: string }; channel: { id: string }; threadTs?: string | undefined },
  ): StoredMessage {
    return this.#store.add({
      channel: where.channel.id,
      ts: this.#store.nextTs(),
      ...(where.threadTs ? { threadTs: where.threadTs } : {}),
      user: where.user.id,
      text: encoded,
      blocks: [richTextOf(encoded)],
      source: 'user',
    });
  }

  /** A POST to `/response/<id>`: shows, replaces or deletes a message as Slack does; returns the HTTP answer. */
  respond(id: string, raw: unknown): { status: number; body: Record<string, unknown> } {
    const reply = this.#respond(id, raw);
    this.responses.push({ id, body: raw, status: reply.status, at: Date.now() });
    return reply;
  }

  #respond(id: string, raw: unknown): { status: number; body: Record<string, unknown> } {
    const target = this.#targets.get(id);
    if (!target || target.expiresAt < Date.now())
      return { status: 404, body: { ok: false, error: 'expired_url' } };
    if (target.uses >= RESPONSE_URL_USES) return { status: 404, body: { ok: false, error: 'used_url' } };
    const parsed = ResponseUrlBody.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return {
        status: 400,
        body: {
          ok: false,
          error: 'invalid_payload',
          field: issue?.path.join('.') || '(body)',
          detail: issue?.message ?? '',
        },
      };
    }
    target.uses += 1;
    const body = parsed.data;
    const flag = (v: boolean | 'true' | 'false' | undefined) => v === true || v === 'true';
    const original = target.sourceTs ?? target.lastTs;
    if (flag(body.delete_original)) {
      if (original !== undefined) this.#store.delete(target.channel, original);
      return { status: 200, body: { ok: true } };
    }
    const content = {
      text: body.text ?? '',
      ...(body.blocks ? { blocks: body.blocks } : {}),
      ...(body.attachments ? { attachments: body.attachments } : {}),
    };
    if (
      flag(body.replace_original) &&
      original !== undefined &&
      this.#store.message(original, target.channel)
    ) {
      this.#store.update(target.channel, original, content);
      return { status: 200, body: { ok: true } };
    }
    const threadTs = body.thread_ts ?? target.threadTs;
    const message = this.#store.add({
      channel: target.channel,
      ts: this.#store.nextTs(),
      ...(threadTs ? { threadTs } : {}),
      user: BOT_USER.id,
      botId: BOT_ID,
      ...content,
      ...(body.response_type === 'in_channel' ? {} : { ephemeralTo: target.user }),
      source: 'response-url',
    });
    if (target.kind === 'command' && message.ephemeralTo !== undefined) target.lastTs = message.ts;
    return { status: 200, body: { ok: true } };
  }

  /** Shows a slash command's 2xx answer; returns the ts of the ephemeral message shown, if one was. */
  #showCommandAck(
    body: string,
    typed: string,
    where: { channel: string; user: string; threadTs?: string },
  ): string | undefined {
    if (body.trim() === '') return undefined;
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      // Slack shows a plain-text answer as the ephemeral text
      json = { text: body };
    }
    if (!isRecord(json)) return undefined;
    const text = typeof json.text === 'string' ? json.text : '';
    const blocks = Array.isArray(json.blocks) ? json.blocks.filter(isRecord) : undefined;
    const attachments = Array.isArray(json.attachments) ? json.attachments.filter(isRecord) : undefined;
    if (text === '' && !blocks && !attachments) return undefined;
    const content = { text, ...(blocks ? { blocks } : {}), ...(attachments ? { attachments } : {}) };
    if (json.response_type === 'in_channel') {
      // the command itself is shown to everyone first, as Slack does for an in-channel answer
      this.#store.add({ ...where, ts: this.#store.nextTs(), text: typed, source: 'user' });
      this.#store.add({
        ...where,
        ts: this.#store.nextTs(),
        user: BOT_USER.id,
        botId: BOT_ID,
        ...content,
        source: 'command-ack',
      });
      return undefined;
    }
    return this.#store.add({
      ...where,
      ts: this.#store.nextTs(),
      user: BOT_USER.id,
      botId: BOT_ID,
      ...content,
      ephemeralTo: where.user,
      source: 'command-ack',
    }).ts;
  }

  /** Tells the page about an answer Slack would treat as a failure (non-2xx, unreachable, too slow). */
  #report(answer: BotAnswer, what: string, user: string): void {
    const at = Date.now();
    if (answer.status === 0) {
      this.#store.emit({
        type: 'notice',
        level: 'error',
        text: `The bot did not answer ${what}: ${answer.error ?? 'unreachable'}`,
        user,
        at,
      });
    } else if (answer.status < 200 || answer.status > 299) {
      const excerpt =
        answer.body.length > MAX_BODY_EXCERPT ? `${answer.body.slice(0, MAX_BODY_EXCERPT)}…` : answer.body;
      this.#store.emit({
        type: 'notice',
        level: 'error',
        text: `The bot answered ${what} with HTTP ${answer.status}${excerpt ? `: ${excerpt}` : ''}`,
        user,
        at,
      });
    } else if (answer.durationMs > SLACK_ACK_DEADLINE_MS) {
      this.#store.emit({
        type: 'notice',
        level: 'warning',
        text: `The bot took ${answer.durationMs} ms to answer ${what}; Slack gives up after ${SLACK_ACK_DEADLINE_MS} ms`,
        user,
        at,
      });
    }
  }

  async #deliver(send: () => Promise<SignedPostResult>): Promise<BotAnswer> {
    const started = Date.now();
    try {
      const result = await send();
      return { status: result.status, body: result.body, durationMs: Date.now() - started };
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      const error = [(err as Error).name, (err as Error).message, cause].filter(Boolean).join(': ');
      return { status: 0, body: '', durationMs: Date.now() - started, error };
    }
  }

  /** A trigger_id as Slack makes them, remembered as `user`'s so the modal the bot opens with it is theirs. */
  #newTrigger(user: string): string {
    const triggerId = `${Date.now()}.${TEAM_ID}.${randomUUID().replaceAll('-', '')}`;
    this.#store.rememberTrigger(triggerId, user);
    return triggerId;
  }

  #newResponseUrl(target: Omit<ResponseTarget, 'uses' | 'expiresAt'>): { id: string; url: string } {
    const id = randomUUID().replaceAll('-', '');
    this.#targets.set(id, { ...target, uses: 0, expiresAt: Date.now() + RESPONSE_URL_TTL_MS });
    return { id, url: `${this.#baseUrl()}response/${id}` };
  }

  #requireBot(): BotConnection {
    if (!this.#bot) {
      throw new StandInError(
        'not_connected',
        'no bot is connected: call connectBot({ url, signingSecret }) or start the stand-in with the bot option',
        409,
      );
    }
    return this.#bot;
  }

  #where(opts: ActOptions): { user: StandInUser; channel: StandInChannel; threadTs?: string } {
    const user = this.#user(opts.user);
    const channel = this.#channel(opts.channel);
    if (opts.threadTs === undefined) return { user, channel };
    const root = this.#store.message(this.#store.rootOf(channel.id, opts.threadTs), channel.id);
    if (!root) {
      throw new StandInError(
        'thread_not_found',
        `no message ${opts.threadTs} in #${channel.name} to reply to`,
        404,
      );
    }
    return { user, channel, threadTs: root.ts };
  }

  #user(ref: string | undefined): StandInUser {
    if (ref === undefined) {
      const first = this.#store.users().find((u) => !u.isBot);
      if (first) return first;
      throw new StandInError('user_not_found', 'no users are configured', 400);
    }
    const known = this.#store.user(ref);
    if (known && !known.isBot) return known;
    if (/^[UW][A-Z0-9]{2,}$/.test(ref) && !known) return this.#store.ensureUser(ref);
    throw new StandInError('user_not_found', `no user ${ref}`, 404);
  }

  #channel(ref: string | undefined): StandInChannel {
    const channel = ref === undefined ? this.#store.channels()[0] : this.#store.ensureChannel(ref);
    if (!channel)
      throw new StandInError('channel_not_found', `no channel ${ref ?? '(none configured)'}`, 404);
    return channel;
  }
}

/** A Block Kit element a click can target, as Slack reports it in `actions[]`. */
interface FoundElement {
  action: Record<string, unknown>;
  /** for messages: "the button Approve" */
  label: string;
}

/** The element with `actionId` in the message's blocks (section accessories and actions blocks). */
export function findElement(
  message: Pick<StoredMessage, 'blocks'>,
  actionId: string,
  value?: string,
): FoundElement | undefined {
  for (const block of message.blocks ?? []) {
    const blockId = typeof block.block_id === 'string' ? block.block_id : '';
    const elements =
      block.type === 'actions' && Array.isArray(block.elements) ? block.elements : [block.accessory];
    for (const element of elements) {
      if (!isRecord(element) || element.action_id !== actionId) continue;
      const found = actionOf(element, blockId, value);
      if (found) return found;
    }
  }
  return undefined;
}

function actionOf(
  element: Record<string, unknown>,
  blockId: string,
  value?: string,
): FoundElement | undefined {
  const base = { action_id: element.action_id, block_id: blockId };
  const textOf = (t: unknown) => (isRecord(t) && typeof t.text === 'string' ? t.text : '');
  if (element.type === 'button') {
    if (value !== undefined && element.value !== value) return undefined;
    return {
      action: {
        type: 'button',
        ...base,
        text: element.text,
        ...(element.value !== undefined ? { value: element.value } : {}),
        ...(element.style !== undefined ? { style: element.style } : {}),
        ...(element.url !== undefined ? { url: element.url } : {}),
      },
      label: `the button ${textOf(element.text)}`,
    };
  }
  if (element.type === 'static_select' || element.type === 'overflow') {
    const options = [
      ...(Array.isArray(element.options) ? element.options : []),
      ...(Array.isArray(element.option_groups)
        ? element.option_groups.flatMap((g) => (isRecord(g) && Array.isArray(g.options) ? g.options : []))
        : []),
    ].filter(isRecord);
    const option = options.find((o) => value === undefined || o.value === value);
    if (!option) return undefined;
    return {
      action: {
        type: element.type,
        ...base,
        selected_option: { text: option.text, value: option.value },
        ...(element.placeholder !== undefined ? { placeholder: element.placeholder } : {}),
      },
      label: `the option ${textOf(option.text)}`,
    };
  }
  return { action: { type: element.type, ...base }, label: `the ${String(element.type)}` };
}

/**
 * What Slack sends for text a person typed: `&`, `<`, `>` escaped, and `@name`, `@here`, `#channel` turned into
 * mentions of the known users and channels (`@ai-sre` is the bot).
 */
export function encodeTyped(text: string, store: ConversationStore): string {
  const escaped = text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return escaped
    .replace(/(^|[\s(])@([a-z0-9][a-z0-9._-]*)/gi, (whole, before: string, name: string) => {
      if (['here', 'channel', 'everyone'].includes(name.toLowerCase()))
        return `${before}<!${name.toLowerCase()}>`;
      const user = store.user(name);
      const group = store.usergroups().find((g) => g.handle === name);
      if (user) return `${before}<@${user.id}>`;
      if (group) return `${before}<!subteam^${group.id}>`;
      return whole;
    })
    .replace(/(^|[\s(])#([a-z0-9][a-z0-9_-]*)/g, (whole, before: string, name: string) => {
      const channel = store.channel(name);
      return channel ? `${before}<#${channel.id}|${channel.name}>` : whole;
    });
}

/** The `rich_text` block Slack attaches to a typed message, from its encoded text. */
export function richTextOf(encoded: string): Record<string, unknown> {
  const elements: Record<string, unknown>[] = [];
  const decode = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  let last = 0;
  for (const match of encoded.matchAll(
    /<(@[UW][A-Z0-9]+|#[CGD][A-Z0-9]+\|[^>]*|![a-z]+(?:\^[A-Z0-9]+)?)>/g,
  )) {
    if (match.index > last) elements.push({ type: 'text', text: decode(encoded.slice(last, match.index)) });
    const token = match[1] ?? '';
    if (token.startsWith('@')) elements.push({ type: 'user', user_id: token.slice(1) });
    else if (token.startsWith('#'))
      elements.push({ type: 'channel', channel_id: token.slice(1).split('|')[0] });
    else if (token.startsWith('!subteam^'))
      elements.push({ type: 'usergroup', usergroup_id: token.slice(9) });
    else elements.push({ type: 'broadcast', range: token.slice(1) });
    last = match.index + match[0].length;
  }
  if (last < encoded.length) elements.push({ type: 'text', text: decode(encoded.slice(last)) });
  return { type: 'rich_text', elements: [{ type: 'rich_text_section', elements }] };
}

type ResponseAction =
  | { kind: 'errors'; errors: Record<string, string> }
  | { kind: 'update'; view: Record<string, unknown> }
  | { kind: 'other' };

/** What a bot's answer to a `view_submission` asks of Slack; undefined for a plain ack (an empty or other body). */
function responseActionOf(body: string): ResponseAction | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!isRecord(json) || typeof json.response_action !== 'string') return undefined;
  if (json.response_action === 'errors' && isRecord(json.errors)) {
    const errors: Record<string, string> = {};
    for (const [blockId, message] of Object.entries(json.errors)) errors[blockId] = String(message);
    return { kind: 'errors', errors };
  }
  if (json.response_action === 'update' && isRecord(json.view)) return { kind: 'update', view: json.view };
  return { kind: 'other' };
}

function actionTs(): string {
  const now = Date.now();
  return `${Math.floor(now / 1000)}.${String((now % 1000) * 1000).padStart(6, '0')}`;
}
