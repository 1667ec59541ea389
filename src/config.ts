import { z } from 'zod';

const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'expected true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const emptyAsUndefined = (v: unknown) => (v === '' ? undefined : v);

const url = (protocols: string[]) =>
  z.string().refine(
    (v) => {
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    { error: `expected a URL (${protocols.join(' or ')})` },
  );

const intInRange = (min: number, max: number) =>
  z.coerce
    .number({ error: 'expected an integer' })
    .int({ error: 'expected an integer' })
    .min(min, { error: `expected an integer >= ${min}` })
    .max(max, { error: `expected an integer <= ${max}` });

/** Every environment variable ai-sre reads. `.env.example` documents each one. */
const EnvShape = z.object({
  NODE_ENV: z.preprocess(
    emptyAsUndefined,
    z.enum(['development', 'production', 'test']).default('development'),
  ),
  DATABASE_URL: z.preprocess(
    emptyAsUndefined,
    url(['postgres:', 'postgresql:']).default('postgres://postgres@127.0.0.1:5432/ai_sre'),
  ),
  REDIS_URL: z.preprocess(emptyAsUndefined, url(['redis:', 'rediss:']).default('redis://127.0.0.1:6379')),
  /** prefix of every BullMQ key, so several deployments (or tests) can share one Redis */
  QUEUE_PREFIX: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, { error: 'expected 1-64 characters of A-Z a-z 0-9 _ . : -' })
      .default('ai-sre'),
  ),
  HOST: z.preprocess(emptyAsUndefined, z.string().min(1).default('0.0.0.0')),
  PORT: z.preprocess(emptyAsUndefined, intInRange(0, 65535).default(3000)),
  /** public base URL of this bot, used for links in Slack messages */
  PUBLIC_URL: z.preprocess(emptyAsUndefined, url(['http:', 'https:']).optional()),
  SLACK_BOT_TOKEN: z.preprocess(
    emptyAsUndefined,
    z.string().startsWith('xoxb-', { error: 'expected a bot token starting with xoxb-' }).optional(),
  ),
  SLACK_SIGNING_SECRET: z.preprocess(
    emptyAsUndefined,
    z.string().min(8, { error: 'expected the app signing secret' }).optional(),
  ),
  SLACK_APP_TOKEN: z.preprocess(
    emptyAsUndefined,
    z.string().startsWith('xapp-', { error: 'expected an app-level token starting with xapp-' }).optional(),
  ),
  SLACK_API_URL: z.preprocess(
    emptyAsUndefined,
    url(['http:', 'https:'])
      .transform((v) => (v.endsWith('/') ? v : `${v}/`))
      .default('https://slack.com/api/'),
  ),
  /** base delay of the exponential back-off of failed Slack posts; milliseconds */
  SLACK_RETRY_BASE_MS: z.preprocess(emptyAsUndefined, intInRange(10, 600_000).default(2_000)),
  /** attempts before a Slack post is given up (the incident is unaffected) */
  SLACK_RETRY_ATTEMPTS: z.preprocess(emptyAsUndefined, intInRange(1, 100).default(12)),
  /** changes to one incident within this window become one card edit and one thread digest; 0 = sync at once; milliseconds */
  SLACK_SYNC_DEBOUNCE_MS: z.preprocess(emptyAsUndefined, intInRange(0, 60_000).default(5_000)),
  /** YAML file routing services to Slack channels */
  ROUTING_FILE: z.preprocess(emptyAsUndefined, z.string().min(1).default('./config/routing.yml')),
  WEBHOOK_TOKEN: z.string({ error: 'expected the bearer token senders use for /webhooks/*' }).min(16, {
    error: 'expected at least 16 characters',
  }),
  /** largest accepted webhook body; bytes */
  WEBHOOK_MAX_BYTES: z.preprocess(emptyAsUndefined, intInRange(1024, 64 * 1024 * 1024).default(1024 * 1024)),
  /**
   * concurrent intake transactions per process; deliveries arriving meanwhile are written together in the next one
   * (group commit). 2 measured best on 2 cores: fewer commits and lock waits than more, no idle core.
   */
  INTAKE_CONCURRENCY: z.preprocess(emptyAsUndefined, intInRange(1, 64).default(2)),
  /** most deliveries per intake transaction */
  INTAKE_BATCH_MAX: z.preprocess(emptyAsUndefined, intInRange(1, 1000).default(32)),
  /** alerts of one service within this window join the open incident instead of opening another; seconds */
  INCIDENT_GROUP_WINDOW_SECONDS: z.preprocess(emptyAsUndefined, intInRange(0, 86_400).default(900)),
  RUNBOOKS_DIR: z.preprocess(emptyAsUndefined, z.string().min(1).default('./runbooks')),
  /** what diagnostics may reach (databases, Redis, shell allowlist, log files, per-service values); YAML */
  TARGETS_FILE: z.preprocess(emptyAsUndefined, z.string().min(1).default('./config/targets.yml')),
  /** teams, rotations, overrides, service ownership and escalation policies (YAML; missing = no on-call known) */
  ONCALL_FILE: z.preprocess(emptyAsUndefined, z.string().min(1).default('./config/oncall.yml')),
  /**
   * the pagers' fallback chain, first tried first: slack, pagerduty, webhook (comma-separated). Default: slack when
   * SLACK_BOT_TOKEN is set, then pagerduty and webhook when configured
   */
  PAGERS: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^\s*(slack|pagerduty|webhook)(\s*,\s*(slack|pagerduty|webhook))*\s*$/, {
        error: 'expected a comma-separated list of slack, pagerduty, webhook',
      })
      .transform((v) => v.split(',').map((p) => p.trim()) as ('slack' | 'pagerduty' | 'webhook')[])
      .optional(),
  ),
  /** PagerDuty Events API v2 integration key used for teams without their own */
  PAGERDUTY_ROUTING_KEY: z.preprocess(emptyAsUndefined, z.string().min(1).optional()),
  /** per-team integration keys, "team=key,team2=key2" */
  PAGERDUTY_ROUTING_KEYS: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^\s*[^=,\s]+\s*=\s*[^=,\s]+\s*(,\s*[^=,\s]+\s*=\s*[^=,\s]+\s*)*$/, {
        error: 'expected "team=key,team2=key2"',
      })
      .transform((v) =>
        Object.fromEntries(
          v.split(',').map((pair) => pair.split('=').map((x) => x.trim()) as [string, string]),
        ),
      )
      .optional(),
  ),
  /** Events API base URL (`/v2/enqueue` is appended); EU accounts use https://events.eu.pagerduty.com */
  PAGERDUTY_EVENTS_URL: z.preprocess(
    emptyAsUndefined,
    url(['http:', 'https:']).default('https://events.pagerduty.com'),
  ),
  /** a generic pager: pages are POSTed here as JSON, signed with PAGE_WEBHOOK_SECRET (HMAC-SHA256) */
  PAGE_WEBHOOK_URL: z.preprocess(emptyAsUndefined, url(['http:', 'https:']).optional()),
  PAGE_WEBHOOK_SECRET: z.preprocess(
    emptyAsUndefined,
    z.string().min(16, { error: 'expected a secret of at least 16 characters' }).optional(),
  ),
  /** tries per pager call before the next pager is tried (429, 5xx and network errors are retried) */
  PAGER_MAX_ATTEMPTS: z.preprocess(emptyAsUndefined, intInRange(1, 10).default(4)),
  /** first retry's back-off ceiling, doubling per try; milliseconds */
  PAGER_BACKOFF_BASE_MS: z.preprocess(emptyAsUndefined, intInRange(0, 60_000).default(500)),
  /**
   * the length of one minute of an escalation policy's `delayMinutes`; milliseconds. Only tests and the demo shorten
   * it (a 5-minute level then waits 5 × this)
   */
  ESCALATION_MINUTE_MS: z.preprocess(emptyAsUndefined, intInRange(100, 60_000).default(60_000)),
  /** how often Postgres is checked for escalation work Redis lost (a page timer, a start); milliseconds */
  ESCALATION_SWEEP_MS: z.preprocess(emptyAsUndefined, intInRange(1_000, 3_600_000).default(30_000)),
  /**
   * an OpenAI-compatible chat API (`…/v1`) that writes the postmortem's advisory narrative from the redacted timeline;
   * unset (the default): the deterministic draft only. Its output never triggers or approves anything
   */
  LLM_BASE_URL: z.preprocess(emptyAsUndefined, url(['http:', 'https:']).optional()),
  LLM_API_KEY: z.preprocess(emptyAsUndefined, z.string().min(1).optional()),
  LLM_MODEL: z.preprocess(emptyAsUndefined, z.string().min(1).max(200).default('gpt-4o-mini')),
  /** after this the deterministic draft is used without the narrative; milliseconds */
  LLM_TIMEOUT_MS: z.preprocess(emptyAsUndefined, intInRange(100, 300_000).default(20_000)),
  /** how often the runbook improvement suggestions are posted in the default channel; days; 0 = never */
  SUGGESTIONS_EVERY_DAYS: z.preprocess(emptyAsUndefined, intInRange(0, 365).default(7)),
  /** the safety policy: modes, approvers, tier tightening, hard limits (YAML; missing = supervised, nobody approves) */
  SAFETY_FILE: z.preprocess(emptyAsUndefined, z.string().min(1).default('./config/safety.yml')),
  /** a worker's claim on a job; a killed worker's jobs are taken over after about twice this; milliseconds */
  WORKER_LOCK_MS: z.preprocess(emptyAsUndefined, intInRange(1_000, 600_000).default(30_000)),
  /** longest one remediation action may run before it is aborted; milliseconds; default 120000 */
  ACTION_TIMEOUT_MS: z.preprocess(emptyAsUndefined, intInRange(1_000, 3_600_000).default(120_000)),
  /** Prometheus HTTP API base URL for `prometheus_query` diagnostics, e.g. http://prometheus:9090 */
  PROMETHEUS_URL: z.preprocess(emptyAsUndefined, url(['http:', 'https:']).optional()),
  /** Loki HTTP API base URL for `log_search` diagnostics with `source: loki` */
  LOKI_URL: z.preprocess(emptyAsUndefined, url(['http:', 'https:']).optional()),
  /** YAML list of PromQL queries whose series feed the anomaly detectors (needs PROMETHEUS_URL); empty: no polling */
  DETECTION_QUERIES_FILE: z.preprocess(emptyAsUndefined, z.string().min(1).optional()),
  /** a metric series silent this long loses its detector state; seconds; default 7 days */
  DETECTION_SERIES_TTL_SECONDS: z.preprocess(
    emptyAsUndefined,
    intInRange(60, 90 * 86_400).default(7 * 86_400),
  ),
  /** live detector states are written to Redis this often (and at shutdown): a crash loses at most this much; ms */
  DETECTION_FLUSH_INTERVAL_MS: z.preprocess(emptyAsUndefined, intInRange(100, 300_000).default(5_000)),
  /** anomaly likelihood (0–1) from which a point is reported as an anomaly */
  DETECTION_THRESHOLD: z.preprocess(
    emptyAsUndefined,
    z.coerce
      .number({ error: 'expected a number between 0 and 1' })
      .min(0, { error: 'expected a number between 0 and 1' })
      .max(1, { error: 'expected a number between 0 and 1' })
      .default(0.5),
  ),
  /** diagnostics run at once per worker process (they mostly wait on I/O) */
  DIAGNOSTICS_CONCURRENCY: z.preprocess(emptyAsUndefined, intInRange(1, 1000).default(50)),
  MIGRATE_ON_START: z.preprocess(emptyAsUndefined, booleanFlag.default(true)),
  /** Postgres pool size per process */
  DATABASE_POOL_MAX: z.preprocess(emptyAsUndefined, intInRange(1, 200).default(20)),
  /** Postgres pool of the jobs (diagnostics, decisions, Slack syncs), apart from intake's so they never starve it */
  JOBS_DATABASE_POOL_MAX: z.preprocess(emptyAsUndefined, intInRange(1, 200).default(10)),
  LOG_LEVEL: z.preprocess(
    emptyAsUndefined,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
});

export const EnvSchema = EnvShape.superRefine((env, ctx) => {
  if (Boolean(env.SLACK_BOT_TOKEN) !== Boolean(env.SLACK_SIGNING_SECRET)) {
    ctx.addIssue({
      code: 'custom',
      path: [env.SLACK_BOT_TOKEN ? 'SLACK_SIGNING_SECRET' : 'SLACK_BOT_TOKEN'],
      message:
        'expected SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET to be set together (or neither, to run without Slack)',
    });
  }
  if (env.SLACK_APP_TOKEN && !env.SLACK_BOT_TOKEN) {
    ctx.addIssue({
      code: 'custom',
      path: ['SLACK_BOT_TOKEN'],
      message: 'expected a bot token when SLACK_APP_TOKEN (Socket Mode) is set',
    });
  }
  if (Boolean(env.PAGE_WEBHOOK_URL) !== Boolean(env.PAGE_WEBHOOK_SECRET)) {
    ctx.addIssue({
      code: 'custom',
      path: [env.PAGE_WEBHOOK_URL ? 'PAGE_WEBHOOK_SECRET' : 'PAGE_WEBHOOK_URL'],
      message: 'expected PAGE_WEBHOOK_URL and PAGE_WEBHOOK_SECRET to be set together',
    });
  }
  for (const pager of env.PAGERS ?? []) {
    const missing =
      pager === 'slack' && !env.SLACK_BOT_TOKEN
        ? 'SLACK_BOT_TOKEN'
        : pager === 'pagerduty' && !env.PAGERDUTY_ROUTING_KEY && !env.PAGERDUTY_ROUTING_KEYS
          ? 'PAGERDUTY_ROUTING_KEY'
          : pager === 'webhook' && !env.PAGE_WEBHOOK_URL
            ? 'PAGE_WEBHOOK_URL'
            : null;
    if (missing) {
      ctx.addIssue({
        code: 'custom',
        path: ['PAGERS'],
        message: `lists ${pager}, but ${missing} is not set`,
      });
    }
  }
});

export type Config = z.infer<typeof EnvSchema>;

export class ConfigError extends Error {
  readonly code = 'config_invalid';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

/** Parses the environment once; every problem is reported, one line each, naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = EnvSchema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)';
    const got = typeof issue.path[0] === 'string' ? env[issue.path[0]] : undefined;
    const message =
      issue.code === 'invalid_type' && got === undefined ? `${issue.message} (not set)` : issue.message;
    return `${name}: ${message}`;
  });
  throw new ConfigError(problems);
}

/** The variables the offline tools (`ai-sre runbooks …`) read; they need no database, Redis or tokens. */
export const ToolEnvSchema = EnvShape.pick({
  RUNBOOKS_DIR: true,
  TARGETS_FILE: true,
  SAFETY_FILE: true,
  PROMETHEUS_URL: true,
  LOKI_URL: true,
  DATABASE_URL: true,
  LOG_LEVEL: true,
});
export type ToolConfig = z.infer<typeof ToolEnvSchema>;

export function loadToolConfig(env: NodeJS.ProcessEnv = process.env): ToolConfig {
  const result = ToolEnvSchema.safeParse(env);
  if (result.success) return result.data;
  throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
}
