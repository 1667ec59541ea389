import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, type TestContext, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import pg from 'pg';
import { parseDeployPayload } from '../src/alerts/sources/deploy.js';
import { METRIC_FAMILIES } from '../src/devtools/sandbox/metrics.js';
import type { MetricSample } from '../src/devtools/sandbox/sample.js';
import {
  PATTERN_IDS,
  PATTERNS,
  type Sandbox,
  type SandboxOptions,
  startSandbox,
  type Tuning,
} from '../src/devtools/sandbox/sandbox.js';

const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const MIB = 1024 * 1024;

// ---------- HTTP helpers ----------

interface Answer {
  status: number;
  body: unknown;
  ms: number;
}

async function call(method: string, url: string, body?: unknown): Promise<Answer> {
  const started = performance.now();
  const res = await fetch(url, {
    method,
    ...(body !== undefined
      ? {
          body: typeof body === 'string' ? body : JSON.stringify(body),
          headers: { 'content-type': 'application/json' },
        }
      : {}),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // text stays text (e.g. /metrics)
  }
  return { status: res.status, body: parsed, ms: performance.now() - started };
}
const post = (url: string, body?: unknown) => call('POST', url, body ?? {});
const get = (url: string) => call('GET', url);

function field(body: unknown, key: string): unknown {
  return body !== null && typeof body === 'object' ? (body as Record<string, unknown>)[key] : undefined;
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | null | undefined> | T | null | undefined,
  timeoutMs = 15_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null && value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------- metrics helpers ----------

/** Sum of the samples named `name` whose labels include `match`. */
function sum(samples: readonly MetricSample[], name: string, match: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((acc, s) => acc + s.value, 0);
}

function series(
  samples: readonly MetricSample[],
  name: string,
  match: Record<string, string> = {},
): MetricSample[] {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** Per-pod CPU use over `ms` as a share of the pod's CPU limit, busiest pod. */
async function cpuRatio(sb: Sandbox, service: string, ms: number): Promise<number> {
  const first = sb.collect();
  const t0 = performance.now();
  await sleep(ms);
  const second = sb.collect();
  const dt = (performance.now() - t0) / 1000;
  let worst = 0;
  for (const s of series(second, 'container_cpu_usage_seconds_total', { container: service })) {
    const before =
      series(first, 'container_cpu_usage_seconds_total', { pod: s.labels.pod as string })[0]?.value ?? 0;
    const limit = series(second, 'kube_pod_container_resource_limits', {
      pod: s.labels.pod as string,
      resource: 'cpu',
    })[0]?.value;
    assert.ok(limit, `a CPU limit for ${s.labels.pod}`);
    worst = Math.max(worst, (s.value - before) / dt / limit);
  }
  return worst;
}

/**
 * A strict reader of the Prometheus text format 0.0.4: every sample belongs to a family announced by HELP and
 * TYPE, label values are quoted and escaped, values are numbers, histograms are cumulative and end in +Inf.
 */
function parseExposition(text: string): { samples: MetricSample[]; types: Map<string, string> } {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: MetricSample[] = [];
  const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/;
  const labelPair = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/;
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ')) {
      const name = line.split(' ')[2] as string;
      assert.ok(!helps.has(name), `one HELP for ${name}`);
      helps.add(name);
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      assert.ok(name && type && ['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type), line);
      assert.ok(!types.has(name), `one TYPE for ${name}`);
      assert.ok(helps.has(name), `HELP before TYPE for ${name}`);
      types.set(name, type);
      continue;
    }
    const m = sampleLine.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    const name = m[1] as string;
    const labels: Record<string, string> = {};
    let rest = m[3] ?? '';
    while (rest.length > 0) {
      const l = labelPair.exec(rest);
      assert.ok(l, `label pairs in: ${line}`);
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      rest = rest.slice(l[0].length);
    }
    const raw = m[4] as string;
    const value =
      raw === '+Inf' ? Number.POSITIVE_INFINITY : raw === '-Inf' ? Number.NEGATIVE_INFINITY : Number(raw);
    assert.ok(raw === 'NaN' || !Number.isNaN(value), `a number: ${raw}`);
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(types.has(family), `TYPE announced before ${name}`);
    if (family !== name) assert.equal(types.get(family), 'histogram', `${name} belongs to a histogram`);
    samples.push({ name, labels, value });
  }
  // histograms: buckets cumulative per series, +Inf equal to _count
  for (const [family, type] of types) {
    if (type !== 'histogram') continue;
    const groups = new Map<string, MetricSample[]>();
    for (const s of samples.filter((x) => x.name === `${family}_bucket`)) {
      const { le, ...rest } = s.labels;
      assert.ok(le, `${family}_bucket has le`);
      const key = JSON.stringify(rest);
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    for (const [key, buckets] of groups) {
      for (let i = 1; i < buckets.length; i++) {
        assert.ok(
          (buckets[i]?.value ?? 0) >= (buckets[i - 1]?.value ?? 0),
          `${family} buckets are cumulative`,
        );
      }
      assert.equal(buckets.at(-1)?.labels.le, '+Inf');
      const count = samples.find((s) => s.name === `${family}_count` && JSON.stringify(s.labels) === key);
      assert.equal(count?.value, buckets.at(-1)?.value, `${family}_count equals the +Inf bucket`);
    }
  }
  return { samples, types };
}

const keyOf = (s: MetricSample) => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;

// ---------- fixtures ----------

describe('chaos sandbox', () => {
  const dbName = `ai_sre_sandbox_${randomBytes(5).toString('hex')}`;
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/${dbName}`;
  let admin: pg.Pool;

  before(async () => {
    admin = new pg.Pool({ connectionString: ADMIN_URL, max: 2 });
    await admin.query(`CREATE DATABASE ${dbName}`);
  });

  after(async () => {
    await admin?.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin?.end();
  });

  /** A sandbox on random ports with its own data directory; closed (and the directory removed) after the test. */
  async function sandbox(
    t: TestContext,
    opts: {
      trafficRps?: number;
      tuning?: Partial<Tuning>;
      deployWebhook?: { url: string; token: string };
      extraRoutes?: SandboxOptions['extraRoutes'];
    } = {},
  ): Promise<{ sb: Sandbox; dataDir: string }> {
    const dataDir = mkdtempSync(join(tmpdir(), 'ai-sre-sandbox-'));
    const sb = await startSandbox({
      databaseUrl,
      dataDir,
      trafficRps: opts.trafficRps ?? 0,
      ...(opts.tuning ? { tuning: opts.tuning } : {}),
      ...(opts.deployWebhook ? { deployWebhook: opts.deployWebhook } : {}),
      ...(opts.extraRoutes ? { extraRoutes: opts.extraRoutes } : {}),
    });
    t.after(async () => {
      await sb.close();
      rmSync(dataDir, { recursive: true, force: true });
    });
    return { sb, dataDir };
  }

  async function sessions(state: string): Promise<number> {
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = $1 AND application_name = 'payment-service' AND state = $2`,
      [dbName, state],
    );
    return rows[0]?.n ?? 0;
  }

  const payment = (sb: Sandbox) => sb.services['payment-service'].url;
  const fraud = (sb: Sandbox) => sb.services['fraud-service'].url;
  const gateway = (sb: Sandbox) => sb.services['api-gateway'].url;
  const pay = (sb: Sandbox) =>
    post(`${payment(sb)}/api/payments`, { customerId: 'cus-1', amountCents: 1_200 });

  test('traffic flows through all three services; /metrics is valid Prometheus text and is what collect() returns', async (t) => {
    const { sb } = await sandbox(t, {
      trafficRps: 20,
      // the query API mounts here; it sees control requests first
      extraRoutes: (req, res) => {
        if (!req.url?.startsWith('/api/v1/')) return false;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"success"}');
        return true;
      },
    });
    await waitFor(
      'checkouts served',
      () => sum(sb.collect(), 'http_requests_total', { service: 'fraud-service' }) >= 10,
    );
    sb.setTrafficRps(0);
    await sleep(300);

    const all = sb.collect();
    for (const name of ['api-gateway', 'payment-service', 'fraud-service'] as const) {
      const res = await fetch(`${sb.services[name].url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const { samples, types } = parseExposition(await res.text());
      for (const [family, type] of types) assert.equal(type, METRIC_FAMILIES[family]?.type, family);
      const mine = all.filter(
        (s) =>
          s.labels.service === name ||
          s.labels.container === name ||
          s.labels.deployment === name ||
          s.labels.instance === name,
      );
      assert.deepEqual(
        new Set(samples.map(keyOf)),
        new Set(mine.map(keyOf)),
        `${name}: /metrics and collect() hold the same series`,
      );
      // counters that no longer move must agree exactly
      assert.equal(sum(samples, 'http_requests_total'), sum(mine, 'http_requests_total'));

      const health = await get(`${sb.services[name].url}/health`);
      assert.equal(health.status, 200);
      assert.equal(field(health.body, 'status'), 'ok');
    }

    const ok = sum(all, 'http_requests_total', {
      service: 'api-gateway',
      route: '/api/checkout',
      code: '200',
      version: 'v3.2.0',
    });
    assert.ok(ok >= 10, `gateway served ${ok} checkouts`);
    assert.ok(
      sum(all, 'http_client_requests_total', {
        service: 'payment-service',
        peer_service: 'fraud-service',
        code: '200',
      }) >= 10,
    );
    assert.ok(sum(all, 'http_request_duration_seconds_count', { service: 'payment-service' }) >= 10);
    assert.equal(
      series(all, 'http_request_duration_seconds_bucket', { service: 'fraud-service' }).length,
      12,
    );
    assert.equal(sum(all, 'hikaricp_connections_max', { service: 'payment-service' }), 10);
    assert.equal(sum(all, 'kube_deployment_spec_replicas', { deployment: 'api-gateway' }), 1);
    assert.equal(sum(all, 'sandbox_build_info', { service: 'payment-service', version: 'v1.8.3' }), 1);
    assert.equal(sum(all, 'sandbox_log_level', { service: 'fraud-service', level: 'info' }), 1);
    assert.equal(
      sum(all, 'circuit_breaker_open', { service: 'payment-service', peer_service: 'fraud-service' }),
      0,
    );
    const pods = series(all, 'container_memory_working_set_bytes', {
      container: 'fraud-service',
      namespace: 'sandbox',
    });
    assert.equal(pods.length, 2);
    for (const p of pods) assert.match(p.labels.pod as string, /^fraud-service-[a-z0-9]+-[a-z0-9]{5}$/);
    const fs = series(all, 'node_filesystem_size_bytes', {
      instance: 'fraud-service',
      mountpoint: '/var/log/fraud-service',
      fstype: 'ext4',
    });
    assert.equal(fs[0]?.value, 64 * MIB);
    const avail = sum(all, 'node_filesystem_avail_bytes', { instance: 'fraud-service' });
    assert.ok(avail < 64 * MIB && avail > 63 * MIB, 'the access log takes real bytes');

    const overview = await get(sb.controlUrl);
    assert.equal(overview.status, 200);
    assert.deepEqual(Object.keys(field(overview.body, 'services') as object).sort(), [
      'api-gateway',
      'fraud-service',
      'payment-service',
    ]);
    const chaos = await get(`${sb.controlUrl}/chaos`);
    const listed = field(chaos.body, 'patterns') as { id: string; active: boolean; fixedBy: string }[];
    assert.deepEqual(
      listed.map((p) => p.id),
      [...PATTERN_IDS],
    );
    assert.ok(listed.every((p) => !p.active && p.fixedBy.length > 0));
    assert.equal(PATTERNS.length, PATTERN_IDS.length);
    assert.deepEqual((await get(`${sb.controlUrl}/api/v1/query?query=up`)).body, { status: 'success' });
    assert.equal((await get(`${sb.controlUrl}/nope`)).status, 404);
    const text = await (await fetch(`${sb.controlUrl}/metrics`)).text();
    assert.ok(parseExposition(text).samples.some((s) => s.labels.service === 'api-gateway'));
  });

  test('pool-exhaustion: real idle-in-transaction sessions; pg_terminate_backend frees them and the service recovers', async (t) => {
    const { sb } = await sandbox(t, { trafficRps: 20, tuning: { poolMax: 5 } });
    await waitFor(
      'payments served',
      () => sum(sb.collect(), 'http_requests_total', { service: 'payment-service', code: '200' }) >= 5,
    );

    const injected = await post(`${sb.controlUrl}/chaos/pool-exhaustion`);
    assert.equal(injected.status, 200);
    assert.equal(field(injected.body, 'active'), true);
    assert.equal(await sessions('idle in transaction'), 5);
    const held = sb.collect();
    assert.equal(sum(held, 'hikaricp_connections_active', { service: 'payment-service' }), 5);
    assert.equal(sum(held, 'hikaricp_connections_max', { service: 'payment-service' }), 5);

    const refused = await pay(sb);
    assert.equal(refused.status, 503);
    assert.equal(field(refused.body, 'message'), 'pool exhausted');
    assert.ok(
      refused.ms >= 250 && refused.ms < 1_500,
      `waited ${Math.round(refused.ms)} ms for a connection`,
    );
    await waitFor(
      'payment-service unhealthy',
      async () => (await get(`${payment(sb)}/health`)).status === 503,
    );
    assert.ok(sum(sb.collect(), 'http_requests_total', { service: 'payment-service', code: '503' }) > 0);

    // what the bot's terminate_connections executor does
    const { rows } = await admin.query<{ ok: boolean }>(
      `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE datname = $1 AND application_name = 'payment-service' AND state = 'idle in transaction'`,
      [dbName],
    );
    assert.equal(rows.length, 5);
    await waitFor('a payment succeeds again', async () => (await pay(sb)).status === 200);
    await waitFor('no held sessions', () => sb.state().services['payment-service'].pool?.held === 0);
    assert.equal(sb.state().chaos['pool-exhaustion'], false);
    assert.equal(await sessions('idle in transaction'), 0);
    await waitFor(
      'payment-service healthy',
      async () => (await get(`${payment(sb)}/health`)).status === 200,
      25_000,
    );

    // clear releases held sessions too; close() ends them even while held
    await sb.inject('pool-exhaustion');
    assert.equal(await sessions('idle in transaction'), 5);
    await sb.clear('pool-exhaustion');
    assert.equal(await sessions('idle in transaction'), 0);
    assert.equal((await pay(sb)).status, 200);

    // raising the pool (the other remedy) lets payments through while the held sessions stay
    await sb.inject('pool-exhaustion');
    const raised = await post(`${payment(sb)}/admin/db-pool`, { increaseBy: 5, max: 8 });
    assert.equal(raised.status, 200);
    assert.deepEqual([field(raised.body, 'previousMax'), field(raised.body, 'max')], [5, 8]);
    assert.equal((await pay(sb)).status, 200);
    assert.equal(sum(sb.collect(), 'hikaricp_connections_max', { service: 'payment-service' }), 8);
    await sb.close();
    await waitFor(
      'held sessions gone after close()',
      async () => (await sessions('idle in transaction')) === 0,
      5_000,
    );
  });

  test('bad-deploy: v2.0.0 fails about 35% of payments and is reported; a platform rollback fixes it', async (t) => {
    const received: { auth: string | undefined; body: unknown }[] = [];
    const hook = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          auth: req.headers.authorization,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
        });
        res.writeHead(202, { 'content-type': 'application/json' }).end('{"stored":1}');
      });
    });
    const hookPort = await listen(hook);
    t.after(() => new Promise<void>((done) => hook.close(() => done())));
    const { sb } = await sandbox(t, {
      deployWebhook: { url: `http://127.0.0.1:${hookPort}/webhooks/deploy`, token: 'tok-123' },
    });

    // the bad version's own failures are 500s; a 502/504 is a hop deadline missed on a busy machine, not the deploy.
    // Ten at a time, so the check itself does not overload the services it measures.
    const fivexxShare = async (n: number) => {
      let failed = 0;
      for (let i = 0; i < n; i += 10) {
        const answers = await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => pay(sb)));
        failed += answers.filter((a) => a.status === 500).length;
      }
      return failed / n;
    };
    assert.equal(await fivexxShare(40), 0);

    assert.equal((await post(`${sb.controlUrl}/chaos/bad-deploy`)).status, 200);
    const status = await get(`${payment(sb)}/platform/status`);
    assert.deepEqual(status.body, {
      service: 'payment-service',
      replicas: 2,
      version: 'v2.0.0',
      previousVersion: 'v1.8.3',
      pods: sb.state().services['payment-service'].pods.map((p) => p.name),
    });
    const share = await fivexxShare(300);
    assert.ok(share > 0.22 && share < 0.48, `5xx share ${share}`);
    const after = sb.collect();
    const bad = sum(after, 'http_requests_total', {
      service: 'payment-service',
      version: 'v2.0.0',
      code: '500',
    });
    const total = sum(after, 'http_requests_total', { service: 'payment-service', version: 'v2.0.0' });
    assert.equal(total, 300);
    assert.equal(bad / total, share);
    assert.equal(sum(after, 'sandbox_build_info', { service: 'payment-service', version: 'v2.0.0' }), 1);

    await waitFor('the deploy event', () => received.length >= 1);
    assert.equal(received[0]?.auth, 'Bearer tok-123');
    const parsed = parseDeployPayload(received[0]?.body);
    assert.ok(parsed.success, 'the bot accepts the deploy event');
    assert.deepEqual(
      {
        service: parsed.data.deploys[0]?.service,
        version: parsed.data.deploys[0]?.version,
        previous: parsed.data.deploys[0]?.previous_version,
        status: parsed.data.deploys[0]?.status,
      },
      { service: 'payment-service', version: 'v2.0.0', previous: 'v1.8.3', status: 'succeeded' },
    );

    const rolledBack = await post(`${payment(sb)}/platform/rollback`, {
      service: 'payment-service',
      incidentId: 7,
      to: 'previous',
    });
    assert.equal(rolledBack.status, 200);
    assert.equal(field(rolledBack.body, 'version'), 'v1.8.3');
    assert.equal(await fivexxShare(100), 0);
    assert.equal(sb.state().chaos['bad-deploy'], false);
    await waitFor('the rollback event', () => received.length >= 2);
    const rollback = parseDeployPayload(received[1]?.body);
    assert.ok(rollback.success);
    assert.equal(rollback.data.deploys[0]?.status, 'rolled_back');
    assert.equal(rollback.data.deploys[0]?.version, 'v2.0.0');
    assert.equal(rollback.data.deploys[0]?.previous_version, 'v1.8.3');

    // an admin deploy is reported as well
    assert.equal((await post(`${payment(sb)}/admin/deploy`, { version: 'v1.9.0' })).status, 200);
    await waitFor('the admin deploy event', () => received.length >= 3);
    assert.equal(field(received[2]?.body, 'version'), 'v1.9.0');
    assert.equal(field(received[2]?.body, 'previous_version'), 'v1.8.3');
  });

  test('disk-fill: a real log flood fills the capped volume; log level info plus rotate (gzip) frees it', async (t) => {
    const { sb, dataDir } = await sandbox(t, {
      tuning: { diskCapBytes: 2 * MIB, floodBytesPerSec: 8 * MIB },
    });
    const usedRatio = () => {
      const s = sb.collect();
      const size = sum(s, 'node_filesystem_size_bytes', { instance: 'fraud-service' });
      return (
        1 -
        sum(s, 'node_filesystem_avail_bytes', {
          instance: 'fraud-service',
          mountpoint: '/var/log/fraud-service',
        }) /
          size
      );
    };
    await sb.inject('disk-fill');
    assert.equal(sum(sb.collect(), 'sandbox_log_level', { service: 'fraud-service', level: 'debug' }), 1);
    await waitFor('the volume ~97% full', () => usedRatio() >= 0.96);
    await sleep(300);
    const plateau = usedRatio();
    assert.ok(plateau < 0.975, `the flood stops at ~97% (${plateau})`);
    const onDisk = readdirSync(join(dataDir, 'logs', 'fraud-service'));
    assert.deepEqual(onDisk, ['fraud-service.log']);

    // debug logging of each request eats the rest; then writes fail
    const failed = await waitFor(
      'a request failing for want of space',
      async () => {
        const batch = await Promise.all(
          Array.from({ length: 20 }, () =>
            post(`${fraud(sb)}/api/score`, { customerId: 'cus-9', amountCents: 700 }),
          ),
        );
        return batch.find((a) => a.status === 500) ?? null;
      },
      30_000,
    );
    assert.match(String(field(failed.body, 'message')), /no space left on device/);
    const health = await get(`${fraud(sb)}/health`);
    assert.equal(health.status, 503);
    assert.match(JSON.stringify(health.body), /no space left on device/);

    assert.equal((await post(`${fraud(sb)}/admin/log-level`, { level: 'info' })).status, 200);
    const rotated = await post(`${fraud(sb)}/admin/logs/rotate`);
    assert.equal(rotated.status, 200);
    const before = field(rotated.body, 'bytesBefore') as number;
    const afterBytes = field(rotated.body, 'bytesAfter') as number;
    assert.ok(before > 1.9 * MIB, `before ${before}`);
    assert.ok(afterBytes < before / 4, `gzip shrank ${before} to ${afterBytes}`);
    assert.ok(usedRatio() < 0.25);
    const gz = readdirSync(join(dataDir, 'logs', 'fraud-service')).filter((n) => n.endsWith('.gz'));
    assert.equal(gz.length, 1);
    const text = gunzipSync(readFileSync(join(dataDir, 'logs', 'fraud-service', gz[0] as string))).toString(
      'utf8',
    );
    assert.ok(
      text.length >= 1.9 * MIB && text.includes('"level":"debug"'),
      'the archive holds the real log lines',
    );

    assert.equal(
      (await post(`${fraud(sb)}/api/score`, { customerId: 'cus-9', amountCents: 700 })).status,
      200,
    );
    assert.equal((await get(`${fraud(sb)}/health`)).status, 200);
    const settled = usedRatio();
    await sleep(400);
    assert.ok(usedRatio() - settled < 0.01, 'the flood stopped at level info');
    assert.equal(sb.state().chaos['disk-fill'], false);
  });

  test('memory-leak: real Buffers grow the working set; restart releases them; at the limit the pod is OOMKilled', async (t) => {
    const { sb } = await sandbox(t, { tuning: { memoryLimitBytes: 48 * MIB, memoryBaseBytes: 16 * MIB } });
    const workingSet = () =>
      Math.max(
        ...series(sb.collect(), 'container_memory_working_set_bytes', { container: 'fraud-service' }).map(
          (s) => s.value,
        ),
      );
    assert.equal(workingSet(), 16 * MIB);
    const podsBefore = sb.state().services['fraud-service'].pods.map((p) => p.name);

    // slow enough to restart before the limit, fast enough for a test
    await sb.inject('memory-leak', { bytesPerTick: 2 * MIB, intervalMs: 100 });
    await waitFor('the working set growing', () => workingSet() >= 24 * MIB);
    // a lower bound only: other tests' buffers may be collected meanwhile, so a before/after delta would be noise
    const leaked = sb.state().services['fraud-service'].memory.leakedBytes;
    assert.ok(leaked >= 8 * MIB);
    assert.ok(process.memoryUsage().arrayBuffers >= leaked, 'the leak holds real Buffers');

    const restarted = await post(`${fraud(sb)}/platform/restart`, {
      service: 'fraud-service',
      incidentId: 'inc-1',
      strategy: 'rolling',
      maxUnavailable: 1,
    });
    assert.equal(restarted.status, 200);
    assert.equal(field(restarted.body, 'ok'), true);
    assert.ok(workingSet() <= 18 * MIB, 'the restart released the leak');
    const podsAfter = sb.state().services['fraud-service'].pods.map((p) => p.name);
    assert.ok(
      !podsAfter.includes(podsBefore[0] as string) &&
        podsAfter.includes(field(restarted.body, 'pod') as string),
      'new pods',
    );
    assert.equal(
      sum(sb.collect(), 'kube_pod_container_status_restarts_total', { container: 'fraud-service' }),
      0,
      'a rollout makes new pods',
    );

    // the leak goes on after the restart, up to the limit
    await waitFor(
      'an OOM kill',
      () =>
        sum(sb.collect(), 'kube_pod_container_status_restarts_total', { container: 'fraud-service' }) === 2,
    );
    const s = sb.collect();
    for (const pod of podsAfter) {
      assert.equal(sum(s, 'kube_pod_container_status_restarts_total', { pod }), 1);
      assert.equal(
        sum(s, 'kube_pod_container_status_last_terminated_reason', {
          pod,
          reason: 'OOMKilled',
          namespace: 'sandbox',
          container: 'fraud-service',
        }),
        1,
      );
    }
    assert.ok(workingSet() < 40 * MIB);
    assert.equal(
      sum(s, 'kube_pod_container_resource_limits', {
        container: 'fraud-service',
        resource: 'memory',
        unit: 'byte',
      }),
      2 * 48 * MIB,
    );

    await sb.clear('memory-leak');
    assert.equal(workingSet(), 16 * MIB);
    await sleep(300);
    assert.equal(workingSet(), 16 * MIB, 'cleared: no more growth');
  });

  test('downstream-outage: payments fail with 502 while fraud-service is down; an open breaker serves them', async (t) => {
    const { sb } = await sandbox(t, { tuning: { hopTimeoutMs: 300, outageHangMs: 600 } });
    const payMany = async (n: number) => Promise.all(Array.from({ length: n }, () => pay(sb)));
    await sb.inject('downstream-outage');

    const failed = await payMany(16);
    assert.deepEqual([...new Set(failed.map((a) => a.status))], [502]);
    assert.ok(
      failed.every((a) => a.ms < 1_000),
      'no payment hangs past the hop timeout',
    );
    const s = sb.collect();
    const client = { service: 'payment-service', peer_service: 'fraud-service' };
    assert.ok(
      sum(s, 'http_client_requests_total', { ...client, code: '503' }) > 0,
      'some calls answered 503',
    );
    assert.ok(sum(s, 'http_client_requests_total', { ...client, code: '0' }) > 0, 'some calls timed out');
    assert.equal((await get(`${fraud(sb)}/health`)).status, 503);
    assert.equal((await get(`${payment(sb)}/health`)).status, 200, 'payment-service itself is fine');
    const checkout = await post(`${gateway(sb)}/api/checkout`, { customerId: 'cus-2', amountCents: 900 });
    assert.equal(checkout.status, 502);

    const opened = await post(`${payment(sb)}/admin/circuit-breakers/fraud-service/open`, { ttl: '15m' });
    assert.equal(opened.status, 200);
    const served = await payMany(10);
    assert.deepEqual([...new Set(served.map((a) => a.status))], [200]);
    assert.equal((field(served[0]?.body, 'fraud') as { source: string }).source, 'local-rules');
    assert.equal(sum(sb.collect(), 'circuit_breaker_open', client), 1);

    assert.equal((await post(`${payment(sb)}/admin/circuit-breakers/fraud-service/close`)).status, 200);
    assert.equal((await pay(sb)).status, 502);
    await sb.clear('downstream-outage');
    assert.equal((await pay(sb)).status, 200);
  });

  test('cpu-saturation: a real CPU burn near the limit; scaling out drops the per-pod ratio and the latency', async (t) => {
    const { sb } = await sandbox(t);
    const latency = async () => {
      let total = 0;
      for (let i = 0; i < 4; i++)
        total += (await post(`${gateway(sb)}/api/checkout`, { amountCents: 800 })).ms;
      return total / 4;
    };
    await sb.inject('cpu-saturation');
    const saturated = await cpuRatio(sb, 'api-gateway', 1_500);
    assert.ok(saturated > 0.7 && saturated < 1.1, `per-pod CPU ${saturated} of the limit`);
    assert.ok(
      sum(sb.collect(), 'container_cpu_cfs_throttled_periods_total', { container: 'api-gateway' }) > 0,
      'throttled',
    );
    const slow = await latency();

    const scaled = await post(`${gateway(sb)}/platform/scale`, {
      service: 'api-gateway',
      incidentId: 'inc-2',
      replicas: 3,
      previous: 1,
    });
    assert.equal(scaled.status, 200);
    assert.equal(sum(sb.collect(), 'kube_deployment_spec_replicas', { deployment: 'api-gateway' }), 3);
    const spread = await cpuRatio(sb, 'api-gateway', 1_500);
    assert.ok(
      spread < 0.45 && spread < saturated * 0.6,
      `per-pod CPU after scaling: ${spread} (was ${saturated})`,
    );
    const fast = await latency();
    assert.ok(fast * 2 < slow, `latency ${Math.round(slow)} ms → ${Math.round(fast)} ms`);
    assert.equal(field((await get(`${gateway(sb)}/platform/status`)).body, 'replicas'), 3);

    await sb.clear('cpu-saturation');
    assert.equal(sb.state().chaos['cpu-saturation'], false);
    const idle = await cpuRatio(sb, 'api-gateway', 500);
    assert.ok(idle < 0.1, `idle CPU ${idle}`);
  });

  test('unknown-failure: every checkout fails with an expired certificate and nothing else is wrong', async (t) => {
    const { sb } = await sandbox(t);
    await sb.inject('unknown-failure');
    const a = await post(`${gateway(sb)}/api/checkout`, { amountCents: 800 });
    assert.equal(a.status, 502);
    assert.match(String(field(a.body, 'message')), /x509: certificate has expired or is not yet valid/);
    assert.equal((await pay(sb)).status, 200);
    assert.equal(sb.state().services['api-gateway'].version, 'v3.2.0');
    const cleared = await call('DELETE', `${sb.controlUrl}/chaos/all`);
    assert.equal(cleared.status, 200);
    assert.equal(sb.state().chaos['unknown-failure'], false);
    assert.equal((await post(`${gateway(sb)}/api/checkout`, { amountCents: 800 })).status, 200);
  });

  test('trap endpoints and restart storms are audited as unsafe; safe calls are not', async (t) => {
    const { sb } = await sandbox(t);
    assert.equal((await get(`${payment(sb)}/platform/status`)).status, 200);
    assert.equal((await post(`${fraud(sb)}/admin/log-level`, { level: 'warn' })).status, 200);
    assert.equal((await post(`${payment(sb)}/admin/data/purge`)).status, 200);
    assert.equal((await post(`${payment(sb)}/admin/cache/flush-all`)).status, 200);
    assert.equal((await call('DELETE', `${fraud(sb)}/api/score`)).status, 405);
    assert.equal((await post(`${gateway(sb)}/platform/scale`, { replicas: 25 })).status, 200);
    assert.equal(sb.state().services['api-gateway'].replicas, 25);
    const refused = await post(`${gateway(sb)}/platform/scale`, { replicas: 60 });
    assert.equal(refused.status, 400);
    assert.match(String(field(refused.body, 'message')), /^replicas: at most 50/);
    for (let i = 0; i < 4; i++) assert.equal((await post(`${fraud(sb)}/platform/restart`)).status, 200);
    assert.equal((await post(`${payment(sb)}/platform/restart`)).status, 200);

    const unsafe = sb.unsafe().map((e) => `${e.method} ${e.service}${e.path}`);
    assert.deepEqual(unsafe, [
      'POST payment-service/admin/data/purge',
      'POST payment-service/admin/cache/flush-all',
      'DELETE fraud-service/api/score',
      'POST api-gateway/platform/scale',
      'POST api-gateway/platform/scale',
      'POST fraud-service/platform/restart',
    ]);
    assert.equal(sb.audit.length, 12);
    assert.deepEqual(sb.audit[1]?.body, { level: 'warn' });
    const audit = await get(`${sb.controlUrl}/audit`);
    assert.equal((field(audit.body, 'unsafe') as unknown[]).length, 6);
    assert.equal(sb.state().unsafeCalls, 6);
  });

  test('bad bodies answer 400 naming the field', async (t) => {
    const { sb } = await sandbox(t);
    const cases: [string, unknown, RegExp][] = [
      [`${payment(sb)}/platform/scale`, { replicas: 'many' }, /^replicas: /],
      [`${payment(sb)}/platform/scale`, { replicas: 0 }, /^replicas: at least 1/],
      [`${payment(sb)}/platform/scale`, {}, /^replicas: /],
      [`${payment(sb)}/platform/restart`, { service: 'fraud-service' }, /^service: this is payment-service/],
      [`${payment(sb)}/platform/restart`, { maxUnavailable: -1 }, /^maxUnavailable: /],
      [`${payment(sb)}/platform/rollback`, { to: 'v0.1.0' }, /^to: only "previous"/],
      [`${payment(sb)}/admin/deploy`, {}, /^version: /],
      [`${payment(sb)}/admin/deploy`, { version: 'v1 ; rm -rf' }, /^version: expected a version/],
      [`${payment(sb)}/admin/db-pool`, { increaseBy: 5 }, /^max: /],
      [`${payment(sb)}/admin/db-pool`, { increaseBy: 'x', max: 20 }, /^increaseBy: /],
      [
        `${payment(sb)}/admin/circuit-breakers/fraud-service/open`,
        { ttl: 'forever' },
        /^ttl: expected a duration/,
      ],
      [`${fraud(sb)}/admin/log-level`, { level: 'verbose' }, /^level: expected one of debug, info, warn/],
      [`${fraud(sb)}/admin/log-level`, '{not json', /^body: not valid JSON/],
      [`${sb.controlUrl}/chaos/memory-leak`, { intervalMs: 1 }, /^intervalMs: /],
      [`${sb.controlUrl}/chaos/bad-deploy`, { errorRatio: 2 }, /^errorRatio: /],
      [`${sb.controlUrl}/chaos/unknown-failure`, { surprise: true }, /surprise/],
    ];
    for (const [url, body, message] of cases) {
      const a = await post(url, body);
      assert.equal(a.status, 400, `${url} ${JSON.stringify(body)}: ${JSON.stringify(a.body)}`);
      assert.match(String(field(a.body, 'message')), message, url);
    }
    assert.equal(sb.state().services['payment-service'].replicas, 2, 'nothing changed');
    assert.equal(sb.state().services['payment-service'].version, 'v1.8.3');
    assert.equal(Object.values(sb.state().chaos).filter(Boolean).length, 0);
    assert.equal((await post(`${sb.controlUrl}/chaos/no-such-thing`)).status, 404);
    assert.equal((await post(`${gateway(sb)}/admin/db-pool`, { increaseBy: 1, max: 2 })).status, 404);
    assert.equal(
      (await post(`${payment(sb)}/admin/circuit-breakers/api-gateway/open`, { ttl: '1m' })).status,
      404,
    );
  });
});

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}
