import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';

/**
 * A local OpenAI-compatible chat endpoint for tests and the demo: answers `POST /v1/chat/completions` in the OpenAI
 * response shape with whatever content it is told to, and records every request. Loopback only; it never calls out.
 */

/** One request the stand-in received, failed or not. */
export interface LlmRequest {
  /** the JSON-decoded body, or the raw text when it was not JSON */
  body: unknown;
  /** lower-case names; repeated headers joined with ', ' */
  headers: Record<string, string>;
}

export interface LlmStandIn {
  /** base URL ending in `/v1`, e.g. `http://127.0.0.1:8080/v1`; hand it to the app as LLM_BASE_URL */
  url: string;
  /** every chat completion request, in arrival order */
  requests: LlmRequest[];
  /** the assistant message content of every later answer, or a function of the request body producing it */
  reply(content: string | ((body: unknown) => string)): void;
  /** wait this long before every later answer (0 to stop); milliseconds */
  delayMs(ms: number): void;
  /** answer the next request with this HTTP status and an OpenAI-style error body */
  failNext(status: number): void;
  close(): Promise<void>;
}

export const LlmStandInOptions = z.object({
  /** default 0: a free port */
  port: z.number().int().min(0).max(65_535).default(0),
});
export type LlmStandInOptions = z.input<typeof LlmStandInOptions>;

/** what the stand-in answers until told otherwise: a fixed, valid summary */
const DEFAULT_CONTENT = JSON.stringify({
  narrative: 'The stand-in model read the incident timeline and wrote this placeholder narrative.',
  suspected_cause: 'The stand-in model does not analyse anything; this is a placeholder suspected cause.',
});

/** request bodies larger than this are answered 413; bytes (1 MiB) */
const MAX_REQUEST_BYTES = 1024 * 1024;

export async function startLlmStandIn(opts: LlmStandInOptions = {}): Promise<LlmStandIn> {
  const options = LlmStandInOptions.parse(opts);
  const requests: LlmRequest[] = [];
  let content: string | ((body: unknown) => string) = DEFAULT_CONTENT;
  let delay = 0;
  const failures: number[] = [];
  const pendingTimers = new Set<NodeJS.Timeout>();

  const sendJson = (res: ServerResponse, status: number, body: unknown) => {
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/v1/models') {
      sendJson(res, 200, { object: 'list', data: [{ id: 'stand-in', object: 'model', owned_by: 'ai-sre' }] });
      return;
    }
    if (req.method !== 'POST' || path !== '/v1/chat/completions') {
      sendJson(res, 404, openAiError(`no route for ${req.method} ${path}`, 'invalid_request_error'));
      return;
    }
    const raw = await readBody(req);
    if (raw === null) {
      sendJson(res, 413, openAiError('request body too large', 'invalid_request_error'));
      return;
    }
    let body: unknown = raw;
    try {
      body = JSON.parse(raw);
    } catch {
      // recorded as text; a client sending non-JSON is what a test may want to see
    }
    requests.push({ body, headers: flattenHeaders(req) });

    const failStatus = failures.shift();
    const answer = () => {
      if (failStatus !== undefined) {
        sendJson(res, failStatus, openAiError(`stand-in failure ${failStatus}`, 'server_error'));
        return;
      }
      const text = typeof content === 'function' ? content(body) : content;
      sendJson(res, 200, completion(body, text));
    };
    if (delay <= 0) {
      answer();
      return;
    }
    const timer = setTimeout(() => {
      pendingTimers.delete(timer);
      answer();
    }, delay);
    pendingTimers.add(timer);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      sendJson(res, 500, openAiError(err instanceof Error ? err.message : String(err), 'server_error'));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    reply(next) {
      content = next;
    },
    delayMs(ms) {
      delay = Math.max(0, ms);
    },
    failNext(status) {
      failures.push(status);
    },
    async close() {
      for (const timer of pendingTimers) clearTimeout(timer);
      pendingTimers.clear();
      // delayed answers hold their connections open; close() would wait for them
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The OpenAI chat completion shape, with one choice and rough token counts (4 characters a token). */
function completion(body: unknown, text: string) {
  const model = isRecord(body) && typeof body.model === 'string' ? body.model : 'stand-in';
  const promptChars = JSON.stringify(isRecord(body) ? (body.messages ?? '') : '').length;
  const promptTokens = Math.ceil(promptChars / 4);
  const completionTokens = Math.ceil(text.length / 4);
  return {
    id: `chatcmpl-${randomBytes(12).toString('hex')}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    },
  };
}

function openAiError(message: string, type: string) {
  return { error: { message, type, param: null, code: null } };
}

/** The body as UTF-8, or null once it passes MAX_REQUEST_BYTES. */
async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    bytes += buffer.byteLength;
    if (bytes > MAX_REQUEST_BYTES) return null;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function flattenHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
