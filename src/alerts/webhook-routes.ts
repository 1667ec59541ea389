import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import type { IngestResult } from '../detection/detection-service.js';
import { MetricBatch, MetricSample, parseCommonSample } from '../detection/metric-sample.js';
import type { Logger } from '../logger.js';
import type { DeployEventRecord } from '../store/deploy-events-repo.js';
import type { NormalizedAlert } from './normalized-alert.js';
import { AlertmanagerPayload, normalizeAlertmanager } from './sources/alertmanager.js';
import { normalizeDeploys, parseDeployPayload } from './sources/deploy.js';
import { normalizeGeneric, parseGenericPayload } from './sources/generic.js';
import { GrafanaPayload, normalizeGrafana } from './sources/grafana.js';

/** One alert source: how its body is parsed and turned into alerts. */
export interface AlertSource {
  name: string;
  path: string;
  parse(body: unknown): z.ZodSafeParseResult<unknown>;
  normalize(payload: never): NormalizedAlert[];
}

function source<T>(
  name: string,
  parse: (body: unknown) => z.ZodSafeParseResult<T>,
  normalize: (p: T) => NormalizedAlert[],
) {
  return { name, path: `/webhooks/${name}`, parse, normalize } as AlertSource & {
    parse(body: unknown): z.ZodSafeParseResult<T>;
    normalize(p: T): NormalizedAlert[];
  };
}

export const ALERT_SOURCES = [
  source(
    'alertmanager',
    (b) => AlertmanagerPayload.safeParse(b),
    (p) => normalizeAlertmanager(p),
  ),
  source('grafana', (b) => GrafanaPayload.safeParse(b), normalizeGrafana),
  source('generic', parseGenericPayload, (p) => normalizeGeneric(p)),
];

/** What the intake does with a valid delivery; it must store the delivery before resolving. */
export type AcceptAlerts = (delivery: {
  source: string;
  /** the body exactly as received (valid JSON), stored as the raw payload */
  payloadJson: string;
  alerts: NormalizedAlert[];
}) => Promise<{
  deliveryId: number;
  opened: number[];
  duplicates: number;
}>;

/** What the deploy intake does with a valid delivery; it must store the events before resolving. */
export type AcceptDeploys = (delivery: {
  /** the body exactly as received (valid JSON) */
  payloadJson: string;
  events: DeployEventRecord[];
}) => Promise<{
  /** the new rows, in input order */
  ids: number[];
  /** events already stored under the same (service, id) */
  duplicates: number;
}>;

export interface HttpRoute {
  method: 'GET' | 'POST';
  path: string;
  handler(req: IncomingMessage, res: ServerResponse): void;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: string[] = [],
  ) {
    super(message);
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Reads the whole body, refusing more than `maxBytes` (413) without buffering the excess. */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      req.resume();
      reject(
        new HttpError(
          413,
          'payload_too_large',
          `body of ${declared} bytes exceeds the limit of ${maxBytes} bytes`,
        ),
      );
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > maxBytes) {
        done = true;
        req.resume();
        reject(new HttpError(413, 'payload_too_large', `body exceeds the limit of ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks, size));
    });
    req.on('error', (err) => {
      if (!done) reject(err);
      done = true;
    });
  });
}

/** Constant-time check of `Authorization: Bearer <token>`. */
export function checkBearer(req: IncomingMessage, expected: string): void {
  const header = req.headers.authorization;
  if (!header) throw new HttpError(401, 'unauthorized', 'missing Authorization: Bearer token');
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  const given = Buffer.from(match?.[1] ?? '');
  const want = Buffer.from(expected);
  if (given.length !== want.length || !timingSafeEqual(given, want)) {
    throw new HttpError(401, 'unauthorized', 'wrong bearer token');
  }
}

/** `alerts.0.labels.severity: expected string` — field paths as senders can find them in their payload. */
export function describeIssues(issues: z.core.$ZodIssue[]): string[] {
  return issues
    .slice(0, 20)
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(body)'}: ${issue.message}`);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** JSON is UTF-8 (RFC 8259): other bytes are refused (400) rather than silently turned into U+FFFD. */
export function decodeUtf8Body(body: Buffer): string {
  try {
    return strictUtf8.decode(body);
  } catch {
    throw new HttpError(400, 'invalid_encoding', 'body is not valid UTF-8 text');
  }
}

/**
 * Bounds of what a body may hold, so everything accepted can be stored as jsonb: Postgres refuses lone UTF-16
 * surrogates (`"\ud800"`), numbers past its numeric range, and nesting past its stack depth. No sender needs more.
 */
export const JSON_LIMITS = { maxDepth: 64, maxNumberChars: 100, maxExponent: 1000 } as const;

/** The first thing in valid JSON text that Postgres could not store, as a message with its position; else null. */
export function unstorableJsonProblem(text: string): string | null {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x22) inString = false;
      else if (c === 0x5c) {
        if (text[i + 1] === 'u') {
          const unit = Number.parseInt(text.slice(i + 2, i + 6), 16);
          if (unit >= 0xd800 && unit <= 0xdbff && /^\\u[dD][c-fC-F]/.test(text.slice(i + 6, i + 12))) i += 6;
          else if (unit >= 0xd800 && unit <= 0xdfff)
            return `unpaired UTF-16 surrogate \\u${text.slice(i + 2, i + 6)} at position ${i}`;
          i += 5;
        } else i += 1;
      } else if (c >= 0xd800 && c <= 0xdfff) {
        const next = text.charCodeAt(i + 1);
        if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff))
          return `unpaired UTF-16 surrogate at position ${i}`;
        i += 1;
      }
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > JSON_LIMITS.maxDepth)
        return `nesting deeper than ${JSON_LIMITS.maxDepth} levels at position ${i}`;
    } else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      const number = /^-?[0-9][0-9.eE+-]*/.exec(text.slice(i, i + JSON_LIMITS.maxNumberChars + 2))?.[0] ?? '';
      const exponent = Math.abs(Number(/[eE]([+-]?\d+)$/.exec(number)?.[1] ?? 0));
      if (number.length > JSON_LIMITS.maxNumberChars || exponent > JSON_LIMITS.maxExponent)
        return `number at position ${i} is too large or too precise (at most ${JSON_LIMITS.maxNumberChars} characters, exponent within ±${JSON_LIMITS.maxExponent})`;
      i += number.length - 1;
    }
  }
  return null;
}

/** Parses, validates and decodes a JSON body: 415/400 with the field paths when it is not acceptable. */
export function parseJsonBody(
  text: string,
  contentType: string | undefined,
  options: { storable: boolean } = { storable: true },
): unknown {
  if (contentType && !/^application\/([a-z.+-]*\+)?json\b/i.test(contentType)) {
    throw new HttpError(
      415,
      'unsupported_media_type',
      `expected Content-Type application/json, got ${contentType}`,
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'malformed_json', `body is not valid JSON: ${(err as Error).message}`);
  }
  const problem = options.storable ? unstorableJsonProblem(text) : null;
  if (problem) throw new HttpError(400, 'unstorable_payload', `body cannot be stored: ${problem}`);
  return body;
}

/** What the detection module does with valid metric samples (each with its index in the request). */
export type AcceptMetrics = (samples: { index: number; sample: MetricSample }[]) => Promise<IngestResult>;

export interface WebhookRouteDeps {
  webhookToken: string;
  maxBodyBytes: number;
  accept: AcceptAlerts;
  acceptDeploys: AcceptDeploys;
  acceptMetrics: AcceptMetrics;
  log: Logger;
  /** counts accepted alerts per source */
  onAccepted?(source: string, alerts: number): void;
  /** maps an error thrown by `accept` or `acceptDeploys` to an HTTP error (503 when the store is down) */
  classifyError(err: unknown): HttpError;
}

/** One POST route under /webhooks/: how its valid body is parsed, and what stores it and makes the 202 answer. */
interface WebhookEndpoint<T> {
  name: string;
  path: string;
  parse(body: unknown): z.ZodSafeParseResult<T>;
  /** stores the delivery (`payloadJson` is the body as received) and returns the answer's body */
  handle(payload: T, payloadJson: string): Promise<unknown>;
  /**
   * the body as received is stored (default): the whole text must be storable as jsonb. Metric batches are not
   * stored; each sample's own schema keeps what could reach Postgres storable, so one bad sample is refused alone.
   */
  storesBody?: boolean;
}

/**
 * POST /webhooks/<source> for every alert source, and /webhooks/deploy: authenticate, read, validate, store, then
 * answer. Nothing is answered 2xx before it is stored.
 */
export function buildWebhookRoutes(deps: WebhookRouteDeps): HttpRoute[] {
  const alertRoutes = ALERT_SOURCES.map((src) =>
    webhookRoute(deps, {
      name: src.name,
      path: src.path,
      parse: (body) => src.parse(body),
      async handle(payload, payloadJson) {
        const alerts = src.normalize(payload as never);
        const result = await deps.accept({ source: src.name, payloadJson, alerts });
        deps.onAccepted?.(src.name, alerts.length);
        return {
          status: 'accepted',
          delivery: result.deliveryId,
          alerts: alerts.length,
          opened: result.opened,
          duplicates: result.duplicates,
        };
      },
    }),
  );
  // Deploy events are context for diagnostics and rollbacks, not signals: they are stored, never open incidents.
  const deployRoute = webhookRoute(deps, {
    name: 'deploy',
    path: '/webhooks/deploy',
    parse: parseDeployPayload,
    async handle(payload, payloadJson) {
      const result = await deps.acceptDeploys({ payloadJson, events: normalizeDeploys(payload) });
      return { stored: result.ids.length, duplicates: result.duplicates, ids: result.ids };
    },
  });
  // Metric samples feed the anomaly detectors; each sample stands alone, so a bad one is refused with its reason and
  // the good ones of the same body are kept.
  const metricsRoute = webhookRoute(deps, {
    name: 'metrics',
    path: '/ingest/metrics',
    storesBody: false,
    parse: (body) => MetricBatch.safeParse(body),
    async handle(payload) {
      const items = Array.isArray(payload) ? payload : payload.samples;
      const valid: { index: number; sample: MetricSample }[] = [];
      const invalid: { index: number; reason: string }[] = [];
      items.forEach((item, index) => {
        const common = parseCommonSample(item);
        if (common) {
          valid.push({ index, sample: common });
          return;
        }
        const parsed = MetricSample.safeParse(item);
        if (parsed.success) valid.push({ index, sample: parsed.data });
        else invalid.push({ index, reason: describeIssues(parsed.error.issues).join('; ') });
      });
      if (valid.length === 0) {
        throw new HttpError(
          400,
          'invalid_payload',
          'no valid sample',
          invalid
            .slice(0, 20)
            .map((r) => `${Array.isArray(payload) ? '' : 'samples.'}${r.index}: ${r.reason}`),
        );
      }
      const result = await deps.acceptMetrics(valid);
      const rejected = [...invalid, ...result.rejected].sort((a, b) => a.index - b.index);
      return { accepted: result.accepted, rejected, anomalies: result.anomalies };
    },
  });
  return [...alertRoutes, deployRoute, metricsRoute];
}

function webhookRoute<T>(deps: WebhookRouteDeps, endpoint: WebhookEndpoint<T>): HttpRoute {
  return {
    method: 'POST',
    path: endpoint.path,
    handler(req, res) {
      receiveWebhook(endpoint, deps, req)
        .then((body) => sendJson(res, 202, body))
        .catch((err: unknown) => {
          const httpErr = err instanceof HttpError ? err : deps.classifyError(err);
          if (httpErr.status >= 500) deps.log.error({ err, source: endpoint.name }, 'webhook failed');
          sendJson(
            res,
            httpErr.status,
            {
              error: httpErr.code,
              message: httpErr.message,
              ...(httpErr.details.length ? { issues: httpErr.details } : {}),
            },
            httpErr.status === 503 ? { 'retry-after': '5' } : {},
          );
        });
    },
  };
}

async function receiveWebhook<T>(endpoint: WebhookEndpoint<T>, deps: WebhookRouteDeps, req: IncomingMessage) {
  checkBearer(req, deps.webhookToken);
  const text = decodeUtf8Body(await readBody(req, deps.maxBodyBytes));
  const body = parseJsonBody(text, req.headers['content-type'], { storable: endpoint.storesBody ?? true });
  const parsed = endpoint.parse(body);
  if (!parsed.success) {
    const details = describeIssues(parsed.error.issues);
    throw new HttpError(
      400,
      'invalid_payload',
      `invalid ${endpoint.name} payload: ${details[0] ?? 'unknown problem'}`,
      details,
    );
  }
  return endpoint.handle(parsed.data, text);
}
