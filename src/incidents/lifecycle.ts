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
}

/** Opens an incident and writes `incident.opened` (SQL function `open_incident`); call inside a transaction. */
export async function openIncident(
  tx: Queryable,
  input: NewIncident,
  actor: string,
): Promise<{ incident: Incident; eventId: number }> {
  const { rows } = await tx.query<{ id: number }>(
    'SELECT open_incident($1, $2, $3, $4, $5, $6, $7, $8, $9) AS id',
    [
      input.service,
      input.title,
      input.summary,
      input.severity,
      input.source,
      JSON.stringify(input.labels),
      JSON.stringify(input.links),
      input.firstSignalAt ?? null,
      actor,
    ],
  );
  const id = (rows[0] as { id: number }).id;
  const event = await tx.query<{ id: number }>(
    'SELECT max(id) AS id FROM timeline_events WHERE incident_id = $1',
    [id],
  );
  return { incident: (await getIncident(tx, id)) as Incident, eventId: (event.rows[0] as { id: number }).id };
}

/**
 * Moves an incident to `to`, writing `incident.<to>` in the same transaction (SQL function `transition_incident`,
 * which checks the `incident_transitions` table that TRANSITIONS mirrors). Locks the row, so concurrent transitions
 * serialise; a transition the machine does not allow throws TransitionError.
 */
export async function transitionIncident(
  tx: Queryable,
  incidentId: number,
  to: IncidentStatus,
  change: { actor: string; reason: string; data?: Record<string, unknown> },
): Promise<{ incident: Incident; eventId: number }> {
  let eventId: number;
  try {
    const { rows } = await tx.query<{ event_id: number }>(
      'SELECT transition_incident($1, $2, $3, $4, $5) AS event_id',
      [incidentId, to, change.actor, change.reason, JSON.stringify(change.data ?? {})],
    );
    eventId = (rows[0] as { event_id: number }).event_id;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'AS001') throw new TransitionError((err as Error).message);
    if (code === 'P0002') throw new NotFoundError((err as Error).message);
    throw err;
  }
  return { incident: (await getIncident(tx, incidentId)) as Incident, eventId };
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
