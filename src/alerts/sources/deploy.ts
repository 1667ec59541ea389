import { z } from 'zod';
import { type DeployEventRecord, DeployStatus } from '../../store/deploy-events-repo.js';

/** CI/CD templates send `null` or `""` for an unset variable: both mean "not given". */
function optional<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null || v === '' ? undefined : v), schema.optional());
}

/** Versions, ids and shas are strings, but build numbers often arrive as JSON numbers. */
function text(max: number) {
  return z.preprocess(
    (v) => (typeof v === 'number' ? String(v) : v),
    z.string().trim().min(1, { error: 'expected a non-empty string' }).max(max),
  );
}

const STATUS_ALIASES: Record<string, DeployStatus> = {
  started: 'started',
  start: 'started',
  in_progress: 'started',
  running: 'started',
  pending: 'started',
  queued: 'started',
  succeeded: 'succeeded',
  success: 'succeeded',
  successful: 'succeeded',
  ok: 'succeeded',
  completed: 'succeeded',
  finished: 'succeeded',
  deployed: 'succeeded',
  failed: 'failed',
  failure: 'failed',
  error: 'failed',
  errored: 'failed',
  rolled_back: 'rolled_back',
  rolledback: 'rolled_back',
  rollback: 'rolled_back',
};

/** The four statuses, and the spellings GitHub, GitLab, Argo CD and friends use for them (case-insensitive). */
const Status = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? (STATUS_ALIASES[
          v
            .trim()
            .toLowerCase()
            .replace(/[\s-]+/g, '_')
        ] ?? v)
      : v,
  z.enum(DeployStatus.options, { error: 'expected one of started, succeeded, failed, rolled_back' }),
);

const EARLIEST = Date.UTC(2000, 0, 1);
const LATEST = Date.UTC(2100, 0, 1);
const ISO_8601 = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/** Epoch values below 1e11 are seconds (1e11 s is the year 5138), above are milliseconds (1e11 ms is 1973). */
function fromEpoch(n: number): Date {
  return new Date(Math.abs(n) < 1e11 ? n * 1000 : n);
}

/** ISO-8601 without an offset is read as UTC: the receiving server's local time would mean nothing to the sender. */
function fromIso(value: string): Date | null {
  const m = ISO_8601.exec(value.trim());
  if (!m) return null;
  let offset = (m[3] ?? 'Z').toUpperCase();
  if (offset !== 'Z')
    offset = offset.length === 3 ? `${offset}:00` : `${offset.slice(0, 3)}:${offset.slice(-2)}`;
  return new Date(`${m[1]}T${m[2]}${offset}`);
}

/** When the deploy happened: ISO-8601, or Unix epoch in seconds or milliseconds (a number or a digit string). */
const DeployTime = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const date =
    typeof v === 'number' ? fromEpoch(v) : /^\d+(\.\d+)?$/.test(v.trim()) ? fromEpoch(Number(v)) : fromIso(v);
  const ms = date?.getTime() ?? Number.NaN;
  if (!date || Number.isNaN(ms) || ms < EARLIEST || ms >= LATEST) {
    ctx.issues.push({
      code: 'custom',
      input: v,
      message: 'expected an ISO-8601 timestamp or Unix epoch seconds/milliseconds between 2000 and 2100',
    });
    return z.NEVER;
  }
  return date;
});

/** Who deployed: a name, or the user/author object GitHub and GitLab send. */
const Person = z.union([
  z.string().trim().min(1).max(200),
  z
    .object({
      name: z.string().max(200).optional(),
      login: z.string().max(200).optional(),
      username: z.string().max(200).optional(),
      email: z.string().max(200).optional(),
    })
    .transform((p, ctx) => {
      const name = p.login || p.username || p.name || p.email;
      if (name) return name;
      ctx.issues.push({ code: 'custom', input: p, message: 'expected a name, login, username or email' });
      return z.NEVER;
    }),
]);

/**
 * One deploy as CI/CD systems commonly send it. Aliases: `previous_version`/`previousVersion`,
 * `deployed_at`/`timestamp`, `deployed_by`/`user`/`author`, `commit`/`sha`, `description`/`message`; when both
 * spellings are given, the first listed wins. Unknown keys are ignored.
 */
export const DeployEvent = z.object({
  service: text(200),
  version: text(200),
  /** default 'production' */
  environment: optional(text(100)),
  previous_version: optional(text(200)),
  previousVersion: optional(text(200)),
  /** default 'succeeded' */
  status: optional(Status),
  /** default: the receive time */
  deployed_at: optional(DeployTime),
  timestamp: optional(DeployTime),
  deployed_by: optional(Person),
  user: optional(Person),
  author: optional(Person),
  commit: optional(text(200)),
  sha: optional(text(200)),
  url: optional(z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).max(2000)),
  description: optional(z.string().max(10_000)),
  message: optional(z.string().max(10_000)),
  /** the sender's deploy id: a re-delivery with the same id (per service) is stored once */
  id: optional(text(200)),
});
export type DeployEvent = z.infer<typeof DeployEvent>;

/** Several deploys in one body. */
export const DeployBatch = z.object({
  deploys: z.array(DeployEvent).min(1, { error: 'expected at least one deploy' }).max(500),
});
export type DeployPayload = z.infer<typeof DeployBatch>;

/**
 * A body with a `deploys` key is a batch, anything else one deploy, so errors name the fields of the shape sent.
 * A batch with one bad event is rejected whole (the issue's path holds its index, `deploys.3.version`): deploy
 * senders retry the whole body, so storing the good part would leave them nothing they can fix and resend.
 */
export function parseDeployPayload(body: unknown): z.ZodSafeParseResult<DeployPayload> {
  if (body !== null && typeof body === 'object' && 'deploys' in body) return DeployBatch.safeParse(body);
  const single = DeployEvent.safeParse(body);
  return single.success
    ? { success: true, data: { deploys: [single.data] } }
    : { success: false, error: single.error as unknown as z.ZodError<DeployPayload> };
}

export function normalizeDeploys(payload: DeployPayload, receivedAt = new Date()): DeployEventRecord[] {
  return payload.deploys.map((d) => ({
    service: d.service,
    environment: d.environment ?? 'production',
    version: d.version,
    previousVersion: d.previous_version ?? d.previousVersion ?? null,
    status: d.status ?? 'succeeded',
    deployedAt: d.deployed_at ?? d.timestamp ?? receivedAt,
    deployedBy: d.deployed_by ?? d.user ?? d.author ?? null,
    commit: d.commit ?? d.sha ?? null,
    url: d.url ?? null,
    description: d.description ?? d.message ?? null,
    externalId: d.id ?? null,
  }));
}
