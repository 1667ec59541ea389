import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import {
  type ActOptions,
  type BotAnswer,
  type BotConnection,
  type ClickOptions,
  type CloseViewOptions,
  type ResponseUrlPost,
  type SubmitViewOptions,
  UserActions,
  type ViewSubmission,
} from './act-as-user.js';
import { ConversationStore, DEFAULT_CHANNELS, DEFAULT_USERS, type StoredMessage } from './conversations.js';
import { routeUi } from './ui-routes.js';
import { answerLikeSlack, isRecord } from './web-api.js';

export type {
  ActOptions,
  BotAnswer,
  BotConnection,
  ClickOptions,
  CloseViewOptions,
  ResponseUrlPost,
  SubmitViewOptions,
  ViewSubmission,
} from './act-as-user.js';
export { StandInError } from './act-as-user.js';
export type {
  StandInChannel,
  StandInUser,
  StandInUsergroup,
  StoredMessage,
  StoredView,
} from './conversations.js';
export { ConversationStore } from './conversations.js';

/** One Web API request the stub received, failed or not. */
export interface SlackCall {
  /** Web API method, e.g. `chat.postMessage` */
  method: string;
  /** form or JSON arguments; `blocks`, `attachments`, `metadata` and `view` are already JSON-decoded */
  args: Record<string, unknown>;
  /** when the request arrived; epoch milliseconds */
  at: number;
  /** from `Authorization: Bearer …`, else the `token` argument */
  token: string | null;
}

/** An HTTP-level failure (429 sends `Retry-After` when `retryAfter` is set; seconds) or a Slack `ok:false` error. */
export type SlackFailure = { status: number; retryAfter?: number } | { error: string };

/** At most `calls` calls per `perMs` milliseconds; the rest are answered 429 with `Retry-After` (seconds). */
export interface RateLimit {
  calls: number;
  /** the sliding window; milliseconds */
  perMs: number;
  /** seconds; default the time until the window has room again, rounded up */
  retryAfter?: number;
}

export interface SlackStub {
  /** base URL ending in `/api/`; hand it to the app as SLACK_API_URL (WebClient `slackApiUrl`) */
  url: string;
  /** the Slack-like page, `http://127.0.0.1:<port>/` */
  pageUrl: string;
  /** every call, in arrival order, including the ones answered with a failure */
  calls: SlackCall[];
  callsTo(method: string): SlackCall[];
  /** make the next `count` calls of `method` (or `'*'`, any method) fail with `failure` */
  failNext(method: string | '*', count: number, failure: SlackFailure): void;
  /** answer every later call of `method` with `body` (e.g. `apps.connections.open` with a WebSocket URL) */
  answerWith(method: string, body: Record<string, unknown>): void;
  /** throttle `method` (or `'*'`, all methods together) like Slack's rate limits; `null` lifts it */
  rateLimit(method: string | '*', limit: RateLimit | null): void;
  /** bodies POSTed to the upload URLs `files.getUploadURLExternal` handed out, by file id */
  uploads: Map<string, Buffer>;
  /** the channels, people and messages the stand-in shows, fed by the bot's calls and by people acting */
  conversations: ConversationStore;
  /** every POST the bot made to a response_url the stand-in handed out */
  responses: ResponseUrlPost[];
  /** where the bot listens; until connected, acting as a user throws (and the page's actions answer 409) */
  connectBot(bot: BotConnection): void;
  /** a slash command (`/incident help`), signed; its answer is shown as Slack shows it */
  command(text: string, opts?: ActOptions): Promise<BotAnswer & { responseUrl: string }>;
  /** a message mentioning the bot, stored and sent as an `app_mention` event */
  mention(text: string, opts?: ActOptions): Promise<BotAnswer & { ts: string; eventId: string }>;
  /** a click on a button (or a select's option) of a stored message, sent as `block_actions` */
  click(opts: ClickOptions): Promise<BotAnswer & { responseUrl: string }>;
  /**
   * submits a modal the bot opened (`viewId`, else the newest open one with this callback_id), as `view_submission`;
   * it stays open when the bot answers `response_action: errors` (see `errors`)
   */
  submitView(opts: SubmitViewOptions): Promise<ViewSubmission>;
  /** closes an open modal without submitting; the bot hears of it (`view_closed`) only if it set notify_on_close */
  closeView(opts: CloseViewOptions): Promise<{ viewId: string; notified: BotAnswer | null }>;
  /** a plain message a person typed: stored, not sent to the bot */
  say(text: string, opts?: ActOptions): StoredMessage;
  /** polls until `predicate(calls)` holds; rejects listing the calls seen after `timeoutMs` (default 10_000) */
  waitFor(predicate: (calls: SlackCall[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const ChannelOption = z.object({
  id: z.string().regex(/^[CGD][A-Z0-9]{2,}$/, { error: 'expected a channel id like C0001' }),
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,79}$/, { error: 'expected a channel name like incidents' }),
});
const UserOption = z.object({
  id: z.string().regex(/^[UW][A-Z0-9]{2,}$/, { error: 'expected a user id like U0001' }),
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,79}$/, { error: 'expected a user name like alice' }),
});

/** What `startSlackStub` can be told; everything is optional and listens on 127.0.0.1 only. */
export const SlackStubOptions = z.object({
  /** default 0: a free port */
  port: z.number().int().min(0).max(65_535).default(0),
  /** loopback only: the stand-in signs requests with the bot's secret and shows everything it is sent */
  host: z.literal('127.0.0.1').default('127.0.0.1'),
  /** default `C0001` #incidents; channels the bot posts to are added as it does */
  channels: z.array(ChannelOption).min(1).default(DEFAULT_CHANNELS),
  /** the people one can act as; default `U0001` alice; the first is the default actor */
  users: z.array(UserOption).min(1).default(DEFAULT_USERS),
  /** user groups `usergroups.users.list` answers for (e.g. the approvers of a guarded step) */
  usergroups: z
    .array(
      z.object({
        id: z.string().regex(/^S[A-Z0-9]{2,}$/, { error: 'expected a user group id like S0001' }),
        handle: z.string().min(1),
        users: z.array(z.string()),
      }),
    )
    .default([]),
  /** the bot to send commands, mentions and clicks to, when already known */
  bot: z.object({ url: z.string().min(1), signingSecret: z.string().min(1) }).optional(),
  /**
   * answer like Slack where the bot got it wrong: channel_not_found for a channel not in the list, message_not_found
   * for an update or reaction of a message never posted; default false (tests post to made-up channels)
   */
  strict: z.boolean().default(false),
});
export type SlackStubOptions = z.input<typeof SlackStubOptions>;

/** Arguments the WebClient sends as JSON-encoded strings inside a form body. */
const JSON_ENCODED_ARGS = new Set(['blocks', 'attachments', 'metadata', 'view']);

/** Slack's error code for each HTTP failure status it answers with. */
const ERROR_FOR_STATUS: Record<number, string> = {
  429: 'ratelimited',
  500: 'fatal_error',
  503: 'service_unavailable',
  504: 'request_timeout',
};

/** between `waitFor` checks; milliseconds */
const POLL_INTERVAL_MS = 20;

interface PendingFailure {
  method: string;
  remaining: number;
  failure: SlackFailure;
}

interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

/**
 * Starts a stand-in for Slack on 127.0.0.1: the Web API (records every call and answers the way Slack does, so tests
 * can drive the real WebClient without reaching the network), a page at `/` that shows the conversations like Slack,
 * and people acting on it (slash commands, mentions, clicks) signed as Slack signs them. With no options it is what
 * the tests have always used: a random port, lenient about channels and messages it never saw.
 */
export async function startSlackStub(options: SlackStubOptions = {}): Promise<SlackStub> {
  const parsedOptions = SlackStubOptions.safeParse(options);
  if (!parsedOptions.success) {
    const issue = parsedOptions.error.issues[0];
    throw new Error(`startSlackStub: ${issue?.path.join('.') || 'options'}: ${issue?.message ?? 'invalid'}`);
  }
  const opts = parsedOptions.data;
  const store = new ConversationStore({
    channels: opts.channels,
    users: opts.users,
    usergroups: opts.usergroups,
  });
  let origin = '';
  const actions = new UserActions(store, () => `${origin}/`);
  if (opts.bot) actions.connect(opts.bot);

  const calls: SlackCall[] = [];
  const pendingFailures: PendingFailure[] = [];
  const limits = new Map<string, RateLimit & { hits: number[] }>();

  const takeFailure = (method: string): SlackFailure | undefined => {
    const index = pendingFailures.findIndex((f) => f.method === '*' || f.method === method);
    const pending = pendingFailures[index];
    if (pending === undefined) return undefined;
    pending.remaining -= 1;
    if (pending.remaining === 0) pendingFailures.splice(index, 1);
    return pending.failure;
  };

  /** a 429 when `method` is over a rate limit, else the call is counted */
  const throttle = (method: string): Reply | undefined => {
    const now = Date.now();
    const applicable = [limits.get(method), limits.get('*')].filter((l) => l !== undefined);
    for (const limit of applicable) {
      while (limit.hits.length > 0 && (limit.hits[0] ?? 0) <= now - limit.perMs) limit.hits.shift();
      if (limit.hits.length >= limit.calls) {
        const waitMs = (limit.hits[0] ?? now) + limit.perMs - now;
        const retryAfter = limit.retryAfter ?? Math.max(1, Math.ceil(waitMs / 1000));
        return failureReply({ status: 429, retryAfter });
      }
    }
    for (const limit of applicable) limit.hits.push(now);
    return undefined;
  };

  const custom = new Map<string, Record<string, unknown>>();
  const answer = (method: string, args: Record<string, unknown>, baseUrl: string): Reply => {
    const failure = takeFailure(method);
    if (failure !== undefined) return failureReply(failure);
    const limited = throttle(method);
    if (limited) return limited;
    const fixed = custom.get(method);
    if (fixed) return { status: 200, body: fixed };
    return { status: 200, body: answerLikeSlack(method, args, { store, strict: opts.strict, baseUrl }) };
  };

  const uploads = new Map<string, Buffer>();
  const uiDeps = { store, actions, origin: () => origin };
  const server = createServer((req, res) => {
    // files.getUploadURLExternal hands out /upload/<file id>: the file's bytes arrive there, as with Slack
    const upload = /^\/upload\/(F[A-Z0-9]+)$/.exec(req.url ?? '');
    if (upload?.[1] && req.method === 'POST') {
      const id = upload[1];
      const contentType = req.headers['content-type'] ?? '';
      readBody(req).then(
        async (body) => {
          uploads.set(id, body);
          store.storeFileBytes(id, await fileBytesOf(contentType, body));
          res.writeHead(200, { 'content-type': 'text/plain' }).end(`OK - ${body.length}`);
        },
        () => res.writeHead(500).end(),
      );
      return;
    }
    if (req.url?.startsWith('/api/')) {
      handleRequest(req, res, calls, answer).catch((error: unknown) => {
        sendJson(res, { status: 500, body: { ok: false, error: 'fatal_error', detail: String(error) } });
      });
      return;
    }
    routeUi(req, res, uiDeps).then(
      (handled) => {
        if (!handled) sendJson(res, { status: 404, body: { ok: false, error: 'not_found' } });
      },
      (error: unknown) => {
        sendJson(res, { status: 500, body: { ok: false, error: 'fatal_error', detail: String(error) } });
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  origin = `http://127.0.0.1:${port}`;

  return {
    url: `${origin}/api/`,
    pageUrl: `${origin}/`,
    calls,
    uploads,
    conversations: store,
    responses: actions.responses,
    callsTo: (method) => calls.filter((c) => c.method === method),
    answerWith(method, body) {
      custom.set(method, body);
    },
    failNext(method, count, failure) {
      if (!Number.isInteger(count) || count < 1)
        throw new Error(`failNext: count must be a positive integer, got ${count}`);
      if (
        'status' in failure &&
        (!Number.isInteger(failure.status) || failure.status < 400 || failure.status > 599)
      ) {
        throw new Error(`failNext: status must be an HTTP error status (400-599), got ${failure.status}`);
      }
      pendingFailures.push({ method, remaining: count, failure });
    },
    rateLimit(method, limit) {
      if (limit === null) {
        limits.delete(method);
        return;
      }
      if (!Number.isInteger(limit.calls) || limit.calls < 1 || !(limit.perMs > 0)) {
        throw new Error(
          `rateLimit: calls must be a positive integer and perMs positive, got ${JSON.stringify(limit)}`,
        );
      }
      limits.set(method, { ...limit, hits: [] });
    },
    connectBot: (bot) => actions.connect(bot),
    command: (text, actOpts) => actions.command(text, actOpts),
    mention: (text, actOpts) => actions.mention(text, actOpts),
    click: (clickOpts) => actions.click(clickOpts),
    submitView: (viewOpts) => actions.submitView(viewOpts),
    closeView: (viewOpts) => actions.closeView(viewOpts),
    say: (text, actOpts) => actions.say(text, actOpts),
    async waitFor(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(calls)) {
        if (Date.now() >= deadline) {
          throw new Error(
            `Slack stub: condition not met within ${timeoutMs} ms; calls seen:\n${describeCalls(calls)}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
      }
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // fetch keeps connections alive, and pages keep their event streams open; without this close() waits
        server.closeAllConnections();
      }),
  };
}

async function handleRequest(
  req: IncomingMessage,
  res: ServerResponse,
  calls: SlackCall[],
  answer: (method: string, args: Record<string, unknown>, baseUrl: string) => Reply,
): Promise<void> {
  const requestUrl = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
  const match = /^\/api\/([A-Za-z0-9_.]+)$/.exec(requestUrl.pathname);
  const method = match?.[1];
  if (method === undefined) {
    sendJson(res, { status: 404, body: { ok: false, error: 'unknown_method' } });
    return;
  }

  const rawBody = await readBody(req);
  const parsed = await parseArgs(req.headers['content-type'] ?? '', rawBody);
  const args = { ...Object.fromEntries(requestUrl.searchParams), ...parsed.args };
  calls.push({ method, args, at: Date.now(), token: tokenOf(req, args) });

  if (!parsed.ok) {
    sendJson(res, { status: 200, body: { ok: false, error: 'invalid_json' } });
    return;
  }
  sendJson(res, answer(method, args, `http://${requestUrl.host}/`));
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function parseArgs(
  contentType: string,
  rawBody: Buffer,
): Promise<{ ok: boolean; args: Record<string, unknown> }> {
  const mediaType = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (rawBody.length === 0) return { ok: true, args: {} };

  if (mediaType === 'application/json') {
    try {
      const value: unknown = JSON.parse(rawBody.toString('utf8'));
      return isRecord(value) ? { ok: true, args: value } : { ok: false, args: {} };
    } catch {
      return { ok: false, args: {} };
    }
  }

  if (mediaType === 'multipart/form-data') {
    // file uploads: keep the text fields, summarise the files
    const form = await new Response(new Uint8Array(rawBody), {
      headers: { 'content-type': contentType },
    }).formData();
    const args: Record<string, unknown> = {};
    for (const [key, value] of form) {
      args[key] =
        typeof value === 'string' ? decodeJsonArg(key, value) : { filename: value.name, size: value.size };
    }
    return { ok: true, args };
  }

  // the WebClient's default, and what Slack assumes without a content type
  const args: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(rawBody.toString('utf8'))) {
    args[key] = decodeJsonArg(key, value);
  }
  return { ok: true, args };
}

/** The file in an upload: the WebClient sends it as a multipart form's file part, others send the bytes as they are. */
async function fileBytesOf(contentType: string, body: Buffer): Promise<Buffer> {
  if (!/^multipart\/form-data/i.test(contentType)) return body;
  try {
    const form = await new Response(new Uint8Array(body), {
      headers: { 'content-type': contentType },
    }).formData();
    for (const [, value] of form) {
      if (typeof value !== 'string') return Buffer.from(await value.arrayBuffer());
    }
  } catch {
    // not a readable form after all: keep what came
  }
  return body;
}

function decodeJsonArg(key: string, value: string): unknown {
  if (!JSON_ENCODED_ARGS.has(key)) return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function tokenOf(req: IncomingMessage, args: Record<string, unknown>): string | null {
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (bearer?.[1] !== undefined) return bearer[1];
  return typeof args.token === 'string' ? args.token : null;
}

function failureReply(failure: SlackFailure): Reply {
  if ('error' in failure) return { status: 200, body: { ok: false, error: failure.error } };
  const headers: Record<string, string> = {};
  if (failure.retryAfter !== undefined) headers['retry-after'] = String(failure.retryAfter);
  const error = ERROR_FOR_STATUS[failure.status] ?? `http_${failure.status}`;
  return { status: failure.status, body: { ok: false, error }, headers };
}

function sendJson(res: ServerResponse, reply: Reply): void {
  if (res.headersSent) return;
  res.writeHead(reply.status, { 'content-type': 'application/json; charset=utf-8', ...reply.headers });
  res.end(JSON.stringify(reply.body));
}

function describeCalls(calls: SlackCall[]): string {
  if (calls.length === 0) return '  (none)';
  return calls
    .map((c, i) => {
      const args = JSON.stringify(c.args);
      return `  ${i + 1}. ${c.method} ${args.length > 300 ? `${args.slice(0, 300)}…` : args}`;
    })
    .join('\n');
}
