import type { Queryable } from '../store/db.js';

/**
 * Dotted event names of the timeline (the audit log). Postmortems read only these.
 * `notify` events are also posted in the incident's Slack thread.
 */
export type TimelineEventType =
  | 'incident.opened'
  | 'incident.investigating'
  | 'incident.mitigating'
  | 'incident.awaiting_approval'
  | 'incident.escalated'
  | 'incident.resolved'
  | 'incident.severity_changed'
  | 'alert.attached'
  | 'alert.repeated'
  | 'alert.resolved';

export interface TimelineEventInput {
  incidentId: number;
  actor: string;
  type: TimelineEventType;
  data?: Record<string, unknown>;
  notify?: boolean;
  at?: Date;
}

export interface TimelineEvent {
  id: number;
  incidentId: number;
  at: Date;
  actor: string;
  type: string;
  data: Record<string, unknown>;
  notify: boolean;
}

/** Appends events in one statement; call it inside the transaction of the change it records. Returns ids in input order. */
export async function appendTimeline(tx: Queryable, events: TimelineEventInput[]): Promise<number[]> {
  if (events.length === 0) return [];
  const { rows } = await tx.query<{ id: number }>(
    `INSERT INTO timeline_events (incident_id, actor, type, data, notify, at)
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::jsonb[], $5::boolean[], $6::timestamptz[])
     RETURNING id`,
    [
      events.map((e) => e.incidentId),
      events.map((e) => e.actor),
      events.map((e) => e.type),
      events.map((e) => JSON.stringify(e.data ?? {})),
      events.map((e) => e.notify ?? false),
      events.map((e) => e.at ?? new Date()),
    ],
  );
  return rows.map((r) => r.id);
}

export async function listTimeline(
  db: Queryable,
  incidentId: number,
  opts: { afterId?: number; notifyOnly?: boolean; limit?: number } = {},
): Promise<TimelineEvent[]> {
  const { rows } = await db.query<{
    id: number;
    incident_id: number;
    at: Date;
    actor: string;
    type: string;
    data: Record<string, unknown>;
    notify: boolean;
  }>(
    `SELECT id, incident_id, at, actor, type, data, notify FROM timeline_events
      WHERE incident_id = $1 AND id > $2 AND ($3::boolean IS FALSE OR notify)
      ORDER BY id LIMIT $4`,
    [incidentId, opts.afterId ?? 0, opts.notifyOnly ?? false, opts.limit ?? 1000],
  );
  return rows.map((r) => ({
    id: r.id,
    incidentId: r.incident_id,
    at: r.at,
    actor: r.actor,
    type: r.type,
    data: r.data,
    notify: r.notify,
  }));
}
