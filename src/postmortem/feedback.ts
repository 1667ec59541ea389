import { z } from 'zod';
import { incidentRef } from '../incidents/incident.js';
import { appendTimelineEvent } from '../incidents/timeline.js';
import { isCommunication } from '../safety/action-catalog.js';
import { type Db, type Queryable, withTransaction } from '../store/db.js';

/**
 * What people say back: "Was this the right call?" on each automated action, and the resolution note (cause and
 * fix in their words). Both are stored in their own tables and on the timeline (`feedback.action`,
 * `resolution.noted`), so postmortems, the false-action rate and similar-incident search see them.
 */

/** step statuses in which the action ran (or may have): the ones a person can judge */
const ACTED = ['succeeded', 'failed', 'verifying', 'verified', 'verification_failed', 'unknown'];

export type Verdict = 'right' | 'wrong';

export interface FeedbackOutcome {
  ok: boolean;
  /** what to tell the person, in mrkdwn (our words and ids only) */
  message: string;
  incidentId?: number;
  eventId?: number;
}

/** Records (or changes) one person's verdict on one executed step, and bumps the run's revision for the Slack view. */
export async function recordActionFeedback(
  db: Db,
  input: { stepRowId: number; userId: string; verdict: Verdict },
): Promise<FeedbackOutcome> {
  return withTransaction(db, async (tx) => {
    const { rows } = await tx.query<{
      incident_id: number;
      execution_id: number;
      step_id: string;
      action: string;
      status: string;
    }>(
      'SELECT incident_id, execution_id, step_id, action, status FROM remediation_steps WHERE id = $1 FOR UPDATE',
      [input.stepRowId],
    );
    const step = rows[0];
    if (!step) return { ok: false, message: `There is no remediation step ${input.stepRowId}.` };
    if (!ACTED.includes(step.status) || isCommunication(step.action)) {
      return {
        ok: false,
        message: `\`${step.step_id}\` did not act (${step.status}); there is nothing to judge.`,
      };
    }
    const { rows: previous } = await tx.query<{ verdict: Verdict }>(
      'SELECT verdict FROM action_feedback WHERE step_row_id = $1 AND user_id = $2',
      [input.stepRowId, input.userId],
    );
    if (previous[0]?.verdict === input.verdict) {
      return {
        ok: true,
        message: `You already said ${input.verdict === 'right' ? 'it was the right call' : 'it was the wrong call'}.`,
        incidentId: step.incident_id,
      };
    }
    await tx.query(
      `INSERT INTO action_feedback (incident_id, step_row_id, user_id, verdict) VALUES ($1, $2, $3, $4)
       ON CONFLICT (step_row_id, user_id) DO UPDATE SET verdict = EXCLUDED.verdict, updated_at = now()`,
      [step.incident_id, input.stepRowId, input.userId, input.verdict],
    );
    await tx.query('UPDATE runbook_executions SET revision = revision + 1 WHERE id = $1', [
      step.execution_id,
    ]);
    const eventId = await appendTimelineEvent(tx, step.incident_id, input.userId, 'feedback.action', false, {
      stepRowId: input.stepRowId,
      step: step.step_id,
      action: step.action,
      verdict: input.verdict,
      ...(previous[0] ? { changedFrom: previous[0].verdict } : {}),
    });
    return {
      ok: true,
      message:
        input.verdict === 'right'
          ? `Thanks: \`${step.step_id}\` recorded as the right call.`
          : `Thanks: \`${step.step_id}\` recorded as the wrong call; it counts towards the false-action rate and the runbook suggestions.`,
      incidentId: step.incident_id,
      eventId,
    };
  });
}

/** One executed step of a run with the verdicts people gave it. */
export interface JudgedStep {
  stepRowId: number;
  step: string;
  action: string;
  status: string;
  right: number;
  wrong: number;
}

/** The run's steps that acted, with their verdict counts; the revision the Slack message shows. */
export async function feedbackOf(
  db: Queryable,
  executionId: number,
): Promise<{ incidentId: number; steps: JudgedStep[]; revision: number } | null> {
  const { rows: runs } = await db.query<{ incident_id: number; revision: number }>(
    'SELECT incident_id, revision FROM runbook_executions WHERE id = $1',
    [executionId],
  );
  const run = runs[0];
  if (!run) return null;
  const { rows } = await db.query<{
    id: number;
    step_id: string;
    action: string;
    status: string;
    right: number;
    wrong: number;
  }>(
    `SELECT s.id, s.step_id, s.action, s.status,
            count(*) FILTER (WHERE f.verdict = 'right')::int AS right,
            count(*) FILTER (WHERE f.verdict = 'wrong')::int AS wrong
       FROM remediation_steps s LEFT JOIN action_feedback f ON f.step_row_id = s.id
      WHERE s.execution_id = $1 AND s.status = ANY($2::text[])
      GROUP BY s.id ORDER BY s.position, s.id`,
    [executionId, ACTED],
  );
  const steps = rows
    .filter((r) => !isCommunication(r.action))
    .map((r) => ({
      stepRowId: r.id,
      step: r.step_id,
      action: r.action,
      status: r.status,
      right: r.right,
      wrong: r.wrong,
    }));
  return { incidentId: run.incident_id, steps, revision: run.revision };
}

export const ResolutionNote = z
  .object({
    cause: z.string().trim().max(1_000, { error: 'the cause is longer than 1000 characters' }).default(''),
    fix: z.string().trim().max(1_000, { error: 'the fix is longer than 1000 characters' }).default(''),
    note: z.string().trim().max(3_000, { error: 'the note is longer than 3000 characters' }).default(''),
  })
  .refine((n) => n.cause !== '' || n.fix !== '' || n.note !== '', {
    error: 'write at least the cause, the fix or a note',
    path: ['cause'],
  });
export type ResolutionNote = z.infer<typeof ResolutionNote>;

/** Stores a person's resolution note (`resolution.noted` on the timeline, in the thread). */
export async function recordResolutionNote(
  db: Db,
  input: { incidentId: number; userId: string; note: ResolutionNote },
): Promise<{ ok: true; noteId: number; eventId: number } | { ok: false; message: string }> {
  return withTransaction(db, async (tx) => {
    const { rows } = await tx.query('SELECT 1 FROM incidents WHERE id = $1 FOR UPDATE', [input.incidentId]);
    if (rows.length === 0)
      return { ok: false, message: `There is no incident ${incidentRef(input.incidentId)}.` };
    const { rows: inserted } = await tx.query<{ id: number }>(
      `INSERT INTO resolution_notes (incident_id, user_id, cause, fix, note) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
      [input.incidentId, input.userId, input.note.cause, input.note.fix, input.note.note],
    );
    const noteId = (inserted[0] as { id: number }).id;
    const eventId = await appendTimelineEvent(tx, input.incidentId, input.userId, 'resolution.noted', true, {
      noteId,
      cause: input.note.cause,
      fix: input.note.fix,
      note: input.note.note,
    });
    return { ok: true, noteId, eventId };
  });
}
