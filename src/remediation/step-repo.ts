import type { Queryable } from '../store/db.js';

export type StepStatus =
  | 'ready'
  | 'awaiting_approval'
  | 'approved'
  | 'started'
  | 'succeeded'
  | 'failed'
  | 'verifying'
  | 'verified'
  | 'verification_failed'
  | 'unknown'
  | 'refused'
  | 'rejected'
  | 'expired'
  | 'skipped'
  | 'dry_run';

/** Statuses after which the plan goes on to its next step. */
export const DONE_OK: ReadonlySet<StepStatus> = new Set(['verified', 'skipped', 'dry_run']);
/** Statuses that stop the plan (it has escalated). */
export const STOPPED: ReadonlySet<StepStatus> = new Set([
  'failed',
  'verification_failed',
  'refused',
  'rejected',
  'expired',
]);
/** Statuses meaning the action may have changed something (counted as an attempt and as an action). */
export const ACTED: readonly StepStatus[] = [
  'started',
  'succeeded',
  'failed',
  'verifying',
  'verified',
  'verification_failed',
  'unknown',
];

export interface StepRow {
  id: number;
  executionId: number;
  incidentId: number;
  position: number;
  stepId: string;
  action: string;
  tier: 'safe' | 'guarded' | 'forbidden';
  mode: 'shadow' | 'supervised' | 'autonomous';
  status: StepStatus;
  target: string | null;
  config: Record<string, unknown>;
  reason: string | null;
  result: Record<string, unknown> | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  durationMs: number | null;
  verifyDeadline: Date | null;
  verifyChecks: number;
}

interface Row {
  id: number;
  execution_id: number;
  incident_id: number;
  position: number;
  step_id: string;
  action: string;
  tier: StepRow['tier'];
  mode: StepRow['mode'];
  status: StepStatus;
  target: string | null;
  config: Record<string, unknown>;
  reason: string | null;
  result: Record<string, unknown> | null;
  started_at: Date | null;
  finished_at: Date | null;
  duration_ms: number | null;
  verify_deadline: Date | null;
  verify_checks: number;
}

const COLUMNS =
  'id, execution_id, incident_id, position, step_id, action, tier, mode, status, target, config, reason, result, started_at, finished_at, duration_ms, verify_deadline, verify_checks';

function fromRow(r: Row): StepRow {
  return {
    id: r.id,
    executionId: r.execution_id,
    incidentId: r.incident_id,
    position: r.position,
    stepId: r.step_id,
    action: r.action,
    tier: r.tier,
    mode: r.mode,
    status: r.status,
    target: r.target,
    config: r.config,
    reason: r.reason,
    result: r.result,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    durationMs: r.duration_ms,
    verifyDeadline: r.verify_deadline,
    verifyChecks: r.verify_checks,
  };
}

export async function getStep(
  db: Queryable,
  where: { id: number } | { executionId: number; position: number },
  opts: { forUpdate?: boolean } = {},
): Promise<StepRow | null> {
  const lock = opts.forUpdate ? ' FOR UPDATE' : '';
  const { rows } =
    'id' in where
      ? await db.query<Row>(`SELECT ${COLUMNS} FROM remediation_steps WHERE id = $1${lock}`, [where.id])
      : await db.query<Row>(
          `SELECT ${COLUMNS} FROM remediation_steps WHERE execution_id = $1 AND position = $2${lock}`,
          [where.executionId, where.position],
        );
  return rows[0] ? fromRow(rows[0]) : null;
}

export async function listSteps(db: Queryable, executionId: number): Promise<StepRow[]> {
  const { rows } = await db.query<Row>(
    `SELECT ${COLUMNS} FROM remediation_steps WHERE execution_id = $1 ORDER BY position`,
    [executionId],
  );
  return rows.map(fromRow);
}

/** Records a gated step once; null when a concurrent job already did (the caller reloads it). */
export async function insertStep(
  db: Queryable,
  s: Pick<
    StepRow,
    | 'executionId'
    | 'incidentId'
    | 'position'
    | 'stepId'
    | 'action'
    | 'tier'
    | 'mode'
    | 'status'
    | 'target'
    | 'config'
    | 'reason'
  >,
): Promise<StepRow | null> {
  const { rows } = await db.query<Row>(
    `INSERT INTO remediation_steps (execution_id, incident_id, position, step_id, action, tier, mode, status, target, config, reason)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (execution_id, position) DO NOTHING
     RETURNING ${COLUMNS}`,
    [
      s.executionId,
      s.incidentId,
      s.position,
      s.stepId,
      s.action,
      s.tier,
      s.mode,
      s.status,
      s.target,
      JSON.stringify(s.config),
      s.reason,
    ],
  );
  return rows[0] ? fromRow(rows[0]) : null;
}

/**
 * Moves a step from one of `from` to `to` (with optional fields); returns the updated row, or null when the step was
 * no longer in `from` (another worker moved it first, so this one must do nothing).
 */
export async function moveStep(
  db: Queryable,
  id: number,
  from: StepStatus[],
  to: StepStatus,
  fields: {
    reason?: string | null;
    result?: Record<string, unknown>;
    started?: boolean;
    finished?: boolean;
    durationMs?: number;
    verifyWithinMs?: number;
    verifyChecks?: number;
  } = {},
): Promise<StepRow | null> {
  const { rows } = await db.query<Row>(
    `UPDATE remediation_steps
        SET status = $3,
            reason = CASE WHEN $4::boolean THEN $5 ELSE reason END,
            result = COALESCE($6::jsonb, result),
            started_at = CASE WHEN $7::boolean THEN now() ELSE started_at END,
            finished_at = CASE WHEN $8::boolean THEN now() ELSE finished_at END,
            duration_ms = COALESCE($9, duration_ms),
            verify_deadline = CASE WHEN $10::bigint IS NULL THEN verify_deadline
                                   ELSE now() + $10::bigint * interval '1 millisecond' END,
            verify_checks = COALESCE($11, verify_checks),
            updated_at = now()
      WHERE id = $1 AND status = ANY($2::text[])
      RETURNING ${COLUMNS}`,
    [
      id,
      from,
      to,
      fields.reason !== undefined,
      fields.reason ?? null,
      fields.result === undefined ? null : JSON.stringify(fields.result),
      fields.started === true,
      fields.finished === true,
      fields.durationMs ?? null,
      fields.verifyWithinMs ?? null,
      fields.verifyChecks ?? null,
    ],
  );
  return rows[0] ? fromRow(rows[0]) : null;
}

/** Runs of this incident, other than `executionId`, whose remediation acted (for the attempts-per-incident limit). */
export async function countOtherAttempts(
  db: Queryable,
  incidentId: number,
  executionId: number,
): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(DISTINCT execution_id)::int AS n FROM remediation_steps
      WHERE incident_id = $1 AND execution_id <> $2 AND status = ANY($3::text[])`,
    [incidentId, executionId, ACTED],
  );
  return rows[0]?.n ?? 0;
}

/** Actions of this incident that ran (or may have), for the actions-per-incident limit (Postgres is the record). */
export async function countActions(db: Queryable, incidentId: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM remediation_steps WHERE incident_id = $1 AND status = ANY($2::text[])`,
    [incidentId, ACTED],
  );
  return rows[0]?.n ?? 0;
}
