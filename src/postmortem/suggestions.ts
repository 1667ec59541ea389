import { stringify } from 'yaml';
import { redactSecrets } from '../diagnostics/redact.js';
import { redactDeep } from '../escalation/pagers/pager.js';
import { referencedDiagnostics } from '../runbooks/decide.js';
import { ACTION_CATALOGUE } from '../safety/action-catalog.js';
import type { Queryable } from '../store/db.js';

export type SuggestionKind =
  | 'diagnostic_never_decides'
  | 'diagnostic_times_out'
  | 'remediation_fails_verification'
  | 'remediation_rejected'
  | 'alert_without_runbook'
  | 'noisy_alert';

export interface Suggestion {
  kind: SuggestionKind;
  /** one line, plain text (the Slack builder escapes it) */
  title: string;
  /** what was seen and what to change, plain text */
  detail: string;
  /** the incidents it is drawn from (ascending, at most {@link MAX_EVIDENCE_IDS}) and the counts behind it */
  evidence: { incidentIds: number[]; counts: Record<string, number> };
  /** the runbook to change; null for alerts (no runbook yet, or the alert rule is what to change) */
  runbookId: string | null;
  /** alert_without_runbook: a runbook to review, built from what people did in those incidents */
  draftRunbookYaml?: string;
}

/** Order of the kinds in the answer: what a runbook owner fixes first. */
const KIND_ORDER: readonly SuggestionKind[] = [
  'alert_without_runbook',
  'remediation_fails_verification',
  'remediation_rejected',
  'diagnostic_times_out',
  'diagnostic_never_decides',
  'noisy_alert',
];
/** incident ids named per suggestion; the counts still hold the totals */
const MAX_EVIDENCE_IDS = 50;
/** an incident that resolves by itself within this long, with nobody acting, is noise; milliseconds (10 minutes) */
const SELF_RESOLVE_MS = 10 * 60_000;
/** a timeout is "often" when it is at least this share of a diagnostic's runs (and at least minOccurrences) */
const OFTEN_TIMES_OUT = 1 / 3;
/** a step "often" fails verification when at least this share of its verified runs did not fix it */
const OFTEN_FAILS = 1 / 2;
/** a diagnostic error that is a timeout: run-check writes "timed out after N ms"; collectors may say "timeout" */
const TIMEOUT = /timed? ?out|timeout|deadline exceeded/i;
/** Slack user ids: the actors that are people */
const PERSON = '^[UW][A-Z0-9]{2,}$';
/** step statuses where the action ran, or was approved to run, and did not fail: what the draft mirrors */
const HUMAN_ACTED = ['approved', 'started', 'succeeded', 'verifying', 'verified', 'unknown'];
/** step statuses where the action may have changed something (remediation/step-repo ACTED) */
const ACTED = ['started', 'succeeded', 'failed', 'verifying', 'verified', 'verification_failed', 'unknown'];
/** diagnostics copied into a draft, and characters of the notes' causes in its hypothesis */
const MAX_DRAFT_DIAGNOSTICS = 4;
const MAX_CAUSE_CHARS = 300;

interface Window {
  from: Date;
  to: Date;
  min: number;
}

/**
 * Runbook improvement suggestions from the history of incidents opened in [from, to), each naming its evidence
 * (incident ids, counts); `minOccurrences` (default 3) is how often something must have happened to count. Rules:
 *
 * - diagnostic_never_decides: a diagnostic (runbook + diagnostic id) that reported in ≥ N decided runs of a runbook
 *   with a decision tree, had the same status in every one of them (never `error`: that is broken, not useless), and
 *   was never read by the condition of the hypothesis that won (checked against each run's own runbook snapshot).
 *   A check that never varies and never decided anything cannot have changed a decision.
 * - diagnostic_times_out: ≥ N runs ended in `error` with a timeout message, and those are ≥ a third of its runs.
 * - remediation_fails_verification: a step (runbook + step id) verified in ≥ N runs that did not fix it in ≥ half.
 * - remediation_rejected: a guarded step rejected (`step.rejected`) or left to expire (`approval.expired`) ≥ N times.
 * - alert_without_runbook: an alert (alertname + service) that opened ≥ N incidents no runbook matched
 *   (`decision.made` with noRunbook, or `runbook.none`), not counting ones that resolved by themselves, with a DRAFT
 *   runbook built from what people did in them (resolution notes, steps of runs people started or approved).
 * - noisy_alert: an alertname whose ≥ N incidents resolved by themselves: the alert resolved, then the incident by
 *   the alert's source, within 10 minutes of opening, with no step that acted and nothing done by a person.
 *
 * Clean history gives an empty list.
 */
export async function computeSuggestions(
  db: Queryable,
  opts: { from: Date; to: Date; minOccurrences?: number /* default 3 */ },
): Promise<Suggestion[]> {
  const w: Window = { from: opts.from, to: opts.to, min: Math.max(1, Math.floor(opts.minOccurrences ?? 3)) };
  const found = [
    ...(await diagnosticSuggestions(db, w)),
    ...(await verificationSuggestions(db, w)),
    ...(await rejectionSuggestions(db, w)),
    ...(await alertSuggestions(db, w)),
  ];
  return found
    .map((s, i) => ({ s, i }))
    .sort((a, b) => KIND_ORDER.indexOf(a.s.kind) - KIND_ORDER.indexOf(b.s.kind) || a.i - b.i)
    .map((x) => x.s);
}

const clean = (s: string) => redactSecrets(s.replace(/\s+/g, ' ').trim());
/** bigint[] from array_agg comes back as strings (the pool parses only scalar int8): ids as numbers, ascending */
const ids = (set: Iterable<number | string>) =>
  [...new Set([...set].map(Number))].sort((a, b) => a - b).slice(0, MAX_EVIDENCE_IDS);
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
/** groups sorted by their weight (desc), then key, so the answer is the same every time */
const byWeight = <T>(groups: Map<string, T>, weight: (g: T) => number): [string, T][] =>
  [...groups].sort((a, b) => weight(b[1]) - weight(a[1]) || a[0].localeCompare(b[0]));

interface DiagnosticRow {
  execution_id: number;
  incident_id: number;
  runbook_id: string;
  has_tree: boolean;
  decided: boolean;
  winner_when: string | null;
  diagnostic_id: string;
  status: string;
  error: string | null;
  summary: string;
}

interface DiagnosticGroup {
  runbookId: string;
  diagnosticId: string;
  runs: number;
  incidents: Set<number>;
  timeouts: number;
  timeoutIncidents: Set<number>;
  errors: number;
  decidedRuns: number;
  decidedIncidents: Set<number>;
  statuses: Map<string, number>;
  readByWinner: boolean;
}

async function diagnosticSuggestions(db: Queryable, w: Window): Promise<Suggestion[]> {
  const { rows } = await db.query<DiagnosticRow>(
    `SELECT e.id AS execution_id, e.incident_id, e.runbook_id,
            jsonb_array_length(COALESCE(e.runbook -> 'decision', '[]')) > 0 AS has_tree,
            e.decision IS NOT NULL AS decided,
            (SELECT h ->> 'when' FROM jsonb_array_elements(COALESCE(e.runbook -> 'decision', '[]')) h
              WHERE h ->> 'id' = e.decision -> 'hypothesis' ->> 'id' LIMIT 1) AS winner_when,
            d.diagnostic_id, d.status, d.error, d.summary
       FROM incidents i
       JOIN runbook_executions e ON e.incident_id = i.id
       JOIN diagnostic_results d ON d.execution_id = e.id
      WHERE i.opened_at >= $1 AND i.opened_at < $2
      ORDER BY e.id, d.position`,
    [w.from, w.to],
  );
  const groups = new Map<string, DiagnosticGroup>();
  for (const r of rows) {
    const key = `${r.runbook_id}\0${r.diagnostic_id}`;
    let g = groups.get(key);
    if (!g) {
      g = {
        runbookId: r.runbook_id,
        diagnosticId: r.diagnostic_id,
        runs: 0,
        incidents: new Set(),
        timeouts: 0,
        timeoutIncidents: new Set(),
        errors: 0,
        decidedRuns: 0,
        decidedIncidents: new Set(),
        statuses: new Map(),
        readByWinner: false,
      };
      groups.set(key, g);
    }
    g.runs++;
    g.incidents.add(r.incident_id);
    if (r.status === 'error') {
      g.errors++;
      if (TIMEOUT.test(`${r.error ?? ''} ${r.summary}`)) {
        g.timeouts++;
        g.timeoutIncidents.add(r.incident_id);
      }
    }
    if (r.decided && r.has_tree) {
      g.decidedRuns++;
      g.decidedIncidents.add(r.incident_id);
      g.statuses.set(r.status, (g.statuses.get(r.status) ?? 0) + 1);
      if (r.winner_when && referencedDiagnostics(r.winner_when).includes(r.diagnostic_id))
        g.readByWinner = true;
    }
  }
  const out: Suggestion[] = [];
  for (const [, g] of byWeight(groups, (x) => x.timeouts)) {
    if (g.timeouts < w.min || g.timeouts < g.runs * OFTEN_TIMES_OUT) continue;
    out.push({
      kind: 'diagnostic_times_out',
      title: `Diagnostic ${g.diagnosticId} of runbook ${g.runbookId} often times out`,
      detail: `${g.timeouts} of its ${plural(g.runs, 'run')} timed out (${plural(g.errors, 'error')} in all), so decisions were made without it: raise its timeout (at most 5m), make the check cheaper, or check that its target answers.`,
      evidence: {
        incidentIds: ids(g.timeoutIncidents),
        counts: { runs: g.runs, timeouts: g.timeouts, errors: g.errors },
      },
      runbookId: g.runbookId,
    });
  }
  for (const [, g] of byWeight(groups, (x) => x.decidedRuns)) {
    const [only] = g.statuses.keys();
    if (g.decidedRuns < w.min || g.statuses.size !== 1 || only === 'error' || g.readByWinner) continue;
    out.push({
      kind: 'diagnostic_never_decides',
      title: `Diagnostic ${g.diagnosticId} of runbook ${g.runbookId} never changed a decision`,
      detail: `It was ${only} in all ${plural(g.decidedRuns, 'decided run')} and no winning hypothesis read it: drop it, or give it a threshold and a hypothesis that can change the outcome.`,
      evidence: {
        incidentIds: ids(g.decidedIncidents),
        counts: { runs: g.decidedRuns, [only ?? 'unknown']: g.decidedRuns },
      },
      runbookId: g.runbookId,
    });
  }
  return out;
}

async function verificationSuggestions(db: Queryable, w: Window): Promise<Suggestion[]> {
  const { rows } = await db.query<{
    runbook_id: string;
    step_id: string;
    action: string;
    runs: number;
    failed: number;
    incident_ids: number[];
  }>(
    `SELECT e.runbook_id, s.step_id, min(s.action) AS action, count(*)::int AS runs,
            count(*) FILTER (WHERE s.status = 'verification_failed')::int AS failed,
            array_agg(DISTINCT s.incident_id) FILTER (WHERE s.status = 'verification_failed') AS incident_ids
       FROM incidents i
       JOIN remediation_steps s ON s.incident_id = i.id
       JOIN runbook_executions e ON e.id = s.execution_id
      WHERE i.opened_at >= $1 AND i.opened_at < $2 AND s.status IN ('verified', 'verification_failed')
      GROUP BY e.runbook_id, s.step_id
     HAVING count(*) >= $3
      ORDER BY failed DESC, e.runbook_id, s.step_id`,
    [w.from, w.to, w.min],
  );
  return rows
    .filter((r) => r.failed > 0 && r.failed >= r.runs * OFTEN_FAILS)
    .map((r) => ({
      kind: 'remediation_fails_verification' as const,
      title: `Step ${r.step_id} (${r.action}) of runbook ${r.runbook_id} often fails verification`,
      detail: `${r.failed} of its ${plural(r.runs, 'verified run')} did not fix the problem: check the hypothesis that picks it, the step's config, and its verify condition and window; a different first step may be needed.`,
      evidence: {
        incidentIds: ids(r.incident_ids ?? []),
        counts: { runs: r.runs, verificationFailed: r.failed, verified: r.runs - r.failed },
      },
      runbookId: r.runbook_id,
    }));
}

async function rejectionSuggestions(db: Queryable, w: Window): Promise<Suggestion[]> {
  const { rows } = await db.query<{
    runbook_id: string;
    step: string;
    action: string | null;
    requested: number;
    approved: number;
    rejected: number;
    expired: number;
    rejected_by: string[] | null;
    incident_ids: number[];
  }>(
    `WITH events AS (
       SELECT t.type, t.actor, t.incident_id, t.data ->> 'step' AS step, t.data ->> 'action' AS action,
              CASE WHEN t.data ->> 'executionId' ~ '^[0-9]{1,18}$' THEN (t.data ->> 'executionId')::bigint END
                AS execution_id
         FROM incidents i JOIN timeline_events t ON t.incident_id = i.id
        WHERE i.opened_at >= $1 AND i.opened_at < $2
          AND t.type IN ('approval.requested', 'step.approved', 'step.rejected', 'approval.expired')
     )
     SELECT e.runbook_id, ev.step, min(ev.action) AS action,
            count(*) FILTER (WHERE ev.type = 'approval.requested')::int AS requested,
            count(*) FILTER (WHERE ev.type = 'step.approved')::int AS approved,
            count(*) FILTER (WHERE ev.type = 'step.rejected')::int AS rejected,
            count(*) FILTER (WHERE ev.type = 'approval.expired')::int AS expired,
            array_agg(DISTINCT ev.actor ORDER BY ev.actor) FILTER (WHERE ev.type = 'step.rejected') AS rejected_by,
            array_agg(DISTINCT ev.incident_id)
              FILTER (WHERE ev.type IN ('step.rejected', 'approval.expired')) AS incident_ids
       FROM events ev JOIN runbook_executions e ON e.id = ev.execution_id
      WHERE ev.step IS NOT NULL
      GROUP BY e.runbook_id, ev.step
     HAVING count(*) FILTER (WHERE ev.type IN ('step.rejected', 'approval.expired')) >= $3
      ORDER BY count(*) FILTER (WHERE ev.type IN ('step.rejected', 'approval.expired')) DESC, e.runbook_id, ev.step`,
    [w.from, w.to, w.min],
  );
  return rows.map((r) => {
    const turnedDown = r.rejected + r.expired;
    const asked = Math.max(r.requested, turnedDown + r.approved);
    const who = r.rejected_by?.length ? ` (rejected by ${r.rejected_by.slice(0, 5).join(', ')})` : '';
    return {
      kind: 'remediation_rejected' as const,
      title: `Approvers often turn down step ${r.step}${r.action ? ` (${r.action})` : ''} of runbook ${r.runbook_id}`,
      detail: `Of ${plural(asked, 'approval request')}, ${r.rejected} ${r.rejected === 1 ? 'was' : 'were'} rejected${who} and ${r.expired} expired unanswered: ask the approvers why, then narrow the hypothesis that proposes it, change the step, or replace it with a notify step.`,
      evidence: {
        incidentIds: ids(r.incident_ids ?? []),
        counts: { requested: asked, approved: r.approved, rejected: r.rejected, expired: r.expired },
      },
      runbookId: r.runbook_id,
    };
  });
}

interface IncidentRow {
  id: number;
  service: string;
  alertname: string;
  opened_at: Date;
  resolved_at: Date | null;
  no_runbook: boolean;
  self_resolved: boolean;
}

async function alertSuggestions(db: Queryable, w: Window): Promise<Suggestion[]> {
  const { rows } = await db.query<IncidentRow>(
    `SELECT i.id, i.service, i.opened_at, i.resolved_at,
            COALESCE(NULLIF(i.labels ->> 'alertname', ''),
                     (SELECT a.name FROM incident_alerts a WHERE a.incident_id = i.id ORDER BY a.id LIMIT 1),
                     i.title) AS alertname,
            EXISTS (SELECT 1 FROM timeline_events t
                     WHERE t.incident_id = i.id
                       AND (t.type = 'runbook.none' OR (t.type = 'decision.made' AND t.data ->> 'noRunbook' = 'true')))
              AS no_runbook,
            (i.status = 'resolved'
             AND r.actor = i.source
             AND COALESCE(i.resolved_at, r.at) - i.opened_at <= make_interval(secs => $3::float8 / 1000)
             AND EXISTS (SELECT 1 FROM timeline_events t
                          WHERE t.incident_id = i.id AND t.type = 'alert.resolved' AND t.id < r.id)
             AND NOT EXISTS (SELECT 1 FROM remediation_steps s
                              WHERE s.incident_id = i.id AND s.status = ANY($4::text[]))
             AND NOT EXISTS (SELECT 1 FROM timeline_events t WHERE t.incident_id = i.id AND t.actor ~ $5)
            ) IS TRUE AS self_resolved
       FROM incidents i
       LEFT JOIN LATERAL (SELECT id, actor, at FROM timeline_events
                           WHERE incident_id = i.id AND type = 'incident.resolved'
                           ORDER BY id DESC LIMIT 1) r ON true
      WHERE i.opened_at >= $1 AND i.opened_at < $2
      ORDER BY i.id`,
    [w.from, w.to, SELF_RESOLVE_MS, ACTED, PERSON],
  );
  const out: Suggestion[] = [];

  const unmatched = new Map<string, IncidentRow[]>();
  for (const r of rows) {
    if (!r.no_runbook || r.self_resolved) continue;
    const key = `${r.alertname}\0${r.service}`;
    unmatched.set(key, [...(unmatched.get(key) ?? []), r]);
  }
  for (const [, group] of byWeight(unmatched, (g) => g.length)) {
    if (group.length < w.min) continue;
    const first = group[0] as IncidentRow;
    const incidentIds = group.map((r) => r.id);
    const draft = await buildDraftRunbook(db, first.alertname, first.service, incidentIds);
    const alert = clean(first.alertname);
    out.push({
      kind: 'alert_without_runbook',
      title: `${alert} on ${clean(first.service)} opened ${plural(group.length, 'incident')} that no runbook matched`,
      detail: `Each one fell to default triage and a person. A DRAFT runbook built from what people did (${plural(draft.actions, 'action')}, ${plural(draft.notes, 'resolution note')}) is attached: review it before adding it to runbooks/.${draft.ranByHand.length > 0 ? ` People ran ${draft.ranByHand.join(', ')} by hand: a trigger for ${alert} there may be all that is missing.` : ''}`,
      evidence: {
        incidentIds: ids(incidentIds),
        counts: { incidents: group.length, notes: draft.notes, actions: draft.actions },
      },
      runbookId: null,
      draftRunbookYaml: draft.yaml,
    });
  }

  const byAlert = new Map<string, { all: IncidentRow[]; noisy: IncidentRow[] }>();
  for (const r of rows) {
    const g = byAlert.get(r.alertname) ?? { all: [], noisy: [] };
    g.all.push(r);
    if (r.self_resolved) g.noisy.push(r);
    byAlert.set(r.alertname, g);
  }
  for (const [alertname, g] of byWeight(byAlert, (x) => x.noisy.length)) {
    if (g.noisy.length < w.min) continue;
    const minutes = g.noisy
      .map((r) => ((r.resolved_at ?? r.opened_at).getTime() - r.opened_at.getTime()) / 60_000)
      .sort((a, b) => a - b);
    const median = minutes[Math.floor((minutes.length - 1) / 2)] ?? 0;
    const services = [...new Set(g.noisy.map((r) => clean(r.service)))].slice(0, 5).join(', ');
    out.push({
      kind: 'noisy_alert',
      title: `${clean(alertname)} fires and resolves on its own`,
      detail: `${g.noisy.length} of its ${plural(g.all.length, 'incident')} (${services}) resolved by themselves within ${SELF_RESOLVE_MS / 60_000} minutes (median ${Math.round(median)} min) with nobody acting: raise the threshold or add a \`for:\` duration to the alert rule.`,
      evidence: {
        incidentIds: ids(g.noisy.map((r) => r.id)),
        counts: { selfResolved: g.noisy.length, incidents: g.all.length },
      },
      runbookId: null,
    });
  }
  return out;
}

interface NoteRow {
  incident_id: number;
  user_id: string;
  cause: string;
  fix: string;
  note: string;
}

interface ActionRow {
  incident_id: number;
  runbook_id: string;
  by_hand: boolean;
  step_id: string;
  action: string;
  config: Record<string, unknown>;
  definition: Record<string, unknown> | null;
  by: string;
}

interface DiagnosticUse {
  definition: Record<string, unknown>;
  unhealthy: number;
  order: number;
}

/**
 * The DRAFT runbook for an alert no runbook matched, from what people did in its incidents: the diagnostics that ran
 * (those that were unhealthy first), one hypothesis described by the causes people noted, and a step per distinct
 * catalogue action people ran or approved there, every one with `requiresApproval: true`. With no action recorded,
 * the hypothesis escalates with the fixes people noted.
 */
async function buildDraftRunbook(
  db: Queryable,
  alertname: string,
  service: string,
  incidentIds: number[],
): Promise<{ yaml: string; notes: number; actions: number; ranByHand: string[] }> {
  const notes = (
    await db.query<NoteRow>(
      `SELECT incident_id, user_id, cause, fix, note FROM resolution_notes
        WHERE incident_id = ANY($1::bigint[]) ORDER BY incident_id, id`,
      [incidentIds],
    )
  ).rows;
  const actions = (
    await db.query<ActionRow>(
      `SELECT s.incident_id, s.step_id, s.action, s.config,
              (SELECT r FROM jsonb_array_elements(COALESCE(e.runbook -> 'remediations', '[]')) r
                WHERE r ->> 'id' = s.step_id LIMIT 1) AS definition,
              COALESCE(ap.actor, e.requested_by) AS by, e.runbook_id,
              e.requested_by ~ $3 AS by_hand
         FROM remediation_steps s
         JOIN runbook_executions e ON e.id = s.execution_id
         LEFT JOIN LATERAL (SELECT t.actor FROM timeline_events t
                             WHERE t.incident_id = s.incident_id AND t.type = 'step.approved' AND t.actor ~ $3
                               AND t.data ->> 'executionId' = e.id::text AND t.data ->> 'step' = s.step_id
                             ORDER BY t.id DESC LIMIT 1) ap ON true
        WHERE s.incident_id = ANY($1::bigint[]) AND s.status = ANY($2::text[])
          AND (e.requested_by ~ $3 OR ap.actor IS NOT NULL)
        ORDER BY s.incident_id, s.execution_id, s.position`,
      [incidentIds, HUMAN_ACTED, PERSON],
    )
  ).rows.filter((a) => ACTION_CATALOGUE[a.action] !== undefined && a.action !== 'escalate');
  const diagnosticRows = (
    await db.query<{ diagnostics: unknown; diagnostic_id: string; status: string }>(
      `SELECT e.runbook -> 'diagnostics' AS diagnostics, d.diagnostic_id, d.status
         FROM runbook_executions e JOIN diagnostic_results d ON d.execution_id = e.id
        WHERE e.incident_id = ANY($1::bigint[])
        ORDER BY e.id, d.position`,
      [incidentIds],
    )
  ).rows;

  const used = new Map<string, DiagnosticUse>();
  for (const r of diagnosticRows) {
    const definitions = Array.isArray(r.diagnostics) ? (r.diagnostics as Record<string, unknown>[]) : [];
    const definition = definitions.find((d) => d?.id === r.diagnostic_id);
    if (!definition) continue;
    const use = used.get(r.diagnostic_id) ?? { definition, unhealthy: 0, order: used.size };
    if (r.status !== 'healthy') use.unhealthy++;
    used.set(r.diagnostic_id, use);
  }
  const ranked = [...used.values()].sort((a, b) => b.unhealthy - a.unhealthy || a.order - b.order);
  const unhealthy = ranked.filter((u) => u.unhealthy > 0);
  const diagnostics = (unhealthy.length > 0 ? unhealthy : ranked)
    .slice(0, MAX_DRAFT_DIAGNOSTICS)
    .map((u) => draftDiagnostic(u.definition));
  if (diagnostics.length === 0) diagnostics.push(HEALTH_STUB);
  const diagnosticIds = new Set(diagnostics.map((d) => String(d.id)));

  const remediations: Record<string, unknown>[] = [];
  const seen = new Set<string>();
  const stepIds = new Set<string>();
  for (const a of actions) {
    const definition = a.definition ?? {};
    const config = redactDeep(definition.config ?? a.config ?? {}) as Record<string, unknown>;
    const key = `${a.action}\0${JSON.stringify(config)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    let id = stepIdOf(a.step_id);
    for (let n = 2; stepIds.has(id); n++) id = `${stepIdOf(a.step_id).slice(0, 58)}_${n}`;
    stepIds.add(id);
    const verify = definition.verify as { diagnostics?: unknown } | undefined;
    const verifiable =
      verify &&
      Array.isArray(verify.diagnostics) &&
      verify.diagnostics.every((d) => diagnosticIds.has(String(d)));
    remediations.push({
      id,
      action: a.action,
      description: clean(
        typeof definition.description === 'string' && definition.description
          ? definition.description
          : `${a.action} as ${a.by} did in INC-${a.incident_id}`,
      ),
      config,
      requiresApproval: true,
      ...(verifiable ? { verify: redactDeep(verify) } : {}),
    });
  }

  const causes = [...new Set(notes.map((n) => clean(n.cause)).filter((c) => c !== ''))];
  const fixes = [...new Set(notes.map((n) => clean(n.fix || n.note)).filter((f) => f !== ''))];
  const description = cut(
    causes.length > 0
      ? `People noted: ${causes.join('; ')}`
      : `Cause not recorded: describe it from ${refsOf(incidentIds)}`,
    MAX_CAUSE_CHARS,
  );
  const firstDiagnostic = String(diagnostics[0]?.id);
  const hypothesis: Record<string, unknown> = {
    id: 'noted_cause',
    description,
    likelihood: 1,
    // a placeholder: the draft cannot know which reading means this cause; the reviewer writes the real condition
    when: `diagnostics.${firstDiagnostic}.status != "healthy"`,
    ...(remediations.length > 0
      ? { remediate: remediations.map((r) => r.id) }
      : {
          escalate: {
            reason: 'default',
            note: cut(
              fixes.length > 0 ? `Fixes people noted: ${fixes.join('; ')}` : 'No fix was recorded',
              500,
            ),
          },
        }),
  };
  const runbook = {
    id: runbookIdOf(alertname),
    name: cut(`${clean(alertname)} on ${clean(service)} (draft)`, 120),
    description: `Drafted from ${refsOf(incidentIds)}, which no runbook matched.`,
    // the service field scopes the runbook (alerts need not carry a service label)
    service: exactMatcher(clean(service)),
    severity: 'high',
    triggers: [{ alert: exactMatcher(clean(alertname)) }],
    diagnostics,
    decision: [hypothesis],
    remediations,
    escalation: { reason: 'default' },
  };
  const header = [
    `DRAFT runbook generated by ai-sre: ${clean(alertname)} on ${clean(service)} opened ${incidentIds.length} incidents that no runbook matched (${refsOf(incidentIds)}).`,
    'Review every line before saving it under runbooks/: the `when` condition is a placeholder, the diagnostics are',
    'the ones that ran in those incidents, and each step mirrors what people did there and needs approval.',
    ...(notes.length > 0 ? ['What people noted:'] : []),
    ...notes.map(
      (n) =>
        `  INC-${n.incident_id} (${clean(n.user_id)}): ${[
          n.cause && `cause: ${n.cause}`,
          n.fix && `fix: ${n.fix}`,
          n.note && `note: ${n.note}`,
        ]
          .filter(Boolean)
          .map((s) => cut(clean(String(s)), 200))
          .join('; ')}`,
    ),
  ];
  // a comment is one line each: line breaks in people's text are folded above, so nothing escapes the comment
  const comment = header.map((line) => `# ${line.replace(/[\r\n\u0085\u2028\u2029]+/g, ' ')}`).join('\n');
  return {
    yaml: `${comment}\n${stringify(runbook, { lineWidth: 110 })}`,
    notes: notes.length,
    actions: remediations.length,
    ranByHand: [...new Set(actions.filter((a) => a.by_hand).map((a) => a.runbook_id))].sort(),
  };
}

/** Used when no diagnostic ran in those incidents: the health check the default triage playbook starts with. */
const HEALTH_STUB: Record<string, unknown> = {
  id: 'health',
  type: 'http_check',
  description:
    'Does the service answer its health endpoint within 2 s? (a stub: add the checks people looked at)',
  timeout: '10s',
  config: { urls: ['{{service.health_url}}'], maxLatencyMs: 2000 },
  interpret: { critical: 'value >= 1.0' },
};

/** A diagnostic as the runbook snapshot stored it, without empty defaults, secrets masked. */
function draftDiagnostic(d: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of ['id', 'type', 'description', 'timeout', 'unit', 'config', 'interpret']) {
    const value = d[key];
    if (value === undefined || value === null) continue;
    if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0) continue;
    out[key] = redactDeep(value);
  }
  return out;
}

/** "INC-4, INC-9, INC-12", or the first ten and how many more: a long history must not make a long draft */
function refsOf(incidentIds: number[]): string {
  const shown = incidentIds.slice(0, 10).map((id) => `INC-${id}`);
  const more = incidentIds.length - shown.length;
  return `${shown.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}

function cut(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1).trimEnd()}…` : s;
}

/** "PostgresConnectionPoolExhausted" → "draft-postgres-connection-pool-exhausted" (the runbook id rule). */
function runbookIdOf(alertname: string): string {
  const words = alertname
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 56)
    .replace(/-+$/, '');
  return words ? `draft-${words}` : 'draft-runbook';
}

/** A step id as the schema wants it (lower-case identifier, at most 63). */
function stepIdOf(id: string): string {
  const s = id
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^[^a-z]+/, '')
    .slice(0, 63);
  return s || 'step';
}

/** A trigger matcher that matches exactly this text: `~` starts a regular expression, so such a name is escaped. */
function exactMatcher(value: string): string {
  return value.startsWith('~') ? `~${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}` : value;
}
