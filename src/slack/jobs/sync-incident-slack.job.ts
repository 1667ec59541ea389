import type { WebClient } from '@slack/web-api';
import { DelayedError, type Job, UnrecoverableError } from 'bullmq';
import { INCIDENT_COLUMNS, type IncidentRow, incidentFromRow } from '../../incidents/incident.js';
import { listTimeline } from '../../incidents/timeline.js';
import type { Logger } from '../../logger.js';
import type { Metrics } from '../../metrics.js';
import type { JobDefinition, SyncIncidentSlackPayload } from '../../queue/jobs.js';
import type { JobHandler } from '../../queue/queues.js';
import type { Db, Tx } from '../../store/db.js';
import { buildIncidentCard, buildTimelineMessage } from '../blocks/incident-card.js';
import { fitMessage } from '../blocks/limits.js';
import { cardViewOf, describeEvent } from '../incident-view.js';
import type { ChannelRouter } from '../routing.js';

/** Slack errors that no retry will fix: the job stops, the incident goes on, the reconciler can try again later. */
const PERMANENT_ERRORS = new Set([
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'missing_scope',
  'no_permission',
  'invalid_blocks',
  'invalid_arguments',
  'msg_too_long',
  'message_not_found',
  'cant_update_message',
]);

/** timeline events per thread message (two blocks each, inside Slack's 50) */
const DIGEST_SIZE = 20;

export interface SyncDeps {
  db: Db;
  slack: WebClient;
  router: ChannelRouter;
  metrics: Metrics;
  log: Logger;
}

interface SlackMessageRow {
  channel: string;
  ts: string;
  posted_revision: number;
  posted_event_id: number;
}

/**
 * Brings an incident's card and thread up to date with Postgres: posts the card once, edits it when the incident's
 * revision moved, and posts the thread events not yet posted, in order. Safe to re-run: progress is recorded after
 * each Slack call, and one incident is synced by one job at a time (advisory lock).
 */
export function syncIncidentSlackHandler(
  definition: JobDefinition<SyncIncidentSlackPayload>,
  deps: SyncDeps,
): JobHandler<SyncIncidentSlackPayload> {
  return {
    definition,
    concurrency: 8,
    async handle(data, job, token) {
      const client = await deps.db.connect();
      const lockKey = `ai-sre:slack-sync:${data.incidentId}`;
      try {
        await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [lockKey]);
        try {
          await syncIncident(client, data.incidentId, deps);
        } finally {
          await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lockKey]);
        }
      } catch (err) {
        await rethrowForRetry(err, job, token, deps);
      } finally {
        client.release();
      }
    },
  };
}

const QUALIFIED_INCIDENT_COLUMNS = INCIDENT_COLUMNS.split(', ')
  .map((c) => `i.${c}`)
  .join(', ');

async function syncIncident(tx: Tx, incidentId: number, deps: SyncDeps): Promise<void> {
  // One snapshot: the incident, its card, and its newest event (whatever happens after is left for the next job).
  const { rows } = await tx.query<IncidentRow & Partial<SlackMessageRow> & { newest: number | null }>(
    `SELECT ${QUALIFIED_INCIDENT_COLUMNS}, m.channel, m.ts, m.posted_revision, m.posted_event_id,
            (SELECT max(t.id) FROM timeline_events t WHERE t.incident_id = i.id) AS newest
       FROM incidents i LEFT JOIN slack_messages m ON m.incident_id = i.id
      WHERE i.id = $1`,
    [incidentId],
  );
  const row = rows[0];
  if (!row) throw new UnrecoverableError(`incident ${incidentId} does not exist`);
  const incident = incidentFromRow(row);
  const card = buildIncidentCard(cardViewOf(incident));
  if (!row.channel || !row.ts) {
    const channel = deps.router.channelFor(incident.service);
    const res = await deps.slack.chat.postMessage({
      channel,
      text: card.text,
      blocks: card.blocks,
      unfurl_links: false,
    });
    if (!res.ts) throw new Error('chat.postMessage answered without a ts');
    const posted = { channel: res.channel ?? channel, ts: res.ts };
    await tx.query(
      `INSERT INTO slack_messages (incident_id, channel, ts, posted_revision, posted_event_id) VALUES ($1, $2, $3, $4, $5)`,
      [incidentId, posted.channel, posted.ts, incident.revision, row.newest ?? 0],
    );
    deps.log.info({ incident: incidentId, channel: posted.channel, ts: posted.ts }, 'posted incident card');
    return;
  }
  const message = { channel: row.channel, ts: row.ts };
  let postedRevision = row.posted_revision ?? 0;
  let postedEventId = row.posted_event_id ?? 0;
  let unsaved = false;
  if (postedRevision < incident.revision) {
    await deps.slack.chat.update({ ...message, text: card.text, blocks: card.blocks });
    postedRevision = incident.revision;
    unsaved = true;
  }
  for (;;) {
    const events =
      row.newest !== null && row.newest > postedEventId
        ? await listTimeline(tx, incidentId, { afterId: postedEventId, notifyOnly: true, limit: DIGEST_SIZE })
        : [];
    if (events.length === 0) break;
    // The resolution goes on its own and is broadcast to the channel; everything else is one digest per run.
    const resolvedAt = events.findIndex((e) => e.type === 'incident.resolved');
    const chunk =
      resolvedAt === 0 ? events.slice(0, 1) : resolvedAt > 0 ? events.slice(0, resolvedAt) : events;
    const posts = chunk.map((event) =>
      buildTimelineMessage({
        type: event.type,
        actor: event.actor,
        at: event.at,
        text: describeEvent(event),
      }),
    );
    const digest = fitMessage({
      text: posts.map((p) => p.text).join('\n'),
      blocks: posts.flatMap((p) => p.blocks),
    });
    await deps.slack.chat.postMessage({
      channel: message.channel,
      thread_ts: message.ts,
      text: digest.text,
      blocks: digest.blocks,
      unfurl_links: false,
      reply_broadcast: resolvedAt === 0,
    });
    postedEventId = (chunk.at(-1) as { id: number }).id;
    await saveProgress(tx, incidentId, postedRevision, postedEventId);
    unsaved = false;
    if (chunk.length === events.length && events.length < DIGEST_SIZE) break;
  }
  if (unsaved) await saveProgress(tx, incidentId, postedRevision, postedEventId);
}

/** Records how far Slack has been brought, after each Slack call, so a retry never posts the same thing twice. */
async function saveProgress(tx: Tx, incidentId: number, revision: number, eventId: number): Promise<void> {
  await tx.query(
    `UPDATE slack_messages SET posted_revision = GREATEST(posted_revision, $2), posted_event_id = GREATEST(posted_event_id, $3),
            updated_at = now() WHERE incident_id = $1`,
    [incidentId, revision, eventId],
  );
}

interface SlackApiError {
  code?: string;
  retryAfter?: number;
  data?: { error?: string };
}

async function rethrowForRetry(
  err: unknown,
  job: Job,
  token: string | undefined,
  deps: SyncDeps,
): Promise<never> {
  const e = err as SlackApiError;
  const method = 'chat';
  if (e.code === 'slack_webapi_rate_limited_error') {
    const retryAfter = Math.max(1, e.retryAfter ?? 1);
    deps.metrics.slackApiErrors.inc({ method, error: 'ratelimited' });
    deps.log.warn({ job: job.id, retryAfter }, 'Slack rate limit; retrying after Retry-After');
    await job.moveToDelayed(Date.now() + retryAfter * 1000, token);
    throw new DelayedError();
  }
  if (e.code === 'slack_webapi_platform_error') {
    const error = e.data?.error ?? 'unknown';
    deps.metrics.slackApiErrors.inc({ method, error });
    if (PERMANENT_ERRORS.has(error)) throw new UnrecoverableError(`Slack refused: ${error}`);
  } else if (e.code?.startsWith('slack_webapi_')) {
    deps.metrics.slackApiErrors.inc({ method, error: e.code.replace('slack_webapi_', '') });
  }
  throw err;
}
