import { z } from 'zod';
import type { Logger } from '../../logger.js';
import { CpuBurner, MAX_BURN_CORES } from './cpu-burner.js';
import type { DeployReporter } from './deploy-reporter.js';
import { isEnospc } from './log-volume.js';
import type { Service, ServiceName } from './services.js';

export const PATTERN_IDS = [
  'pool-exhaustion',
  'bad-deploy',
  'disk-fill',
  'memory-leak',
  'downstream-outage',
  'cpu-saturation',
  'unknown-failure',
] as const;
export type PatternId = (typeof PATTERN_IDS)[number];

/** A failure the sandbox can reproduce, as the game day presents it. */
export interface Pattern {
  id: PatternId;
  service: ServiceName;
  description: string;
  /** what an alert (or a person looking at dashboards) would see */
  symptom: string;
  /** what an SRE would do about it */
  fixedBy: string;
}

export const PATTERNS: readonly Pattern[] = [
  {
    id: 'pool-exhaustion',
    service: 'payment-service',
    description:
      "Every connection of payment-service's Postgres pool is held idle in a transaction (BEGIN; SELECT 1; nothing).",
    symptom: 'hikaricp_connections_active = max, pending requests; payments answer 503 "pool exhausted"',
    fixedBy:
      "pg_terminate_backend on the 'idle in transaction' sessions of application_name payment-service (or raise the pool via POST /admin/db-pool)",
  },
  {
    id: 'bad-deploy',
    service: 'payment-service',
    description: 'payment-service v2.0.0 is deployed with a bug that fails 35% of payments.',
    symptom: 'http_requests_total 5xx share ~35% for version v2.0.0, starting at a deploy event',
    fixedBy: 'roll back to the previous version (POST /platform/rollback)',
  },
  {
    id: 'disk-fill',
    service: 'fraud-service',
    description:
      "fraud-service's log level goes to debug and a log flood fills its log volume (~2 MiB/s up to ~97%).",
    symptom:
      'node_filesystem_avail_bytes of /var/log/fraud-service near 0; once full, requests fail "no space left on device"',
    fixedBy:
      'log level back to info (POST /admin/log-level) and rotate + compress the logs (POST /admin/logs/rotate)',
  },
  {
    id: 'memory-leak',
    service: 'fraud-service',
    description:
      'fraud-service retains ~1 MiB more every 500 ms until its pods hit the 256 MiB limit and are OOMKilled.',
    symptom:
      'container_memory_working_set_bytes rising toward the limit; restarts with last_terminated_reason OOMKilled',
    fixedBy:
      'a rolling restart (POST /platform/restart) buys time; the leak itself needs a fix or a rollback',
  },
  {
    id: 'downstream-outage',
    service: 'fraud-service',
    description:
      'fraud-service answers 503 or hangs past the 1 s timeout; payment-service fails its payments with 502.',
    symptom:
      'http_client_requests_total from payment-service to fraud-service with code 503 or 0; fraud-service /health 503',
    fixedBy:
      "open payment-service's circuit breaker to fraud-service (POST /admin/circuit-breakers/fraud-service/open) and page fraud-service's owners",
  },
  {
    id: 'cpu-saturation',
    service: 'api-gateway',
    description: 'A real CPU burn of ~0.45 core in api-gateway against its 0.5-core limit per replica.',
    symptom:
      'rate(container_cpu_usage_seconds_total) ~90% of the CPU limit, throttling, rising checkout latency',
    fixedBy: 'scale out (POST /platform/scale): the load spreads over more pods',
  },
  {
    id: 'unknown-failure',
    service: 'api-gateway',
    description:
      "api-gateway's partner certificate has expired: every checkout fails, nothing else is wrong.",
    symptom: 'every /api/checkout answers 502 "x509: certificate has expired or is not yet valid"; no deploy',
    fixedBy: 'no runbook knows this one: a person renews the partner certificate',
  },
];

const Ratio = z.number({ error: 'expected a number between 0 and 1' }).min(0).max(1);
const MIB = 1024 * 1024;

/** Options each pattern accepts on inject (control server: the JSON body); every field is optional. */
export const PATTERN_OPTIONS = {
  'pool-exhaustion': z.strictObject({}),
  'bad-deploy': z.strictObject({
    version: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/, { error: 'expected a version like v2.0.0' })
      .optional(),
    errorRatio: Ratio.optional(),
  }),
  'disk-fill': z.strictObject({
    bytesPerSec: z
      .number()
      .int()
      .positive()
      .max(256 * MIB)
      .optional(),
    fillRatio: z.number().gt(0).max(1).optional(),
  }),
  'memory-leak': z.strictObject({
    bytesPerTick: z
      .number()
      .int()
      .positive()
      .max(64 * MIB)
      .optional(),
    intervalMs: z.number().int().min(20).max(60_000).optional(),
  }),
  'downstream-outage': z.strictObject({
    hangShare: Ratio.optional(),
    hangMs: z.number().int().min(1).max(60_000).optional(),
  }),
  'cpu-saturation': z.strictObject({ cores: z.number().min(0.01).max(MAX_BURN_CORES).optional() }),
  'unknown-failure': z.strictObject({}),
} satisfies Record<PatternId, z.ZodType>;

export type PatternOptions<P extends PatternId> = z.input<(typeof PATTERN_OPTIONS)[P]>;

/** Options that are not what a pattern accepts; the control server answers 400. */
export class ChaosOptionsError extends Error {
  constructor(
    message: string,
    readonly issues: { path: string; message: string }[],
  ) {
    super(message);
    this.name = 'ChaosOptionsError';
  }
}

export function isPatternId(id: string): id is PatternId {
  return (PATTERN_IDS as readonly string[]).includes(id);
}

/** one flood write; milliseconds */
const FLOOD_TICK_MS = 100;

/**
 * Debug lines as a chatty code path writes them: repetitive JSON with a few changing numbers, so they compress
 * about as well as real logs do. Returns at least `bytes` bytes.
 */
function floodLines(svc: Service, bytes: number, seq: { n: number }): string {
  const parts: string[] = [];
  let size = 0;
  const time = new Date().toISOString();
  const pod = svc.pods[0]?.name ?? svc.name;
  while (size < bytes) {
    seq.n += 1;
    const n = seq.n;
    const line = `{"time":"${time}","level":"debug","service":"${svc.name}","pod":"${pod}","msg":"cache lookup","logger":"fraud.features.FeatureStore","key":"cust:${(n * 7919) % 100_000}:velocity","hit":${n % 3 !== 0},"ttl_ms":${(n * 31) % 60_000},"shard":${n % 16},"attempt":1,"trace_id":"${((n * 2654435761) >>> 0).toString(16).padStart(8, '0')}"}\n`;
    parts.push(line);
    size += line.length;
  }
  return parts.join('');
}

/**
 * Injects and clears the chaos patterns. Each reproduces its failure for real (held database sessions, bytes on a
 * capped volume, retained Buffers, a CPU-burning thread); "active" is read from that real state, so a fix made
 * through the admin/platform endpoints shows here too.
 */
export class ChaosController {
  private floodTimer: NodeJS.Timeout | null = null;
  private leakTimer: NodeJS.Timeout | null = null;
  private holding: Promise<number> | null = null;
  private readonly floodSeq = { n: 0 };

  constructor(
    private readonly services: Record<ServiceName, Service>,
    private readonly reporter: DeployReporter,
    private readonly logger: Logger,
  ) {}

  private get payment(): Service {
    return this.services['payment-service'];
  }
  private get fraud(): Service {
    return this.services['fraud-service'];
  }
  private get gateway(): Service {
    return this.services['api-gateway'];
  }

  /** Whether the pattern's failure is present now (a fix made by the bot turns it off). */
  isActive(id: PatternId): boolean {
    switch (id) {
      case 'pool-exhaustion':
        return (this.payment.db?.stats().held ?? 0) > 0;
      case 'bad-deploy':
        return this.payment.faults.buggyVersions.has(this.payment.version);
      case 'disk-fill':
        return (this.fraud.faults.flood && this.fraud.logLevel === 'debug') || this.fraud.logs.isFull();
      case 'memory-leak':
        return this.leakTimer !== null;
      case 'downstream-outage':
        return this.fraud.faults.outage !== null;
      case 'cpu-saturation':
        return this.gateway.burnerCores() > 0;
      case 'unknown-failure':
        return this.gateway.faults.certificateExpired;
    }
  }

  list(): (Pattern & { active: boolean })[] {
    return PATTERNS.map((p) => ({ ...p, active: this.isActive(p.id) }));
  }

  /** Starts a pattern; injecting one that is already active changes nothing. Bad options throw ChaosOptionsError. */
  async inject<P extends PatternId>(
    id: P,
    options: PatternOptions<P> | Record<string, unknown> = {},
  ): Promise<void> {
    const parsed = PATTERN_OPTIONS[id].safeParse(options ?? {});
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => ({
        path: i.path.length > 0 ? i.path.join('.') : 'options',
        message: i.message,
      }));
      throw new ChaosOptionsError(issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues);
    }
    const opts = parsed.data as Record<string, unknown>;
    const tuning = this.fraud.tuning;
    this.logger.info({ pattern: id, options: opts }, 'sandbox: chaos injected');
    switch (id) {
      case 'pool-exhaustion': {
        const db = this.payment.db;
        if (!db || this.holding) return;
        this.holding = db.holdAll();
        try {
          await this.holding;
        } finally {
          this.holding = null;
        }
        return;
      }
      case 'bad-deploy': {
        if (this.isActive('bad-deploy')) return;
        const version = (opts.version as string | undefined) ?? 'v2.0.0';
        const previous = this.payment.version;
        this.payment.faults.buggyVersions.set(
          version,
          (opts.errorRatio as number | undefined) ?? tuning.badDeployErrorRatio,
        );
        this.payment.deploy(version);
        this.reporter.report({
          service: this.payment.name,
          version,
          previous_version: previous,
          status: 'succeeded',
          description: `deployed ${version} (new ledger mapper)`,
        });
        return;
      }
      case 'disk-fill': {
        this.fraud.logLevel = 'debug';
        this.fraud.faults.flood = true;
        this.startFlood(
          (opts.bytesPerSec as number | undefined) ?? tuning.floodBytesPerSec,
          (opts.fillRatio as number | undefined) ?? tuning.floodFillRatio,
        );
        return;
      }
      case 'memory-leak': {
        if (this.leakTimer) return;
        const bytes = (opts.bytesPerTick as number | undefined) ?? tuning.leakBytesPerTick;
        const svc = this.fraud;
        this.leakTimer = setInterval(
          () => {
            svc.leak(bytes);
            if (svc.memoryBytes() >= svc.tuning.memoryLimitBytes) svc.oomKill();
          },
          (opts.intervalMs as number | undefined) ?? tuning.leakIntervalMs,
        );
        this.leakTimer.unref();
        return;
      }
      case 'downstream-outage': {
        this.fraud.faults.outage = {
          hangShare: (opts.hangShare as number | undefined) ?? tuning.outageHangShare,
          hangMs: (opts.hangMs as number | undefined) ?? tuning.outageHangMs,
        };
        return;
      }
      case 'cpu-saturation': {
        if (this.gateway.burnerCores() > 0) return;
        this.gateway.attachBurner(new CpuBurner((opts.cores as number | undefined) ?? tuning.cpuBurnCores));
        return;
      }
      case 'unknown-failure':
        this.gateway.faults.certificateExpired = true;
        return;
    }
  }

  private startFlood(bytesPerSec: number, fillRatio: number): void {
    if (this.floodTimer) clearInterval(this.floodTimer);
    const svc = this.fraud;
    const perTick = Math.max(1, Math.round((bytesPerSec * FLOOD_TICK_MS) / 1000));
    this.floodTimer = setInterval(() => {
      // the flood is debug logging: a level of info or above silences it
      if (svc.logLevel !== 'debug' || !svc.faults.flood) return;
      const room = Math.floor(svc.logs.capBytes * fillRatio) - svc.logs.usedBytes();
      if (room <= 0) return;
      try {
        svc.logs.append(floodLines(svc, Math.min(perTick, room), this.floodSeq));
      } catch (err) {
        if (!isEnospc(err)) this.logger.warn({ err }, 'sandbox: log flood write failed');
      }
    }, FLOOD_TICK_MS);
    this.floodTimer.unref();
  }

  /** Undoes a pattern (or all of them) and waits until its effect is gone. */
  async clear(id: PatternId | 'all'): Promise<void> {
    if (id === 'all') {
      for (const p of PATTERN_IDS) await this.clear(p);
      return;
    }
    switch (id) {
      case 'pool-exhaustion': {
        await this.holding?.catch(() => 0);
        await this.payment.db?.releaseHeld();
        return;
      }
      case 'bad-deploy': {
        const svc = this.payment;
        if (svc.faults.buggyVersions.has(svc.version)) {
          const { from, to } = svc.rollback();
          this.reporter.report({
            service: svc.name,
            version: from,
            previous_version: to,
            status: 'rolled_back',
            description: `${from} rolled back to ${to}`,
          });
        }
        svc.faults.buggyVersions.clear();
        return;
      }
      case 'disk-fill': {
        const svc = this.fraud;
        const wasOn = svc.faults.flood || svc.logs.isFull();
        if (this.floodTimer) clearInterval(this.floodTimer);
        this.floodTimer = null;
        svc.faults.flood = false;
        if (wasOn) {
          svc.logLevel = 'info';
          await svc.logs.rotate();
        }
        return;
      }
      case 'memory-leak': {
        if (this.leakTimer) clearInterval(this.leakTimer);
        this.leakTimer = null;
        this.fraud.releaseLeak();
        return;
      }
      case 'downstream-outage':
        this.fraud.faults.outage = null;
        return;
      case 'cpu-saturation':
        await this.gateway.detachBurner()?.stop();
        return;
      case 'unknown-failure':
        this.gateway.faults.certificateExpired = false;
        return;
    }
  }

  /** Stops every timer and thread without undoing state (close() ends the pool and servers next). */
  async close(): Promise<void> {
    if (this.floodTimer) clearInterval(this.floodTimer);
    if (this.leakTimer) clearInterval(this.leakTimer);
    this.floodTimer = null;
    this.leakTimer = null;
    await this.holding?.catch(() => 0);
    await this.gateway.detachBurner()?.stop();
  }
}
