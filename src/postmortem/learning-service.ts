import { z } from 'zod';
import { describeEvent } from '../incidents/describe-event.js';
import type { Incident } from '../incidents/incident.js';
import { incidentRef } from '../incidents/incident.js';
import { refreshIncidentSearch, refreshMissingIncidentSearch } from '../incidents/incident-search.js';
import { getIncident } from '../incidents/lifecycle.js';
import { findSimilarIncidents, type SimilarIncident } from '../incidents/similar-incidents.js';
import { appendTimelineEvent } from '../incidents/timeline.js';
import type { Logger } from '../logger.js';
import type { JobDefinition } from '../queue/jobs.js';
import type { JobHandler, Queues } from '../queue/queues.js';
import { type Db, withTransaction } from '../store/db.js';
import { ResolutionNote, recordActionFeedback, recordResolutionNote, type Verdict } from './feedback.js';
import type { Summariser } from './llm-summariser.js';
import { draftPostmortem, type Narrative } from './postmortem-draft.js';
import { loadPostmortemInput, type StoredPostmortem, savePostmortem } from './postmortem-repo.js';
import { computeSlis, type SliReport } from './slis.js';
import { computeSuggestions, type Suggestion } from './suggestions.js';

/**
 * Post-incident learning, wired together: the postmortem draft when an incident resolves (and again when a person adds
 * a resolution note), people's verdicts on automated actions, the SLIs, the weekly runbook suggestions and similar
 * incidents. Everything is read from Postgres; the optional LLM only writes an advisory narrative.
 */

/** The Slack side (src/slack/learning-publisher.ts); null when Slack is not configured. */
export interface LearningPublisher {
  /** posts the draft's summary (with the Resolution note button) and the Markdown as a file in the incident's thread */
  publishPostmortem(postmortem: StoredPostmortem, followUps: number): Promise<boolean>;
  postSuggestions(suggestions: Suggestion[], period: string): Promise<void>;
}

export interface LearningDeps {
  db: Db;
  queues: Queues;
  log: Logger;
  /** the optional LLM (LLM_BASE_URL); null: the deterministic draft only */
  summariser: Summariser | null;
  publisher: LearningPublisher | null;
  /** how often the runbook suggestions are posted; days; 0 = never */
  suggestionsEveryDays: number;
  /** tells the Slack view an incident changed (a verdict's counts, a note in the thread); never throws */
  changed(change: { incidentId: number; eventId: number; urgent: boolean }): Promise<void>;
}

export interface LearningService {
  judgeAction(input: {
    stepRowId: number;
    userId: string;
    verdict: Verdict;
  }): Promise<{ ok: boolean; message: string }>;
  addResolutionNote(input: {
    incidentId: number;
    userId: string;
    note: Record<string, string>;
  }): Promise<{ ok: true } | { ok: false; errors: Record<string, string> }>;
  /** after a change: a resolved incident gets its postmortem draft (once per resolution) */
  afterChange(incidentId: number): Promise<void>;
  /** drafts (or redrafts) the postmortem from the timeline, stores it, and posts it when `publish` */
  draft(incidentId: number, opts?: { publish?: boolean }): Promise<StoredPostmortem | null>;
  stats(opts: { from: Date; to: Date; service?: string | null }): Promise<SliReport>;
  suggestions(opts: { from: Date; to: Date }): Promise<Suggestion[]>;
  similar(incidentId: number): Promise<{ incident: Incident; items: SimilarIncident[] } | null>;
  /** postmortems owed to resolved incidents, and the weekly suggestions when due; returns how many jobs */
  sweep(tag: string): Promise<number>;
  handlers(): JobHandler<never>[];
}

export const DraftPostmortemPayload = z.object({
  incidentId: z.number().int().positive(),
  /** why: the resolution event, a note, a sweep; only part of the id */
  key: z.string().min(1).max(100),
});
export type DraftPostmortemPayload = z.infer<typeof DraftPostmortemPayload>;

export const draftPostmortemJob: JobDefinition<DraftPostmortemPayload> = {
  queue: 'learning',
  name: 'postmortem.draft',
  payload: DraftPostmortemPayload,
  jobId: (d) => `postmortem-${d.incidentId}-${d.key}`,
  attempts: 8,
  backoffMs: 5_000,
};

export const PostSuggestionsPayload = z.object({ key: z.string().min(1).max(100) });
export type PostSuggestionsPayload = z.infer<typeof PostSuggestionsPayload>;

export const postSuggestionsJob: JobDefinition<PostSuggestionsPayload> = {
  queue: 'learning',
  name: 'suggestions.post',
  payload: PostSuggestionsPayload,
  jobId: (d) => `suggestions-${d.key}`,
  attempts: 5,
  backoffMs: 30_000,
};

const DAY_MS = 86_400_000;
/** the window the weekly suggestions look at; days */
const SUGGESTIONS_WINDOW_DAYS = 30;
/** timeline lines and evidence samples given to the LLM */
const LLM_TIMELINE_LINES = 80;
const LLM_EVIDENCE_SAMPLES = 10;

export function createLearningService(deps: LearningDeps): LearningService {
  const { db, log } = deps;

  const narrativeFor = async (incidentId: number): Promise<Narrative | null> => {
    if (!deps.summariser) return null;
    const input = await loadPostmortemInput(db, incidentId);
    if (!input) return null;
    const timeline = input.events
      .slice(-LLM_TIMELINE_LINES)
      .map((e) => `${e.at.toISOString().slice(11, 19)} ${e.actor}: ${describeEvent(e)}`);
    // alert text and diagnostic summaries: untrusted samples the summariser quotes as data
    const evidence = [
      `alert summary: ${input.incident.summary}`,
      ...input.events
        .filter((e) => e.type === 'alert.attached' || e.type === 'diagnostic.completed')
        .slice(-LLM_EVIDENCE_SAMPLES)
        .map((e) => describeEvent(e)),
    ];
    try {
      return await deps.summariser.summarise({
        incidentRef: incidentRef(incidentId),
        service: input.incident.service,
        severity: input.incident.severity,
        timeline,
        evidence,
      });
    } catch (err) {
      // the deterministic draft stands on its own
      log.debug(
        { err: (err as Error).message, incident: incidentId },
        'LLM summary failed; deterministic draft only',
      );
      return null;
    }
  };

  const service: LearningService = {
    async judgeAction(input) {
      const outcome = await recordActionFeedback(db, input);
      if (outcome.incidentId !== undefined && outcome.eventId !== undefined)
        await deps.changed({ incidentId: outcome.incidentId, eventId: outcome.eventId, urgent: true });
      return { ok: outcome.ok, message: outcome.message };
    },

    async addResolutionNote({ incidentId, userId, note }) {
      const parsed = ResolutionNote.safeParse(note);
      if (!parsed.success) {
        const errors: Record<string, string> = {};
        for (const issue of parsed.error.issues) errors[String(issue.path[0] ?? 'cause')] ??= issue.message;
        return { ok: false, errors };
      }
      const stored = await recordResolutionNote(db, { incidentId, userId, note: parsed.data });
      if (!stored.ok) return { ok: false, errors: { cause: stored.message } };
      await deps.changed({ incidentId, eventId: stored.eventId, urgent: true });
      await refreshIncidentSearch(db, incidentId).catch((err: unknown) =>
        log.warn({ err: (err as Error).message, incident: incidentId }, 'could not index the note'),
      );
      // the note is the people's conclusion: the draft is written again with it
      await deps.queues
        .enqueue(draftPostmortemJob, { incidentId, key: `note-${stored.noteId}` })
        .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'could not enqueue the redraft'));
      return { ok: true };
    },

    async afterChange(incidentId) {
      const { rows } = await db.query<{ status: string; resolved_event: number | null; drafted: boolean }>(
        `SELECT i.status,
                (SELECT max(t.id) FROM timeline_events t WHERE t.incident_id = i.id AND t.type = 'incident.resolved')
                  AS resolved_event,
                EXISTS (SELECT 1 FROM postmortems p WHERE p.incident_id = i.id) AS drafted
           FROM incidents i WHERE i.id = $1`,
        [incidentId],
      );
      const row = rows[0];
      if (row?.status !== 'resolved' || row.resolved_event === null || row.drafted) return;
      await deps.queues.enqueue(draftPostmortemJob, { incidentId, key: `resolved-${row.resolved_event}` });
    },

    async draft(incidentId, opts = {}) {
      const input = await loadPostmortemInput(db, incidentId);
      if (!input) return null;
      const narrative = await narrativeFor(incidentId);
      const draft = draftPostmortem(input, { narrative });
      const stored = await withTransaction(db, async (tx) => {
        const saved = await savePostmortem(tx, {
          incidentId,
          markdown: draft.markdown,
          summary: draft.summary,
          generator: draft.generator,
          throughEventId: draft.throughEventId,
        });
        await appendTimelineEvent(tx, incidentId, 'ai-sre', 'postmortem.drafted', false, {
          revision: saved.revision,
          generator: saved.generator,
          throughEventId: saved.throughEventId,
        });
        return saved;
      });
      await refreshIncidentSearch(db, incidentId).catch((err: unknown) =>
        log.warn({ err: (err as Error).message, incident: incidentId }, 'could not index the incident'),
      );
      if (opts.publish !== false && deps.publisher)
        await deps.publisher.publishPostmortem(stored, draft.followUps.length);
      log.info(
        { incident: incidentId, revision: stored.revision, generator: stored.generator },
        'postmortem drafted',
      );
      return stored;
    },

    stats: (opts) => computeSlis(db, opts),
    suggestions: (opts) => computeSuggestions(db, opts),

    async similar(incidentId) {
      const incident = await getIncident(db, incidentId);
      if (!incident) return null;
      return { incident, items: await findSimilarIncidents(db, incident, { limit: 5 }) };
    },

    async sweep(tag) {
      const { rows } = await db.query<{ id: number }>(
        `SELECT i.id FROM incidents i
          WHERE i.status = 'resolved' AND i.resolved_at > now() - interval '7 days'
            AND i.resolved_at < now() - interval '1 minute'
            AND NOT EXISTS (SELECT 1 FROM postmortems p WHERE p.incident_id = i.id)
          ORDER BY i.id LIMIT 200`,
      );
      for (const r of rows)
        await deps.queues.enqueue(draftPostmortemJob, { incidentId: r.id, key: `sweep-${tag}` });
      let n = rows.length;
      // incidents from before the search index existed, or whose refresh failed
      await refreshMissingIncidentSearch(db, { limit: 500 });
      if (deps.suggestionsEveryDays > 0) {
        const { rows: due } = await db.query<{ due: boolean }>(
          `SELECT NOT EXISTS (SELECT 1 FROM scheduled_posts
                               WHERE name = 'suggestions' AND last_at > now() - make_interval(days => $1)) AS due`,
          [deps.suggestionsEveryDays],
        );
        if (due[0]?.due) {
          await deps.queues.enqueue(postSuggestionsJob, { key: tag });
          n += 1;
        }
      }
      return n;
    },

    handlers() {
      const draft: JobHandler<DraftPostmortemPayload> = {
        definition: draftPostmortemJob,
        concurrency: 2,
        async handle(data) {
          await service.draft(data.incidentId);
        },
      };
      const suggestions: JobHandler<PostSuggestionsPayload> = {
        definition: postSuggestionsJob,
        concurrency: 1,
        async handle() {
          // claim the week and post in one transaction: of several processes (or a re-delivered job) exactly one
          // posts, and a failed post gives the claim back for the retry
          const posted = await withTransaction(db, async (tx) => {
            const { rows } = await tx.query(
              `INSERT INTO scheduled_posts (name, last_at) VALUES ('suggestions', now())
               ON CONFLICT (name) DO UPDATE SET last_at = now()
                 WHERE scheduled_posts.last_at <= now() - make_interval(days => $1)
               RETURNING last_at`,
              [deps.suggestionsEveryDays],
            );
            if (rows.length === 0) return null;
            const to = new Date();
            const items = await computeSuggestions(tx, {
              from: new Date(to.getTime() - SUGGESTIONS_WINDOW_DAYS * DAY_MS),
              to,
            });
            // an empty week is not worth a message (the claim still counts: the next look is next week)
            if (items.length > 0)
              await deps.publisher?.postSuggestions(items, `the last ${SUGGESTIONS_WINDOW_DAYS} days`);
            return items;
          });
          if (!posted) return;
          const items = posted;
          log.info({ suggestions: items.length }, 'weekly runbook suggestions posted');
        },
      };
      return [draft, suggestions] as JobHandler<never>[];
    },
  };
  return service;
}
