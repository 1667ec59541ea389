/**
 * `npm run bench:diagnostics` — latency and loss of the runbook pipeline: an alert opens an incident, the runbook's
 * N diagnostics (checks of a known duration against a local delay server) run, the decision is recorded and posted
 * in the incident's Slack thread. Phase 1 runs incidents one at a time for latency; phase 2 opens 1,000 at once and
 * checks that no result is lost. The app runs in this process (test/helpers/test-app.ts). See bench/README.md.
 */
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { stringify } from 'yaml';
import { COLLECTORS } from '../src/diagnostics/registry.js';
import { EMPTY_TARGETS } from '../src/diagnostics/targets.js';
import type { QueueName } from '../src/queue/jobs.js';
import { formatProblem, loadRunbooks } from '../src/runbooks/loader.js';
import type { SlackCall } from '../test/helpers/slack-stub.js';
import { eventually, startTestApp, type TestApp } from '../test/helpers/test-app.js';

const RUNBOOK_ID = 'bench-diagnostics';
/** the target: the decision is in Slack at most this long after the slowest diagnostic finished, at p99; ms */
const TARGET_AFTER_SLOWEST_MS = 150;
/** how long each check takes; milliseconds. N diagnostics take the last N, so the slowest is always among them */
const DELAYS_MS = [20, 50, 100, 150, 200, 300];
/** the hypothesis every incident should end on: all checks answer 200 in time */
const EXPECTED_HYPOTHESIS = 'service_itself';

interface Options {
  latencyIncidents: number;
  latencyConcurrency: number;
  incidents: number;
  concurrency: number;
  diagnostics: number;
  /** SLACK_SYNC_DEBOUNCE_MS of the app; milliseconds */
  debounce: number;
  /** per phase, to wait for every decision; seconds */
  deadline: number;
  appEnv: Record<string, string>;
}

function readOptions(): Options {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      'latency-incidents': { type: 'string' },
      'latency-concurrency': { type: 'string' },
      incidents: { type: 'string' },
      concurrency: { type: 'string', short: 'c' },
      diagnostics: { type: 'string' },
      debounce: { type: 'string' },
      deadline: { type: 'string' },
      'app-env': { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      `usage: npm run bench:diagnostics -- [--latency-incidents 50] [--latency-concurrency 1] [--incidents 1000]
       [--concurrency 50] [--diagnostics 6] [--debounce 5000] [--deadline 300] [--app-env NAME=VALUE]...
each flag also reads BENCH_<NAME> (e.g. BENCH_INCIDENTS); 0 incidents skips a phase\n`,
    );
    process.exit(0);
  }
  const num = (name: string, flag: string | undefined, fallback: number, min: number, max: number) => {
    const raw = flag ?? process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`] ?? String(fallback);
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new Error(`--${name}: expected an integer from ${min} to ${max}, got "${raw}"`);
    }
    return n;
  };
  return {
    latencyIncidents: num('latency-incidents', values['latency-incidents'], 50, 0, 10_000),
    latencyConcurrency: num('latency-concurrency', values['latency-concurrency'], 1, 1, 1_000),
    incidents: num('incidents', values.incidents, 1_000, 0, 100_000),
    concurrency: num('concurrency', values.concurrency, 50, 1, 1_000),
    diagnostics: num('diagnostics', values.diagnostics, DELAYS_MS.length, 1, 50),
    debounce: num('debounce', values.debounce, 5_000, 0, 60_000),
    deadline: num('deadline', values.deadline, 300, 1, 3_600),
    appEnv: Object.fromEntries(
      values['app-env'].map((pair) => {
        const eq = pair.indexOf('=');
        if (eq < 1) throw new Error(`--app-env: expected NAME=VALUE, got "${pair}"`);
        return [pair.slice(0, eq), pair.slice(eq + 1)];
      }),
    ),
  };
}

/** `GET /delay/<ms>` answers 200 after that many ms; in a worker thread, so it keeps time however busy the app is */
const DELAY_SERVER = `
const { createServer } = require('node:http');
const { parentPort } = require('node:worker_threads');
const server = createServer((req, res) => {
  const m = /^\\/delay\\/(\\d+)/.exec(req.url || '');
  if (!m) return void res.writeHead(404).end();
  setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'), Number(m[1]));
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));`;

async function startDelayServer(): Promise<{ port: number; worker: Worker }> {
  const worker = new Worker(DELAY_SERVER, { eval: true });
  const [port] = (await once(worker, 'message')) as [number];
  return { port, worker };
}

function delaysFor(n: number): number[] {
  const k = DELAYS_MS.length;
  return Array.from({ length: n }, (_, i) => DELAYS_MS[(k - (n % k) + i) % k] as number);
}

function runbookYaml(port: number, delays: number[]): string {
  const ids = delays.map((_, i) => `check_${i + 1}`);
  const all = (status: string, join: string) =>
    ids.map((id) => `diagnostics.${id}.status == '${status}'`).join(join);
  return stringify({
    id: RUNBOOK_ID,
    name: 'Bench diagnostics',
    description: 'Generated by bench/diagnostics.ts: checks of known duration against a local delay server.',
    service: '*',
    triggers: [{ alert: 'BenchAlert' }],
    diagnostics: delays.map((ms, i) => ({
      id: ids[i],
      type: 'http_check',
      description: `a dependency that answers after ${ms} ms`,
      timeout: '10s',
      config: { urls: [`http://127.0.0.1:${port}/delay/${ms}?check=${i + 1}`] },
      interpret: { critical: 'value > 0.0', warning: `double(result.maxLatencyMs) > ${ms + 2_000}.0` },
    })),
    decision: [
      {
        id: 'dependency_down',
        description: 'A dependency does not answer',
        likelihood: 1,
        when: all('critical', ' || '),
        escalate: { reason: 'default', team: 'bench' },
      },
      {
        id: 'dependency_slow',
        description: 'A dependency answers slowly',
        likelihood: 2,
        when: all('warning', ' || '),
        remediate: ['scale_out'],
      },
      {
        id: EXPECTED_HYPOTHESIS,
        description: 'Every dependency is healthy: the service itself is at fault',
        likelihood: 3,
        when: all('healthy', ' && '),
        remediate: ['restart', 'tell_owner'],
      },
    ],
    remediations: [
      { id: 'scale_out', action: 'scale', description: 'Add replicas', requiresApproval: true },
      { id: 'restart', action: 'restart_service', description: 'Restart the service', requiresApproval: true },
      { id: 'tell_owner', action: 'notify', description: 'Tell the owning team' },
    ],
    escalation: { team: 'bench' },
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
let interrupted = false;

function isDecisionPost(call: SlackCall): boolean {
  if (call.method !== 'chat.postMessage' || typeof call.args.thread_ts !== 'string') return false;
  return `${String(call.args.text ?? '')}${JSON.stringify(call.args.blocks ?? [])}`.includes('Decision (');
}

/** first decision post per thread (the card's ts) and how many there were, read incrementally from the stub */
function trackDecisionPosts(calls: SlackCall[]) {
  const firstAt = new Map<string, number>();
  let total = 0;
  let seen = 0;
  return () => {
    for (; seen < calls.length; seen++) {
      const call = calls[seen] as SlackCall;
      if (!isDecisionPost(call)) continue;
      total += 1;
      const ts = call.args.thread_ts as string;
      if (!firstAt.has(ts)) firstAt.set(ts, call.at);
    }
    return { firstAt, total };
  };
}

/** What the phase put on the app: the most jobs waiting per queue, Postgres pool waiters, event-loop delay (ms). */
function sampleLoad(t: TestApp) {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const waiting: Record<QueueName, number> = { slack: 0, runbooks: 0, diagnostics: 0 };
  const pools = { db: 0, jobsDb: 0 };
  const poolTimer = setInterval(() => {
    pools.db = Math.max(pools.db, t.app.ctx.db.waitingCount);
    pools.jobsDb = Math.max(pools.jobsDb, t.app.ctx.jobsDb.waitingCount);
  }, 10);
  let running = true;
  const queues = (async () => {
    while (running) {
      const depths = await t.app.ctx.queues.depths().catch(() => null);
      for (const q of Object.keys(waiting) as QueueName[])
        waiting[q] = Math.max(waiting[q], depths?.[q].waiting ?? 0);
      await sleep(200);
    }
  })();
  return async () => {
    running = false;
    clearInterval(poolTimer);
    await queues;
    loop.disable();
    return { waiting, pools, loopP99: loop.percentile(99) / 1e6, loopMax: loop.max / 1e6 };
  };
}

interface Row {
  incident_id: number;
  status: string;
  hypothesis: string | null;
  started_at: Date;
  decided_at: Date | null;
  results: number;
  errors: number;
  last_started: Date | null;
  last_finished: Date | null;
  slowest_ms: number | null;
  decisions: number;
  ts: string | null;
}

async function runPhase(t: TestApp, opts: Options, name: string, count: number, inFlight: number, waitEach: boolean) {
  const posts = trackDecisionPosts(t.stub.calls);
  const threadOf = new Map<number, string>();
  const threadsOf = async (ids: number[]) => {
    const missing = ids.filter((id) => !threadOf.has(id));
    if (missing.length > 0) {
      const rows = await t.query<{ incident_id: number; ts: string }>(
        'SELECT incident_id, ts FROM slack_messages WHERE incident_id = ANY($1::bigint[])',
        [missing],
      );
      for (const r of rows) threadOf.set(r.incident_id, r.ts);
    }
    const { firstAt } = posts();
    return ids.filter((id) => firstAt.has(threadOf.get(id) ?? '')).length;
  };
  const firstCall = t.stub.calls.length;
  const stopSampling = sampleLoad(t);
  const accepted = new Map<number, number>();
  const rejected = new Map<string, number>();
  const started = Date.now();
  const deadline = started + opts.deadline * 1000;
  let next = 0;
  const client = async () => {
    while (next < count && !interrupted) {
      const i = next++;
      const service = `${name}-${String(i).padStart(5, '0')}`;
      const body = { name: 'BenchAlert', service, severity: 'critical', summary: `bench alert ${i}` };
      const res = await t.webhook('/webhooks/generic', body).catch((err: Error) => ({
        status: 0,
        json: { error: err.message } as Record<string, unknown>,
      }));
      const at = Date.now();
      const id = Array.isArray(res.json.opened) ? (res.json.opened[0] as unknown) : undefined;
      if (res.status !== 202 || typeof id !== 'number') {
        const key = res.status === 202 ? '202 without an opened incident' : `HTTP ${res.status}`;
        rejected.set(key, (rejected.get(key) ?? 0) + 1);
        continue;
      }
      accepted.set(id, at);
      if (waitEach)
        await eventually(`the decision of ${service}`, () => threadsOf([id]), deadline - Date.now());
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, client));
  const ids = [...accepted.keys()];
  let lastReport = Date.now();
  for (;;) {
    const [{ decided = 0 } = {}] = await t.query<{ decided: number }>(
      `SELECT count(*)::int AS decided FROM runbook_executions WHERE status = 'decided' AND incident_id = ANY($1::bigint[])`,
      [ids],
    );
    const posted = await threadsOf(ids);
    if ((decided === ids.length && posted === ids.length) || Date.now() > deadline || interrupted) break;
    if (Date.now() - lastReport > 5_000) {
      lastReport = Date.now();
      const d = await t.app.ctx.queues.depths();
      process.stderr.write(
        `bench: ${name} +${((Date.now() - started) / 1000).toFixed(0)} s: decided ${decided}/${ids.length}, posted ${posted}; ` +
          `waiting diagnostics ${d.diagnostics.waiting}, runbooks ${d.runbooks.waiting}, slack ${d.slack.waiting}\n`,
      );
    }
    await sleep(100);
  }
  const load = await stopSampling();
  const rows = await t.query<Row>(
    `SELECT e.incident_id, e.status, e.decision->'hypothesis'->>'id' AS hypothesis, e.started_at, e.decided_at,
            count(r.diagnostic_id)::int AS results, count(*) FILTER (WHERE r.status = 'error')::int AS errors,
            max(r.started_at) AS last_started, max(r.finished_at) AS last_finished, max(r.duration_ms) AS slowest_ms,
            (SELECT count(*)::int FROM timeline_events t
              WHERE t.incident_id = e.incident_id AND t.type = 'decision.made') AS decisions,
            m.ts
       FROM runbook_executions e
       LEFT JOIN diagnostic_results r ON r.execution_id = e.id
       LEFT JOIN slack_messages m ON m.incident_id = e.incident_id
      WHERE e.incident_id = ANY($1::bigint[])
      GROUP BY e.id, m.ts`,
    [ids],
  );
  const outcomes = await t.query<{ status: string; error: string | null; n: number }>(
    `SELECT r.status, r.error, count(*)::int AS n FROM diagnostic_results r
       JOIN runbook_executions e ON e.id = r.execution_id
      WHERE e.incident_id = ANY($1::bigint[]) AND r.status <> 'healthy' GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5`,
    [ids],
  );
  const { firstAt, total: postsTotal } = posts();
  const calls = new Map<string, number>();
  for (const c of t.stub.calls.slice(firstCall)) calls.set(c.method, (calls.get(c.method) ?? 0) + 1);
  const span = (from: (r: Row) => number | null | undefined, to: (r: Row) => number | null | undefined) =>
    rows.flatMap((r) => {
      const a = from(r);
      const b = to(r);
      return a == null || b == null ? [] : [b - a];
    });
  const postedAt = (r: Row) => firstAt.get(r.ts ?? '');
  const sum = (f: (r: Row) => number) => rows.reduce((n, r) => n + f(r), 0);
  const expectedResults = ids.length * opts.diagnostics;
  const results = sum((r) => r.results);
  const lastFinished = Math.max(...rows.map((r) => r.last_finished?.getTime() ?? 0));
  const lastPosted = Math.max(started, ...firstAt.values());
  const lost: [string, number][] = [
    ['alerts not accepted', count - ids.length],
    ['executions', ids.length - rows.length],
    ['undecided', rows.filter((r) => r.status !== 'decided').length],
    ['results', expectedResults - results],
    ['error results', sum((r) => r.errors)],
    ['decision.made events', ids.length - rows.filter((r) => r.decisions > 0).length],
    ['decision posts', ids.length - rows.filter((r) => postedAt(r) !== undefined).length],
  ];
  return {
    name,
    count,
    inFlight,
    wallMs: lastPosted - started,
    diagnosticsPerSecond: results / (Math.max(lastFinished, started + 1) / 1000 - started / 1000),
    rejected,
    lost: lost.filter(([, n]) => n !== 0),
    checks: `${rows.length} executions, ${results}/${expectedResults} results, ${sum((r) => r.decisions)} decision.made, ${postsTotal} decision posts`,
    unexpected: rows.filter((r) => r.status === 'decided' && r.hypothesis !== EXPECTED_HYPOTHESIS).length,
    outcomes,
    calls,
    load,
    spans: {
      'alert → decision posted': span((r) => accepted.get(r.incident_id), postedAt),
      'alert → execution recorded': span((r) => accepted.get(r.incident_id), (r) => r.started_at.getTime()),
      'execution → last check started': span((r) => r.started_at.getTime(), (r) => r.last_started?.getTime()),
      'slowest check ran': rows.flatMap((r) => (r.slowest_ms === null ? [] : [r.slowest_ms])),
      'slowest finished → decided': span((r) => r.last_finished?.getTime(), (r) => r.decided_at?.getTime()),
      'decided → decision posted': span((r) => r.decided_at?.getTime(), postedAt),
      'slowest finished → decision posted': span((r) => r.last_finished?.getTime(), postedAt),
    } as Record<string, number[]>,
  };
}
type Phase = Awaited<ReturnType<typeof runPhase>>;

function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}
const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a';

function printReport(opts: Options, delays: number[], phases: Phase[]): void {
  const out: string[] = [''];
  const line = (s = '') => out.push(s);
  const env = { DIAGNOSTICS_CONCURRENCY: '50 (default)', DATABASE_POOL_MAX: '20 (default)', ...opts.appEnv };
  line('== ai-sre runbook pipeline benchmark ==');
  line(
    `runbook    ${delays.length} http_check diagnostics taking ${delays.join('/')} ms (slowest ${Math.max(...delays)} ms); ` +
      `SLACK_SYNC_DEBOUNCE_MS ${opts.debounce}; ${Object.entries(env).map(([k, v]) => `${k} ${v}`).join(', ')}`,
  );
  line();
  const quantiles = (v: number[]) => [0.5, 0.95, 0.99, 1].map((q) => fmt(percentile(v, q)).padStart(7)).join('');
  line(`${'ms'.padEnd(36)}${phases.map((p) => `${p.name} (${fmt(p.count)} incidents, ${p.inFlight} in flight)`.padEnd(30)).join('')}`);
  line(`${''.padEnd(36)}${phases.map(() => `${'p50'.padStart(7)}${'p95'.padStart(7)}${'p99'.padStart(7)}${'max'.padStart(7)}  `).join('')}`);
  for (const key of Object.keys(phases[0]?.spans ?? {}))
    line(`${key.padEnd(36)}${phases.map((p) => `${quantiles(p.spans[key] ?? [])}  `).join('')}`);
  line();
  for (const p of phases) {
    const { waiting, pools } = p.load;
    line(
      `${p.name.padEnd(10)} wall ${fmt(p.wallMs / 1000, 1)} s, ${fmt(p.diagnosticsPerSecond, 0)} diagnostics/s; ${p.checks}; ` +
        `Slack ${[...p.calls].map(([m, n]) => `${m} ${fmt(n)}`).join(', ')}`,
    );
    line(
      `${''.padEnd(10)} most jobs waiting: diagnostics ${fmt(waiting.diagnostics)}, runbooks ${fmt(waiting.runbooks)}, slack ${fmt(waiting.slack)}; ` +
        `pool waiters: db ${pools.db}, jobsDb ${pools.jobsDb}; event-loop delay p99 ${fmt(p.load.loopP99, 1)} ms, max ${fmt(p.load.loopMax, 1)} ms`,
    );
    if (p.outcomes.length > 0)
      line(`${''.padEnd(10)} non-healthy results: ${p.outcomes.map((o) => `${o.n}× ${o.status} ${o.error ?? ''}`).join('; ')}`);
    if (p.unexpected > 0) line(`${''.padEnd(10)} ${p.unexpected} decisions other than ${EXPECTED_HYPOTHESIS}`);
    if (p.rejected.size > 0) line(`${''.padEnd(10)} rejected alerts: ${[...p.rejected].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  }
  line();
  const verdicts = phases.map((p) => {
    const p99 = percentile(p.spans['slowest finished → decision posted'] ?? [], 0.99);
    return `${p.name} ${fmt(p99)} ms ${p99 <= TARGET_AFTER_SLOWEST_MS ? 'MET' : 'NOT MET'}`;
  });
  line(`target     decision posted ≤ ${TARGET_AFTER_SLOWEST_MS} ms after the slowest diagnostic (p99): ${verdicts.join('; ')}`);
  for (const p of phases)
    line(`loss       ${p.name}: ${p.lost.length === 0 ? 'LOST = 0' : `LOST: ${p.lost.map(([k, n]) => `${fmt(n)} ${k}`).join(', ')}`}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

async function main(): Promise<number> {
  const opts = readOptions();
  process.once('SIGINT', () => {
    interrupted = true;
  });
  const delays = delaysFor(opts.diagnostics);
  const dir = await mkdtemp(join(tmpdir(), 'ai-sre-bench-diagnostics-'));
  const delayServer = await startDelayServer();
  let t: TestApp | undefined;
  try {
    await writeFile(join(dir, `${RUNBOOK_ID}.yml`), runbookYaml(delayServer.port, delays));
    t = await startTestApp({
      RUNBOOKS_DIR: dir,
      // none: the checks use literal URLs, and a missing targets file loads as empty
      TARGETS_FILE: join(dir, 'no-targets.yml'),
      SLACK_SYNC_DEBOUNCE_MS: String(opts.debounce),
      LOG_LEVEL: 'silent',
      ...opts.appEnv,
    });
    if (!t.app.ctx.runbooks.catalog.get(RUNBOOK_ID)) {
      const { problems } = await loadRunbooks([dir], { collectors: COLLECTORS, targets: EMPTY_TARGETS });
      throw new Error(`the generated runbook did not load:\n${problems.map(formatProblem).join('\n')}`);
    }
    const phases: Phase[] = [];
    if (opts.latencyIncidents > 0) {
      process.stderr.write(`bench: latency phase, ${opts.latencyIncidents} incidents\n`);
      phases.push(await runPhase(t, opts, 'latency', opts.latencyIncidents, opts.latencyConcurrency, true));
      // the phase's debounced Slack edits must not run into the next phase
      await t.drained(Math.max(30_000, opts.debounce * 3));
    }
    if (opts.incidents > 0 && !interrupted) {
      process.stderr.write(`bench: scale phase, ${opts.incidents} incidents, ${opts.concurrency} alerts in flight\n`);
      phases.push(await runPhase(t, opts, 'scale', opts.incidents, opts.concurrency, false));
    }
    if (interrupted) throw new Error('interrupted');
    printReport(opts, delays, phases);
    return phases.some((p) => p.lost.length > 0) ? 1 : 0;
  } finally {
    await t?.close().catch((err: unknown) => process.stderr.write(`bench: clean-up: ${(err as Error).message}\n`));
    await delayServer.worker.terminate();
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
