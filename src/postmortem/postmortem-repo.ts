import type { Incident } from '../incidents/incident.js';
import { getIncident } from '../incidents/lifecycle.js';
import { listTimeline, type TimelineEvent } from '../incidents/timeline.js';
import type { Queryable } from '../store/db.js';

/** What a postmortem draft is built from: the incident row (id, service, title, severity) and its whole timeline. */
export interface PostmortemInput {
  incident: Incident;
  /** every event of the incident, in id order */
  events: TimelineEvent[];
}

/** events read per query while loading a timeline; a long incident is read in pages of this size */
const TIMELINE_PAGE = 1000;

/** The incident and all of its timeline events, or null when there is no such incident. */
export async function loadPostmortemInput(
  db: Queryable,
  incidentId: number,
): Promise<PostmortemInput | null> {
  const incident = await getIncident(db, incidentId);
  if (!incident) return null;
  const events: TimelineEvent[] = [];
  for (;;) {
    const page = await listTimeline(db, incidentId, {
      afterId: events.at(-1)?.id ?? 0,
      limit: TIMELINE_PAGE,
    });
    events.push(...page);
    if (page.length < TIMELINE_PAGE) break;
  }
  return { incident, events };
}

export interface StoredPostmortem {
  incidentId: number;
  markdown: string;
  /** the few plain lines posted in the incident's thread */
  summary: string;
  /** 'deterministic', or 'llm:<model>' when a model wrote the advisory narrative */
  generator: string;
  /** the newest timeline event the draft includes */
  throughEventId: number;
  /** 1 for the first draft, +1 each time it is regenerated */
  revision: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewPostmortem {
  incidentId: number;
  markdown: string;
  summary: string;
  generator: string;
  throughEventId: number;
}

interface PostmortemRow {
  incident_id: number;
  markdown: string;
  summary: string;
  generator: string;
  through_event_id: number;
  revision: number;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS =
  'incident_id, markdown, summary, generator, through_event_id, revision, created_at, updated_at';

function fromRow(r: PostmortemRow): StoredPostmortem {
  return {
    incidentId: r.incident_id,
    markdown: r.markdown,
    summary: r.summary,
    generator: r.generator,
    throughEventId: r.through_event_id,
    revision: r.revision,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/**
 * Stores an incident's draft: the first save creates it at revision 1, every later save replaces the text and bumps
 * the revision (the newest draft wins; earlier ones are not kept, the timeline they came from is).
 */
export async function savePostmortem(db: Queryable, p: NewPostmortem): Promise<StoredPostmortem> {
  const { rows } = await db.query<PostmortemRow>(
    `INSERT INTO postmortems (incident_id, markdown, summary, generator, through_event_id)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (incident_id) DO UPDATE
        SET markdown = EXCLUDED.markdown, summary = EXCLUDED.summary, generator = EXCLUDED.generator,
            through_event_id = EXCLUDED.through_event_id, revision = postmortems.revision + 1, updated_at = now()
     RETURNING ${COLUMNS}`,
    [p.incidentId, p.markdown, p.summary, p.generator, p.throughEventId],
  );
  return fromRow(rows[0] as PostmortemRow);
}

/** The stored draft of an incident, or null when none was generated yet. */
export async function getPostmortem(db: Queryable, incidentId: number): Promise<StoredPostmortem | null> {
  const { rows } = await db.query<PostmortemRow>(
    `SELECT ${COLUMNS} FROM postmortems WHERE incident_id = $1`,
    [incidentId],
  );
  return rows[0] ? fromRow(rows[0]) : null;
}
