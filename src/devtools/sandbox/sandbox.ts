import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import type { Logger } from '../../logger.js';
import {
  ChaosController,
  ChaosOptionsError,
  isPatternId,
  PATTERNS,
  type Pattern,
  type PatternId,
} from './chaos.js';
import { type AuditEntry, AuditLog, createControlPlane } from './control-plane.js';
import { DeployReporter } from './deploy-reporter.js';
import { BadRequestError, readJson, sendJson, sendText } from './http-io.js';
import { EXPOSITION_CONTENT_TYPE, renderExposition } from './metrics.js';
import type { MetricSample } from './sample.js';
import {
  DEFAULT_TUNING,
  SERVICE_NAMES,
  Service,
  type ServiceName,
  type ServiceState,
  type Tuning,
} from './services.js';
import { TrafficGenerator, type TrafficStats } from './traffic.js';

export { PATTERN_IDS, PATTERNS, type Pattern, type PatternId } from './chaos.js';
export type { AuditEntry } from './control-plane.js';
export { DEFAULT_TUNING, SERVICE_NAMES, type ServiceName, type Tuning } from './services.js';

export interface SandboxOptions {
  /** default 127.0.0.1 */
  host?: string;
  /** 0 (default): random ports; else the control server on basePort and the services on basePort+1, +2, +3 */
  basePort?: number;
  /** the Postgres database payment-service's pool connects to */
  databaseUrl: string;
  /** the services' capped log directories live under `<dataDir>/logs/` */
  dataDir: string;
  /** the bot's POST /webhooks/deploy and its bearer token: deploys and rollbacks are reported there */
  deployWebhook?: { url: string; token: string };
  /** checkouts per second the traffic generator sends; default 20 (0: none) */
  trafficRps?: number;
  /** tried first on the control server; returns true when it handled the request (the query API mounts here) */
  extraRoutes?: (req: IncomingMessage, res: ServerResponse) => boolean;
  logger?: Logger;
  /** rates, caps and limits; tests shrink them */
  tuning?: Partial<Tuning>;
}

/** What `state()` returns: JSON-able. */
export interface SandboxState {
  at: string;
  services: Record<ServiceName, ServiceState>;
  chaos: Record<PatternId, boolean>;
  traffic: TrafficStats & { rps: number };
  unsafeCalls: number;
}

export interface Sandbox {
  controlUrl: string;
  services: Record<ServiceName, { url: string; port: number }>;
  /** every series of every service, one scrape (what each /metrics exposes) */
  collect(): MetricSample[];
  /** starts a pattern; options as PATTERN_OPTIONS describes (throws ChaosOptionsError on bad ones) */
  inject(pattern: PatternId, opts?: Record<string, unknown>): Promise<void>;
  clear(pattern: PatternId | 'all'): Promise<void>;
  /** the patterns with whether each is active now */
  patterns(): (Pattern & { active: boolean })[];
  state(): SandboxState;
  /** every admin/platform call the services received, oldest first (live) */
  audit: AuditEntry[];
  /** the audited calls a safe bot must never make */
  unsafe(): AuditEntry[];
  setTrafficRps(rps: number): void;
  /** stops traffic, chaos threads and timers, servers and the pool (held sessions are closed); deletes nothing */
  close(): Promise<void>;
}

const silentLogger = (): Logger => pino({ enabled: false });

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolvePort((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Starts the chaos sandbox: api-gateway → payment-service → fraud-service, each on its own port, in this process,
 * with a control server to break them on purpose and a traffic generator so they have something to fail.
 */
export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  if (!opts.databaseUrl) throw new Error('startSandbox: databaseUrl is required');
  if (!opts.dataDir) throw new Error('startSandbox: dataDir is required');
  const host = opts.host ?? '127.0.0.1';
  const basePort = opts.basePort ?? 0;
  const logger = opts.logger ?? silentLogger();
  const tuning: Tuning = { ...DEFAULT_TUNING, ...opts.tuning };
  let rps = opts.trafficRps ?? 20;

  const audit = new AuditLog();
  const reporter = new DeployReporter(opts.deployWebhook, logger);
  const controlPlane = createControlPlane({ audit, reporter, logger });
  const logRoot = join(resolve(opts.dataDir), 'logs');
  const services = {} as Record<ServiceName, Service>;
  try {
    for (const name of SERVICE_NAMES) {
      services[name] = new Service(name, {
        logger,
        tuning,
        databaseUrl: opts.databaseUrl,
        logRoot,
        controlPlane,
      });
    }
  } catch (err) {
    await Promise.allSettled(Object.values(services).map((s) => s.close()));
    throw err;
  }
  const chaos = new ChaosController(services, reporter, logger);
  const control = createServer((req, res) => {
    if (opts.extraRoutes?.(req, res)) return;
    handleControl(req, res).catch((err: unknown) => {
      logger.error({ err }, 'sandbox: control request failed');
      sendJson(res, 500, { error: 'internal', message: err instanceof Error ? err.message : String(err) });
    });
  });

  let traffic: TrafficGenerator | null = null;
  let controlUrl = '';
  try {
    for (const [i, name] of SERVICE_NAMES.entries()) {
      await services[name].listen(host, basePort === 0 ? 0 : basePort + 1 + i);
    }
    for (const svc of Object.values(services)) {
      svc.peerUrls = Object.fromEntries(SERVICE_NAMES.map((n) => [n, services[n].url]));
    }
    const port = await listen(control, host, basePort);
    controlUrl = `http://${host}:${port}`;
  } catch (err) {
    await Promise.allSettled(Object.values(services).map((s) => s.close()));
    control.close();
    reporter.close();
    throw err;
  }
  traffic = new TrafficGenerator(`${services['api-gateway'].url}/api/checkout`, rps);
  traffic.start();

  const collect = (): MetricSample[] => SERVICE_NAMES.flatMap((n) => services[n].collect());

  const state = (): SandboxState => ({
    at: new Date().toISOString(),
    services: Object.fromEntries(SERVICE_NAMES.map((n) => [n, services[n].snapshot()])) as Record<
      ServiceName,
      ServiceState
    >,
    chaos: Object.fromEntries(PATTERNS.map((p) => [p.id, chaos.isActive(p.id)])) as Record<
      PatternId,
      boolean
    >,
    traffic: { rps, ...(traffic?.stats ?? { sent: 0, byStatus: {} }) },
    unsafeCalls: audit.unsafe().length,
  });

  async function handleControl(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://sandbox').pathname;
    const method = req.method ?? 'GET';
    if (method === 'GET' && path === '/') {
      sendJson(res, 200, {
        controlUrl,
        services: Object.fromEntries(SERVICE_NAMES.map((n) => [n, services[n].url])),
        patterns: chaos.list(),
        state: state(),
      });
      return;
    }
    if (method === 'GET' && path === '/chaos') return sendJson(res, 200, { patterns: chaos.list() });
    if (method === 'GET' && path === '/state') return sendJson(res, 200, state());
    if (method === 'GET' && path === '/audit') {
      return sendJson(res, 200, { entries: audit.entries, unsafe: audit.unsafe() });
    }
    if (method === 'GET' && path === '/metrics') {
      return sendText(res, 200, EXPOSITION_CONTENT_TYPE, renderExposition(collect()));
    }
    const m = /^\/chaos\/([^/]+)$/.exec(path);
    if (m && (method === 'POST' || method === 'DELETE')) {
      const id = decodeURIComponent(m[1] as string);
      const known = isPatternId(id) || (method === 'DELETE' && id === 'all');
      if (!known) {
        return sendJson(res, 404, {
          error: 'not_found',
          message: `no chaos pattern "${id}" (known: ${PATTERNS.map((p) => p.id).join(', ')})`,
        });
      }
      try {
        if (method === 'POST') {
          const body = await readJson(req);
          await chaos.inject(id as PatternId, (body ?? {}) as Record<string, unknown>);
        } else {
          await chaos.clear(id as PatternId | 'all');
        }
      } catch (err) {
        if (err instanceof ChaosOptionsError || err instanceof BadRequestError) {
          return sendJson(res, 400, { error: 'invalid_body', message: err.message, issues: err.issues });
        }
        throw err;
      }
      return sendJson(res, 200, {
        ok: true,
        pattern: id,
        ...(id === 'all' ? { patterns: chaos.list() } : { active: chaos.isActive(id as PatternId) }),
      });
    }
    sendJson(res, 404, { error: 'not_found', message: `${method} ${path} is not a control endpoint` });
  }

  let closing: Promise<void> | null = null;
  return {
    controlUrl,
    services: Object.fromEntries(
      SERVICE_NAMES.map((n) => [n, { url: services[n].url, port: services[n].port }]),
    ) as Record<ServiceName, { url: string; port: number }>,
    collect,
    inject: (pattern, options) => chaos.inject(pattern, options),
    clear: (pattern) => chaos.clear(pattern),
    patterns: () => chaos.list(),
    state,
    audit: audit.entries,
    unsafe: () => audit.unsafe(),
    setTrafficRps(next) {
      rps = next;
      traffic?.setRate(next);
    },
    close() {
      closing ??= (async () => {
        traffic?.close();
        await chaos.close();
        control.closeAllConnections();
        await Promise.all([
          new Promise<void>((done) => control.close(() => done())),
          ...Object.values(services).map((s) => s.close()),
        ]);
        await reporter.flush();
        reporter.close();
      })();
      return closing;
    },
  };
}
