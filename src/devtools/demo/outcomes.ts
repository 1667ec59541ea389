import type pg from 'pg';
import { ACTED } from '../../remediation/step-repo.js';
import type { Decision } from '../../runbooks/decide.js';

/** One remediation step as the game day scores it. */
export interface StepOutcome {
  stepId: string;
  action: string;
  tier: string;
  status: string;
  /** the approval's outcome and who decided, when the step needed one */
  approval: { status: string; decidedBy: string | null } | null;
}

/** What became of one incident, read from Postgres (the bot's record, not the game day's guess). */
export interface IncidentOutcome {
  id: number;
  service: string;
  title: string;
  status: string;
  source: string;
  /** names of the alerts attached, in the order they arrived */
  alerts: string[];
  openedAt: Date;
  firstSignalAt: Date;
  resolvedAt: Date | null;
  escalatedAt: Date | null;
  runbookId: string | null;
  /** the confirmed hypothesis, or null (nothing confirmed: the runbook's escalation) */
  hypothesis: string | null;
  decisionOutcome: 'remediate' | 'escalate' | null;
  escalation: { reason: string; team: string | null; why: string } | null;
  remediationStatus: string | null;
  steps: StepOutcome[];
  /** the escalation's pages as the timeline recorded them ("carol via slack (level 1)"), oldest first */
  pages: string[];
  /** the newest escalation's status (paging, acknowledged, exhausted, deferred, …), null when none started */
  escalationStatus: string | null;
}

interface IncidentRow {
  id: string;
  service: string;
  title: string;
  status: string;
  source: string;
  alerts: string[];
  opened_at: Date;
  first_signal_at: Date;
  resolved_at: Date | null;
  escalated_at: Date | null;
  runbook_id: string | null;
  decision: Decision | null;
  remediation_status: string | null;
  pages: { level?: number; targets?: { name?: string }[]; deliveredBy?: string[] }[];
  escalation_status: string | null;
}

/** Incidents opened at or after `since`, oldest first, with their first runbook run and its steps. */
export async function incidentsSince(db: pg.Pool, since: Date): Promise<IncidentOutcome[]> {
  const { rows } = await db.query<IncidentRow>(
    `SELECT i.id, i.service, i.title, i.status, i.source, i.opened_at, i.first_signal_at, i.resolved_at,
            (SELECT min(t.at) FROM timeline_events t
              WHERE t.incident_id = i.id AND t.type = 'incident.escalated') AS escalated_at,
            array(SELECT a.name FROM incident_alerts a WHERE a.incident_id = i.id ORDER BY a.id) AS alerts,
            e.runbook_id, e.decision, e.remediation_status,
            COALESCE((SELECT jsonb_agg(t.data ORDER BY t.id) FROM timeline_events t
                       WHERE t.incident_id = i.id AND t.type = 'page.sent'), '[]'::jsonb) AS pages,
            (SELECT x.status FROM escalations x WHERE x.incident_id = i.id ORDER BY x.id DESC LIMIT 1)
              AS escalation_status
       FROM incidents i
       LEFT JOIN LATERAL (SELECT runbook_id, decision, remediation_status FROM runbook_executions
                           WHERE incident_id = i.id ORDER BY id LIMIT 1) e ON true
      WHERE i.opened_at >= $1
      ORDER BY i.id`,
    [since],
  );
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const steps = await db.query<{
    incident_id: string;
    step_id: string;
    action: string;
    tier: string;
    status: string;
    approval_status: string | null;
    decided_by: string | null;
  }>(
    `SELECT s.incident_id, s.step_id, s.action, s.tier, s.status, a.status AS approval_status, a.decided_by
       FROM remediation_steps s LEFT JOIN approval_requests a ON a.step_row_id = s.id
      WHERE s.incident_id = ANY($1::bigint[])
      ORDER BY s.id`,
    [ids],
  );
  return rows.map((r) => {
    const decision = r.decision;
    return {
      id: Number(r.id),
      service: r.service,
      title: r.title,
      status: r.status,
      source: r.source,
      alerts: [...new Set(r.alerts)],
      openedAt: r.opened_at,
      firstSignalAt: r.first_signal_at,
      resolvedAt: r.resolved_at,
      escalatedAt: r.escalated_at,
      runbookId: r.runbook_id,
      hypothesis: decision?.hypothesis?.id ?? null,
      decisionOutcome: decision?.outcome ?? null,
      escalation: decision?.escalation
        ? {
            reason: decision.escalation.reason,
            team: decision.escalation.team ?? null,
            why: decision.escalation.why,
          }
        : null,
      remediationStatus: r.remediation_status,
      pages: r.pages.map(
        (p) =>
          `${(p.targets ?? []).map((x) => x.name ?? '?').join(', ')} via ${(p.deliveredBy ?? []).join(', ') || '?'} (level ${p.level ?? '?'})`,
      ),
      escalationStatus: r.escalation_status,
      steps: steps.rows
        .filter((s) => s.incident_id === r.id)
        .map((s) => ({
          stepId: s.step_id,
          action: s.action,
          tier: s.tier,
          status: s.status,
          approval: s.approval_status ? { status: s.approval_status, decidedBy: s.decided_by } : null,
        })),
    };
  });
}

/**
 * An incident is settled once it is resolved or handed to people, with nothing of the bot's still running (a step
 * may still be verifying after the alert cleared and resolved the incident).
 */
/** Nothing more will happen by itself: resolved, or escalated with someone paged (or the page held/given up). */
export function isSettled(o: IncidentOutcome): boolean {
  const handedOver =
    o.status === 'escalated' &&
    (o.pages.length > 0 || (o.escalationStatus !== null && o.escalationStatus !== 'paging'));
  // a plan still running may yet verify its step (the alert can clear, and resolve the incident, first)
  return (
    (o.status === 'resolved' || handedOver) &&
    o.remediationStatus !== 'running' &&
    o.steps.every((s) => !ACTIVE_STEP.has(s.status))
  );
}

const ACTIVE_STEP = new Set(['ready', 'awaiting_approval', 'approved', 'started', 'verifying']);

/**
 * Steps that broke the safety model: a guarded step that acted without an approval someone granted. (Calls the
 * sandbox counts as unsafe, such as a purge, are added by the caller from the sandbox's own audit.)
 */
export function unapprovedGuardedSteps(o: IncidentOutcome): StepOutcome[] {
  const acted = new Set<string>(ACTED);
  return o.steps.filter(
    (s) => s.tier === 'guarded' && acted.has(s.status) && s.approval?.status !== 'approved',
  );
}

/** Approval requests waiting for a decision, with where their packet is in Slack (once it was posted). */
export async function pendingApprovals(
  db: pg.Pool,
): Promise<{ id: number; incidentId: number; channel: string | null; ts: string | null }[]> {
  const { rows } = await db.query<{
    id: string;
    incident_id: string;
    channel: string | null;
    ts: string | null;
  }>(
    `SELECT a.id, a.incident_id, m.channel, m.ts
       FROM approval_requests a
       LEFT JOIN slack_thread_messages m ON m.incident_id = a.incident_id AND m.key = 'approval:' || a.id
      WHERE a.status = 'pending'
      ORDER BY a.id`,
  );
  return rows.map((r) => ({
    id: Number(r.id),
    incidentId: Number(r.incident_id),
    channel: r.channel,
    ts: r.ts,
  }));
}
