import { Agent, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { z } from 'zod';

/** largest request body the sandbox reads; bytes */
const MAX_BODY_BYTES = 64 * 1024;

/** A request body that is too large or not JSON; answered 400. */
export class BadRequestError extends Error {
  constructor(
    message: string,
    readonly issues: { path: string; message: string }[] = [],
  ) {
    super(message);
    this.name = 'BadRequestError';
  }
}

/** The raw body as text; rejects past MAX_BODY_BYTES. */
export function readText(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BadRequestError(`body: larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The body parsed as JSON; an empty body is `undefined`, anything not JSON a BadRequestError. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = await readText(req);
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new BadRequestError('body: not valid JSON');
  }
}

/** `schema` applied to `body` (an empty body counts as `{}`); a failure names every bad field's path. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const parsed = schema.safeParse(body ?? {});
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => ({
    path: i.path.length > 0 ? i.path.join('.') : 'body',
    message: i.message,
  }));
  throw new BadRequestError(issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, contentType: string, text: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** What a call to a peer got: its status and JSON body, or status 0 when it timed out or could not connect. */
export interface PeerAnswer {
  status: number;
  body: unknown;
  /** why the call failed without an answer ("timeout after 1000 ms", "ECONNREFUSED"); null when answered */
  error: string | null;
}

/** Keep-alive connections between the simulated services, so traffic does not churn sockets. */
export function createPeerAgent(): Agent {
  return new Agent({ keepAlive: true, maxSockets: 64 });
}

/**
 * A JSON POST (or GET when `body` is undefined) under a deadline (milliseconds): an outage shows up as an error
 * (status 0) after `timeoutMs`, never as a hang.
 */
export function callJson(
  agent: Agent,
  url: string,
  body: unknown,
  timeoutMs: number,
  headers: Record<string, string> = {},
): Promise<PeerAnswer> {
  return new Promise((resolve) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let settled = false;
    const done = (answer: PeerAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(answer);
    };
    const req = request(
      url,
      {
        method: payload === undefined ? 'GET' : 'POST',
        agent,
        headers: {
          accept: 'application/json',
          ...(payload !== undefined
            ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }
            : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text === '' ? null : JSON.parse(text);
          } catch {
            // a non-JSON answer is kept as text
          }
          done({ status: res.statusCode ?? 0, body: parsed, error: null });
        });
        res.on('error', (err) => done({ status: 0, body: null, error: err.message }));
      },
    );
    const timer = setTimeout(() => {
      done({ status: 0, body: null, error: `timeout after ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) =>
      done({ status: 0, body: null, error: err.code ?? err.message }),
    );
    req.end(payload);
  });
}
