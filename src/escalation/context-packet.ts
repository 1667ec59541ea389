import type { Severity } from '../alerts/normalized-alert.js';
import { redactSecrets } from '../diagnostics/redact.js';
import { describeEvent } from '../incidents/describe-event.js';
import { type IncidentStatus, incidentRef } from '../incidents/incident.js';
import { getIncident } from '../incidents/lifecycle.js';
import { findSimilarIncidents, type SimilarIncident } from '../incidents/similar-incidents.js';
import { listTimeline } from '../incidents/timeline.js';
import type { Decision } from '../runbooks/decide.js';
import { referencedDiagnostics } from '../runbooks/decide.js';
import type { Hypothesis } from '../runbooks/runbook.schema.js';
import type { Queryable } from '../store/db.js';
import { redactDeep } from './pagers/pager.js';
import { classifyEscalation, describeCategory, type EscalationWhy } from './reasons.js';

/**
 * Everything a paged person needs to act from the page alone: what is broken and since when, why a person is needed
 * and what they must decide, the evidence, what was tried, how similar incidents ended, and where to look. Every
 * string that may come from a monitored system is redacted here, so every renderer (Slack, PagerDuty, webhook) gets
 * the same safe text.
 */
export interface ContextPacket {
  incidentId: number;
  /** INC-42 */
  ref: string;
  service: string;
  severity: Severity;
  status: IncidentStatus;
  title: string;
  /** one sentence with impact: "payment-service: HighErrorRate (critical), 3 alerts, 12% of requests failing…" */
  summary: string;
  /** firstSignalAt */
  startedAt: Date;
  openedAt: Date;
  why: EscalationWhy;
  /** the newest `timelineLimit` events (default 15), oldest first, each in plain words (describeEvent) */
  timeline: { at: Date; actor: string; type: string; text: string }[];
  timelineOmitted: number;
  diagnostics: { id: string; status: string; summary: string }[];
  actions: {
    step: string;
    action: string;
    status: string;
    summary: string | null;
    verification: string | null;
  }[];
  /** the newest decision's hypotheses, best first */
  causes: { description: string; confidence: number | null; confirmed: boolean; evidence: string[] }[];
  similar: SimilarIncident[];
  /** incident links, alert source and dashboard links from the alerts' annotations and labels; http(s) only */
  links: { label: string; url: string }[];
  /** the runbook the newest decision came from, if any ran */
  runbook: { id: string; name: string; version: string | null; matchedBy: string } | null;
}

/** events read to classify the escalation and show the newest ones; an escalation looks back a few dozen */
const TIMELINE_READ = 500;
const MAX_ALERTS = 50;
const MAX_DIAGNOSTICS = 100;
const MAX_STEPS = 50;
const MAX_LINKS = 10;
/** characters of one diagnostic summary or one evidence line kept in the packet */
const MAX_LINE = 1_000;

const r = (s: string) => redactSecrets(s);
const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);
const str = (v: unknown): string =>
  typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);

interface AlertRow {
  name: string;
  status: 'firing' | 'resolved';
  severity: string;
  summary: string;
  labels: Record<string, unknown>;
  annotations: Record<string, unknown>;
  generator_url: string | null;
}

interface ExecutionRow {
  id: number;
  runbook_id: string;
  runbook_version: string | null;
  runbook_name: string;
  hypotheses: Hypothesis[] | null;
  matched_by: string;
  decision: Decision | null;
}

interface ResultRow {
  diagnostic_id: string;
  status: string;
  value: unknown;
  summary: string;
  error: string | null;
}

interface StepRow {
  step_id: string;
  action: string;
  status: string;
  reason: string | null;
  result: Record<string, unknown> | null;
}

/**
 * Builds the packet of an incident from Postgres (null when it does not exist). Every read is bounded: the newest
 * 500 timeline events, 50 alerts, 100 diagnostics of the newest decided runbook run, 50 remediation steps.
 */
export async function buildContextPacket(
  db: Queryable,
  incidentId: number,
  opts: { timelineLimit?: number; similarLimit?: number } = {},
): Promise<ContextPacket | null> {
  const incident = await getIncident(db, incidentId);
  if (!incident) return null;
  const timelineLimit = Math.max(0, Math.min(TIMELINE_READ, opts.timelineLimit ?? 15));

  // one query after another: callers pass the connection they already hold (a sync's or a step's), and a second
  // connection from the same small pool per caller would starve it under load
  const events = await listTimeline(db, incidentId, { newest: true, limit: TIMELINE_READ });
  const total =
    (
      await db.query<{ n: number }>(
        'SELECT count(*)::integer AS n FROM timeline_events WHERE incident_id = $1',
        [incidentId],
      )
    ).rows[0]?.n ?? 0;
  const alerts = (
    await db.query<AlertRow>(
      `SELECT name, status, severity, summary, labels, annotations, generator_url
         FROM incident_alerts WHERE incident_id = $1 ORDER BY id LIMIT $2`,
      [incidentId, MAX_ALERTS],
    )
  ).rows;
  const executions = (
    await db.query<ExecutionRow>(
      `SELECT id, runbook_id, runbook_version, runbook ->> 'name' AS runbook_name,
              runbook -> 'decision' AS hypotheses, matched_by, decision
         FROM runbook_executions WHERE incident_id = $1 ORDER BY id DESC LIMIT 5`,
      [incidentId],
    )
  ).rows;
  const steps = (
    await db.query<StepRow>(
      `SELECT step_id, action, status, reason, result FROM remediation_steps
        WHERE incident_id = $1 ORDER BY id LIMIT $2`,
      [incidentId, MAX_STEPS],
    )
  ).rows;
  const similar = await findSimilarIncidents(db, incident, { limit: opts.similarLimit ?? 3 });

  // the run whose decision people are asked about: the newest that decided, else the newest still diagnosing
  const execution = executions.find((e) => e.decision !== null) ?? executions[0] ?? null;
  const results = execution
    ? (
        await db.query<ResultRow>(
          `SELECT diagnostic_id, status, value, summary, error FROM diagnostic_results
            WHERE execution_id = $1 ORDER BY position LIMIT $2`,
          [execution.id, MAX_DIAGNOSTICS],
        )
      ).rows
    : [];

  let lastEscalated = -1;
  for (let i = events.length - 1; i >= 0; i--) {
    if (events[i]?.type === 'incident.escalated') {
      lastEscalated = i;
      break;
    }
  }
  const why = classifyEscalation(lastEscalated >= 0 ? events.slice(0, lastEscalated + 1) : events, incident);
  const shown = timelineLimit > 0 ? events.slice(-timelineLimit) : [];

  return {
    incidentId: incident.id,
    ref: incidentRef(incident.id),
    service: r(incident.service),
    severity: incident.severity,
    status: incident.status,
    title: r(incident.title),
    summary: r(summarise(incident, alerts)),
    startedAt: incident.firstSignalAt,
    openedAt: incident.openedAt,
    why: { ...why, text: r(why.text), team: why.team === null ? null : r(why.team) },
    timeline: shown.map((e) => ({ at: e.at, actor: r(e.actor), type: e.type, text: r(describeEvent(e)) })),
    timelineOmitted: Math.max(0, total - shown.length),
    diagnostics: results.map((d) => ({
      id: d.diagnostic_id,
      status: d.status,
      summary: r(clip(diagnosticText(d), MAX_LINE)),
    })),
    actions: steps.map((s) => ({
      step: s.step_id,
      action: s.action,
      status: s.status,
      summary: nullable(str(s.result?.summary) || s.reason),
      verification: nullable(verificationOf(s)),
    })),
    causes: execution?.decision ? causesOf(execution.decision, execution.hypotheses ?? [], results) : [],
    similar,
    links: linksOf(incident.links, alerts),
    runbook: execution
      ? {
          id: execution.runbook_id,
          name: r(execution.runbook_name ?? execution.runbook_id),
          version: execution.runbook_version,
          matchedBy: execution.matched_by,
        }
      : null,
  };
}

function nullable(s: string | null): string | null {
  return s === null || s === '' ? null : r(clip(s, MAX_LINE));
}

/** "payment-service: HighErrorRate (critical), 3 alerts (2 firing), 12% of requests failing" */
function summarise(
  incident: { service: string; title: string; severity: string; summary: string },
  alerts: AlertRow[],
): string {
  const firing = alerts.filter((a) => a.status === 'firing');
  const count =
    alerts.length === 0
      ? 'no alerts'
      : `${alerts.length} alert${alerts.length === 1 ? '' : 's'}${firing.length < alerts.length ? ` (${firing.length} firing)` : ''}`;
  const impact = [firing[0]?.summary, alerts[0]?.summary, incident.summary]
    .map((s) => (s ?? '').replace(/\s+/g, ' ').trim())
    .find((s) => s !== '' && s !== incident.title);
  return `${incident.service}: ${incident.title} (${incident.severity}), ${count}${impact ? `, ${clip(impact, 300)}` : ''}`;
}

function diagnosticText(d: ResultRow): string {
  const value =
    d.value === null || typeof d.value === 'object' || d.summary.includes(String(d.value))
      ? ''
      : ` (value ${String(d.value)})`;
  const error = d.error && !d.summary.includes(d.error) ? ` — ${d.error}` : '';
  return `${d.summary}${value}${error}`;
}

/** "verified after 3 checks: connections healthy" / "not verified after 5 checks: …; connections critical" */
function verificationOf(s: StepRow): string | null {
  const v = s.result?.verification as
    | { checks?: unknown; last?: Record<string, { status?: unknown; summary?: unknown }> }
    | undefined;
  if (s.status === 'verifying') return 'verifying now';
  if (!v) return null;
  const checks = typeof v.checks === 'number' ? ` after ${v.checks} check${v.checks === 1 ? '' : 's'}` : '';
  const last = Object.entries(v.last ?? {})
    .map(([id, f]) => `${id} ${str(f?.status)}${f?.summary ? ` (${str(f.summary)})` : ''}`)
    .join('; ');
  if (s.status === 'verified') return `verified${checks}${last ? `: ${last}` : ''}`;
  const reason = s.reason ? `: ${s.reason}` : '';
  return `not verified${checks}${reason}${last ? `; last check: ${last}` : ''}`;
}

interface Cause {
  description: string;
  confidence: number | null;
  confirmed: boolean;
  evidence: string[];
  order: number;
}

/**
 * The decision's hypotheses, best first: confirmed before not, then by recorded confidence when there is one, then
 * in the order the decision tried them (likelihood). The winner's evidence is what the decision recorded; the others'
 * is what their conditions read.
 */
function causesOf(
  decision: Decision,
  hypotheses: Hypothesis[],
  results: ResultRow[],
): ContextPacket['causes'] {
  const byId = new Map(results.map((x) => [x.diagnostic_id, x]));
  const line = (id: string, status: string, summary: string) =>
    r(clip(`${id} ${status}: ${summary}`, MAX_LINE));
  const tried = Array.isArray(decision.tried) ? decision.tried : [];
  const causes: Cause[] = tried.map((t, order) => {
    const winner = decision.hypothesis?.id === t.id;
    const evidence = winner
      ? (decision.evidence ?? []).map((e) => line(e.diagnostic, e.status, e.summary))
      : referencedDiagnostics(hypotheses.find((h) => h.id === t.id)?.when ?? '').flatMap((id) => {
          const d = byId.get(id);
          return d ? [line(id, d.status, d.summary)] : [];
        });
    if (t.confirmed === null && t.error)
      evidence.push(r(clip(`could not be evaluated: ${t.error}`, MAX_LINE)));
    const confidence = (t as { confidence?: unknown }).confidence;
    return {
      description: r(t.description),
      confidence: typeof confidence === 'number' ? confidence : null,
      confirmed: t.confirmed === true,
      evidence,
      order,
    };
  });
  causes.sort(
    (a, b) =>
      Number(b.confirmed) - Number(a.confirmed) ||
      (b.confidence ?? Number.NEGATIVE_INFINITY) - (a.confidence ?? Number.NEGATIVE_INFINITY) ||
      a.order - b.order,
  );
  return causes.map(({ order: _order, ...c }) => c);
}

const URL_PATTERN = /^https?:\/\/\S+$/i;
const LINK_ANNOTATIONS: [string, string][] = [
  ['runbook_url', 'Runbook'],
  ['dashboard_url', 'Dashboard'],
  ['grafana_url', 'Dashboard'],
  ['panel_url', 'Panel'],
  ['dashboard', 'Dashboard'],
];

/** The incident's own links, then each alert's source and dashboard links; http(s) only, each URL once. */
function linksOf(
  incidentLinks: { label: string; url: string }[],
  alerts: AlertRow[],
): ContextPacket['links'] {
  const out: ContextPacket['links'] = [];
  const seen = new Set<string>();
  const add = (label: string, url: unknown) => {
    if (typeof url !== 'string' || !URL_PATTERN.test(url) || out.length >= MAX_LINKS) return;
    const safe = r(url);
    if (seen.has(safe)) return;
    seen.add(safe);
    out.push({ label: r(clip(label, 100)), url: safe });
  };
  for (const l of Array.isArray(incidentLinks) ? incidentLinks : []) add(l.label, l.url);
  for (const a of alerts) {
    add(`Source: ${a.name}`, a.generator_url);
    for (const [key, label] of LINK_ANNOTATIONS) add(`${label}: ${a.name}`, a.annotations?.[key]);
    for (const [key, value] of Object.entries(a.labels ?? {})) {
      if (/dashboard|runbook|_url$/i.test(key)) add(`${key}: ${a.name}`, value);
    }
  }
  return out;
}

/** a flat list entry of packetDetails; characters */
const DETAIL_LINE = 300;

/**
 * The packet as flat JSON for PagerDuty `custom_details` and the webhook body: short strings and arrays of short
 * strings, times as ISO text. Redacted again as a whole (pagers redact once more before sending).
 */
export function packetDetails(p: ContextPacket): Record<string, unknown> {
  const d = (s: string) => clip(s.replace(/\s+/g, ' ').trim(), DETAIL_LINE);
  const details = {
    incident: p.ref,
    title: d(p.title),
    service: p.service,
    severity: p.severity,
    status: p.status,
    summary: d(p.summary),
    started_at: p.startedAt.toISOString(),
    opened_at: p.openedAt.toISOString(),
    escalation_category: p.why.category,
    why: d(`${describeCategory(p.why.category)}: ${p.why.text}`),
    decide: p.why.decide,
    route: p.why.route,
    team: p.why.team,
    runbook: p.runbook
      ? `${p.runbook.name} (${p.runbook.id}${p.runbook.version ? ` v${p.runbook.version}` : ''}, matched by ${p.runbook.matchedBy})`
      : null,
    causes: p.causes
      .slice(0, 5)
      .map(
        (c, i) =>
          `${i + 1}. ${d(c.description)} (${c.confirmed ? 'confirmed' : 'not confirmed'}${c.confidence === null ? '' : `, ${c.confidence}`})${c.evidence.length > 0 ? `: ${c.evidence.slice(0, 3).map(d).join('; ')}` : ''}`,
      )
      .map(d),
    diagnostics: p.diagnostics.slice(0, 20).map((x) => d(`${x.id} ${x.status}: ${x.summary}`)),
    actions: p.actions
      .slice(0, 10)
      .map((a) =>
        d(
          `${a.step} (${a.action}): ${a.status}${a.summary ? ` — ${a.summary}` : ''}${a.verification ? ` [${a.verification}]` : ''}`,
        ),
      ),
    timeline: p.timeline.map((e) => d(`${e.at.toISOString()} ${e.actor}: ${e.text}`)),
    timeline_omitted: p.timelineOmitted,
    similar: p.similar.map((s) =>
      d(
        `${incidentRef(s.id)} ${s.title} (${s.service}, ${s.openedAt.toISOString().slice(0, 10)}): ${s.resolution}`,
      ),
    ),
    links: p.links.map((l) => `${l.label}: ${l.url}`),
  };
  return redactDeep(details) as Record<string, unknown>;
}
