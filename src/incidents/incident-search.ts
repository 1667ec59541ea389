import { redactSecrets } from '../diagnostics/redact.js';
import type { Queryable } from '../store/db.js';

/**
 * Characters of text per weight class put into an incident's search document. Bounded so one incident with a huge
 * alert summary or a pasted log in a note cannot make the document (and every ranking against it) expensive; the
 * newest notes and the first diagnostics are kept.
 */
const MAX_CHARS = { A: 4_000, B: 2_000, C: 6_000 } as const;
/** characters of one piece (a title, a note, a diagnostic summary) before it is cut */
const MAX_PIECE = 1_000;

interface SourceRow {
  title: string;
  summary: string;
  service: string;
  labels: Record<string, unknown>;
  alert_names: string[];
  diagnostic_summaries: string[];
  decisions: string[];
  notes: string[];
}

/** The text of each weight class, redacted and bounded: what {@link refreshIncidentSearch} indexes. */
export interface SearchText {
  /** title and resolution notes (newest first) */
  a: string;
  /** service, label values, alert names and the summary */
  b: string;
  /** diagnostics summaries and decision text */
  c: string;
}

/** Joins redacted pieces on one line each, keeping whole pieces while they fit in `max` characters. */
function bounded(pieces: readonly unknown[], max: number): string {
  const out: string[] = [];
  let used = 0;
  for (const piece of pieces) {
    if (typeof piece !== 'string') continue;
    const text = redactSecrets(piece.replace(/\s+/g, ' ').trim()).slice(0, MAX_PIECE);
    if (text === '') continue;
    if (used + text.length + 1 > max) {
      const room = max - used - 1;
      if (room > 20) out.push(text.slice(0, room));
      break;
    }
    out.push(text);
    used += text.length + 1;
  }
  return out.join('\n');
}

/** What an incident's search document is built from; null when the incident does not exist. */
export async function loadSearchText(db: Queryable, incidentId: number): Promise<SearchText | null> {
  const { rows } = await db.query<SourceRow>(
    `SELECT i.title, i.summary, i.service, i.labels,
            COALESCE((SELECT array_agg(DISTINCT a.name) FROM incident_alerts a WHERE a.incident_id = i.id), '{}')
              AS alert_names,
            COALESCE((SELECT array_agg(d.summary ORDER BY e.id, d.position)
                        FROM runbook_executions e JOIN diagnostic_results d ON d.execution_id = e.id
                       WHERE e.incident_id = i.id), '{}') AS diagnostic_summaries,
            COALESCE((SELECT array_agg(concat_ws(' ', e.decision -> 'hypothesis' ->> 'description',
                                                  e.decision ->> 'text') ORDER BY e.id)
                        FROM runbook_executions e
                       WHERE e.incident_id = i.id AND e.decision IS NOT NULL), '{}') AS decisions,
            COALESCE((SELECT array_agg(concat_ws(' ', n.cause, n.fix, n.note) ORDER BY n.id DESC)
                        FROM resolution_notes n WHERE n.incident_id = i.id), '{}') AS notes
       FROM incidents i WHERE i.id = $1`,
    [incidentId],
  );
  const row = rows[0];
  if (!row) return null;
  const labelValues = Object.values(row.labels ?? {}).filter((v): v is string => typeof v === 'string');
  return {
    a: bounded([row.title, ...row.notes], MAX_CHARS.A),
    b: bounded([row.service, ...labelValues, ...row.alert_names, row.summary], MAX_CHARS.B),
    c: bounded([...row.diagnostic_summaries, ...row.decisions], MAX_CHARS.C),
  };
}

/**
 * (Re)builds the full-text document similar-incident search ranks against: title and resolution notes (weight A),
 * service, label values, alert names and summary (B), diagnostics summaries and decision text (C), with the
 * 'english' configuration. Everything is redacted first. Idempotent: the row is replaced whole, so calling it again
 * (on resolve, on a new note, after a decision) only brings it up to date. An incident that does not exist is a no-op.
 */
export async function refreshIncidentSearch(db: Queryable, incidentId: number): Promise<void> {
  const text = await loadSearchText(db, incidentId);
  if (!text) return;
  await db.query(
    `INSERT INTO incident_search (incident_id, document, updated_at)
     VALUES ($1,
             setweight(to_tsvector('english', $2::text), 'A')
               || setweight(to_tsvector('english', $3::text), 'B')
               || setweight(to_tsvector('english', $4::text), 'C'),
             now())
     ON CONFLICT (incident_id) DO UPDATE SET document = EXCLUDED.document, updated_at = EXCLUDED.updated_at`,
    [incidentId, text.a, text.b, text.c],
  );
}

/**
 * Indexes up to `limit` incidents that have no search document yet, newest first (a backfill after the migration, or
 * a catch-up after a missed refresh). Returns how many were indexed.
 */
export async function refreshMissingIncidentSearch(
  db: Queryable,
  opts: { limit?: number /* default 500 */ } = {},
): Promise<number> {
  const { rows } = await db.query<{ id: number }>(
    `SELECT i.id FROM incidents i
      WHERE NOT EXISTS (SELECT 1 FROM incident_search s WHERE s.incident_id = i.id)
      ORDER BY i.id DESC LIMIT $1`,
    [Math.max(0, Math.floor(opts.limit ?? 500))],
  );
  for (const { id } of rows) await refreshIncidentSearch(db, Number(id));
  return rows.length;
}
