import type { z } from 'zod';
import type { Queryable } from '../store/db.js';
import type { Targets } from './targets.js';
import type { TemplateVars } from './templating.js';

/** What an interpret rule made of a result; `error` when the collector failed or timed out. */
export type DiagnosticStatus = 'healthy' | 'warning' | 'critical' | 'error';

/** What a collector measured. */
export interface CollectorOutput {
  /** the headline figure interpret rules test as `value` (a percentage, a count, a latency); null when there is none */
  value: number | string | boolean | null;
  /** everything else the collector saw, exposed to CEL as `result`; plain JSON (it is stored and shown) */
  result: Record<string, unknown>;
  /** one line for people, e.g. "3/3 URLs answered 200, slowest 120 ms" */
  summary: string;
}

/** Where a collector runs: the abort signal of its timeout, the configured targets, the bot's own database. */
export interface CollectContext {
  /** aborted when the step's timeout expires; collectors pass it to every I/O call */
  signal: AbortSignal;
  /** the step's timeout; milliseconds */
  timeoutMs: number;
  targets: Targets;
  /** the bot's own database (deploy events live there) */
  db: Queryable;
  /** PROMETHEUS_URL, LOKI_URL from the environment; undefined when not configured */
  prometheusUrl?: string;
  lokiUrl?: string;
  /** the incident being diagnosed (time windows are relative to `now`) */
  incident: { id: number; service: string; openedAt: Date };
  now: Date;
}

/** A problem in a step's config found when the runbook loads; `path` is relative to the step's `config`. */
export interface ConfigProblem {
  path: (string | number)[];
  message: string;
}

/**
 * One diagnostic type. Read-only by construction: a collector only reads (queries, GETs, INFO, allowlisted
 * commands); nothing it does may change the system it looks at.
 */
export interface Collector<C> {
  type: string;
  /** the step's `config` as written in the runbook (placeholders like `{{labels.service}}` still in it) */
  config: z.ZodType<C>;
  /** CEL type of `value` in interpret rules ('double' for figures) */
  valueType: 'double' | 'string' | 'bool' | 'dyn';
  /** checks the config can only make against the deployment's targets (allowlists, known target names) */
  check?(config: C, targets: Targets): ConfigProblem[];
  /**
   * Fills the placeholders with the incident's values, escaping each for where it lands (a PromQL string, a URL,
   * a SQL bind parameter, one argv element). A missing variable throws TemplateError.
   */
  render(config: C, vars: TemplateVars): C;
  collect(config: C, ctx: CollectContext): Promise<CollectorOutput>;
}

// biome-ignore lint/suspicious/noExplicitAny: collectors of different config types share one registry
export type AnyCollector = Collector<any>;
