import type { Config } from './config.js';
import { type AppContext, createContext } from './context.js';
import { loadDetectionQueries, startPoller } from './detection/prometheus-poller.js';
import { escalationHandlers } from './escalation/jobs/escalation.jobs.js';
import type { Logger } from './logger.js';
import { type AnyJobHandler, startWorkers, type Workers } from './queue/queues.js';
import { createReconciler, RECONCILE_INTERVAL_MS } from './reconciler.js';
import { remediationHandlers } from './remediation/jobs/handlers.js';
import { decideHandler } from './runbooks/jobs/decide.job.js';
import { diagnoseHandler } from './runbooks/jobs/diagnose.job.js';
import { runDiagnosticHandler } from './runbooks/jobs/run-diagnostic.job.js';
import { type RunningServer, startServer } from './server.js';
import { syncIncidentSlackHandler } from './slack/jobs/sync-incident-slack.job.js';
import { ensureDatabase, runMigrations } from './store/migrate.js';

export type Role = 'web' | 'worker' | 'all';

export interface RunningApp {
  ctx: AppContext;
  server: RunningServer | null;
  workers: Workers | null;
  /** graceful: stop taking requests and jobs, finish or hand back the current jobs, close connections */
  stop(): Promise<void>;
}

/** Job handlers of this build; each job kind must have exactly one (startWorkers enforces it). */
export function jobHandlers(ctx: AppContext): AnyJobHandler[] {
  const handlers: AnyJobHandler[] = [
    diagnoseHandler(ctx.runbooks.jobDeps),
    runDiagnosticHandler(ctx.runbooks.jobDeps),
    decideHandler(ctx.runbooks.jobDeps),
    ...remediationHandlers(ctx.remediation.deps, ctx.remediation.service),
    ...escalationHandlers(ctx.escalations),
    ...ctx.learning.handlers(),
  ];
  if (ctx.slack) {
    handlers.push(
      syncIncidentSlackHandler(ctx.slack.syncJob, {
        db: ctx.jobsDb,
        slack: ctx.slack.client,
        router: ctx.slack.router,
        metrics: ctx.metrics,
        log: ctx.log,
        charts: ctx.slack.charts,
        reassignCandidates: (team) => ctx.escalations.reassignCandidates(team),
      }),
    );
  }
  return handlers;
}

/** Boots one process: database (created and migrated unless disabled), HTTP (web role), workers and sweeps (worker role). */
export async function startApp(config: Config, log: Logger, role: Role = 'all'): Promise<RunningApp> {
  if (config.MIGRATE_ON_START) {
    await ensureDatabase(config.DATABASE_URL, log);
    await runMigrations(config.DATABASE_URL, log);
  }
  const ctx = await createContext(config, log);
  if (!ctx.slack)
    log.warn('SLACK_BOT_TOKEN is not set: incidents are recorded but nothing is posted to Slack');
  let workers: Workers | null = null;
  let sweepTimer: NodeJS.Timeout | undefined;
  let stopWatchingRedis: (() => void) | undefined;
  let escalationTimer: NodeJS.Timeout | undefined;
  let stopPoller: (() => void) | undefined;
  if (role !== 'web') {
    workers = startWorkers(ctx.queueSettings, jobHandlers(ctx), log);
    // Postgres says what is pending; Redis may have lost it (a fresh start, or it came back empty after an outage)
    const reconciler = createReconciler(ctx);
    void reconciler.reconcile('startup');
    stopWatchingRedis = reconciler.watchRedis();
    if (config.DETECTION_QUERIES_FILE && config.PROMETHEUS_URL) {
      const prometheusUrl = config.PROMETHEUS_URL;
      const queries = await loadDetectionQueries(config.DETECTION_QUERIES_FILE);
      stopPoller = startPoller(
        {
          prometheusUrl,
          detection: ctx.detection,
          log,
          // ctx.detection turns persistent or agreeing anomalies into incidents; single points are only logged
          onAnomalies: (r) => log.info({ anomalies: r.anomalies.slice(0, 20) }, 'anomalous points'),
        },
        queries,
      );
      log.info(
        { queries: queries.queries.length, interval: queries.interval },
        'polling Prometheus for detection',
      );
    } else if (config.DETECTION_QUERIES_FILE) {
      log.warn('DETECTION_QUERIES_FILE is set but PROMETHEUS_URL is not: no polling');
    }
    // escalation timers are minutes, so their sweep runs far more often than the reconciler's other parts
    const sweepEscalations = () =>
      ctx.escalations
        .sweep(String(Math.floor(Date.now() / config.ESCALATION_SWEEP_MS)))
        .then((n) => n > 0 && log.debug({ jobs: n }, 'escalation sweep enqueued work'))
        .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'escalation sweep failed'));
    escalationTimer = setInterval(() => void sweepEscalations(), config.ESCALATION_SWEEP_MS);
    escalationTimer.unref();
    sweepTimer = setInterval(() => void reconciler.reconcile('periodic'), RECONCILE_INTERVAL_MS);
    sweepTimer.unref();
  }
  let server: RunningServer | null = null;
  try {
    server = role !== 'worker' ? await startServer(ctx) : null;
  } catch (error) {
    // a port in use: let go of what already runs, so the process can exit with the error instead of hanging
    clearInterval(sweepTimer);
    clearInterval(escalationTimer);
    stopWatchingRedis?.();
    stopPoller?.();
    await workers?.close().catch(() => {});
    await ctx.close().catch(() => {});
    throw error;
  }
  if (server)
    log.info(
      { port: server.port, role, slack: ctx.slack ? (config.SLACK_APP_TOKEN ? 'socket' : 'http') : 'off' },
      'ai-sre listening',
    );
  let stopping: Promise<void> | null = null;
  return {
    ctx,
    server,
    workers,
    stop() {
      stopping ??= (async () => {
        clearInterval(sweepTimer);
        clearInterval(escalationTimer);
        stopWatchingRedis?.();
        stopPoller?.();
        await server?.close();
        await workers?.close();
        await ctx.close();
      })();
      return stopping;
    },
  };
}
