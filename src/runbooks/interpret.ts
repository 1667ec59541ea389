import type { CollectorOutput, DiagnosticStatus } from '../diagnostics/collector.js';
import type { TemplateVars } from '../diagnostics/templating.js';
import { type CelScope, celErrorMessage, evaluateExpression } from './cel.js';
import type { Diagnostic } from './runbook.schema.js';

/** A diagnostic's outcome as the decision sees it (`diagnostics.<id>` in CEL). */
export interface Finding {
  status: DiagnosticStatus;
  value: number | string | boolean | null;
  result: Record<string, unknown>;
  summary: string;
  /** why the status is `error` (collector failure, timeout, a rule that could not be evaluated) */
  error: string | null;
}

function celContext(vars: TemplateVars) {
  return { labels: vars.labels, annotations: vars.annotations, incident: vars.incident };
}

/**
 * Applies a step's interpret rules to what its collector measured: `value` (optionally recomputed), then critical,
 * then warning; neither → healthy. A rule that cannot be evaluated (a null value, a missing field) makes the finding
 * `error`, naming the rule, rather than guessing healthy.
 */
export function interpretOutput(
  step: Diagnostic,
  valueType: 'double' | 'string' | 'bool' | 'dyn',
  output: CollectorOutput,
  vars: TemplateVars,
): Finding {
  let value: unknown = output.value;
  const base = celContext(vars);
  try {
    if (step.interpret.value) {
      value = evaluateExpression(
        step.interpret.value,
        { kind: 'interpret', valueType },
        {
          ...base,
          value: output.value,
          result: output.result,
        },
      );
    }
  } catch (err) {
    return { ...plain(output), status: 'error', error: `interpret.value: ${celErrorMessage(err)}` };
  }
  const scope: CelScope = { kind: 'interpret', valueType: step.interpret.value ? 'dyn' : valueType };
  const context = { ...base, value, result: output.result };
  const stored = toStoredValue(value);
  // a recomputed value is what the rules judged, so the line people read leads with it
  const summary = step.interpret.value
    ? `${formatValue(stored)}${step.unit ? ` ${step.unit}` : ''} (${output.summary})`
    : output.summary;
  const finding = { ...plain(output), value: stored, summary };
  for (const level of ['critical', 'warning'] as const) {
    const rule = step.interpret[level];
    if (!rule) continue;
    try {
      if (evaluateExpression(rule, scope, context) === true)
        return { ...finding, status: level, error: null };
    } catch (err) {
      const noData = value === null || value === undefined ? 'no data (value is null); ' : '';
      return { ...finding, status: 'error', error: `${noData}interpret.${level}: ${celErrorMessage(err)}` };
    }
  }
  return { ...finding, status: 'healthy', error: null };
}

function plain(output: CollectorOutput): Omit<Finding, 'status' | 'error'> {
  return { value: output.value, result: output.result, summary: output.summary };
}

function toStoredValue(value: unknown): Finding['value'] {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean') return value;
  return JSON.stringify(value);
}

function formatValue(value: Finding['value']): string {
  if (typeof value === 'number' && !Number.isInteger(value))
    return value.toFixed(Math.abs(value) >= 100 ? 0 : 2);
  return String(value);
}

/** A finding for a diagnostic that produced nothing usable. */
export function errorFinding(message: string): Finding {
  return { status: 'error', value: null, result: {}, summary: message, error: message };
}
