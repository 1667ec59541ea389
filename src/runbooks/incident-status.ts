import type { IncidentStatus } from '../incidents/incident.js';
import { transitionIncident } from '../incidents/lifecycle.js';
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

/** Hands the incident to people (open/investigating → escalated); resolved or already handled incidents are left. */
export async function markEscalated(tx: Tx, incidentId: number, reason: string): Promise<number | null> {
  const status = await statusOf(tx, incidentId);
  if (status !== 'open' && status !== 'investigating') return null;
  const { eventId } = await transitionIncident(tx, incidentId, 'escalated', { actor: 'ai-sre', reason });
  return eventId;
}
