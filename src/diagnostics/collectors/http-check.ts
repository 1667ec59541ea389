import { z } from 'zod';
import type { Collector } from '../collector.js';
import { readBodyCapped } from '../read-body.js';
import {
  escapeRegExp,
  escapeUrlComponent,
  regExpTemplateProblem,
  renderTemplate,
  TemplateError,
} from '../templating.js';

/** bytes of a body read for `bodyMatch`; 256 KiB */
const MAX_BODY_BYTES = 256 * 1024;
/** a check gets the step's timeout minus this margin (at most 10% of it), so a hung URL is recorded, not fatal; ms */
const CHECK_MARGIN_MS = 1_000;
/** failed checks named in the summary */
const SUMMARY_FAILURES = 3;

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Request headers sent as written: valid names, values without CR, LF or NUL (no header injection), and none of the
 * `refused` names (compared case-insensitively), which `error` explains. Shared with the http_request remediation.
 */
export function headersField(refused: ReadonlySet<string>, error: string) {
  return z
    .record(
      z.string().regex(HEADER_NAME, { error: 'expected an HTTP header name' }),
      z
        .string()
        .max(8_192)
        .refine((v) => !/[\r\n\0]/.test(v), { error: 'a header value cannot hold CR, LF or NUL' }),
    )
    .refine((h) => Object.keys(h).every((k) => !refused.has(k.toLowerCase())), { error });
}

/** headers some frameworks honour to turn a GET into another method; a read-only check must not send them */
const METHOD_OVERRIDES = new Set(['x-http-method-override', 'x-http-method', 'x-method-override']);

export const HttpCheckConfig = z
  .strictObject({
    /**
     * URLs to GET (1 to 20). Placeholders are URL-encoded, except `{{service.*}}` values, which come from the targets
     * file and are inserted as written (so `{{service.health_url}}` can be a whole URL). Only http and https.
     */
    urls: z.array(z.string().min(1).max(2_000)).min(1).max(20),
    /** read-only methods only; default GET */
    method: z.enum(['GET', 'HEAD']).default('GET'),
    /** statuses that count as up; default any 2xx or 3xx (redirects are not followed) */
    expectStatus: z.array(z.number().int().min(100).max(599)).min(1).optional(),
    /** a regular expression the body (its first 256 KiB) must match; placeholders match their value literally */
    bodyMatch: z
      .string()
      .min(1)
      .max(1_000)
      .refine((v) => regExpTemplateProblem(v) === null, { error: 'expected a valid regular expression' })
      .optional(),
    /** a check slower than this counts as failed; milliseconds to response headers */
    maxLatencyMs: z.number().int().positive().optional(),
    /** request headers, sent as written */
    headers: headersField(
      METHOD_OVERRIDES,
      'method-override headers would make the check other than read-only',
    ).optional(),
  })
  .superRefine((c, ctx) => {
    if (c.bodyMatch !== undefined && c.method === 'HEAD') {
      ctx.addIssue({
        code: 'custom',
        path: ['bodyMatch'],
        message: 'a HEAD request has no body to match; use GET',
      });
    }
  });
export type HttpCheckConfig = z.infer<typeof HttpCheckConfig>;

/** One URL's outcome as `result.checks` shows it. */
interface CheckView {
  url: string;
  ok: boolean;
  /** HTTP status; null when no answer came */
  status: number | null;
  /** milliseconds to response headers (to the failure, when there was none) */
  latencyMs: number;
  /** null when there is no bodyMatch, or no body was read */
  bodyMatched: boolean | null;
  /** why the check failed; null when ok */
  error: string | null;
}

/** What the summary names for a failed check: a status, "timed out", "refused"... */
interface CheckOutcome {
  view: CheckView;
  reason: string | null;
}

/** A URL that may be called (http or https, no credentials in it), or why not; shared with http_request. */
export function parseHttpUrl(text: string): URL | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `"${text}" is not a valid URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `"${text}" is not an http or https URL`;
  if (url.username || url.password)
    return `"${url.host}${url.pathname}": credentials in a URL are not sent; use headers`;
  return url;
}

/** Labels and annotations come from alerts: they are URL-encoded. Service values come from the targets file. */
function escapeForUrl(value: string, name: string): string {
  return name.startsWith('service.') ? value : escapeUrlComponent(value);
}

function describeFetchError(err: unknown): { error: string; reason: string } {
  const cause = err instanceof Error ? err.cause : undefined;
  const code = cause && typeof cause === 'object' && 'code' in cause ? String(cause.code) : undefined;
  switch (code) {
    case 'ECONNREFUSED':
      return { error: 'connection refused', reason: 'refused' };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { error: 'host not found', reason: 'host not found' };
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return { error: 'connection reset', reason: 'reset' };
  }
  const message = cause instanceof Error ? cause.message : err instanceof Error ? err.message : String(err);
  return { error: message, reason: 'unreachable' };
}

function statusExpected(status: number, expect: number[] | undefined): boolean {
  return expect ? expect.includes(status) : status >= 200 && status <= 399;
}

async function runCheck(
  url: URL,
  config: HttpCheckConfig,
  bodyMatch: RegExp | null,
  stepSignal: AbortSignal,
  checkMs: number,
): Promise<CheckOutcome> {
  const deadline = AbortSignal.timeout(checkMs);
  const signal = AbortSignal.any([stepSignal, deadline]);
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const view: CheckView = {
    url: url.href,
    ok: false,
    status: null,
    latencyMs: 0,
    bodyMatched: null,
    error: null,
  };
  try {
    const res = await fetch(url, {
      method: config.method,
      headers: config.headers ?? {},
      signal,
      // A redirect is an answer (3xx counts as up by default); following it could leave the host the runbook named.
      redirect: 'manual',
    });
    view.latencyMs = elapsed();
    view.status = res.status;
    if (bodyMatch && res.body) {
      view.bodyMatched = bodyMatch.test(await readBodyCapped(res.body, MAX_BODY_BYTES, 'truncate'));
    } else {
      // Frees the connection without downloading the body.
      await res.body?.cancel().catch(() => undefined);
    }
  } catch (err) {
    view.latencyMs = elapsed();
    if (stepSignal.aborted) return { view, reason: null };
    if (deadline.aborted) {
      view.error = `timed out after ${checkMs} ms`;
      return { view, reason: 'timed out' };
    }
    const { error, reason } = describeFetchError(err);
    view.error = error;
    return { view, reason };
  }
  if (view.status !== null && !statusExpected(view.status, config.expectStatus)) {
    const expected = config.expectStatus ? config.expectStatus.join(' or ') : '2xx/3xx';
    view.error = `status ${view.status}, expected ${expected}`;
    return { view, reason: String(view.status) };
  }
  if (view.bodyMatched === false) {
    view.error = `body does not match /${config.bodyMatch}/`;
    return { view, reason: 'body mismatch' };
  }
  if (config.maxLatencyMs !== undefined && view.latencyMs > config.maxLatencyMs) {
    view.error = `took ${view.latencyMs} ms, more than ${config.maxLatencyMs} ms`;
    return { view, reason: `slow ${view.latencyMs} ms` };
  }
  view.ok = true;
  return { view, reason: null };
}

function shortUrl(href: string): string {
  const url = new URL(href);
  const text = `${url.host}${url.pathname === '/' ? '' : url.pathname}`;
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

function summarize(outcomes: CheckOutcome[], maxLatencyMs: number): string {
  const failed = outcomes.filter((o) => !o.view.ok);
  const parts = [`${outcomes.length - failed.length}/${outcomes.length} up`];
  for (const o of failed.slice(0, SUMMARY_FAILURES))
    parts.push(`${shortUrl(o.view.url)} ${o.reason ?? 'failed'}`);
  if (failed.length > SUMMARY_FAILURES) parts.push(`${failed.length - SUMMARY_FAILURES} more failed`);
  parts.push(`slowest ${maxLatencyMs} ms`);
  return parts.join('; ');
}

/**
 * GETs (or HEADs) each URL in parallel. A URL that fails is the measurement, not a collector failure: `value` is the
 * number of failed checks, so `value > 0.0` reads "something is down". Rejects only on a bad URL after rendering, or
 * when the step's signal aborts before the checks' own deadlines.
 */
export const httpCheckCollector: Collector<HttpCheckConfig> = {
  type: 'http_check',
  config: HttpCheckConfig,
  valueType: 'double',
  render(config, vars) {
    const urls = config.urls.map((u, i) => {
      const rendered = renderTemplate(u, vars, escapeForUrl);
      const url = parseHttpUrl(rendered);
      if (typeof url === 'string') throw new TemplateError(`urls[${i}]: ${url} once rendered`);
      return rendered;
    });
    return {
      ...config,
      urls,
      ...(config.bodyMatch !== undefined
        ? { bodyMatch: renderTemplate(config.bodyMatch, vars, escapeRegExp) }
        : {}),
    };
  },
  async collect(config, ctx) {
    const urls = config.urls.map((u, i) => {
      const url = parseHttpUrl(u);
      if (typeof url === 'string') throw new Error(`http_check urls[${i}]: ${url}`);
      return url;
    });
    let bodyMatch: RegExp | null = null;
    if (config.bodyMatch !== undefined) {
      try {
        bodyMatch = new RegExp(config.bodyMatch);
      } catch (err) {
        throw new Error(`http_check bodyMatch is not a valid regular expression: ${(err as Error).message}`);
      }
    }
    const timedOut = () => new Error(`timed out after ${ctx.timeoutMs} ms checking ${urls.length} URLs`);
    if (ctx.signal.aborted) throw timedOut();
    const checkMs = Math.max(1, ctx.timeoutMs - Math.min(CHECK_MARGIN_MS, Math.floor(ctx.timeoutMs / 10)));
    const outcomes = await Promise.all(
      urls.map((url) => runCheck(url, config, bodyMatch, ctx.signal, checkMs)),
    );
    if (ctx.signal.aborted) throw timedOut();

    const failed = outcomes.filter((o) => !o.view.ok).length;
    const maxLatencyMs = Math.max(...outcomes.map((o) => o.view.latencyMs));
    return {
      value: failed,
      result: { checks: outcomes.map((o) => o.view), failed, total: outcomes.length, maxLatencyMs },
      summary: summarize(outcomes, maxLatencyMs),
    };
  },
};
