import { z } from 'zod';
import { redactSecrets } from '../../diagnostics/redact.js';
import type { JobDefinition } from '../../queue/jobs.js';
import type { JobHandler } from '../../queue/queues.js';
import type { Queryable } from '../../store/db.js';
import { type Execution, getExecution, storeResult } from '../execution-repo.js';
import { runCheck } from '../run-check.js';
import type { RunbookJobDeps } from './deps.js';

export const RunDiagnosticPayload = z.object({
  executionId: z.number().int().positive(),
  diagnosticId: z.string().min(1),
});
export type RunDiagnosticPayload = z.infer<typeof RunDiagnosticPayload>;

/** One diagnostic of an execution; a child of the execution's decide job. */
export const runDiagnosticJob: JobDefinition<RunDiagnosticPayload> = {
  queue: 'diagnostics',
  name: 'diagnostic.run',
  payload: RunDiagnosticPayload,
  jobId: (d) => `diag-${d.executionId}-${d.diagnosticId}`,
  // retries only cover failing to store the result (Postgres away); a failing check is a result, not a retry
  attempts: 5,
  backoffMs: 500,
};

/**
 * recent executions kept in memory per handler (per app: two apps in one process have their own databases), per
 * diagnostic running at once, and at least MIN_SNAPSHOTS. A run's diagnostics are children of one flow and run within
 * seconds of each other, so only the runs being diagnosed need their snapshot; more only keeps finished runs' snapshots
 * (a few KiB each) for nothing: 2,000 of them took an hour of steady load to fill, a heap that grew all along.
 */
const SNAPSHOTS_PER_CONCURRENT_DIAGNOSTIC = 4;
const MIN_SNAPSHOTS = 64;

/**
 * A run's snapshot never changes once recorded, and each of its diagnostics needs it: keep the recent ones in memory
 * so a diagnostic costs one small query before it runs instead of loading the runbook each time. Holds at most `max`;
 * the oldest goes first.
 */
export function snapshotCache(
  db: Queryable,
  max: number,
): { get(executionId: number): Promise<Execution | null>; readonly size: number } {
  const snapshots = new Map<number, Execution>();
  return {
    async get(executionId) {
      const cached = snapshots.get(executionId);
      if (cached) return cached;
      const execution = await getExecution(db, executionId);
      if (!execution) return null;
      if (snapshots.size >= max) snapshots.delete(snapshots.keys().next().value as number);
      snapshots.set(executionId, execution);
      return execution;
    },
    get size() {
      return snapshots.size;
    },
  };
}

/** Whether the run is still diagnosing and this diagnostic has no stored result yet, in one round trip. */
async function stateOf(
  db: Queryable,
  executionId: number,
  diagnosticId: string,
): Promise<{ status: string; done: boolean } | null> {
  const { rows } = await db.query<{ status: string; done: boolean }>(
    `SELECT e.status, EXISTS (SELECT 1 FROM diagnostic_results r WHERE r.execution_id = e.id AND r.diagnostic_id = $2) AS done
       FROM runbook_executions e WHERE e.id = $1`,
    [executionId, diagnosticId],
  );
  return rows[0] ?? null;
}

/**
 * Runs one check with its own timeout and stores what it found. The collector's failure, a timeout, a missing label
 * or a rule that cannot be evaluated all become a stored `error` finding: a diagnostic never blocks the decision.
 * Re-running is harmless: a stored result is never recomputed.
 */
export function runDiagnosticHandler(deps: RunbookJobDeps): JobHandler<RunDiagnosticPayload> {
  const snapshots = snapshotCache(
    deps.db,
    Math.max(MIN_SNAPSHOTS, SNAPSHOTS_PER_CONCURRENT_DIAGNOSTIC * deps.diagnosticsConcurrency),
  );
  return {
    definition: runDiagnosticJob,
    concurrency: deps.diagnosticsConcurrency,
    async handle(data) {
      const state = await stateOf(deps.db, data.executionId, data.diagnosticId);
      if (!state || state.done || state.status === 'decided') return;
      const execution = await snapshots.get(data.executionId);
      if (!execution) return;
      const position = execution.runbook.diagnostics.findIndex((d) => d.id === data.diagnosticId);
      const step = execution.runbook.diagnostics[position];
      if (!step) return;
      const startedAt = new Date();
      // monitored systems' text is untrusted: secrets are masked before it is stored and shown in Slack
      const raw = await runCheck(execution, step, deps, startedAt);
      const finding = {
        ...raw,
        summary: redactSecrets(raw.summary),
        error: raw.error === null ? null : redactSecrets(raw.error),
      };
      const finishedAt = new Date();
      const durationMs = finishedAt.getTime() - startedAt.getTime();
      deps.observeDiagnostic?.(step.type, finding.status, durationMs / 1000);
      const eventId = await storeResult(deps.db, execution, {
        ...finding,
        diagnosticId: step.id,
        position,
        type: step.type,
        durationMs,
        startedAt,
        finishedAt,
      });
      if (eventId !== null) await deps.changed({ incidentId: execution.incidentId, eventId, urgent: false });
    },
  };
}
