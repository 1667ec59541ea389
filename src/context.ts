import { WebClient } from '@slack/web-api';
import { Redis } from 'ioredis';
import type { Config } from './config.js';
import { reportAnomalies } from './detection/anomaly-incidents.js';
import { createDetectionService, type DetectionService } from './detection/detection-service.js';
import { closeDatabaseTargets } from './diagnostics/collectors/database-query.js';
import { COLLECTORS } from './diagnostics/registry.js';
import { loadTargets, type Targets } from './diagnostics/targets.js';
import { createEscalationService, type EscalationService } from './escalation/escalation-service.js';
import { loadOncall, type OncallConfig } from './escalation/oncall.schema.js';
import { createPagers } from './escalation/pagers/create-pagers.js';
import type { Pager } from './escalation/pagers/pager.js';
import { parsePagersConfig } from './escalation/pagers/pagers.schema.js';
import type { SlackDmClient } from './escalation/pagers/slack-dm.js';
import { createIncidentService, type IncidentService } from './incidents/incident-service.js';
import type { IncidentChange } from './incidents/record-alerts.js';
import type { Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createLearningService, type LearningService } from './postmortem/learning-service.js';
import { createSummariser } from './postmortem/llm-summariser.js';
import { type JobDefinition, type SyncIncidentSlackPayload, syncIncidentSlackJob } from './queue/jobs.js';
import { createQueues, type QueueSettings, type Queues } from './queue/queues.js';
import { createRemediationService, type RemediationService } from './remediation/approval-service.js';
import { type RemediationDeps, startRemediation } from './remediation/engine.js';
import { EXECUTORS } from './remediation/registry.js';
import type { RunbookJobDeps, ViewChange } from './runbooks/jobs/deps.js';
import { diagnoseJob } from './runbooks/jobs/diagnose.job.js';
import { formatProblem, loadRunbooks } from './runbooks/loader.js';
import { createCatalog, type RunbookCatalog } from './runbooks/matcher.js';
import { createRunbookService, type RunbookService } from './runbooks/runbook-service.js';
import { createLimiter } from './safety/limits.js';
import { loadPolicy, type SafetyPolicy } from './safety/policy.js';
import { type ChartRenderer, createChartRenderer } from './slack/charts/chart-renderer.js';
import { createEscalationNotifier } from './slack/escalation-notifier.js';
import { renderPageMessage } from './slack/escalation-view.js';
import { syncIncidentNow } from './slack/jobs/sync-incident-slack.job.js';
import { createLearningPublisher } from './slack/learning-publisher.js';
import { createNotifier } from './slack/notify.js';
import { type ChannelRouter, createChannelRouter, loadRouting } from './slack/routing.js';
import { createEnqueuedSyncWindows } from './slack/sync-windows.js';
import { createDb, type Db } from './store/db.js';

/** Everything the process runs on, built once from the config; the one place that decides what is wired to what. */
export interface AppContext {
  config: Config;
  log: Logger;
  db: Db;
  /** a separate small pool for jobs that hold a connection across slow calls (Slack), so they never starve intake */
  jobsDb: Db;
  /** a plain client for health checks (BullMQ keeps its own connections) */
  redis: Redis;
  queues: Queues;
  queueSettings: QueueSettings;
  metrics: Metrics;
  incidents: IncidentService;
  /** anomaly detectors fed by /ingest/metrics (state in Redis) */
  detection: DetectionService;
  runbooks: {
    catalog: RunbookCatalog;
    targets: Targets;
    jobDeps: RunbookJobDeps;
    service: RunbookService;
  };
  /** who owns what and who is on call (ONCALL_FILE); null when the file is missing */
  oncall: OncallConfig | null;
  /** paging the on-call person when an incident is handed to people, re-paging until someone acknowledges */
  escalations: EscalationService;
  /** postmortem drafts, feedback, SLIs, runbook suggestions, similar incidents */
  learning: LearningService;
  remediation: {
    policy: SafetyPolicy;
    deps: RemediationDeps;
    service: RemediationService;
  };
  /** null when Slack is not configured: incidents still open and are stored, nothing is posted */
  slack: {
    client: WebClient;
    router: ChannelRouter;
    syncJob: JobDefinition<SyncIncidentSlackPayload>;
    /** anomaly charts, drawn on a worker thread */
    charts: ChartRenderer;
  } | null;
  close(): Promise<void>;
}

export async function createContext(config: Config, log: Logger): Promise<AppContext> {
  const db = createDb(config.DATABASE_URL, config.DATABASE_POOL_MAX);
  const jobsDb = createDb(config.DATABASE_URL, config.JOBS_DATABASE_POOL_MAX);
  const redis = new Redis(config.REDIS_URL, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    lazyConnect: false,
  });
  redis.on('error', (err) => log.debug({ err: err.message }, 'redis connection error'));
  const queueSettings: QueueSettings = {
    redisUrl: config.REDIS_URL,
    prefix: config.QUEUE_PREFIX,
    lockMs: config.WORKER_LOCK_MS,
  };
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
      charts: createChartRenderer(log),
    };
  }
  const slackSync = slack;

  /**
   * A new incident's card is posted at once. Later changes are debounced per incident: every change inside one
   * window of SLACK_SYNC_DEBOUNCE_MS shares one delayed job (its id names the window), which runs when the window
   * closes and so sees all of them: one card edit and one thread digest instead of one per alert, which also keeps a
   * storm inside Slack's rate limits. Windows are offset per incident so they do not all close at once.
   */
  const scheduled = createEnqueuedSyncWindows(config.SLACK_SYNC_DEBOUNCE_MS);
  const scheduleSync = async (change: IncidentChange | ViewChange): Promise<void> => {
    if (!slackSync) return;
    const debounce = config.SLACK_SYNC_DEBOUNCE_MS;
    const now = Date.now();
    let data: SyncIncidentSlackPayload = { incidentId: change.incidentId, eventId: change.eventId };
    let delayMs = 0;
    const atOnce = 'opened' in change ? change.opened : change.urgent;
    // a decision (urgent) goes before new cards, which go before debounced edits: under a storm the answer people
    // wait for is not queued behind every other incident's card
    const priority = 'urgent' in change && change.urgent ? 1 : atOnce ? 2 : 5;
    if (!atOnce && debounce > 0) {
      const offset = (change.incidentId * 7919) % debounce;
      const window = Math.floor((now + offset) / debounce);
      delayMs = (window + 1) * debounce - offset - now;
      data = { ...data, window };
    }
    if ('urgent' in change && change.urgent) {
      try {
        const synced = await syncIncidentNow(change.incidentId, {
          db: jobsDb,
          slack: slackSync.client,
          router: slackSync.router,
          metrics,
          log,
          charts: slackSync.charts,
        });
        if (synced) return;
      } catch (err) {
        // the queued job below retries with back-off and honours Retry-After
        log.debug(
          { err: (err as Error).message, incident: change.incidentId },
          'direct Slack sync failed; queueing it',
        );
      }
    }
    const jobId = slackSync.syncJob.jobId(data);
    // This process already scheduled the job of this window: skip the Redis round trip.
    if (scheduled.has(jobId, now)) return;
    try {
      await queues.enqueue(slackSync.syncJob, data, { delayMs, priority });
      if (data.window !== undefined) scheduled.add(jobId, now + delayMs, now);
    } catch (err) {
      // Postgres already holds the change; a Redis failure delays the card, and the sweep re-enqueues it.
      log.warn(
        { err: (err as Error).message, incident: change.incidentId },
        'could not enqueue Slack sync; the sweep will',
      );
    }
  };

  /**
   * After a change that may have escalated or resolved an incident: the escalation flow starts or closes, and a
   * resolved incident gets its postmortem draft. Never throws (the sweeps catch up).
   */
  const afterChange = async (incidentId: number): Promise<void> => {
    try {
      await escalations.kick(incidentId);
    } catch (err) {
      log.warn(
        { err: (err as Error).message, incident: incidentId },
        'escalation check failed; the sweep will',
      );
    }
    try {
      await learning.afterChange(incidentId);
    } catch (err) {
      log.warn(
        { err: (err as Error).message, incident: incidentId },
        'postmortem check failed; the sweep will',
      );
    }
  };
  const viewChanged = async (change: ViewChange): Promise<void> => {
    await scheduleSync(change);
    if (change.urgent) await afterChange(change.incidentId);
  };

  const targets = await loadTargets(config.TARGETS_FILE);
  // an invalid safety policy stops the boot: running remediation under a policy nobody meant is worse than not running
  const policy = await loadPolicy(config.SAFETY_FILE);
  // an invalid on-call file stops the boot too: pages must never go to a schedule nobody meant
  const oncall = await loadOncall(config.ONCALL_FILE);
  const loaded = await loadRunbooks([config.RUNBOOKS_DIR], {
    collectors: COLLECTORS,
    targets,
    executors: EXECUTORS,
  });
  // A broken runbook must not take the bot down with it: the valid ones run, each problem is logged where it is.
  for (const problem of loaded.problems)
    log.error({ problem: formatProblem(problem) }, 'invalid runbook skipped');
  const catalog = createCatalog(loaded.runbooks);
  if (!catalog.defaultRunbook())
    log.warn('no default triage playbook (a runbook with `default: true`) is installed');
  log.info({ runbooks: loaded.runbooks.map((r) => r.runbook.id) }, 'runbooks loaded');
  const jobDeps: RunbookJobDeps = {
    db: jobsDb,
    catalog,
    targets,
    collectors: COLLECTORS,
    queues,
    prometheusUrl: config.PROMETHEUS_URL,
    lokiUrl: config.LOKI_URL,
    diagnosticsConcurrency: config.DIAGNOSTICS_CONCURRENCY,
    changed: viewChanged,
    observeDiagnostic: (type, status, seconds) =>
      metrics.diagnosticDuration.observe({ type, status }, seconds),
    observeDecision: (runbook, outcome) => metrics.runbookDecisions.inc({ runbook, outcome }),
    startRemediation: async (executionId) => {
      try {
        await startRemediation(remediationDeps, executionId);
      } catch (err) {
        log.warn(
          { err: (err as Error).message, execution: executionId },
          'could not enqueue remediation; the sweep will',
        );
      }
    },
    log,
  };
  const remediationDeps: RemediationDeps = {
    db: jobsDb,
    queues,
    policy,
    targets,
    executors: EXECUTORS,
    limiter: createLimiter(redis, config.QUEUE_PREFIX),
    checks: {
      db: jobsDb,
      targets,
      collectors: COLLECTORS,
      prometheusUrl: config.PROMETHEUS_URL,
      lokiUrl: config.LOKI_URL,
      log,
    },
    changed: viewChanged,
    notify: slack ? createNotifier({ client: slack.client, router: slack.router, db: jobsDb }) : undefined,
    log,
    actionTimeoutMs: config.ACTION_TIMEOUT_MS,
    observeStep: (action, outcome) => metrics.remediationSteps.inc({ action, outcome }),
  };
  /** Every new incident gets its diagnostics; Postgres holds the incident, so a failed enqueue is retried by the sweep. */
  const startDiagnosis = async (incidentId: number): Promise<void> => {
    // a deployment with no runbooks at all has chosen not to diagnose
    if (catalog.list().length === 0) return;
    try {
      await queues.enqueue(diagnoseJob, { incidentId });
    } catch (err) {
      log.warn(
        { err: (err as Error).message, incident: incidentId },
        'could not enqueue diagnosis; the sweep will',
      );
    }
  };

  /** when a split series was last logged (a warning a minute at most; the metric counts every one) */
  let splitWarnedAt = 0;
  const detectionCore = createDetectionService({
    redis,
    prefix: config.QUEUE_PREFIX,
    ttlSeconds: config.DETECTION_SERIES_TTL_SECONDS,
    threshold: config.DETECTION_THRESHOLD,
    flushIntervalMs: config.DETECTION_FLUSH_INTERVAL_MS,
    onFlushError: (err) =>
      log.warn({ err: err.message }, 'could not write detector states to Redis; retrying'),
    onSplitSeries: (series) => {
      metrics.detectionSplitSeries.inc(series.length);
      const now = Date.now();
      if (now - splitWarnedAt < 60_000) return;
      splitWarnedAt = now;
      log.warn(
        { series: series.slice(0, 5), count: series.length },
        'metric series are being sent to more than one process: each keeps its own model and they overwrite each other; send each series to one process (see README, anomaly detection)',
      );
    },
  });
  /** Samples feed the detectors; anomalies that persist (or agree) become alerts of source `anomaly`. */
  const detection: DetectionService = {
    async ingest(samples) {
      const result = await detectionCore.ingest(samples);
      if (result.signals.length > 0) {
        const { suppressed } = await reportAnomalies({ db, incidents }, result.signals);
        if (suppressed > 0) log.info({ suppressed }, 'anomalies of services in maintenance suppressed');
      }
      return result;
    },
    flush: () => detectionCore.flush(),
    close: () => detectionCore.close(),
  };

  const incidents = createIncidentService({
    db,
    groupWindowSeconds: config.INCIDENT_GROUP_WINDOW_SECONDS,
    concurrency: config.INTAKE_CONCURRENCY,
    batchMax: config.INTAKE_BATCH_MAX,
    hooks: {
      async changed(changes) {
        await Promise.all(
          changes.map(async (change) => {
            await scheduleSync(change);
            if (change.opened) await startDiagnosis(change.incidentId);
          }),
        );
      },
      opened(ids, source) {
        metrics.incidentsOpened.inc({ source }, ids.length);
      },
      resolved(ids) {
        metrics.incidentsResolved.inc(ids.length);
        // a page for an incident that resolved itself is resolved too (PagerDuty, the thread's packet); the draft follows
        for (const id of ids) void afterChange(id);
      },
    },
  });

  const pagers = buildPagers(config, slack?.client ?? null);
  log.info({ pagers: pagers.map((p) => p.name) }, 'pagers configured');
  const escalations: EscalationService = createEscalationService({
    db: jobsDb,
    queues,
    log,
    oncall,
    pagers,
    notifier: slack
      ? createEscalationNotifier({ client: slack.client, router: slack.router, db: jobsDb })
      : null,
    ...(slack
      ? {
          renderPage: (escalation, packet) =>
            renderPageMessage(escalation, packet, escalations.reassignCandidates),
        }
      : {}),
    changed: viewChanged,
    minuteMs: config.ESCALATION_MINUTE_MS,
  });
  const learning: LearningService = createLearningService({
    db: jobsDb,
    queues,
    log,
    summariser: config.LLM_BASE_URL
      ? createSummariser(
          {
            baseUrl: config.LLM_BASE_URL,
            model: config.LLM_MODEL,
            timeoutMs: config.LLM_TIMEOUT_MS,
            ...(config.LLM_API_KEY ? { apiKey: config.LLM_API_KEY } : {}),
          },
          { log },
        )
      : null,
    publisher: slack
      ? createLearningPublisher({ client: slack.client, router: slack.router, db: jobsDb, log })
      : null,
    suggestionsEveryDays: config.SUGGESTIONS_EVERY_DAYS,
    changed: (change) => scheduleSync(change),
  });

  return {
    config,
    log,
    db,
    jobsDb,
    redis,
    queues,
    queueSettings,
    metrics,
    incidents,
    detection,
    runbooks: {
      catalog,
      targets,
      jobDeps,
      service: createRunbookService({ db, catalog, incidents, queues }),
    },
    oncall,
    escalations,
    learning,
    remediation: {
      policy,
      deps: remediationDeps,
      service: createRemediationService(remediationDeps),
    },
    slack,
    async close() {
      await detection
        .close()
        .catch((err: unknown) =>
          log.warn({ err: (err as Error).message }, 'detector states not flushed at shutdown'),
        );
      await queues.close().catch(() => {});
      await slack?.charts.close().catch(() => {});
      redis.disconnect();
      await db.end().catch(() => {});
      await jobsDb.end().catch(() => {});
      await closeDatabaseTargets().catch(() => {});
    },
  };
}

/** The pagers' fallback chain from the environment (PAGERS, PAGERDUTY_*, PAGE_WEBHOOK_*); empty when none is set up. */
function buildPagers(config: Config, slack: WebClient | null): Pager[] {
  const retry = { maxAttempts: config.PAGER_MAX_ATTEMPTS, backoffBaseMs: config.PAGER_BACKOFF_BASE_MS };
  const pagerduty =
    config.PAGERDUTY_ROUTING_KEY || config.PAGERDUTY_ROUTING_KEYS
      ? {
          url: config.PAGERDUTY_EVENTS_URL,
          routingKeys: {
            ...(config.PAGERDUTY_ROUTING_KEYS ?? {}),
            ...(config.PAGERDUTY_ROUTING_KEY ? { default: config.PAGERDUTY_ROUTING_KEY } : {}),
          },
          ...(config.PUBLIC_URL ? { clientUrl: config.PUBLIC_URL } : {}),
          ...retry,
        }
      : undefined;
  const webhook =
    config.PAGE_WEBHOOK_URL && config.PAGE_WEBHOOK_SECRET
      ? { url: config.PAGE_WEBHOOK_URL, secret: config.PAGE_WEBHOOK_SECRET, ...retry }
      : undefined;
  const order = config.PAGERS ?? [
    ...(slack ? (['slack'] as const) : []),
    ...(pagerduty ? (['pagerduty'] as const) : []),
    ...(webhook ? (['webhook'] as const) : []),
  ];
  if (order.length === 0) return [];
  const parsed = parsePagersConfig(
    {
      order,
      ...(slack ? { slack: retry } : {}),
      ...(pagerduty ? { pagerduty } : {}),
      ...(webhook ? { webhook } : {}),
    },
    'environment (PAGERS, PAGERDUTY_*, PAGE_WEBHOOK_*)',
  );
  const dm: SlackDmClient | undefined = slack
    ? {
        async conversationsOpen(user) {
          const res = await slack.conversations.open({ users: user });
          const channel = res.channel?.id;
          if (!channel) throw new Error('conversations.open answered without a channel');
          return channel;
        },
        async postMessage(message) {
          const res = await slack.chat.postMessage({ ...message, unfurl_links: false });
          if (!res.ts) throw new Error('chat.postMessage answered without a ts');
          return { ts: res.ts };
        },
      }
    : undefined;
  return createPagers(parsed, dm ? { slack: dm } : {});
}
