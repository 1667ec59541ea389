import type { Queues } from '../queue/queues.js';
import type { Queryable } from '../store/db.js';
import { expireApprovalJob, remediateStepJob, verifyStepJob } from './jobs/remediation-jobs.js';

/**
 * Re-enqueues remediation work Postgres says is owed but Redis may have lost, with job ids that name the sweep:
 * - a running plan with no step yet, or whose newest step is settled but the next was never visited;
 * - a step gated `ready`/`approved` that never ran;
 * - a step `started` long past the action timeout (its worker died): the visit recovers it, never re-runs it;
 * - a step `verifying` whose re-check job vanished;
 * - an approval request past its expiry.
 * Every visit is safe to repeat (guarded step transitions), so a job that was not lost after all does nothing.
 * Returns how many jobs were enqueued.
 */
export async function sweepRemediation(
  deps: { db: Queryable; queues: Queues; actionTimeoutMs: number },
  sweep: string,
  opts: {
    /** Redis lost its jobs: whatever is owed is re-enqueued now, not after the usual grace periods */
    lost?: boolean;
  } = {},
): Promise<number> {
  // seconds a job may take before its absence means Redis lost it; a `started` step always gets the action timeout
  const grace = opts.lost ? 0 : 120;
  const { rows: visits } = await deps.db.query<{ execution_id: number; position: number }>(
    `WITH last AS (
       SELECT DISTINCT ON (s.execution_id) s.execution_id, s.position, s.status, s.updated_at, s.started_at
         FROM remediation_steps s JOIN runbook_executions e ON e.id = s.execution_id
        WHERE e.remediation_status = 'running'
        ORDER BY s.execution_id, s.position DESC
     )
     SELECT e.id AS execution_id, 0 AS position
       FROM runbook_executions e
      WHERE e.remediation_status = 'running' AND e.decided_at < now() - make_interval(secs => $2::float8 / 2)
        AND NOT EXISTS (SELECT 1 FROM remediation_steps s WHERE s.execution_id = e.id)
     UNION ALL
     SELECT execution_id, position FROM last
      WHERE (status IN ('ready', 'approved', 'succeeded', 'unknown') AND updated_at < now() - make_interval(secs => $2::float8))
         OR (status = 'started' AND started_at < now() - make_interval(secs => $1))
     UNION ALL
     SELECT execution_id, position + 1 FROM last
      WHERE status IN ('verified', 'skipped', 'dry_run') AND updated_at < now() - make_interval(secs => $2::float8)
     LIMIT 1000`,
    [(2 * deps.actionTimeoutMs) / 1000, grace],
  );
  for (const v of visits) {
    await deps.queues.enqueue(remediateStepJob, {
      executionId: v.execution_id,
      position: v.position,
      phase: `sweep-${sweep}`,
    });
  }
  const { rows: verifying } = await deps.db.query<{ id: number; verify_checks: number }>(
    `SELECT id, verify_checks FROM remediation_steps
      WHERE status = 'verifying' AND updated_at < now() - make_interval(secs => $1) LIMIT 1000`,
    [grace],
  );
  // the lost job's own id: re-adding it is a no-op when it still exists
  for (const s of verifying)
    await deps.queues.enqueue(verifyStepJob, { stepRowId: s.id, check: s.verify_checks + 1 });
  const { rows: expired } = await deps.db.query<{ id: number }>(
    `SELECT id FROM approval_requests WHERE status = 'pending' AND expires_at < now() LIMIT 1000`,
  );
  for (const a of expired) {
    await deps.queues.enqueue(expireApprovalJob, { approvalId: a.id, check: 0, sweep });
  }
  return visits.length + verifying.length + expired.length;
}
