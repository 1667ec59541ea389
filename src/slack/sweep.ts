import type { AppContext } from '../context.js';

/**
 * Re-enqueues Slack syncs for incidents whose card is missing or behind Postgres (Redis lost its jobs, an enqueue
 * failed, retries ran out during a long Slack outage). Looks at incidents changed in the last 7 days. Returns the count.
 */
export async function sweepSlackBacklog(ctx: AppContext, sweep: string): Promise<number> {
  const slack = ctx.slack;
  if (!slack) return 0;
  const { rows } = await ctx.db.query<{ id: number; event_id: number }>(
    `SELECT i.id, COALESCE((SELECT max(t.id) FROM timeline_events t WHERE t.incident_id = i.id), 0) AS event_id
       FROM incidents i LEFT JOIN slack_messages m ON m.incident_id = i.id
      WHERE i.updated_at > now() - interval '7 days'
        AND (m.incident_id IS NULL OR m.posted_revision < i.revision
             OR EXISTS (SELECT 1 FROM timeline_events t WHERE t.incident_id = i.id AND t.notify AND t.id > m.posted_event_id)
             OR EXISTS (SELECT 1 FROM slack_thread_messages s JOIN runbook_executions e ON s.key = 'execution:' || e.id
                         WHERE s.incident_id = i.id AND e.revision > s.posted_revision)
             OR EXISTS (SELECT 1 FROM slack_thread_messages s JOIN escalations e ON s.key = 'escalation:' || e.id
                         WHERE s.incident_id = i.id AND e.revision > s.posted_revision))
      ORDER BY i.id LIMIT 1000`,
  );
  for (const row of rows)
    await ctx.queues.enqueue(slack.syncJob, { incidentId: row.id, eventId: row.event_id, sweep });
  return rows.length;
}
