import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import type { IngestResult } from '../detection/detection-service.js';
import { MetricBatch, MetricSample } from '../detection/metric-sample.js';
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

/** Parses, validates and decodes a JSON body: 415/400 with the field paths when it is not acceptable. */
export function parseJsonBody(text: string, contentType: string | undefined): unknown {
  if (contentType && !/^application\/([a-z.+-]*\+)?json\b/i.test(contentType)) {
    throw new HttpError(
      415,
      'unsupported_media_type',
      `expected Content-Type application/json, got ${contentType}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'malformed_json', `body is not valid JSON: ${(err as Error).message}`);
  }
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
    parse: (body) => MetricBatch.safeParse(body),
    async handle(payload) {
      const items = Array.isArray(payload) ? payload : payload.samples;
      const valid: { index: number; sample: MetricSample }[] = [];
      const invalid: { index: number; reason: string }[] = [];
      items.forEach((item, index) => {
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
  const text = (await readBody(req, deps.maxBodyBytes)).toString('utf8');
  const body = parseJsonBody(text, req.headers['content-type']);
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
