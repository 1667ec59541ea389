/**
 * `npm run chaos` — scripted faults against a running bot, each followed by the invariants it must keep.
 *
 * On loopback only: a private Redis (no persistence), the bot's own database on the shared Postgres reached through a
 * TCP proxy (so Postgres can be "blocked" without touching the server), the Slack stand-in, a health endpoint that
 * fails for every chaos service (the default triage runbook diagnoses and escalates, and on-call pages), and the bot
 * as two `--role web` and two `--role worker` child processes. Scenarios run one after the other on their own
 * services; after each, the suite waits for the system to settle and checks, against Postgres and the stand-in: no
 * accepted alert lost, no incident duplicated, no action repeated, every incident resolved or escalated (and paged),
 * the timeline complete and in order, one Slack card per incident with its thread complete and in order.
 * Exit code 1 on any FAIL. See bench/README.md.
 *
 *   tsx bench/chaos.ts [--short] [--only redis-restart,worker-kill] [--seed N] [--verbose]
 */
import { parseArgs } from 'node:util';
import { type Cluster, pollUntil, sleep, startCluster } from './chaos-cluster.js';
import { type Check, checkInvariants, settled } from './chaos-invariants.js';
import {
  type AlertGroup,
  buildGroups,
  createSender,
  type Delivery,
  deliveryOf,
  type Sender,
  seededRandom,
  stream,
} from './chaos-load.js';

interface Options {
  short: boolean;
  only: string[] | null;
  seed: number;
  verbose: boolean;
}

/** the sizes of a run: `--short` for CI, the full form for a longer look */
interface Scale {
  /** services per scenario (each has two alert groups) */
  services: number;
  /** group deliveries per stream */
  deliveries: number;
  /** how long a stream lasts; milliseconds */
  streamMs: number;
  /** how long a Redis, Postgres or Slack outage lasts; milliseconds */
  outageMs: number;
  /** copies of each delivery in the duplicate flood */
  floodCopies: number;
  /** wait at most this long for a scenario to settle; milliseconds */
  settleMs: number;
}

const SHORT: Scale = {
  services: 3,
  deliveries: 30,
  streamMs: 8_000,
  outageMs: 3_000,
  floodCopies: 4,
  settleMs: 120_000,
};
const FULL: Scale = {
  services: 8,
  deliveries: 120,
  streamMs: 30_000,
  outageMs: 8_000,
  floodCopies: 10,
  settleMs: 240_000,
};

/** the workers' BullMQ lock (and stalled check): a killed worker's jobs are taken over after about this long; ms */
const WORKER_LOCK_MS = 2_000;
/** the worker-kill scenario's health checks answer this late, so diagnostics are in flight when the worker dies; ms */
const SLOW_HEALTH_MS = 1_500;
/** a delivery is retried (Alertmanager-like) for at most this long; milliseconds */
const RETRY_FOR_MS = 120_000;
const ALERTNAMES = ['ChaosErrorRate', 'ChaosLatency'];

interface ScenarioRun {
  cluster: Cluster;
  scale: Scale;
  sender: Sender;
  groups: AlertGroup[];
  random: () => number;
  /** prints one line of what the scenario did */
  did(line: string): void;
}

interface Scenario {
  name: string;
  /** injects the fault while alerts flow; returns the scenario's own checks (on top of the invariants) */
  drive(run: ScenarioRun): Promise<Check[]>;
  /** puts the cluster back as it was (processes up) after the checks, for the next scenario */
  restore?(run: ScenarioRun): Promise<void>;
}

function streamOf(run: ScenarioRun, extra: { resolveShare?: number } = {}) {
  return stream(run.sender, run.groups, {
    count: run.scale.deliveries,
    durationMs: run.scale.streamMs,
    concurrency: 8,
    random: run.random,
    resolveShare: extra.resolveShare ?? 0.15,
  });
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

const SCENARIOS: Scenario[] = [
  {
    name: 'redis-restart',
    async drive(run) {
      const load = streamOf(run);
      await sleep(run.scale.streamMs / 3);
      await run.cluster.redis.kill();
      const downAt = Date.now();
      run.did(`SIGKILLed the private Redis (port ${run.cluster.redis.port}) mid-stream`);
      await sleep(run.scale.outageMs);
      const upAt = Date.now();
      await run.cluster.redis.start();
      run.did(`restarted Redis EMPTY after ${seconds(Date.now() - downAt)}`);
      await load;
      const during = run.sender.stats.attempts.filter((a) => a.at >= downAt && a.at <= upAt);
      const non2xx = during.filter((a) => a.status < 200 || a.status >= 300);
      return [
        {
          name: 'webhooks answered 2xx while Redis was down',
          pass: during.length > 0 && non2xx.length === 0,
          detail:
            `${during.length} answers during the outage, ${non2xx.length} not 2xx` +
            (non2xx.length
              ? ` (statuses ${[...new Set(non2xx.map((a) => a.status))].join(', ')}; 0 = no answer)`
              : ''),
        },
      ];
    },
  },
  {
    name: 'postgres-blocked',
    async drive(run) {
      const load = streamOf(run);
      await sleep(run.scale.streamMs / 3);
      await run.cluster.proxy.down();
      const downAt = Date.now();
      run.did(
        `took the Postgres proxy down (port ${run.cluster.proxy.port}): connections cut, new ones refused`,
      );
      await sleep(run.scale.outageMs);
      await run.cluster.proxy.up();
      const upAt = Date.now();
      run.did(`brought the proxy up again after ${seconds(upAt - downAt)}`);
      await load;
      const during = run.sender.stats.attempts.filter((a) => a.at >= downAt && a.at <= upAt);
      const refused = during.filter((a) => a.status === 503).length;
      const other = during.filter((a) => a.status !== 503 && (a.status < 200 || a.status >= 300));
      return [
        {
          name: 'webhooks answered 503 while Postgres was blocked; every delivery accepted on retry',
          pass: refused > 0 && other.length === 0 && run.sender.stats.gaveUp === 0,
          detail:
            `${during.length} answers during the outage: ${refused} × 503, ${other.length} other failures` +
            (other.length ? ` (statuses ${[...new Set(other.map((a) => a.status))].join(', ')})` : '') +
            `; ${run.sender.stats.gaveUp} deliveries given up`,
        },
      ];
    },
  },
  {
    name: 'worker-kill',
    async drive(run) {
      for (const g of run.groups) run.cluster.health.delays.set(g.service, SLOW_HEALTH_MS);
      const services = [...new Set(run.groups.map((g) => g.service))];
      const load = streamOf(run);
      const inFlight = await pollUntil(async () => {
        const { rows } = await run.cluster.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM runbook_executions e JOIN incidents i ON i.id = e.incident_id
            WHERE i.service = ANY($1) AND e.status = 'diagnosing'`,
          [services],
        );
        return rows[0]?.n ?? 0;
      }, run.scale.streamMs);
      const victim = run.cluster.workers[0];
      if (!victim) throw new Error('no worker to kill');
      await run.cluster.kill(victim);
      run.did(
        `SIGKILLed ${victim.name} (pid ${victim.child.pid}) with ${inFlight} runs diagnosing ` +
          `(health checks answer in ${SLOW_HEALTH_MS} ms; WORKER_LOCK_MS ${WORKER_LOCK_MS}); the other worker goes on alone`,
      );
      await load;
      return [
        {
          name: 'the worker died while diagnostics were in flight',
          pass: inFlight > 0,
          detail: `${inFlight} runbook executions diagnosing when ${victim.name} was killed`,
        },
      ];
    },
    async restore(run) {
      for (const g of run.groups) run.cluster.health.delays.delete(g.service);
      const victim = run.cluster.workers[0];
      if (victim?.exited) {
        await run.cluster.restart(victim);
        run.did('restarted worker-1 for the next scenario');
      }
    },
  },
  {
    name: 'web-kill',
    async drive(run) {
      const load = streamOf(run);
      await sleep(run.scale.streamMs / 3);
      const victim = run.cluster.webs[0];
      if (!victim) throw new Error('no web process to kill');
      await run.cluster.kill(victim);
      const killedAt = Date.now();
      run.did(`SIGKILLed ${victim.name} (pid ${victim.child.pid}, port ${victim.port}) mid-stream`);
      await load;
      const after = run.sender.stats.attempts.filter((a) => a.at > killedAt);
      const toDead = after.filter((a) => a.web === 0 && a.status === 0).length;
      const byOther = after.filter((a) => a.web === 1 && a.status >= 200 && a.status < 300).length;
      return [
        {
          name: 'the sender failed over to the other web process',
          pass: toDead > 0 && byOther > 0 && run.sender.stats.gaveUp === 0,
          detail: `after the kill: ${toDead} attempts refused by ${victim.name}, ${byOther} accepted by web-2; ${run.sender.stats.gaveUp} given up`,
        },
      ];
    },
    async restore(run) {
      const victim = run.cluster.webs[0];
      if (victim?.exited) {
        await run.cluster.restart(victim);
        run.did('restarted web-1 on the same port for the next scenario');
      }
    },
  },
  {
    name: 'duplicate-flood',
    async drive(run) {
      // per group: three firings (each re-delivered), two recoveries in between, and the last state repeated; all of it
      // shuffled, so many recoveries arrive before their firing and firings after their recovery, to both processes
      const deliveries: Delivery[] = [];
      const t0 = Date.now() - 60_000;
      for (const group of run.groups) {
        for (let epoch = 0; epoch < 3; epoch++) {
          const startsAt = new Date(t0 + epoch * 10_000).toISOString();
          for (let c = 0; c < run.scale.floodCopies; c++)
            deliveries.push(deliveryOf(group, 'firing', startsAt));
          if (epoch < 2) deliveries.push(deliveryOf(group, 'resolved', startsAt));
        }
      }
      for (let k = deliveries.length - 1; k > 0; k--) {
        const j = Math.floor(run.random() * (k + 1));
        [deliveries[k], deliveries[j]] = [deliveries[j] as Delivery, deliveries[k] as Delivery];
      }
      const concurrency = 16;
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < deliveries.length) await run.sender.send(deliveries[next++] as Delivery);
        }),
      );
      run.did(
        `flooded ${deliveries.length} deliveries of ${run.groups.length} groups (3 firings × ${run.scale.floodCopies} ` +
          `copies, 2 recoveries each), shuffled, ${concurrency} at once, round-robin to both web processes`,
      );
      return [];
    },
  },
  {
    name: 'slack-storm',
    async drive(run) {
      const stub = run.cluster.stub;
      const callsBefore = stub.calls.length;
      stub.failNext('*', run.scale.deliveries, { status: 503 });
      stub.rateLimit('*', { calls: 3, perMs: 1_000, retryAfter: 1 });
      run.did(
        `Slack stand-in: the next ${run.scale.deliveries} calls answer 503, and at most 3 calls/s (429 Retry-After 1) ` +
          `for ${seconds(run.scale.streamMs + run.scale.outageMs)}`,
      );
      const load = streamOf(run);
      await sleep(run.scale.streamMs + run.scale.outageMs);
      stub.rateLimit('*', null);
      run.did(`Slack recovered after ${stub.calls.length - callsBefore} calls during the storm`);
      await load;
      return [];
    },
  },
];

// ---------------------------------------------------------------------------------------------------------------

function readOptions(): Options {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      short: { type: 'boolean', default: false },
      only: { type: 'string' },
      seed: { type: 'string', default: '1' },
      verbose: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      `usage: tsx bench/chaos.ts [--short] [--only ${SCENARIOS.map((s) => s.name).join(',')}] [--seed N] [--verbose]\n`,
    );
    process.exit(0);
  }
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : null;
  for (const name of only ?? []) {
    if (!SCENARIOS.some((s) => s.name === name)) {
      throw new Error(
        `--only: unknown scenario "${name}"; expected some of ${SCENARIOS.map((s) => s.name).join(', ')}`,
      );
    }
  }
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) throw new Error(`--seed: expected an integer, got "${values.seed}"`);
  return { short: values.short, only, seed, verbose: values.verbose };
}

interface ScenarioResult {
  name: string;
  ms: number;
  deliveries: number;
  accepted: number;
  retried: number;
  incidents: number;
  checks: Check[];
}

async function runScenario(
  cluster: Cluster,
  scenario: Scenario,
  scale: Scale,
  random: () => number,
): Promise<ScenarioResult> {
  const startedAt = Date.now();
  const services = Array.from({ length: scale.services }, (_, i) => `${scenario.name}-${i + 1}`);
  const sender = createSender(() => cluster.webs.map((w) => w.port), cluster.token, RETRY_FOR_MS);
  const run: ScenarioRun = {
    cluster,
    scale,
    sender,
    groups: buildGroups(services, ALERTNAMES),
    random,
    did: (line) => process.stdout.write(`  did    ${line}\n`),
  };
  process.stdout.write(
    `\n== ${scenario.name} (${services.length} services × ${ALERTNAMES.length} alert groups)\n`,
  );
  const killedBefore = new Set([...cluster.webs, ...cluster.workers].filter((b) => b.exited));
  let checks: Check[] = [];
  try {
    checks = await scenario.drive(run);
    const s = sender.stats;
    run.did(
      `sent ${s.deliveries} deliveries: ${s.accepted} accepted, ${[...s.retried.values()].reduce((a, b) => a + b, 0)} ` +
        `retried (${[...s.retried].map(([k, n]) => `${k} ×${n}`).join(', ') || 'none'})`,
    );
    // settle: every incident final, paged, shown in Slack, and no job waiting or running
    const settleStart = Date.now();
    let quietPolls = 0;
    let last = { done: false, pending: '' };
    while (Date.now() - settleStart < scale.settleMs) {
      last = await settled(cluster.pool, services).catch((e: Error) => ({ done: false, pending: e.message }));
      const busy = await cluster.busyJobs();
      quietPolls = last.done && busy === 0 ? quietPolls + 1 : 0;
      if (quietPolls >= 3) break;
      await sleep(500);
    }
    run.did(
      quietPolls >= 3
        ? `settled in ${seconds(Date.now() - settleStart)}`
        : `did NOT settle within ${seconds(scale.settleMs)} (${last.pending}); checking anyway`,
    );
    checks.push(...(await checkInvariants(cluster.pool, cluster.stub, services, sender.stats.acks)));
    const crashed = [...cluster.webs, ...cluster.workers].filter((b) => b.exited && !killedBefore.has(b));
    const killedHere = crashed.filter((b) => b.exited?.signal === 'SIGKILL');
    const unexpected = crashed.filter((b) => b.exited?.signal !== 'SIGKILL');
    checks.push({
      name: 'no bot process crashed',
      pass: unexpected.length === 0,
      detail:
        `${killedHere.length} killed by the scenario, ${unexpected.length} exited by themselves` +
        unexpected
          .map((b) => `; ${b.name} ${JSON.stringify(b.exited)}: ${b.lastLines.slice(-3).join(' | ')}`)
          .join(''),
    });
  } catch (error) {
    checks.push({ name: 'scenario ran', pass: false, detail: (error as Error).stack ?? String(error) });
  } finally {
    sender.close();
  }
  for (const c of checks) process.stdout.write(`  ${c.pass ? 'PASS' : 'FAIL'}   ${c.name}: ${c.detail}\n`);
  try {
    await scenario.restore?.(run);
  } catch (error) {
    checks.push({ name: 'cluster restored', pass: false, detail: (error as Error).message });
    process.stdout.write(`  FAIL   cluster restored: ${(error as Error).message}\n`);
  }
  const incidents = await cluster.pool
    .query<{ n: number }>('SELECT count(*)::int AS n FROM incidents WHERE service = ANY($1)', [services])
    .then((r) => r.rows[0]?.n ?? 0)
    .catch(() => -1);
  return {
    name: scenario.name,
    ms: Date.now() - startedAt,
    deliveries: sender.stats.deliveries,
    accepted: sender.stats.accepted,
    retried: [...sender.stats.retried.values()].reduce((a, b) => a + b, 0),
    incidents,
    checks,
  };
}

function summaryTable(results: ScenarioResult[]): string {
  const header = ['scenario', 'time', 'deliveries', 'accepted', 'retried', 'incidents', 'checks', 'result'];
  const rows = results.map((r) => {
    const failed = r.checks.filter((c) => !c.pass).length;
    return [
      r.name,
      seconds(r.ms),
      String(r.deliveries),
      String(r.accepted),
      String(r.retried),
      String(r.incidents),
      `${r.checks.length - failed}/${r.checks.length}`,
      failed === 0
        ? 'PASS'
        : `FAIL (${r.checks
            .filter((c) => !c.pass)
            .map((c) => c.name)
            .join('; ')})`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

async function main(): Promise<number> {
  const opts = readOptions();
  const scale = opts.short ? SHORT : FULL;
  const scenarios = SCENARIOS.filter((s) => !opts.only || opts.only.includes(s.name));
  const services = scenarios.flatMap((s) =>
    Array.from({ length: scale.services }, (_, i) => `${s.name}-${i + 1}`),
  );
  const startedAt = Date.now();
  let cluster: Cluster | null = null;
  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= cluster ? cluster.close() : Promise.resolve();
    return closing;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`chaos: ${signal}; cleaning up\n`);
    // the bot processes are in their own process groups; close() stops them, drops the database, kills Redis
    void close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  process.stdout.write(
    `chaos: ${opts.short ? 'short' : 'full'} run of ${scenarios.map((s) => s.name).join(', ')}; starting the cluster\n`,
  );
  cluster = await startCluster({ verbose: opts.verbose, workerLockMs: WORKER_LOCK_MS, services });
  process.stdout.write(
    `chaos: database ${cluster.database} (through proxy port ${cluster.proxy.port}), private Redis port ` +
      `${cluster.redis.port}, queue prefix ${cluster.prefix}, Slack stand-in ${cluster.stub.url}; ` +
      `web ${cluster.webs.map((w) => `${w.name} :${w.port}`).join(', ')}, workers ${cluster.workers
        .map((w) => w.name)
        .join(', ')} (${seconds(Date.now() - startedAt)} to start)\n`,
  );
  const results: ScenarioResult[] = [];
  try {
    const random = seededRandom(opts.seed);
    for (const scenario of scenarios) results.push(await runScenario(cluster, scenario, scale, random));
  } finally {
    await close();
  }
  const failed = results.some((r) => r.checks.some((c) => !c.pass));
  process.stdout.write(
    `\n== summary (${opts.short ? 'short' : 'full'}, ${seconds(Date.now() - startedAt)})\n${summaryTable(results)}\n` +
      `${failed ? 'FAIL' : 'PASS'}\n`,
  );
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chaos: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
