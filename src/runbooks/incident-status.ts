import type { IncidentStatus } from '../incidents/incident.js';
import { canTransition, transitionIncident } from '../incidents/lifecycle.js';
import type { Tx } from '../store/db.js';

async function statusOf(tx: Tx, incidentId: number): Promise<IncidentStatus | null> {
  const { rows } = await tx.query<{ status: IncidentStatus }>(
    'SELECT status FROM incidents WHERE id = $1 FOR UPDATE',
    [incidentId],
  );
  return rows[0]?.status ?? null;
}

/** open → investigating when a runbook starts; any other status is left alone. Returns the event id if it moved. */
export async function markInvestigating(tx: Tx, incidentId: number, reason: string): Promise<number | null> {
  if ((await statusOf(tx, incidentId)) !== 'open') return null;
  const { eventId } = await transitionIncident(tx, incidentId, 'investigating', { actor: 'ai-sre', reason });
  return eventId;
}

/** Hands the incident to people (→ escalated); resolved or already escalated incidents are left. */
export async function markEscalated(tx: Tx, incidentId: number, reason: string): Promise<number | null> {
  return moveIncident(tx, incidentId, 'escalated', reason);
}

/**
 * Moves the incident to `to` when the state machine allows it from where it is (a resolved incident stays resolved,
 * one already in `to` is left). Returns the event id if it moved.
 */
export async function moveIncident(
  tx: Tx,
  incidentId: number,
  to: IncidentStatus,
  reason: string,
  actor = 'ai-sre',
): Promise<number | null> {
  const status = await statusOf(tx, incidentId);
  if (status === null || status === to || !canTransition(status, to)) return null;
  const { eventId } = await transitionIncident(tx, incidentId, to, { actor, reason });
  return eventId;
}
