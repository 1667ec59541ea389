import {
  BOT_ID,
  BOT_USER,
  type ConversationStore,
  type StandInChannel,
  type StoredFileRef,
  toSlackMessage,
} from './conversations.js';

export const TEAM_ID = 'T0001';
export const TEAM_NAME = 'ai-sre-test';
export const APP_ID = 'A0001';

/** What the Web API answers need besides the call: the workspace's memory and how picky to be. */
export interface WebApiContext {
  store: ConversationStore;
  /**
   * Answer like Slack where the bot got something wrong (a channel not in the list, an update or reaction of a
   * message never posted). Off by default: tests post to made-up channels and a restarted stand-in has forgotten
   * messages the bot's database still remembers.
   */
  strict: boolean;
  /** `http://127.0.0.1:<port>/` */
  baseUrl: string;
}

/**
 * Success answers shaped like Slack's for the methods the app relies on, recording what they did in the store;
 * any other method gets `{ ok: true }`.
 */
export function answerLikeSlack(
  method: string,
  args: Record<string, unknown>,
  ctx: WebApiContext,
): Record<string, unknown> {
  const { store } = ctx;
  const channel = stringArg(args, 'channel');
  switch (method) {
    case 'auth.test':
      return {
        ok: true,
        url: ctx.baseUrl,
        team: TEAM_NAME,
        user: BOT_USER.name,
        team_id: TEAM_ID,
        user_id: BOT_USER.id,
        bot_id: BOT_ID,
        is_enterprise_install: false,
      };
    case 'chat.postMessage': {
      if (channel === undefined) return { ok: false, error: 'channel_not_found' };
      if (args.text === undefined && args.blocks === undefined && args.attachments === undefined) {
        return { ok: false, error: 'no_text' };
      }
      const target = resolveChannel(channel, ctx);
      if (target === null) return { ok: false, error: 'channel_not_found' };
      const ts = store.nextTs();
      if (target !== undefined) {
        const threadTs = stringArg(args, 'thread_ts');
        const username = stringArg(args, 'username');
        store.add({
          channel: target.id,
          ts,
          ...(threadTs ? { threadTs } : {}),
          user: BOT_USER.id,
          botId: BOT_ID,
          ...(username ? { username } : {}),
          ...messageContent(args),
          mrkdwn: args.mrkdwn !== false && args.mrkdwn !== 'false',
          ...(threadTs && isTrue(args.reply_broadcast) ? { replyBroadcast: true } : {}),
          source: 'web-api',
        });
      }
      // the channel as given, as before: the app stores it and tests compare it
      return { ok: true, channel, ts, message: botMessage(args, ts) };
    }
    case 'chat.update': {
      if (channel === undefined) return { ok: false, error: 'channel_not_found' };
      const ts = stringArg(args, 'ts');
      if (ts === undefined) return { ok: false, error: 'message_not_found' };
      const target = store.channel(channel);
      const existing = target ? store.message(ts, target.id) : undefined;
      if (target && existing) {
        const content = messageContent(args);
        store.update(target.id, ts, {
          ...(args.text !== undefined ? { text: content.text } : {}),
          ...(content.blocks ? { blocks: content.blocks } : {}),
          ...(content.attachments ? { attachments: content.attachments } : {}),
          ...(content.metadata !== undefined ? { metadata: content.metadata } : {}),
          edited: { user: BOT_USER.id, ts: store.nextTs() },
        });
      } else if (ctx.strict) {
        return { ok: false, error: target ? 'message_not_found' : 'channel_not_found' };
      } else {
        store.emit({
          type: 'notice',
          level: 'warning',
          text: `chat.update of ${ts} in ${channel}: no such message here (Slack would answer message_not_found)`,
          at: Date.now(),
        });
      }
      return { ok: true, channel, ts, text: stringArg(args, 'text') ?? '', message: botMessage(args, ts) };
    }
    case 'chat.delete': {
      const ts = stringArg(args, 'ts');
      const target = channel === undefined ? undefined : store.channel(channel);
      if (!target) return { ok: false, error: 'channel_not_found' };
      if (ts === undefined || !store.delete(target.id, ts)) return { ok: false, error: 'message_not_found' };
      return { ok: true, channel, ts };
    }
    case 'chat.postEphemeral': {
      if (channel === undefined) return { ok: false, error: 'channel_not_found' };
      const target = resolveChannel(channel, ctx);
      if (target === null) return { ok: false, error: 'channel_not_found' };
      const user = stringArg(args, 'user');
      if (user === undefined && ctx.strict) return { ok: false, error: 'user_not_in_channel' };
      const ts = store.nextTs();
      if (target !== undefined && user !== undefined) {
        const threadTs = stringArg(args, 'thread_ts');
        store.add({
          channel: target.id,
          ts,
          ...(threadTs ? { threadTs } : {}),
          user: BOT_USER.id,
          botId: BOT_ID,
          ...messageContent(args),
          ephemeralTo: store.ensureUser(user).id,
          source: 'web-api',
        });
      }
      return { ok: true, message_ts: ts };
    }
    case 'reactions.add': {
      const ts = stringArg(args, 'timestamp');
      const name = stringArg(args, 'name');
      const target = channel === undefined ? undefined : store.channel(channel);
      const added = target && ts && name ? store.react(target.id, ts, name, BOT_USER.id) : false;
      if (!added && ctx.strict) {
        const known = target && ts ? store.message(ts, target.id) : undefined;
        return { ok: false, error: known ? 'already_reacted' : 'message_not_found' };
      }
      return { ok: true };
    }
    case 'files.getUploadURLExternal': {
      const filename = stringArg(args, 'filename');
      if (filename === undefined || args.length === undefined)
        return { ok: false, error: 'invalid_arguments' };
      const fileId = `F${store.nextTs().replace('.', '')}`;
      store.registerFile(fileId, filename, stringArg(args, 'alt_text'));
      return { ok: true, upload_url: `${ctx.baseUrl.replace(/\/$/, '')}/upload/${fileId}`, file_id: fileId };
    }
    case 'files.completeUploadExternal':
      return completeUpload(args, ctx);
    case 'conversations.info': {
      if (channel === undefined) return { ok: false, error: 'channel_not_found' };
      const known = store.channel(channel);
      if (!known && ctx.strict) return { ok: false, error: 'channel_not_found' };
      return {
        ok: true,
        channel: channelInfo(known ?? { id: channel, name: `channel-${channel.toLowerCase()}` }),
      };
    }
    case 'views.open': {
      const triggerId = stringArg(args, 'trigger_id');
      const view = args.view;
      if (!triggerId) return { ok: false, error: 'invalid_trigger_id' };
      if (!view || typeof view !== 'object') return { ok: false, error: 'invalid_arguments' };
      const stored = store.openView(triggerId, view as Record<string, unknown>);
      return { ok: true, view: { id: stored.id, ...(view as Record<string, unknown>) } };
    }
    case 'conversations.open': {
      // a DM with one person: the stand-in's D-channel of that user (group DMs are not modelled)
      const users = (stringArg(args, 'users') ?? '').split(',').filter((u) => u.length > 0);
      const user = users[0];
      if (!user || users.length > 1)
        return { ok: false, error: users.length > 1 ? 'not_supported' : 'users_list_not_supplied' };
      const dm = store.ensureChannel(user);
      if (!dm) return { ok: false, error: 'user_not_found' };
      return { ok: true, channel: { id: dm.id } };
    }
    case 'conversations.list':
      return {
        ok: true,
        channels: store.channels().map(channelInfo),
        response_metadata: { next_cursor: '' },
      };
    case 'conversations.history': {
      const target = channel === undefined ? undefined : store.channel(channel);
      if (!target) return { ok: false, error: 'channel_not_found' };
      const messages = store
        .history(target.id)
        .filter((m) => m.ephemeralTo === undefined)
        .reverse()
        .map((m) => toSlackMessage(m, store));
      return { ok: true, messages, has_more: false, response_metadata: { next_cursor: '' } };
    }
    case 'conversations.replies': {
      const target = channel === undefined ? undefined : store.channel(channel);
      if (!target) return { ok: false, error: 'channel_not_found' };
      const ts = stringArg(args, 'ts');
      const root = ts === undefined ? undefined : store.message(store.rootOf(target.id, ts), target.id);
      if (!root) return { ok: false, error: 'thread_not_found' };
      const replies = store.replies(target.id, root.ts).filter((m) => m.ephemeralTo === undefined);
      return {
        ok: true,
        messages: [root, ...replies].map((m) => toSlackMessage(m, store)),
        has_more: false,
        response_metadata: { next_cursor: '' },
      };
    }
    case 'users.info': {
      const user = stringArg(args, 'user');
      if (user === undefined) return { ok: false, error: 'user_not_found' };
      const known = store.user(user);
      return { ok: true, user: userInfo(user, known?.id === user ? known.name : undefined) };
    }
    case 'users.list':
      return {
        ok: true,
        members: store.users().map((u) => userInfo(u.id, u.name)),
        response_metadata: { next_cursor: '' },
      };
    case 'usergroups.users.list': {
      const group = store.usergroup(stringArg(args, 'usergroup') ?? '');
      if (!group && ctx.strict) return { ok: false, error: 'no_such_subteam' };
      return { ok: true, users: group ? [...group.users] : [] };
    }
    default:
      return { ok: true };
  }
}

/**
 * `files.completeUploadExternal`: the files become one message in the channel (and thread) named, with the initial
 * comment as its text, as Slack shares them.
 */
function completeUpload(args: Record<string, unknown>, ctx: WebApiContext): Record<string, unknown> {
  const { store } = ctx;
  const files = parseFiles(args.files);
  if (files.length === 0) return { ok: false, error: 'invalid_arguments' };
  const channelId = stringArg(args, 'channel_id');
  const target = channelId === undefined ? undefined : resolveChannel(channelId, ctx);
  if (target === null) return { ok: false, error: 'channel_not_found' };
  const refs: StoredFileRef[] = files.map(
    (f) =>
      store.completeFile(f.id, f.title) ?? {
        id: f.id,
        name: f.title ?? f.id,
        title: f.title ?? '',
        mimetype: 'image/png',
        size: 0,
      },
  );
  let share: Record<string, unknown> | undefined;
  if (target !== undefined) {
    const ts = store.nextTs();
    const threadTs = stringArg(args, 'thread_ts');
    const message = store.add({
      channel: target.id,
      ts,
      ...(threadTs ? { threadTs } : {}),
      user: BOT_USER.id,
      botId: BOT_ID,
      text: stringArg(args, 'initial_comment') ?? '',
      ...(Array.isArray(args.blocks) ? { blocks: args.blocks.filter(isRecord) } : {}),
      files: refs,
      source: 'web-api',
    });
    share = {
      public: {
        [target.id]: [{ ts, ...(message.threadTs ? { thread_ts: message.threadTs } : {}) }],
      },
    };
  }
  return {
    ok: true,
    files: refs.map((f) => ({
      id: f.id,
      name: f.name,
      title: f.title,
      mimetype: f.mimetype,
      size: f.size,
      url_private: `${ctx.baseUrl}files/${f.id}`,
      ...(share ? { shares: share } : {}),
    })),
  };
}

/**
 * The channel a call names: created when unknown unless strict; null when Slack would refuse it; undefined when the
 * (lenient) stand-in answers but cannot show it, as for a reference that is neither an id nor a name.
 */
function resolveChannel(ref: string, ctx: WebApiContext): StandInChannel | undefined | null {
  if (ctx.strict) return ctx.store.channel(ref) ?? null;
  return ctx.store.ensureChannel(ref);
}

function messageContent(args: Record<string, unknown>): {
  text: string;
  blocks?: Record<string, unknown>[];
  attachments?: Record<string, unknown>[];
  metadata?: unknown;
} {
  return {
    text: stringArg(args, 'text') ?? '',
    ...(Array.isArray(args.blocks) ? { blocks: args.blocks.filter(isRecord) } : {}),
    ...(Array.isArray(args.attachments) ? { attachments: args.attachments.filter(isRecord) } : {}),
    ...(args.metadata !== undefined ? { metadata: args.metadata } : {}),
  };
}

function parseFiles(value: unknown): { id: string; title?: string }[] {
  let list: unknown = value;
  if (typeof value === 'string') {
    try {
      list = JSON.parse(value);
    } catch {
      return [];
    }
  }
  if (!Array.isArray(list)) return [];
  return list.flatMap((f) =>
    isRecord(f) && typeof f.id === 'string'
      ? [{ id: f.id, ...(typeof f.title === 'string' ? { title: f.title } : {}) }]
      : [],
  );
}

function channelInfo(channel: StandInChannel): Record<string, unknown> {
  const im = channel.id.startsWith('D');
  return {
    id: channel.id,
    name: channel.name,
    is_channel: !im,
    is_im: im,
    is_private: channel.id.startsWith('G'),
    is_archived: false,
    is_member: true,
    context_team_id: TEAM_ID,
    created: 1_700_000_000,
  };
}

function userInfo(id: string, knownName: string | undefined): Record<string, unknown> {
  const name = knownName ?? (id === BOT_USER.id ? BOT_USER.name : `user-${id.toLowerCase()}`);
  return {
    id,
    team_id: TEAM_ID,
    name,
    real_name: name,
    deleted: false,
    is_bot: id === BOT_USER.id,
    tz: 'UTC',
    tz_offset: 0,
    profile: { real_name: name, display_name: name },
  };
}

function botMessage(args: Record<string, unknown>, ts: string): Record<string, unknown> {
  const message: Record<string, unknown> = {
    type: 'message',
    user: BOT_USER.id,
    bot_id: BOT_ID,
    app_id: APP_ID,
    team: TEAM_ID,
    text: stringArg(args, 'text') ?? '',
    ts,
  };
  for (const key of ['blocks', 'attachments', 'thread_ts', 'metadata'] as const) {
    if (args[key] !== undefined) message[key] = args[key];
  }
  return message;
}

function isTrue(value: unknown): boolean {
  return value === true || value === 'true';
}

export function stringArg(args: Record<string, unknown>, key: string): string | undefined {
  const value = args[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
