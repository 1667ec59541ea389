import { WebClient } from '@slack/web-api';
import { Redis } from 'ioredis';
import type { Config } from './config.js';
import { createIncidentService, type IncidentService } from './incidents/incident-service.js';
import type { Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { type JobDefinition, type SyncIncidentSlackPayload, syncIncidentSlackJob } from './queue/jobs.js';
import { createQueues, type QueueSettings, type Queues } from './queue/queues.js';
import { type ChannelRouter, createChannelRouter, loadRouting } from './slack/routing.js';
import { createDb, type Db } from './store/db.js';

/** Everything the process runs on, built once from the config; the one place that decides what is wired to what. */
export interface AppContext {
  config: Config;
  log: Logger;
  db: Db;
  /** a plain client for health checks (BullMQ keeps its own connections) */
  redis: Redis;
  queues: Queues;
  queueSettings: QueueSettings;
  metrics: Metrics;
  incidents: IncidentService;
  /** null when Slack is not configured: incidents still open and are stored, nothing is posted */
  slack: {
    client: WebClient;
    router: ChannelRouter;
    syncJob: JobDefinition<SyncIncidentSlackPayload>;
  } | null;
  close(): Promise<void>;
}

export async function createContext(config: Config, log: Logger): Promise<AppContext> {
  const db = createDb(config.DATABASE_URL, config.DATABASE_POOL_MAX);
  const redis = new Redis(config.REDIS_URL, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    lazyConnect: false,
  });
  redis.on('error', (err) => log.debug({ err: err.message }, 'redis connection error'));
  const queueSettings: QueueSettings = { redisUrl: config.REDIS_URL, prefix: config.QUEUE_PREFIX };
  const queues = createQueues(queueSettings);
  const metrics = createMetrics();

  let slack: AppContext['slack'] = null;
  if (config.SLACK_BOT_TOKEN) {
    const routing = await loadRouting(config.ROUTING_FILE);
    slack = {
      // Retries are BullMQ's (with back-off, honouring Retry-After), so the client fails fast and reports rate limits.
      client: new WebClient(config.SLACK_BOT_TOKEN, {
        slackApiUrl: config.SLACK_API_URL,
        retryConfig: { retries: 0 },
        rejectRateLimitedCalls: true,
        timeout: 15_000,
      }),
      router: createChannelRouter(routing),
      syncJob: syncIncidentSlackJob({
        attempts: config.SLACK_RETRY_ATTEMPTS,
        backoffMs: config.SLACK_RETRY_BASE_MS,
      }),
    };
  }
  const slackSync = slack;

  const incidents = createIncidentService({
    db,
    groupWindowSeconds: config.INCIDENT_GROUP_WINDOW_SECONDS,
    hooks: {
      async changed(changes) {
        if (!slackSync) return;
        // Postgres already holds the change; a Redis failure here delays the card, the sweep re-enqueues it.
        await Promise.all(
          changes.map((change) =>
            queues.enqueue(slackSync.syncJob, change).catch((err: unknown) => {
              log.warn(
                { err: (err as Error).message, incident: change.incidentId },
                'could not enqueue Slack sync; the sweep will',
              );
            }),
          ),
        );
      },
      opened(ids, source) {
        metrics.incidentsOpened.inc({ source }, ids.length);
      },
      resolved(ids) {
        metrics.incidentsResolved.inc(ids.length);
      },
    },
  });

  return {
    config,
    log,
    db,
    redis,
    queues,
    queueSettings,
    metrics,
    incidents,
    slack,
    async close() {
      await queues.close().catch(() => {});
      redis.disconnect();
      await db.end().catch(() => {});
    },
  };
}
