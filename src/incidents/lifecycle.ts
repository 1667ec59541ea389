import type { Severity } from '../alerts/normalized-alert.js';
import { NotFoundError, TransitionError } from '../errors.js';
import type { Queryable } from '../store/db.js';
import {
  INCIDENT_COLUMNS,
  type Incident,
  type IncidentLink,
  type IncidentRow,
  type IncidentStatus,
  incidentFromRow,
} from './incident.js';
import { appendTimeline, type TimelineEventType } from './timeline.js';

/**
 * The incident state machine, the one place that says which status may follow which.
 * open → investigating → mitigating | awaiting_approval → resolved | escalated; a resolved incident is final
 * (a new signal opens a new incident, so the resolved one's timeline and figures stay true).
 */
export const TRANSITIONS: Readonly<Record<IncidentStatus, readonly IncidentStatus[]>> = {
  open: ['investigating', 'mitigating', 'awaiting_approval', 'escalated', 'resolved'],
  investigating: ['mitigating', 'awaiting_approval', 'escalated', 'resolved'],
  mitigating: ['investigating', 'awaiting_approval', 'escalated', 'resolved'],
  awaiting_approval: ['investigating', 'mitigating', 'escalated', 'resolved'],
  escalated: ['investigating', 'mitigating', 'awaiting_approval', 'resolved'],
  resolved: [],
};

export function canTransition(from: IncidentStatus, to: IncidentStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export interface NewIncident {
  service: string;
  title: string;
  summary: string;
  severity: Severity;
  source: string;
  labels: Record<string, string>;
  links: IncidentLink[];
  /** when the first signal was seen (the alert's startsAt); defaults to now */
  firstSignalAt?: Date;
  alertCount: number;
}

/** Opens an incident and writes `incident.opened`; call inside a transaction. */
export async function openIncident(
  tx: Queryable,
  input: NewIncident,
  actor: string,
): Promise<{ incident: Incident; eventId: number }> {
  const { rows } = await tx.query<IncidentRow>(
    `INSERT INTO incidents (service, title, summary, severity, status, source, alert_count, labels, links, first_signal_at)
     VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, LEAST(COALESCE($9, now()), now()))
     RETURNING ${INCIDENT_COLUMNS}`,
    [
      input.service,
      input.title,
      input.summary,
      input.severity,
      input.source,
      input.alertCount,
      JSON.stringify(input.labels),
      JSON.stringify(input.links),
      input.firstSignalAt ?? null,
    ],
  );
  const incident = incidentFromRow(rows[0] as IncidentRow);
  const [eventId] = await appendTimeline(tx, [
    {
      incidentId: incident.id,
      actor,
      type: 'incident.opened',
      data: {
        service: incident.service,
        severity: incident.severity,
        title: incident.title,
        source: incident.source,
      },
    },
  ]);
  return { incident, eventId: eventId as number };
}

/**
 * Moves an incident to `to`, writing `incident.<to>` in the same transaction. Locks the row, so concurrent
 * transitions serialise; a transition the machine does not allow throws TransitionError.
 */
export async function transitionIncident(
  tx: Queryable,
  incidentId: number,
  to: IncidentStatus,
  change: { actor: string; reason: string; data?: Record<string, unknown> },
): Promise<{ incident: Incident; eventId: number }> {
  const current = await tx.query<{ status: IncidentStatus }>(
    'SELECT status FROM incidents WHERE id = $1 FOR UPDATE',
    [incidentId],
  );
  const from = current.rows[0]?.status;
  if (!from) throw new NotFoundError(`incident ${incidentId} does not exist`);
  if (!canTransition(from, to))
    throw new TransitionError(`incident ${incidentId} cannot go from ${from} to ${to}`);
  const { rows } = await tx.query<IncidentRow>(
    `UPDATE incidents
        SET status = $2, revision = revision + 1, updated_at = now(),
            resolved_at = CASE WHEN $2 = 'resolved' THEN now() ELSE resolved_at END
      WHERE id = $1
      RETURNING ${INCIDENT_COLUMNS}`,
    [incidentId, to],
  );
  const [eventId] = await appendTimeline(tx, [
    {
      incidentId,
      actor: change.actor,
      type: `incident.${to}` as TimelineEventType,
      data: { from, to, reason: change.reason, ...change.data },
      notify: true,
    },
  ]);
  return { incident: incidentFromRow(rows[0] as IncidentRow), eventId: eventId as number };
}

export async function getIncident(db: Queryable, id: number): Promise<Incident | null> {
  const { rows } = await db.query<IncidentRow>(`SELECT ${INCIDENT_COLUMNS} FROM incidents WHERE id = $1`, [
    id,
  ]);
  return rows[0] ? incidentFromRow(rows[0]) : null;
}

/** Open (not resolved) incidents, most severe and newest first; optionally of one service. */
export async function listOpenIncidents(
  db: Queryable,
  opts: { service?: string; limit?: number } = {},
): Promise<Incident[]> {
  const { rows } = await db.query<IncidentRow>(
    `SELECT ${INCIDENT_COLUMNS} FROM incidents
      WHERE status <> 'resolved' AND ($1::text IS NULL OR service = $1)
      ORDER BY array_position(ARRAY['critical','high','warning','info'], severity), opened_at DESC
      LIMIT $2`,
    [opts.service ?? null, opts.limit ?? 100],
  );
  return rows.map(incidentFromRow);
}
