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

export interface TimelineEvent {
  id: number;
  incidentId: number;
  at: Date;
  actor: string;
  type: string;
  data: Record<string, unknown>;
  notify: boolean;
}

/**
 * The advisory lock key of an incident's timeline: notify events draw their ids holding it shared (a trigger, see
 * migrations/1733500000000_timeline-thread-order.sql); whoever must not miss one takes it exclusively to read how far
 * the timeline goes.
 */
export const timelineLockKey = (incidentId: number) => `ai-sre:timeline:${incidentId}`;

/**
 * An incident's events in order: the first `limit` after `afterId` (and up to `upToId`), or with `newest` the last
 * `limit` (for answers that show the latest events without reading the whole timeline).
 */
export async function listTimeline(
  db: Queryable,
  incidentId: number,
  opts: { afterId?: number; upToId?: number; notifyOnly?: boolean; limit?: number; newest?: boolean } = {},
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
      WHERE incident_id = $1 AND id > $2 AND ($5::bigint IS NULL OR id <= $5) AND ($3::boolean IS FALSE OR notify)
      ORDER BY id ${opts.newest ? 'DESC' : 'ASC'} LIMIT $4`,
    [incidentId, opts.afterId ?? 0, opts.notifyOnly ?? false, opts.limit ?? 1000, opts.upToId ?? null],
  );
  if (opts.newest) rows.reverse();
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

/** Appends one event to an incident's timeline (in the caller's transaction); `notify` posts it in the Slack thread. */
export async function appendTimelineEvent(
  tx: Queryable,
  incidentId: number,
  actor: string,
  type: string,
  notify: boolean,
  data: Record<string, unknown>,
): Promise<number> {
  const { rows } = await tx.query<{ id: number }>(
    `INSERT INTO timeline_events (incident_id, actor, type, data, notify) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
    [incidentId, actor, type, JSON.stringify(data), notify],
  );
  return (rows[0] as { id: number }).id;
}
