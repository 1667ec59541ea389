import { z } from 'zod';
import type { ConfigProblem } from '../diagnostics/collector.js';
import type { Targets } from '../diagnostics/targets.js';
import type { TemplateVars } from '../diagnostics/templating.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Queryable } from '../store/db.js';

/** The hard limits an executor enforces itself because only it can read the current state (replicas). */
export interface ExecutionLimits {
  /** most replicas one scale step may add; default 3 */
  scaleStep: number;
  /** absolute most replicas of the service (the policy's and the step's, whichever is lower) */
  maxReplicas: number;
}

/** Where an action runs. */
export interface ActionContext {
  /** aborted when the step's timeout expires; executors pass it to every I/O call */
  signal: AbortSignal;
  /** milliseconds */
  timeoutMs: number;
  /** true: change nothing, report what would be changed (shadow mode, `runbooks dry-run`) */
  dryRun: boolean;
  targets: Targets;
  /** the bot's own database (deploy events) */
  db: Queryable;
  incident: { id: number; service: string; severity: string; title: string };
  limits: ExecutionLimits;
  now: Date;
  log: Logger;
  /** posts a message for people (notify); wired only when Slack is configured */
  notify?(input: NotifyInput): Promise<{ channel: string; ts: string }>;
}

export interface NotifyInput {
  /** a channel id or #name; else the service's incident channel (routing), else the incident thread */
  channel?: string;
  /** post in this service's incident channel */
  service?: string;
  /** mention in the text (a team handle, e.g. fraud-team) */
  team?: string;
  text: string;
  incidentId: number;
}

/** What an action did (or, in a dry run, would do). Plain JSON: it is stored in the timeline and shown in Slack. */
export interface ActionResult {
  ok: boolean;
  dryRun: boolean;
  /** one line for people: "terminated 12 idle sessions on main", "scaled payment-service 4 → 6 replicas" */
  summary: string;
  /** facts: pids terminated, replicas before/after, keys removed, HTTP status */
  details: Record<string, unknown>;
  /** the start of the raw output (response body, stdout), at most 2 KB; secrets are masked by the caller */
  output?: string;
}

/** What a step will touch, for the approval packet and the limits. */
export interface ActionDescription {
  /**
   * stable identity of what is changed, used as the key of rate windows (restarts per target):
   * "k8s:prod/payments/deployment/payment-service", "postgres:main", "redis:cache"
   */
  target: string;
  /** who or what is affected if it goes wrong, in plain words */
  blastRadius: string;
  /** how to undo it, in plain words ("none needed: pools reconnect", "roll forward to v1.4.2") */
  rollback: string;
}

/** A hard limit an executor found would be crossed (scale beyond the maximum); the step is refused and escalates. */
export class LimitError extends AppError {
  constructor(
    readonly limit: string,
    message: string,
  ) {
    super('limit_hit', message);
    this.name = 'LimitError';
  }
}

/** A config that asks for something destructive or unbounded; refused at load and again at execution. */
export class ForbiddenActionError extends AppError {
  constructor(message: string) {
    super('forbidden_action', message);
    this.name = 'ForbiddenActionError';
  }
}

/**
 * One action type. Executors change systems, so each is narrow by construction: a strict config schema that cannot
 * express anything destructive (no free SQL, no FLUSHALL, bounded counts), targets only from the targets file.
 */
export interface ActionExecutor<C> {
  action: string;
  /** the step's `config` as written in the runbook (placeholders still in it); strict, every bound explicit */
  config: z.ZodType<C>;
  /**
   * checks against the deployment's targets and forbidden shapes, at load and again before execution (on the
   * rendered config); a non-empty list means the step never runs
   */
  check?(config: C, targets: Targets): ConfigProblem[];
  /** fills the placeholders, escaping for where each value lands; a missing variable throws TemplateError */
  render(config: C, vars: TemplateVars): C;
  describe(config: C, targets: Targets, incident: ActionContext['incident']): ActionDescription;
  /** throws LimitError / ForbiddenActionError to refuse; any other throw is a failed action */
  execute(config: C, ctx: ActionContext): Promise<ActionResult>;
}

// biome-ignore lint/suspicious/noExplicitAny: executors of different config types share one registry
export type AnyExecutor = ActionExecutor<any>;

/** at most this much raw output is kept per action; characters */
export const OUTPUT_EXCERPT_CHARS = 2_000;

export function excerpt(text: string): string {
  return text.length > OUTPUT_EXCERPT_CHARS ? `${text.slice(0, OUTPUT_EXCERPT_CHARS)}…` : text;
}

/** Throws ForbiddenActionError naming every problem (`<action> refused: <path>: <message>; …`); for execute(). */
export function refuseProblems(action: string, problems: ConfigProblem[]): void {
  if (problems.length === 0) return;
  const text = problems.map((p) => `${p.path.join('.') || '(config)'}: ${p.message}`).join('; ');
  throw new ForbiddenActionError(`${action} refused: ${text}`);
}

/** Re-parses a config with its strict schema at execution: it may not have come through the loader. */
export function reparseConfig<C>(action: string, schema: z.ZodType<C>, config: unknown): C {
  const parsed = schema.safeParse(config);
  if (parsed.success) return parsed.data;
  refuseProblems(
    action,
    parsed.error.issues.map((i) => ({ path: i.path as (string | number)[], message: i.message })),
  );
  throw new ForbiddenActionError(`${action} refused: invalid config`);
}

/**
 * A strict config object whose unknown-key error names the key and the fields expected, and says plainly why a key
 * is refused when it looks like a way around the executor (`sql`, `command`, `flushall`, …).
 */
export function strictActionConfig<S extends z.ZodRawShape>(
  action: string,
  shape: S,
  refused: { keys: ReadonlySet<string>; why: (key: string, fields: string) => string },
) {
  const fields = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code !== 'unrecognized_keys') return undefined;
      return issue.keys
        .map((key) =>
          refused.keys.has(key.toLowerCase())
            ? refused.why(key, fields)
            : `unknown field "${key}" in ${action}: expected ${fields}`,
        )
        .join('; ');
    },
  });
}

/**
 * `limit`: required, a whole number in 1..max of `unit` (keys, sessions); the error names the field and the bound.
 * `verb` says what a run does to them ("remove", "touch").
 */
export function limitField(max: number, unit: string, verb: string) {
  return z
    .number({
      error: (issue) =>
        issue.input === undefined
          ? `limit is required: the most ${unit} one run may ${verb} (1 to ${max})`
          : `limit: expected a whole number of ${unit} from 1 to ${max}`,
    })
    .int({ error: `limit: expected a whole number of ${unit} from 1 to ${max}` })
    .min(1, { error: `limit: expected a whole number of ${unit} from 1 to ${max}` })
    .max(max, { error: `limit: at most ${max} ${unit} per run` });
}

/** The step's signal aborted (its timeout) while a connection was in use; the connection was closed. */
export class AbortedError extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms} ms`);
    this.name = 'AbortedError';
  }
}

/**
 * Ties a connection to the step's signal: once it aborts, every `guard`ed call rejects with AbortedError and `close`
 * runs (a client's pending call alone may hang). `release()` unhooks the listener when the work is done.
 */
export function abortGuard(
  signal: AbortSignal,
  timeoutMs: number,
  close: () => void,
): { guard: <T>(promise: Promise<T>) => Promise<T>; release: () => void } {
  let rejectAborted: (err: Error) => void = () => {};
  const aborted = new Promise<never>((_, reject) => {
    rejectAborted = reject;
  });
  aborted.catch(() => {});
  const onAbort = () => {
    rejectAborted(new AbortedError(timeoutMs));
    close();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  return {
    guard: <T>(promise: Promise<T>): Promise<T> => {
      promise.catch(() => {});
      return Promise.race([promise, aborted]);
    },
    release: () => signal.removeEventListener('abort', onAbort),
  };
}

function errorCode(err: unknown): string | undefined {
  return err && typeof err === 'object' && 'code' in err ? String(err.code) : undefined;
}

/** Why a request failed, in plain words; fetch wraps the socket error in `cause`, node:https throws it directly. */
export function describeIoError(err: unknown): string {
  const cause = err instanceof Error ? err.cause : undefined;
  switch (errorCode(cause) ?? errorCode(err)) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'connection reset';
  }
  if (cause instanceof Error) return cause.message;
  return err instanceof Error ? err.message : String(err);
}
