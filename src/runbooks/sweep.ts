import type { Queues } from '../queue/queues.js';
import type { Queryable } from '../store/db.js';
import { diagnoseJob } from './jobs/diagnose.job.js';

/** an execution still diagnosing after this long lost its jobs (the longest diagnostic is 5 minutes); seconds */
const STUCK_AFTER_SECONDS = 10 * 60;

/**
 * Re-enqueues diagnosis Postgres says is owed but Redis may have lost: open incidents of the last day with no runbook
 * run yet, and runs whose diagnostics never finished. The diagnose job finds an existing run and re-adds the same
 * job ids, so nothing is run twice. Returns how many incidents were re-enqueued.
 */
export async function sweepDiagnoses(
  deps: { db: Queryable; queues: Queues },
  sweep: string,
  opts: {
    /**
     * Redis lost its jobs (it came back empty, or this is a fresh start): look at everything at once, whatever its age,
     * and re-add the ORIGINAL job ids, which are no-ops for jobs Redis still has
     */
    lost?: boolean;
  } = {},
): Promise<number> {
  const { rows } = await deps.db.query<{
    incident_id: number;
    request_key: string;
    runbook_id: string | null;
  }>(
    `SELECT i.id AS incident_id, 'auto' AS request_key, NULL AS runbook_id
       FROM incidents i
      WHERE i.status <> 'resolved' AND i.opened_at > now() - interval '1 day'
        AND i.opened_at < now() - make_interval(secs => $2)
        AND NOT EXISTS (SELECT 1 FROM runbook_executions e WHERE e.incident_id = i.id)
        AND NOT EXISTS (SELECT 1 FROM timeline_events t WHERE t.incident_id = i.id AND t.type = 'runbook.none')
     UNION ALL
     SELECT e.incident_id, e.request_key, CASE WHEN e.matched_by = 'manual' THEN e.runbook_id END
       FROM runbook_executions e
      WHERE e.status = 'diagnosing' AND e.started_at < now() - make_interval(secs => $1)
        AND e.started_at > now() - interval '1 day'
      LIMIT 1000`,
    opts.lost ? [0, 0] : [STUCK_AFTER_SECONDS, 60],
  );
  for (const row of rows) {
    await deps.queues.enqueue(diagnoseJob, {
      incidentId: row.incident_id,
      requestKey: row.request_key,
      ...(row.runbook_id ? { runbookId: row.runbook_id } : {}),
      ...(opts.lost ? {} : { sweep }),
    });
  }
  return rows.length;
}
