import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildWebhookRoutes, HttpError, type HttpRoute, sendJson } from './alerts/webhook-routes.js';
import type { AppContext } from './context.js';
import { setMaintenance } from './detection/anomaly-incidents.js';
import { sliMetricLines } from './postmortem/slis.js';
import { createSlackApp, type SlackApp } from './slack/app.js';
import { isConnectionError } from './store/db.js';
import { recordDeployEvents } from './store/deploy-events-repo.js';

/** SLIs on /metrics are recomputed at most this often; milliseconds */
const SLI_CACHE_MS = 60_000;

/**
 * `/healthz` (process up), `/readyz` (200 ready; 200 `degraded` when only Redis is down, since alerts are still
 * accepted; 503 when Postgres is down), `/metrics` (Prometheus text format).
 */
function buildOpsRoutes(ctx: AppContext): HttpRoute[] {
  let sliCache: { at: number; text: string } | null = null;
  return [
    { method: 'GET', path: '/healthz', handler: (_req, res) => sendJson(res, 200, { status: 'ok' }) },
    {
      method: 'GET',
      path: '/readyz',
      handler(_req, res) {
        const check = async (fn: () => Promise<unknown>) => {
          try {
            await withTimeout(fn(), 2_000);
            return 'ok';
          } catch (err) {
            return `failing: ${(err as Error).message}`;
          }
        };
        Promise.all([check(() => ctx.db.query('SELECT 1')), check(() => ctx.redis.ping())])
          .then(([postgres, redis]) => {
            if (postgres !== 'ok') {
              // nothing can be accepted without the source of truth: senders get 503 and retry
              sendJson(res, 503, { status: 'not ready', postgres, redis });
            } else if (redis !== 'ok') {
              // alerts are still stored (2xx); the reconciler queues their work when Redis is back
              sendJson(res, 200, {
                status: 'degraded',
                postgres,
                redis,
                degraded:
                  'alerts are accepted and stored; diagnosis, remediation, Slack posts and pages wait for Redis',
              });
            } else {
              sendJson(res, 200, { status: 'ready', postgres, redis });
            }
          })
          .catch(() => sendJson(res, 500, { status: 'error' }));
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      handler(_req, res) {
        /** the SLIs of the last 7 and 30 days, computed at most once a minute (a few aggregate queries) */
        const sliText = async (): Promise<string> => {
          const now = Date.now();
          if (sliCache && now - sliCache.at < SLI_CACHE_MS) return sliCache.text;
          try {
            const reports = await withTimeout(
              Promise.all(
                [7, 30].map(async (days) => ({
                  window: `${days}d`,
                  report: await ctx.learning.stats({
                    from: new Date(now - days * 86_400_000),
                    to: new Date(now),
                  }),
                })),
              ),
              2_000,
            );
            sliCache = { at: now, text: sliMetricLines(reports) };
          } catch {
            // Postgres slow or down: the last figures (or none) rather than a failed scrape
          }
          return sliCache?.text ?? '';
        };
        const render = async () => {
          try {
            const depths = await withTimeout(ctx.queues.depths(), 1_000);
            for (const [queue, counts] of Object.entries(depths)) {
              for (const [state, n] of Object.entries(counts))
                ctx.metrics.queueDepth.set({ queue, state }, n);
            }
          } catch {
            // Redis down: the depths keep their last values; /readyz reports the outage.
          }
          return `${await ctx.metrics.registry.metrics()}${await sliText()}`;
        };
        render()
          .then((text) => {
            res.writeHead(200, { 'content-type': ctx.metrics.registry.contentType });
            res.end(text);
          })
          .catch(() => sendJson(res, 500, { error: 'metrics_failed' }));
      },
    },
  ];
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]);
}

export function buildRoutes(ctx: AppContext): HttpRoute[] {
  const webhooks = buildWebhookRoutes({
    webhookToken: ctx.config.WEBHOOK_TOKEN,
    maxBodyBytes: ctx.config.WEBHOOK_MAX_BYTES,
    log: ctx.log,
    accept: (delivery) => ctx.incidents.ingestAlerts(delivery),
    acceptDeploys: (delivery) => recordDeployEvents(ctx.db, delivery.payloadJson, delivery.events),
    acceptMetrics: (samples) => ctx.detection.ingest(samples),
    onAccepted: (source, n) => ctx.metrics.alertsReceived.inc({ source }, n),
    classifyError: (err) => {
      if (isConnectionError(err)) {
        return new HttpError(503, 'store_unavailable', 'the incident store is unavailable; retry later');
      }
      if (isRedisUnavailable(err)) {
        return new HttpError(
          503,
          'state_unavailable',
          'the detector state store (Redis) is unavailable; retry later',
        );
      }
      // Valid JSON that Postgres cannot store (a \u0000 in a string): the sender's problem, and retrying won't help.
      if ((err as { code?: string }).code === '22P05') {
        return new HttpError(
          400,
          'unstorable_payload',
          'body contains a \\u0000 character, which cannot be stored',
        );
      }
      return new HttpError(500, 'internal_error', 'internal error');
    },
  }).map((route) => instrument(ctx, route));
  return [...webhooks, ...buildOpsRoutes(ctx)];
}

/** ioredis without an offline queue fails fast with these when Redis is down. */
function isRedisUnavailable(err: unknown): boolean {
  const message = (err as Error | undefined)?.message ?? '';
  const code = (err as { code?: string } | undefined)?.code;
  return (
    /enableOfflineQueue|Connection is closed|Stream isn't writeable|max retries per request|ECONNREFUSED|ECONNRESET/i.test(
      message,
    ) || code === 'ECONNREFUSED'
  );
}

/** Counts every webhook answer by status and times accepted ones. */
function instrument(ctx: AppContext, route: HttpRoute): HttpRoute {
  const source = route.path.split('/').pop() ?? route.path;
  return {
    ...route,
    handler(req, res) {
      const started = process.hrtime.bigint();
      res.on('finish', () => {
        ctx.metrics.webhookRequests.inc({ source, status: String(res.statusCode) });
        if (res.statusCode < 300)
          ctx.metrics.webhookDuration.observe({ source }, Number(process.hrtime.bigint() - started) / 1e9);
      });
      route.handler(req, res);
    },
  };
}

/** A plain HTTP server over the same routes, for running without Slack or beside Socket Mode. */
function createPlainServer(routes: HttpRoute[]): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    const route = routes.find((r) => r.path === path && r.method === req.method);
    if (route) {
      route.handler(req, res);
      return;
    }
    const known = routes.some((r) => r.path === path);
    sendJson(res, known ? 405 : 404, {
      error: known ? 'method_not_allowed' : 'not_found',
      message: `${req.method} ${path}`,
    });
  });
}

export interface RunningServer {
  /** the bound port (useful with PORT=0) */
  port: number;
  slack: SlackApp | null;
  close(): Promise<void>;
}

/**
 * Serves HTTP: with Slack in HTTP mode, Bolt's receiver serves `/slack/events` and our routes as custom routes;
 * otherwise (no Slack, or Socket Mode) a plain server serves our routes.
 */
export async function startServer(ctx: AppContext): Promise<RunningServer> {
  const routes = buildRoutes(ctx);
  const { config } = ctx;
  let slack: SlackApp | null = null;
  let server: Server;
  if (config.SLACK_BOT_TOKEN && config.SLACK_SIGNING_SECRET) {
    slack = createSlackApp(
      {
        botToken: config.SLACK_BOT_TOKEN,
        signingSecret: config.SLACK_SIGNING_SECRET,
        appToken: config.SLACK_APP_TOKEN,
        apiUrl: config.SLACK_API_URL,
        log: ctx.log,
      },
      {
        incidents: ctx.incidents,
        runbooks: ctx.runbooks.service,
        remediation: ctx.remediation.service,
        oncall: ctx.oncall,
        escalations: ctx.escalations,
        feedback: ctx.learning,
        learning: ctx.learning,
        maintenance: (input) => setMaintenance(ctx.db, input),
        log: ctx.log,
      },
      routes.map((r) => ({ path: r.path, method: r.method, handler: r.handler })),
    );
  }
  if (slack?.httpReceiver) {
    server = (await slack.httpReceiver.start({ port: config.PORT, host: config.HOST })) as Server;
  } else {
    server = createPlainServer(routes);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.PORT, config.HOST, () => resolve());
    });
    if (slack?.socketReceiver) await slack.app.start();
  }
  server.keepAliveTimeout = 65_000;
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    slack,
    async close() {
      if (slack?.httpReceiver) await slack.httpReceiver.stop().catch(() => {});
      else {
        if (slack?.socketReceiver) await slack.app.stop().catch(() => {});
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      server.closeAllConnections?.();
    },
  };
}
