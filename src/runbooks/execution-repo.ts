import type { TemplateVars } from '../diagnostics/templating.js';
import { appendTimelineEvent } from '../incidents/timeline.js';
import type { Queryable, Tx } from '../store/db.js';
import type { Decision } from './decide.js';
import type { Finding } from './interpret.js';
import type { RunbookMatch } from './matcher.js';
import type { Runbook } from './runbook.schema.js';

/** A runbook run as stored; `runbook` is the snapshot the run uses, whatever the file says now. */
export interface Execution {
  id: number;
  incidentId: number;
  requestKey: string;
  runbookId: string;
  runbookVersion: string | null;
  runbookHash: string;
  runbook: Runbook;
  matchedBy: string;
  matchDetail: Record<string, unknown>;
  requestedBy: string;
  vars: TemplateVars;
  status: 'diagnosing' | 'decided';
  revision: number;
  decision: Decision | null;
  escalate: boolean;
  escalateReason: string | null;
  startedAt: Date;
  decidedAt: Date | null;
}

export interface StoredResult extends Finding {
  diagnosticId: string;
  position: number;
  type: string;
  durationMs: number;
  startedAt: Date;
  finishedAt: Date;
}

interface ExecutionRow {
  id: number;
  incident_id: number;
  request_key: string;
  runbook_id: string;
  runbook_version: string | null;
  runbook_hash: string;
  runbook: Runbook;
  matched_by: string;
  match_detail: Record<string, unknown>;
  requested_by: string;
  vars: TemplateVars;
  status: 'diagnosing' | 'decided';
  revision: number;
  decision: Decision | null;
  escalate: boolean;
  escalate_reason: string | null;
  started_at: Date;
  decided_at: Date | null;
}

const COLUMNS =
  'id, incident_id, request_key, runbook_id, runbook_version, runbook_hash, runbook, matched_by, match_detail, requested_by, vars, status, revision, decision, escalate, escalate_reason, started_at, decided_at';

function fromRow(r: ExecutionRow): Execution {
  return {
    id: r.id,
    incidentId: r.incident_id,
    requestKey: r.request_key,
    runbookId: r.runbook_id,
    runbookVersion: r.runbook_version,
    runbookHash: r.runbook_hash,
    runbook: r.runbook,
    matchedBy: r.matched_by,
    matchDetail: r.match_detail,
    requestedBy: r.requested_by,
    vars: r.vars,
    status: r.status,
    revision: r.revision,
    decision: r.decision,
    escalate: r.escalate,
    escalateReason: r.escalate_reason,
    startedAt: r.started_at,
    decidedAt: r.decided_at,
  };
}

/**
 * Records a run once per request key (re-delivered jobs find the same row), with its `runbook.started` event.
 * `created` is false when the row already existed.
 */
export async function createExecution(
  tx: Tx,
  input: {
    incidentId: number;
    requestKey: string;
    match: RunbookMatch;
    requestedBy: string;
    vars: TemplateVars;
  },
): Promise<{ execution: Execution; created: boolean; eventId: number | null }> {
  const { runbook, hash } = input.match.loaded;
  const inserted = await tx.query<ExecutionRow>(
    `INSERT INTO runbook_executions (incident_id, request_key, runbook_id, runbook_version, runbook_hash, runbook,
                                     matched_by, match_detail, requested_by, vars)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (incident_id, request_key) DO NOTHING
     RETURNING ${COLUMNS}`,
    [
      input.incidentId,
      input.requestKey,
      runbook.id,
      runbook.version ?? null,
      hash,
      JSON.stringify(runbook),
      input.match.matchedBy,
      JSON.stringify(input.match.detail),
      input.requestedBy,
      JSON.stringify(input.vars),
    ],
  );
  const row = inserted.rows[0];
  if (!row) {
    const existing = await tx.query<ExecutionRow>(
      `SELECT ${COLUMNS} FROM runbook_executions WHERE incident_id = $1 AND request_key = $2`,
      [input.incidentId, input.requestKey],
    );
    return { execution: fromRow(existing.rows[0] as ExecutionRow), created: false, eventId: null };
  }
  const event = await appendEvent(tx, input.incidentId, input.requestedBy, 'runbook.started', true, {
    executionId: row.id,
    runbookId: runbook.id,
    name: runbook.name,
    version: runbook.version ?? null,
    hash,
    matchedBy: input.match.matchedBy,
    detail: input.match.detail,
    diagnostics: runbook.diagnostics.map((d) => d.id),
  });
  return { execution: fromRow(row), created: true, eventId: event };
}

export async function getExecution(
  db: Queryable,
  id: number,
  opts: { forUpdate?: boolean } = {},
): Promise<Execution | null> {
  const { rows } = await db.query<ExecutionRow>(
    `SELECT ${COLUMNS} FROM runbook_executions WHERE id = $1${opts.forUpdate ? ' FOR UPDATE' : ''}`,
    [id],
  );
  return rows[0] ? fromRow(rows[0]) : null;
}

/** see appendTimelineEvent */
export const appendEvent = appendTimelineEvent;

/**
 * Stores a diagnostic's result once (a re-run job finds it stored and changes nothing), with its
 * `diagnostic.completed` event, and bumps the execution's revision so the Slack summary is edited.
 * Returns the event id, or null when the result was already there.
 */
export async function storeResult(
  db: Queryable,
  execution: Pick<Execution, 'id' | 'incidentId'>,
  r: StoredResult,
): Promise<number | null> {
  const { rows } = await db.query<{ event_id: number | null }>(
    `WITH ins AS (
       INSERT INTO diagnostic_results (execution_id, diagnostic_id, position, type, status, value, result, summary, error,
                                       duration_ms, started_at, finished_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (execution_id, diagnostic_id) DO NOTHING
       RETURNING diagnostic_id
     ), bump AS (
       UPDATE runbook_executions SET revision = revision + 1 WHERE id = $1 AND EXISTS (SELECT 1 FROM ins)
     )
     INSERT INTO timeline_events (incident_id, actor, type, data, notify)
     SELECT $13, 'ai-sre', 'diagnostic.completed', $14, false FROM ins
     RETURNING id AS event_id`,
    [
      execution.id,
      r.diagnosticId,
      r.position,
      r.type,
      r.status,
      JSON.stringify(r.value),
      JSON.stringify(r.result),
      r.summary,
      r.error,
      r.durationMs,
      r.startedAt,
      r.finishedAt,
      execution.incidentId,
      JSON.stringify({
        executionId: execution.id,
        diagnostic: r.diagnosticId,
        type: r.type,
        status: r.status,
        value: r.value,
        summary: r.summary,
        error: r.error,
        durationMs: r.durationMs,
      }),
    ],
  );
  return rows[0]?.event_id ?? null;
}

interface ResultRow {
  diagnostic_id: string;
  position: number;
  type: string;
  status: Finding['status'];
  value: Finding['value'];
  result: Record<string, unknown>;
  summary: string;
  error: string | null;
  duration_ms: number;
  started_at: Date;
  finished_at: Date;
}

export async function listResults(db: Queryable, executionId: number): Promise<StoredResult[]> {
  const { rows } = await db.query<ResultRow>(
    `SELECT diagnostic_id, position, type, status, value, result, summary, error, duration_ms, started_at, finished_at
       FROM diagnostic_results WHERE execution_id = $1 ORDER BY position`,
    [executionId],
  );
  return rows.map((r) => ({
    diagnosticId: r.diagnostic_id,
    position: r.position,
    type: r.type,
    status: r.status,
    value: r.value,
    result: r.result,
    summary: r.summary,
    error: r.error,
    durationMs: r.duration_ms,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  }));
}

/** Records the decision and plan on the execution (once: a decided execution is left alone). */
export async function storeDecision(
  tx: Tx,
  execution: Execution,
  decision: Decision,
  escalate: { escalate: boolean; reason: string | null },
): Promise<void> {
  await tx.query(
    `UPDATE runbook_executions
        SET status = 'decided', decision = $2, plan = $3, escalate = $4, escalate_reason = $5, decided_at = now(),
            revision = revision + 1
      WHERE id = $1 AND status = 'diagnosing'`,
    [
      execution.id,
      JSON.stringify(decision),
      JSON.stringify(decision.plan),
      escalate.escalate,
      escalate.reason,
    ],
  );
}
