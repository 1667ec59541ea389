/**
 * `npm run bench:ingest` — sustained throughput, latency and loss of the alert intake (`POST /webhooks/alertmanager`).
 *
 * The app runs as a separate child process (`node --import tsx src/cli.ts start`) on its own database and BullMQ
 * prefix, with Slack pointed at the local stand-in so incident cards really get posted while the load runs.
 * The load is Alertmanager-shaped: one request is one group (one service and alert name, 1..batch alerts), and over
 * time groups start firing, are re-delivered unchanged (group_interval) and resolve. See bench/README.md.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { type SlackStub, startSlackStub } from '../src/devtools/slack-standin/stand-in.js';
import { deleteKeys, dropDatabase } from '../test/helpers/test-app.js';
import { findFreePort, followChildLog, seededRandom } from './lib/common.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** the target this bench reports against */
const TARGET_ALERTS_PER_SECOND = 5_000;
/** milliseconds */
const TARGET_P99_MS = 100;

/** share of requests of each kind; the rest are resolutions */
const NEW_SHARE = 0.4;
const REPEAT_SHARE = 0.4;

const ALERT_RULES: readonly { name: string; severity: string; summary: string }[] = [
  { name: 'HighErrorRate', severity: 'critical', summary: '5xx ratio above 5% for 5 minutes' },
  { name: 'HighLatencyP99', severity: 'high', summary: 'p99 latency above 800 ms for 10 minutes' },
  {
    name: 'PodCrashLooping',
    severity: 'high',
    summary: 'container restarted more than 3 times in 15 minutes',
  },
  { name: 'CPUThrottlingHigh', severity: 'warning', summary: 'CPU throttled more than 25% of periods' },
  { name: 'MemoryNearLimit', severity: 'warning', summary: 'working set above 90% of the memory limit' },
  { name: 'TargetDown', severity: 'critical', summary: 'scrape target has been down for 2 minutes' },
];
/** 25 domains × 8 roles name 200 services (`payment-api`, `checkout-worker`, …) */
const DOMAINS = (
  'payment checkout cart catalog search pricing inventory shipping orders accounts auth profile notify email sms ' +
  'billing invoice ledger fraud risk reviews ratings media upload reports'
).split(' ');
const ROLES = ['api', 'worker', 'gateway', 'consumer', 'scheduler', 'service', 'cache', 'indexer'];
const NEVER = '0001-01-01T00:00:00Z';

// ---------------------------------------------------------------------------------------------------------------
// options

interface Options {
  /** measured phase; seconds */
  duration: number;
  /** load before the measured phase, not counted; seconds */
  warmup: number;
  /** requests in flight at once (keep-alive connections) */
  concurrency: number;
  /** most alerts in one request (the largest group) */
  batch: number;
  services: number;
  /** after the load, wait up to this long for the Slack card backlog to drain; seconds */
  settle: number;
  seed: number;
  /** run the app with --cpu-prof and report where the profile was written */
  cpuProf: boolean;
  /** keep the bench database (for EXPLAIN ANALYZE afterwards) instead of dropping it */
  keep: boolean;
  /** run the app without Slack (no card jobs): the intake alone */
  withoutSlack: boolean;
  /** extra environment of the app (`--app-env DATABASE_POOL_MAX=40`), to try settings */
  appEnv: Record<string, string>;
  verbose: boolean;
}

function readOptions(): Options {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      concurrency: { type: 'string', short: 'c' },
      batch: { type: 'string' },
      services: { type: 'string' },
      settle: { type: 'string' },
      seed: { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      'without-slack': { type: 'boolean', default: false },
      'app-env': { type: 'string', multiple: true, default: [] },
      verbose: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      `usage: npm run bench:ingest -- [--duration 60] [--warmup 10] [--concurrency 32] [--batch 20]
       [--services 200] [--settle 15] [--seed N] [--cpu-prof] [--keep] [--without-slack]
       [--app-env NAME=VALUE]... [--verbose]
each flag also reads BENCH_<NAME> (e.g. BENCH_DURATION); Postgres from BENCH_DATABASE_URL or DATABASE_URL
(any database: the bench uses the same server and its own ai_sre_bench_<pid> database), Redis from REDIS_URL.\n`,
    );
    process.exit(0);
  }
  const num = (name: string, flag: string | undefined, fallback: number, min: number, max: number) => {
    const raw = flag ?? process.env[`BENCH_${name.toUpperCase()}`] ?? String(fallback);
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new Error(`--${name}: expected a number from ${min} to ${max}, got "${raw}"`);
    }
    return n;
  };
  return {
    duration: num('duration', values.duration, 60, 1, 3_600),
    warmup: num('warmup', values.warmup, 10, 0, 600),
    concurrency: Math.round(num('concurrency', values.concurrency, 32, 1, 1_024)),
    batch: Math.round(num('batch', values.batch, 20, 1, 1_000)),
    services: Math.round(num('services', values.services, 200, 1, 10_000)),
    settle: num('settle', values.settle, 15, 0, 600),
    seed: Math.round(num('seed', values.seed, 1, 0, 2 ** 31)),
    cpuProf: values['cpu-prof'],
    keep: values.keep,
    withoutSlack: values['without-slack'],
    appEnv: Object.fromEntries(
      values['app-env'].map((pair) => {
        const eq = pair.indexOf('=');
        if (eq < 1) throw new Error(`--app-env: expected NAME=VALUE, got "${pair}"`);
        return [pair.slice(0, eq), pair.slice(eq + 1)];
      }),
    ),
    verbose: values.verbose,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// workload: Alertmanager groups and their alerts

interface BenchAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  generatorURL: string;
  /** 16 hex chars, stable per label set (as Alertmanager's own) */
  fingerprint: string;
  firing: boolean;
  /** RFC 3339; when the current firing began */
  startsAt: string;
  /** the alert's JSON while it fires; rebuilt when it starts firing again, so re-deliveries cost no serialisation */
  firingJson: string;
}

interface AlertGroup {
  /** `{"version":"4",…,"status":"` — everything before the group status */
  head: string;
  alerts: BenchAlert[];
  firing: number;
  /** Alertmanager never sends one group twice at once */
  inFlight: boolean;
}

type RequestKind = 'new' | 'repeat' | 'resolve';

interface PlannedRequest {
  kind: RequestKind;
  group: AlertGroup;
  body: string;
  alerts: number;
}

function fingerprintOf(labels: Record<string, string>): string {
  const hash = createHash('sha256');
  for (const key of Object.keys(labels).sort()) hash.update(`${key}\0${labels[key]}\0`);
  return hash.digest('hex').slice(0, 16);
}

function serviceName(i: number): string {
  const domain = DOMAINS[i % DOMAINS.length] as string;
  const role = ROLES[Math.floor(i / DOMAINS.length) % ROLES.length] as string;
  const round = Math.floor(i / (DOMAINS.length * ROLES.length));
  return round === 0 ? `${domain}-${role}` : `${domain}-${role}-${round + 1}`;
}

function alertJson(alert: BenchAlert, status: 'firing' | 'resolved', startsAt: string, endsAt: string) {
  return JSON.stringify({
    status,
    labels: alert.labels,
    annotations: alert.annotations,
    startsAt,
    endsAt,
    generatorURL: alert.generatorURL,
    fingerprint: alert.fingerprint,
  });
}

/** Builds services × alert rules groups; a group's size is skewed towards small (most groups have a few alerts). */
function buildGroups(opts: Options, random: () => number): AlertGroup[] {
  const groups: AlertGroup[] = [];
  for (let s = 0; s < opts.services; s++) {
    const service = serviceName(s);
    const namespace = `team-${DOMAINS[s % DOMAINS.length]}`;
    for (const rule of ALERT_RULES) {
      const size = 1 + Math.floor(random() ** 2 * opts.batch);
      const groupLabels = { alertname: rule.name, service };
      const commonLabels = { ...groupLabels, severity: rule.severity, namespace, env: 'production' };
      const head = `{"version":"4","groupKey":${JSON.stringify(
        `{}/{env="production"}:{alertname="${rule.name}", service="${service}"}`,
      )},"truncatedAlerts":0,"receiver":"ai-sre","groupLabels":${JSON.stringify(groupLabels)},"commonLabels":${JSON.stringify(
        commonLabels,
      )},"commonAnnotations":{},"externalURL":"http://alertmanager.monitoring:9093","status":"`;
      const alerts: BenchAlert[] = [];
      for (let i = 0; i < size; i++) {
        const labels = {
          ...commonLabels,
          instance: `${service}-${i}.${namespace}.svc:8080`,
          pod: `${service}-${(s * 7919 + i * 104_729).toString(36).slice(-5)}`,
          job: service,
        };
        const alert: BenchAlert = {
          labels,
          annotations: {
            summary: `${service}: ${rule.summary}`,
            description: `${rule.name} on ${labels.instance} (${labels.pod})`,
            runbook_url: `https://runbooks.example.com/${rule.name}`,
          },
          generatorURL: `http://prometheus.monitoring:9090/graph?g0.expr=${encodeURIComponent(
            `${rule.name}{service="${service}"}`,
          )}&g0.tab=1`,
          fingerprint: fingerprintOf(labels),
          firing: false,
          startsAt: NEVER,
          firingJson: '',
        };
        alerts.push(alert);
      }
      groups.push({ head, alerts, firing: 0, inFlight: false });
    }
  }
  return groups;
}

/** Picks what the next request sends, following the alerts' lifecycle, and updates the model as if it was sent. */
function createPlanner(groups: AlertGroup[], random: () => number) {
  const pick = (fits: (g: AlertGroup) => boolean): AlertGroup | undefined => {
    const start = Math.floor(random() * groups.length);
    for (let i = 0; i < groups.length; i++) {
      const g = groups[(start + i) % groups.length] as AlertGroup;
      if (!g.inFlight && fits(g)) return g;
    }
    return undefined;
  };
  const body = (group: AlertGroup, resolved: string[]): { body: string; alerts: number } => {
    const parts = group.alerts.filter((a) => a.firing).map((a) => a.firingJson);
    parts.push(...resolved);
    return {
      body: `${group.head}${group.firing > 0 ? 'firing' : 'resolved'}","alerts":[${parts.join(',')}]}`,
      alerts: parts.length,
    };
  };
  const fire = (group: AlertGroup): PlannedRequest => {
    const idle = group.alerts.filter((a) => !a.firing);
    // a first notification carries what fired within group_wait; later ones add the stragglers
    const count = Math.max(1, Math.ceil(random() * idle.length));
    const startsAt = new Date(Date.now() - Math.floor(random() * 60_000)).toISOString();
    for (const alert of idle.slice(0, count)) {
      alert.firing = true;
      alert.startsAt = startsAt;
      alert.firingJson = alertJson(alert, 'firing', startsAt, NEVER);
      group.firing += 1;
    }
    return { kind: 'new', group, ...body(group, []) };
  };
  /** every alert of the group fires already: one flaps (resolved and fired again between two notifications) */
  const flap = (group: AlertGroup): PlannedRequest => {
    const alert = group.alerts[Math.floor(random() * group.alerts.length)] as BenchAlert;
    alert.startsAt = new Date().toISOString();
    alert.firingJson = alertJson(alert, 'firing', alert.startsAt, NEVER);
    return { kind: 'new', group, ...body(group, []) };
  };
  const resolve = (group: AlertGroup): PlannedRequest => {
    const firing = group.alerts.filter((a) => a.firing);
    const count = random() < 0.5 ? firing.length : Math.max(1, Math.ceil(random() * firing.length));
    const endsAt = new Date().toISOString();
    const resolved: string[] = [];
    for (const alert of firing.slice(0, count)) {
      resolved.push(alertJson(alert, 'resolved', alert.startsAt, endsAt));
      alert.firing = false;
      group.firing -= 1;
    }
    return { kind: 'resolve', group, ...body(group, resolved) };
  };
  return (): PlannedRequest | undefined => {
    const roll = random();
    let planned: PlannedRequest | undefined;
    if (roll < NEW_SHARE + REPEAT_SHARE && roll >= NEW_SHARE) {
      const group = pick((g) => g.firing > 0);
      if (group) planned = { kind: 'repeat', group, ...body(group, []) };
    } else if (roll >= NEW_SHARE + REPEAT_SHARE) {
      const group = pick((g) => g.firing > 0);
      if (group) planned = resolve(group);
    }
    if (!planned) {
      const idle = pick((g) => g.firing < g.alerts.length);
      const group = idle ?? pick(() => true);
      if (group) planned = idle ? fire(group) : flap(group);
    }
    if (planned) planned.group.inFlight = true;
    return planned;
  };
}

// ---------------------------------------------------------------------------------------------------------------
// the app under test

interface AppProcess {
  child: ChildProcess;
  port: number;
  /** set when the child exits; a non-null value before we asked it to stop means it crashed */
  exited: { code: number | null; signal: NodeJS.Signals | null } | null;
  stopping: boolean;
  /** pino lines of level warn and above, counted by `level msg` */
  logCounts: Map<string, number>;
  lastLines: string[];
  profileDir: string | null;
}

function startApp(env: Record<string, string>, opts: Options): AppProcess {
  const profileDir = opts.cpuProf ? join(tmpdir(), `ai-sre-bench-prof-${process.pid}`) : null;
  const nodeArgs = ['--import', 'tsx'];
  if (profileDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
  const child = spawn(process.execPath, [...nodeArgs, 'src/cli.ts', 'start'], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  // its own process group keeps Ctrl-C from reaching it; if the bench dies abruptly, the app must not outlive it
  process.once('exit', () => {
    if (!app.exited) child.kill('SIGKILL');
  });
  const app: AppProcess = {
    child,
    port: Number(env.PORT),
    exited: null,
    stopping: false,
    logCounts: new Map(),
    lastLines: [],
    profileDir,
  };
  followChildLog(child, app, opts.verbose ? (line) => process.stderr.write(`[app] ${line}\n`) : undefined);
  child.on('exit', (code, signal) => {
    app.exited = { code, signal };
  });
  return app;
}

async function waitForReady(app: AppProcess, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (signal.aborted) throw new Error('interrupted');
    if (app.exited) throw new Error(`the app exited during start-up:\n${app.lastLines.join('\n')}`);
    const status = await new Promise<number>((resolve) => {
      const req = request({ host: '127.0.0.1', port: app.port, path: '/readyz', timeout: 2_000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
      req.on('timeout', () => req.destroy());
      req.end();
    });
    if (status === 200) return;
    await sleep(100);
  }
  throw new Error(
    `the app did not answer /readyz with 200 within ${timeoutMs} ms:\n${app.lastLines.join('\n')}`,
  );
}

async function stopApp(app: AppProcess): Promise<void> {
  if (app.exited) return;
  app.stopping = true;
  app.child.kill('SIGTERM');
  const exited = once(app.child, 'exit');
  const timer = setTimeout(() => app.child.kill('SIGKILL'), 40_000);
  await exited;
  clearTimeout(timer);
}

async function readMetrics(port: number): Promise<Map<string, number>> {
  const text = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', timeout: 5_000 }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        data += c;
      });
      res.on('end', () => resolve(data));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('/metrics timed out')));
    req.end();
  });
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('ai_sre_')) continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

// ---------------------------------------------------------------------------------------------------------------
// load

interface Answer {
  /** HTTP status, or 0 when no answer came */
  status: number;
  error?: string;
  delivery?: number;
  alerts?: number;
  opened?: number;
}

function postWebhook(agent: Agent, port: number, token: string, body: string): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/webhooks/alertmanager',
        agent,
        timeout: 30_000,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            resolve({ status });
            return;
          }
          try {
            const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
              delivery?: number;
              alerts?: number;
              opened?: number[];
            };
            resolve({
              status,
              delivery: parsed.delivery,
              alerts: parsed.alerts,
              opened: parsed.opened?.length,
            });
          } catch {
            resolve({ status, error: 'unparsable 2xx body' });
          }
        });
        res.on('error', (err) => resolve({ status: 0, error: err.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout after 30 s')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, error: err.code ?? err.message }));
    req.end(body);
  });
}

interface LoadStats {
  /** all phases: what the loss check compares with Postgres */
  ackedDeliveryIds: number[];
  ackedAlerts: number;
  sentAlerts: number;
  openedAnswered: number;
  /** measured phase only (by completion time) */
  measured: {
    requests: number;
    okRequests: number;
    okAlerts: number;
    latenciesMs: number[];
    failures: Map<string, number>;
    kinds: Record<RequestKind, number>;
  };
  /** all phases */
  failures: Map<string, number>;
  /** 2xx answers whose body said a different alert count than sent */
  countMismatches: number;
}

async function runLoad(
  app: AppProcess,
  token: string,
  opts: Options,
  plan: () => PlannedRequest | undefined,
  phases: { onMeasureStart(): Promise<void>; signal: AbortSignal },
): Promise<{ stats: LoadStats; measuredSeconds: number }> {
  const agent = new Agent({
    keepAlive: true,
    maxSockets: opts.concurrency,
    maxFreeSockets: opts.concurrency,
  });
  const stats: LoadStats = {
    ackedDeliveryIds: [],
    ackedAlerts: 0,
    sentAlerts: 0,
    openedAnswered: 0,
    measured: {
      requests: 0,
      okRequests: 0,
      okAlerts: 0,
      latenciesMs: [],
      failures: new Map(),
      kinds: { new: 0, repeat: 0, resolve: 0 },
    },
    failures: new Map(),
    countMismatches: 0,
  };
  const started = performance.now();
  const measureStart = started + opts.warmup * 1000;
  const measureEnd = measureStart + opts.duration * 1000;
  let stop = false;

  const worker = async () => {
    while (!stop && !app.exited && !phases.signal.aborted) {
      const next = plan();
      if (!next) {
        await sleep(1);
        continue;
      }
      const t0 = performance.now();
      const answer = await postWebhook(agent, app.port, token, next.body);
      const t1 = performance.now();
      next.group.inFlight = false;
      stats.sentAlerts += next.alerts;
      const ok = answer.status >= 200 && answer.status < 300 && answer.delivery !== undefined;
      if (ok) {
        stats.ackedDeliveryIds.push(answer.delivery as number);
        stats.ackedAlerts += answer.alerts ?? 0;
        stats.openedAnswered += answer.opened ?? 0;
        if (answer.alerts !== next.alerts) stats.countMismatches += 1;
      } else {
        const key = answer.status ? `HTTP ${answer.status}` : `no answer (${answer.error ?? 'unknown'})`;
        stats.failures.set(key, (stats.failures.get(key) ?? 0) + 1);
      }
      if (t1 >= measureStart && t1 <= measureEnd) {
        const m = stats.measured;
        m.requests += 1;
        m.kinds[next.kind] += 1;
        m.latenciesMs.push(t1 - t0);
        if (ok) {
          m.okRequests += 1;
          m.okAlerts += answer.alerts ?? 0;
        } else {
          const key = answer.status ? `HTTP ${answer.status}` : `no answer (${answer.error ?? 'unknown'})`;
          m.failures.set(key, (m.failures.get(key) ?? 0) + 1);
        }
      }
    }
  };

  const workers = Array.from({ length: opts.concurrency }, () => worker());
  const clock = (async () => {
    await sleep(Math.max(0, measureStart - performance.now()));
    if (app.exited || phases.signal.aborted) return;
    process.stderr.write(`bench: warm-up done; measuring for ${opts.duration} s\n`);
    await phases.onMeasureStart();
    await sleep(Math.max(0, measureEnd - performance.now()));
  })();
  await Promise.race([clock, Promise.all(workers)]);
  stop = true;
  await Promise.all(workers);
  agent.destroy();
  if (phases.signal.aborted) throw new Error('interrupted');
  return { stats, measuredSeconds: opts.duration };
}

// ---------------------------------------------------------------------------------------------------------------
// where the CPU goes (Linux /proc), and what Postgres backends are doing

/** clock ticks per second of /proc/<pid>/stat; 100 on every Linux this runs on */
const CLK_TCK = 100;

interface CpuSnapshot {
  at: number;
  /** seconds of CPU by group */
  seconds: Map<string, number>;
  /** seconds of CPU of the whole machine (every process) and its core count */
  machine: { busy: number; cores: number } | null;
  /** the app's main (event-loop) thread: seconds on a CPU and seconds runnable but waiting for one */
  appThread: { run: number; wait: number } | null;
}

function readMachine(): CpuSnapshot['machine'] {
  try {
    const text = readFileSync('/proc/stat', 'utf8');
    const total = (text.split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …: everything but idle and iowait is busy
    const busy = total.slice(0, 8).reduce((a, b) => a + b, 0) - (total[3] ?? 0) - (total[4] ?? 0);
    const cores = text.split('\n').filter((l) => /^cpu\d+ /.test(l)).length;
    return { busy: busy / CLK_TCK, cores };
  } catch {
    return null;
  }
}

function readThread(pid: number | undefined): CpuSnapshot['appThread'] {
  if (pid === undefined) return null;
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ').map(Number);
    return { run: (run ?? 0) / 1e9, wait: (wait ?? 0) / 1e9 };
  } catch {
    return null;
  }
}

function readCpu(appPid: number | undefined): CpuSnapshot {
  const seconds = new Map<string, number>();
  const add = (key: string, s: number) => seconds.set(key, (seconds.get(key) ?? 0) + s);
  const self = process.cpuUsage();
  add('bench', (self.user + self.system) / 1e6);
  const snapshot = { at: performance.now(), seconds, machine: readMachine(), appThread: readThread(appPid) };
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return snapshot;
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      // fields[0] is field 3 (state): utime is field 14, stime field 15
      const cpu = (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
      if (Number(pid) === appPid) add('app', cpu);
      else if (comm.startsWith('postgres')) add('postgres', cpu);
      else if (comm.startsWith('redis-server')) add('redis', cpu);
    } catch {
      // the process ended between readdir and read
    }
  }
  return snapshot;
}

interface Activity {
  samples: number;
  /** connections of the app by state (`active`, `idle in transaction` = waiting for the app, `idle`), summed over samples */
  byState: Map<string, number>;
  /** active connections by wait event (`on CPU` when none) */
  byWait: Map<string, number>;
  /** active and idle-in-transaction connections by statement (the last one sent, for idle in transaction) */
  byQuery: Map<string, number>;
}

interface ActivitySampler {
  stop(): Promise<Activity>;
}

/** Samples the app's connections in pg_stat_activity every 100 ms: busy or waiting for the app, on what, running what. */
function sampleActivity(pool: pg.Pool, database: string): ActivitySampler {
  const byState = new Map<string, number>();
  const byWait = new Map<string, number>();
  const byQuery = new Map<string, number>();
  const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const { rows } = await pool.query<{ state: string | null; wait: string | null; query: string }>(
          `SELECT state, wait_event_type || ':' || wait_event AS wait,
                  regexp_replace(left(query, 70), '\\s+', ' ', 'g') AS query
             FROM pg_stat_activity
            WHERE datname = $1 AND application_name = 'ai-sre' AND backend_type = 'client backend'`,
          [database],
        );
        samples += 1;
        for (const r of rows) {
          const state = r.state ?? 'unknown';
          bump(byState, state);
          if (state === 'active') {
            bump(byWait, r.wait ?? 'on CPU');
            bump(byQuery, `active       ${r.query}`);
          } else if (state.startsWith('idle in transaction')) {
            bump(byQuery, `idle in tx   ${r.query}`);
          }
        }
      } catch {
        // sampling is best effort
      }
      await sleep(100);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { samples, byState, byWait, byQuery };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// clean-up

// ---------------------------------------------------------------------------------------------------------------
// report

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a';

function top(map: Map<string, number>, n: number): [string, number][] {
  return [...map].sort((a, b) => b[1] - a[1]).slice(0, n);
}

function printReport(r: {
  opts: Options;
  database: string;
  prefix: string;
  stats: LoadStats;
  measuredSeconds: number;
  groups: AlertGroup[];
  cpu: { start: CpuSnapshot; end: CpuSnapshot };
  activity: Activity;
  serverSide: { count: number; sum: number };
  db: { deliveries: number; alerts: number; ackedFound: number; ackedFoundAlerts: number };
  incidents: { total: number; resolved: number; withCard: number; attachments: number; events: number };
  slack: { calls: Map<string, number>; backlog: number; settledMs: number | null };
}) {
  const { opts, stats } = r;
  const m = stats.measured;
  const latencies = Float64Array.from(m.latenciesMs).sort();
  const sorted = Array.from(latencies);
  const rps = m.requests / r.measuredSeconds;
  const alertsPerSecond = m.okAlerts / r.measuredSeconds;
  const p50 = percentile(sorted, 0.5);
  const p90 = percentile(sorted, 0.9);
  const p99 = percentile(sorted, 0.99);
  const max = sorted[sorted.length - 1] ?? Number.NaN;
  const fingerprints = r.groups.reduce((n, g) => n + g.alerts.length, 0);
  const loss = stats.ackedAlerts - r.db.ackedFoundAlerts;
  const lostDeliveries = stats.ackedDeliveryIds.length - r.db.ackedFound;
  const out: string[] = [];
  const line = (s = '') => out.push(s);
  line();
  line('== ai-sre alert intake benchmark ==');
  line(
    `workload     ${fmt(opts.services)} services × ${ALERT_RULES.length} alert rules = ${fmt(r.groups.length)} groups, ` +
      `${fmt(fingerprints)} alert fingerprints, 1-${opts.batch} alerts per group; ` +
      `mix ${NEW_SHARE * 100}% new / ${REPEAT_SHARE * 100}% repeated / ${Math.round((1 - NEW_SHARE - REPEAT_SHARE) * 100)}% resolved`,
  );
  line(
    `run          concurrency ${opts.concurrency}, warm-up ${opts.warmup} s, measured ${r.measuredSeconds} s; ` +
      `database ${r.database}, queue prefix ${r.prefix}`,
  );
  line(
    `sent         ${fmt(m.requests)} requests in the measured phase: ${fmt(m.kinds.new)} new, ` +
      `${fmt(m.kinds.repeat)} repeated, ${fmt(m.kinds.resolve)} resolved; ` +
      `${fmt(m.okRequests ? m.okAlerts / m.okRequests : 0, 1)} alerts per accepted request`,
  );
  line();
  line(`requests/s   ${fmt(rps, 1)}`);
  line(
    `alerts/s     ${fmt(alertsPerSecond, 1)} sustained (alerts in 2xx answers completed in the measured phase)`,
  );
  line(
    `latency ms   p50 ${fmt(p50, 1)}  p90 ${fmt(p90, 1)}  p99 ${fmt(p99, 1)}  max ${fmt(max, 1)}  ` +
      `(server-side mean of 2xx ${fmt(r.serverSide.count ? (r.serverSide.sum / r.serverSide.count) * 1000 : Number.NaN, 1)})`,
  );
  const failures = top(m.failures, 20);
  line(
    `non-2xx      ${failures.length === 0 ? 'none' : failures.map(([k, v]) => `${k}: ${fmt(v)}`).join(', ')}` +
      (stats.failures.size > 0
        ? `  (all phases: ${top(stats.failures, 20)
            .map(([k, v]) => `${k}: ${fmt(v)}`)
            .join(', ')})`
        : ''),
  );
  line();
  line(
    `loss check   answered 2xx: ${fmt(stats.ackedDeliveryIds.length)} deliveries / ${fmt(stats.ackedAlerts)} alerts; ` +
      `in alert_deliveries: ${fmt(r.db.deliveries)} deliveries / ${fmt(r.db.alerts)} alerts`,
  );
  line(
    `             answered ids found in Postgres: ${fmt(r.db.ackedFound)} / ${fmt(stats.ackedDeliveryIds.length)} ` +
      `→ ${loss === 0 && lostDeliveries === 0 ? 'zero loss' : `LOST ${fmt(lostDeliveries)} deliveries / ${fmt(loss)} alerts`}` +
      (r.db.deliveries > stats.ackedDeliveryIds.length
        ? ` (${fmt(r.db.deliveries - stats.ackedDeliveryIds.length)} stored without a 2xx answer)`
        : '') +
      (stats.countMismatches > 0 ? `; ${fmt(stats.countMismatches)} answers counted other than sent` : ''),
  );
  line(
    `incidents    ${fmt(r.incidents.total)} opened (${fmt(stats.openedAnswered)} per the answers), ${fmt(r.incidents.resolved)} resolved; ` +
      `${fmt(r.incidents.attachments)} incident_alerts rows, ${fmt(r.incidents.events)} timeline events`,
  );
  const slackTotal = [...r.slack.calls.values()].reduce((a, b) => a + b, 0);
  line(
    `slack        ${fmt(slackTotal)} calls (${top(r.slack.calls, 10)
      .map(([k, v]) => `${k} ${fmt(v)}`)
      .join(', ')}); cards for ${fmt(r.incidents.withCard)}/${fmt(r.incidents.total)} incidents; ` +
      (r.slack.backlog === 0
        ? `queue drained ${fmt((r.slack.settledMs ?? 0) / 1000, 1)} s after the load`
        : `${fmt(r.slack.backlog)} sync jobs still queued after ${opts.settle} s`),
  );
  line();
  const wall = (r.cpu.end.at - r.cpu.start.at) / 1000;
  const cpuParts = [...r.cpu.end.seconds]
    .map(([k, v]) => [k, (v - (r.cpu.start.seconds.get(k) ?? 0)) / wall] as const)
    .sort((a, b) => b[1] - a[1]);
  const accounted = cpuParts.reduce((a, [, v]) => a + v, 0);
  const { machine: m0, appThread: t0 } = r.cpu.start;
  const { machine: m1, appThread: t1 } = r.cpu.end;
  const machineBusy = m0 && m1 ? (m1.busy - m0.busy) / wall : Number.NaN;
  line(
    `cpu          cores busy in the measured phase: ${cpuParts.map(([k, v]) => `${k} ${fmt(v, 2)}`).join(', ')}` +
      (m1
        ? `, everything else ${fmt(Math.max(0, machineBusy - accounted), 2)}; machine ${fmt(machineBusy, 2)} of ${m1.cores}`
        : ''),
  );
  if (t0 && t1) {
    line(
      `             app event-loop thread: on a CPU ${fmt(((t1.run - t0.run) / wall) * 100)}% of the time, ` +
        `runnable but waiting for a CPU ${fmt(((t1.wait - t0.wait) / wall) * 100)}%`,
    );
  }
  if (r.activity.samples > 0) {
    const perSample = (n: number) => n / r.activity.samples;
    const active = r.activity.byState.get('active') ?? 0;
    line(
      `postgres     app connections on average: ${top(r.activity.byState, 5)
        .map(([k, v]) => `${k} ${fmt(perSample(v), 1)}`)
        .join(', ')}`,
    );
    line(
      `             active ones wait on: ${top(r.activity.byWait, 6)
        .map(([k, v]) => `${k} ${fmt((v / Math.max(1, active)) * 100)}%`)
        .join(', ')}`,
    );
    line('             busy connections by statement (avg connections):');
    for (const [query, n] of top(r.activity.byQuery, 10)) {
      line(`             ${fmt(perSample(n), 2).padStart(5)}  ${query}`);
    }
  }
  line();
  const passThroughput = alertsPerSecond >= TARGET_ALERTS_PER_SECOND;
  const passLatency = p99 < TARGET_P99_MS;
  const passLoss = loss === 0 && lostDeliveries === 0;
  const pass = passThroughput && passLatency && passLoss && m.failures.size === 0;
  line(
    `verdict      ${pass ? 'PASS' : 'FAIL'}: ${fmt(alertsPerSecond)} alerts/s ${passThroughput ? '≥' : '<'} ${fmt(
      TARGET_ALERTS_PER_SECOND,
    )}, p99 ${fmt(p99, 1)} ms ${passLatency ? '<' : '≥'} ${TARGET_P99_MS} ms, ` +
      `${passLoss ? 'zero loss' : `${fmt(loss)} alerts lost`}` +
      (m.failures.size > 0
        ? `, ${fmt([...m.failures.values()].reduce((a, b) => a + b, 0))} failed requests`
        : ''),
  );
  process.stdout.write(`${out.join('\n')}\n`);
  return { lost: !passLoss };
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const opts = readOptions();
  const baseUrl = new URL(
    process.env.BENCH_DATABASE_URL ??
      process.env.DATABASE_URL ??
      'postgres://postgres@127.0.0.1:5432/postgres',
  );
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const database = `ai_sre_bench_${process.pid}`;
  const dbUrl = new URL(baseUrl);
  dbUrl.pathname = `/${database}`;
  const prefix = `ai-sre-bench-${process.pid}-${randomBytes(3).toString('hex')}`;
  const token = randomBytes(24).toString('hex');

  let stub: SlackStub | null = null;
  let app: AppProcess | null = null;
  let pool: pg.Pool | null = null;
  let exitCode = 0;
  // Ctrl-C stops the load and still cleans up (the app runs in its own process group, so only we stop it)
  const abort = new AbortController();
  process.once('SIGINT', () => {
    process.stderr.write('bench: interrupted; cleaning up\n');
    abort.abort();
  });
  try {
    await dropDatabase(dbUrl.toString()); // a leftover of an earlier run with the same pid
    stub = await startSlackStub();
    const port = await findFreePort();
    process.stderr.write(`bench: starting the app on 127.0.0.1:${port} (database ${database})\n`);
    app = startApp(
      {
        DATABASE_URL: dbUrl.toString(),
        REDIS_URL: redisUrl,
        QUEUE_PREFIX: prefix,
        HOST: '127.0.0.1',
        PORT: String(port),
        WEBHOOK_TOKEN: token,
        LOG_LEVEL: 'warn',
        NODE_ENV: 'production',
        MIGRATE_ON_START: 'true',
        SLACK_BOT_TOKEN: opts.withoutSlack ? '' : 'xoxb-bench-0000',
        SLACK_SIGNING_SECRET: opts.withoutSlack ? '' : randomBytes(16).toString('hex'),
        SLACK_API_URL: stub.url,
        SLACK_APP_TOKEN: '',
        SLACK_RETRY_BASE_MS: '200',
        // intake and Slack only; `--app-env RUNBOOKS_DIR=./runbooks` adds diagnosis of every new incident
        RUNBOOKS_DIR: 'test/fixtures/runbooks-none',
        ...opts.appEnv,
      },
      opts,
    );
    await waitForReady(app, 60_000, abort.signal);
    pool = new pg.Pool({ connectionString: dbUrl.toString(), max: 2, application_name: 'ai-sre-bench' });

    const random = seededRandom(opts.seed);
    const groups = buildGroups(opts, random);
    const plan = createPlanner(groups, random);
    const running = app;
    const activePool = pool;
    /** taken when the measured phase starts */
    const baseline: { cpu: CpuSnapshot; metrics: Map<string, number>; sampler: ActivitySampler | null } = {
      cpu: readCpu(app.child.pid),
      metrics: new Map(),
      sampler: null,
    };
    process.stderr.write(
      `bench: ready; warming up for ${opts.warmup} s with ${opts.concurrency} connections\n`,
    );
    const { stats, measuredSeconds } = await runLoad(running, token, opts, plan, {
      signal: abort.signal,
      async onMeasureStart() {
        baseline.metrics = await readMetrics(running.port).catch(() => new Map<string, number>());
        baseline.cpu = readCpu(running.child.pid);
        baseline.sampler = sampleActivity(activePool, database);
      },
    });
    const cpuEnd = readCpu(app.child.pid);
    const metricsEnd = await readMetrics(app.port).catch(() => new Map<string, number>());
    const activity = baseline.sampler
      ? await baseline.sampler.stop()
      : { samples: 0, byState: new Map(), byWait: new Map(), byQuery: new Map() };
    const metricsStart = baseline.metrics;
    if (app.exited) {
      throw new Error(
        `the app exited during the load (${JSON.stringify(app.exited)}):\n${app.lastLines.join('\n')}`,
      );
    }
    const metric = (map: Map<string, number>, key: string) => map.get(key) ?? 0;
    const durationKey = 'ai_sre_webhook_duration_seconds_';
    const serverSide = {
      count:
        metric(metricsEnd, `${durationKey}count{source="alertmanager"}`) -
        metric(metricsStart, `${durationKey}count{source="alertmanager"}`),
      sum:
        metric(metricsEnd, `${durationKey}sum{source="alertmanager"}`) -
        metric(metricsStart, `${durationKey}sum{source="alertmanager"}`),
    };

    // the Slack cards follow the load through the queue: give them `settle` seconds to catch up
    process.stderr.write(`bench: load done; waiting up to ${opts.settle} s for the Slack queue to drain\n`);
    const loadEnded = performance.now();
    let backlog = Number.NaN;
    let settledMs: number | null = null;
    while (true) {
      const current = await readMetrics(app.port).catch(() => new Map<string, number>());
      backlog = ['waiting', 'active', 'delayed'].reduce(
        (n, state) => n + metric(current, `ai_sre_queue_jobs{queue="slack",state="${state}"}`),
        0,
      );
      if (backlog === 0) {
        settledMs = performance.now() - loadEnded;
        break;
      }
      if (performance.now() - loadEnded > opts.settle * 1000 || app.exited || abort.signal.aborted) break;
      await sleep(250);
    }

    const deliveries = await pool.query<{ n: number; alerts: number }>(
      'SELECT count(*)::int AS n, COALESCE(sum(alert_count), 0)::int AS alerts FROM alert_deliveries',
    );
    const acked = await pool.query<{ n: number; alerts: number }>(
      'SELECT count(*)::int AS n, COALESCE(sum(alert_count), 0)::int AS alerts FROM alert_deliveries WHERE id = ANY($1::bigint[])',
      [stats.ackedDeliveryIds],
    );
    const incidents = await pool.query<{
      total: number;
      resolved: number;
      with_card: number;
      attachments: number;
      events: number;
    }>(
      `SELECT (SELECT count(*)::int FROM incidents) AS total,
              (SELECT count(*)::int FROM incidents WHERE status = 'resolved') AS resolved,
              (SELECT count(*)::int FROM slack_messages) AS with_card,
              (SELECT count(*)::int FROM incident_alerts) AS attachments,
              (SELECT count(*)::int FROM timeline_events) AS events`,
    );
    const slackCalls = new Map<string, number>();
    for (const call of stub.calls) slackCalls.set(call.method, (slackCalls.get(call.method) ?? 0) + 1);
    const d = deliveries.rows[0];
    const a = acked.rows[0];
    const i = incidents.rows[0];
    const { lost } = printReport({
      opts,
      database,
      prefix,
      stats,
      measuredSeconds,
      groups,
      cpu: { start: baseline.cpu, end: cpuEnd },
      activity,
      serverSide,
      db: {
        deliveries: d?.n ?? 0,
        alerts: d?.alerts ?? 0,
        ackedFound: a?.n ?? 0,
        ackedFoundAlerts: a?.alerts ?? 0,
      },
      incidents: {
        total: i?.total ?? 0,
        resolved: i?.resolved ?? 0,
        withCard: i?.with_card ?? 0,
        attachments: i?.attachments ?? 0,
        events: i?.events ?? 0,
      },
      slack: { calls: slackCalls, backlog, settledMs },
    });
    if (lost) exitCode = 1;
    const logged = top(app.logCounts, 10).filter(([k]) => !k.startsWith('info '));
    if (logged.length > 0) {
      process.stdout.write(`app log      ${logged.map(([k, v]) => `${fmt(v)}× "${k}"`).join('; ')}\n`);
    }
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    exitCode = 1;
  } finally {
    await pool?.end().catch(() => {});
    if (app) {
      await stopApp(app);
      const { exited } = app;
      if (exited && exited.code !== 0) {
        process.stderr.write(
          `bench: the app exited with ${exited.code ?? exited.signal}${app.stopping ? ' on SIGTERM' : ''}:\n` +
            `${app.lastLines.slice(-5).join('\n')}\n`,
        );
        exitCode = 1;
      }
      if (app.profileDir) process.stdout.write(`cpu profile  ${app.profileDir} (open in Chrome DevTools)\n`);
    }
    await stub?.close().catch(() => {});
    if (opts.keep) {
      process.stdout.write(
        `kept         ${dbUrl.toString()} (drop it with DROP DATABASE ${database} WITH (FORCE))\n`,
      );
    } else {
      await dropDatabase(dbUrl.toString()).catch((err: unknown) =>
        process.stderr.write(`bench: could not drop ${database}: ${(err as Error).message}\n`),
      );
    }
    const deleted = await deleteKeys(`${prefix}:*`, redisUrl).catch((err: unknown) => {
      process.stderr.write(`bench: could not delete Redis keys ${prefix}:*: ${(err as Error).message}\n`);
      return 0;
    });
    process.stderr.write(`bench: cleaned up (${deleted} Redis keys deleted)\n`);
  }
  return exitCode;
}

main().then(
  (code) => {
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
