import { z } from 'zod';
import type { ConfigProblem } from '../../diagnostics/collector.js';
import { headersField, parseHttpUrl } from '../../diagnostics/collectors/http-check.js';
import { readBodyCapped } from '../../diagnostics/read-body.js';
import { redactSecrets } from '../../diagnostics/redact.js';
import type { Targets } from '../../diagnostics/targets.js';
import {
  escapeUrlComponent,
  lookupVar,
  placeholdersOf,
  renderDeep,
  renderTemplate,
  TemplateError,
  type TemplateVars,
} from '../../diagnostics/templating.js';
import {
  type ActionExecutor,
  describeIoError,
  excerpt,
  ForbiddenActionError,
  refuseProblems,
  reparseConfig,
} from '../executor.js';

const ACTION = 'http_request';
/**
 * Headers that would change what the allowlist approved: method overrides turn a POST into a DELETE on some
 * frameworks, Host picks another virtual host; the framing headers are fetch's to set.
 */
const REFUSED_HEADERS = new Set([
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
]);
/** a placeholder at the very start of the URL: its value is the base URL, inserted as written */
const LEADING_PLACEHOLDER = /^\{\{\s*([^{}]*?)\s*\}\}/;
/** bytes of the response body read; the rest is not downloaded; 64 KiB */
const MAX_BODY_BYTES = 64 * 1024;
/** characters of the request body shown in a dry run's summary */
const BODY_SUMMARY_CHARS = 200;
const ALLOW_LIST = 'remediation.http.allow';

export const HttpRequestConfig = z.strictObject({
  method: z.enum(['POST', 'PUT', 'PATCH'], {
    error: (issue) => {
      const method = typeof issue.input === 'string' ? issue.input.toUpperCase() : '';
      if (method === 'GET' || method === 'HEAD')
        return `${method} changes nothing: use the http_check diagnostic`;
      if (method === 'DELETE')
        return 'DELETE is forbidden: a remediation never deletes (use POST, PUT or PATCH)';
      return 'expected POST, PUT or PATCH';
    },
  }),
  /**
   * where the request goes; must fall under a prefix of the targets file's `remediation.http.allow`. Placeholders
   * are URL-encoded as one component, except one that begins the URL (`{{service.admin_url}}/admin/db-pool`): that
   * must be a `{{service.*}}` value (from the targets file), is inserted as written and must be an http(s) URL
   */
  url: z.string().min(1).max(2_000),
  /** JSON sent with `content-type: application/json`; placeholders in its strings are filled as written */
  body: z.json().optional(),
  /** request headers, sent as written (no placeholders) and never shown in results */
  headers: headersField(
    REFUSED_HEADERS,
    `these headers may not be set: ${[...REFUSED_HEADERS].join(', ')} (they would change the method or host the allowlist approved)`,
  ).optional(),
  /** statuses that count as success; default any 2xx. Redirects are not followed, so a 3xx never counts */
  expectStatus: z
    .array(
      z
        .number()
        .int()
        .min(100)
        .max(599)
        .refine((s) => s < 300 || s > 399, { error: 'redirects are not followed: a 3xx is never a success' }),
    )
    .min(1)
    .optional(),
});
export type HttpRequestConfig = z.infer<typeof HttpRequestConfig>;

/**
 * The allow entry `url` falls under, compared after normalisation (so `/admin/../x` is `/x`): same origin, and the
 * path equal to the prefix's or below it at a `/` boundary (`/admin` does not cover `/administrator`).
 */
function allowedBy(url: URL, allow: string[]): string | null {
  for (const entry of allow) {
    const prefix = parseHttpUrl(entry);
    if (typeof prefix === 'string' || prefix.origin !== url.origin) continue;
    if (prefix.search || prefix.hash) {
      if (url.href.startsWith(prefix.href)) return entry;
      continue;
    }
    const base = prefix.pathname;
    if (url.pathname === base || url.pathname.startsWith(base.endsWith('/') ? base : `${base}/`))
      return entry;
  }
  return null;
}

/** Alert values go into the URL as one component; a value of `.` or `..` would still be read as a path step. */
function escapeComponent(value: string, name: string): string {
  if (value === '.' || value === '..')
    throw new TemplateError(`{{${name}}} is "${value}", which would move the URL up its path`);
  return escapeUrlComponent(value);
}

function renderUrl(url: string, vars: TemplateVars): string {
  let head = '';
  let rest = url;
  const lead = LEADING_PLACEHOLDER.exec(url);
  if (lead) {
    const name = (lead[1] ?? '').trim();
    if (!name.startsWith('service.')) {
      throw new TemplateError(`url: only a {{service.*}} value may begin the URL, not {{${name}}}`);
    }
    head = lookupVar(vars, name);
    const base = parseHttpUrl(head);
    if (typeof base === 'string') throw new TemplateError(`url: {{${name}}} is ${base}`);
    if (base.search || base.hash)
      throw new TemplateError(`url: {{${name}}} must be a base URL without "?" or "#"`);
    rest = url.slice(lead[0].length);
    if (rest.startsWith('/')) head = head.replace(/\/+$/, '');
  }
  const rendered = head + renderTemplate(rest, vars, escapeComponent);
  const parsed = parseHttpUrl(rendered);
  if (typeof parsed === 'string') throw new TemplateError(`url: ${parsed} once rendered`);
  return rendered;
}

function urlProblems(url: string, allow: string[]): string[] {
  const problems: string[] = [];
  const placeholders = placeholdersOf(url);
  for (const p of placeholders) {
    if (!p.valid)
      problems.push(`placeholder {{${p.name}}} is not one of labels.*, annotations.*, incident.*, service.*`);
  }
  const lead = LEADING_PLACEHOLDER.exec(url);
  if (lead) {
    const name = (lead[1] ?? '').trim();
    if (!name.startsWith('service.')) {
      problems.push(
        `only a {{service.*}} value (from the targets file) may begin the URL, not {{${name}}}: alert values must not choose the host`,
      );
    }
  } else if (placeholders.length > 0) {
    const literal = url.slice(0, url.indexOf('{{'));
    if (!/^https?:\/\/[^/?#]+[/?#]/i.test(literal)) {
      problems.push(
        'placeholders may only follow the host: write scheme and host literally, or begin with {{service.*}}',
      );
    }
  }
  if (allow.length === 0) {
    problems.push(`the targets file's ${ALLOW_LIST} is empty: no URL may be called`);
  } else if (placeholders.length === 0) {
    const parsed = parseHttpUrl(url);
    if (typeof parsed === 'string') problems.push(parsed);
    else if (!allowedBy(parsed, allow)) {
      problems.push(
        `${parsed.href} is not under a prefix of the targets file's ${ALLOW_LIST} (allowed: ${allow.join(', ')})`,
      );
    }
  }
  return problems;
}

/** Every string of a JSON value with its path, for placeholder checks. */
function stringsOf(
  value: unknown,
  path: (string | number)[] = [],
): { path: (string | number)[]; text: string }[] {
  if (typeof value === 'string') return [{ path, text: value }];
  if (Array.isArray(value)) return value.flatMap((v, i) => stringsOf(v, [...path, i]));
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => stringsOf(v, [...path, k]));
  }
  return [];
}

function check(config: HttpRequestConfig, targets: Targets): ConfigProblem[] {
  const problems: ConfigProblem[] = urlProblems(config.url, targets.remediation.http.allow).map(
    (message) => ({
      path: ['url'],
      message,
    }),
  );
  for (const { path, text } of stringsOf(config.body, ['body'])) {
    for (const p of placeholdersOf(text)) {
      if (!p.valid) {
        problems.push({
          path,
          message: `placeholder {{${p.name}}} is not one of labels.*, annotations.*, incident.*, service.*`,
        });
      }
    }
  }
  for (const [name, value] of Object.entries(config.headers ?? {})) {
    if (placeholdersOf(value).length > 0) {
      problems.push({
        path: ['headers', name],
        message: 'headers are sent as written: placeholders are not filled there',
      });
    }
  }
  return problems;
}

/** host and path, for summaries: the query may carry values people need not see */
function shortUrl(url: URL): string {
  return `${url.host}${url.pathname}`;
}

function statusExpected(status: number, expect: number[] | undefined): boolean {
  return expect ? expect.includes(status) : status >= 200 && status <= 299;
}

/**
 * One POST / PUT / PATCH to an allowlisted admin endpoint (open a circuit breaker, grow a pool). The status decides
 * success; the answer's start is kept, secrets masked. Redirects are not followed: the allowlist approved this URL,
 * not where it points.
 */
export const httpRequestExecutor: ActionExecutor<HttpRequestConfig> = {
  action: ACTION,
  config: HttpRequestConfig,
  check,

  render(config, vars) {
    for (const [name, value] of Object.entries(config.headers ?? {})) {
      if (placeholdersOf(value).length > 0)
        throw new TemplateError(`headers.${name}: headers may not contain placeholders`);
    }
    return {
      ...config,
      url: renderUrl(config.url, vars),
      // JSON.stringify quotes whatever lands in a string, so values need no escaping
      ...(config.body !== undefined ? { body: renderDeep(config.body, vars, (value) => value) } : {}),
    };
  },

  describe(config) {
    const url = parseHttpUrl(config.url);
    if (typeof url === 'string') {
      const text = config.url.split(/[?#]/)[0] ?? config.url;
      return {
        target: `http:${text}`,
        blastRadius: `the service behind ${text}`,
        rollback: 'call the opposite endpoint by hand (e.g. close the breaker)',
      };
    }
    return {
      target: `http:${url.origin}${url.pathname}`,
      blastRadius: `the service behind ${url.origin}`,
      rollback: 'call the opposite endpoint by hand (e.g. close the breaker)',
    };
  },

  async execute(raw, ctx) {
    const config = reparseConfig(ACTION, HttpRequestConfig, raw);
    if (placeholdersOf(config.url).length > 0) {
      throw new TemplateError(`${ACTION}: url still has placeholders; render the config before executing`);
    }
    refuseProblems(ACTION, check(config, ctx.targets));
    const url = parseHttpUrl(config.url);
    // check() has refused anything else; this narrows the type
    if (typeof url === 'string') throw new ForbiddenActionError(`${ACTION} refused: url: ${url}`);
    const method = config.method;
    const body = config.body === undefined ? undefined : JSON.stringify(config.body);
    const target = redactSecrets(url.href);

    if (ctx.dryRun) {
      const shownBody =
        body === undefined
          ? ''
          : ` with ${body.length > BODY_SUMMARY_CHARS ? `${body.slice(0, BODY_SUMMARY_CHARS)}…` : body}`;
      return {
        ok: true,
        dryRun: true,
        summary: redactSecrets(`would ${method} ${url.href}${shownBody}`),
        details: { method, url: target, ...(config.body !== undefined ? { body: config.body } : {}) },
      };
    }

    const headers = new Headers(config.headers ?? {});
    if (body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
    const deadline = AbortSignal.timeout(ctx.timeoutMs);
    const signal = AbortSignal.any([ctx.signal, deadline]);
    const started = performance.now();
    let status: number;
    let location: string | null;
    let text: string;
    try {
      const res = await fetch(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        signal,
        redirect: 'manual',
      });
      status = res.status;
      location = res.headers.get('location');
      text = await readBodyCapped(res.body, MAX_BODY_BYTES, 'truncate');
    } catch (err) {
      const what = `${ACTION}: ${method} ${shortUrl(url)}`;
      if (signal.aborted) {
        throw new Error(`${what} timed out after ${ctx.timeoutMs} ms; the service may still have acted`, {
          cause: err,
        });
      }
      throw new Error(`${what}: ${describeIoError(err)}`, { cause: err });
    }
    const durationMs = Math.round(performance.now() - started);
    const ok = statusExpected(status, config.expectStatus);
    const expected = config.expectStatus ? config.expectStatus.join(' or ') : '2xx';
    const redirect = status >= 300 && status <= 399;
    const outcome = ok
      ? `→ ${status}`
      : redirect
        ? `answered ${status} (redirect${location ? ` to ${location}` : ''} not followed), expected ${expected}`
        : `answered ${status}, expected ${expected}`;
    const summary = redactSecrets(`${method} ${shortUrl(url)} ${outcome}`);
    ctx.log.info({ action: ACTION, method, url: target, status }, summary);
    return {
      ok,
      dryRun: false,
      summary,
      details: {
        method,
        url: target,
        status,
        durationMs,
        ...(location !== null ? { location: redactSecrets(location) } : {}),
      },
      output: excerpt(redactSecrets(text)),
    };
  },
};
