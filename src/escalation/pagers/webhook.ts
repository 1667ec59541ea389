import { createHmac, timingSafeEqual } from 'node:crypto';
import { truncateText } from '../../slack/blocks/limits.js';
import type { Page, PageAction, PageRef, Pager, PagerOutcome } from './pager.js';
import { redactPage } from './pager.js';
import type { WebhookPagerConfig } from './pagers.schema.js';
import {
  isRetryableStatus,
  parseRetryAfterMs,
  postJsonOnce,
  type RetryClock,
  runWithRetry,
} from './retry.js';

/**
 * A generic signed webhook: POSTs `{event, incident, details}` as JSON to a configured URL. The receiver checks
 * `X-AI-SRE-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` and the age of `X-AI-SRE-Timestamp` (unix
 * seconds) with {@link verifyWebhookSignature}; signing the timestamp with the body stops replays of old pages.
 * Any 2xx is success; 429 and 5xx are retried, other statuses are not.
 */

export const SIGNATURE_HEADER = 'x-ai-sre-signature';
export const TIMESTAMP_HEADER = 'x-ai-sre-timestamp';

/** The JSON body the webhook receives. `incident` holds only id and dedup key on acknowledge/resolve. */
export interface WebhookPageBody {
  event: PageAction;
  incident: {
    id: number;
    dedupKey: string;
    summary?: string;
    severity?: Page['severity'];
    source?: string;
    component?: string;
    group?: string;
    class?: string;
    startedAt?: string;
    target: Page['target'];
    links?: Page['links'];
  };
  details?: Record<string, unknown>;
  /** ISO time the bot sent it */
  sentAt: string;
}

/** `sha256=<hex>` for a body sent at `timestamp` (unix seconds, as sent in the header). */
export function signWebhookBody(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export interface VerifyWebhookInput {
  secret: string;
  /** the raw body, exactly as received (before any JSON parsing) */
  body: string;
  signature: string | null | undefined;
  timestamp: string | null | undefined;
  /** seconds a signature stays valid either side of now; default 300 */
  toleranceSec?: number;
  now?: Date;
}

/**
 * For receivers: whether the signature matches the body and timestamp, and the timestamp is within `toleranceSec` of
 * now. Compares in constant time.
 */
export function verifyWebhookSignature(input: VerifyWebhookInput): boolean {
  const { secret, body, signature, timestamp } = input;
  if (!signature || !timestamp || !/^\d+$/.test(timestamp)) return false;
  const nowSec = Math.floor((input.now ?? new Date()).getTime() / 1000);
  if (Math.abs(nowSec - Number(timestamp)) > (input.toleranceSec ?? 300)) return false;
  const expected = Buffer.from(signWebhookBody(secret, timestamp, body));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

export interface WebhookPagerDeps extends RetryClock {
  fetch?: typeof fetch;
}

/** The webhook pager; `name` is 'webhook'. */
export function createWebhookPager(config: WebhookPagerConfig, deps: WebhookPagerDeps = {}): Pager {
  const fetchFn = deps.fetch ?? fetch;
  const now = deps.now ?? (() => new Date());

  const send = (payload: WebhookPageBody): Promise<PagerOutcome> => {
    const body = JSON.stringify(payload);
    return runWithRetry(
      config,
      () => {
        // signed per try: a retry minutes later must not be rejected as stale
        const timestamp = String(Math.floor(now().getTime() / 1000));
        const headers = {
          [TIMESTAMP_HEADER]: timestamp,
          [SIGNATURE_HEADER]: signWebhookBody(config.secret, timestamp, body),
        };
        return postJsonOnce(fetchFn, config.url, body, headers, config.timeoutMs, (res, text) => {
          if (res.ok) return { kind: 'ok', status: res.status, externalRef: payload.incident.dedupKey };
          const error = `webhook ${res.status}: ${truncateText(text.trim(), 200) || 'no body'}`;
          if (!isRetryableStatus(res.status)) return { kind: 'fail', status: res.status, error };
          return {
            kind: 'retry',
            status: res.status,
            error,
            retryAfterMs: parseRetryAfterMs(res.headers.get('retry-after'), now()),
          };
        });
      },
      deps,
    );
  };

  const update = (event: 'acknowledge' | 'resolve', ref: PageRef) =>
    send({
      event,
      incident: { id: ref.incidentId, dedupKey: ref.dedupKey, target: ref.target },
      sentAt: now().toISOString(),
    });

  return {
    name: 'webhook',
    trigger(original) {
      const page = redactPage(original);
      return send({
        event: 'trigger',
        incident: {
          id: page.incidentId,
          dedupKey: page.dedupKey,
          summary: page.summary,
          severity: page.severity,
          source: page.source,
          component: page.component,
          group: page.group,
          class: page.class,
          startedAt: page.timestamp?.toISOString(),
          target: page.target,
          links: page.links,
        },
        details: page.details,
        sentAt: now().toISOString(),
      });
    },
    acknowledge: (ref) => update('acknowledge', ref),
    resolve: (ref) => update('resolve', ref),
  };
}
