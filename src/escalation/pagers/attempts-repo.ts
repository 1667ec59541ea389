import type { Queryable } from '../../store/db.js';
import type { AttemptOutcome, PageAction, PageAttempt, PageAttemptStore } from './pager.js';

/** A stored page attempt (table page_attempts). */
export interface StoredPageAttempt extends PageAttempt {
  id: number;
}

interface Row {
  id: number;
  incident_id: number;
  pager: string;
  action: PageAction;
  dedup_key: string;
  attempt: number;
  outcome: AttemptOutcome;
  http_status: number | null;
  error: string | null;
  external_ref: string | null;
  started_at: Date;
  finished_at: Date;
}

/** Inserts attempts in one statement, in the given order (ids ascend with it). */
export async function recordPageAttempts(db: Queryable, attempts: readonly PageAttempt[]): Promise<number[]> {
  if (attempts.length === 0) return [];
  const rows = attempts.map((a, ord) => ({
    ord,
    incident_id: a.incidentId,
    pager: a.pager,
    action: a.action,
    dedup_key: a.dedupKey,
    attempt: a.attempt,
    outcome: a.outcome,
    http_status: a.httpStatus,
    error: a.error ?? null,
    external_ref: a.externalRef ?? null,
    started_at: a.startedAt.toISOString(),
    finished_at: a.finishedAt.toISOString(),
  }));
  const { rows: inserted } = await db.query<{ id: number }>(
    `INSERT INTO page_attempts (incident_id, pager, action, dedup_key, attempt, outcome, http_status, error,
                                external_ref, started_at, finished_at)
     SELECT r.incident_id, r.pager, r.action, r.dedup_key, r.attempt, r.outcome, r.http_status, r.error,
            r.external_ref, r.started_at, r.finished_at
       FROM jsonb_to_recordset($1::jsonb) AS r(ord int, incident_id bigint, pager text, action text, dedup_key text,
            attempt int, outcome text, http_status int, error text, external_ref text, started_at timestamptz,
            finished_at timestamptz)
      ORDER BY r.ord
     RETURNING id`,
    [JSON.stringify(rows)],
  );
  return inserted.map((r) => r.id).sort((a, b) => a - b);
}

/** Every attempt for an incident, oldest first. */
export async function listPageAttempts(db: Queryable, incidentId: number): Promise<StoredPageAttempt[]> {
  const { rows } = await db.query<Row>(
    `SELECT id, incident_id, pager, action, dedup_key, attempt, outcome, http_status, error, external_ref,
            started_at, finished_at
       FROM page_attempts WHERE incident_id = $1 ORDER BY id`,
    [incidentId],
  );
  return rows.map((r) => ({
    id: r.id,
    incidentId: r.incident_id,
    pager: r.pager,
    action: r.action,
    dedupKey: r.dedup_key,
    attempt: r.attempt,
    outcome: r.outcome,
    httpStatus: r.http_status,
    error: r.error ?? undefined,
    externalRef: r.external_ref ?? undefined,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  }));
}

/**
 * Names of the pagers that delivered a trigger for the incident, in first-delivery order: who must hear its
 * acknowledge and resolve.
 */
export async function deliveredPagers(db: Queryable, incidentId: number): Promise<string[]> {
  const { rows } = await db.query<{ pager: string }>(
    `SELECT pager FROM page_attempts
      WHERE incident_id = $1 AND action = 'trigger' AND outcome = 'succeeded'
      GROUP BY pager ORDER BY min(id)`,
    [incidentId],
  );
  return rows.map((r) => r.pager);
}

/** The {@link PageAttemptStore} the fallback chain writes to, over a pool or a transaction's client. */
export function createPageAttemptsRepo(db: Queryable): PageAttemptStore {
  return {
    async recordAttempts(attempts) {
      await recordPageAttempts(db, attempts);
    },
  };
}
