import { truncateText } from '../../slack/blocks/limits.js';
import type { Page, PageAction, PageRef, Pager, PagerOutcome, PageSeverity } from './pager.js';
import { redactPage, skippedOutcome } from './pager.js';
import type { PagerdutyPagerConfig } from './pagers.schema.js';
import {
  isRetryableStatus,
  parseRetryAfterMs,
  postJsonOnce,
  type RetryClock,
  runWithRetry,
  type TryResult,
} from './retry.js';

/**
 * PagerDuty Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/overview): one `POST /v2/enqueue` per
 * trigger, acknowledge or resolve, grouped into one PagerDuty incident by `dedup_key`. PagerDuty answers 202 on
 * success; 400 means the event is malformed (never retried), 429 and 5xx are retried.
 */

/** PagerDuty rejects a summary longer than this (characters). */
export const PAGERDUTY_SUMMARY_MAX = 1024;

const SEVERITY: Record<PageSeverity, 'critical' | 'error' | 'warning' | 'info'> = {
  critical: 'critical',
  high: 'error',
  warning: 'warning',
  info: 'info',
};

/** The body of an Events v2 trigger, as PagerDuty documents it. */
export interface PagerdutyTriggerEvent {
  routing_key: string;
  event_action: 'trigger';
  dedup_key: string;
  payload: {
    summary: string;
    source: string;
    severity: 'critical' | 'error' | 'warning' | 'info';
    timestamp: string;
    component?: string;
    group?: string;
    class?: string;
    custom_details: Record<string, unknown>;
  };
  links: { href: string; text?: string }[];
  client: string;
  client_url?: string;
}

/** The body of an Events v2 acknowledge or resolve: only the key and dedup key. */
export interface PagerdutyUpdateEvent {
  routing_key: string;
  event_action: 'acknowledge' | 'resolve';
  dedup_key: string;
}

/** Builds the trigger body from an already redacted page. */
export function buildTriggerEvent(
  page: Page,
  routingKey: string,
  config: Pick<PagerdutyPagerConfig, 'client' | 'clientUrl'>,
  now: Date = new Date(),
): PagerdutyTriggerEvent {
  const customDetails: Record<string, unknown> = { ...page.details, incident_id: page.incidentId };
  if (page.target.pagerdutyUser) customDetails.oncall_user = page.target.pagerdutyUser;
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: page.dedupKey,
    payload: {
      summary: truncateText(page.summary, PAGERDUTY_SUMMARY_MAX),
      source: page.source,
      severity: SEVERITY[page.severity],
      timestamp: (page.timestamp ?? now).toISOString(),
      ...(page.component ? { component: page.component } : {}),
      ...(page.group ? { group: page.group } : {}),
      ...(page.class ? { class: page.class } : {}),
      custom_details: customDetails,
    },
    links: page.links.map((l) => (l.text === undefined ? { href: l.href } : { href: l.href, text: l.text })),
    client: config.client,
    ...(config.clientUrl ? { client_url: config.clientUrl } : {}),
  };
}

/** PagerDuty's error body (`{status, message, errors[]}`) as one line; the raw text (cut) when it is not JSON. */
function describeError(status: number, text: string): string {
  try {
    const body = JSON.parse(text) as { message?: unknown; errors?: unknown };
    const message = typeof body.message === 'string' ? body.message : '';
    const errors = Array.isArray(body.errors) ? body.errors.filter((e) => typeof e === 'string') : [];
    if (message || errors.length > 0) {
      return `PagerDuty ${status}: ${message}${errors.length > 0 ? ` (${errors.join('; ')})` : ''}`.trim();
    }
  } catch {
    // not JSON: fall through
  }
  return `PagerDuty ${status}: ${truncateText(text.trim(), 200) || 'no body'}`;
}

function judge(res: Response, text: string, now: Date): TryResult {
  if (res.status === 202 || (res.status >= 200 && res.status < 300)) {
    let dedupKey: string | undefined;
    try {
      const body = JSON.parse(text) as { dedup_key?: unknown };
      if (typeof body.dedup_key === 'string') dedupKey = body.dedup_key;
    } catch {
      // a 2xx without a readable body still means accepted
    }
    return { kind: 'ok', status: res.status, externalRef: dedupKey };
  }
  const error = describeError(res.status, text);
  if (!isRetryableStatus(res.status)) return { kind: 'fail', status: res.status, error };
  const retryAfter = res.headers.get('retry-after');
  return { kind: 'retry', status: res.status, error, retryAfterMs: parseRetryAfterMs(retryAfter, now) };
}

export interface PagerdutyPagerDeps extends RetryClock {
  /** default global fetch */
  fetch?: typeof fetch;
}

/** The PagerDuty pager: routing key from the target, else the target team's key, else `routingKeys.default`. */
export function createPagerdutyPager(config: PagerdutyPagerConfig, deps: PagerdutyPagerDeps = {}): Pager {
  const fetchFn = deps.fetch ?? fetch;
  const now = deps.now ?? (() => new Date());
  const endpoint = `${config.url.replace(/\/+$/, '')}/v2/enqueue`;

  const routingKeyFor = (ref: PageRef): string | undefined =>
    ref.target.routingKey ??
    (ref.target.team === undefined ? undefined : config.routingKeys[ref.target.team]) ??
    config.routingKeys.default;

  const send = (event: PagerdutyTriggerEvent | PagerdutyUpdateEvent): Promise<PagerOutcome> => {
    const body = JSON.stringify(event);
    return runWithRetry(
      config,
      () =>
        postJsonOnce(fetchFn, endpoint, body, {}, config.timeoutMs, (res, text) => judge(res, text, now())),
      deps,
    );
  };

  const update = (action: Exclude<PageAction, 'trigger'>, ref: PageRef): Promise<PagerOutcome> => {
    const routingKey = routingKeyFor(ref);
    if (!routingKey) return Promise.resolve(skippedOutcome(noKey(ref), now()));
    return send({ routing_key: routingKey, event_action: action, dedup_key: ref.dedupKey });
  };

  return {
    name: 'pagerduty',
    async trigger(page) {
      const routingKey = routingKeyFor(page);
      if (!routingKey) return skippedOutcome(noKey(page), now());
      return send(buildTriggerEvent(redactPage(page), routingKey, config, now()));
    },
    acknowledge: (ref) => update('acknowledge', ref),
    resolve: (ref) => update('resolve', ref),
  };
}

function noKey(ref: PageRef): string {
  return `no PagerDuty routing key for team ${ref.target.team ?? '(none)'} and no default`;
}
