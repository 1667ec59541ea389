import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../logger.js';
import type { CpuBurner } from './cpu-burner.js';
import {
  BadRequestError,
  callJson,
  createPeerAgent,
  type PeerAnswer,
  readJson,
  sendJson,
  sendText,
} from './http-io.js';
import { isEnospc, LogVolume } from './log-volume.js';
import { CounterVec, EXPOSITION_CONTENT_TYPE, HistogramVec, renderExposition } from './metrics.js';
import { PaymentDb, PoolExhaustedError, type PoolStats } from './payment-db.js';
import type { MetricSample } from './sample.js';

export const SERVICE_NAMES = ['api-gateway', 'payment-service', 'fraud-service'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** the Kubernetes namespace the sandbox's pods pretend to live in */
export const NAMESPACE = 'sandbox';

export const LOG_LEVELS = ['debug', 'info', 'warn'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const LEVEL_RANK: Record<LogLevel | 'error', number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Rates, caps and limits of the simulation; tests shrink them so a failure shows within seconds. */
export interface Tuning {
  /** payment-service → fraud-service deadline; milliseconds; default 1000 */
  hopTimeoutMs: number;
  /** api-gateway → payment-service deadline, above hopTimeoutMs so a fraud timeout surfaces as payment's 502; ms; default 2000 */
  gatewayTimeoutMs: number;
  /** payment-service pool size; default 10 */
  poolMax: number;
  /** how long a payment waits for a free connection; milliseconds; default 300 */
  poolWaitMs: number;
  /** size of each service's log volume; bytes; default 64 MiB */
  diskCapBytes: number;
  /** disk-fill: log flood rate; bytes per second; default 2 MiB */
  floodBytesPerSec: number;
  /** disk-fill: the flood stops at this share of the volume; default 0.97 */
  floodFillRatio: number;
  /** container memory limit; bytes; default 256 MiB */
  memoryLimitBytes: number;
  /** working set of a healthy pod; bytes; default 72 MiB */
  memoryBaseBytes: number;
  /** memory-leak: bytes retained per tick; default 1 MiB */
  leakBytesPerTick: number;
  /** memory-leak: tick; milliseconds; default 500 */
  leakIntervalMs: number;
  /** CPU limit per pod; cores; default 0.5 */
  cpuLimitCores: number;
  /** cpu-saturation: CPU burnt across the service; cores; default 0.45 */
  cpuBurnCores: number;
  /** bad-deploy: share of requests the buggy version fails; default 0.35 */
  badDeployErrorRatio: number;
  /** downstream-outage: share of requests that hang instead of answering 503; default 0.5 */
  outageHangShare: number;
  /** downstream-outage: how long a hanging request is held before it is answered 504; ms; default 2500 */
  outageHangMs: number;
}

const MIB = 1024 * 1024;

export const DEFAULT_TUNING: Tuning = {
  hopTimeoutMs: 1_000,
  gatewayTimeoutMs: 2_000,
  poolMax: 10,
  poolWaitMs: 300,
  diskCapBytes: 64 * MIB,
  floodBytesPerSec: 2 * MIB,
  floodFillRatio: 0.97,
  memoryLimitBytes: 256 * MIB,
  memoryBaseBytes: 72 * MIB,
  leakBytesPerTick: MIB,
  leakIntervalMs: 500,
  cpuLimitCores: 0.5,
  cpuBurnCores: 0.45,
  badDeployErrorRatio: 0.35,
  outageHangShare: 0.5,
  outageHangMs: 2_500,
};

/** Who calls whom, versions at start, and replicas at start (api-gateway has one, so a CPU burn shows). */
const TOPOLOGY: Record<
  ServiceName,
  { peer: ServiceName | null; route: string; version: string; previousVersion: string; replicas: number }
> = {
  'api-gateway': {
    peer: 'payment-service',
    route: '/api/checkout',
    version: 'v3.2.0',
    previousVersion: 'v3.1.4',
    replicas: 1,
  },
  'payment-service': {
    peer: 'fraud-service',
    route: '/api/payments',
    version: 'v1.8.3',
    previousVersion: 'v1.8.2',
    replicas: 2,
  },
  'fraud-service': {
    peer: null,
    route: '/api/score',
    version: 'v1.4.1',
    previousVersion: 'v1.4.0',
    replicas: 2,
  },
};

/** CPU a pod uses when idle; cores */
const IDLE_CORES_PER_POD = 0.01;
/** CPU one API request costs; seconds */
const REQUEST_CPU_SECONDS = 0.0015;
/** CFS enforcement period; seconds */
const CFS_PERIOD_SECONDS = 0.1;
/** the error-ratio window behind /health; seconds */
const HEALTH_WINDOW_SECONDS = 10;
/** fewer requests than this in the window say nothing about health */
const HEALTH_MIN_REQUESTS = 5;
/** api-gateway's own CPU-bound work per request at no load; milliseconds (it queues as CPU use nears the limit) */
const GATEWAY_CPU_WORK_MS = 40;

/** An answer of an API route. `ownFault`: the service itself failed, not a peer it depends on. */
export interface ApiAnswer {
  status: number;
  body: unknown;
  ownFault: boolean;
}

/** One replica, as kube-state-metrics and cAdvisor see it. */
export interface Pod {
  name: string;
  /** container restarts inside this pod (OOM kills); a new pod starts at 0 */
  restarts: number;
  lastTerminatedReason: string | null;
  cpuSeconds: number;
  cfsPeriods: number;
  cfsThrottledPeriods: number;
}

/** What a service needs from the sandbox around it. */
export interface ServiceDeps {
  logger: Logger;
  tuning: Tuning;
  databaseUrl: string;
  /** `<dataDir>/logs`; each service's volume is a directory below it */
  logRoot: string;
  /** answers /admin/*, /platform/* and every DELETE (audit, validation, effects) */
  controlPlane(service: Service, req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
}

/** Fault switches the chaos patterns flip; the request paths read them. */
export interface Faults {
  /** versions with a bug, and the share of requests each fails */
  buggyVersions: Map<string, number>;
  /** fraud-service answers 503 or hangs */
  outage: { hangShare: number; hangMs: number } | null;
  /** api-gateway's partner certificate has expired */
  certificateExpired: boolean;
  /** disk-fill's flood is on (it writes only while the log level is debug) */
  flood: boolean;
}

/** Requests and own failures per second over the last HEALTH_WINDOW_SECONDS. */
class ErrorWindow {
  private readonly slots = Array.from({ length: HEALTH_WINDOW_SECONDS }, () => ({
    second: 0,
    total: 0,
    failed: 0,
  }));

  record(failed: boolean): void {
    const second = Math.floor(Date.now() / 1000);
    const slot = this.slots[second % HEALTH_WINDOW_SECONDS] as {
      second: number;
      total: number;
      failed: number;
    };
    if (slot.second !== second) Object.assign(slot, { second, total: 0, failed: 0 });
    slot.total += 1;
    if (failed) slot.failed += 1;
  }

  totals(): { total: number; failed: number } {
    const oldest = Math.floor(Date.now() / 1000) - HEALTH_WINDOW_SECONDS;
    let total = 0;
    let failed = 0;
    for (const s of this.slots) {
      if (s.second <= oldest) continue;
      total += s.total;
      failed += s.failed;
    }
    return { total, failed };
  }
}

/** Lowercase letters and digits, as Kubernetes uses in generated names. */
function suffix(length: number): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...randomBytes(length)].map((b) => alphabet[b % alphabet.length]).join('');
}

function stringField(body: unknown, key: string): string | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const v = (body as Record<string, unknown>)[key];
  return typeof v === 'string' ? v : undefined;
}

function numberField(body: unknown, key: string): number | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const v = (body as Record<string, unknown>)[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** A fraud score in [0, 1) that depends only on the customer and the amount. */
function scoreOf(customerId: string, amountCents: number): number {
  let h = 2166136261;
  for (const ch of `${customerId}:${Math.round(amountCents / 1000)}`)
    h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return ((h >>> 0) % 1000) / 1000;
}

/**
 * One simulated service: its own HTTP server, version and replicas, pods, log volume, metrics and the faults
 * the chaos patterns switch on. Everything it exposes is computed from real effects: real requests, real
 * connections, real bytes on disk, real retained memory, real CPU time.
 */
export class Service {
  readonly route: string;
  /** peers whose circuit breaker this service has (payment-service → fraud-service) */
  readonly breakerPeers: ServiceName[];
  version: string;
  previousVersion: string;
  replicas: number;
  pods: Pod[] = [];
  logLevel: LogLevel = 'info';
  readonly logs: LogVolume;
  readonly db: PaymentDb | null;
  readonly faults: Faults = {
    buggyVersions: new Map(),
    outage: null,
    certificateExpired: false,
    flood: false,
  };
  /** breaker open until; epoch milliseconds */
  readonly breakerOpenUntil = new Map<ServiceName, number>();
  /** base URLs of the other services, set once every server listens */
  peerUrls: Partial<Record<ServiceName, string>> = {};
  url = '';
  port = 0;

  private templateHash = suffix(10);
  private readonly server: Server;
  private readonly agent = createPeerAgent();
  private readonly window = new ErrorWindow();
  private readonly requests = new CounterVec('http_requests_total');
  private readonly duration = new HistogramVec('http_request_duration_seconds');
  private readonly clientRequests = new CounterVec('http_client_requests_total');
  private readonly clientDuration = new HistogramVec('http_client_request_duration_seconds');
  private readonly timers = new Set<NodeJS.Timeout>();
  /** memory the leak retains: real, filled Buffers, so the process' RSS grows with it */
  private leaked: Buffer[] = [];
  private leakedBytes = 0;
  private burner: CpuBurner | null = null;
  private burnAccounted = 0;
  private requestCpuPending = 0;
  private lastAccountedAt = performance.now();
  private logSeq = 0;

  constructor(
    readonly name: ServiceName,
    private readonly deps: ServiceDeps,
  ) {
    const topo = TOPOLOGY[name];
    this.route = topo.route;
    this.breakerPeers = name === 'payment-service' ? ['fraud-service'] : [];
    this.version = topo.version;
    this.previousVersion = topo.previousVersion;
    this.replicas = topo.replicas;
    this.pods = Array.from({ length: this.replicas }, () => this.newPod());
    this.logs = new LogVolume(join(deps.logRoot, name), `${name}.log`, deps.tuning.diskCapBytes);
    this.db =
      name === 'payment-service'
        ? new PaymentDb(deps.databaseUrl, deps.tuning.poolMax, deps.tuning.poolWaitMs, deps.logger)
        : null;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.deps.logger.error({ err, service: this.name }, 'sandbox: request handling failed');
        sendJson(res, 500, { error: 'internal', message: err instanceof Error ? err.message : String(err) });
      });
    });
    this.server.keepAliveTimeout = 5_000;
  }

  get tuning(): Tuning {
    return this.deps.tuning;
  }

  /** Listens on `port` (0: any free one). */
  async listen(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
    this.url = `http://${host}:${this.port}`;
  }

  private newPod(): Pod {
    return {
      name: `${this.name}-${this.templateHash}-${suffix(5)}`,
      restarts: 0,
      lastTerminatedReason: null,
      cpuSeconds: 0,
      cfsPeriods: 0,
      cfsThrottledPeriods: 0,
    };
  }

  // ---- requests ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://sandbox').pathname;
    const method = req.method ?? 'GET';
    if (method === 'DELETE' || path.startsWith('/admin/') || path.startsWith('/platform/')) {
      await this.deps.controlPlane(this, req, res, path);
      return;
    }
    if (path === '/health' && method === 'GET') {
      const health = this.health();
      sendJson(res, health.ok ? 200 : 503, {
        status: health.ok ? 'ok' : 'failing',
        service: this.name,
        version: this.version,
        ...(health.ok ? {} : { reasons: health.reasons }),
      });
      return;
    }
    if (path === '/metrics' && method === 'GET') {
      sendText(res, 200, EXPOSITION_CONTENT_TYPE, renderExposition(this.collect()));
      return;
    }
    if (path === this.route && (method === 'GET' || method === 'POST')) {
      await this.handleApi(req, res);
      return;
    }
    sendJson(res, 404, { error: 'not_found', message: `${method} ${path} is not a route of ${this.name}` });
  }

  private async handleApi(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const version = this.version;
    let answer: ApiAnswer;
    try {
      const body = await readJson(req);
      answer = await this.serve(body);
    } catch (err) {
      if (err instanceof BadRequestError) {
        answer = { status: 400, body: { error: 'invalid_body', message: err.message }, ownFault: false };
      } else if (isEnospc(err)) {
        answer = this.noSpaceAnswer();
      } else {
        this.deps.logger.error({ err, service: this.name }, 'sandbox: API route failed');
        answer = { status: 500, body: { error: 'internal', message: String(err) }, ownFault: true };
      }
    }
    const ms = performance.now() - started;
    try {
      this.log(answer.status >= 500 ? 'warn' : 'info', 'request completed', {
        route: this.route,
        code: answer.status,
        ms: Math.round(ms),
        version,
      });
    } catch (err) {
      if (!isEnospc(err)) throw err;
      answer = this.noSpaceAnswer();
    }
    this.requests.inc({ service: this.name, route: this.route, code: String(answer.status), version });
    this.duration.observe({ service: this.name }, (performance.now() - started) / 1000);
    this.window.record(answer.status >= 500 && answer.ownFault);
    this.requestCpuPending += REQUEST_CPU_SECONDS;
    sendJson(res, answer.status, answer.body);
  }

  private noSpaceAnswer(): ApiAnswer {
    return {
      status: 500,
      body: {
        error: 'internal',
        message: `ENOSPC: no space left on device, write (/var/log/${this.name}/${this.name}.log)`,
      },
      ownFault: true,
    };
  }

  private serve(body: unknown): Promise<ApiAnswer> {
    switch (this.name) {
      case 'api-gateway':
        return this.checkout(body);
      case 'payment-service':
        return this.pay(body);
      case 'fraud-service':
        return this.score(body);
    }
  }

  private async checkout(body: unknown): Promise<ApiAnswer> {
    const orderId = stringField(body, 'orderId') ?? `ord-${suffix(8)}`;
    this.log('debug', 'checkout received', { orderId });
    if (this.faults.certificateExpired) {
      const message = 'x509: certificate has expired or is not yet valid';
      this.log('error', 'tax partner handshake failed', {
        orderId,
        partner: 'tax-partner.example.net:443',
        error: message,
      });
      return { status: 502, body: { error: 'bad_gateway', message }, ownFault: true };
    }
    await this.sleep(this.gatewayCpuDelayMs());
    const paid = await this.callPeer('payment-service', '/api/payments', {
      orderId,
      customerId: stringField(body, 'customerId') ?? 'cus-anonymous',
      amountCents: numberField(body, 'amountCents') ?? 4_999,
      currency: stringField(body, 'currency') ?? 'EUR',
    });
    if (paid.status === 200)
      return { status: 200, body: { ok: true, orderId, payment: paid.body }, ownFault: false };
    return {
      status: 502,
      body: { error: 'bad_gateway', message: `payment-service: ${describeAnswer(paid)}` },
      ownFault: false,
    };
  }

  private async pay(body: unknown): Promise<ApiAnswer> {
    const customerId = stringField(body, 'customerId') ?? 'cus-anonymous';
    const amountCents = numberField(body, 'amountCents') ?? 4_999;
    const errorRatio = this.faults.buggyVersions.get(this.version);
    if (errorRatio !== undefined && Math.random() < errorRatio) {
      const message = "TypeError: Cannot read properties of undefined (reading 'currency')";
      this.log('error', 'payment failed', {
        error: message,
        at: 'PaymentMapper.toLedgerEntry (mapper.ts:88)',
      });
      return { status: 500, body: { error: 'internal', message }, ownFault: true };
    }
    let fraud: { score: number; decision: string; source: 'fraud-service' | 'local-rules' };
    if (this.breakerOpen('fraud-service')) {
      // degraded mode: local rules instead of the model
      fraud = {
        score: amountCents > 100_000 ? 0.9 : 0.1,
        decision: amountCents > 100_000 ? 'review' : 'approve',
        source: 'local-rules',
      };
    } else {
      const scored = await this.callPeer('fraud-service', '/api/score', { customerId, amountCents });
      if (scored.status !== 200) {
        return {
          status: 502,
          body: { error: 'bad_gateway', message: `fraud-service: ${describeAnswer(scored)}` },
          ownFault: false,
        };
      }
      fraud = {
        score: numberField(scored.body, 'score') ?? 0,
        decision: stringField(scored.body, 'decision') ?? 'approve',
        source: 'fraud-service',
      };
    }
    try {
      await this.db?.charge(amountCents);
    } catch (err) {
      const message = err instanceof PoolExhaustedError ? 'pool exhausted' : `database error: ${String(err)}`;
      this.log('error', 'payment failed', { error: err instanceof Error ? err.message : String(err) });
      return { status: 503, body: { error: 'unavailable', message }, ownFault: true };
    }
    return { status: 200, body: { ok: true, fraud }, ownFault: false };
  }

  private async score(body: unknown): Promise<ApiAnswer> {
    const outage = this.faults.outage;
    if (outage) {
      if (Math.random() < outage.hangShare) {
        await this.sleep(outage.hangMs);
        return {
          status: 504,
          body: { error: 'timeout', message: 'model backend did not answer' },
          ownFault: true,
        };
      }
      return {
        status: 503,
        body: { error: 'unavailable', message: 'model backend unavailable' },
        ownFault: true,
      };
    }
    const customerId = stringField(body, 'customerId') ?? 'cus-anonymous';
    const amountCents = numberField(body, 'amountCents') ?? 0;
    const score = scoreOf(customerId, amountCents);
    this.log('debug', 'features computed', {
      customerId,
      features: {
        amount_z: Number(((amountCents - 5_000) / 2_500).toFixed(3)),
        velocity_1h: Math.floor(score * 7),
        geo_risk: Number((score * 0.6).toFixed(3)),
        device_age_days: Math.floor((1 - score) * 400),
        card_bin_risk: Number((score * score).toFixed(3)),
      },
      model: 'gbm-v7',
    });
    await this.sleep(3 + Math.random() * 8);
    return { status: 200, body: { score, decision: score >= 0.85 ? 'review' : 'approve' }, ownFault: false };
  }

  /** Calls a peer under its deadline and counts the call as http_client_requests_total does. */
  private async callPeer(peer: ServiceName, path: string, body: unknown): Promise<PeerAnswer> {
    const base = this.peerUrls[peer];
    const timeoutMs = this.name === 'api-gateway' ? this.tuning.gatewayTimeoutMs : this.tuning.hopTimeoutMs;
    const started = performance.now();
    const answer: PeerAnswer = base
      ? await callJson(this.agent, `${base}${path}`, body, timeoutMs)
      : { status: 0, body: null, error: 'no address' };
    this.clientRequests.inc({ service: this.name, peer_service: peer, code: String(answer.status) });
    this.clientDuration.observe(
      { service: this.name, peer_service: peer },
      (performance.now() - started) / 1000,
    );
    return answer;
  }

  /** api-gateway's CPU-bound work, queueing as the busiest pod nears its CPU limit (u / (1 - u) growth). */
  private gatewayCpuDelayMs(): number {
    const u = Math.min(0.95, this.cpuRatioEstimate());
    return GATEWAY_CPU_WORK_MS * (1 + u / (1 - u)) * (0.75 + Math.random() * 0.5);
  }

  /** per-pod CPU use over the limit, from the current burn (not measured: this drives latency, not metrics) */
  cpuRatioEstimate(): number {
    const cores = (this.burner?.cores() ?? 0) / this.replicas + IDLE_CORES_PER_POD;
    return cores / this.tuning.cpuLimitCores;
  }

  /** A timer-backed pause that close() can cancel. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  /** Writes one JSON log line when `level` is at or above the service's level; throws ENOSPC on a full volume. */
  log(level: LogLevel | 'error', msg: string, fields: Record<string, unknown> = {}): void {
    if (LEVEL_RANK[level] < LEVEL_RANK[this.logLevel]) return;
    this.logSeq += 1;
    const pod = this.pods[this.logSeq % this.pods.length]?.name ?? this.name;
    const line = JSON.stringify({
      time: new Date().toISOString(),
      level,
      service: this.name,
      pod,
      msg,
      ...fields,
    });
    this.logs.append(`${line}\n`);
  }

  // ---- health ----

  /** Failing when most requests fail by the service's own fault (last ~10 s), or its log volume is full. */
  health(): { ok: boolean; reasons: string[] } {
    const reasons: string[] = [];
    if (this.faults.outage) reasons.push('model backend unavailable');
    if (this.logs.isFull()) reasons.push(`no space left on device: /var/log/${this.name}`);
    const { total, failed } = this.window.totals();
    if (total >= HEALTH_MIN_REQUESTS && failed / total > 0.5) {
      reasons.push(
        `failing ${Math.round((100 * failed) / total)}% of requests in the last ${HEALTH_WINDOW_SECONDS} s`,
      );
    }
    return { ok: reasons.length === 0, reasons };
  }

  // ---- platform ----

  breakerOpen(peer: ServiceName): boolean {
    return (this.breakerOpenUntil.get(peer) ?? 0) > Date.now();
  }

  /** A rollout: every pod replaced by a new one (new name, restart count 0), leaked memory gone. */
  private rollOut(): void {
    this.accountCpu();
    this.templateHash = suffix(10);
    this.pods = Array.from({ length: this.replicas }, () => this.newPod());
    this.releaseLeak();
    // a process that stops takes its database sessions with it
    this.db?.dropHeld();
  }

  /** `kubectl rollout restart`; the breaker state lives outside the pods and stays. */
  restart(): void {
    this.rollOut();
    this.log('info', 'rollout restart', { pods: this.pods.map((p) => p.name) });
  }

  /** Sets the replica count, adding or removing pods; the ones that stay keep their names. */
  scale(replicas: number): void {
    this.accountCpu();
    this.replicas = replicas;
    while (this.pods.length < replicas) this.pods.push(this.newPod());
    this.pods.length = replicas;
  }

  /** Rolls out `version`; the running one becomes the previous. */
  deploy(version: string): void {
    this.previousVersion = this.version;
    this.version = version;
    this.rollOut();
    this.log('info', 'deployed', { version, previousVersion: this.previousVersion });
  }

  /** Rolls back to the previous version (which becomes the new previous, as `kubectl rollout undo` does). */
  rollback(): { from: string; to: string } {
    const from = this.version;
    this.deploy(this.previousVersion);
    return { from, to: this.version };
  }

  // ---- memory ----

  /** Retains `bytes` more of real memory (filled, so the pages are committed). */
  leak(bytes: number): void {
    this.leaked.push(Buffer.alloc(bytes, 0x5a));
    this.leakedBytes += bytes;
  }

  releaseLeak(): void {
    this.leaked = [];
    this.leakedBytes = 0;
  }

  memoryBytes(): number {
    return this.tuning.memoryBaseBytes + this.leakedBytes;
  }

  /** The container hit its memory limit: it restarts inside its pod (same name, restart count +1). */
  oomKill(): void {
    this.accountCpu();
    for (const pod of this.pods) {
      pod.restarts += 1;
      pod.lastTerminatedReason = 'OOMKilled';
    }
    this.releaseLeak();
    this.deps.logger.info({ service: this.name }, 'sandbox: OOMKilled');
  }

  // ---- CPU ----

  attachBurner(burner: CpuBurner): void {
    this.accountCpu();
    this.burner = burner;
    this.burnAccounted = burner.busySeconds();
  }

  detachBurner(): CpuBurner | null {
    this.accountCpu();
    const burner = this.burner;
    this.burner = null;
    return burner;
  }

  burnerCores(): number {
    return this.burner?.cores() ?? 0;
  }

  /**
   * Adds the CPU used since the last call to each pod's counter: idle use, request work and the burner's real busy
   * time, divided among the replicas; a pod over 70% of its limit starts to be throttled in a share of its periods.
   */
  accountCpu(): void {
    const now = performance.now();
    const dt = (now - this.lastAccountedAt) / 1000;
    if (dt <= 0) return;
    this.lastAccountedAt = now;
    let burnt = 0;
    if (this.burner) {
      const busy = this.burner.busySeconds();
      burnt = busy - this.burnAccounted;
      this.burnAccounted = busy;
    }
    const total = IDLE_CORES_PER_POD * this.replicas * dt + this.requestCpuPending + burnt;
    this.requestCpuPending = 0;
    const perPod = total / this.replicas;
    const ratio = perPod / dt / this.tuning.cpuLimitCores;
    const throttledShare = ratio <= 0.7 ? 0 : Math.min(1, (ratio - 0.7) / 0.3);
    const periods = dt / CFS_PERIOD_SECONDS;
    for (const pod of this.pods) {
      pod.cpuSeconds += perPod;
      pod.cfsPeriods += periods;
      pod.cfsThrottledPeriods += periods * throttledShare;
    }
  }

  // ---- metrics and state ----

  /** Every series of this service, grouped by family in the order /metrics exposes them. */
  collect(): MetricSample[] {
    this.accountCpu();
    const svc = this.name;
    const out: MetricSample[] = [
      ...this.requests.samples(),
      ...this.duration.samples(),
      ...this.clientRequests.samples(),
      ...this.clientDuration.samples(),
    ];
    if (this.db) {
      const s = this.db.stats();
      out.push(
        { name: 'hikaricp_connections_active', labels: { service: svc }, value: s.active },
        { name: 'hikaricp_connections_idle', labels: { service: svc }, value: s.idle },
        { name: 'hikaricp_connections_max', labels: { service: svc }, value: s.max },
        { name: 'hikaricp_connections_pending', labels: { service: svc }, value: s.pending },
      );
    }
    const podLabels = (pod: Pod) => ({ namespace: NAMESPACE, pod: pod.name, container: svc });
    const perPod = (name: string, value: (pod: Pod) => number) =>
      this.pods.map((pod) => ({ name, labels: podLabels(pod), value: value(pod) }));
    out.push(...perPod('container_memory_working_set_bytes', () => this.memoryBytes()));
    out.push(
      ...this.pods.flatMap((pod) => [
        {
          name: 'kube_pod_container_resource_limits',
          labels: { ...podLabels(pod), resource: 'memory', unit: 'byte' },
          value: this.tuning.memoryLimitBytes,
        },
        {
          name: 'kube_pod_container_resource_limits',
          labels: { ...podLabels(pod), resource: 'cpu', unit: 'core' },
          value: this.tuning.cpuLimitCores,
        },
      ]),
    );
    out.push(...perPod('container_cpu_usage_seconds_total', (p) => p.cpuSeconds));
    out.push(...perPod('container_cpu_cfs_periods_total', (p) => Math.floor(p.cfsPeriods)));
    out.push(
      ...perPod('container_cpu_cfs_throttled_periods_total', (p) => Math.floor(p.cfsThrottledPeriods)),
    );
    out.push(...perPod('kube_pod_container_status_restarts_total', (p) => p.restarts));
    for (const pod of this.pods) {
      if (pod.lastTerminatedReason === null) continue;
      out.push({
        name: 'kube_pod_container_status_last_terminated_reason',
        labels: { ...podLabels(pod), reason: pod.lastTerminatedReason },
        value: 1,
      });
    }
    out.push({
      name: 'kube_deployment_spec_replicas',
      labels: { namespace: NAMESPACE, deployment: svc },
      value: this.replicas,
    });
    const fs = {
      instance: svc,
      mountpoint: `/var/log/${svc}`,
      fstype: 'ext4',
      device: `/dev/mapper/sandbox-${svc}`,
    };
    const used = this.logs.measure();
    out.push(
      { name: 'node_filesystem_avail_bytes', labels: fs, value: Math.max(0, this.logs.capBytes - used) },
      { name: 'node_filesystem_size_bytes', labels: fs, value: this.logs.capBytes },
      { name: 'sandbox_build_info', labels: { service: svc, version: this.version }, value: 1 },
    );
    for (const peer of this.breakerPeers) {
      out.push({
        name: 'circuit_breaker_open',
        labels: { service: svc, peer_service: peer },
        value: this.breakerOpen(peer) ? 1 : 0,
      });
    }
    for (const level of LOG_LEVELS) {
      out.push({
        name: 'sandbox_log_level',
        labels: { service: svc, level },
        value: level === this.logLevel ? 1 : 0,
      });
    }
    return out;
  }

  /** A JSON-able picture for the control server and tests. */
  snapshot(): ServiceState {
    const used = this.logs.usedBytes();
    const health = this.health();
    return {
      url: this.url,
      version: this.version,
      previousVersion: this.previousVersion,
      replicas: this.replicas,
      pods: this.pods.map((p) => ({
        name: p.name,
        restarts: p.restarts,
        lastTerminatedReason: p.lastTerminatedReason,
      })),
      health: health.ok ? 'ok' : 'failing',
      healthReasons: health.reasons,
      logLevel: this.logLevel,
      breakers: Object.fromEntries(
        this.breakerPeers.map((peer) => [
          peer,
          {
            open: this.breakerOpen(peer),
            until: this.breakerOpen(peer)
              ? new Date(this.breakerOpenUntil.get(peer) ?? 0).toISOString()
              : null,
          },
        ]),
      ),
      pool: this.db?.stats() ?? null,
      memory: {
        workingSetBytes: this.memoryBytes(),
        limitBytes: this.tuning.memoryLimitBytes,
        leakedBytes: this.leakedBytes,
      },
      cpu: { burnCores: this.burnerCores(), limitCoresPerPod: this.tuning.cpuLimitCores },
      disk: {
        usedBytes: used,
        sizeBytes: this.logs.capBytes,
        usedRatio: used / this.logs.capBytes,
        full: this.logs.isFull(),
      },
    };
  }

  /** Stops the server (open connections included), cancels pending pauses, closes the pool and the volume. */
  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.releaseLeak();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    this.agent.destroy();
    await Promise.all([closed, this.db?.close(), this.logs.close()]);
  }
}

/** What `Service.snapshot()` returns. */
export interface ServiceState {
  url: string;
  version: string;
  previousVersion: string;
  replicas: number;
  pods: { name: string; restarts: number; lastTerminatedReason: string | null }[];
  health: 'ok' | 'failing';
  healthReasons: string[];
  logLevel: LogLevel;
  breakers: Record<string, { open: boolean; until: string | null }>;
  pool: PoolStats | null;
  memory: { workingSetBytes: number; limitBytes: number; leakedBytes: number };
  cpu: { burnCores: number; limitCoresPerPod: number };
  disk: { usedBytes: number; sizeBytes: number; usedRatio: number; full: boolean };
}

function describeAnswer(answer: PeerAnswer): string {
  if (answer.status === 0) return answer.error ?? 'no answer';
  const message = stringField(answer.body, 'message');
  return `HTTP ${answer.status}${message ? ` ${message}` : ''}`;
}
