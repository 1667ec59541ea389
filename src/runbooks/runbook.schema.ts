import { z } from 'zod';
import { Severity } from '../alerts/normalized-alert.js';
import { durationField } from '../diagnostics/duration.js';
import { forbiddenActionReason } from '../safety/action-catalog.js';

const Duration = durationField({ example: '"500ms", "30s", "5m", "1h30m"' });

/** ids are referenced from CEL (`diagnostics.db_connections`), so they must be CEL identifiers */
const StepId = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, {
  error: 'expected a lower-case identifier: a-z, 0-9, _ (starting with a letter, at most 63)',
});

/** A CEL expression; type-checked when the runbook loads (see cel.ts). */
const Cel = z.string().min(1, { error: 'expected a CEL expression' });

/** An exact value, or a regular expression written as `~regex` (anchored). */
const Matcher = z.string();

export const AlertTrigger = z.strictObject({
  /** alertname: exact, or `~regex` */
  alert: Matcher,
  /** every label must match (exact or `~regex`) */
  labels: z.record(z.string(), Matcher).default({}),
});

export const MetricTrigger = z.strictObject({
  /** a metric threshold: the alert's `__name__`/`metric` label names the series, its value is compared */
  metric: z.string().min(1),
  labels: z.record(z.string(), Matcher).default({}),
  above: z.number().optional(),
  below: z.number().optional(),
});

export const ManualTrigger = z.strictObject({
  /** only ever run by hand (`/incident run <id>`) */
  manual: z.literal(true),
});

export const Trigger = z.union([AlertTrigger, MetricTrigger, ManualTrigger]);
export type Trigger = z.infer<typeof Trigger>;

export const Interpret = z.strictObject({
  /** CEL computing `value` from `result` when the collector's headline is not the figure wanted */
  value: Cel.optional(),
  /** CEL over `value` and `result`; true → critical (tested first) */
  critical: Cel.optional(),
  /** CEL; true → warning. Neither true → healthy. */
  warning: Cel.optional(),
});

export const Diagnostic = z.strictObject({
  id: StepId,
  type: z.string().min(1),
  /** what the check answers, for people ("How full is the connection pool?") */
  description: z.string().optional(),
  /** default 10s; at most 5m */
  timeout: Duration.default('10s'),
  /** unit shown after the value in Slack ("%", "ms", "connections") */
  unit: z.string().max(20).optional(),
  config: z.record(z.string(), z.unknown()).default({}),
  interpret: Interpret.default({}),
});
export type Diagnostic = z.infer<typeof Diagnostic>;

export const EscalationTarget = z.strictObject({
  /** why: picks the route in the escalation policy (security, database, default, …) */
  reason: z.string().min(1).default('default'),
  team: z.string().optional(),
  /** Slack user ids or on-call handles */
  users: z.array(z.string()).default([]),
  note: z.string().optional(),
});
export type EscalationTarget = z.infer<typeof EscalationTarget>;

export const Hypothesis = z
  .strictObject({
    id: StepId,
    /** the cause in plain words ("Idle connections are holding the pool") */
    description: z.string().min(1),
    /** 1 = most likely; hypotheses are tried in this order (ties: file order) */
    likelihood: z.number().int().min(1).max(100),
    /** CEL over `diagnostics.<id>.{status,value,result,summary}`, `labels`, `incident` */
    when: Cel,
    /** remediation ids to apply, in order */
    remediate: z.array(StepId).default([]),
    /** hand over to humans instead (e.g. an unexpected process → security) */
    escalate: EscalationTarget.optional(),
  })
  .refine((h) => h.remediate.length > 0 !== (h.escalate !== undefined), {
    error:
      'expected either `remediate` (remediation ids) or `escalate`, not both (notify people with a `notify` step)',
  });
export type Hypothesis = z.infer<typeof Hypothesis>;

/**
 * The actions a runbook may name: the safety catalogue's (which gives each its tier). A runbook may only ask for
 * approval where the catalogue would not, never the reverse; anything not in the catalogue is forbidden.
 */
export const ActionType = z.string().superRefine((action, ctx) => {
  const reason = forbiddenActionReason(action);
  if (reason) ctx.addIssue({ code: 'custom', message: reason });
});

export const Remediation = z.strictObject({
  id: StepId,
  action: ActionType,
  description: z.string().min(1),
  config: z.record(z.string(), z.unknown()).default({}),
  /** true: an authorised human must click Approve first (the catalogue may require it anyway) */
  requiresApproval: z.boolean().default(false),
  verify: z
    .strictObject({
      /** diagnostics re-run after the action */
      diagnostics: z.array(StepId).min(1),
      /** CEL over `diagnostics`; true = fixed */
      expect: Cel,
      /** how long to keep re-checking; default 5m */
      within: Duration.default('5m'),
    })
    .optional(),
  /** CEL over `diagnostics`; true while the remediation runs → stop and escalate */
  stopIf: Cel.optional(),
});
export type Remediation = z.infer<typeof Remediation>;

export const Runbook = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, {
    error: 'expected a lower-case id: a-z, 0-9, - (at most 63)',
  }),
  name: z.string().min(1),
  description: z.string().default(''),
  /** service(s) this runbook is for; "*" = any */
  service: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).default('*'),
  /** severity of incidents this runbook opens when run by hand on a service with no open incident */
  severity: Severity.default('high'),
  version: z.union([z.string(), z.number()]).transform(String).optional(),
  owners: z.array(z.string()).default([]),
  /** the playbook for incidents no runbook matches (exactly one runbook sets this) */
  default: z.boolean().default(false),
  triggers: z.array(Trigger).default([]),
  diagnostics: z.array(Diagnostic).min(1, { error: 'expected at least one diagnostic' }),
  decision: z.array(Hypothesis).default([]),
  remediations: z.array(Remediation).default([]),
  /** who gets the incident when no hypothesis is confirmed */
  escalation: EscalationTarget.default({ reason: 'default', users: [] }),
});
export type Runbook = z.infer<typeof Runbook>;
export type RunbookInput = z.input<typeof Runbook>;
