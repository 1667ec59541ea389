/**
 * `npm run bench:detect` — throughput of anomaly detection, in one run: the detector core on one core, the whole path
 * through `POST /ingest/metrics` with detector state in Redis, and the naive approach (a Redis list of the last 60
 * values per series, read back per point) on the same points. The NAB series are replayed as many series.
 * See bench/README.md.
 */

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { cpus } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createDetector, restoreDetector, restoreDetectorBytes } from '../src/detection/create-detector.js';
import { readSeriesCsv } from '../src/detection/csv-series.js';
import { decodeStoredSeries } from '../src/detection/detection-service.js';
import type { StreamingDetector } from '../src/detection/detector.js';
import { type MetricSample, seriesKeyOf } from '../src/detection/metric-sample.js';
import { deleteKeys, startTestApp, type TestApp, WEBHOOK_TOKEN } from '../test/helpers/test-app.js';
import { type ChildLog, followChildLog } from './lib/common.js';
import { fmt, percentile } from './report.js';

/** targets of issue 6; points per second */
const TARGET_CORE = 1_000_000;
const TARGET_E2E = 50_000;
/** the replay's clock: 5-minute points (NAB's cadence) from 2024-01-01 */
const [T0, STEP_MS] = [Date.UTC(2024, 0, 1), 300_000];
/** points per series fed before anything is timed: past the detector's warm-up (128), so likelihoods are live */
const PRIMED = 200;
/** the core phase: series (a hot set larger than the CPU caches) and points generated per series */
const [CORE_SERIES, CORE_POINTS] = [1_000, 8_000];
/** the naive approach's window; points */
const NAIVE_WINDOW = 60;

/** flag → [default, min, max]; integers */
const FLAGS = {
  series: [10_000, 10, 200_000],
  /** HTTP clients (keep-alive connections), client c owning the series s ≡ c (mod clients), as senders should */
  clients: [10, 1, 256],
  /** samples per request */
  batch: [1_000, 1, 50_000],
  /** measured phase of the end-to-end and naive runs; seconds */
  duration: [20, 1, 600],
  /** load before measuring; seconds */
  warmup: [3, 0, 120],
  /** the core phase's measured loop; seconds */
  'core-seconds': [5, 1, 120],
} as const;
type Options = Record<keyof typeof FLAGS, number> & { data: string; only: string; topology: string };

function readOptions(): Options {
  const { values } = parseArgs({
    options: {
      ...Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: 'string' as const }])),
      data: { type: 'string', default: '../shared/nab/data' },
      only: { type: 'string', default: 'all' },
      topology: { type: 'string', default: 'single' },
    },
  });
  const opts = { data: values.data, only: values.only, topology: values.topology } as Options;
  if (!['split', 'single'].includes(opts.topology))
    throw new Error(`--topology: expected split or single, got "${opts.topology}"`);
  if (!['all', 'core', 'e2e', 'naive'].includes(opts.only))
    throw new Error(`--only: expected all, core, e2e or naive, got "${opts.only}"`);
  for (const [name, [fallback, min, max]] of Object.entries(FLAGS)) {
    const raw = (values as Record<string, unknown>)[name] ?? String(fallback);
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new Error(`--${name}: expected an integer from ${min} to ${max}, got "${raw}"`);
    opts[name as keyof typeof FLAGS] = n;
  }
  if (opts.clients > opts.series) throw new Error('--clients: at most one client per series');
  return opts;
}

/** Series s replays NAB file s mod F from its own offset, scaled, labelled with one of 100 services. */
interface Workload {
  files: Float64Array[];
  file: Int32Array;
  offset: Int32Array;
  scale: Float64Array;
  samples: Pick<MetricSample, 'series' | 'labels'>[];
}

async function loadWorkload(dir: string, n: number): Promise<Workload> {
  const paths = (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile() && e.name.endsWith('.csv'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
  if (paths.length === 0) throw new Error(`${dir}: no .csv files`);
  const files = await Promise.all(
    paths.map(async (p) => Float64Array.from(await readSeriesCsv(p), (r) => r.value)),
  );
  const file = Int32Array.from({ length: n }, (_, s) => s % files.length);
  return {
    files,
    file,
    offset: Int32Array.from(file, (f, s) => (s * 7919) % (files[f] as Float64Array).length),
    scale: Float64Array.from(file, (_, s) => 1 + (s % 13) / 10),
    samples: Array.from(file, (f, s) => ({
      series: basename(paths[f] as string, '.csv').replace(/[^A-Za-z0-9_]/g, '_'),
      labels: { service: `svc-${s % 100}`, instance: `i-${s}` },
    })),
  };
}

/** point k of series s; the load worker has a copy of this formula */
function valueAt(w: Workload, s: number, k: number): number {
  const f = w.files[w.file[s] as number] as Float64Array;
  return (f[((w.offset[s] as number) + k) % f.length] as number) * (w.scale[s] as number);
}

/** 1. The detector core: round-robin over CORE_SERIES series in time order, after an untimed pass of PRIMED points. */
function runCore(w: Workload, seconds: number) {
  const n = Math.min(CORE_SERIES, w.samples.length);
  const values = Array.from({ length: n }, (_, s) =>
    Float64Array.from({ length: CORE_POINTS }, (_, k) => valueAt(w, s, k)),
  );
  const detectors: StreamingDetector[] = Array.from({ length: n }, () => createDetector());
  const round = (k: number) => {
    const ts = T0 + k * STEP_MS;
    for (let s = 0; s < n; s++)
      (detectors[s] as StreamingDetector).update(ts, (values[s] as Float64Array)[k] as number);
  };
  for (let k = 0; k < PRIMED; k++) round(k);
  const started = process.hrtime.bigint();
  let k = PRIMED;
  for (; k < CORE_POINTS && Number(process.hrtime.bigint() - started) < seconds * 1e9; k++) round(k);
  const ns = Number(process.hrtime.bigint() - started);
  const points = (k - PRIMED) * n;
  // what the bot pays per series it writes to or reads back from Redis (binary), and the JSON form; µs, after a warm pass
  const texts = detectors.map((d) => JSON.stringify(d.toJSON()));
  const buffers = detectors.map((d) => d.toBytes());
  const timed = (f: (i: number) => unknown) => {
    for (let i = 0; i < n; i++) f(i);
    const t = performance.now();
    for (let i = 0; i < n; i++) f(i);
    return ((performance.now() - t) * 1000) / n;
  };
  const restore = timed((i) => restoreDetector(JSON.parse(texts[i] as string)));
  const save = timed((i) => JSON.stringify((detectors[i] as StreamingDetector).toJSON()));
  const restoreBytes = timed((i) => restoreDetectorBytes(buffers[i] as Uint8Array));
  const saveBytes = timed((i) => (detectors[i] as StreamingDetector).toBytes());
  return {
    pointsPerSecond: points / (ns / 1e9),
    lines: [
      `${fmt(points)} points over ${n} series in ${fmt(ns / 1e9, 1)} s: ${fmt(ns / points)} ns/point`,
      `state: ${fmt(buffers.reduce((a, b) => a + b.length, 0) / n)} bytes per series binary (what Redis keeps), ` +
        `restoreDetectorBytes ${fmt(restoreBytes, 1)} µs, toBytes ${fmt(saveBytes, 1)} µs`,
      `as JSON: ${fmt(texts.reduce((a, t) => a + t.length, 0) / n)} bytes, ` +
        `JSON.parse + restoreDetector ${fmt(restore, 1)} µs, toJSON + JSON.stringify ${fmt(save, 1)} µs`,
    ],
  };
}

/** The load generator, in a worker thread so that this thread's event loop is the app's alone. */
const LOAD_WORKER = `
const { parentPort, workerData: w } = require('node:worker_threads');
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: w.clients });
const post = (body) => new Promise((resolve, reject) => {
  const headers = { 'content-type': 'application/json', authorization: 'Bearer ' + w.token, 'content-length': Buffer.byteLength(body) };
  const req = http.request(w.url + '/ingest/metrics', { method: 'POST', agent, headers }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c)).on('error', reject);
    res.on('end', () => resolve([res.statusCode, Buffer.concat(chunks).toString()]));
  });
  req.on('error', reject).end(body);
});
const n = w.prefixes.length, sent = new Int32Array(n);
const out = { requests: 0, failed: 0, samples: 0, accepted: 0, rejected: 0, anomalies: 0, measured: 0, latencies: [], problems: [] };
const from = performance.now() + w.warmupMs, end = from + w.durationMs;
setTimeout(() => parentPort.postMessage({ measuring: true }), w.warmupMs);
async function client(c) {
  const mine = [];
  for (let s = c; s < n; s += w.clients) mine.push(s);
  // the client's j-th sample is series mine[j % L] at point startK + floor(j / L): each series in time order
  for (let i = 0; performance.now() < end; i += w.batch) {
    const parts = [];
    for (let j = i; j < i + w.batch; j++) {
      const s = mine[j % mine.length], k = w.startK + Math.floor(j / mine.length), f = w.files[w.file[s]];
      parts.push(w.prefixes[s] + (w.t0 + k * w.stepMs) + ',"value":' + f[(w.offset[s] + k) % f.length] * w.scale[s] + '}');
    }
    const started = performance.now();
    const [status, text] = await post('[' + parts.join(',') + ']').catch((err) => [0, err.message]);
    const done = performance.now();
    out.requests++;
    if (status !== 202) {
      out.failed++;
      if (out.problems.length < 5) out.problems.push(status + ' ' + text.slice(0, 300));
      continue;
    }
    const body = JSON.parse(text);
    for (let j = i; j < i + w.batch; j++) sent[mine[j % mine.length]]++;
    out.samples += w.batch, out.accepted += body.accepted, out.anomalies += body.anomalies.length;
    out.rejected += body.rejected.length;
    if (body.rejected.length > 0 && out.problems.length < 5) out.problems.push(JSON.stringify(body.rejected[0]));
    if (done >= from && done <= end) out.measured += body.accepted, out.latencies.push(done - started);
  }
}
Promise.all(Array.from({ length: w.clients }, (_, c) => client(c))).then(() => parentPort.postMessage({ ...out, sent }));`;
type LoadResult = Record<
  'failed' | 'samples' | 'accepted' | 'rejected' | 'anomalies' | 'measured',
  number
> & {
  requests: number;
  latencies: number[];
  problems: string[];
  sent: Int32Array;
};

/** 2. End to end: PRIMED points per series through the detection service, then the HTTP load from a worker. */
async function runEndToEnd(w: Workload, opts: Options, t: TestApp, jobsProcess: WorkerProcess | undefined) {
  const n = w.samples.length;
  const primedAt = performance.now();
  for (let s0 = 0; s0 < n && !interrupted; s0 += 100) {
    const items = Array.from({ length: Math.min(100, n - s0) * PRIMED }, (_, i) => {
      const [s, k] = [s0 + Math.floor(i / PRIMED), i % PRIMED];
      const sample = {
        ...(w.samples[s] as MetricSample),
        timestamp: T0 + k * STEP_MS,
        value: valueAt(w, s, k),
      };
      return { index: i, sample };
    });
    const { accepted } = await t.app.ctx.detection.ingest(items);
    if (accepted !== items.length) throw new Error(`priming: ${items.length - accepted} points refused`);
  }
  process.stderr.write(`bench: primed in ${fmt((performance.now() - primedAt) / 1000, 1)} s; `);
  // the incidents priming opened are worked off first (cards, charts, diagnosis): the load meets a settled bot
  const settledAt = performance.now();
  await t.drained(300_000).catch((err: Error) => process.stderr.write(`(${err.message}) `));
  process.stderr.write(`their jobs done in ${fmt((performance.now() - settledAt) / 1000, 1)} s; HTTP load\n`);
  const sql = `SELECT count(*)::int AS n FROM incidents WHERE source = 'anomaly'`;
  const incidents = async () => (await t.query<{ n: number }>(sql))[0]?.n ?? 0;
  const incidentsPrimed = await incidents();
  const prefixes = w.samples.map((s) => `${JSON.stringify(s).slice(0, -1)},"timestamp":`);
  const [warmupMs, durationMs] = [opts.warmup * 1000, opts.duration * 1000];
  const { files, file, offset, scale } = w;
  const workerData = { ...opts, url: t.baseUrl, token: WEBHOOK_TOKEN, warmupMs, durationMs, startK: PRIMED };
  Object.assign(workerData, { t0: T0, stepMs: STEP_MS, files, file, offset, scale, prefixes });
  const worker = new Worker(LOAD_WORKER, { eval: true, workerData });
  let [elu, machine] = [performance.eventLoopUtilization(), machineBusy()];
  const result = await new Promise<LoadResult>((resolve, reject) => {
    worker.on('message', (m: LoadResult | { measuring: true }) => {
      if ('measuring' in m) [elu, machine] = [performance.eventLoopUtilization(), machineBusy()];
      else resolve(m);
    });
    worker.on('error', reject).on('exit', () => reject(new Error('the load worker stopped (interrupted)')));
    process.once('SIGINT', () => void worker.terminate());
  });
  const [loopBusy, cores] = [performance.eventLoopUtilization(elu).utilization, machineBusy() - machine];
  await worker.terminate();
  // zero loss: every series' detector has counted exactly the points answered 202 (once the live states are written)
  await t.app.ctx.detection.flush();
  const expected = new Map(w.samples.map((s, i) => [seriesKeyOf(s), PRIMED + (result.sent[i] ?? 0)]));
  let [found, wrong, bytes, cursor] = [0, 0, 0, '0'];
  do {
    const match = `${t.app.ctx.config.QUEUE_PREFIX}:detector:*`;
    const [next, keys] = await t.app.ctx.redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    for (const raw of keys.length > 0 ? await t.app.ctx.redis.mgetBuffer(...keys) : []) {
      const stored = raw ? decodeStoredSeries(raw) : null;
      if (!raw || !stored || !expected.has(stored.key)) continue;
      [found, bytes] = [found + 1, bytes + raw.length];
      if (stored.detector.count !== expected.get(stored.key)) wrong++;
    }
  } while (cursor !== '0');
  const incidentsLoaded = (await incidents()) - incidentsPrimed;
  const slackCalls = (method: string) => t.stub.calls.filter((c) => c.method === method).length;
  const slackWork =
    `${fmt(slackCalls('chat.postMessage'))} Slack messages posted, ${fmt(slackCalls('chat.update'))} updated, ` +
    `${fmt(slackCalls('files.completeUploadExternal'))} charts uploaded`;
  const jobs = jobsProcess
    ? `jobs in the worker process (pid ${jobsProcess.pid}): ${slackWork}; its log: ${jobsProcess.summary()}`
    : `jobs in this process too (--topology single): ${slackWork}`;
  const q = (p: number) => fmt(percentile(result.latencies, p), 1);
  return {
    pointsPerSecond: result.measured / opts.duration,
    lost: result.samples - result.accepted + (n - found) + wrong,
    lines: [
      `${fmt(n)} series, ${opts.clients} clients × ${fmt(opts.batch)} samples per request ` +
        `(${fmt(opts.batch / Math.ceil(n / opts.clients), 1)} points per series per request), ${opts.duration} s measured`,
      `${fmt(result.latencies.length / opts.duration, 1)} requests/s, latency p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, ` +
        `max ${q(1)} ms; ${result.failed} of ${fmt(result.requests)} requests not 202${result.problems.map((p) => `\n    ${p}`).join('')}`,
      `loss: ${fmt(result.samples)} samples answered 202, ${fmt(result.accepted)} accepted, ${fmt(result.rejected)} ` +
        `rejected; ${fmt(found)}/${fmt(n)} series in Redis, ${wrong} whose point count ≠ points sent`,
      `state in Redis: ${fmt(bytes / Math.max(1, found))} bytes per series; anomalies answered ${fmt(result.anomalies)}, ` +
        `incidents opened from anomalies ${incidentsPrimed} while priming, ${incidentsLoaded} under load`,
      jobs,
      `app thread busy ${fmt(loopBusy * 100)}% (event-loop utilisation); ` +
        `machine ${fmt(cores / opts.duration, 2)} of ${cpus().length} cores busy`,
    ],
  };
}

interface WorkerProcess {
  pid: number;
  /** warnings and errors it logged, by message */
  summary(): string;
  stop(): Promise<void>;
}

/** `ai-sre start --role worker` with the app's settings; resolves once its BullMQ workers are listening. */
async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  // at the lowest CPU priority: on a small machine the jobs use what the ingest leaves, as a separate host would
  const command = [process.execPath, '--import', 'tsx', 'src/cli.ts', 'start', '--role', 'worker'];
  const child = spawn('nice', ['-n', '19', ...command], {
    env: { ...process.env, ...env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: ChildLog = { logCounts: new Map(), lastLines: [] };
  followChildLog(child, log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const queue = new Queue('slack', {
    connection: { host: '127.0.0.1', port: 6379 },
    prefix: env.QUEUE_PREFIX,
  });
  try {
    const deadline = Date.now() + 60_000;
    while ((await queue.getWorkersCount()) === 0) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`the worker process did not start: ${log.lastLines.slice(-5).join('\n')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    await queue.close();
  }
  return {
    pid: child.pid ?? 0,
    summary: () =>
      [...log.logCounts].map(([msg, n]) => `${n} × ${msg}`).join('; ') || 'no warnings or errors',
    stop,
  };
}

/** 3. The strawman: per point LPUSH, LTRIM to 60, LRANGE the 60 back (one round trip), a z-score in JS. */
async function runNaive(w: Workload, opts: Options) {
  const n = w.samples.length;
  const prefix = `ai-sre-bench-naive-${randomBytes(5).toString('hex')}`;
  const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  try {
    // the lists start full, as the detectors start primed
    for (let s0 = 0; s0 < n; s0 += 500) {
      const pipe = redis.pipeline();
      for (let s = s0; s < Math.min(n, s0 + 500); s++) {
        const window = Array.from({ length: NAIVE_WINDOW }, (_, k) =>
          valueAt(w, s, PRIMED - NAIVE_WINDOW + k),
        );
        pipe.lpush(`${prefix}:series:${s}`, ...window);
      }
      await pipe.exec();
    }
    const from = performance.now() + opts.warmup * 1000;
    const end = from + opts.duration * 1000;
    let [measured, outliers] = [0, 0];
    const client = async (c: number) => {
      const mine = Array.from({ length: Math.ceil((n - c) / opts.clients) }, (_, i) => c + i * opts.clients);
      for (let i = 0; performance.now() < end && !interrupted; i++) {
        const [s, k] = [mine[i % mine.length] as number, PRIMED + Math.floor(i / mine.length)];
        const [key, value] = [`${prefix}:series:${s}`, valueAt(w, s, k)];
        const pipe = redis
          .pipeline()
          .lpush(key, value)
          .ltrim(key, 0, NAIVE_WINDOW - 1);
        const results = await pipe.lrange(key, 0, -1).exec();
        const window = ((results?.[2]?.[1] as string[] | undefined) ?? []).map(Number);
        const mean = window.reduce((a, v) => a + v, 0) / window.length;
        const sd = Math.sqrt(window.reduce((a, v) => a + (v - mean) ** 2, 0) / window.length);
        if (Math.abs(value - mean) > 3 * sd) outliers++;
        const now = performance.now();
        if (now >= from && now <= end) measured++;
      }
    };
    await Promise.all(Array.from({ length: opts.clients }, (_, c) => client(c)));
    const line = `${opts.clients} clients, a point at a time, ${opts.duration} s measured; |z| > 3 on ${fmt(outliers)} points`;
    return { pointsPerSecond: measured / opts.duration, lines: [line] };
  } finally {
    redis.disconnect();
    await deleteKeys(`${prefix}:*`);
  }
}

let interrupted = false;
const machineBusy = () => cpus().reduce((n, { times: c }) => n + c.user + c.nice + c.sys + c.irq, 0) / 1000;

async function main(): Promise<number> {
  const opts = readOptions();
  process.on('SIGINT', () => {
    interrupted = true;
  });
  const w = await loadWorkload(opts.data, opts.series);
  const runs = (phase: string) => opts.only === 'all' || opts.only === phase;
  const out = [
    '',
    '== ai-sre anomaly detection throughput ==',
    `${w.files.length} NAB files replayed as ${fmt(opts.series)} series`,
  ];
  const section = (title: string, lines: string[]) => out.push('', title, ...lines.map((l) => `  ${l}`));
  const [rows, rates] = [[] as string[], new Map<string, number>()];
  const row = (name: string, rate: number, target: number | string) => {
    rates.set(name, rate);
    const verdict =
      typeof target === 'string' ? target : `≥ ${fmt(target)}: ${rate >= target ? 'MET' : 'NOT MET'}`;
    rows.push(`${name.padEnd(30)}${fmt(rate).padStart(12)}   ${verdict}`);
  };
  let lost = 0;
  if (runs('core')) {
    process.stderr.write('bench: detector core\n');
    const core = runCore(w, opts['core-seconds']);
    section('1. detector core, one core', core.lines);
    row('detector core, one core', core.pointsPerSecond, TARGET_CORE);
  }
  if (runs('e2e')) {
    process.stderr.write('bench: end to end: priming the series\n');
    let t: TestApp | undefined;
    let worker: WorkerProcess | undefined;
    try {
      // Slack syncs debounced as deployed (5 s), not as the tests' 100 ms: a storm's card edits and digests batch up
      const env = { LOG_LEVEL: 'silent', SLACK_SYNC_DEBOUNCE_MS: '5000' };
      // single (default): one process does everything (`--role all`, the default of `ai-sre start`), so the jobs
      // an anomaly storm causes (Slack cards and charts, diagnosis) share the ingest thread; split: this process is
      // the web role (HTTP, detection, intake, enqueueing) and one `--role worker` process runs the jobs. On two
      // cores split is slower: the worker process keeps up with every chart and card and takes the CPU the ingest needs
      t = await startTestApp(env, { role: opts.topology === 'split' ? 'web' : 'all' });
      if (opts.topology === 'split') worker = await startWorkerProcess(t.env);
      const e2e = await runEndToEnd(w, opts, t, worker);
      lost = e2e.lost;
      section('2. end to end: POST /ingest/metrics, detector state in Redis', e2e.lines);
      row('end to end, /ingest/metrics', e2e.pointsPerSecond, TARGET_E2E);
    } finally {
      await worker?.stop();
      await t?.close().catch((err: Error) => process.stderr.write(`bench: clean-up: ${err.message}\n`));
    }
  }
  if (runs('naive') && !interrupted) {
    process.stderr.write('bench: naive approach\n');
    const naive = await runNaive(w, opts);
    section(`3. naive: a Redis list of the last ${NAIVE_WINDOW} values per series, z-score`, naive.lines);
    const e2e = rates.get('end to end, /ingest/metrics');
    const ratio =
      e2e === undefined ? 'comparison' : `end to end is ${fmt(e2e / naive.pointsPerSecond, 2)}× this`;
    row('naive, Redis list per point', naive.pointsPerSecond, ratio);
  }
  if (interrupted) throw new Error('interrupted');
  out.push('', `${'figure'.padEnd(30)}${'points/s'.padStart(12)}   target`, ...rows);
  if (runs('e2e')) out.push(`loss (end to end): ${lost === 0 ? 'LOST = 0' : `LOST ${fmt(lost)}`}`);
  process.stdout.write(`${out.join('\n')}\n`);
  return lost === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
