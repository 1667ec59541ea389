import type { Queryable } from '../store/db.js';
import type { PolicyTarget } from './oncall.schema.js';
import type { EscalationCategory } from './reasons.js';

export const ESCALATION_STATUSES = [
  'paging',
  'acknowledged',
  'exhausted',
  'deferred',
  'digested',
  'resolved',
  'reassigned',
  'joined',
] as const;
export type EscalationStatus = (typeof ESCALATION_STATUSES)[number];

/** statuses in which the escalation still speaks for the incident (a newer escalated event joins it) */
export const ACTIVE_STATUSES: readonly EscalationStatus[] = [
  'paging',
  'acknowledged',
  'exhausted',
  'deferred',
];

/** The escalation policy as it was when the escalation started; mid-incident edits of oncall.yml do not reach it. */
export interface PolicySnapshot {
  /** the policy's name in oncall.yml, or `built-in` / `reassigned` */
  name: string;
  team: string | null;
  levels: { targets: PolicyTarget[]; delayMinutes: number }[];
  /** how many times the levels run again after the last */
  repeat: number;
}

/** Someone (or a group) a step paged. */
export interface PagedTarget {
  name: string;
  slackUser: string | null;
}

export interface Escalation {
  id: number;
  incidentId: number;
  triggerEventId: number;
  category: EscalationCategory;
  reason: string;
  route: string;
  team: string | null;
  policy: PolicySnapshot;
  status: EscalationStatus;
  step: number;
  nextAt: Date | null;
  paged: PagedTarget[];
  ackedBy: string | null;
  ackedAt: Date | null;
  revision: number;
  createdAt: Date;
  /** when the current step was first tried (set while its pages keep failing) */
  stepStartedAt: Date | null;
}

interface EscalationRow {
  id: number;
  incident_id: number;
  trigger_event_id: number;
  category: EscalationCategory;
  reason: string;
  route: string;
  team: string | null;
  policy: PolicySnapshot;
  status: EscalationStatus;
  step: number;
  next_at: Date | null;
  paged: PagedTarget[];
  acked_by: string | null;
  acked_at: Date | null;
  revision: number;
  created_at: Date;
  step_started_at: Date | null;
}

export const ESCALATION_COLUMNS =
  'id, incident_id, trigger_event_id, category, reason, route, team, policy, status, step, next_at, paged, acked_by, acked_at, revision, created_at, step_started_at';

function fromRow(r: EscalationRow): Escalation {
  return {
    id: r.id,
    incidentId: r.incident_id,
    triggerEventId: r.trigger_event_id,
    category: r.category,
    reason: r.reason,
    route: r.route,
    team: r.team,
    policy: r.policy,
    status: r.status,
    step: r.step,
    nextAt: r.next_at,
    paged: r.paged,
    ackedBy: r.acked_by,
    ackedAt: r.acked_at,
    revision: r.revision,
    createdAt: r.created_at,
    stepStartedAt: r.step_started_at,
  };
}

/** Total steps of a policy walk: every level, once more per repeat. */
export function totalSteps(policy: PolicySnapshot): number {
  return policy.levels.length * (policy.repeat + 1);
}

export async function getEscalation(
  db: Queryable,
  id: number,
  opts: { forUpdate?: boolean } = {},
): Promise<Escalation | null> {
  const { rows } = await db.query<EscalationRow>(
    `SELECT ${ESCALATION_COLUMNS} FROM escalations WHERE id = $1${opts.forUpdate ? ' FOR UPDATE' : ''}`,
    [id],
  );
  return rows[0] ? fromRow(rows[0]) : null;
}

/** The incident's escalations, oldest first. */
export async function listEscalations(db: Queryable, incidentId: number): Promise<Escalation[]> {
  const { rows } = await db.query<EscalationRow>(
    `SELECT ${ESCALATION_COLUMNS} FROM escalations WHERE incident_id = $1 ORDER BY id`,
    [incidentId],
  );
  return rows.map(fromRow);
}

/** The escalation currently speaking for the incident, if any. */
export async function activeEscalation(
  db: Queryable,
  incidentId: number,
  opts: { forUpdate?: boolean } = {},
): Promise<Escalation | null> {
  const { rows } = await db.query<EscalationRow>(
    `SELECT ${ESCALATION_COLUMNS} FROM escalations
      WHERE incident_id = $1 AND status = ANY($2::text[]) ORDER BY id DESC LIMIT 1${opts.forUpdate ? ' FOR UPDATE' : ''}`,
    [incidentId, ACTIVE_STATUSES],
  );
  return rows[0] ? fromRow(rows[0]) : null;
}

export interface NewEscalation {
  incidentId: number;
  triggerEventId: number;
  category: EscalationCategory;
  reason: string;
  route: string;
  team: string | null;
  policy: PolicySnapshot;
  status: EscalationStatus;
  /** seconds from now (Postgres' clock) until step 0 is due; null: nothing due */
  dueInSeconds: number | null;
}

/** Inserts an escalation; null when one for this trigger event exists already (a re-run job). */
export async function insertEscalation(db: Queryable, input: NewEscalation): Promise<Escalation | null> {
  const { rows } = await db.query<EscalationRow>(
    `INSERT INTO escalations (incident_id, trigger_event_id, category, reason, route, team, policy, status, next_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
             CASE WHEN $9::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $9::float8) END)
     ON CONFLICT (incident_id, trigger_event_id) DO NOTHING
     RETURNING ${ESCALATION_COLUMNS}`,
    [
      input.incidentId,
      input.triggerEventId,
      input.category,
      input.reason,
      input.route,
      input.team,
      JSON.stringify(input.policy),
      input.status,
      input.dueInSeconds,
    ],
  );
  return rows[0] ? fromRow(rows[0]) : null;
}

/**
 * Changes an escalation's status (and optionally other fields) when it is in one of `from`; returns the updated row,
 * or null when it had moved on (the caller's view was stale). `dueInSeconds` sets next_at from Postgres' clock.
 */
export async function updateEscalation(
  db: Queryable,
  id: number,
  from: readonly EscalationStatus[],
  change: {
    status?: EscalationStatus;
    step?: number;
    /** seconds from now until the next step; null clears next_at; undefined leaves it */
    dueInSeconds?: number | null;
    paged?: PagedTarget[];
    ackedBy?: string;
    /** 'now' marks the current step's first try; null clears it; undefined leaves it */
    stepStartedAt?: 'now' | null;
  },
): Promise<Escalation | null> {
  const { rows } = await db.query<EscalationRow>(
    `UPDATE escalations SET
        status = COALESCE($3, status),
        step = COALESCE($4, step),
        next_at = CASE WHEN $5::boolean THEN
                    CASE WHEN $6::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $6::float8) END
                  ELSE next_at END,
        paged = COALESCE($7::jsonb, paged),
        acked_by = COALESCE($8, acked_by),
        acked_at = CASE WHEN $8::text IS NULL THEN acked_at ELSE now() END,
        step_started_at = CASE $9::text WHEN 'now' THEN COALESCE(step_started_at, now()) WHEN 'clear' THEN NULL
                          ELSE step_started_at END,
        revision = revision + 1,
        updated_at = now()
      WHERE id = $1 AND status = ANY($2::text[])
      RETURNING ${ESCALATION_COLUMNS}`,
    [
      id,
      from,
      change.status ?? null,
      change.step ?? null,
      change.dueInSeconds !== undefined,
      change.dueInSeconds ?? null,
      change.paged ? JSON.stringify(change.paged) : null,
      change.ackedBy ?? null,
      change.stepStartedAt === 'now' ? 'now' : change.stepStartedAt === null ? 'clear' : null,
    ],
  );
  return rows[0] ? fromRow(rows[0]) : null;
}

/** Milliseconds from Postgres' now until `at` (never negative): delays come from the database's clock, not ours. */
export async function msUntil(db: Queryable, at: Date | null): Promise<number> {
  if (!at) return 0;
  const { rows } = await db.query<{ ms: number }>(
    'SELECT GREATEST(0, EXTRACT(EPOCH FROM ($1::timestamptz - now())) * 1000)::float8 AS ms',
    [at],
  );
  return Math.round(rows[0]?.ms ?? 0);
}

/**
 * Claims the page of one target at one step before it is sent. True: send it (a first try, or a retry after a
 * recorded failure). False: it was sent already, or a previous try's outcome is unknown (its worker or Postgres went
 * away mid-send) — either way it is not sent again.
 */
export async function claimPage(
  db: Queryable,
  escalationId: number,
  step: number,
  targetKey: string,
): Promise<boolean> {
  const { rows } = await db.query(
    `INSERT INTO escalation_pages (escalation_id, step, target_key, status) VALUES ($1, $2, $3, 'sending')
     ON CONFLICT (escalation_id, step, target_key) DO UPDATE SET status = 'sending', error = NULL, updated_at = now()
       WHERE escalation_pages.status = 'failed'
     RETURNING 1`,
    [escalationId, step, targetKey],
  );
  return rows.length > 0;
}

/** Records how a claimed page went. */
export async function settlePage(
  db: Queryable,
  escalationId: number,
  step: number,
  targetKey: string,
  outcome: { sent: boolean; pager: string | null; error: string | null },
): Promise<void> {
  await db.query(
    `UPDATE escalation_pages SET status = $4, pager = $5, error = $6, updated_at = now()
      WHERE escalation_id = $1 AND step = $2 AND target_key = $3`,
    [escalationId, step, targetKey, outcome.sent ? 'sent' : 'failed', outcome.pager, outcome.error],
  );
}
