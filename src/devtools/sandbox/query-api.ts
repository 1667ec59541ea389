import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ActiveAlert } from './alert-rules.js';
import { formatRfc3339 } from './alert-rules.js';
import { PromQLError } from './promql/errors.js';
import {
  type InstantSample,
  instantQuery,
  MAX_RANGE_POINTS,
  type QueryValue,
  type RangeSeries,
  rangeQuery,
} from './promql/evaluator.js';
import { formatGoFloat, formatSampleValue } from './promql/format.js';
import { type Labels, sortedEntries } from './promql/labels.js';
import { parseDurationMs } from './promql/lexer.js';
import type { SeriesStore } from './tsdb.js';

/** bytes of a POST form body read before refusing it; 1 MiB */
const MAX_FORM_BYTES = 1024 * 1024;

export interface QueryApiOptions {
  /** what /api/v1/alerts lists (an AlertRuleEvaluator); an empty list without it */
  alerts?: { alerts(): ActiveAlert[] } | null;
  /** the clock for a query without `time`; unix milliseconds, default Date.now */
  nowMs?: () => number;
}

/** `[unix seconds, "value"]`, as the Prometheus API writes every sample. */
type ApiSample = [number, string];

/**
 * Answers the part of the Prometheus HTTP API the sandbox plays: `/api/v1/query` and `/api/v1/query_range` (GET, or
 * POST with a form body), `/api/v1/alerts`, `/api/v1/status/buildinfo`, `/-/ready` and `/-/healthy`. Returns false
 * for any other path (the caller serves it); true when the request is (being) answered here.
 */
export function handleQueryApi(
  store: SeriesStore,
  req: IncomingMessage,
  res: ServerResponse,
  opts: QueryApiOptions = {},
): boolean {
  const url = new URL(req.url ?? '/', 'http://sandbox');
  const route = Object.hasOwn(ROUTES, url.pathname) ? ROUTES[url.pathname] : undefined;
  if (!route) return false;
  route(store, req, res, url, opts).catch((err: unknown) => {
    if (res.headersSent) res.destroy();
    // Handlers throw ApiError for bad input; anything else is a bug of ours.
    else if (err instanceof ApiError) sendError(res, err);
    else sendJson(res, 500, { status: 'error', errorType: 'internal', error: errorMessage(err) });
  });
  return true;
}

type Route = (
  store: SeriesStore,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  opts: QueryApiOptions,
) => Promise<void>;

const ROUTES: Record<string, Route> = {
  '/api/v1/query': async (store, req, res, url, opts) => {
    const params = await readParams(req, res, url);
    if (!params) return;
    const now = opts.nowMs?.() ?? Date.now();
    const time = params.get('time');
    const atMs = time === null || time === '' ? now : parseTimeParam('time', time);
    parseOptionalDuration(params, 'timeout');
    const query = params.get('query') ?? '';
    const value = runQuery(() => instantQuery(store, query, atMs));
    sendJson(res, 200, { status: 'success', data: toApiData(value, atMs) });
  },
  '/api/v1/query_range': async (store, req, res, url) => {
    const params = await readParams(req, res, url);
    if (!params) return;
    const startMs = parseTimeParam('start', params.get('start') ?? '');
    const endMs = parseTimeParam('end', params.get('end') ?? '');
    if (endMs < startMs)
      throw badData('invalid parameter "end": end timestamp must not be before start time');
    const stepMs = parseDurationParam('step', params.get('step') ?? '');
    if (stepMs <= 0) {
      throw badData(
        'invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer',
      );
    }
    if ((endMs - startMs) / stepMs > MAX_RANGE_POINTS) {
      throw badData(
        'exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)',
      );
    }
    parseOptionalDuration(params, 'timeout');
    const query = params.get('query') ?? '';
    const series = runQuery(() => rangeQuery(store, query, startMs, endMs, stepMs));
    sendJson(res, 200, {
      status: 'success',
      data: { resultType: 'matrix', result: series.map(toApiSeries) },
    });
  },
  '/api/v1/alerts': async (_store, req, res, _url, opts) => {
    if (!allowMethods(req, res, ['GET'])) return;
    const alerts = (opts.alerts?.alerts() ?? []).map((a) => ({
      labels: sortedObject(a.labels),
      annotations: sortedObject(a.annotations),
      state: a.state,
      activeAt: formatRfc3339(a.activeAtMs),
      // Prometheus writes the value with Go's %e, shortest: "8.5e+01".
      value: formatGoFloat(a.value, 'e', -1),
    }));
    sendJson(res, 200, { status: 'success', data: { alerts } });
  },
  '/api/v1/status/buildinfo': async (_store, req, res) => {
    if (!allowMethods(req, res, ['GET'])) return;
    sendJson(res, 200, {
      status: 'success',
      data: { version: 'sandbox', revision: '', branch: '', buildUser: '', buildDate: '', goVersion: '' },
    });
  },
  '/-/ready': async (_store, req, res) => {
    if (!allowMethods(req, res, ['GET', 'HEAD'])) return;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('Prometheus Server is Ready.\n');
  },
  '/-/healthy': async (_store, req, res) => {
    if (!allowMethods(req, res, ['GET', 'HEAD'])) return;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('Prometheus Server is Healthy.\n');
  },
};

/** A Prometheus API error: `errorType` and the HTTP status that goes with it. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorType: string,
    message: string,
  ) {
    super(message);
  }
}

function badData(message: string): ApiError {
  return new ApiError(400, 'bad_data', message);
}

/** Runs a query, turning PromQL errors into the API's: parse errors name the query parameter, as Prometheus does. */
function runQuery<T>(run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof PromQLError) {
      if (err.errorType === 'bad_data') throw badData(`invalid parameter "query": ${err.message}`);
      throw new ApiError(422, 'execution', err.message);
    }
    throw err;
  }
}

/** The query parameters (GET) or URL plus form body (POST; the body wins, like Go's FormValue); null when answered. */
async function readParams(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<URLSearchParams | null> {
  if (!allowMethods(req, res, ['GET', 'POST'])) return null;
  if (req.method !== 'POST') return url.searchParams;
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  const body = await readBody(req);
  const params = new URLSearchParams(url.searchParams);
  if (type === 'application/x-www-form-urlencoded') {
    for (const [k, v] of new URLSearchParams(body)) params.set(k, v);
  }
  return params;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_FORM_BYTES) {
        reject(badData(`request body is larger than ${MAX_FORM_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function allowMethods(req: IncomingMessage, res: ServerResponse, methods: string[]): boolean {
  if (methods.includes(req.method ?? 'GET')) return true;
  res.writeHead(405, { allow: methods.join(', '), 'content-type': 'text/plain; charset=utf-8' });
  res.end('Method Not Allowed\n');
  return false;
}

const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/;

/** A timestamp parameter: unix seconds (fractions to the millisecond) or RFC 3339 → unix milliseconds. */
export function parseTimeParam(name: string, text: string): number {
  if (FLOAT.test(text)) {
    const seconds = Number(text);
    const whole = Math.trunc(seconds);
    // Prometheus rounds the fraction to milliseconds.
    const ms = whole * 1000 + Math.round((seconds - whole) * 1000);
    if (Number.isSafeInteger(ms)) return ms;
  }
  const m = RFC3339.exec(text);
  if (m) {
    const fraction = (m[3] ?? '').slice(0, 3).padEnd(3, '0');
    const ms = Date.parse(`${m[1]}T${m[2]}.${fraction}${m[4]?.toUpperCase()}`);
    if (!Number.isNaN(ms)) return ms;
  }
  throw badData(`invalid parameter "${name}": cannot parse ${JSON.stringify(text)} to a valid timestamp`);
}

/** A duration parameter: seconds as a float, or a Prometheus duration ("15s", "1m30s") → milliseconds. */
export function parseDurationParam(name: string, text: string): number {
  if (FLOAT.test(text)) return Math.trunc(Number(text) * 1000);
  const ms = parseDurationMs(text);
  if (ms !== null && text !== '') return ms;
  throw badData(`invalid parameter "${name}": cannot parse ${JSON.stringify(text)} to a valid duration`);
}

function parseOptionalDuration(params: URLSearchParams, name: string): void {
  const text = params.get(name);
  if (text !== null && text !== '') parseDurationParam(name, text);
}

function sortedObject(labels: Labels): Record<string, string> {
  return Object.fromEntries(sortedEntries(labels));
}

function sample(ms: number, value: number): ApiSample {
  return [ms / 1000, formatSampleValue(value)];
}

function toApiSeries(series: RangeSeries): { metric: Record<string, string>; values: ApiSample[] } {
  return { metric: sortedObject(series.labels), values: series.points.map((p) => sample(p.t, p.v)) };
}

function toApiData(value: QueryValue, atMs: number): { resultType: string; result: unknown } {
  switch (value.type) {
    case 'scalar':
      return { resultType: 'scalar', result: sample(atMs, value.value) };
    case 'string':
      return { resultType: 'string', result: [atMs / 1000, value.value] };
    case 'vector':
      return {
        resultType: 'vector',
        result: value.samples.map((s: InstantSample) => ({
          metric: sortedObject(s.labels),
          value: sample(atMs, s.value),
        })),
      };
    case 'matrix':
      return { resultType: 'matrix', result: value.series.map(toApiSeries) };
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, err: ApiError): void {
  sendJson(res, err.status, { status: 'error', errorType: err.errorType, error: err.message });
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
