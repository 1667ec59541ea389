import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { StandInError, type UserActions } from './act-as-user.js';
import { BOT_USER, type ConversationStore, type StoreEvent, viewableBy } from './conversations.js';
import { standInPage } from './page.js';
import { TEAM_ID, TEAM_NAME } from './web-api.js';

const Ts = z.string().regex(/^\d{1,12}\.\d{1,6}$/, { error: 'expected a Slack ts like 1700000000.000100' });
const Ref = z.string().min(1, { error: 'expected an id or a name' }).max(100);
const Text = z
  .string({ error: 'expected the text typed' })
  .trim()
  .min(1, { error: 'expected the text typed' })
  .max(40_000);

/** Body of `POST /ui/command`, `/ui/mention` and `/ui/message`. */
export const UiTypedRequest = z.object({
  text: Text,
  /** user id or name; default the first configured user */
  user: Ref.optional(),
  /** channel id or name; default the first configured channel */
  channel: Ref.optional(),
  threadTs: Ts.optional(),
});
export type UiTypedRequest = z.infer<typeof UiTypedRequest>;

/** Body of `POST /ui/action`. */
export const UiActionRequest = z.object({
  ts: Ts,
  channel: Ref.optional(),
  actionId: z.string({ error: 'expected the action_id of a button or select' }).min(1).max(255),
  value: z.string().max(2000).optional(),
  user: Ref.optional(),
});
export type UiActionRequest = z.infer<typeof UiActionRequest>;

const ViewId = z.string().regex(/^V[A-Z0-9]{2,}$/, { error: 'expected a modal id like V00000001' });

/** Body of `POST /ui/view`: the person submits a modal with what they typed. */
export const UiViewSubmitRequest = z.object({
  /** empty for a modal opened without one */
  callbackId: z.string({ error: "expected the modal's callback_id" }).max(255),
  viewId: ViewId,
  user: Ref.optional(),
  /** what was typed, by the input element's action_id; Slack's text inputs hold at most 3000 characters */
  values: z.record(z.string().min(1).max(255), z.string().max(3000)).default({}),
});
export type UiViewSubmitRequest = z.infer<typeof UiViewSubmitRequest>;

/** Body of `POST /ui/view/close`: the person closes a modal without submitting. */
export const UiViewCloseRequest = z.object({ viewId: ViewId, user: Ref.optional() });
export type UiViewCloseRequest = z.infer<typeof UiViewCloseRequest>;

/** of a JSON body the page or a response_url poster sends; bytes */
const MAX_BODY_BYTES = 1024 * 1024;
/** SSE comment lines keep idle connections (and proxies) from giving up; milliseconds */
const HEARTBEAT_MS = 15_000;
/** how soon a dropped page reconnects; milliseconds */
const SSE_RETRY_MS = 1_000;

export interface UiDeps {
  store: ConversationStore;
  actions: UserActions;
  /** `http://127.0.0.1:<port>` */
  origin(): string;
}

/**
 * The page and what it talks to: `GET /`, `GET /ui/state`, `GET /ui/stream` (SSE), `POST /ui/{command,mention,
 * action,message,view,view/close}`, the uploaded files at `GET /files/<id>`, and `POST /response/<id>` for the bot's
 * response_url answers. Returns false for any other path.
 */
export async function routeUi(req: IncomingMessage, res: ServerResponse, deps: UiDeps): Promise<boolean> {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const path = url.pathname;
  const method = req.method ?? 'GET';

  if (method === 'GET' && (path === '/' || path === '/index.html')) {
    const page = standInPage();
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': page.csp,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-store',
    });
    res.end(page.html);
    return true;
  }
  if (method === 'GET' && path === '/favicon.ico') {
    res.writeHead(204).end();
    return true;
  }
  if (method === 'GET' && path === '/ui/state') {
    sendJson(res, 200, stateOf(deps, viewerOf(deps.store, url.searchParams.get('as'))));
    return true;
  }
  if (method === 'GET' && path === '/ui/stream') {
    openStream(req, res, deps.store, viewerOf(deps.store, url.searchParams.get('as')));
    return true;
  }
  const file = /^\/files\/(F[A-Za-z0-9]+)$/.exec(path);
  if (method === 'GET' && file?.[1]) {
    serveFile(res, deps.store, file[1]);
    return true;
  }
  const response = /^\/response\/([a-f0-9]{32})$/.exec(path);
  if (response?.[1]) {
    if (method !== 'POST') {
      sendJson(res, 405, { ok: false, error: 'method_not_allowed' });
      return true;
    }
    const raw = await readLimited(req);
    if (raw === null) {
      sendJson(res, 413, { ok: false, error: 'too_large' });
      return true;
    }
    let body: unknown = raw.toString('utf8');
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      // kept as text: the schema names it as the bad field
    }
    const answer = deps.actions.respond(response[1], body);
    sendJson(res, answer.status, answer.body);
    return true;
  }
  const action = /^\/ui\/(command|mention|action|message|view|view\/close)$/.exec(path)?.[1];
  if (action === undefined) return false;
  if (method !== 'POST') {
    sendJson(res, 405, { ok: false, error: 'method_not_allowed', message: `${path} takes POST` });
    return true;
  }
  if (action === 'view' || action === 'view/close') await handleView(req, res, deps, action);
  else await handleAction(req, res, deps, action as 'command' | 'mention' | 'action' | 'message');
  return true;
}

/**
 * The body of a page action, checked: same origin, JSON, within size, valid for `schema`. Undefined (with the
 * refusal already sent) otherwise.
 */
async function readPageRequest<T>(
  req: IncomingMessage,
  res: ServerResponse,
  deps: UiDeps,
  schema: z.ZodType<T>,
): Promise<T | undefined> {
  // A page on another site can POST here from this person's browser: only same-origin JSON is taken (a
  // cross-site JSON POST needs a preflight this server never grants).
  const origin = req.headers.origin;
  const ownOrigins = [deps.origin(), deps.origin().replace('127.0.0.1', 'localhost')];
  if (origin !== undefined && !ownOrigins.includes(origin)) {
    sendJson(res, 403, {
      ok: false,
      error: 'forbidden_origin',
      message: `requests from ${origin} are refused`,
    });
    return undefined;
  }
  const mediaType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (mediaType !== 'application/json') {
    sendJson(res, 415, {
      ok: false,
      error: 'unsupported_media_type',
      message: 'send the body as application/json',
    });
    return undefined;
  }
  const raw = await readLimited(req);
  if (raw === null) {
    sendJson(res, 413, {
      ok: false,
      error: 'too_large',
      message: `the body is over ${MAX_BODY_BYTES} bytes`,
    });
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    sendJson(res, 400, {
      ok: false,
      error: 'invalid_request',
      field: '(body)',
      message: '(body): not JSON',
    });
    return undefined;
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || '(body)';
    sendJson(res, 400, {
      ok: false,
      error: 'invalid_request',
      field,
      message: `${field}: ${issue?.message ?? 'invalid'}`,
    });
    return undefined;
  }
  return parsed.data;
}

async function handleAction(
  req: IncomingMessage,
  res: ServerResponse,
  deps: UiDeps,
  action: 'command' | 'mention' | 'action' | 'message',
): Promise<void> {
  const schema = action === 'action' ? UiActionRequest : UiTypedRequest;
  const body = await readPageRequest<UiActionRequest | UiTypedRequest>(req, res, deps, schema);
  if (body === undefined) return;
  try {
    if (action === 'action') {
      const input = body as UiActionRequest;
      const bot = await deps.actions.click({
        ts: input.ts,
        actionId: input.actionId,
        ...(input.channel ? { channel: input.channel } : {}),
        ...(input.value !== undefined ? { value: input.value } : {}),
        ...(input.user ? { user: input.user } : {}),
      });
      sendJson(res, 200, { ok: true, bot: botPart(bot) });
      return;
    }
    const input = body as UiTypedRequest;
    const where = {
      ...(input.user ? { user: input.user } : {}),
      ...(input.channel ? { channel: input.channel } : {}),
      ...(input.threadTs ? { threadTs: input.threadTs } : {}),
    };
    if (action === 'message') {
      const message = deps.actions.say(input.text, where);
      sendJson(res, 200, { ok: true, ts: message.ts });
    } else if (action === 'command') {
      const bot = await deps.actions.command(input.text, where);
      sendJson(res, 200, { ok: true, bot: botPart(bot) });
    } else {
      const bot = await deps.actions.mention(input.text, where);
      sendJson(res, 200, { ok: true, ts: bot.ts, bot: botPart(bot) });
    }
  } catch (err) {
    if (err instanceof StandInError) {
      sendJson(res, err.status, { ok: false, error: err.code, message: err.message });
      return;
    }
    throw err;
  }
}

/** A modal submitted (the answer says whether it closed, or the errors to show) or closed by the person. */
async function handleView(
  req: IncomingMessage,
  res: ServerResponse,
  deps: UiDeps,
  action: 'view' | 'view/close',
): Promise<void> {
  try {
    if (action === 'view') {
      const input = await readPageRequest(req, res, deps, UiViewSubmitRequest);
      if (input === undefined) return;
      const submitted = await deps.actions.submitView({
        callbackId: input.callbackId,
        viewId: input.viewId,
        values: input.values,
        ...(input.user ? { user: input.user } : {}),
      });
      sendJson(res, 200, {
        ok: true,
        viewId: submitted.viewId,
        closed: submitted.closed,
        ...(submitted.errors ? { errors: submitted.errors } : {}),
        bot: botPart(submitted),
      });
      return;
    }
    const input = await readPageRequest(req, res, deps, UiViewCloseRequest);
    if (input === undefined) return;
    const closed = await deps.actions.closeView({
      viewId: input.viewId,
      ...(input.user ? { user: input.user } : {}),
    });
    sendJson(res, 200, {
      ok: true,
      viewId: closed.viewId,
      ...(closed.notified ? { bot: botPart(closed.notified) } : {}),
    });
  } catch (err) {
    if (err instanceof StandInError) {
      sendJson(res, err.status, { ok: false, error: err.code, message: err.message });
      return;
    }
    throw err;
  }
}

function botPart(answer: { status: number; body: string; durationMs: number; error?: string }) {
  return {
    status: answer.status,
    body: answer.body,
    durationMs: answer.durationMs,
    ...(answer.error ? { error: answer.error } : {}),
  };
}

/** The user the page shows the workspace as: the one asked for, else the first configured one. */
function viewerOf(store: ConversationStore, as: string | null): string {
  const asked = as ? store.user(as) : undefined;
  if (asked && !asked.isBot) return asked.id;
  return store.users().find((u) => !u.isBot)?.id ?? '';
}

function stateOf(deps: UiDeps, viewer: string): Record<string, unknown> {
  const { store } = deps;
  const bot = deps.actions.bot;
  return {
    team: { id: TEAM_ID, name: TEAM_NAME },
    me: viewer,
    bot: { id: BOT_USER.id, name: BOT_USER.name, ...(bot ? { url: bot.url } : {}) },
    botConnected: bot !== null,
    users: store.users(),
    usergroups: store.usergroups(),
    channels: store.channels(),
    messages: store.messages({ viewer }),
    /** modals open for this person (or anyone's), oldest first: the page shows the newest */
    views: store.openViews(viewer),
  };
}

function visibleEvent(event: StoreEvent, viewer: string): boolean {
  if (event.type === 'message')
    return event.message.ephemeralTo === undefined || event.message.ephemeralTo === viewer;
  if (event.type === 'deleted') return event.ephemeralTo === undefined || event.ephemeralTo === viewer;
  if (event.type === 'view') return viewableBy(event.view, viewer);
  if (event.type === 'view-closed') return viewableBy(event, viewer);
  return true;
}

/** Server-Sent Events of the store's changes that `viewer` may see; the page reconnects by itself. */
function openStream(
  req: IncomingMessage,
  res: ServerResponse,
  store: ConversationStore,
  viewer: string,
): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write(`retry: ${SSE_RETRY_MS}\n: connected as ${viewer}\n\n`);
  const unsubscribe = store.subscribe((event) => {
    if (!visibleEvent(event, viewer)) return;
    const { type, ...data } = event;
    res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  });
  const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
  heartbeat.unref();
  const stop = () => {
    clearInterval(heartbeat);
    unsubscribe();
  };
  req.on('close', stop);
  res.on('close', stop);
}

/** Raster images are served as what they are; anything else only as a download, never rendered by the browser. */
function serveFile(res: ServerResponse, store: ConversationStore, id: string): void {
  const file = store.file(id);
  if (!file?.bytes) {
    sendJson(res, 404, { ok: false, error: 'file_not_found' });
    return;
  }
  const image = /^image\/(png|jpeg|gif|webp)$/.test(file.ref.mimetype);
  const headers: Record<string, string> = {
    'content-type': image ? file.ref.mimetype : 'application/octet-stream',
    'content-length': String(file.bytes.length),
    'x-content-type-options': 'nosniff',
    'content-security-policy': "default-src 'none'",
    'cache-control': 'no-store',
  };
  if (!image)
    headers['content-disposition'] = `attachment; filename="${file.ref.name.replace(/[^\w.-]/g, '_')}"`;
  res.writeHead(200, headers);
  res.end(file.bytes);
}

/** The body, or null when it is larger than MAX_BODY_BYTES. */
function readLimited(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) over = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(over ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}
