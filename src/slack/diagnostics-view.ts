import type { Execution, StoredResult } from '../runbooks/execution-repo.js';
import type { DiagnosticsSummaryView } from './blocks/diagnostics-summary.js';

function chosenBecause(execution: Execution): string {
  const d = execution.matchDetail as { alert?: string; requested?: string; by?: string };
  switch (execution.matchedBy) {
    case 'manual':
      return `run by hand by ${d.by ?? execution.requestedBy}`;
    case 'label':
      return d.alert ? `named by alert ${d.alert}` : 'named by the incident';
    case 'trigger':
      return d.alert ? `matched alert ${d.alert}` : 'matched a trigger';
    default:
      return 'no runbook matched this incident';
  }
}

/** The diagnostics message of one execution: every step of the snapshot, with its result once stored. */
export function summaryViewOf(execution: Execution, results: StoredResult[]): DiagnosticsSummaryView {
  const byId = new Map(results.map((r) => [r.diagnosticId, r]));
  return {
    runbookId: execution.runbookId,
    runbookName: execution.runbook.name,
    version: execution.runbookVersion,
    hash: execution.runbookHash,
    chosenBecause: chosenBecause(execution),
    noRunbook: execution.matchedBy === 'default',
    checks: execution.runbook.diagnostics.map((step) => {
      const r = byId.get(step.id);
      return {
        id: step.id,
        type: step.type,
        unit: step.unit ?? null,
        status: r?.status ?? null,
        value: r?.value ?? null,
        summary: r ? r.summary : '',
        durationMs: r?.durationMs ?? null,
      };
    }),
  };
}
