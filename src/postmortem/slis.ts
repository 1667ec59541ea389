import { ACTION_CATALOGUE } from '../safety/action-catalog.js';
import type { Queryable } from '../store/db.js';

/**
 * The service-level indicators of incident response over one group of incidents.
 *
 * Definitions (every figure is over the incidents *opened* in the period, whenever they resolved):
 * - MTTD: opened_at − first_signal_at (how long the first signal waited for an incident).
 * - MTTA: first `page.acknowledged` − first `page.sent`, over incidents that were paged and acknowledged.
 * - MTTR: resolved_at − opened_at, over resolved incidents.
 * - auto-resolved: resolved, and no person (an actor that is a Slack user id, U…/W…) wrote any timeline event
 *   between the opening and the resolution: nobody approved, ran, paged, acknowledged or resolved anything, so
 *   the resolution came from the bot (a verified fix) or from the alert source (all alerts resolved). An alert
 *   that resolves itself counts: what the rate measures is "no human was needed". What people say about an
 *   incident does not count against it (PERSON_COMMENTARY: opening it by hand with `/incident trigger`, rating
 *   an action, a resolution note), nor anything after the resolution.
 * - escalated: the incident has an `incident.escalated` event.
 * - actions: `step.executed` events (dry runs are `step.dry_run` and never count), excluding communication
 *   steps (`notify`, `escalate`), which change no system and are not what "a false action" is about.
 * - wrong actions: executed steps that at least one person marked "wrong" in action_feedback (one row per person,
 *   their latest verdict). One dissent is enough: the rate is a prompt to review the runbook, and a step that a
 *   responder thought harmful deserves that review even if someone else approved of it.
 */
export interface SliFigures {
  incidents: number;
  resolved: number;
  /** seconds; null when no incident in the group has the measure */
  mttd: number | null;
  /** seconds; over paged and acknowledged incidents */
  mtta: number | null;
  /** seconds; over resolved incidents */
  mttr: number | null;
  /** seconds; the median of the same, for skew */
  mttrMedian: number | null;
  /** auto-resolved / resolved, 0–1 */
  autoResolveRate: number | null;
  /** escalated / incidents, 0–1 */
  escalationRate: number | null;
  actions: number;
  wrongActions: number;
  /** wrongActions / actions, 0–1 */
  falseActionRate: number | null;
  paged: number;
  acknowledged: number;
}

export interface SliTrendDay {
  /** YYYY-MM-DD, UTC */
  day: string;
  /** incidents opened that day */
  incidents: number;
  /** seconds; mean MTTR of the period's incidents resolved that day */
  mttr: number | null;
  /** auto-resolved / resolved among the period's incidents resolved that day */
  autoResolveRate: number | null;
}

export interface SliReport {
  from: Date;
  to: Date;
  service: string | null;
  overall: SliFigures;
  byService: Record<string, SliFigures>;
  /** by the incident's first runbook execution's runbook_id; `none` when it had none */
  byRunbook: Record<string, SliFigures>;
  /** one point per UTC day of the period, oldest first (for the chart) */
  trend: SliTrendDay[];
}

/** The key of incidents no runbook ran for, in byRunbook. */
export const NO_RUNBOOK = 'none';
/** days; a longer period is refused (a year of days is the most the trend and the chart are meant to show) */
export const MAX_PERIOD_DAYS = 366;
const DAY_MS = 86_400_000;

/** Actions that only talk (post, hand over): not counted as automated actions. */
const COMMUNICATION_ACTIONS = Object.entries(ACTION_CATALOGUE)
  .filter(([, entry]) => entry.communication === true)
  .map(([action]) => action);

/** A Slack user id: the actor of events a person caused. Bot and alert sources are lowercase names. */
const PERSON_ACTOR = '^[UW][A-Z0-9]{2,}$';
/** Events by a person that report or comment rather than intervene: they leave a resolution automatic. */
const PERSON_COMMENTARY = ['incident.opened', 'feedback.action', 'resolution.noted'];

/**
 * One row per incident in scope with what the figures need. Parameters: $1 from, $2 to (exclusive), $3 service or
 * null, $4 communication actions, $5 PERSON_COMMENTARY. Each incident reads its own timeline through the (incident_id, id) index, so the
 * cost grows with the incidents of the period only.
 */
const MEASURED = `
  scoped AS (
    SELECT i.id, i.service, i.status, i.opened_at, i.first_signal_at, i.resolved_at,
           COALESCE((SELECT e.runbook_id FROM runbook_executions e WHERE e.incident_id = i.id ORDER BY e.id LIMIT 1),
                    '${NO_RUNBOOK}') AS runbook
      FROM incidents i
     WHERE i.opened_at >= $1 AND i.opened_at < $2 AND ($3::text IS NULL OR i.service = $3)
  ),
  measured AS (
    SELECT s.id, s.service, s.runbook, s.opened_at, s.resolved_at,
           GREATEST(0, extract(epoch FROM s.opened_at - s.first_signal_at))::float8 AS detect_s,
           CASE WHEN s.status = 'resolved' AND s.resolved_at IS NOT NULL
                THEN GREATEST(0, extract(epoch FROM s.resolved_at - s.opened_at))::float8 END AS repair_s,
           ev.sent_at,
           CASE WHEN ev.sent_at IS NOT NULL AND ev.acked_at IS NOT NULL
                THEN GREATEST(0, extract(epoch FROM ev.acked_at - ev.sent_at))::float8 END AS ack_s,
           COALESCE(ev.escalated, false) AS escalated,
           COALESCE(ev.actions, 0) AS actions,
           (s.status = 'resolved' AND NOT COALESCE(ev.person_before_resolution, false)) AS auto_resolved,
           (SELECT count(*)::int
              FROM remediation_steps rs
             WHERE rs.incident_id = s.id AND NOT (rs.action = ANY ($4::text[]))
               AND EXISTS (SELECT 1 FROM action_feedback f WHERE f.step_row_id = rs.id AND f.verdict = 'wrong')
               AND EXISTS (SELECT 1 FROM timeline_events t
                            WHERE t.incident_id = s.id AND t.type = 'step.executed'
                              AND t.data ->> 'executionId' = rs.execution_id::text
                              AND t.data ->> 'step' = rs.step_id)) AS wrong_actions
      FROM scoped s
      LEFT JOIN LATERAL (
        SELECT t.id FROM timeline_events t
         WHERE t.incident_id = s.id AND t.type = 'incident.resolved' ORDER BY t.id DESC LIMIT 1
      ) resolution ON true
      LEFT JOIN LATERAL (
        SELECT min(t.at) FILTER (WHERE t.type = 'page.sent') AS sent_at,
               min(t.at) FILTER (WHERE t.type = 'page.acknowledged') AS acked_at,
               bool_or(t.type = 'incident.escalated') AS escalated,
               count(*) FILTER (WHERE t.type = 'step.executed'
                                  AND NOT (COALESCE(t.data ->> 'action', '') = ANY ($4::text[])))::int AS actions,
               -- up to the resolution event (by append order), or its time when the event is missing
               bool_or(t.actor ~ '${PERSON_ACTOR}' AND NOT (t.type = ANY ($5::text[]))
                       AND COALESCE(t.id <= resolution.id, t.at <= s.resolved_at)) AS person_before_resolution
          FROM timeline_events t
         WHERE t.incident_id = s.id
      ) ev ON true
  )`;

interface FiguresRow {
  incidents: number;
  resolved: number;
  mttd: number | null;
  mtta: number | null;
  mttr: number | null;
  mttr_median: number | null;
  auto_resolved: number;
  escalated: number;
  actions: number;
  wrong_actions: number;
  paged: number;
  acknowledged: number;
}

const FIGURES = `
  count(*)::int AS incidents,
  count(repair_s)::int AS resolved,
  avg(detect_s) AS mttd,
  avg(ack_s) AS mtta,
  avg(repair_s) AS mttr,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY repair_s) AS mttr_median,
  count(*) FILTER (WHERE repair_s IS NOT NULL AND auto_resolved)::int AS auto_resolved,
  count(*) FILTER (WHERE escalated)::int AS escalated,
  COALESCE(sum(actions), 0)::int AS actions,
  COALESCE(sum(wrong_actions), 0)::int AS wrong_actions,
  count(sent_at)::int AS paged,
  count(ack_s)::int AS acknowledged`;

/**
 * The SLIs of the incidents opened in [from, to), optionally of one service: overall, per service, per runbook,
 * and a per-UTC-day trend. Two queries, aggregated in Postgres. Throws RangeError for an empty, inverted or
 * longer than MAX_PERIOD_DAYS period.
 */
export async function computeSlis(
  db: Queryable,
  opts: { from: Date; to: Date; service?: string | null },
): Promise<SliReport> {
  const { from, to } = opts;
  const span = to.getTime() - from.getTime();
  if (!Number.isFinite(span) || span <= 0) {
    throw new RangeError(`the SLI period must end after it starts (from ${String(from)} to ${String(to)})`);
  }
  if (span > MAX_PERIOD_DAYS * DAY_MS) {
    throw new RangeError(`the SLI period may span at most ${MAX_PERIOD_DAYS} days`);
  }
  const service = opts.service ?? null;
  const params = [from, to, service, COMMUNICATION_ACTIONS, PERSON_COMMENTARY];

  const groups = await db.query<
    FiguresRow & { by_service: number; by_runbook: number; service: string | null; runbook: string | null }
  >(
    `WITH ${MEASURED}
     SELECT 1 - GROUPING(service) AS by_service, 1 - GROUPING(runbook) AS by_runbook, service, runbook, ${FIGURES}
       FROM measured
      GROUP BY GROUPING SETS ((), (service), (runbook))`,
    params,
  );
  const trend = await db.query<{
    day: string;
    incidents: number;
    mttr: number | null;
    resolved: number;
    auto_resolved: number;
  }>(
    `WITH ${MEASURED},
     days AS (
       SELECT d::date AS day
         FROM generate_series(date_trunc('day', $1::timestamptz AT TIME ZONE 'UTC'),
                              date_trunc('day', ($2::timestamptz - interval '1 microsecond') AT TIME ZONE 'UTC'),
                              interval '1 day') AS d
     ),
     opened AS (
       SELECT (opened_at AT TIME ZONE 'UTC')::date AS day, count(*)::int AS incidents FROM measured GROUP BY 1
     ),
     closed AS (
       SELECT (resolved_at AT TIME ZONE 'UTC')::date AS day, avg(repair_s) AS mttr, count(*)::int AS resolved,
              count(*) FILTER (WHERE auto_resolved)::int AS auto_resolved
         FROM measured WHERE repair_s IS NOT NULL GROUP BY 1
     )
     SELECT to_char(days.day, 'YYYY-MM-DD') AS day, COALESCE(opened.incidents, 0) AS incidents, closed.mttr,
            COALESCE(closed.resolved, 0) AS resolved, COALESCE(closed.auto_resolved, 0) AS auto_resolved
       FROM days
       LEFT JOIN opened ON opened.day = days.day
       LEFT JOIN closed ON closed.day = days.day
      ORDER BY days.day`,
    params,
  );

  let overall = figuresOf(undefined);
  const byService: [string, SliFigures][] = [];
  const byRunbook: [string, SliFigures][] = [];
  for (const row of groups.rows) {
    if (row.by_service === 1 && row.service !== null) byService.push([row.service, figuresOf(row)]);
    else if (row.by_runbook === 1 && row.runbook !== null) byRunbook.push([row.runbook, figuresOf(row)]);
    else if (row.by_service === 0 && row.by_runbook === 0) overall = figuresOf(row);
  }
  const byName = (a: [string, SliFigures], b: [string, SliFigures]) =>
    a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
  return {
    from,
    to,
    service,
    overall,
    // fromEntries defines own properties, so a service named like an Object.prototype key stays data
    byService: Object.fromEntries(byService.sort(byName)),
    byRunbook: Object.fromEntries(byRunbook.sort(byName)),
    trend: trend.rows.map((r) => ({
      day: r.day,
      incidents: r.incidents,
      mttr: r.mttr,
      autoResolveRate: ratio(r.auto_resolved, r.resolved),
    })),
  };
}

/** The figures of one group; an empty group (no incident at all) when `row` is missing. */
function figuresOf(row: FiguresRow | undefined): SliFigures {
  const r: FiguresRow = row ?? {
    incidents: 0,
    resolved: 0,
    mttd: null,
    mtta: null,
    mttr: null,
    mttr_median: null,
    auto_resolved: 0,
    escalated: 0,
    actions: 0,
    wrong_actions: 0,
    paged: 0,
    acknowledged: 0,
  };
  return {
    incidents: r.incidents,
    resolved: r.resolved,
    mttd: r.mttd,
    mtta: r.mtta,
    mttr: r.mttr,
    mttrMedian: r.mttr_median,
    autoResolveRate: ratio(r.auto_resolved, r.resolved),
    escalationRate: ratio(r.escalated, r.incidents),
    actions: r.actions,
    wrongActions: r.wrong_actions,
    falseActionRate: ratio(r.wrong_actions, r.actions),
    paged: r.paged,
    acknowledged: r.acknowledged,
  };
}

function ratio(part: number, whole: number): number | null {
  return whole > 0 ? part / whole : null;
}

/** The gauges sliMetricLines writes: name suffix, help, and the figure. */
const GAUGES: { name: string; help: string; value: (f: SliFigures) => number | null }[] = [
  { name: 'incidents', help: 'Incidents opened in the window', value: (f) => f.incidents },
  { name: 'resolved', help: 'Incidents opened in the window and resolved since', value: (f) => f.resolved },
  { name: 'mttd_seconds', help: 'Mean time from first signal to incident', value: (f) => f.mttd },
  { name: 'mtta_seconds', help: 'Mean time from first page to acknowledgement', value: (f) => f.mtta },
  { name: 'mttr_seconds', help: 'Mean time from incident opened to resolved', value: (f) => f.mttr },
  {
    name: 'mttr_median_seconds',
    help: 'Median time from incident opened to resolved',
    value: (f) => f.mttrMedian,
  },
  {
    name: 'auto_resolve_ratio',
    help: 'Share of resolved incidents resolved with no person involved',
    value: (f) => f.autoResolveRate,
  },
  {
    name: 'escalation_ratio',
    help: 'Share of incidents escalated to people',
    value: (f) => f.escalationRate,
  },
  { name: 'actions', help: 'Automated remediation actions executed', value: (f) => f.actions },
  { name: 'wrong_actions', help: 'Automated actions a person marked wrong', value: (f) => f.wrongActions },
  {
    name: 'false_action_ratio',
    help: 'Share of automated actions a person marked wrong',
    value: (f) => f.falseActionRate,
  },
  { name: 'paged', help: 'Incidents that paged someone', value: (f) => f.paged },
  { name: 'acknowledged', help: 'Paged incidents whose page was acknowledged', value: (f) => f.acknowledged },
];

/**
 * The figures as Prometheus gauges (text exposition format), one family per figure with its HELP and TYPE,
 * e.g. `ai_sre_sli_mttr_seconds{window="7d",service="checkout"} 123`. Overall figures carry only `window`;
 * per-service ones add `service`, per-runbook ones `runbook` (so sum over one label, never over all series).
 * A report filtered to one service writes its overall figures with that `service` label and nothing else.
 * Figures that are null (nothing to measure) are left out rather than written as NaN.
 */
export function sliMetricLines(reports: { window: string; report: SliReport }[]): string {
  const lines: string[] = [];
  for (const gauge of GAUGES) {
    const name = `ai_sre_sli_${gauge.name}`;
    lines.push(`# HELP ${name} ${gauge.help}`, `# TYPE ${name} gauge`);
    const sample = (labels: Record<string, string>, figures: SliFigures) => {
      const value = gauge.value(figures);
      if (value === null || !Number.isFinite(value)) return;
      const text = Object.entries(labels)
        .map(([key, v]) => `${key}="${escapeLabelValue(v)}"`)
        .join(',');
      lines.push(`${name}{${text}} ${value}`);
    };
    for (const { window, report } of reports) {
      if (report.service !== null) {
        sample({ window, service: report.service }, report.overall);
        continue;
      }
      sample({ window }, report.overall);
      for (const [service, figures] of Object.entries(report.byService)) sample({ window, service }, figures);
      for (const [runbook, figures] of Object.entries(report.byRunbook)) sample({ window, runbook }, figures);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The exposition format escapes backslash, double quote and line feed in label values. */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
