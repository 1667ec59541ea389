import type { DiagnosticStatus } from '../diagnostics/collector.js';
import type { TemplateVars } from '../diagnostics/templating.js';
import { celErrorMessage, evaluateExpression } from './cel.js';
import type { Finding } from './interpret.js';
import type { EscalationTarget, Runbook } from './runbook.schema.js';

/** One remediation step of the plan, as recorded (execution is the remediation issue's). */
export interface PlanStep {
  id: string;
  action: string;
  description: string;
  requiresApproval: boolean;
  config: Record<string, unknown>;
  verify: { diagnostics: string[]; expect: string; within: string } | null;
  stopIf: string | null;
}

export interface HypothesisOutcome {
  id: string;
  description: string;
  likelihood: number;
  /** null when the condition could not be evaluated */
  confirmed: boolean | null;
  error: string | null;
}

export interface Evidence {
  diagnostic: string;
  status: DiagnosticStatus;
  value: Finding['value'];
  summary: string;
}

/** What the decision tree concluded, stored on the execution and shown in Slack. */
export interface Decision {
  outcome: 'remediate' | 'escalate';
  /** the confirmed hypothesis that won, if any */
  hypothesis: { id: string; description: string; likelihood: number } | null;
  /** every hypothesis in the order tried */
  tried: HypothesisOutcome[];
  /** confirmed hypotheses of the same likelihood as the winner that call for something else */
  ambiguousWith: string[];
  plan: PlanStep[];
  escalation: (EscalationTarget & { why: string }) | null;
  /** the diagnostics the winning condition reads (or every unhealthy one when none won) */
  evidence: Evidence[];
  /** the decision in plain words */
  text: string;
}

const REFERENCE = /\bdiagnostics\.([a-z][a-z0-9_]*)/g;

/** Diagnostic ids a condition reads. */
export function referencedDiagnostics(expression: string): string[] {
  return [...new Set([...expression.matchAll(REFERENCE)].map((m) => m[1] as string))];
}

/**
 * Runs the decision tree as a triage playbook: hypotheses in likelihood order (ties keep file order), the first
 * confirmed one wins. Two confirmed hypotheses of the same likelihood that call for different actions are ambiguous:
 * a person decides. None confirmed → escalate to the runbook's escalation target. A diagnostic in `error` never blocks
 * the decision: conditions see its status and a condition that cannot be evaluated counts as not confirmed.
 */
export function decide(runbook: Runbook, findings: Record<string, Finding>, vars: TemplateVars): Decision {
  const { scope, context } = decisionContext(runbook, findings, vars);
  const ordered = runbook.decision
    .map((h, index) => ({ h, index }))
    .sort((a, b) => a.h.likelihood - b.h.likelihood || a.index - b.index)
    .map((x) => x.h);
  const tried: HypothesisOutcome[] = ordered.map((h) => {
    try {
      return {
        id: h.id,
        description: h.description,
        likelihood: h.likelihood,
        confirmed: evaluateExpression(h.when, scope, context) === true,
        error: null,
      };
    } catch (err) {
      return {
        id: h.id,
        description: h.description,
        likelihood: h.likelihood,
        confirmed: null,
        error: celErrorMessage(err),
      };
    }
  });
  const winnerIndex = tried.findIndex((t) => t.confirmed === true);
  const errored = runbook.diagnostics
    .filter((d) => findings[d.id]?.status !== undefined && findings[d.id]?.status === 'error')
    .map((d) => d.id);
  const absent = runbook.diagnostics.filter((d) => !findings[d.id]).map((d) => d.id);
  const unusable = [...errored, ...absent];

  if (winnerIndex < 0) {
    const evidence = runbook.diagnostics
      .filter((d) => findings[d.id] && findings[d.id]?.status !== 'healthy')
      .map((d) => evidenceOf(d.id, findings[d.id] as Finding));
    const why =
      runbook.decision.length === 0
        ? `${runbook.name} has no decision tree: a person takes it from here`
        : `no hypothesis confirmed${unusable.length > 0 ? ` (inconclusive: ${unusable.join(', ')} did not report)` : ''}`;
    return {
      outcome: 'escalate',
      hypothesis: null,
      tried,
      ambiguousWith: [],
      plan: [],
      escalation: { ...runbook.escalation, why },
      evidence,
      text: `${capitalise(why)} → escalate${runbook.escalation.team ? ` to ${runbook.escalation.team}` : ''}`,
    };
  }
  const winner = ordered[winnerIndex] as (typeof ordered)[number];
  const actionOf = (h: typeof winner) => JSON.stringify(h.escalate ? { escalate: h.escalate } : h.remediate);
  const ambiguousWith = ordered
    .filter(
      (h, i) =>
        i !== winnerIndex &&
        tried[i]?.confirmed === true &&
        h.likelihood === winner.likelihood &&
        actionOf(h) !== actionOf(winner),
    )
    .map((h) => h.id);
  const evidence = referencedDiagnostics(winner.when)
    .filter((id) => findings[id])
    .map((id) => evidenceOf(id, findings[id] as Finding));
  const because = describeEvidence(evidence, runbook);
  const hypothesis = { id: winner.id, description: winner.description, likelihood: winner.likelihood };

  if (ambiguousWith.length > 0) {
    const why = `ambiguous: ${[winner.id, ...ambiguousWith].join(' and ')} are equally likely and call for different actions`;
    return {
      outcome: 'escalate',
      hypothesis,
      tried,
      ambiguousWith,
      plan: [],
      escalation: { ...runbook.escalation, reason: 'ambiguous', why },
      evidence,
      text: `${winner.description}${because}, but ${why} → escalate`,
    };
  }
  if (winner.escalate) {
    return {
      outcome: 'escalate',
      hypothesis,
      tried,
      ambiguousWith,
      plan: [],
      escalation: { ...winner.escalate, why: winner.description },
      evidence,
      text: `${winner.description}${because} → escalate${winner.escalate.team ? ` to ${winner.escalate.team}` : ''} (${winner.escalate.reason})`,
    };
  }
  const plan: PlanStep[] = winner.remediate.map((id) => {
    const r = runbook.remediations.find((x) => x.id === id);
    if (!r) throw new Error(`remediation ${id} vanished from a validated runbook`);
    return {
      id: r.id,
      action: r.action,
      description: r.description,
      requiresApproval: r.requiresApproval,
      config: r.config,
      verify: r.verify ?? null,
      stopIf: r.stopIf ?? null,
    };
  });
  return {
    outcome: 'remediate',
    hypothesis,
    tried,
    ambiguousWith,
    plan,
    escalation: null,
    evidence,
    text: `${winner.description}${because} → ${plan.map((s) => lowerFirst(s.description)).join(', then ')}`,
  };
}

/** What decision conditions (and remediation `verify`/`stopIf`) see: every diagnostic of the runbook, by id. */
export function decisionContext(runbook: Runbook, findings: Record<string, Finding>, vars: TemplateVars) {
  const diagnostics = Object.fromEntries(
    runbook.diagnostics.map((d) => {
      const f = findings[d.id];
      return [
        d.id,
        f ? { status: f.status, value: f.value, result: f.result, summary: f.summary } : missing(),
      ];
    }),
  );
  const context = {
    diagnostics,
    labels: vars.labels,
    annotations: vars.annotations,
    incident: vars.incident,
  };
  const scope = { kind: 'decision' as const, diagnosticIds: runbook.diagnostics.map((d) => d.id) };
  return { scope, context };
}

function missing() {
  return { status: 'error', value: null, result: {}, summary: 'did not report' };
}

/**
 * " (connections 97.9 % critical; idle_in_transaction 38 critical)": the figures the winning condition read, the
 * unhealthy ones first; healthy ones only when nothing else was read.
 */
function describeEvidence(evidence: Evidence[], runbook: Runbook): string {
  const unhealthy = evidence.filter((e) => e.status !== 'healthy');
  const shown = (unhealthy.length > 0 ? unhealthy : evidence).slice(0, 4);
  if (shown.length === 0) return '';
  const unitOf = (id: string) => runbook.diagnostics.find((d) => d.id === id)?.unit;
  const parts = shown.map((e) => {
    if (e.value === null || typeof e.value === 'object') return `${e.diagnostic} ${e.status}`;
    const value =
      typeof e.value === 'number' && !Number.isInteger(e.value)
        ? e.value.toFixed(Math.abs(e.value) >= 100 ? 0 : 1)
        : String(e.value);
    const unit = unitOf(e.diagnostic);
    return `${e.diagnostic} ${value}${unit ? ` ${unit}` : ''} ${e.status}`;
  });
  return ` (${parts.join('; ')})`;
}

function evidenceOf(id: string, f: Finding): Evidence {
  return { diagnostic: id, status: f.status, value: f.value, summary: f.summary };
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function lowerFirst(s: string): string {
  return /^[A-Z][a-z]/.test(s) ? s.charAt(0).toLowerCase() + s.slice(1) : s;
}
