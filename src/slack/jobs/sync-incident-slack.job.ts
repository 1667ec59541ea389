import type { WebClient } from '@slack/web-api';
import { DelayedError, type Job, UnrecoverableError } from 'bullmq';
import {
  INCIDENT_COLUMNS,
  type Incident,
  type IncidentRow,
  incidentFromRow,
  incidentRef,
} from '../../incidents/incident.js';
import { findSimilarIncidents } from '../../incidents/similar-incidents.js';
import { listTimeline, timelineLockKey } from '../../incidents/timeline.js';
import type { Logger } from '../../logger.js';
import type { Metrics } from '../../metrics.js';
import { feedbackOf } from '../../postmortem/feedback.js';
import type { JobDefinition, SyncIncidentSlackPayload } from '../../queue/jobs.js';
import type { JobHandler } from '../../queue/queues.js';
import { getExecution, listResults } from '../../runbooks/execution-repo.js';
import { getApproval } from '../../safety/approvals-repo.js';
import type { Db, Queryable, Tx } from '../../store/db.js';
import { buildApprovalPacket } from '../blocks/approval-packet.js';
import { buildDiagnosticsSummary } from '../blocks/diagnostics-summary.js';
import { buildActionFeedbackMessage } from '../blocks/feedback.js';
import { buildIncidentCard, buildTimelineMessage } from '../blocks/incident-card.js';
import { fitMessage, type SlackMessage } from '../blocks/limits.js';
import { buildSimilarMessage } from '../blocks/similar.js';
import { type ChartRenderer, inThreadRenderer } from '../charts/chart-renderer.js';
import { summaryViewOf } from '../diagnostics-view.js';
import { escalationMessage, type ReassignCandidates } from '../escalation-view.js';
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
  /** anomaly charts; default: drawn on this thread */
  charts?: ChartRenderer;
  /** who an escalation's page may be reassigned to (from oncall.yml); default nobody */
  reassignCandidates?: ReassignCandidates;
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
      const lockKey = syncLockKey(data.incidentId);
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

const syncLockKey = (incidentId: number) => `ai-sre:slack-sync:${incidentId}`;

/**
 * The fast path for a change people are waiting for (a decision): syncs the incident right here instead of queueing
 * behind every other incident's cards. Returns false without doing anything when a sync of this incident is already
 * running (it holds the lock) — the caller then queues one. Slack errors throw; the caller queues a retrying job.
 */
export async function syncIncidentNow(incidentId: number, deps: SyncDeps): Promise<boolean> {
  const client = await deps.db.connect();
  const lockKey = syncLockKey(incidentId);
  try {
    const { rows } = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
      [lockKey],
    );
    if (!rows[0]?.locked) return false;
    try {
      await syncIncident(client, incidentId, deps);
      return true;
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lockKey]);
    }
  } finally {
    client.release();
  }
}

const QUALIFIED_INCIDENT_COLUMNS = INCIDENT_COLUMNS.split(', ')
  .map((c) => `i.${c}`)
  .join(', ');

async function syncIncident(tx: Tx, incidentId: number, deps: SyncDeps): Promise<void> {
  // One snapshot: the incident, its card, and its newest event (whatever happens after is left for the next job).
  // It is read holding the timeline lock exclusively: notify events being written commit first, so none at or below
  // `newest` can still appear, and the thread never passes over one (timelineLockKey).
  const timelineLock = [timelineLockKey(incidentId)];
  await tx.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', timelineLock);
  const { rows } = await tx
    .query<
      IncidentRow & Partial<SlackMessageRow> & { newest: number | null; first_thread_event: number | null }
    >(
      `SELECT ${QUALIFIED_INCIDENT_COLUMNS}, m.channel, m.ts, m.posted_revision, m.posted_event_id,
            (SELECT max(t.id) FROM timeline_events t WHERE t.incident_id = i.id) AS newest,
            (SELECT min(t.id) FROM timeline_events t
              WHERE t.incident_id = i.id AND t.notify AND t.type IN ('runbook.started', 'runbook.none', 'decision.made'))
              AS first_thread_event
       FROM incidents i LEFT JOIN slack_messages m ON m.incident_id = i.id
      WHERE i.id = $1`,
      [incidentId],
    )
    .finally(() => tx.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', timelineLock));
  const row = rows[0];
  if (!row) throw new UnrecoverableError(`incident ${incidentId} does not exist`);
  const incident = incidentFromRow(row);
  const card = buildIncidentCard(cardViewOf(incident));
  let message: { channel: string; ts: string };
  let postedRevision: number;
  let postedEventId: number;
  if (!row.channel || !row.ts) {
    const channel = deps.router.channelFor(incident.service);
    const res = await deps.slack.chat.postMessage({
      channel,
      text: card.text,
      blocks: card.blocks,
      unfurl_links: false,
    });
    if (!res.ts) throw new Error('chat.postMessage answered without a ts');
    message = { channel: res.channel ?? channel, ts: res.ts };
    // The card shows the opening and the alerts so far; runbook runs and decisions still go in the thread.
    postedEventId = row.first_thread_event !== null ? row.first_thread_event - 1 : (row.newest ?? 0);
    postedRevision = incident.revision;
    await tx.query(
      `INSERT INTO slack_messages (incident_id, channel, ts, posted_revision, posted_event_id) VALUES ($1, $2, $3, $4, $5)`,
      [incidentId, message.channel, message.ts, postedRevision, postedEventId],
    );
    deps.log.info({ incident: incidentId, channel: message.channel, ts: message.ts }, 'posted incident card');
  } else {
    message = { channel: row.channel, ts: row.ts };
    postedRevision = row.posted_revision ?? 0;
    postedEventId = row.posted_event_id ?? 0;
  }
  let unsaved = false;
  if (postedRevision < incident.revision) {
    await deps.slack.chat.update({ ...message, text: card.text, blocks: card.blocks });
    postedRevision = incident.revision;
    unsaved = true;
  }
  for (;;) {
    const events =
      row.newest !== null && row.newest > postedEventId
        ? await listTimeline(tx, incidentId, {
            afterId: postedEventId,
            upToId: row.newest,
            notifyOnly: true,
            limit: DIGEST_SIZE,
          })
        : [];
    if (events.length === 0) break;
    // A runbook's start becomes its diagnostics message (edited in place as results arrive), in thread order.
    const first = events[0] as (typeof events)[number];
    if (first.type === 'runbook.started' && typeof first.data.executionId === 'number') {
      await postThreadRecord(tx, incidentId, message, 'execution', first.data.executionId, deps);
      postedEventId = first.id;
      await saveProgress(tx, incidentId, postedRevision, postedEventId);
      unsaved = false;
      continue;
    }
    // An approval request becomes its decision packet with the buttons (edited in place once decided).
    if (first.type === 'approval.requested' && typeof first.data.approvalId === 'number') {
      await postThreadRecord(tx, incidentId, message, 'approval', first.data.approvalId, deps);
      postedEventId = first.id;
      await saveProgress(tx, incidentId, postedRevision, postedEventId);
      unsaved = false;
      continue;
    }
    // An escalation becomes its context packet with Acknowledge/Resolve/Reassign (edited in place as it moves on).
    if (first.type === 'escalation.started' && typeof first.data.escalationId === 'number') {
      await postThreadRecord(tx, incidentId, message, 'escalation', first.data.escalationId, deps);
      postedEventId = first.id;
      await saveProgress(tx, incidentId, postedRevision, postedEventId);
      unsaved = false;
      continue;
    }
    // The resolution goes on its own and is broadcast to the channel; everything else is one digest per run.
    const resolvedAt = events.findIndex((e) => e.type === 'incident.resolved');
    const startedAt = events.findIndex((e) => e.type === 'runbook.started');
    const approvalAt = events.findIndex((e) => e.type === 'approval.requested');
    const escalationAt = events.findIndex((e) => e.type === 'escalation.started');
    const cut = [resolvedAt, startedAt, approvalAt, escalationAt]
      .filter((i) => i > 0)
      .sort((a, b) => a - b)[0];
    const chunk = resolvedAt === 0 ? events.slice(0, 1) : cut !== undefined ? events.slice(0, cut) : events;
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
  await postSeenBefore(tx, incident, message, deps);
  await postFeedbackPrompts(tx, incidentId, message, deps);
  await updateThreadRecords(tx, incidentId, deps);
  await postAnomalyCharts(tx, incidentId, message, deps);
}

/**
 * The thread messages that stand for a record and are edited in place as it moves on: a runbook run's diagnostics
 * summary, a guarded step's decision packet, an escalation's context packet. Each is keyed `<kind>:<id>` in
 * slack_thread_messages and edited when the record's revision passes the one posted.
 */
interface ThreadView {
  message: SlackMessage;
  revision: number;
}

const THREAD_RECORDS = {
  execution: {
    table: 'runbook_executions',
    async view(db: Queryable, id: number): Promise<ThreadView | null> {
      const execution = await getExecution(db, id);
      if (!execution) return null;
      const message = fitMessage(
        buildDiagnosticsSummary(summaryViewOf(execution, await listResults(db, id))),
      );
      return { message, revision: execution.revision };
    },
  },
  approval: {
    table: 'approval_requests',
    async view(db: Queryable, id: number): Promise<ThreadView | null> {
      const approval = await getApproval(db, id);
      return approval
        ? { message: fitMessage(buildApprovalPacket(approval)), revision: approval.revision }
        : null;
    },
  },
  feedback: {
    table: 'runbook_executions',
    async view(db: Queryable, id: number): Promise<ThreadView | null> {
      const judged = await feedbackOf(db, id);
      if (!judged || judged.steps.length === 0) return null;
      return {
        message: buildActionFeedbackMessage(incidentRef(judged.incidentId), judged.steps),
        revision: judged.revision,
      };
    },
  },
  escalation: {
    table: 'escalations',
    view: (db: Queryable, id: number, deps: SyncDeps): Promise<ThreadView | null> =>
      escalationMessage(db, id, deps.reassignCandidates ?? (() => [])),
  },
} as const;
type ThreadRecord = keyof typeof THREAD_RECORDS;

/** Posts the thread message of a record once (a retry finds it recorded). */
async function postThreadRecord(
  tx: Tx,
  incidentId: number,
  thread: { channel: string; ts: string },
  kind: ThreadRecord,
  id: number,
  deps: SyncDeps,
): Promise<void> {
  const key = `${kind}:${id}`;
  const existing = await tx.query('SELECT 1 FROM slack_thread_messages WHERE incident_id = $1 AND key = $2', [
    incidentId,
    key,
  ]);
  if ((existing.rowCount ?? 0) > 0) return;
  const view = await THREAD_RECORDS[kind].view(tx, id, deps);
  if (!view) return;
  const res = await deps.slack.chat.postMessage({
    channel: thread.channel,
    thread_ts: thread.ts,
    text: view.message.text,
    blocks: view.message.blocks,
    unfurl_links: false,
  });
  if (!res.ts) throw new Error('chat.postMessage answered without a ts');
  await tx.query(
    `INSERT INTO slack_thread_messages (incident_id, key, channel, ts, posted_revision) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (incident_id, key) DO NOTHING`,
    [incidentId, key, thread.channel, res.ts, view.revision],
  );
}

/** similar past incidents worth a look on a new incident; at most this many */
const SEEN_BEFORE_LIMIT = 3;

/**
 * "Seen before": the past incidents most like a new one, and how each ended, once in its thread while it is open.
 * Nothing is posted when none is similar.
 */
async function postSeenBefore(
  tx: Tx,
  incident: Incident,
  thread: { channel: string; ts: string },
  deps: SyncDeps,
): Promise<void> {
  if (incident.status === 'resolved') return;
  const key = `similar:${incident.id}`;
  const existing = await tx.query('SELECT 1 FROM slack_thread_messages WHERE incident_id = $1 AND key = $2', [
    incident.id,
    key,
  ]);
  if ((existing.rowCount ?? 0) > 0) return;
  // the sync's own connection: a second one from the jobs pool per sync would starve it under load
  const items = await findSimilarIncidents(tx, incident, { limit: SEEN_BEFORE_LIMIT });
  let ts = 'none';
  if (items.length > 0) {
    const similar = buildSimilarMessage(incidentRef(incident.id), items);
    const res = await deps.slack.chat.postMessage({
      channel: thread.channel,
      thread_ts: thread.ts,
      text: similar.text,
      blocks: similar.blocks,
      unfurl_links: false,
    });
    ts = res.ts ?? 'posted';
  }
  // recorded either way: the look happens once per incident
  await tx.query(
    `INSERT INTO slack_thread_messages (incident_id, key, channel, ts, posted_revision) VALUES ($1, $2, $3, $4, 0)
     ON CONFLICT (incident_id, key) DO NOTHING`,
    [incident.id, key, thread.channel, ts],
  );
}

/** "Was this the right call?" under each run whose plan has finished and acted (once per run). */
async function postFeedbackPrompts(
  tx: Tx,
  incidentId: number,
  thread: { channel: string; ts: string },
  deps: SyncDeps,
): Promise<void> {
  const { rows } = await tx.query<{ id: number }>(
    `SELECT e.id FROM runbook_executions e
      WHERE e.incident_id = $1 AND e.remediation_status IN ('verified', 'completed', 'escalated')
        AND EXISTS (SELECT 1 FROM remediation_steps s WHERE s.execution_id = e.id
                     AND s.status IN ('succeeded', 'failed', 'verifying', 'verified', 'verification_failed', 'unknown'))
        AND NOT EXISTS (SELECT 1 FROM slack_thread_messages m WHERE m.incident_id = e.incident_id AND m.key = 'feedback:' || e.id)
      ORDER BY e.id`,
    [incidentId],
  );
  for (const row of rows) await postThreadRecord(tx, incidentId, thread, 'feedback', row.id, deps);
}

/** Edits the incident's thread messages whose record moved on since they were posted. */
async function updateThreadRecords(tx: Tx, incidentId: number, deps: SyncDeps): Promise<void> {
  for (const kind of Object.keys(THREAD_RECORDS) as ThreadRecord[]) {
    // the table name comes from THREAD_RECORDS, never from input
    const { rows } = await tx.query<{ key: string; channel: string; ts: string; id: number }>(
      `SELECT s.key, s.channel, s.ts, r.id
         FROM slack_thread_messages s JOIN ${THREAD_RECORDS[kind].table} r ON s.key = $2 || r.id
        WHERE s.incident_id = $1 AND r.revision > s.posted_revision
        ORDER BY r.id`,
      [incidentId, `${kind}:`],
    );
    for (const row of rows) {
      const view = await THREAD_RECORDS[kind].view(tx, row.id, deps);
      if (!view) continue;
      await deps.slack.chat.update({
        channel: row.channel,
        ts: row.ts,
        text: view.message.text,
        blocks: view.message.blocks,
      });
      await tx.query(
        `UPDATE slack_thread_messages SET posted_revision = GREATEST(posted_revision, $3), updated_at = now()
          WHERE incident_id = $1 AND key = $2`,
        [incidentId, row.key, view.revision],
      );
    }
  }
}

/**
 * A chart of each anomalous series of the incident (value, expected band, where it started deviating), uploaded
 * once into the thread with the files API. The evidence comes from the anomaly alert's annotations.
 */
/** anomaly charts posted in one incident's thread at most */
export const MAX_CHARTS_PER_INCIDENT = 3;

async function postAnomalyCharts(
  tx: Tx,
  incidentId: number,
  thread: { channel: string; ts: string },
  deps: SyncDeps,
): Promise<void> {
  // the first series to deviate get a chart each, up to MAX_CHARTS_PER_INCIDENT: a storm of hundreds of anomalous
  // series is one incident whose card lists them, not a thread of hundreds of images
  const { rows } = await tx.query<{ fingerprint: string; name: string; annotations: Record<string, string> }>(
    `SELECT a.fingerprint, a.name, a.annotations FROM incident_alerts a
      WHERE a.incident_id = $1 AND a.source = 'anomaly' AND a.annotations ? 'recent_points'
        AND NOT EXISTS (SELECT 1 FROM slack_thread_messages m
                         WHERE m.incident_id = a.incident_id AND m.key = 'chart:' || a.fingerprint)
      ORDER BY a.id
      LIMIT GREATEST(0, $2 - (SELECT count(*) FROM slack_thread_messages m
                               WHERE m.incident_id = $1 AND m.key LIKE 'chart:%'))`,
    [incidentId, MAX_CHARTS_PER_INCIDENT],
  );
  for (const row of rows) {
    const chart = await (deps.charts ?? inThreadRenderer).render(row.name, row.annotations);
    if (!chart) continue;
    let fileId: string;
    try {
      const res = (await deps.slack.filesUploadV2({
        channel_id: thread.channel,
        thread_ts: thread.ts,
        file: chart.png,
        filename: `${row.fingerprint}.png`,
        title: chart.title,
        initial_comment: chart.comment,
      })) as { files?: { files?: { id?: string }[] }[] };
      fileId = res.files?.[0]?.files?.[0]?.id ?? 'uploaded';
    } catch (err) {
      // a workspace that did not grant files:write gets no charts, and the rest of the thread goes on
      const error = (err as SlackApiError).data?.error;
      if (!error || !PERMANENT_ERRORS.has(error)) throw err;
      deps.log.warn({ incident: incidentId, error }, 'Slack refused the anomaly chart; not retrying it');
      fileId = `refused:${error}`;
    }
    await tx.query(
      `INSERT INTO slack_thread_messages (incident_id, key, channel, ts, posted_revision) VALUES ($1, $2, $3, $4, 0)
       ON CONFLICT (incident_id, key) DO NOTHING`,
      [incidentId, `chart:${row.fingerprint}`, thread.channel, fileId],
    );
  }
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
