/**
 * `npm run bench:scale` — the scale-out proof (issue 9): does a second worker process add throughput, and does the
 * pair lose or repeat nothing when a worker and a web process are SIGKILLed under load?
 *
 * Phase A runs the bot as 1 web + 1 worker process, phase B as 2 web + 2 worker processes (bench/chaos-cluster.ts: a
 * private Redis, the database behind a TCP proxy, the Slack stand-in), each on a fresh database, under the same
 * open-loop load (bench/scale-load.ts): a new service fires every 1/rate s (a NEW incident), and firing services are
 * re-delivered and flap. Every incident runs a runbook of several slow, IO-bound health checks (a local server answers
 * each after 200–500 ms) and escalates (on-call pages by Slack DM). Each worker runs at most DIAGNOSTICS_CONCURRENCY
 * checks at once, so one worker cannot keep up with the stream: phase A is worker-bound.
 *
 * Measured over a fixed window after warm-up: incidents decided per second, alerts accepted per second, alert → card
 * and alert → decision latency. In phase B, after the window, worker-1 and web-1 are SIGKILLed while the load goes on
 * (the sender fails over); then the load stops, the system settles and the chaos suite's invariants are checked.
 * Exit code 1 when an invariant fails (a missed ratio target is reported, not failed). See bench/README.md.
 *
 *   tsx bench/scale.ts [--short] [--rate N] [--diagnostics-concurrency N] [--seed N] [--verbose]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { type Cluster, pollUntil, sleep, startCluster } from './chaos-cluster.js';
import { type Check, checkInvariants, settled } from './chaos-invariants.js';
import { seededRandom } from './lib/common.js';
import { fmt, percentile } from './report.js';
import { type Load, SCALE_ALERTNAMES, startLoad } from './scale-load.js';

/** the workers' BullMQ lock (and stalled check): a killed worker's jobs are taken over after about this long; ms */
const WORKER_LOCK_MS = 2_000;
/** health checks per incident; each is one diagnostic job */
const CHECKS = 4;
/** each check's answer comes after a delay drawn once per (service, check) from this range; milliseconds */
const CHECK_DELAY_MS = [200, 500] as const;
/** a delivery is retried (Alertmanager-like, failing over) for at most this long; milliseconds */
const RETRY_FOR_MS = 120_000;
/** target of issue 9: incidents decided per second with two workers against one */
const TARGET_RATIO = 1.6;

interface Timing {
  /** load before the window (incidents start flowing, queues fill); seconds */
  warmup: number;
  /** the measured window; seconds */
  window: number;
  /** phase B: load after the kills; seconds */
  fault: number;
  /** phase B: wait at most this long for every incident to settle; seconds */
  settle: number;
}
const SHORT: Timing = { warmup: 8, window: 20, fault: 8, settle: 180 };
const FULL: Timing = { warmup: 20, window: 60, fault: 20, settle: 300 };

interface Options {
  short: boolean;
  /** new incidents per second */
  rate: number;
  /** re-deliveries per second */
  redeliveries: number;
  diagnosticsConcurrency: number;
  seed: number;
  verbose: boolean;
}

function readOptions(): Options {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      short: { type: 'boolean', default: false },
      rate: { type: 'string', default: '3.5' },
      redeliveries: { type: 'string', default: '6' },
      'diagnostics-concurrency': { type: 'string', default: '2' },
      seed: { type: 'string', default: '1' },
      verbose: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: tsx bench/scale.ts [--short] [--rate N] [--redeliveries N] [--diagnostics-concurrency N] [--seed N] [--verbose]\n',
    );
    process.exit(0);
  }
  const number = (name: string, raw: string, min: number, max: number, integer: boolean) => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n)))
      throw new Error(
        `--${name}: expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got "${raw}"`,
      );
    return n;
  };
  return {
    short: values.short,
    rate: number('rate', values.rate, 0.1, 100, false),
    redeliveries: number('redeliveries', values.redeliveries, 0, 500, false),
    diagnosticsConcurrency: number(
      'diagnostics-concurrency',
      values['diagnostics-concurrency'],
      1,
      1000,
      true,
    ),
    seed: number('seed', values.seed, 0, 2 ** 31, true),
    verbose: values.verbose,
  };
}

/** One default runbook: CHECKS http_checks of the service's health URL (each its own path, so its own delay). */
function runbookYaml(): string {
  const ids = Array.from({ length: CHECKS }, (_, i) => `check_${i + 1}`);
  return [
    'id: scale-triage',
    'name: Scale triage',
    'description: Generated by bench/scale.ts; slow IO-bound health checks, then escalate.',
    'default: true',
    'diagnostics:',
    ...ids.flatMap((id, i) => [
      `  - id: ${id}`,
      '    type: http_check',
      '    timeout: 5s',
      '    config:',
      `      urls: ["{{service.health_url}}/c${i + 1}"]`,
      '    interpret:',
      '      critical: value > 0.0',
    ]),
    'decision:',
    '  - id: down',
    '    description: The service does not answer its health checks',
    '    likelihood: 1',
    `    when: ${ids.map((id) => `diagnostics.${id}.status == 'critical'`).join(' || ')}`,
    '    escalate: { reason: default }',
    '  - id: unclear',
    '    description: Nothing confirmed',
    '    likelihood: 2',
    `    when: ${ids.map((id) => `diagnostics.${id}.status != 'critical'`).join(' && ')}`,
    '    escalate: { reason: default }',
    'escalation:',
    '  team: sre',
    '',
  ].join('\n');
}

/** busy CPU seconds of the whole machine (every core) */
const machineCpuSeconds = () =>
  cpus().reduce((n, { times: c }) => n + c.user + c.nice + c.sys + c.irq, 0) / 1000;

interface QueueSample {
  /** diagnostic checks waiting (not yet run) */
  diagnostics: number;
  /** runs waiting to start diagnosing */
  runbooks: number;
}

/** waiting jobs of the queues the workers drain; null when Redis does not answer */
function queueProbe(cluster: Cluster) {
  const open = (name: string) => {
    const queue = new Queue(name, {
      prefix: cluster.prefix,
      connection: { url: cluster.redis.url, maxRetriesPerRequest: 1 },
    });
    queue.on('error', () => {});
    return queue;
  };
  const diagnostics = open('diagnostics');
  const runbooks = open('runbooks');
  return {
    async sample(): Promise<QueueSample | null> {
      const [d, r] = await Promise.all([
        diagnostics.getJobCounts('waiting', 'prioritized'),
        runbooks.getJobCounts('waiting', 'prioritized'),
      ]).catch(() => [null, null]);
      if (!d || !r) return null;
      return {
        diagnostics: (d.waiting ?? 0) + (d.prioritized ?? 0),
        runbooks: (r.waiting ?? 0) + (r.prioritized ?? 0),
      };
    },
    close: () => Promise.all([diagnostics.close(), runbooks.close()]),
  };
}

interface IncidentTimes {
  id: number;
  service: string;
  /** epoch milliseconds; null while undecided */
  decidedAt: number | null;
}

async function readIncidents(cluster: Cluster, services: string[]): Promise<IncidentTimes[]> {
  const { rows } = await cluster.pool.query<{ id: number; service: string; decided: number | null }>(
    `SELECT i.id::int, i.service, (extract(epoch FROM min(e.decided_at)) * 1000)::float8 AS decided
       FROM incidents i LEFT JOIN runbook_executions e ON e.incident_id = i.id
      WHERE i.service = ANY($1) GROUP BY i.id ORDER BY i.id`,
    [services],
  );
  return rows.map((r) => ({ id: r.id, service: r.service, decidedAt: r.decided }));
}

/** incident id → when the stand-in received the chat.postMessage of its card (epoch ms; the first one) */
function cardTimes(cluster: Cluster): Map<number, number> {
  const cards = new Map<number, number>();
  for (const call of cluster.stub.calls) {
    if (call.method !== 'chat.postMessage' || call.args.thread_ts !== undefined) continue;
    const channel = String(call.args.channel ?? '');
    // page DMs carry the incident's ref in a header too; only channel posts are cards
    if (channel.startsWith('D') || channel.startsWith('U')) continue;
    const blocks = Array.isArray(call.args.blocks)
      ? (call.args.blocks as { type?: string; text?: { text?: string } }[])
      : [];
    const header = blocks.find((b) => b.type === 'header')?.text?.text ?? '';
    const id = /\bINC-(\d+)\b/.exec(header)?.[1];
    if (id && !cards.has(Number(id))) cards.set(Number(id), call.at);
  }
  return cards;
}

interface WindowFigures {
  seconds: number;
  decided: number;
  decidedPerSecond: number;
  alertsPerSecond: number;
  deliveriesPerSecond: number;
  opened: number;
  /** alert → card, over incidents whose first alert was accepted in the window; milliseconds */
  card: number[];
  /** alert → decided, same incidents; milliseconds */
  decision: number[];
  /** incidents opened in the window without a card / undecided when figures were taken */
  noCard: number;
  undecided: number;
  queueStart: QueueSample | null;
  queueEnd: QueueSample | null;
  queueMax: number;
  coresBusy: number;
}

async function measureWindow(
  cluster: Cluster,
  load: Load,
  services: string[],
  from: number,
  to: number,
  extra: Pick<WindowFigures, 'queueStart' | 'queueEnd' | 'queueMax' | 'coresBusy'>,
): Promise<WindowFigures> {
  const seconds = (to - from) / 1000;
  const inWindow = (at: number) => at >= from && at < to;
  const incidents = await readIncidents(cluster, services);
  const cards = cardTimes(cluster);
  const decided = incidents.filter((i) => i.decidedAt !== null && inWindow(i.decidedAt)).length;
  const accepted = load.accepted.filter((a) => inWindow(a.at));
  const card: number[] = [];
  const decision: number[] = [];
  let [opened, noCard, undecided] = [0, 0, 0];
  for (const incident of incidents) {
    const first = load.firstAcceptedAt.get(incident.service);
    if (first === undefined || !inWindow(first)) continue;
    opened += 1;
    const cardAt = cards.get(incident.id);
    if (cardAt === undefined) noCard += 1;
    else card.push(cardAt - first);
    if (incident.decidedAt === null) undecided += 1;
    else decision.push(incident.decidedAt - first);
  }
  return {
    seconds,
    decided,
    decidedPerSecond: decided / seconds,
    alertsPerSecond: accepted.reduce((n, a) => n + a.alerts, 0) / seconds,
    deliveriesPerSecond: accepted.length / seconds,
    opened,
    card,
    decision,
    noCard,
    undecided,
    ...extra,
  };
}

/** samples the queues every second from now until the returned function is called */
function watchQueues(probe: ReturnType<typeof queueProbe>) {
  let running = true;
  let max = 0;
  let last: QueueSample | null = null;
  const loop = (async () => {
    while (running) {
      last = (await probe.sample()) ?? last;
      if (last) max = Math.max(max, last.diagnostics);
      await sleep(1_000);
    }
  })();
  return {
    now: () => probe.sample(),
    async stop() {
      running = false;
      await loop;
      return max;
    },
  };
}

interface PhaseResult {
  name: string;
  webs: number;
  workers: number;
  window: WindowFigures;
  /** phase B: the fault segment (after the kills), and the checks */
  afterKill?: WindowFigures;
  checks: Check[];
}

interface PhaseSetup {
  name: string;
  webs: number;
  workers: number;
  /** kill worker-1 and web-1 after the window, then settle and check the invariants */
  chaos: boolean;
}

async function runPhase(
  setup: PhaseSetup,
  opts: Options,
  timing: Timing,
  runbooksDir: string,
  /** what Ctrl-C must close: the phase's cluster, also while it is still starting */
  register: (closer: { close(): Promise<void> } | null) => void,
): Promise<PhaseResult> {
  const loadSeconds = timing.warmup + timing.window + (setup.chaos ? timing.fault : 0);
  // enough fresh services for the whole load, and a few more
  const count = Math.ceil(opts.rate * loadSeconds * 1.1) + 10;
  const tag = setup.name.toLowerCase().replace(/[^a-z0-9]+/g, '');
  const services = Array.from({ length: count }, (_, i) => `scale-${tag}-${String(i + 1).padStart(4, '0')}`);
  const startedAt = Date.now();
  process.stdout.write(
    `\n== phase ${setup.name}: ${setup.webs} web + ${setup.workers} worker process(es); starting the cluster\n`,
  );
  const starting = startCluster({
    verbose: opts.verbose,
    workerLockMs: WORKER_LOCK_MS,
    services,
    webs: setup.webs,
    workers: setup.workers,
    label: 'scale',
    env: {
      RUNBOOKS_DIR: runbooksDir,
      DIAGNOSTICS_CONCURRENCY: String(opts.diagnosticsConcurrency),
    },
  });
  let closing: Promise<void> | null = null;
  const closeOnce = (c: Cluster) => {
    closing ??= c.close();
    return closing;
  };
  register({
    async close() {
      const c = await starting.catch(() => null);
      if (c) await closeOnce(c);
    },
  });
  const cluster = await starting;
  const random = seededRandom(opts.seed);
  const [low, high] = CHECK_DELAY_MS;
  for (const service of services) {
    for (let c = 1; c <= CHECKS; c++)
      cluster.health.delays.set(`${service}/c${c}`, Math.round(low + random() * (high - low)));
  }
  process.stdout.write(
    `  database ${cluster.database}, Redis port ${cluster.redis.port}, prefix ${cluster.prefix}; ` +
      `${((Date.now() - startedAt) / 1000).toFixed(1)} s to start\n`,
  );
  const probe = queueProbe(cluster);
  const checks: Check[] = [];
  const killedBefore = new Set<unknown>();
  try {
    const load = startLoad({
      services,
      newPerSecond: opts.rate,
      redeliveriesPerSecond: opts.redeliveries,
      activeForMs: 30_000,
      concurrency: 32,
      random,
      ports: () => cluster.webs.map((w) => w.port),
      token: cluster.token,
      retryForMs: RETRY_FOR_MS,
    });
    await sleep(timing.warmup * 1000);
    const watch = watchQueues(probe);
    const queueStart = await watch.now();
    const cpu0 = machineCpuSeconds();
    const from = Date.now();
    await sleep(timing.window * 1000);
    const to = Date.now();
    const coresBusy = (machineCpuSeconds() - cpu0) / ((to - from) / 1000);
    const queueEnd = await watch.now();
    const queueMax = await watch.stop();
    process.stdout.write(
      `  window ${timing.window} s measured after ${timing.warmup} s warm-up; checks waiting ${queueStart?.diagnostics ?? '?'} → ` +
        `${queueEnd?.diagnostics ?? '?'} (most ${queueMax}), runs waiting to start ${queueStart?.runbooks ?? '?'} → ${queueEnd?.runbooks ?? '?'}\n`,
    );
    if (!setup.chaos) {
      await load.stop();
      const window = await measureWindow(cluster, load, services, from, to, {
        queueStart,
        queueEnd,
        queueMax,
        coresBusy,
      });
      return { ...setup, window, checks };
    }

    // ---- the faults: one worker and one web process die while the load goes on
    const inFlight = await pollUntil(async () => {
      const { rows } = await cluster.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM runbook_executions WHERE status = 'diagnosing'`,
      );
      return rows[0]?.n ?? 0;
    }, 10_000);
    const worker = cluster.workers[0];
    const web = cluster.webs[0];
    if (!worker || !web) throw new Error('phase B needs a worker and a web process to kill');
    for (const bot of [...cluster.webs, ...cluster.workers]) if (bot.exited) killedBefore.add(bot);
    await Promise.all([cluster.kill(worker), cluster.kill(web)]);
    const killedAt = Date.now();
    process.stdout.write(
      `  did    SIGKILLed ${worker.name} (pid ${worker.child.pid}) with ${inFlight} runs diagnosing, and ${web.name} ` +
        `(pid ${web.child.pid}, port ${web.port}); load goes on for ${timing.fault} s\n`,
    );
    const cpu1 = machineCpuSeconds();
    await sleep(timing.fault * 1000);
    const faultEnd = Date.now();
    const faultCores = (machineCpuSeconds() - cpu1) / ((faultEnd - killedAt) / 1000);
    await load.stop();
    const s = load.sender.stats;
    process.stdout.write(
      `  did    sent ${s.deliveries} deliveries: ${s.accepted} accepted, ${s.gaveUp} given up, retried ` +
        `${[...s.retried].map(([k, n]) => `${k} ×${n}`).join(', ') || 'none'}; ${load.skipped()} slots skipped (in flight full)\n`,
    );
    const window = await measureWindow(cluster, load, services, from, to, {
      queueStart,
      queueEnd,
      queueMax,
      coresBusy,
    });

    // ---- settle: every incident final, paged, shown in Slack, and no job waiting or running
    const settleStart = Date.now();
    let quietPolls = 0;
    let last = { done: false, pending: '' };
    while (Date.now() - settleStart < timing.settle * 1000) {
      last = await settled(cluster.pool, services).catch((e: Error) => ({ done: false, pending: e.message }));
      const busy = await cluster.busyJobs();
      quietPolls = last.done && busy === 0 ? quietPolls + 1 : 0;
      if (quietPolls >= 3) break;
      await sleep(1_000);
    }
    process.stdout.write(
      quietPolls >= 3
        ? `  did    settled ${((Date.now() - settleStart) / 1000).toFixed(1)} s after the load (the surviving worker drained the backlog)\n`
        : `  did    NOT settle within ${timing.settle} s (${last.pending}); checking anyway\n`,
    );
    // the fault segment's figures once everything settled, so its cards and decisions are all in
    const afterKill = await measureWindow(cluster, load, services, killedAt, faultEnd, {
      queueStart: null,
      queueEnd: null,
      queueMax: 0,
      coresBusy: faultCores,
    });
    const after = s.attempts.filter((a) => a.at > killedAt);
    const toDead = after.filter((a) => a.web === 0 && a.status === 0).length;
    const byOther = after.filter((a) => a.web === 1 && a.status >= 200 && a.status < 300).length;
    checks.push(
      {
        name: 'the worker died while diagnostics were in flight',
        pass: inFlight > 0,
        detail: `${inFlight} runbook executions diagnosing when ${worker.name} was killed`,
      },
      {
        name: 'the sender failed over to the other web process',
        pass: toDead > 0 && byOther > 0 && s.gaveUp === 0,
        detail: `after the kill: ${toDead} attempts refused by ${web.name}, ${byOther} accepted by web-2; ${s.gaveUp} given up`,
      },
      ...(await checkInvariants(cluster.pool, cluster.stub, services, s.acks)),
    );
    const crashed = [...cluster.webs, ...cluster.workers].filter(
      (b) => b.exited && b !== worker && b !== web && !killedBefore.has(b),
    );
    checks.push({
      name: 'no bot process crashed',
      pass: crashed.length === 0,
      detail:
        `2 killed by the bench, ${crashed.length} exited by themselves` +
        crashed
          .map((b) => `; ${b.name} ${JSON.stringify(b.exited)}: ${b.lastLines.slice(-3).join(' | ')}`)
          .join(''),
    });
    for (const c of checks) process.stdout.write(`  ${c.pass ? 'PASS' : 'FAIL'}   ${c.name}: ${c.detail}\n`);
    return { ...setup, window, afterKill, checks };
  } finally {
    await probe.close().catch(() => {});
    await closeOnce(cluster);
    register(null);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// the report

const ms = (values: number[], q: number) => fmt(percentile(values, q));

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function figuresRow(label: string, f: WindowFigures): string[] {
  return [
    label,
    `${fmt(f.seconds)} s`,
    fmt(f.decidedPerSecond, 2),
    fmt(f.alertsPerSecond, 1),
    `${ms(f.card, 0.5)} / ${ms(f.card, 0.99)}`,
    `${ms(f.decision, 0.5)} / ${ms(f.decision, 0.99)}`,
    `${f.opened} (${f.undecided} undecided, ${f.noCard} no card)`,
    f.queueStart && f.queueEnd ? `${f.queueStart.diagnostics} → ${f.queueEnd.diagnostics}` : '',
    fmt(f.coresBusy, 2),
  ];
}

function report(results: PhaseResult[], opts: Options, timing: Timing): boolean {
  const a = results.find((r) => r.name === 'A');
  const b = results.find((r) => r.name === 'B');
  const rows: string[][] = [];
  for (const r of results) {
    rows.push(figuresRow(`${r.name}: ${r.webs} web + ${r.workers} worker`, r.window));
    if (r.afterKill) rows.push(figuresRow(`${r.name} after the kills (1 + 1)`, r.afterKill));
  }
  const checks = results.flatMap((r) => r.checks);
  const failed = checks.filter((c) => !c.pass);
  const ratio = a && b ? b.window.decidedPerSecond / a.window.decidedPerSecond : Number.NaN;
  const alertRatio = a && b ? b.window.alertsPerSecond / a.window.alertsPerSecond : Number.NaN;
  process.stdout.write(
    `\n== summary (${opts.short ? 'short' : 'full'}: ${timing.warmup} s warm-up, ${timing.window} s window; ` +
      `${fmt(opts.rate, 1)} new incidents/s + ${fmt(opts.redeliveries, 1)} re-deliveries/s offered in both phases)\n` +
      `How phase A is made worker-bound: each incident runs ${CHECKS} health checks answering after ` +
      `${CHECK_DELAY_MS[0]}–${CHECK_DELAY_MS[1]} ms, and a worker runs at most DIAGNOSTICS_CONCURRENCY=` +
      `${opts.diagnosticsConcurrency} at once: about ${fmt(opts.diagnosticsConcurrency / (((CHECK_DELAY_MS[0] + CHECK_DELAY_MS[1]) / 2 / 1000) * CHECKS), 2)} ` +
      `incidents/s per worker against ${fmt(opts.rate, 1)} offered (the checks-waiting column grows when a phase is saturated).\n\n` +
      table(
        [
          'phase',
          'window',
          'decided/s',
          'alerts/s',
          'alert→card p50/p99 ms',
          'alert→decided p50/p99 ms',
          'incidents opened in window',
          'checks waiting',
          'cores busy',
        ],
        rows,
      ) +
      `\n\nthroughput B/A (incidents decided per second, windows before the kills): ${fmt(ratio, 2)}× — target ≥ ${TARGET_RATIO}×: ` +
      `${ratio >= TARGET_RATIO ? 'MET' : 'NOT MET'}\n` +
      `alerts accepted per second B/A: ${fmt(alertRatio, 2)}× (the load is open-loop and the same in both phases, so ≈ 1×)\n` +
      `invariants (phase B, after SIGKILL of worker-1 and web-1): ${failed.length === 0 ? 'PASS' : 'FAIL'} ` +
      `(${checks.length - failed.length}/${checks.length} checks${failed.length ? `; failed: ${failed.map((c) => c.name).join('; ')}` : ''})\n` +
      `figures depend on the machine (${cpus().length} cores, shared by the bot, Postgres, Redis and this bench)\n`,
  );
  return failed.length === 0 && checks.length > 0;
}

async function main(): Promise<number> {
  const opts = readOptions();
  const timing = opts.short ? SHORT : FULL;
  let current: { close(): Promise<void> } | null = null;
  let dir: string | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`bench:scale: ${signal}; cleaning up\n`);
    // the bot processes are in their own process groups; close() stops them (waiting for a cluster still starting),
    // drops the database, kills Redis
    void Promise.allSettled([
      current?.close(),
      dir ? rm(dir, { recursive: true, force: true }) : undefined,
    ]).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  dir = await mkdtemp(join(tmpdir(), 'ai-sre-scale-runbooks-'));
  try {
    await writeFile(join(dir, 'scale-triage.yml'), runbookYaml());
    process.stdout.write(
      `bench:scale: ${opts.short ? 'short' : 'full'} run; ${SCALE_ALERTNAMES.length} alert groups per service, ` +
        `${CHECKS} checks per incident, DIAGNOSTICS_CONCURRENCY=${opts.diagnosticsConcurrency} per worker\n`,
    );
    const results: PhaseResult[] = [];
    const register = (closer: { close(): Promise<void> } | null) => {
      current = closer;
    };
    for (const setup of [
      { name: 'A', webs: 1, workers: 1, chaos: false },
      { name: 'B', webs: 2, workers: 2, chaos: true },
    ]) {
      results.push(await runPhase(setup, opts, timing, dir, register));
    }
    return report(results, opts, timing) ? 0 : 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench:scale: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
