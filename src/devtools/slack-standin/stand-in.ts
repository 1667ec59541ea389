import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

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

export interface SlackStub {
  /** base URL ending in `/api/`; hand it to the app as SLACK_API_URL (WebClient `slackApiUrl`) */
  url: string;
  /** every call, in arrival order, including the ones answered with a failure */
  calls: SlackCall[];
  callsTo(method: string): SlackCall[];
  /** make the next `count` calls of `method` (or `'*'`, any method) fail with `failure` */
  failNext(method: string | '*', count: number, failure: SlackFailure): void;
  /** answer every later call of `method` with `body` (e.g. `apps.connections.open` with a WebSocket URL) */
  answerWith(method: string, body: Record<string, unknown>): void;
  /** bodies POSTed to the upload URLs `files.getUploadURLExternal` handed out, by file id */
  uploads: Map<string, Buffer>;
  /** polls until `predicate(calls)` holds; rejects listing the calls seen after `timeoutMs` (default 10_000) */
  waitFor(predicate: (calls: SlackCall[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const TEAM_ID = 'T0001';
const TEAM_NAME = 'ai-sre-test';
const BOT_USER_ID = 'U0BOT';
const BOT_ID = 'B0BOT';
const APP_ID = 'A0001';

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
 * Starts a stand-in for Slack's Web API on 127.0.0.1 (random port) that records every call and answers
 * the way Slack does, so tests can drive the real WebClient without reaching the network.
 */
export async function startSlackStub(): Promise<SlackStub> {
  const calls: SlackCall[] = [];
  const pendingFailures: PendingFailure[] = [];
  let tsCounter = 0;

  /** unique, increasing message timestamps in Slack's "seconds.micros" shape */
  const nextTs = (): string => {
    tsCounter += 100;
    const seconds = 1_700_000_000 + Math.floor(tsCounter / 1_000_000);
    return `${seconds}.${String(tsCounter % 1_000_000).padStart(6, '0')}`;
  };

  const takeFailure = (method: string): SlackFailure | undefined => {
    const index = pendingFailures.findIndex((f) => f.method === '*' || f.method === method);
    const pending = pendingFailures[index];
    if (pending === undefined) return undefined;
    pending.remaining -= 1;
    if (pending.remaining === 0) pendingFailures.splice(index, 1);
    return pending.failure;
  };

  const custom = new Map<string, Record<string, unknown>>();
  const answer = (method: string, args: Record<string, unknown>, baseUrl: string): Reply => {
    const failure = takeFailure(method);
    if (failure !== undefined) return failureReply(failure);
    const fixed = custom.get(method);
    if (fixed) return { status: 200, body: fixed };
    return { status: 200, body: answerLikeSlack(method, args, nextTs, baseUrl) };
  };

  const uploads = new Map<string, Buffer>();
  const server = createServer((req, res) => {
    // files.getUploadURLExternal hands out /upload/<file id>: the file's bytes arrive there, as with Slack
    const upload = /^\/upload\/(F[A-Z0-9]+)$/.exec(req.url ?? '');
    if (upload?.[1] && req.method === 'POST') {
      const id = upload[1];
      readBody(req).then(
        (body) => {
          uploads.set(id, body);
          res.writeHead(200, { 'content-type': 'text/plain' }).end(`OK - ${body.length}`);
        },
        () => res.writeHead(500).end(),
      );
      return;
    }
    handleRequest(req, res, calls, answer).catch((error: unknown) => {
      sendJson(res, { status: 500, body: { ok: false, error: 'fatal_error', detail: String(error) } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/api/`,
    calls,
    uploads,
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
        // fetch keeps connections alive; without this close() waits for them to time out
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

/** Success answers shaped like Slack's, for the methods the app relies on; any other method gets `{ ok: true }`. */
function answerLikeSlack(
  method: string,
  args: Record<string, unknown>,
  nextTs: () => string,
  baseUrl: string,
): Record<string, unknown> {
  const channel = stringArg(args, 'channel');
  switch (method) {
    case 'auth.test':
      return {
        ok: true,
        url: baseUrl,
        team: TEAM_NAME,
        user: 'ai-sre',
        team_id: TEAM_ID,
        user_id: BOT_USER_ID,
        bot_id: BOT_ID,
        is_enterprise_install: false,
      };
    case 'chat.postMessage': {
      if (channel === undefined) return { ok: false, error: 'channel_not_found' };
      if (args.text === undefined && args.blocks === undefined && args.attachments === undefined) {
        return { ok: false, error: 'no_text' };
      }
      const ts = nextTs();
      return { ok: true, channel, ts, message: botMessage(args, ts) };
    }
    case 'chat.update': {
      if (channel === undefined) return { ok: false, error: 'channel_not_found' };
      const ts = stringArg(args, 'ts');
      if (ts === undefined) return { ok: false, error: 'message_not_found' };
      return { ok: true, channel, ts, text: stringArg(args, 'text') ?? '', message: botMessage(args, ts) };
    }
    case 'files.getUploadURLExternal': {
      const filename = stringArg(args, 'filename');
      if (filename === undefined || args.length === undefined)
        return { ok: false, error: 'invalid_arguments' };
      const fileId = `F${nextTs().replace('.', '')}`;
      return { ok: true, upload_url: `${baseUrl.replace(/\/$/, '')}/upload/${fileId}`, file_id: fileId };
    }
    case 'files.completeUploadExternal': {
      const files =
        typeof args.files === 'string' ? (JSON.parse(args.files) as { id: string; title?: string }[]) : [];
      if (files.length === 0) return { ok: false, error: 'invalid_arguments' };
      return {
        ok: true,
        files: files.map((f) => ({ id: f.id, title: f.title ?? '', mimetype: 'image/png' })),
      };
    }
    case 'chat.postEphemeral':
      if (channel === undefined) return { ok: false, error: 'channel_not_found' };
      return { ok: true, message_ts: nextTs() };
    case 'conversations.info':
      if (channel === undefined) return { ok: false, error: 'channel_not_found' };
      return {
        ok: true,
        channel: {
          id: channel,
          name: `channel-${channel.toLowerCase()}`,
          is_channel: true,
          is_private: false,
          is_archived: false,
          is_member: true,
          context_team_id: TEAM_ID,
          created: 1_700_000_000,
        },
      };
    case 'users.info': {
      const user = stringArg(args, 'user');
      if (user === undefined) return { ok: false, error: 'user_not_found' };
      const name = user === BOT_USER_ID ? 'ai-sre' : `user-${user.toLowerCase()}`;
      return {
        ok: true,
        user: {
          id: user,
          team_id: TEAM_ID,
          name,
          real_name: name,
          deleted: false,
          is_bot: user === BOT_USER_ID,
          tz: 'UTC',
          tz_offset: 0,
          profile: { real_name: name, display_name: name },
        },
      };
    }
    default:
      return { ok: true };
  }
}

function botMessage(args: Record<string, unknown>, ts: string): Record<string, unknown> {
  const message: Record<string, unknown> = {
    type: 'message',
    user: BOT_USER_ID,
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

function stringArg(args: Record<string, unknown>, key: string): string | undefined {
  const value = args[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
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
