import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { createDetector } from '../src/detection/create-detector.js';
import { createDetectionService, decodeStoredSeries } from '../src/detection/detection-service.js';
import { MetricSample, parseCommonSample, seriesKeyOf } from '../src/detection/metric-sample.js';
import { hostileJson, hostileKey, hostileString, PROTO_KEYS } from './helpers/hostile-arbitraries.js';
import { deleteKeys, startTestApp, type TestApp } from './helpers/test-app.js';

const START = Date.UTC(2026, 10, 1);
const MINUTE = 60_000;

/** A noisy but steady series: a deterministic pseudo-random walk around 50. */
function steady(n: number, from = 0): { timestamp: number; value: number }[] {
  return Array.from({ length: n }, (_, i) => ({
    timestamp: START + (from + i) * MINUTE,
    value: 50 + Math.sin((from + i) * 1.7) * 2 + Math.cos((from + i) * 0.31) * 1.5,
  }));
}

describe('POST /ingest/metrics', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => {
    await t?.close();
  });

  test('bad samples are refused one by one with their reasons; good ones are kept', async () => {
    const res = await t.webhook('/ingest/metrics', {
      samples: [
        { series: 'http_latency_p99', labels: { service: 'api' }, timestamp: START / 1000, value: 120 },
        { series: 'bad name!', timestamp: START / 1000, value: 1 },
        { series: 'http_latency_p99', labels: { service: 'api' }, timestamp: 'yesterday', value: 1 },
        {
          series: 'http_latency_p99',
          labels: { service: 'api' },
          timestamp: START / 1000 + 60,
          value: 'NaN',
        },
        {
          series: 'http_latency_p99',
          labels: { service: 'api' },
          timestamp: new Date(START + MINUTE).toISOString(),
          value: 125,
        },
      ],
    });
    assert.equal(res.status, 202);
    assert.equal(res.json.accepted, 2);
    const rejected = res.json.rejected as { index: number; reason: string }[];
    assert.deepEqual(
      rejected.map((r) => r.index),
      [1, 2, 3],
    );
    assert.match(rejected[0]?.reason ?? '', /series: expected a metric name/);
    assert.match(rejected[1]?.reason ?? '', /timestamp: expected epoch seconds\/ms or an RFC 3339 time/);
    assert.match(rejected[2]?.reason ?? '', /value: expected a finite number/);
  });

  test('a point not after the series’ last one is refused; other series are unaffected', async () => {
    const res = await t.webhook('/ingest/metrics', [
      { series: 'http_latency_p99', labels: { service: 'api' }, timestamp: START / 1000, value: 1 },
      { series: 'queue_depth', labels: { service: 'api' }, timestamp: START / 1000, value: 3 },
    ]);
    assert.equal(res.status, 202);
    assert.equal(res.json.accepted, 1);
    assert.match(
      (res.json.rejected as { reason: string }[])[0]?.reason ?? '',
      /is not after the series' last point/,
    );
  });

  test('nothing valid: 400 naming each problem; no token: 401', async () => {
    const res = await t.webhook('/ingest/metrics', [{ series: 'x' }]);
    assert.equal(res.status, 400);
    assert.match(String((res.json.issues as string[])[0]), /^0: /);
    const unauth = await t.webhook('/ingest/metrics', [], { token: null });
    assert.equal(unauth.status, 401);
  });
});

describe('detector state in Redis', () => {
  const prefix = `ai-sre-test-det-${randomBytes(4).toString('hex')}`;
  let redis: Redis;
  before(() => {
    redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    await deleteKeys(`${prefix}:*`);
    redis.disconnect();
  });

  test('survives a restart: a new service continues exactly where the old one stopped, with a TTL', async () => {
    const points = steady(600);
    const feed = (svc: ReturnType<typeof createDetectionService>, from: number, to: number) =>
      svc.ingest(
        points.slice(from, to).map((p, i) => ({
          index: i,
          sample: { series: 'cpu', labels: { host: 'a' }, timestamp: p.timestamp, value: p.value },
        })),
      );
    const opts = { redis, prefix, ttlSeconds: 3600, threshold: 0 };
    const first = createDetectionService(opts);
    await feed(first, 0, 300);
    await first.close(); // a graceful stop writes the live states
    // a fresh service (the bot restarted) reads the state back from Redis
    const second = createDetectionService(opts);
    const after = await feed(second, 300, 600);
    await second.close();
    const continuous = createDetector();
    const expected = points.map((p) => continuous.update(p.timestamp, p.value)).slice(300);
    assert.deepEqual(
      after.anomalies.map((a) => a.likelihood),
      expected,
      'the restored detectors give the same likelihoods as one that never stopped',
    );
    const keys = await redis.keys(`${prefix}:detector:*`);
    assert.equal(keys.length, 1);
    const ttl = await redis.ttl(keys[0] as string);
    assert.ok(ttl > 3500 && ttl <= 3600, `the series expires when silent (ttl ${ttl})`);
  });
  test('a JSON state written by an earlier build is continued, and rewritten in the binary layout', async () => {
    const points = steady(400);
    const sample = (p: { timestamp: number; value: number }, index: number) => ({
      index,
      sample: { series: 'mem', labels: { host: 'b' }, timestamp: p.timestamp, value: p.value },
    });
    const old = createDetector();
    for (const p of points.slice(0, 250)) old.update(p.timestamp, p.value);
    const seriesKey = 'mem{host="b"}';
    const key = `${prefix}:detector:${createHash('sha1').update(seriesKey).digest('hex').slice(0, 24)}`;
    const last = (points[249] as { timestamp: number }).timestamp;
    await redis.set(
      key,
      JSON.stringify({
        k: seriesKey,
        t: last,
        d: old.toJSON(),
        r: { bits: 0, since: null, reported: false },
      }),
    );
    const svc = createDetectionService({ redis, prefix, ttlSeconds: 3600, threshold: 0 });
    const after = await svc.ingest(points.slice(250).map(sample));
    await svc.close();
    const expected = points.slice(250).map((p) => old.update(p.timestamp, p.value));
    assert.deepEqual(
      after.anomalies.map((a) => a.likelihood),
      expected,
      'the upgraded series keeps its model',
    );
    const stored = await redis.getBuffer(key);
    assert.ok(stored && stored[0] !== 0x7b, 'rewritten in the binary layout');
    const decoded = decodeStoredSeries(stored);
    assert.equal(decoded.key, seriesKey);
    assert.equal(decoded.detector.count, 400);
    assert.equal(decoded.last, (points[399] as { timestamp: number }).timestamp);
  });

  test('a series fed to two processes is reported as split; one process, or a restart, is not', async () => {
    const points = steady(40);
    const sample = (name: string, i: number) => ({
      index: 0,
      sample: { series: name, labels: { host: 'split' }, timestamp: points[i]?.timestamp ?? 0, value: 1 },
    });
    const reported: string[][] = [[], [], []];
    const svc = (n: number) =>
      createDetectionService({
        redis,
        prefix,
        ttlSeconds: 3600,
        threshold: 0,
        flushIntervalMs: 3_600_000,
        onSplitSeries: (keys) => reported[n]?.push(...keys),
      });
    // one process, then its restart: the new one continues from what the old one wrote
    const first = svc(0);
    for (let i = 0; i < 5; i++) {
      await first.ingest([sample('alone', i)]);
      await first.flush();
    }
    await first.close();
    const restarted = svc(1);
    for (let i = 5; i < 10; i++) {
      await restarted.ingest([sample('alone', i)]);
      await restarted.flush();
    }
    assert.equal(reported[0]?.length, 0);
    assert.equal(reported[1]?.length, 0, `a restart is not a split: ${reported[1]}`);
    // two processes at once, alternately fed the same series (a load balancer without series routing)
    const other = svc(2);
    for (let i = 10; i < 20; i += 2) {
      await restarted.ingest([sample('shared', i)]);
      await restarted.flush();
      await other.ingest([sample('shared', i + 1)]);
      await other.flush();
    }
    await restarted.close();
    await other.close();
    assert.ok(reported[1]?.includes('shared{host="split"}'), `process 1 saw the split: ${reported[1]}`);
    assert.ok(reported[2]?.includes('shared{host="split"}'), `process 2 saw the split: ${reported[2]}`);
    assert.ok(![...(reported[1] ?? []), ...(reported[2] ?? [])].includes('alone{host="split"}'));
  });

  test('a damaged state or another series’ state under the same key starts the series afresh', async () => {
    const svc = createDetectionService({ redis, prefix, ttlSeconds: 3600, threshold: 0 });
    const keyOf = (seriesKey: string) =>
      `${prefix}:detector:${createHash('sha1').update(seriesKey).digest('hex').slice(0, 24)}`;
    await redis.set(keyOf('disk{host="c"}'), Buffer.from([0x53, 0x31, 0, 0, 1, 2, 3]));
    // a collision: the stored value names another series
    const other = createDetectionService({
      redis,
      prefix: `${prefix}-other`,
      ttlSeconds: 3600,
      threshold: 0,
    });
    await other.ingest([{ index: 0, sample: { series: 'x', labels: {}, timestamp: START, value: 1 } }]);
    await other.close();
    const foreign = await redis.getBuffer(
      `${prefix}-other:detector:${createHash('sha1').update('x').digest('hex').slice(0, 24)}`,
    );
    assert.ok(foreign);
    await redis.set(keyOf('net{host="c"}'), foreign);
    const result = await svc.ingest([
      { index: 0, sample: { series: 'disk', labels: { host: 'c' }, timestamp: START, value: 5 } },
      { index: 1, sample: { series: 'net', labels: { host: 'c' }, timestamp: START, value: 5 } },
    ]);
    await svc.close();
    assert.equal(result.accepted, 2);
    for (const seriesKey of ['disk{host="c"}', 'net{host="c"}']) {
      const stored = await redis.getBuffer(keyOf(seriesKey));
      assert.ok(stored);
      const decoded = decodeStoredSeries(stored);
      assert.equal(decoded.key, seriesKey);
      assert.equal(decoded.detector.count, 1, `${seriesKey} started afresh`);
    }
    await deleteKeys(`${prefix}-other:*`);
  });
});

describe('Prometheus poller', () => {
  const prefix = `ai-sre-test-poll-${randomBytes(4).toString('hex')}`;
  let redis: Redis;
  let server: import('node:http').Server;
  let url: string;
  const asked: string[] = [];
  before(async () => {
    redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
    const { createServer } = await import('node:http');
    server = createServer((req, res) => {
      const query = new URL(req.url ?? '/', 'http://x').searchParams.get('query') ?? '';
      asked.push(query);
      if (query === 'broken') {
        res.writeHead(500).end('boom');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          status: 'success',
          data: {
            resultType: 'vector',
            result: [
              { metric: { __name__: 'up', job: 'api' }, value: [START / 1000, '1'] },
              { metric: { __name__: 'up', job: 'db' }, value: [START / 1000, 'NaN'] },
            ],
          },
        }),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    await deleteKeys(`${prefix}:*`);
    redis.disconnect();
    await new Promise((r) => server.close(r));
  });

  test('each returned series feeds its detector; a failing query is reported and the others go on', async () => {
    const { pollOnce } = await import('../src/detection/prometheus-poller.js');
    const { createLogger } = await import('../src/logger.js');
    const detection = createDetectionService({ redis, prefix, ttlSeconds: 600, threshold: 0 });
    const result = await pollOnce({ prometheusUrl: url, detection, log: createLogger('silent') }, [
      { name: 'api_up', query: 'up' },
      { name: 'broken_query', query: 'broken' },
    ]);
    assert.deepEqual(asked.sort(), ['broken', 'up']);
    assert.deepEqual(result.failed, ['broken_query']);
    assert.equal(result.accepted, 1, 'the NaN sample is skipped');
    assert.deepEqual(result.anomalies[0]?.labels, { job: 'api' });
    assert.equal(result.anomalies[0]?.series, 'api_up');
    await detection.close();
    assert.equal((await redis.keys(`${prefix}:detector:*`)).length, 1);
  });
});

describe('live detectors in memory', () => {
  const prefix = `ai-sre-test-live-${randomBytes(4).toString('hex')}`;
  let redis: Redis;
  before(() => {
    redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    await deleteKeys(`${prefix}:*`);
    redis.disconnect();
  });

  test('states reach Redis in the background; evicted series are written and come back identical', async () => {
    const svc = createDetectionService({
      redis,
      prefix,
      ttlSeconds: 600,
      threshold: 0,
      maxLiveSeries: 2,
      flushIntervalMs: 50,
    });
    const points = steady(200);
    const sample = (host: string, p: { timestamp: number; value: number }) => ({
      series: 'cpu',
      labels: { host },
      timestamp: p.timestamp,
      value: p.value,
    });
    // three series through a cache of two: the first is evicted (and written) when the third arrives
    for (const host of ['a', 'b', 'c']) {
      await svc.ingest(points.slice(0, 100).map((p, index) => ({ index, sample: sample(host, p) })));
    }
    const back = await svc.ingest(points.slice(100).map((p, index) => ({ index, sample: sample('a', p) })));
    const continuous = createDetector();
    const expected = points.map((p) => continuous.update(p.timestamp, p.value)).slice(100);
    assert.deepEqual(
      back.anomalies.map((x) => x.likelihood),
      expected,
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(
      (await redis.keys(`${prefix}:detector:*`)).length,
      3,
      'every series written by the background flush',
    );
    await svc.close();
  });
});

describe('metric samples: the hand-checked common case', () => {
  /** samples near the boundary of valid: each field valid, invalid, or of another type, sometimes missing or extra */
  const often = <T, U>(valid: fc.Arbitrary<T>, other: fc.Arbitrary<U>): fc.Arbitrary<T | U> =>
    fc.oneof({ arbitrary: valid, weight: 4 }, { arbitrary: other, weight: 1 });
  const nearSample = fc
    .tuple(
      fc.record(
        {
          series: often(
            fc.constantFrom('cpu', 'http_requests_total', 'a:b.c-d', 'x'.repeat(200)),
            fc.oneof(fc.constantFrom('', '1cpu', 'x'.repeat(201)), hostileString),
          ),
          labels: often(
            fc.dictionary(
              often(
                fc.constantFrom('service', 'host', '_x', 'le'),
                fc.oneof(fc.constantFrom('1a', 'a-b', ...PROTO_KEYS), hostileKey),
              ),
              often(
                fc.constantFrom('api', '', '😀', 'v'.repeat(1000)),
                fc.oneof(fc.constantFrom('a\u0000', 'x\ud800', 'v'.repeat(1001)), hostileString),
              ),
              { maxKeys: 4 },
            ),
            fc.oneof(
              fc.array(fc.string(), { maxLength: 2 }),
              fc.constant(null),
              fc.constant(Object.fromEntries(Array.from({ length: 31 }, (_, i) => [`l${i}`, 'v']))),
            ),
          ),
          timestamp: often(
            fc.constantFrom(
              START / 1000,
              START,
              START / 1000 + 0.5,
              1e11 - 1,
              1e11,
              946684800,
              4102444800000,
            ),
            fc.oneof(
              fc.constantFrom(946684799.9, 4102444800001, '2026-11-01T00:00:00Z', '1761955200', 'soon'),
              fc.double(),
            ),
          ),
          value: often(
            fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer()),
            fc.oneof(fc.double(), fc.constantFrom('1', null, true)),
          ),
        },
        { requiredKeys: ['series', 'timestamp', 'value'] },
      ),
      fc.oneof({ arbitrary: fc.constant(null), weight: 5 }, { arbitrary: hostileJson, weight: 1 }),
    )
    .map(([sample, extra]) => (extra === null ? sample : { ...sample, extra }));

  test('whatever the hand check accepts, MetricSample accepts with the same result', () => {
    let common = 0;
    fc.assert(
      fc.property(
        fc.oneof({ arbitrary: nearSample, weight: 3 }, { arbitrary: hostileJson, weight: 1 }),
        (item) => {
          const fast = parseCommonSample(item);
          const parsed = MetricSample.safeParse(item);
          if (fast === null) return;
          common++;
          assert.ok(parsed.success, `zod refuses what the hand check accepted: ${JSON.stringify(item)}`);
          assert.deepEqual(fast, parsed.data);
        },
      ),
      { numRuns: 5000 },
    );
    assert.ok(common > 500, `the generator reaches the common case (${common} of 5000)`);
  });

  test('seriesKeyOf: labels sorted, values exactly as JSON strings', () => {
    const reference = (sample: { series: string; labels: Record<string, string> }) => {
      const labels = Object.keys(sample.labels)
        .sort()
        .map((k) => `${k}=${JSON.stringify(sample.labels[k])}`)
        .join(',');
      return labels ? `${sample.series}{${labels}}` : sample.series;
    };
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.string({ minLength: 1, maxLength: 8 }),
          fc.oneof(fc.string(), fc.string({ unit: 'binary' }), hostileString),
          { maxKeys: 5 },
        ),
        (labels) => {
          assert.equal(seriesKeyOf({ series: 'cpu', labels }), reference({ series: 'cpu', labels }));
        },
      ),
      { numRuns: 3000 },
    );
    assert.equal(
      seriesKeyOf({ series: 'up', labels: { job: 'a"b', host: 'x' } }),
      'up{host="x",job="a\\"b"}',
    );
  });

  test('the common case is the usual sample', () => {
    const sample = { series: 'cpu', labels: { service: 'api' }, timestamp: START / 1000, value: 0.5 };
    assert.deepEqual(parseCommonSample(sample), { ...sample, timestamp: START });
    assert.deepEqual(parseCommonSample({ series: 'cpu', timestamp: START, value: 1 }), {
      series: 'cpu',
      labels: {},
      timestamp: START,
      value: 1,
    });
    // left to the schema: string timestamps, prototype keys, bad text
    assert.equal(parseCommonSample({ ...sample, timestamp: '2026-11-01T00:00:00Z' }), null);
    assert.equal(parseCommonSample({ ...sample, labels: JSON.parse('{"__proto__":"x"}') }), null);
    assert.equal(parseCommonSample({ ...sample, labels: { service: 'a\u0000' } }), null);
    assert.equal(MetricSample.safeParse({ ...sample, labels: { service: 'a\ud800' } }).success, false);
  });
});
