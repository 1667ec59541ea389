import { z } from 'zod';
import { formatIssues } from '../../config-file.js';
import { AppError } from '../../errors.js';

/**
 * Pager configuration: which pagers exist and the order the fallback chain tries them in. Meant to become the
 * `pagers:` section of oncall.yml (or a file of its own); parse it with {@link parsePagersConfig}.
 */

const RetryFields = {
  /** ms per HTTP request (or Slack call), body included; default 10000 */
  timeoutMs: z.int().min(1).max(120_000).default(10_000),
  /** tries per call, the first included; default 4 */
  maxAttempts: z.int().min(1).max(10).default(4),
  /** ms; first retry waits up to this, doubling (full jitter); default 500 */
  backoffBaseMs: z.int().min(0).default(500),
  /** ms; ceiling on one wait, Retry-After included; default 30000 */
  backoffMaxMs: z.int().min(0).default(30_000),
};

const HttpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

export const PagerdutyPagerConfig = z.strictObject({
  /** Events API base; `/v2/enqueue` is appended. Default https://events.pagerduty.com (EU: events.eu.pagerduty.com) */
  url: HttpUrl.default('https://events.pagerduty.com'),
  /** Events v2 integration keys by team; `default` is used for teams without one */
  routingKeys: z
    .record(z.string().min(1), z.string().min(1, { error: 'expected a routing key' }))
    .refine((keys) => Object.keys(keys).length > 0, { error: 'expected at least one key (e.g. `default`)' }),
  /** the event's `client` */
  client: z.string().min(1).default('ai-sre'),
  /** the event's `client_url` (e.g. the bot's Slack channel or dashboard) */
  clientUrl: HttpUrl.optional(),
  ...RetryFields,
});
export type PagerdutyPagerConfig = z.infer<typeof PagerdutyPagerConfig>;

export const WebhookPagerConfig = z.strictObject({
  url: HttpUrl,
  /** HMAC-SHA256 key shared with the receiver; at least 16 characters */
  secret: z.string().min(16, { error: 'expected a secret of at least 16 characters' }),
  ...RetryFields,
});
export type WebhookPagerConfig = z.infer<typeof WebhookPagerConfig>;

export const SlackPagerConfig = z.strictObject({
  enabled: z.boolean().default(true),
  ...RetryFields,
});
export type SlackPagerConfig = z.infer<typeof SlackPagerConfig>;

export const PAGER_NAMES = ['slack', 'pagerduty', 'webhook'] as const;
export type PagerName = (typeof PAGER_NAMES)[number];

export const PagersConfig = z
  .strictObject({
    pagerduty: PagerdutyPagerConfig.optional(),
    webhook: WebhookPagerConfig.optional(),
    slack: SlackPagerConfig.optional(),
    /** the fallback chain, first tried first; every name must be configured (and slack enabled) */
    order: z.array(z.enum(PAGER_NAMES)).min(1, { error: 'expected at least one pager' }),
  })
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.order.forEach((name, i) => {
      if (seen.has(name)) {
        ctx.addIssue({ code: 'custom', path: ['order', i], message: `${name} is listed twice` });
      }
      seen.add(name);
      const section = c[name];
      if (section === undefined) {
        ctx.addIssue({ code: 'custom', path: ['order', i], message: `${name} has no \`${name}:\` section` });
      } else if (name === 'slack' && c.slack?.enabled === false) {
        ctx.addIssue({
          code: 'custom',
          path: ['order', i],
          message: 'slack is listed but `slack.enabled` is false',
        });
      }
    });
    for (const name of PAGER_NAMES) {
      const section = c[name];
      if (section && section.backoffBaseMs > section.backoffMaxMs) {
        ctx.addIssue({
          code: 'custom',
          path: [name, 'backoffBaseMs'],
          message: `must not exceed backoffMaxMs (${section.backoffMaxMs})`,
        });
      }
    }
  });
export type PagersConfig = z.infer<typeof PagersConfig>;

export class PagersConfigError extends AppError {
  constructor(message: string) {
    super('pagers_invalid', message);
    this.name = 'PagersConfigError';
  }
}

/** Checks pager config (already parsed from YAML/JSON); every problem is one `source: path: message` line. */
export function parsePagersConfig(input: unknown, source: string): PagersConfig {
  const parsed = PagersConfig.safeParse(input ?? {});
  if (!parsed.success) throw new PagersConfigError(formatIssues(source, parsed.error.issues));
  return parsed.data;
}
