import type { z } from 'zod';
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
