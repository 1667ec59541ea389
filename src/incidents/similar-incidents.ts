import type { Severity } from '../alerts/normalized-alert.js';
import { redactSecrets } from '../diagnostics/redact.js';
import type { Queryable } from '../store/db.js';
import type { Incident, IncidentStatus } from './incident.js';

export interface SimilarIncident {
  id: number;
  title: string;
  service: string;
  severity: Severity;
  openedAt: Date;
  resolvedAt: Date | null;
  score: number;
  matched: ('service' | 'alert' | 'text')[];
  /** how it ended, from its timeline and newest resolution note: "auto-resolved: rollback verified",
   *  "resolved by U123 after 14 min: restarted the pgbouncer pool", "escalated (automatic fix failed), still open" */
  resolution: string;
}

/**
 * Weights of the score: same service, a shared alert name, and 2 × the full-text rank (0..1) of this incident's words
 * against the other's search document (incident_search; title + summary for one not indexed yet).
 */
const SERVICE_WEIGHT = 3;
const ALERT_WEIGHT = 2;
const TEXT_WEIGHT = 2;
/** the newest incidents of the window scored at all, and again the newest text matches from the index: bounds the
 *  work on a long history while an old incident whose document matches is still found */
const MAX_CANDIDATES = 5_000;
/** words of this incident's title, summary, alert names and diagnostics summaries put into the text query */
const MAX_QUERY_WORDS = 40;
/** characters of a resolution note's text shown in the resolution line */
const MAX_NOTE_CHARS = 200;

/**
 * "checkout latency p99 above slo" → "checkout | latency | p99 | above | slo": the incident's own words as an OR
 * query for `to_tsquery`. Only [a-z0-9] words of 3+ characters get through, so the query text has no operator or
 * quote that could change its meaning; it is still passed as a bind parameter.
 */
export function textQueryOf(text: string): string {
  const words = new Set<string>();
  for (const word of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
    if (word.length < 3 || word.length > 60) continue;
    words.add(word);
    if (words.size >= MAX_QUERY_WORDS) break;
  }
  return [...words].join(' | ');
}

interface Row {
  id: number;
  title: string;
  service: string;
  severity: Severity;
  status: IncidentStatus;
  opened_at: Date;
  resolved_at: Date | null;
  same_service: boolean;
  same_alert: boolean;
  text_rank: number;
  score: number;
  resolved_by: string | null;
  resolved_reason: string | null;
  verified_tried: unknown;
  verified_reason: string | null;
  escalation_category: string | null;
  escalation_text: string | null;
  escalated: boolean;
  note_by: string | null;
  note_text: string | null;
}

/** This incident's own words beyond title and summary: its alert names and its diagnostics' summaries. */
async function ownWords(db: Queryable, incidentId: number): Promise<string> {
  const { rows } = await db.query<{ words: string | null }>(
    `SELECT concat_ws(' ',
              (SELECT string_agg(DISTINCT a.name, ' ') FROM incident_alerts a WHERE a.incident_id = $1),
              (SELECT string_agg(d.summary, ' ' ORDER BY e.id, d.position)
                 FROM runbook_executions e JOIN diagnostic_results d ON d.execution_id = e.id
                WHERE e.incident_id = $1)) AS words`,
    [incidentId],
  );
  return rows[0]?.words ?? '';
}

/**
 * Past incidents like this one, best first: opened before it within `withinDays`, scored by the same service (3),
 * an alert name in common with this incident's alerts (2) and 2 × the full-text rank of this incident's words (title,
 * summary, alert names, diagnostics summaries) against the other's search document, which holds its resolution notes
 * too. Incidents not indexed yet still match by service and alert (and by their title + summary). Only scores above
 * 0; ties go to the newest. How each one ended is read from its timeline and its newest resolution note.
 */
export async function findSimilarIncidents(
  db: Queryable,
  incident: Pick<Incident, 'id' | 'service' | 'title' | 'summary' | 'labels' | 'openedAt'>,
  opts: { limit?: number /* default 3 */; withinDays?: number /* default 180 */ } = {},
): Promise<SimilarIncident[]> {
  const limit = Math.max(0, Math.min(50, Math.floor(opts.limit ?? 3)));
  if (limit === 0) return [];
  const withinDays = Math.max(0, opts.withinDays ?? 180);
  const query = textQueryOf(`${incident.title} ${incident.summary} ${await ownWords(db, incident.id)}`);
  const { rows } = await db.query<Row>(
    `WITH mine AS (
       SELECT DISTINCT COALESCE(a.labels ->> 'alertname', a.name) AS alertname
         FROM incident_alerts a WHERE a.incident_id = $1
       UNION
       SELECT $7::text WHERE $7::text IS NOT NULL
     ), q AS (
       SELECT CASE WHEN $4::text = '' THEN NULL ELSE to_tsquery('english', $4::text) END AS query
     ), candidates AS (
       (SELECT i.id FROM incidents i
         WHERE i.id <> $1
           AND i.opened_at < $3::timestamptz
           AND i.opened_at >= $3::timestamptz - make_interval(days => $5::integer)
         ORDER BY i.opened_at DESC
         LIMIT ${MAX_CANDIDATES})
       UNION
       (SELECT i.id FROM q, incident_search x JOIN incidents i ON i.id = x.incident_id
         WHERE q.query IS NOT NULL AND x.document @@ q.query
           AND i.id <> $1
           AND i.opened_at < $3::timestamptz
           AND i.opened_at >= $3::timestamptz - make_interval(days => $5::integer)
         ORDER BY i.opened_at DESC
         LIMIT ${MAX_CANDIDATES})
     ), scored AS (
       SELECT i.id, i.title, i.service, i.severity, i.status, i.opened_at, i.resolved_at,
              i.service = $2 AS same_service,
              (i.labels ->> 'alertname' IN (SELECT alertname FROM mine)
                OR EXISTS (SELECT 1 FROM incident_alerts a
                            WHERE a.incident_id = i.id
                              AND COALESCE(a.labels ->> 'alertname', a.name) IN (SELECT alertname FROM mine))
              ) AS same_alert,
              COALESCE((SELECT LEAST(1, ts_rank(COALESCE(x.document,
                                                         to_tsvector('english', i.title || ' ' || i.summary)),
                                                q.query))
                          FROM q WHERE q.query IS NOT NULL), 0)::float8 AS text_rank
         FROM candidates c
         JOIN incidents i ON i.id = c.id
         LEFT JOIN incident_search x ON x.incident_id = i.id
     )
     SELECT s.id, s.title, s.service, s.severity, s.status, s.opened_at, s.resolved_at,
            s.same_service, COALESCE(s.same_alert, false) AS same_alert, s.text_rank,
            (CASE WHEN s.same_service THEN ${SERVICE_WEIGHT} ELSE 0 END
             + CASE WHEN COALESCE(s.same_alert, false) THEN ${ALERT_WEIGHT} ELSE 0 END
             + ${TEXT_WEIGHT} * s.text_rank)::float8 AS score,
            r.actor AS resolved_by, r.data ->> 'reason' AS resolved_reason,
            v.data -> 'tried' AS verified_tried, v.data ->> 'reason' AS verified_reason,
            e.data ->> 'category' AS escalation_category, e.data ->> 'categoryText' AS escalation_text,
            EXISTS (SELECT 1 FROM timeline_events t WHERE t.incident_id = s.id AND t.type = 'incident.escalated')
              AS escalated,
            n.user_id AS note_by,
            COALESCE(NULLIF(btrim(n.fix), ''), NULLIF(btrim(n.note), ''), NULLIF(btrim(n.cause), '')) AS note_text
       FROM scored s
       LEFT JOIN LATERAL (SELECT actor, data FROM timeline_events
                           WHERE incident_id = s.id AND type = 'incident.resolved'
                           ORDER BY id DESC LIMIT 1) r ON true
       LEFT JOIN LATERAL (SELECT data FROM timeline_events
                           WHERE incident_id = s.id AND type = 'remediation.verified'
                           ORDER BY id DESC LIMIT 1) v ON true
       LEFT JOIN LATERAL (SELECT data FROM timeline_events
                           WHERE incident_id = s.id AND type = 'escalation.started'
                           ORDER BY id DESC LIMIT 1) e ON true
       LEFT JOIN LATERAL (SELECT user_id, cause, fix, note FROM resolution_notes
                           WHERE incident_id = s.id
                           ORDER BY id DESC LIMIT 1) n ON true
      WHERE s.same_service OR COALESCE(s.same_alert, false) OR s.text_rank > 0
      ORDER BY score DESC, s.opened_at DESC, s.id DESC
      LIMIT $6`,
    [
      incident.id,
      incident.service,
      incident.openedAt,
      query,
      withinDays,
      limit,
      incident.labels.alertname ?? null,
    ],
  );
  return rows.map((r) => ({
    id: r.id,
    title: redactSecrets(r.title),
    service: r.service,
    severity: r.severity,
    openedAt: r.opened_at,
    resolvedAt: r.resolved_at,
    score: Math.round(r.score * 1000) / 1000,
    matched: [
      ...(r.same_service ? (['service'] as const) : []),
      ...(r.same_alert ? (['alert'] as const) : []),
      ...(r.text_rank > 0 ? (['text'] as const) : []),
    ],
    resolution: redactSecrets(resolutionOf(r)),
  }));
}

const SLACK_USER = /^[UW][A-Z0-9]{2,}$/;

/**
 * How a past incident ended, in a few words. The escalation category is named in the words the escalation flow
 * wrote (`categoryText`); older events only have the id, shown with spaces (this module does not import escalation/).
 */
function resolutionOf(r: Row): string {
  const category =
    r.escalation_text?.trim() || (r.escalation_category ? r.escalation_category.replace(/_/g, ' ') : null);
  const escalation = category ? `escalated (${category})` : r.escalated ? 'escalated' : null;
  const note = noteOf(r);
  if (r.status !== 'resolved') {
    const state = escalation ? `${escalation}, still open` : `still ${r.status.replace(/_/g, ' ')}`;
    return note ? `${state}; noted by ${note.by}: ${note.text}` : state;
  }
  const after =
    r.resolved_at !== null ? ` after ${formatMinutes(r.resolved_at.getTime() - r.opened_at.getTime())}` : '';
  const first = escalation ? ` (${escalation} first)` : '';
  if (r.resolved_by !== null && SLACK_USER.test(r.resolved_by)) {
    return `resolved by ${r.resolved_by}${after}${first}${note ? `: ${note.text}` : ''}`;
  }
  const verified = verifiedSteps(r.verified_tried);
  const base =
    verified.length > 0 || r.verified_reason !== null
      ? `auto-resolved: ${verified.length > 0 ? `${verified.join(', ')} verified` : r.verified_reason}${after}`
      : `resolved${r.resolved_reason ? `: ${r.resolved_reason}` : ''}${after}${first}`;
  return note ? `${base}; noted by ${note.by}: ${note.text}` : base;
}

/** The newest resolution note's fix (else its note, else its cause) on one line, cut to a readable length. */
function noteOf(r: Row): { by: string; text: string } | null {
  // redacted before it is cut, so a cut can never leave half a secret that no longer looks like one
  const text = redactSecrets(r.note_text ?? '')
    .replace(/\s+/g, ' ')
    .trim();
  if (!text) return null;
  const cut = text.length > MAX_NOTE_CHARS ? `${text.slice(0, MAX_NOTE_CHARS - 1).trimEnd()}…` : text;
  return { by: r.note_by ?? 'someone', text: cut };
}

function verifiedSteps(tried: unknown): string[] {
  if (!Array.isArray(tried)) return [];
  return tried.flatMap((t) => {
    const step = t as { step?: unknown; status?: unknown };
    return step.status === 'verified' && typeof step.step === 'string' ? [step.step] : [];
  });
}

/** "14 min", "2 h 5 min", "3 d 4 h" */
function formatMinutes(ms: number): string {
  const minutes = Math.max(0, Math.round(ms / 60_000));
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 > 0 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
  const days = Math.floor(hours / 24);
  return hours % 24 > 0 ? `${days} d ${hours % 24} h` : `${days} d`;
}
