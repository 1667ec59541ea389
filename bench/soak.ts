/**
 * `npm run soak -- --minutes N` — holds a steady, realistic load on the bot for N minutes and reports whether memory
 * (per process) or the queues trend upwards after warm-up.
 *
 * The bot runs as two child processes, `--role web` and `--role worker`, on a private database and BullMQ prefix, with
 * Slack pointed at the local stand-in, a default-triage runbook whose health check hits a local server (503 for some
 * services, 200 for the others), and an on-call file whose short minutes make escalations re-page. The load is
 * Alertmanager groups firing, re-delivered and resolving in per-service episodes (so incidents open, get diagnosed,
 * escalate and close) plus `POST /ingest/metrics` batches. See bench/README.md.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { Agent, createServer as createHttpServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import pg from 'pg';
import { linearRegression, sampleCorrelation } from 'simple-statistics';
import { deleteKeys, dropDatabase } from '../src/devtools/demo/environment.js';
import { type SlackStub, startSlackStub } from '../src/devtools/slack-standin/stand-in.js';
import { createQueues, type Queues } from '../src/queue/queues.js';
import { findFreePort, followChildLog, seededRandom } from './lib/common.js';
import { describeGrowth, type MappingsSample, readMappings } from './lib/mappings.js';
import type { MemoryProbeAnswer } from './lib/memory-probe.js';
import { robustTrend } from './lib/trend.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** preloaded into each bot process: answers the soak's memory questions over IPC */
const MEMORY_PROBE = fileURLToPath(new URL('./lib/memory-probe.ts', import.meta.url));

/** memory slopes below this are "no growth trend" whatever their significance; MiB per hour */
const MEMORY_SLOPE_LIMIT_MIB_PER_HOUR = 5;
/** queue backlog slopes below this (one job a minute) are "no growth trend"; jobs per hour */
const QUEUE_SLOPE_LIMIT_JOBS_PER_HOUR = 60;
/**
 * a slope counts only when the Mann–Kendall statistic says the series rises: z ≥ this is about p < 0.025 one-sided.
 * Consecutive samples are correlated, which overstates z, so the rule leans towards reporting growth
 */
const MIN_Z = 2;
/**
 * default warm-up excluded from the trends: this share of the run, but at most WARMUP_MAX_MS (`--warmup-minutes`
 * overrides it); so the default 60-minute run judges its last 30 minutes, the target's window. Measured: V8 keeps
 * compiling code that runs once per incident or per anomaly for 30–40 minutes of this load (its code space, the `rwx`
 * mappings: the worker's 7.9 → 8.3 → 8.8 → 9.0 → 9.1 MiB at minutes 10–50 of one run, the web's 5.0 → 6.0 MiB over
 * minutes 7.5–30 of another), and that growth alone is ~2.7 MiB/h of a 30-minute window judged after 7.5 minutes;
 * the heap live after full GCs is flat from the start. See bench/README.md
 */
const WARMUP_SHARE = 0.5;
/** milliseconds */
const WARMUP_MAX_MS = 30 * 60_000;
/** the default run: the 30 minutes judged and the warm-up before them; minutes */
const DEFAULT_MINUTES = 60;

/** a service fires for this long (uniform within the range), then is quiet; seconds */
const EPISODE_SECONDS: readonly [number, number] = [30, 90];
/** seconds */
const QUIET_SECONDS: readonly [number, number] = [15, 45];
/** every third service's health check answers 503 (the runbook's "down" branch), the others 200 (nothing confirmed) */
const FAILING_SERVICE_EVERY = 3;
/**
 * every service's incidents run it: one http_check of {{service.health_url}}; 503 confirms "down" and escalates, 200
 * confirms nothing and escalates to the runbook's team
 */
const DEFAULT_TRIAGE_RUNBOOK = 'test/fixtures/runbooks-e2e/default-triage.yml';
/** one minute of an escalation policy, shortened so that open incidents re-page; milliseconds */
const ESCALATION_MINUTE_MS = 1_000;

const ALERT_RULES: readonly { name: string; severity: string; summary: string }[] = [
  { name: 'HighErrorRate', severity: 'critical', summary: '5xx ratio above 5% for 5 minutes' },
  { name: 'HighLatencyP99', severity: 'high', summary: 'p99 latency above 800 ms for 10 minutes' },
  {
    name: 'PodCrashLooping',
    severity: 'high',
    summary: 'container restarted more than 3 times in 15 minutes',
  },
];
const DOMAINS = (
  'payment cart catalog search pricing inventory shipping orders accounts auth profile notify email sms ' +
  'billing invoice ledger fraud risk reviews'
).split(' ');
const ROLES = ['api', 'worker', 'gateway', 'consumer'];
const NEVER = '0001-01-01T00:00:00Z';

// ---------------------------------------------------------------------------------------------------------------
// options

interface Options {
  /** how long the load is held; minutes */
  minutes: number;
  /** Alertmanager group deliveries per second */
  rate: number;
  services: number;
  /** metric series, one point each per second */
  series: number;
  /** alert requests in flight at most; a slot due while this many are out is skipped and counted */
  concurrency: number;
  /** between samples; seconds */
  sampleSeconds: number;
  /** after the load, wait up to this long for waiting and active jobs to drain; seconds */
  settle: number;
  seed: number;
  appEnv: Record<string, string>;
  /**
   * when set, both bot processes run with `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=<this>` and the soak takes a
   * heap snapshot of each at the end of the warm-up and at the end of the load (each snapshot pauses the process for
   * seconds and raises its RSS for good: a diagnosis run, not a verdict)
   */
  heapSnapshotDir: string | null;
  /**
   * when set, each sample appends both processes' private memory mapping by mapping (/proc/<pid>/smaps) to this file
   * as JSON lines, and the report says which mappings grew after warm-up: where native memory outside the JavaScript
   * heap goes (bench/lib/mappings.ts)
   */
  mappingsFile: string | null;
  /** warm-up excluded from the trends; null: the default (WARMUP_SHARE of the run, at most WARMUP_MAX_MS); minutes */
  warmupMinutes: number | null;
  verbose: boolean;
}

function readOptions(): Options {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      minutes: { type: 'string' },
      rate: { type: 'string' },
      services: { type: 'string' },
      series: { type: 'string' },
      concurrency: { type: 'string' },
      'sample-seconds': { type: 'string' },
      settle: { type: 'string' },
      seed: { type: 'string' },
      'app-env': { type: 'string', multiple: true, default: [] },
      'heap-snapshots': { type: 'string' },
      mappings: { type: 'string' },
      'warmup-minutes': { type: 'string' },
      verbose: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      `usage: npm run soak -- [--minutes 60] [--rate 20] [--services 40] [--series 200] [--concurrency 16]
       [--sample-seconds 10] [--settle 30] [--seed 1] [--app-env NAME=VALUE]... [--heap-snapshots DIR] [--mappings FILE]
       [--warmup-minutes N] [--verbose]
Postgres from SOAK_DATABASE_URL or DATABASE_URL (only the server is used: the soak makes its own ai_sre_soak_<hex>
database), Redis from REDIS_URL. The warm-up excluded from the trends is half the run, at most 30 minutes, unless
--warmup-minutes says. Exit code 1 when memory or the queue backlog trends upwards after warm-up, an answered alert is
missing from Postgres, or a bot process crashed.\n`,
    );
    process.exit(0);
  }
  const num = (name: string, flag: string | undefined, fallback: number, min: number, max: number) => {
    const raw = flag ?? String(fallback);
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new Error(`--${name}: expected a number from ${min} to ${max}, got "${raw}"`);
    }
    return n;
  };
  const minutes = num('minutes', values.minutes, DEFAULT_MINUTES, 0.25, 24 * 60);
  const warmupMinutes =
    values['warmup-minutes'] === undefined
      ? null
      : num('warmup-minutes', values['warmup-minutes'], 0, 0, minutes);
  if (warmupMinutes !== null && warmupMinutes >= minutes) {
    throw new Error(
      `--warmup-minutes: must be shorter than the run (--minutes ${minutes}), got ${warmupMinutes}`,
    );
  }
  return {
    minutes,
    rate: num('rate', values.rate, 20, 0.1, 5_000),
    services: Math.round(num('services', values.services, 40, 1, DOMAINS.length * ROLES.length)),
    series: Math.round(num('series', values.series, 200, 0, 100_000)),
    concurrency: Math.round(num('concurrency', values.concurrency, 16, 1, 1_024)),
    sampleSeconds: num('sample-seconds', values['sample-seconds'], 10, 1, 600),
    settle: num('settle', values.settle, 30, 0, 600),
    seed: Math.round(num('seed', values.seed, 1, 0, 2 ** 31)),
    appEnv: Object.fromEntries(
      values['app-env'].map((pair) => {
        const eq = pair.indexOf('=');
        if (eq < 1) throw new Error(`--app-env: expected NAME=VALUE, got "${pair}"`);
        return [pair.slice(0, eq), pair.slice(eq + 1)];
      }),
    ),
    heapSnapshotDir: values['heap-snapshots'] ?? null,
    mappingsFile: values.mappings ?? null,
    warmupMinutes,
    verbose: values.verbose,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// workload: services that fire in episodes, their Alertmanager groups, and metric series

function serviceName(i: number): string {
  const domain = DOMAINS[i % DOMAINS.length] as string;
  const role = ROLES[Math.floor(i / DOMAINS.length) % ROLES.length] as string;
  return `${domain}-${role}`;
}

interface SoakAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  generatorURL: string;
  /** 16 hex chars, stable per label set (as Alertmanager's own) */
  fingerprint: string;
  firing: boolean;
  /** RFC 3339; when the current firing began */
  startsAt: string;
}

interface SoakGroup {
  service: SoakService;
  /** `{"version":"4",…,"status":"` — everything before the group status */
  head: string;
  alerts: SoakAlert[];
  /** Alertmanager never sends one group twice at once */
  inFlight: boolean;
  /** a fire or resolve notification of this group waits to be sent */
  pending: boolean;
}

interface SoakService {
  name: string;
  groups: SoakGroup[];
  firing: boolean;
  /** performance.now() at which the current episode or quiet spell ends; milliseconds */
  changeAt: number;
}

type RequestKind = 'fire' | 'repeat' | 'resolve';

interface PlannedRequest {
  kind: RequestKind;
  group: SoakGroup;
  body: string;
  alerts: number;
}

function fingerprintOf(labels: Record<string, string>): string {
  const hash = createHash('sha256');
  for (const key of Object.keys(labels).sort()) hash.update(`${key}\0${labels[key]}\0`);
  return hash.digest('hex').slice(0, 16);
}

function buildServices(opts: Options, random: () => number): SoakService[] {
  const services: SoakService[] = [];
  for (let s = 0; s < opts.services; s++) {
    const name = serviceName(s);
    const namespace = `team-${DOMAINS[s % DOMAINS.length]}`;
    const service: SoakService = { name, groups: [], firing: false, changeAt: 0 };
    for (const rule of ALERT_RULES) {
      const groupLabels = { alertname: rule.name, service: name };
      const commonLabels = { ...groupLabels, severity: rule.severity, namespace, env: 'production' };
      const head = `{"version":"4","groupKey":${JSON.stringify(
        `{}/{env="production"}:{alertname="${rule.name}", service="${name}"}`,
      )},"truncatedAlerts":0,"receiver":"ai-sre","groupLabels":${JSON.stringify(groupLabels)},"commonLabels":${JSON.stringify(
        commonLabels,
      )},"commonAnnotations":{},"externalURL":"http://alertmanager.monitoring:9093","status":"`;
      const size = 1 + Math.floor(random() * 4);
      const alerts: SoakAlert[] = [];
      for (let i = 0; i < size; i++) {
        const labels = { ...commonLabels, instance: `${name}-${i}.${namespace}.svc:8080`, job: name };
        alerts.push({
          labels,
          annotations: {
            summary: `${name}: ${rule.summary}`,
            description: `${rule.name} on ${labels.instance}`,
          },
          generatorURL: `http://prometheus.monitoring:9090/graph?g0.expr=${encodeURIComponent(
            `${rule.name}{service="${name}"}`,
          )}`,
          fingerprint: fingerprintOf(labels),
          firing: false,
          startsAt: NEVER,
        });
      }
      service.groups.push({ service, head, alerts, inFlight: false, pending: false });
    }
    services.push(service);
  }
  return services;
}

function alertJson(alert: SoakAlert, status: 'firing' | 'resolved', endsAt: string): string {
  return JSON.stringify({
    status,
    labels: alert.labels,
    annotations: alert.annotations,
    startsAt: alert.startsAt,
    endsAt,
    generatorURL: alert.generatorURL,
    fingerprint: alert.fingerprint,
  });
}

/**
 * The alert side of the workload. Each service alternates between a firing episode (some of its groups fire and are
 * re-delivered, as Alertmanager's group_interval does) and a quiet spell (every group resolved, so its incident
 * resolves). `advance()` moves the clock; `next()` picks what the next request sends: a pending fire or resolve
 * notification first, otherwise a re-delivery of a firing group.
 */
function createAlertPlanner(services: SoakService[], random: () => number) {
  const between = ([lo, hi]: readonly [number, number]) => (lo + random() * (hi - lo)) * 1000;
  const pending: { kind: 'fire' | 'resolve'; group: SoakGroup }[] = [];
  const startEpisode = (service: SoakService, now: number, length: number) => {
    service.firing = true;
    service.changeAt = now + length;
    const count = 1 + Math.floor(random() * service.groups.length);
    for (const group of service.groups.slice(0, count)) {
      group.pending = true;
      pending.push({ kind: 'fire', group });
    }
  };
  const endEpisode = (service: SoakService, now: number, length: number) => {
    service.firing = false;
    service.changeAt = now + length;
    for (const group of service.groups) {
      if (!group.alerts.some((a) => a.firing) && !group.pending) continue;
      group.pending = true;
      pending.push({ kind: 'resolve', group });
    }
  };
  // start in the steady state: each service part-way through an episode or a quiet spell
  const now0 = performance.now();
  const meanEpisode = (EPISODE_SECONDS[0] + EPISODE_SECONDS[1]) / 2;
  const meanQuiet = (QUIET_SECONDS[0] + QUIET_SECONDS[1]) / 2;
  for (const service of services) {
    if (random() < meanEpisode / (meanEpisode + meanQuiet))
      startEpisode(service, now0, random() * between(EPISODE_SECONDS));
    else service.changeAt = now0 + random() * between(QUIET_SECONDS);
  }
  const body = (group: SoakGroup, resolved: string[]) => {
    const parts = group.alerts.filter((a) => a.firing).map((a) => alertJson(a, 'firing', NEVER));
    const status = parts.length > 0 ? 'firing' : 'resolved';
    parts.push(...resolved);
    return { body: `${group.head}${status}","alerts":[${parts.join(',')}]}`, alerts: parts.length };
  };
  const send = (kind: 'fire' | 'resolve', group: SoakGroup): PlannedRequest => {
    if (kind === 'fire') {
      const startsAt = new Date().toISOString();
      for (const alert of group.alerts) {
        if (alert.firing) continue;
        alert.firing = true;
        alert.startsAt = startsAt;
      }
      return { kind, group, ...body(group, []) };
    }
    const endsAt = new Date().toISOString();
    const resolved: string[] = [];
    for (const alert of group.alerts) {
      if (!alert.firing) continue;
      alert.firing = false;
      resolved.push(alertJson(alert, 'resolved', endsAt));
    }
    return { kind, group, ...body(group, resolved) };
  };
  const firingGroups = () =>
    services.flatMap((s) =>
      s.firing ? s.groups.filter((g) => !g.inFlight && !g.pending && g.alerts.some((a) => a.firing)) : [],
    );
  return {
    /** starts and ends episodes that are due */
    advance(now: number) {
      for (const service of services) {
        if (now < service.changeAt) continue;
        if (service.firing) endEpisode(service, now, between(QUIET_SECONDS));
        else startEpisode(service, now, between(EPISODE_SECONDS));
      }
    },
    next(): PlannedRequest | undefined {
      const take = (planned: PlannedRequest) => {
        planned.group.inFlight = true;
        return planned;
      };
      for (;;) {
        const index = pending.findIndex((p) => !p.group.inFlight);
        const transition = pending[index];
        if (!transition) break;
        pending.splice(index, 1);
        const { group } = transition;
        group.pending = pending.some((p) => p.group === group);
        // an episode that ended before its fire was sent: the resolve that follows has nothing to resolve
        if (transition.kind === 'resolve' && !group.alerts.some((a) => a.firing)) continue;
        return take(send(transition.kind, group));
      }
      const candidates = firingGroups();
      const group = candidates[Math.floor(random() * candidates.length)];
      return group ? take({ kind: 'repeat', group, ...body(group, []) }) : undefined;
    },
  };
}

/**
 * The anomalies the metric load brings: from `firstAfter` seconds into the load (past the detector's warm-up of 128
 * points, and inside the soak's warm-up for runs of 12 minutes or more) and then every `every` seconds, one series
 * (a different one each time) runs at `factor` times its level for `lasts` seconds. Each opens an anomaly incident
 * with its chart, so that path (the chart worker thread, started at the first chart) runs throughout the soak.
 */
const METRIC_ANOMALY = { firstAfter: 180, every: 300, lasts: 90, factor: 3 } as const;

/**
 * `series` metric series over the services, each with a stable level and ±2 % Gaussian noise, and now and then one
 * of them anomalous (METRIC_ANOMALY)
 */
function createMetricBatcher(services: SoakService[], series: number, random: () => number) {
  const gaussian = () => {
    // Box–Muller; 1 − random() keeps the logarithm finite
    const u = 1 - random();
    const v = random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const all = Array.from({ length: series }, (_, i) => {
    const service = services[i % services.length] as SoakService;
    return {
      labels: { service: service.name, instance: `i-${Math.floor(i / services.length)}` },
      level: 50 + ((i * 37) % 400),
    };
  });
  let startedAt: number | undefined;
  /** the series index anomalous now, or -1 */
  const anomalous = (now: number): number => {
    startedAt ??= now;
    const since = (now - startedAt) / 1000 - METRIC_ANOMALY.firstAfter;
    if (since < 0 || since % METRIC_ANOMALY.every >= METRIC_ANOMALY.lasts) return -1;
    return (Math.floor(since / METRIC_ANOMALY.every) * 7) % all.length;
  };
  return (): { body: string; samples: number } => {
    const timestamp = Date.now();
    const odd = anomalous(timestamp);
    const samples = all.map((s, i) => ({
      series: 'soak_requests_per_second',
      labels: s.labels,
      timestamp,
      value:
        Math.round(s.level * (i === odd ? METRIC_ANOMALY.factor : 1) * (1 + 0.02 * gaussian()) * 100) / 100,
    }));
    return { body: JSON.stringify(samples), samples: samples.length };
  };
}

// ---------------------------------------------------------------------------------------------------------------
// the bot's processes and the stand-ins around them

type BotRole = 'web' | 'worker';

interface BotProcess {
  role: BotRole;
  child: ChildProcess;
  /** set when the child exits; a non-null value before we asked it to stop means it crashed */
  exited: { code: number | null; signal: NodeJS.Signals | null } | null;
  stopping: boolean;
  /** pino lines of level warn and above, counted by `level msg` */
  logCounts: Map<string, number>;
  lastLines: string[];
  /** the first error lines, whole */
  errorLines: string[];
  /** answers of bench/lib/memory-probe.ts not yet taken */
  memoryWaiters: ((answer: MemoryProbeAnswer) => void)[];
  /** full collections the probe had reported at the previous answer */
  fullGcsSeen: number;
}

/** every bot process started, so an abrupt exit of the soak can still kill them */
const started: BotProcess[] = [];

function startBot(
  role: BotRole,
  env: Record<string, string>,
  opts: { verbose: boolean; heapSnapshotDir: string | null },
): BotProcess {
  const snapshots = opts.heapSnapshotDir
    ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${opts.heapSnapshotDir}`]
    : [];
  const child = spawn(
    process.execPath,
    [...snapshots, '--import', 'tsx', '--import', MEMORY_PROBE, 'src/cli.ts', 'start', '--role', role],
    {
      cwd: REPO_ROOT,
      // glibc's malloc arenas as deployed (see README, Operations): without the cap every thread's arena grows RSS
      env: { MALLOC_ARENA_MAX: '2', ...process.env, ...env },
      // the IPC channel carries bench/lib/memory-probe.ts's answers (process.memoryUsage(), heap after full GCs)
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // its own process group keeps Ctrl-C from reaching it: the soak stops it in order and cleans up
      detached: true,
    },
  );
  const bot: BotProcess = {
    role,
    child,
    exited: null,
    stopping: false,
    logCounts: new Map(),
    errorLines: [],
    lastLines: [],
    memoryWaiters: [],
    fullGcsSeen: 0,
  };
  started.push(bot);
  followChildLog(
    child,
    bot,
    opts.verbose ? (line) => process.stderr.write(`[${role}] ${line}\n`) : undefined,
  );
  child.on('message', (message: unknown) => {
    if ((message as { type?: unknown } | null)?.type === 'memory') {
      bot.memoryWaiters.shift()?.(message as MemoryProbeAnswer);
    }
  });
  child.on('exit', (code, signal) => {
    bot.exited = { code, signal };
  });
  return bot;
}

/**
 * SIGUSR2 to each bot (run with --heapsnapshot-signal), then waits until each has written its snapshot: a new
 * `*.<pid>.*.heapsnapshot` in `dir` whose size has stopped changing (the process is frozen while it writes).
 */
async function takeHeapSnapshots(dir: string, bots: BotProcess[], when: string): Promise<void> {
  const snapshotsOf = async (pid: number) =>
    (await readdir(dir)).filter((f) => f.endsWith('.heapsnapshot') && f.includes(`.${pid}.`)).sort();
  for (const bot of bots) {
    const pid = bot.child.pid;
    if (pid === undefined || bot.exited) continue;
    const before = new Set(await snapshotsOf(pid));
    const t0 = performance.now();
    bot.child.kill('SIGUSR2');
    let file: string | undefined;
    let size = -1;
    while (performance.now() - t0 < 180_000 && !bot.exited) {
      await pause(1_000);
      file ??= (await snapshotsOf(pid)).find((f) => !before.has(f));
      if (!file) continue;
      const now = (await stat(join(dir, file))).size;
      if (now === size && now > 0) break;
      size = now;
    }
    process.stderr.write(
      `soak: heap snapshot of the ${bot.role} process ${when}: ${file ? join(dir, file) : 'NOT WRITTEN'} ` +
        `(${fmt(size / 2 ** 20, 1)} MiB, ${fmt((performance.now() - t0) / 1000, 1)} s)\n`,
    );
  }
}

/** MiB */
interface ChildMemory {
  heapUsed: number;
  /** heap used after the latest full collection; NaN when none ran since the previous question (no new point) */
  heapLive: number;
  /** what V8 has reserved for the heap (used + free space it keeps) */
  heapTotal: number;
  external: number;
  /** what V8 reserved per heap space; MiB */
  spaces: Record<string, number>;
}

/**
 * The child's heap used, heap after its latest full collection, and external memory (V8's off-heap: Buffers,
 * ArrayBuffers); NaN when it does not answer within `timeoutMs` (a busy event loop) or is gone.
 */
function readChildMemory(bot: BotProcess, timeoutMs = 5_000): Promise<ChildMemory> {
  const none = {
    heapUsed: Number.NaN,
    heapLive: Number.NaN,
    heapTotal: Number.NaN,
    external: Number.NaN,
    spaces: {},
  };
  if (bot.exited || !bot.child.connected) return Promise.resolve(none);
  return new Promise((resolve) => {
    const waiter = (answer: MemoryProbeAnswer) => {
      clearTimeout(timer);
      const fresh = answer.fullGcs > bot.fullGcsSeen;
      bot.fullGcsSeen = Math.max(bot.fullGcsSeen, answer.fullGcs);
      resolve({
        heapUsed: answer.heapUsed / 2 ** 20,
        heapLive: fresh ? answer.heapAfterGc / 2 ** 20 : Number.NaN,
        heapTotal: answer.heapTotal / 2 ** 20,
        external: answer.external / 2 ** 20,
        spaces: Object.fromEntries(Object.entries(answer.spaces).map(([k, v]) => [k, v / 2 ** 20])),
      });
    };
    const timer = setTimeout(() => {
      const i = bot.memoryWaiters.indexOf(waiter);
      // a late answer then goes to the next waiter, which is no worse than a sample 5 s older
      if (i >= 0) bot.memoryWaiters.splice(i, 1);
      resolve(none);
    }, timeoutMs);
    bot.memoryWaiters.push(waiter);
    bot.child.send({ type: 'memory?' }, (err) => {
      if (err)
        waiter({
          type: 'memory',
          rss: 0,
          heapTotal: Number.NaN,
          heapUsed: Number.NaN,
          external: Number.NaN,
          arrayBuffers: 0,
          heapAfterGc: Number.NaN,
          fullGcs: 0,
          spaces: {},
        });
    });
  });
}

process.on('exit', () => {
  for (const bot of started) if (!bot.exited) bot.child.kill('SIGKILL');
});

async function stopBot(bot: BotProcess): Promise<void> {
  if (bot.exited) return;
  bot.stopping = true;
  const exited = once(bot.child, 'exit');
  bot.child.kill('SIGTERM');
  // the bot force-exits after 30 s of shutdown itself; this is the backstop
  const timer = setTimeout(() => bot.child.kill('SIGKILL'), 40_000);
  await exited;
  clearTimeout(timer);
}

/** resolves after `ms`, or at once when `signal` aborts */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, Math.max(0, ms));
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

interface HttpAnswer {
  /** 0 when no answer came */
  status: number;
  error?: string;
  body?: unknown;
  ms: number;
}

function httpCall(
  agent: Agent | undefined,
  port: number,
  method: 'GET' | 'POST',
  path: string,
  opts: { token?: string; body?: string; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(opts.body);
    }
    const req = request(
      { host: '127.0.0.1', port, method, path, agent, timeout: opts.timeoutMs ?? 30_000, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            // /metrics and error pages are not JSON; only the webhooks' 202 bodies are read
          }
          resolve({ status, body, ms: performance.now() - t0 });
        });
        res.on('error', (err) => resolve({ status: 0, error: err.message, ms: performance.now() - t0 }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ status: 0, error: err.code ?? err.message, ms: performance.now() - t0 }),
    );
    req.end(opts.body);
  });
}

async function waitForWeb(bot: BotProcess, port: number, timeoutMs: number, signal: AbortSignal) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (signal.aborted) throw new Error('interrupted');
    if (bot.exited) throw new Error(`the web process exited during start-up:\n${bot.lastLines.join('\n')}`);
    const answer = await httpCall(undefined, port, 'GET', '/readyz', { timeoutMs: 2_000 });
    if (answer.status === 200) return;
    await pause(200, signal);
  }
  throw new Error(
    `the web process did not answer /readyz with 200 within ${timeoutMs} ms:\n${bot.lastLines.join('\n')}`,
  );
}

/** The worker has no HTTP server: it is ready when its BullMQ workers are connected to Redis. */
async function waitForWorker(
  bot: BotProcess,
  settings: { redisUrl: string; prefix: string },
  timeoutMs: number,
  signal: AbortSignal,
) {
  const queue = new Queue('diagnostics', {
    prefix: settings.prefix,
    connection: { url: settings.redisUrl, maxRetriesPerRequest: 1 },
  });
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (signal.aborted) throw new Error('interrupted');
      if (bot.exited)
        throw new Error(`the worker process exited during start-up:\n${bot.lastLines.join('\n')}`);
      if ((await queue.getWorkersCount()) > 0) return;
      await pause(200, signal);
    }
    throw new Error(
      `the worker process had no BullMQ worker within ${timeoutMs} ms:\n${bot.lastLines.join('\n')}`,
    );
  } finally {
    await queue.close();
  }
}

/** `GET /<service>`: 503 for the failing services, 200 for the others (the runbook's http_check reads this) */
async function startHealthServer(failing: ReadonlySet<string>): Promise<{ server: Server; port: number }> {
  const server = createHttpServer((req, res) => {
    const service = (req.url ?? '/').slice(1);
    res.writeHead(failing.has(service) ? 503 : 200, { 'content-type': 'text/plain' }).end('health');
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/**
 * One team owns every service; its policy pages the primary, then the secondary, 5 "minutes" apart, twice over
 * (ESCALATION_MINUTE_MS makes a minute one second), so an incident that stays open re-pages every 5 s for 20 s.
 */
function oncallYaml(services: SoakService[]): string {
  return [
    'teams:',
    '  sre:',
    '    members:',
    '      - { id: alice, slack: U0SOAK001 }',
    '      - { id: bob, slack: U0SOAK002 }',
    '    rotations:',
    '      - { name: primary, type: daily, handoff: "00:00", timezone: UTC, start: 2026-01-01, members: [alice] }',
    '      - { name: secondary, type: daily, handoff: "00:00", timezone: UTC, start: 2026-01-01, members: [bob] }',
    '    policy: soak',
    'services:',
    ...services.map((s) => `  ${s.name}: sre`),
    'routing:',
    '  default: sre',
    'policies:',
    '  soak:',
    '    levels:',
    '      - targets: [{ oncall: sre, rotation: primary }]',
    '        delayMinutes: 5',
    '      - targets: [{ oncall: sre, rotation: secondary }]',
    '        delayMinutes: 5',
    '    repeat: 1',
    '',
  ].join('\n');
}

function targetsYaml(services: SoakService[], healthPort: number): string {
  return [
    'services:',
    ...services.flatMap((s) => [`  ${s.name}:`, `    health_url: http://127.0.0.1:${healthPort}/${s.name}`]),
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// load

interface LoadStats {
  alerts: {
    /** requests sent, by kind */
    kinds: Record<RequestKind, number>;
    requests: number;
    accepted: number;
    alertsSent: number;
    alertsAccepted: number;
    /** slots due while `concurrency` requests were out (the bot fell behind), not sent */
    skipped: number;
    /** slots due when no group fired and no notification waited (every service quiet or its groups in flight) */
    idle: number;
    ackedDeliveryIds: number[];
    failures: Map<string, number>;
  };
  metrics: {
    requests: number;
    accepted: number;
    samplesSent: number;
    samplesAccepted: number;
    anomalies: number;
    /** seconds whose batch was not sent because the previous one was still out */
    skipped: number;
    failures: Map<string, number>;
  };
}

function failureKey(answer: HttpAnswer): string {
  return answer.status ? `HTTP ${answer.status}` : `no answer (${answer.error ?? 'unknown'})`;
}

/** Sends alert groups at `rate` per second and a metric batch every second until `signal` aborts. */
function startLoad(
  opts: Options,
  port: number,
  token: string,
  planner: ReturnType<typeof createAlertPlanner>,
  nextBatch: ReturnType<typeof createMetricBatcher>,
  signal: AbortSignal,
): { stats: LoadStats; done: Promise<void> } {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency + 2 });
  const stats: LoadStats = {
    alerts: {
      kinds: { fire: 0, repeat: 0, resolve: 0 },
      requests: 0,
      accepted: 0,
      alertsSent: 0,
      alertsAccepted: 0,
      skipped: 0,
      idle: 0,
      ackedDeliveryIds: [],
      failures: new Map(),
    },
    metrics: {
      requests: 0,
      accepted: 0,
      samplesSent: 0,
      samplesAccepted: 0,
      anomalies: 0,
      skipped: 0,
      failures: new Map(),
    },
  };
  const inFlight = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  let alertsOut = 0;
  const sendAlert = async (planned: PlannedRequest) => {
    const a = stats.alerts;
    a.requests += 1;
    a.kinds[planned.kind] += 1;
    a.alertsSent += planned.alerts;
    alertsOut += 1;
    const answer = await httpCall(agent, port, 'POST', '/webhooks/alertmanager', {
      token,
      body: planned.body,
    });
    alertsOut -= 1;
    planned.group.inFlight = false;
    const body = answer.body as { delivery?: number; alerts?: number } | undefined;
    if (answer.status === 202 && typeof body?.delivery === 'number') {
      a.accepted += 1;
      a.alertsAccepted += body.alerts ?? 0;
      a.ackedDeliveryIds.push(body.delivery);
    } else {
      const key = failureKey(answer);
      a.failures.set(key, (a.failures.get(key) ?? 0) + 1);
    }
  };
  let batchOut = false;
  const sendBatch = async () => {
    const m = stats.metrics;
    const { body, samples } = nextBatch();
    m.requests += 1;
    m.samplesSent += samples;
    batchOut = true;
    const answer = await httpCall(agent, port, 'POST', '/ingest/metrics', { token, body });
    batchOut = false;
    const parsed = answer.body as { accepted?: number; anomalies?: unknown[] } | undefined;
    if (answer.status === 202) {
      m.accepted += 1;
      m.samplesAccepted += parsed?.accepted ?? 0;
      m.anomalies += parsed?.anomalies?.length ?? 0;
    } else {
      const key = failureKey(answer);
      m.failures.set(key, (m.failures.get(key) ?? 0) + 1);
    }
  };

  const done = (async () => {
    const start = performance.now();
    let slots = 0;
    let batches = 0;
    /** between scheduling rounds; milliseconds */
    const tickMs = 50;
    while (!signal.aborted) {
      const now = performance.now();
      planner.advance(now);
      const dueSlots = Math.floor(((now - start) / 1000) * opts.rate);
      for (; slots < dueSlots; slots++) {
        if (alertsOut >= opts.concurrency) {
          stats.alerts.skipped += 1;
          continue;
        }
        const planned = planner.next();
        if (planned) track(sendAlert(planned));
        else stats.alerts.idle += 1;
      }
      const dueBatches = opts.series > 0 ? Math.floor((now - start) / 1000) + 1 : 0;
      for (; batches < dueBatches; batches++) {
        if (batchOut) stats.metrics.skipped += 1;
        else track(sendBatch());
      }
      await pause(tickMs, signal);
    }
    await Promise.all(inFlight);
    agent.destroy();
  })();
  return { stats, done };
}

// ---------------------------------------------------------------------------------------------------------------
// sampling

/** clock ticks per second of /proc/<pid>/stat; 100 on every Linux this runs on */
const CLK_TCK = 100;

/**
 * Resident memory from /proc/<pid>/status; MiB; NaN when the process is gone. `rss` (VmRSS) is `anon` (RssAnon: the
 * process's private memory — JavaScript heap, malloc, buffers: what a leak grows) plus `file` (RssFile: pages of the
 * node binary and libraries read in as code paths first run — ICU's time-zone data, say — bounded by the files' size,
 * shared and reclaimable) plus shared memory.
 */
function readRssMiB(pid: number | undefined): { rss: number; anon: number; file: number } {
  const none = { rss: Number.NaN, anon: Number.NaN, file: Number.NaN };
  if (pid === undefined) return none;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => {
      const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
      return match ? Number(match[1]) / 1024 : Number.NaN;
    };
    return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
  } catch {
    return none;
  }
}

/** user + system CPU of the process so far; seconds */
function readCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

interface Sample {
  /** since the load started; seconds */
  t: number;
  warmup: boolean;
  /** VmRSS; MiB */
  rss: Record<BotRole, number>;
  /** RssAnon: private memory, what the verdict judges; MiB */
  anon: Record<BotRole, number>;
  /** RssFile: pages of the binary and libraries; MiB */
  file: Record<BotRole, number>;
  /** process.memoryUsage().heapUsed of each process (bench/lib/memory-probe.ts); MiB; NaN when it did not answer */
  heapUsed: Record<BotRole, number>;
  /**
   * heapUsed just after the latest full collection (what the heap retains); MiB; NaN when no full collection ran since
   * the previous sample, so each collection is one point of the trend
   */
  heapLive: Record<BotRole, number>;
  /** process.memoryUsage().heapTotal; MiB */
  heapTotal: Record<BotRole, number>;
  /** process.memoryUsage().external; MiB */
  external: Record<BotRole, number>;
  /** what V8 reserved per heap space (v8.getHeapSpaceStatistics()); MiB */
  spaces: Record<BotRole, Record<string, number>>;
  /** share of one core since the previous sample; 1 = a whole core */
  cpu: Record<BotRole, number>;
  /** round trip of the web process's GET /healthz; milliseconds (a stand-in for its event-loop lag) */
  healthzMs: number;
  /** waiting (incl. prioritised) + active + delayed jobs over every queue */
  backlog: number;
  delayed: number;
  failedJobs: number;
  /** the queue holding the most waiting + active jobs, when any */
  busiestQueue: string;
  openIncidents: number;
  incidents: number;
  /** live rows over every table (pg_stat_user_tables.n_live_tup, updated by autovacuum's statistics; approximate) */
  rows: number;
  dbMiB: number;
  /** 202 answers to alert groups per second since the previous sample */
  alertRate: number;
  /** non-2xx answers (alerts and metrics) since the previous sample */
  failures: number;
}

async function takeSample(deps: {
  bots: Record<BotRole, BotProcess>;
  port: number;
  queues: Queues;
  pool: pg.Pool;
  stats: LoadStats;
  t: number;
  warmup: boolean;
  previous: { t: number; cpu: Record<BotRole, number>; accepted: number; failures: number };
}): Promise<Sample> {
  const { bots, stats } = deps;
  const cpuNow = {
    web: readCpuSeconds(bots.web.child.pid),
    worker: readCpuSeconds(bots.worker.child.pid),
  };
  const interval = Math.max(1e-3, deps.t - deps.previous.t);
  const [webMemory, workerMemory] = await Promise.all([
    readChildMemory(bots.web),
    readChildMemory(bots.worker),
  ]);
  const healthz = await httpCall(undefined, deps.port, 'GET', '/healthz', { timeoutMs: 10_000 });
  const depths = await deps.queues.depths().catch(() => null);
  let backlog = Number.NaN;
  let delayed = Number.NaN;
  let failedJobs = Number.NaN;
  let busiestQueue = '';
  if (depths) {
    backlog = 0;
    delayed = 0;
    failedJobs = 0;
    let most = 0;
    for (const [name, d] of Object.entries(depths)) {
      backlog += d.waiting + d.active + d.delayed;
      delayed += d.delayed;
      failedJobs += d.failed;
      if (d.waiting + d.active > most) {
        most = d.waiting + d.active;
        busiestQueue = `${name} ${most}`;
      }
    }
  }
  const db = await deps.pool
    .query<{ open: number; total: number; rows: number; bytes: number }>(
      `SELECT (SELECT count(*)::int FROM incidents WHERE status <> 'resolved') AS open,
              (SELECT count(*)::int FROM incidents) AS total,
              (SELECT COALESCE(sum(n_live_tup), 0)::float8 FROM pg_stat_user_tables) AS rows,
              pg_database_size(current_database())::float8 AS bytes`,
    )
    .then((r) => r.rows[0])
    .catch(() => undefined);
  const failures = sumValues(stats.alerts.failures) + sumValues(stats.metrics.failures);
  return {
    t: deps.t,
    warmup: deps.warmup,
    ...(() => {
      const [web, worker] = [readRssMiB(bots.web.child.pid), readRssMiB(bots.worker.child.pid)];
      return {
        rss: { web: web.rss, worker: worker.rss },
        anon: { web: web.anon, worker: worker.anon },
        file: { web: web.file, worker: worker.file },
      };
    })(),
    heapUsed: { web: webMemory.heapUsed, worker: workerMemory.heapUsed },
    heapLive: { web: webMemory.heapLive, worker: workerMemory.heapLive },
    heapTotal: { web: webMemory.heapTotal, worker: workerMemory.heapTotal },
    external: { web: webMemory.external, worker: workerMemory.external },
    spaces: { web: webMemory.spaces, worker: workerMemory.spaces },
    cpu: {
      web: (cpuNow.web - deps.previous.cpu.web) / interval,
      worker: (cpuNow.worker - deps.previous.cpu.worker) / interval,
    },
    healthzMs: healthz.status === 200 ? healthz.ms : Number.NaN,
    backlog,
    delayed,
    failedJobs,
    busiestQueue,
    openIncidents: db?.open ?? Number.NaN,
    incidents: db?.total ?? Number.NaN,
    rows: db?.rows ?? Number.NaN,
    dbMiB: db ? db.bytes / 2 ** 20 : Number.NaN,
    alertRate: (stats.alerts.accepted - deps.previous.accepted) / interval,
    failures: failures - deps.previous.failures,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// trends

interface Trend {
  n: number;
  /** Theil–Sen slope: the median of the slopes between every two samples; units per hour */
  slope: number;
  /** least-squares slope, for comparison (information); units per hour */
  lsSlope: number;
  /** Pearson's r of value against time; 0 when the values do not vary */
  r: number;
  /** Mann–Kendall z: how far the count of rising over falling pairs is from none, in standard deviations */
  z: number;
  /** the Theil–Sen slope times the measured window */
  rise: number;
  first: number;
  last: number;
  min: number;
  max: number;
  growing: boolean;
}

/**
 * The trend of `value` against time (hours) over the samples after warm-up: the Theil–Sen slope (the median of the
 * slopes between every two samples) and the Mann–Kendall test of a monotonic rise. Growing when that slope is at least
 * `limitPerHour` and the rise is significant (z ≥ MIN_Z). Unlike a least-squares line (also computed, for comparison),
 * a few samples taken during a passing burst (a wave of anomaly charts, a collection in progress) do not tilt it, while
 * memory that keeps growing, or grows in steps and stays, moves it as much.
 */
function trendOf(
  samples: readonly Sample[],
  value: (s: Sample) => number,
  limitPerHour: number,
): Trend | null {
  const points = samples
    .filter((s) => !s.warmup && Number.isFinite(value(s)))
    .map((s) => [s.t / 3600, value(s)]);
  const n = points.length;
  if (n < 3) return null;
  const xs = points.map((p) => p[0] as number);
  const ys = points.map((p) => p[1] as number);
  const fit = linearRegression(points);
  const correlation = sampleCorrelation(xs, ys);
  const { slope, z } = robustTrend(xs, ys);
  const x0 = xs[0] as number;
  const x1 = xs[n - 1] as number;
  return {
    n,
    slope,
    lsSlope: fit.m,
    r: Number.isFinite(correlation) ? correlation : 0,
    z,
    rise: slope * (x1 - x0),
    first: ys[0] as number,
    last: ys[n - 1] as number,
    min: Math.min(...ys),
    max: Math.max(...ys),
    growing: slope >= limitPerHour && z >= MIN_Z,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// report

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a';

const signed = (n: number, digits = 1) => `${n >= 0 ? '+' : ''}${fmt(n, digits)}`;

function sumValues(map: Map<string, number>): number {
  let total = 0;
  for (const v of map.values()) total += v;
  return total;
}

function describeFailures(map: Map<string, number>): string {
  if (map.size === 0) return 'none';
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}: ${fmt(v)}`)
    .join(', ');
}

const COLUMNS: readonly [string, number][] = [
  ['t s', 6],
  ['web MiB', 8],
  ['wrk MiB', 8],
  ['web anon', 8],
  ['wrk anon', 8],
  ['web heap', 9],
  ['wrk heap', 9],
  ['web live', 9],
  ['wrk live', 9],
  ['web tot', 8],
  ['wrk tot', 8],
  ['web ext', 8],
  ['wrk ext', 8],
  ['web cpu', 8],
  ['wrk cpu', 8],
  ['healthz', 8],
  ['backlog', 8],
  ['delayed', 8],
  ['failed', 7],
  ['busiest', 16],
  ['open inc', 9],
  ['incid', 7],
  ['rows', 9],
  ['db MiB', 7],
  ['2xx/s', 6],
  ['non2xx', 7],
];

function tableHeader(): string {
  return COLUMNS.map(([name, width]) => name.padStart(width)).join(' ');
}

function tableRow(s: Sample): string {
  const cells = [
    `${fmt(s.t)}${s.warmup ? 'w' : ' '}`,
    fmt(s.rss.web, 1),
    fmt(s.rss.worker, 1),
    fmt(s.anon.web, 1),
    fmt(s.anon.worker, 1),
    fmt(s.heapUsed.web, 1),
    fmt(s.heapUsed.worker, 1),
    Number.isFinite(s.heapLive.web) ? fmt(s.heapLive.web, 1) : '-',
    Number.isFinite(s.heapLive.worker) ? fmt(s.heapLive.worker, 1) : '-',
    fmt(s.heapTotal.web, 1),
    fmt(s.heapTotal.worker, 1),
    fmt(s.external.web, 1),
    fmt(s.external.worker, 1),
    `${fmt(s.cpu.web * 100)}%`,
    `${fmt(s.cpu.worker * 100)}%`,
    fmt(s.healthzMs, 1),
    fmt(s.backlog),
    fmt(s.delayed),
    fmt(s.failedJobs),
    s.busiestQueue || '-',
    fmt(s.openIncidents),
    fmt(s.incidents),
    fmt(s.rows),
    fmt(s.dbMiB, 1),
    fmt(s.alertRate, 1),
    fmt(s.failures),
  ];
  return cells.map((c, i) => c.padStart((COLUMNS[i] as [string, number])[1])).join(' ');
}

function describeInformation(trend: Trend | null): string {
  if (!trend) return 'too few samples after warm-up';
  return (
    `first ${fmt(trend.first, 1)} → last ${fmt(trend.last, 1)} MiB (min ${fmt(trend.min, 1)}, max ${fmt(trend.max, 1)}); ` +
    `slope ${signed(trend.slope, 1)} MiB/h (information)`
  );
}

/** What V8 reserved per heap space at the first sample after warm-up and at the last: where heapTotal went. */
function describeSpaces(samples: readonly Sample[], role: BotRole): string {
  const measured = samples.filter((s) => !s.warmup && Object.keys(s.spaces[role]).length > 0);
  const first = measured[0]?.spaces[role];
  const last = measured.at(-1)?.spaces[role];
  if (!first || !last) return 'heap spaces: too few samples after warm-up';
  const names = Object.keys(last).filter((n) => (first[n] ?? 0) > 0.05 || (last[n] ?? 0) > 0.05);
  return `heap spaces reserved, first → last MiB: ${names
    .map((n) => `${n.replace(/_space$/, '')} ${fmt(first[n] ?? 0, 1)} → ${fmt(last[n] ?? 0, 1)}`)
    .join(', ')}`;
}

/** Which of RSS and the JavaScript heap grew, and what that points at. */
function explainMemory(rss: Trend | null, heap: Trend | null): string {
  if (!rss || !heap) return '→ too few samples to tell RSS from heap';
  if (heap.growing && rss.growing)
    return '→ heap and RSS grow: JavaScript objects are retained (find which: --heap-snapshots DIR)';
  if (heap.growing)
    return '→ the heap grows, RSS not (yet): JavaScript objects are retained (find which: --heap-snapshots DIR)';
  if (rss.growing)
    return (
      '→ RSS grows with a flat heap: not retained JavaScript objects but memory V8 or malloc keep (heap pages V8 ' +
      'reserves, see heapTotal; malloc arenas; native buffers, see ext)'
    );
  return '→ neither grows';
}

function describeTrend(trend: Trend | null, unit: string, digits: number, limit: number): string {
  if (!trend) return 'too few samples after warm-up for a trend';
  return (
    `first ${fmt(trend.first, digits)} → last ${fmt(trend.last, digits)} ${unit} (min ${fmt(trend.min, digits)}, max ${fmt(
      trend.max,
      digits,
    )}); slope ${signed(trend.slope, 1)} ${unit}/h (${signed(trend.rise, digits)} over the window; least squares ` +
    `${signed(trend.lsSlope, 1)}), Mann–Kendall z ${fmt(trend.z, 1)} → ${
      trend.growing ? `GROWING (≥ ${fmt(limit)} ${unit}/h, z ≥ ${MIN_Z})` : 'no growth trend'
    }`
  );
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const opts = readOptions();
  const serverUrl = new URL(
    process.env.SOAK_DATABASE_URL ??
      process.env.DATABASE_URL ??
      'postgres://postgres@127.0.0.1:5432/postgres',
  );
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const hex = randomBytes(4).toString('hex');
  const database = `ai_sre_soak_${hex}`;
  const dbUrl = new URL(serverUrl);
  dbUrl.pathname = `/${database}`;
  const prefix = `ai-sre-soak-${hex}`;
  const token = randomBytes(24).toString('hex');
  const durationMs = opts.minutes * 60_000;
  const warmupMs =
    opts.warmupMinutes !== null
      ? opts.warmupMinutes * 60_000
      : Math.min(durationMs * WARMUP_SHARE, WARMUP_MAX_MS);

  const abort = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts += 1;
    if (interrupts === 1) {
      process.stderr.write(`soak: ${signal}; stopping the load and cleaning up (again to kill at once)\n`);
      abort.abort();
      return;
    }
    // a second Ctrl-C: no clean-up; the 'exit' handler still kills the bot processes
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let dir: string | null = null;
  let health: { server: Server; port: number } | null = null;
  let stub: SlackStub | null = null;
  const bots: Partial<Record<BotRole, BotProcess>> = {};
  let queues: Queues | null = null;
  let pool: pg.Pool | null = null;
  let exitCode = 0;
  try {
    const random = seededRandom(opts.seed);
    const services = buildServices(opts, random);
    const failing = new Set(services.filter((_, i) => i % FAILING_SERVICE_EVERY === 0).map((s) => s.name));
    dir = await mkdtemp(join(tmpdir(), 'ai-sre-soak-'));
    health = await startHealthServer(failing);
    await writeFile(join(dir, 'targets.yml'), targetsYaml(services, health.port));
    await writeFile(join(dir, 'oncall.yml'), oncallYaml(services));
    // the e2e fixtures' default triage alone: their checkout runbook needs a `main` database target this run lacks
    await mkdir(join(dir, 'runbooks'));
    await copyFile(join(REPO_ROOT, DEFAULT_TRIAGE_RUNBOOK), join(dir, 'runbooks', 'default-triage.yml'));
    stub = await startSlackStub();
    const port = await findFreePort();
    const env: Record<string, string> = {
      DATABASE_URL: dbUrl.toString(),
      REDIS_URL: redisUrl,
      QUEUE_PREFIX: prefix,
      HOST: '127.0.0.1',
      PORT: String(port),
      WEBHOOK_TOKEN: token,
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      SLACK_BOT_TOKEN: 'xoxb-soak-0000',
      SLACK_SIGNING_SECRET: randomBytes(16).toString('hex'),
      SLACK_API_URL: stub.url,
      SLACK_APP_TOKEN: '',
      SLACK_RETRY_BASE_MS: '200',
      RUNBOOKS_DIR: join(dir, 'runbooks'),
      TARGETS_FILE: join(dir, 'targets.yml'),
      ONCALL_FILE: join(dir, 'oncall.yml'),
      ESCALATION_MINUTE_MS: String(ESCALATION_MINUTE_MS),
      PAGER_BACKOFF_BASE_MS: '10',
      ...opts.appEnv,
    };
    process.stderr.write(
      `soak: database ${database}, queue prefix ${prefix}; starting the web process on 127.0.0.1:${port}\n`,
    );
    // the web process creates and migrates the database; the worker starts on it afterwards
    const snapshotDir = opts.heapSnapshotDir ? resolvePath(opts.heapSnapshotDir) : null;
    if (snapshotDir) await mkdir(snapshotDir, { recursive: true });
    const botOptions = { verbose: opts.verbose, heapSnapshotDir: snapshotDir };
    bots.web = startBot('web', { ...env, MIGRATE_ON_START: 'true' }, botOptions);
    await waitForWeb(bots.web, port, 90_000, abort.signal);
    process.stderr.write('soak: web ready; starting the worker process\n');
    bots.worker = startBot('worker', { ...env, MIGRATE_ON_START: 'false' }, botOptions);
    await waitForWorker(bots.worker, { redisUrl, prefix }, 90_000, abort.signal);
    const running = { web: bots.web, worker: bots.worker };
    queues = createQueues({ redisUrl, prefix });
    pool = new pg.Pool({ connectionString: dbUrl.toString(), max: 2, application_name: 'ai-sre-soak' });

    process.stderr.write(
      `soak: both ready (web pid ${bots.web.child.pid}, worker pid ${bots.worker.child.pid}); ` +
        `load for ${fmt(opts.minutes, 2)} min, warm-up ${fmt(warmupMs / 1000)} s excluded from the trends\n`,
    );
    const planner = createAlertPlanner(services, random);
    const nextBatch = createMetricBatcher(services, opts.series, random);
    const loadAbort = new AbortController();
    const stopLoad = () => loadAbort.abort();
    abort.signal.addEventListener('abort', stopLoad, { once: true });
    const load = startLoad(opts, port, token, planner, nextBatch, loadAbort.signal);
    const startedAt = performance.now();
    const samples: Sample[] = [];
    /** with --mappings: each process's mappings at the first sample after warm-up and at the latest */
    const mappingsAfterWarmup: Record<BotRole, MappingsSample[]> = { web: [], worker: [] };
    let previous = {
      t: 0,
      cpu: { web: readCpuSeconds(bots.web.child.pid), worker: readCpuSeconds(bots.worker.child.pid) },
      accepted: 0,
      failures: 0,
    };
    // the stand-in keeps every call; counted and let go at each sample so the soak's own memory stays flat
    const slackCalls = new Map<string, number>();
    const activeStub = stub;
    const tallySlackCalls = () => {
      for (const call of activeStub.calls.splice(0)) {
        slackCalls.set(call.method, (slackCalls.get(call.method) ?? 0) + 1);
      }
    };
    process.stdout.write(`${tableHeader()}\n`);
    let crashed: BotProcess | undefined;
    let warmupSnapshotTaken = false;
    const mappingsFile = opts.mappingsFile ? resolvePath(opts.mappingsFile) : null;
    if (mappingsFile) writeFileSync(mappingsFile, '');
    for (let k = 1; ; k++) {
      const dueAt = startedAt + Math.min(k * opts.sampleSeconds * 1000, durationMs);
      await pause(dueAt - performance.now(), abort.signal);
      if (abort.signal.aborted) break;
      const t = (performance.now() - startedAt) / 1000;
      const sample = await takeSample({
        bots: running,
        port,
        queues,
        pool,
        stats: load.stats,
        t,
        warmup: t * 1000 < warmupMs,
        previous,
      });
      samples.push(sample);
      if (mappingsFile) {
        for (const role of ['web', 'worker'] as const) {
          const now = readMappings(running[role].child.pid);
          if (!now) continue;
          // with V8's heap spaces of the same sample: which of V8's pages (old, code, …) a growth is
          appendFileSync(
            mappingsFile,
            `${JSON.stringify({ t, warmup: sample.warmup, role, ...now, spaces: sample.spaces[role] })}\n`,
          );
          if (!sample.warmup) mappingsAfterWarmup[role] = [mappingsAfterWarmup[role][0] ?? now, now];
        }
      }
      tallySlackCalls();
      process.stdout.write(`${tableRow(sample)}\n`);
      previous = {
        t,
        cpu: {
          web: readCpuSeconds(bots.web.child.pid),
          worker: readCpuSeconds(bots.worker.child.pid),
        },
        accepted: load.stats.alerts.accepted,
        failures: sample.failures + previous.failures,
      };
      crashed = [running.web, running.worker].find((b) => b.exited);
      if (crashed || t * 1000 >= durationMs - 1) break;
      if (snapshotDir && !warmupSnapshotTaken && !sample.warmup) {
        warmupSnapshotTaken = true;
        await takeHeapSnapshots(snapshotDir, [running.web, running.worker], 'after warm-up');
      }
    }
    if (snapshotDir && !crashed && !abort.signal.aborted) {
      await takeHeapSnapshots(snapshotDir, [running.web, running.worker], 'at the end of the load');
    }
    const loadSeconds = (performance.now() - startedAt) / 1000;
    loadAbort.abort();
    await load.done;
    if (crashed) {
      process.stderr.write(
        `soak: the ${crashed.role} process exited during the load (${JSON.stringify(crashed.exited)}):\n` +
          `${crashed.lastLines.slice(-10).join('\n')}\n`,
      );
      exitCode = 1;
    }

    // after the load: do waiting and active jobs drain? (delayed ones are timers: escalations, debounced syncs)
    process.stderr.write(`soak: load stopped; waiting up to ${opts.settle} s for waiting and active jobs\n`);
    const settleStart = performance.now();
    let drainedMs: number | null = null;
    let leftWaiting = Number.NaN;
    let leftDelayed = Number.NaN;
    while (!abort.signal.aborted) {
      const depths = await queues.depths().catch(() => null);
      if (depths) {
        leftWaiting = Object.values(depths).reduce((n, d) => n + d.waiting + d.active, 0);
        leftDelayed = Object.values(depths).reduce((n, d) => n + d.delayed, 0);
        if (leftWaiting === 0) {
          drainedMs = performance.now() - settleStart;
          break;
        }
      }
      if (performance.now() - settleStart > opts.settle * 1000) break;
      await pause(250, abort.signal);
    }

    const summary = await pool
      .query<{
        total: number;
        resolved: number;
        open: number;
        anomaly: number;
        executions: number;
        decided: number;
        escalations: number;
        postmortems: number;
      }>(
        `SELECT (SELECT count(*)::int FROM incidents) AS total,
                (SELECT count(*)::int FROM incidents WHERE status = 'resolved') AS resolved,
                (SELECT count(*)::int FROM incidents WHERE status <> 'resolved') AS open,
                (SELECT count(*)::int FROM incidents WHERE source = 'anomaly') AS anomaly,
                (SELECT count(*)::int FROM runbook_executions) AS executions,
                (SELECT count(*)::int FROM runbook_executions WHERE status = 'decided') AS decided,
                (SELECT count(*)::int FROM escalations) AS escalations,
                (SELECT count(*)::int FROM postmortems) AS postmortems`,
      )
      .then((r) => r.rows[0]);
    const events = await pool.query<{ type: string; n: number }>(
      `SELECT type, count(*)::int AS n FROM timeline_events
        WHERE type IN ('decision.made', 'escalation.started', 'page.sent', 'page.failed', 'escalation.exhausted',
                       'incident.opened', 'incident.resolved')
        GROUP BY type ORDER BY n DESC`,
    );
    const acked = load.stats.alerts.ackedDeliveryIds;
    const found = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM alert_deliveries WHERE id = ANY($1::bigint[])',
      [acked],
    );
    const foundDeliveries = found.rows[0]?.n ?? 0;
    tallySlackCalls();

    // ---- the report
    const out: string[] = [];
    const line = (s = '') => out.push(s);
    const { alerts: a, metrics: m } = load.stats;
    line();
    line('== ai-sre soak ==');
    line(
      `run          ${fmt(loadSeconds / 60, 2)} min of load (warm-up ${fmt(warmupMs / 1000)} s, marked w, excluded from ` +
        `the trends); web pid ${running.web.child.pid}, worker pid ${running.worker.child.pid}; ` +
        `database ${database}, queue prefix ${prefix}`,
    );
    line(
      `workload     ${fmt(opts.services)} services × ${ALERT_RULES.length} alert groups, episodes of ${EPISODE_SECONDS.join(
        '–',
      )} s firing and ${QUIET_SECONDS.join('–')} s quiet; ${fmt(opts.rate, 1)} group deliveries/s; ` +
        `${fmt(opts.series)} series × 1 point/s; 1 service in ${FAILING_SERVICE_EVERY} fails its health check (503)`,
    );
    line(
      `alerts       ${fmt(a.requests)} group deliveries sent (${fmt(a.kinds.fire)} fire, ${fmt(a.kinds.repeat)} repeat, ` +
        `${fmt(a.kinds.resolve)} resolve), ${fmt(a.accepted)} answered 202; ${fmt(a.alertsSent)} alerts sent, ` +
        `${fmt(a.alertsAccepted)} accepted; non-2xx ${describeFailures(a.failures)}; ` +
        `${fmt(a.skipped)} slots skipped (${opts.concurrency} requests already out), ${fmt(a.idle)} with nothing to send`,
    );
    line(
      `metrics      ${fmt(m.requests)} batches sent, ${fmt(m.accepted)} answered 202; ${fmt(m.samplesSent)} samples sent, ` +
        `${fmt(m.samplesAccepted)} accepted, ${fmt(m.anomalies)} anomalies answered; non-2xx ${describeFailures(
          m.failures,
        )}; ${fmt(m.skipped)} seconds skipped (previous batch still out)`,
    );
    const lost = acked.length - foundDeliveries;
    line(
      `loss check   answered deliveries found in alert_deliveries: ${fmt(foundDeliveries)} / ${fmt(acked.length)} → ` +
        `${lost === 0 ? 'zero loss' : `LOST ${fmt(lost)}`}`,
    );
    if (lost !== 0) exitCode = 1;
    if (summary) {
      line(
        `pipeline     incidents ${fmt(summary.total)} (${fmt(summary.resolved)} resolved, ${fmt(summary.open)} open at the ` +
          `end, ${fmt(summary.anomaly)} from anomalies); runbook executions ${fmt(summary.executions)} ` +
          `(${fmt(summary.decided)} decided); escalations ${fmt(summary.escalations)}; postmortems ${fmt(summary.postmortems)}`,
      );
    }
    line(`timeline     ${events.rows.map((r) => `${r.type} ${fmt(r.n)}`).join(', ') || 'none'}`);
    line(
      `slack        ${fmt(sumValues(slackCalls))} calls (${[...slackCalls]
        .sort((x, y) => y[1] - x[1])
        .slice(0, 6)
        .map(([k, v]) => `${k} ${fmt(v)}`)
        .join(', ')})`,
    );
    line(
      `drain        ${
        abort.signal.aborted
          ? 'skipped (interrupted)'
          : `after the load: waiting + active jobs ${
              drainedMs === null
                ? `still ${fmt(leftWaiting)} after ${opts.settle} s`
                : `0 after ${fmt(drainedMs / 1000, 1)} s`
            }; ${fmt(leftDelayed)} delayed (timers: re-pages, debounced card edits)`
      }`,
    );
    line();
    const measured = samples.filter((s) => !s.warmup);
    const window = measured.length > 1 ? ((measured.at(-1)?.t ?? 0) - (measured[0]?.t ?? 0)) / 60 : 0;
    line(
      `trends       ${measured.length} samples over ${fmt(window, 1)} min after warm-up; slope: Theil–Sen (the median ` +
        `of the slopes between every two samples). Rule: GROWING when the slope ≥ ${MEMORY_SLOPE_LIMIT_MIB_PER_HOUR} ` +
        `MiB/h (memory) or ≥ ${QUEUE_SLOPE_LIMIT_JOBS_PER_HOUR} jobs/h (queue backlog) AND the Mann–Kendall z of a ` +
        `rise ≥ ${MIN_Z}; else no growth trend`,
    );
    if (window > 0 && window < 10) {
      line(
        `             (a short window: ${MEMORY_SLOPE_LIMIT_MIB_PER_HOUR} MiB/h is only ${fmt(
          (MEMORY_SLOPE_LIMIT_MIB_PER_HOUR * window) / 60,
          2,
        )} MiB over it, below the garbage collector's swings; judge 30 min for a verdict that means something)`,
      );
    }
    const information = (value: (s: Sample) => number) => trendOf(samples, value, Number.POSITIVE_INFINITY);
    const memoryTrend = (value: (s: Sample) => number) =>
      trendOf(samples, value, MEMORY_SLOPE_LIMIT_MIB_PER_HOUR);
    const memory = {
      web: { rss: memoryTrend((s) => s.anon.web), heap: memoryTrend((s) => s.heapLive.web) },
      worker: { rss: memoryTrend((s) => s.anon.worker), heap: memoryTrend((s) => s.heapLive.worker) },
    };
    /** an information-only trend of one figure per process */
    const perRole = (pick: (s: Sample) => Record<BotRole, number>) => ({
      web: information((s) => pick(s).web),
      worker: information((s) => pick(s).worker),
    });
    const residentAll = perRole((s) => s.rss);
    const residentFile = perRole((s) => s.file);
    const rawHeap = perRole((s) => s.heapUsed);
    const external = perRole((s) => s.external);
    const heapTotal = perRole((s) => s.heapTotal);
    const backlog = trendOf(samples, (s) => s.backlog, QUEUE_SLOPE_LIMIT_JOBS_PER_HOUR);
    for (const role of ['web', 'worker'] as const) {
      line(
        `${`${role} RSS`.padEnd(13)}private (RssAnon): ${describeTrend(memory[role].rss, 'MiB', 1, MEMORY_SLOPE_LIMIT_MIB_PER_HOUR)}`,
      );
      line(`${''.padEnd(13)}VmRSS ${describeInformation(residentAll[role])}`);
      line(`${''.padEnd(13)}RssFile (binary and libraries) ${describeInformation(residentFile[role])}`);
      line(
        `${`${role} heap`.padEnd(13)}after full GCs: ${describeTrend(
          memory[role].heap,
          'MiB',
          1,
          MEMORY_SLOPE_LIMIT_MIB_PER_HOUR,
        )}`,
      );
      line(`${''.padEnd(13)}heapUsed at the samples ${describeInformation(rawHeap[role])}`);
      line(`${''.padEnd(13)}heapTotal ${describeInformation(heapTotal[role])}`);
      line(`${''.padEnd(13)}${describeSpaces(samples, role)}`);
      line(`${`${role} ext`.padEnd(13)}${describeInformation(external[role])}`);
      line(`${''.padEnd(13)}${explainMemory(memory[role].rss, memory[role].heap)}`);
      const [first, last] = mappingsAfterWarmup[role];
      if (first && last) {
        line(`${''.padEnd(13)}private memory by mapping after warm-up (${opts.mappingsFile}):`);
        for (const growth of describeGrowth(first, last)) line(`${''.padEnd(15)}${growth}`);
      }
    }
    line(
      'memory       RSS judged is RssAnon of /proc/<pid>/status (private memory: heap, malloc, buffers); VmRSS also ' +
        'counts RssFile, pages of the node binary and libraries read in as code paths first run (bounded by the files, ' +
        'shared, reclaimable), so it is information; heap is process.memoryUsage().heapUsed read just after each full ' +
        'collection (table: live; one point per collection), i.e. what the JavaScript heap retains; heapUsed at the ' +
        'samples (table: heap) is mostly garbage awaiting collection and swings with its timing, so it is information ' +
        'only, as are heapTotal (table: tot; what V8 reserved for the heap) and ext (external: Buffers, ArrayBuffers). Asked of each process over IPC at each sample ' +
        '(bench/lib/memory-probe.ts). "healthz" is the web round trip in ms',
    );
    line(`queue        ${describeTrend(backlog, 'jobs', 0, QUEUE_SLOPE_LIMIT_JOBS_PER_HOUR)}`);
    const openTrend = trendOf(samples, (s) => s.openIncidents, Number.POSITIVE_INFINITY);
    const rowsTrend = trendOf(samples, (s) => s.rows, Number.POSITIVE_INFINITY);
    if (openTrend && rowsTrend) {
      line(
        `info         open incidents ${fmt(openTrend.first)} → ${fmt(openTrend.last)} (slope ${signed(openTrend.slope, 0)}/h, ` +
          `r ${fmt(openTrend.r, 2)}); rows ${signed(rowsTrend.slope, 0)}/h (by design: deliveries, the timeline and ` +
          'postmortems are kept)',
      );
    }
    for (const bot of [running.web, running.worker]) {
      const logged = [...bot.logCounts]
        .filter(([k]) => !k.startsWith('info '))
        .sort((x, y) => y[1] - x[1])
        .slice(0, 6);
      if (logged.length > 0) {
        line(`${bot.role} log`.padEnd(13) + logged.map(([k, v]) => `${fmt(v)}× "${k}"`).join('; '));
      }
      for (const error of bot.errorLines) line(`${''.padEnd(13)}${error}`);
    }
    const growing = [
      memory.web.rss?.growing && 'web RSS',
      memory.web.heap?.growing && 'web heap',
      memory.worker.rss?.growing && 'worker RSS',
      memory.worker.heap?.growing && 'worker heap',
      backlog?.growing && 'queue backlog',
    ].filter((g): g is string => typeof g === 'string');
    if (growing.length > 0) exitCode = 1;
    const problems = [
      ...growing.map((g) => `${g} GROWING`),
      ...(lost !== 0 ? [`${fmt(lost)} answered deliveries lost`] : []),
      ...(crashed ? [`the ${crashed.role} process crashed`] : []),
      ...(abort.signal.aborted ? ['interrupted'] : []),
    ];
    line(
      `verdict      ${problems.length === 0 ? 'PASS: no growth trend, zero loss' : `FAIL: ${problems.join(', ')}`}`,
    );
    process.stdout.write(`${out.join('\n')}\n`);
    if (abort.signal.aborted) exitCode = 1;
  } catch (err) {
    process.stderr.write(`soak: ${(err as Error).message}\n`);
    exitCode = 1;
  } finally {
    await pool?.end().catch(() => {});
    await queues?.close().catch(() => {});
    // the worker first, so nothing is half-done when the web process (which does not run jobs) goes
    for (const bot of [bots.worker, bots.web]) {
      if (!bot) continue;
      await stopBot(bot);
      if (bot.exited && bot.exited.code !== 0 && bot.exited.code !== null) {
        process.stderr.write(
          `soak: the ${bot.role} process exited with ${bot.exited.code}${bot.stopping ? ' on SIGTERM' : ''}:\n` +
            `${bot.lastLines.slice(-5).join('\n')}\n`,
        );
        exitCode = 1;
      }
    }
    await stub?.close().catch(() => {});
    if (health) {
      health.server.closeAllConnections();
      await new Promise<void>((resolve) => health?.server.close(() => resolve()));
    }
    if (dir) await rm(dir, { recursive: true, force: true }).catch(() => {});
    await dropDatabase(dbUrl.toString()).catch((err: unknown) =>
      process.stderr.write(`soak: could not drop ${database}: ${(err as Error).message}\n`),
    );
    const deleted = await deleteKeys(`${prefix}:*`, redisUrl).catch((err: unknown) => {
      process.stderr.write(`soak: could not delete Redis keys ${prefix}:*: ${(err as Error).message}\n`);
      return 0;
    });
    process.stderr.write(
      `soak: cleaned up (database dropped, ${deleted} Redis keys deleted, temp files removed)\n`,
    );
  }
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
