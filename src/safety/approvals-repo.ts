import type { Queryable } from '../store/db.js';

export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired' | 'cancelled';

/** What the approver is shown, stored as shown (the Slack packet is rebuilt from it). */
export interface ApprovalPacket {
  incident: { id: number; title: string; service: string; severity: string };
  runbook: { id: string; name: string };
  step: { id: string; action: string; description: string; position: number; of: number };
  hypothesis: string | null;
  target: string;
  /** the rendered config, secrets masked */
  config: Record<string, unknown>;
  evidence: { diagnostic: string; status: string; summary: string }[];
  /** what is re-checked right before acting */
  preconditions: string[];
  tier: string;
  tierWhy: string;
  blastRadius: string;
  rollback: string;
  verification: string | null;
  /** the P1 rule applies: the approver must not be who asked for the run */
  secondPersonRequired: boolean;
}

export interface Approval {
  id: number;
  stepRowId: number;
  incidentId: number;
  executionId: number;
  status: ApprovalStatus;
  approvers: string[];
  requestedBy: string;
  packet: ApprovalPacket;
  requestedAt: Date;
  expiresAt: Date;
  decidedBy: string | null;
  decidedAt: Date | null;
  revision: number;
  /** Postgres' clock when read: expiry is judged by it, never by a worker's */
  now: Date;
}

interface Row {
  id: number;
  step_row_id: number;
  incident_id: number;
  execution_id: number;
  status: ApprovalStatus;
  approvers: string[];
  requested_by: string;
  packet: ApprovalPacket;
  requested_at: Date;
  expires_at: Date;
  decided_by: string | null;
  decided_at: Date | null;
  revision: number;
  now: Date;
}

const COLUMNS =
  'id, step_row_id, incident_id, execution_id, status, approvers, requested_by, packet, requested_at, expires_at, decided_by, decided_at, revision, now() AS now';

function fromRow(r: Row): Approval {
  return {
    id: r.id,
    stepRowId: r.step_row_id,
    incidentId: r.incident_id,
    executionId: r.execution_id,
    status: r.status,
    approvers: r.approvers,
    requestedBy: r.requested_by,
    packet: r.packet,
    requestedAt: r.requested_at,
    expiresAt: r.expires_at,
    decidedBy: r.decided_by,
    decidedAt: r.decided_at,
    revision: r.revision,
    now: r.now,
  };
}

/** One request per step (a re-run job finds the existing one). */
export async function createApproval(
  db: Queryable,
  input: {
    stepRowId: number;
    incidentId: number;
    executionId: number;
    approvers: string[];
    requestedBy: string;
    packet: ApprovalPacket;
    timeoutMs: number;
  },
): Promise<Approval> {
  const { rows } = await db.query<Row>(
    `INSERT INTO approval_requests (step_row_id, incident_id, execution_id, approvers, requested_by, packet, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, now() + $7::bigint * interval '1 millisecond')
     ON CONFLICT (step_row_id) DO UPDATE SET step_row_id = EXCLUDED.step_row_id
     RETURNING ${COLUMNS}`,
    [
      input.stepRowId,
      input.incidentId,
      input.executionId,
      JSON.stringify(input.approvers),
      input.requestedBy,
      JSON.stringify(input.packet),
      input.timeoutMs,
    ],
  );
  return fromRow(rows[0] as Row);
}

export async function getApproval(
  db: Queryable,
  id: number,
  opts: { forUpdate?: boolean } = {},
): Promise<Approval | null> {
  const { rows } = await db.query<Row>(
    `SELECT ${COLUMNS} FROM approval_requests WHERE id = $1${opts.forUpdate ? ' FOR UPDATE' : ''}`,
    [id],
  );
  return rows[0] ? fromRow(rows[0]) : null;
}

export async function getApprovalOfStep(db: Queryable, stepRowId: number): Promise<Approval | null> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM approval_requests WHERE step_row_id = $1`, [
    stepRowId,
  ]);
  return rows[0] ? fromRow(rows[0]) : null;
}

/** Settles a pending request; false when it was no longer pending. */
export async function settleApproval(
  db: Queryable,
  id: number,
  status: Exclude<ApprovalStatus, 'pending'>,
  decidedBy: string | null,
): Promise<boolean> {
  const res = await db.query(
    `UPDATE approval_requests SET status = $2, decided_by = $3, decided_at = now(), revision = revision + 1
      WHERE id = $1 AND status = 'pending'`,
    [id, status, decidedBy],
  );
  return (res.rowCount ?? 0) > 0;
}
