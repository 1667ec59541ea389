import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { PromQLError } from '../src/devtools/sandbox/promql/errors.js';
import { instantQuery, type QueryValue, rangeQuery } from '../src/devtools/sandbox/promql/evaluator.js';
import { formatGoFloat, formatSampleValue } from '../src/devtools/sandbox/promql/format.js';
import { parseQuery } from '../src/devtools/sandbox/promql/parser.js';
import { handleQueryApi } from '../src/devtools/sandbox/query-api.js';
import type { MetricSample } from '../src/devtools/sandbox/sample.js';
import { SeriesStore } from '../src/devtools/sandbox/tsdb.js';
import type { CollectContext } from '../src/diagnostics/collector.js';
import {
  PrometheusQueryConfig,
  prometheusQueryCollector,
} from '../src/diagnostics/collectors/prometheus-query.js';
import { Targets } from '../src/diagnostics/targets.js';
import type { Queryable } from '../src/store/db.js';

/** 2024-01-01T00:00:00Z; every test's clock starts here. */
const T0 = Date.UTC(2024, 0, 1);
const at = (seconds: number) => T0 + seconds * 1000;

interface SeriesSpec {
  name: string;
  labels?: Record<string, string>;
  /** one value per scrape (every `stepSeconds` from T0); null or past the end: missing from that scrape */
  values: (number | null)[];
}

/** A store fed one scrape every `stepSeconds` from T0 with the given series. */
function buildStore(series: SeriesSpec[], stepSeconds = 10, retentionMs = 3_600_000): SeriesStore {
  const store = new SeriesStore({ retentionMs });
  const scrapes = Math.max(...series.map((s) => s.values.length));
  for (let i = 0; i < scrapes; i++) {
    const samples: MetricSample[] = series.flatMap((s) => {
      const value = s.values[i];
      return value === null || value === undefined ? [] : [{ name: s.name, labels: s.labels ?? {}, value }];
    });
    store.append(samples, at(i * stepSeconds));
  }
  return store;
}

/** Values from 0, `step` apart, for `n` scrapes. */
const linear = (n: number, step: number, from = 0) => Array.from({ length: n }, (_, i) => from + i * step);

function vectorAt(
  store: SeriesStore,
  query: string,
  seconds: number,
): { labels: Record<string, string>; value: number }[] {
  const value = instantQuery(store, query, at(seconds));
  assert.equal(value.type, 'vector', `${query} should give an instant vector`);
  return (value as Extract<QueryValue, { type: 'vector' }>).samples.map((s) => ({
    labels: { ...s.labels },
    value: s.value,
  }));
}

function scalarAt(store: SeriesStore, query: string, seconds = 0): number {
  const value = instantQuery(store, query, at(seconds));
  assert.equal(value.type, 'scalar', `${query} should give a scalar`);
  return (value as Extract<QueryValue, { type: 'scalar' }>).value;
}

function only(store: SeriesStore, query: string, seconds: number): number {
  const samples = vectorAt(store, query, seconds);
  assert.equal(samples.length, 1, `${query} should give one series, got ${JSON.stringify(samples)}`);
  return (samples[0] as { value: number }).value;
}

function assertClose(actual: number, expected: number, message?: string): void {
  assert.ok(Math.abs(actual - expected) < 1e-9, `${message ?? ''} expected ${expected}, got ${actual}`);
}

function parseError(query: string): string {
  try {
    parseQuery(query);
  } catch (err) {
    assert.ok(err instanceof PromQLError, `expected a PromQLError, got ${err}`);
    assert.equal(err.errorType, 'bad_data');
    return err.message;
  }
  assert.fail(`${query} should not parse`);
}

describe('SeriesStore', () => {
  test('a series missing from the latest scrape is stale from then on, but still there for earlier times', () => {
    const store = buildStore([
      { name: 'up', labels: { job: 'a' }, values: [1, 1, 1] },
      { name: 'up', labels: { job: 'b' }, values: [1, 1] },
    ]);
    assert.deepEqual(
      vectorAt(store, 'up', 20).map((s) => s.labels.job),
      ['a'],
    );
    assert.deepEqual(
      vectorAt(store, 'up', 19).map((s) => s.labels.job),
      ['a', 'b'],
    );
    // A range selector still sees the samples it had before it went stale.
    assert.equal(only(store, 'count_over_time(up{job="b"}[1m])', 20), 2);
  });

  test('an instant selector looks back 5 minutes for the latest sample when nothing newer was scraped', () => {
    const store = buildStore([{ name: 'temperature', values: [21.5] }]);
    assert.equal(only(store, 'temperature', 299), 21.5);
    assert.deepEqual(vectorAt(store, 'temperature', 300), []);
    // Before its first sample there is nothing.
    assert.deepEqual(vectorAt(store, 'temperature', -1), []);
  });

  test('samples older than the retention are dropped, and series left without any are forgotten', () => {
    const store = buildStore(
      [
        { name: 'steady', values: linear(30, 1) },
        { name: 'gone', values: [1, 2, 3] },
      ],
      10,
      60_000,
    );
    // 60 s of 10 s scrapes: 7 samples (t = 230 … 290) of `steady`; `gone` is forgotten.
    assert.equal(store.seriesCount, 1);
    assert.equal(store.sampleCount, 7);
    assert.deepEqual(vectorAt(store, 'gone', 290), []);
    assert.equal(only(store, 'count_over_time(steady[5m])', 290), 7);
  });

  test('a scrape that is not later than the previous one is dropped, not recorded out of order', () => {
    const store = new SeriesStore();
    assert.equal(store.append([{ name: 'x', labels: {}, value: 1 }], at(10)), true);
    assert.equal(store.append([{ name: 'x', labels: {}, value: 2 }], at(10)), false);
    assert.equal(store.append([{ name: 'x', labels: {}, value: 3 }], at(5)), false);
    assert.equal(only(store, 'x', 10), 1);
    assert.equal(store.sampleCount, 1);
  });
});

describe('PromQL functions', () => {
  // A counter that resets between t=50 and t=60: 0 10 20 30 40 50 | 0 10 20 30 40.
  const counter = buildStore([
    {
      name: 'http_requests_total',
      labels: { service: 'checkout' },
      values: [0, 10, 20, 30, 40, 50, 0, 10, 20, 30, 40],
    },
  ]);

  test('rate and increase add back a counter reset and extrapolate to the range boundaries', () => {
    // At t=100 the window (40, 100] holds t=50…100: 50, 0, 10, 20, 30, 40. The change is 40 - 50 + 50 (reset) = 40.
    // The first sample is 10 s after the window's start (< 1.1 × the 10 s interval), so extrapolate all the way:
    // 40 × (50 + 10 + 0) / 50 = 48 over the minute, 0.8 per second.
    assert.equal(only(counter, 'increase(http_requests_total[1m])', 100), 48);
    assert.equal(only(counter, 'rate(http_requests_total[1m])', 100), 0.8);
    assert.equal(only(counter, 'resets(http_requests_total[1m])', 100), 1);
    assert.equal(only(counter, 'changes(http_requests_total[1m])', 100), 5);
    // The last two samples: 40 - 30 over 10 s.
    assert.equal(only(counter, 'irate(http_requests_total[1m])', 100), 1);
    assert.equal(only(counter, 'idelta(http_requests_total[1m])', 100), 10);
    // Across the reset itself irate takes the new value as the increase: 0 / 10 s.
    assert.equal(only(counter, 'irate(http_requests_total[30s])', 60), 0);
    // The functions drop the metric name; the labels stay.
    assert.deepEqual(vectorAt(counter, 'rate(http_requests_total[1m])', 100)[0]?.labels, {
      service: 'checkout',
    });
  });

  test('increase extrapolates only half an interval where a series starts or ends inside the range, never below zero', () => {
    const store = buildStore([
      // starts at t=70 with 100: 100 110 120 130
      { name: 'late_total', values: [null, null, null, null, null, null, null, 100, 110, 120, 130] },
      // starts at t=70 with 1: the counter was 0 about 1 s before its first sample
      { name: 'fresh_total', values: [null, null, null, null, null, null, null, 1, 11, 21, 31] },
      // scraped from t=30 to t=80, then gone
      { name: 'ended_total', values: [null, null, null, 0, 10, 20, 30, 40, 50] },
      // from t=50: 1000 1010 … 1050
      { name: 'mid_total', values: [null, null, null, null, null, 1000, 1010, 1020, 1030, 1040, 1050] },
      // a gauge falling from t=70: 10 8 6 4
      { name: 'queue_depth', values: [null, null, null, null, null, null, null, 10, 8, 6, 4] },
    ]);
    // Window (40, 100]. late_total: 30 s from the window start to the first sample (>= 11 s), so only 5 s:
    // 30 × (30 + 5) / 30 = 35.
    assert.equal(only(store, 'increase(late_total[1m])', 100), 35);
    assertClose(only(store, 'rate(late_total[1m])', 100), 35 / 60);
    // fresh_total: a straight line through its samples hits 0 one second before the first one, so 1 s, not 5 s:
    // 30 × (30 + 1) / 30 = 31.
    assertClose(only(store, 'increase(fresh_total[1m])', 100), 31);
    // ended_total: samples t=50…80 (20 … 50); 10 s to the start (extrapolated fully), 20 s to the end (only 5 s):
    // 30 × (30 + 10 + 5) / 30 = 45.
    assert.equal(only(store, 'increase(ended_total[1m])', 100), 45);
    // "Close enough" to extrapolate fully is 1.1 average intervals: 12 s from (38, 100]'s start to t=50 is not,
    // 10 s from (40, 100]'s is: 50 × (50 + 5) / 50 = 55 against 50 × (50 + 10) / 50 = 60.
    assertClose(only(store, 'increase(mid_total[62s])', 100), 55);
    assert.equal(only(store, 'increase(mid_total[1m])', 100), 60);
    // delta does not stop at zero and may be negative: -6 × (30 + 5) / 30 = -7.
    assertClose(only(store, 'delta(queue_depth[1m])', 100), -7);
  });

  test('deriv is the least-squares slope per second', () => {
    const store = buildStore([{ name: 'disk_used_bytes', values: [0, 1, 4, 5] }]);
    // x = 0, 10, 20, 30; y = 0, 1, 4, 5: cov = 90, var = 500 → 0.18 per second.
    assertClose(only(store, 'deriv(disk_used_bytes[1m])', 30), 0.18);
    assert.equal(vectorAt(store, 'deriv(disk_used_bytes[5s])', 30).length, 0, 'one sample has no slope');
  });

  test('the *_over_time functions aggregate every sample in the range', () => {
    const store = buildStore([{ name: 'latency_ms', labels: { service: 'api' }, values: [5, 1, 9, 3] }]);
    assert.equal(only(store, 'avg_over_time(latency_ms[1m])', 30), 4.5);
    assert.equal(only(store, 'min_over_time(latency_ms[1m])', 30), 1);
    assert.equal(only(store, 'max_over_time(latency_ms[1m])', 30), 9);
    assert.equal(only(store, 'sum_over_time(latency_ms[1m])', 30), 18);
    assert.equal(only(store, 'count_over_time(latency_ms[25s])', 30), 3);
    // last_over_time alone keeps the metric name.
    assert.deepEqual(vectorAt(store, 'last_over_time(latency_ms[1m])', 30), [
      { labels: { __name__: 'latency_ms', service: 'api' }, value: 3 },
    ]);
  });

  test('histogram_quantile interpolates inside the bucket and answers the second-highest bound in the +Inf bucket', () => {
    const bucket = (le: string, value: number, service = 'checkout'): SeriesSpec => ({
      name: 'http_request_duration_seconds_bucket',
      labels: { service, le },
      values: [value],
    });
    const store = buildStore([
      bucket('0.1', 10),
      bucket('0.5', 30),
      bucket('1', 40),
      bucket('+Inf', 50),
      // no +Inf bucket: no answer
      bucket('0.1', 5, 'search'),
      bucket('1', 9, 'search'),
    ]);
    const q = (phi: number) =>
      vectorAt(store, `histogram_quantile(${phi}, http_request_duration_seconds_bucket)`, 0).map((s) => [
        s.labels.service,
        s.value,
      ]);
    // rank 25 falls in (0.1, 0.5] holding 20: 0.1 + 0.4 × 15/20
    assert.deepEqual(q(0.5), [
      ['checkout', 0.4],
      ['search', Number.NaN],
    ]);
    // rank 2.5 in the first bucket, from 0: 0.1 × 2.5/10
    assertClose((q(0.05)[0] as [string, number])[1], 0.025);
    // rank 45 is past the `1` bucket: the highest finite bound
    assert.equal((q(0.9)[0] as [string, number])[1], 1);
    assert.equal((q(1.5)[0] as [string, number])[1], Number.POSITIVE_INFINITY);
  });

  test('histogram_quantile over summed bucket rates, the way dashboards write it', () => {
    const store = buildStore(
      [
        ['0.1', 1],
        ['0.5', 3],
        ['1', 4],
        ['+Inf', 5],
      ].flatMap(([le, perSecond]) =>
        ['a', 'b'].map((pod) => ({
          name: 'http_request_duration_seconds_bucket',
          labels: { service: 'checkout', pod, le: le as string },
          values: linear(11, 10 * (perSecond as number)),
        })),
      ),
    );
    assert.deepEqual(
      vectorAt(
        store,
        'histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))',
        100,
      ).map((s) => [s.labels, Number(s.value.toFixed(12))]),
      [[{}, 0.4]],
    );
  });

  test('clamp, round, abs and friends drop the metric name', () => {
    const store = buildStore([{ name: 'balance', labels: { account: 'x' }, values: [-7.25] }]);
    assert.deepEqual(vectorAt(store, 'abs(balance)', 0), [{ labels: { account: 'x' }, value: 7.25 }]);
    assert.equal(only(store, 'clamp_min(balance, -5)', 0), -5);
    assert.equal(only(store, 'clamp_max(balance, -10)', 0), -10);
    assert.equal(only(store, 'clamp(balance, 0, 1)', 0), 0);
    assert.deepEqual(vectorAt(store, 'clamp(balance, 1, 0)', 0), [], 'max below min: nothing');
    assert.equal(only(store, 'round(balance)', 0), -7);
    assert.equal(only(store, 'round(balance, 0.5)', 0), -7);
    assert.equal(only(store, 'ceil(balance)', 0), -7);
    assert.equal(only(store, 'floor(balance)', 0), -8);
    assert.equal(only(store, 'sqrt(abs(balance) * 4)', 0), Math.sqrt(29));
    assert.equal(scalarAt(store, 'scalar(balance)'), -7.25);
    assert.ok(Number.isNaN(scalarAt(store, 'scalar(nothing_here)')));
    assert.equal(scalarAt(store, 'time()', 42), T0 / 1000 + 42);
    assert.equal(only(store, 'timestamp(balance)', 42), T0 / 1000, "a selector's own sample time");
  });

  test('absent answers 1 with the labels its selector pins, and nothing when the series exists', () => {
    const store = buildStore([{ name: 'up', labels: { job: 'api' }, values: [1] }]);
    assert.deepEqual(vectorAt(store, 'absent(up{job="api"})', 0), []);
    assert.deepEqual(vectorAt(store, 'absent(up{job="db", env=~"prod.*"})', 0), [
      { labels: { job: 'db' }, value: 1 },
    ]);
    assert.deepEqual(vectorAt(store, 'absent(sum(nothing))', 0), [{ labels: {}, value: 1 }]);
  });

  test('label_replace copies a regex capture into a label', () => {
    const store = buildStore([{ name: 'up', labels: { instance: 'db-1:9187' }, values: [1] }]);
    assert.deepEqual(vectorAt(store, 'label_replace(up, "host", "$1", "instance", "(.*):\\\\d+")', 0), [
      { labels: { __name__: 'up', instance: 'db-1:9187', host: 'db-1' }, value: 1 },
    ]);
    // the regex is anchored: a partial match changes nothing
    assert.deepEqual(vectorAt(store, 'label_replace(up, "host", "$1", "instance", "db")', 0)[0]?.labels, {
      __name__: 'up',
      instance: 'db-1:9187',
    });
  });
});

describe('PromQL operators', () => {
  // Two versions of one service; v2 fails half its requests.
  const traffic = buildStore([
    {
      name: 'http_requests_total',
      labels: { service: 'checkout', version: 'v1', code: '200' },
      values: linear(11, 9),
    },
    {
      name: 'http_requests_total',
      labels: { service: 'checkout', version: 'v1', code: '500' },
      values: linear(11, 1),
    },
    {
      name: 'http_requests_total',
      labels: { service: 'checkout', version: 'v2', code: '200' },
      values: linear(11, 5),
    },
    {
      name: 'http_requests_total',
      labels: { service: 'checkout', version: 'v2', code: '500' },
      values: linear(11, 5),
    },
    {
      name: 'service_info',
      labels: { service: 'checkout', version: 'v2', team: 'payments' },
      values: linear(11, 0, 1),
    },
  ]);

  test('sum by (version) of error rate over request rate gives each version its error ratio', () => {
    const ratios = vectorAt(
      traffic,
      'sum by (version) (rate(http_requests_total{code=~"5.."}[1m])) / sum by (version) (rate(http_requests_total[1m]))',
      100,
    );
    assert.deepEqual(
      ratios.map((s) => [s.labels, Number(s.value.toFixed(12))]),
      [
        [{ version: 'v1' }, 0.1],
        [{ version: 'v2' }, 0.5],
      ],
    );
    // `by` after the argument is the same thing
    assert.deepEqual(
      vectorAt(traffic, 'sum(rate(http_requests_total[1m])) by (version)', 100).map((s) => s.labels),
      [{ version: 'v1' }, { version: 'v2' }],
    );
    assert.deepEqual(vectorAt(traffic, 'count without (code, version) (http_requests_total)', 100), [
      { labels: { service: 'checkout' }, value: 4 },
    ]);
  });

  test('or vector(0) answers 0 when the left side is empty, and the left side when it is not', () => {
    assert.deepEqual(vectorAt(traffic, 'sum(rate(http_requests_total{code="503"}[1m])) or vector(0)', 100), [
      { labels: {}, value: 0 },
    ]);
    const sum = vectorAt(traffic, 'sum(rate(http_requests_total{code="500"}[1m])) or vector(0)', 100);
    assert.equal(sum.length, 1);
    assertClose((sum[0] as { value: number }).value, 0.6);
  });

  test('a comparison filters and keeps the left value and the name; with bool it answers 0/1 without the name', () => {
    assert.deepEqual(vectorAt(traffic, 'http_requests_total{version="v2"} > 45', 100), [
      {
        labels: { __name__: 'http_requests_total', service: 'checkout', version: 'v2', code: '200' },
        value: 50,
      },
      {
        labels: { __name__: 'http_requests_total', service: 'checkout', version: 'v2', code: '500' },
        value: 50,
      },
    ]);
    // the scalar on the left: still the vector's value
    assert.deepEqual(
      vectorAt(traffic, '20 > http_requests_total', 100).map((s) => s.value),
      [10],
    );
    assert.deepEqual(
      vectorAt(traffic, 'http_requests_total{version="v1"} > bool 45', 100).map((s) => [s.labels, s.value]),
      [
        [{ service: 'checkout', version: 'v1', code: '200' }, 1],
        [{ service: 'checkout', version: 'v1', code: '500' }, 0],
      ],
    );
    assert.equal(scalarAt(traffic, '2 > bool 1'), 1);
  });

  test('group_left copies labels from the one side onto each match of the many side', () => {
    const withTeam = vectorAt(
      traffic,
      'sum by (service, version) (rate(http_requests_total[1m])) * on (service, version) group_left (team) service_info',
      100,
    );
    assert.deepEqual(
      withTeam.map((s) => [s.labels, Number(s.value.toFixed(12))]),
      [[{ service: 'checkout', version: 'v2', team: 'payments' }, 1]],
    );
    // many-to-one matching without group_left is an execution error, as in Prometheus
    assert.throws(
      () => instantQuery(traffic, 'http_requests_total * on (service) service_info', at(100)),
      /multiple matches for labels: many-to-one matching must be explicit/,
    );
  });

  test('the demo memory rule: a ratio matched on three labels, group_left () with no extra labels', () => {
    const store = buildStore([
      {
        name: 'container_memory_working_set_bytes',
        labels: { namespace: 'shop', pod: 'payments-1', container: 'payments', id: '/kubepods/x' },
        values: [900],
      },
      {
        name: 'kube_pod_container_resource_limits',
        labels: {
          namespace: 'shop',
          pod: 'payments-1',
          container: 'payments',
          resource: 'memory',
          unit: 'byte',
        },
        values: [1000],
      },
      {
        name: 'kube_pod_container_resource_limits',
        labels: {
          namespace: 'shop',
          pod: 'payments-1',
          container: 'payments',
          resource: 'cpu',
          unit: 'core',
        },
        values: [2],
      },
    ]);
    assert.deepEqual(
      vectorAt(
        store,
        `100 * max by (container) (container_memory_working_set_bytes
          / on (namespace, pod, container) group_left ()
          max by (namespace, pod, container) (kube_pod_container_resource_limits{resource="memory"})) > 80`,
        0,
      ),
      [{ labels: { container: 'payments' }, value: 90 }],
    );
  });

  test('and, unless and or match on all labels but the name, or on/ignoring', () => {
    const v = (q: string) => vectorAt(traffic, q, 100).map((s) => s.labels.version);
    assert.deepEqual(v('http_requests_total{code="200"} and on (version) service_info'), ['v2']);
    assert.deepEqual(v('http_requests_total{code="200"} unless on (version) service_info'), ['v1']);
    assert.deepEqual(v('http_requests_total{code="200"} and ignoring (code, team) service_info'), ['v2']);
    assert.deepEqual(v('http_requests_total{code="200"} and service_info'), []);
  });

  test('precedence and associativity follow Prometheus', () => {
    const s = (q: string) => scalarAt(traffic, q, 0);
    assert.equal(s('2 * 3 ^ 2'), 18);
    assert.equal(s('-2 ^ 2'), -4, 'unary minus binds looser than ^');
    assert.equal(s('2 ^ 3 ^ 2'), 512, '^ is right-associative');
    assert.equal(s('1 - 2 - 3'), -4, '- is left-associative');
    assert.equal(s('7 % 4 * 2'), 6);
    assert.equal(s('1 + 2 * 3 == bool 7'), 1);
    assert.equal(s('1.5e3 / 0x10'), 93.75);
    // unless binds tighter than or: vector(1) or (vector(2) unless vector(3))
    assert.deepEqual(
      vectorAt(traffic, 'vector(1) or vector(2) unless vector(3)', 0).map((x) => x.value),
      [1],
    );
    assert.ok(Number.isNaN(s('0 / 0')));
    assert.equal(s('-1 / 0'), Number.NEGATIVE_INFINITY);
  });

  test('offset shifts a selector back in time', () => {
    assert.equal(only(traffic, 'http_requests_total{version="v1", code="500"} offset 30s', 100), 7);
    assert.equal(only(traffic, 'http_requests_total{version="v1", code="500"} offset 1m30s', 100), 1);
    // the range window moves with it: (10, 70] holds 2…7 of a 1-per-10 s counter
    assert.equal(
      only(traffic, 'count_over_time(http_requests_total{version="v1", code="500"}[1m] offset 30s)', 100),
      6,
    );
  });

  test('topk, bottomk, min, max, avg and count_values', () => {
    assert.deepEqual(
      vectorAt(traffic, 'topk(2, http_requests_total)', 100).map((s) => [
        s.labels.version,
        s.labels.code,
        s.value,
      ]),
      [
        ['v1', '200', 90],
        ['v2', '200', 50],
      ],
    );
    assert.deepEqual(
      vectorAt(traffic, 'bottomk(1, http_requests_total) by (version)', 100).map((s) => [
        s.labels.version,
        s.value,
      ]),
      [
        ['v1', 10],
        ['v2', 50],
      ],
    );
    assert.equal(only(traffic, 'max(http_requests_total)', 100), 90);
    assert.equal(only(traffic, 'min(http_requests_total)', 100), 10);
    assert.equal(only(traffic, 'avg(http_requests_total)', 100), 50);
    assert.deepEqual(vectorAt(traffic, 'count_values("requests", http_requests_total)', 100), [
      { labels: { requests: '90' }, value: 1 },
      { labels: { requests: '50' }, value: 2 },
      { labels: { requests: '10' }, value: 1 },
    ]);
  });

  test('arithmetic that leaves two series with one label set is an error, as in Prometheus', () => {
    const twins = buildStore([
      { name: 'cpu_seconds_total', labels: { pod: 'a' }, values: [1] },
      { name: 'memory_bytes', labels: { pod: 'a' }, values: [2] },
    ]);
    assert.throws(
      () => instantQuery(twins, '{pod="a"} * 2', at(0)),
      (err: unknown) =>
        err instanceof PromQLError &&
        err.errorType === 'execution' &&
        err.message === 'vector cannot contain metrics with the same labelset',
    );
  });
});

describe('PromQL parse errors', () => {
  test('name the position and what was expected', () => {
    const query = 'sum(rate(http_requests_total[5m])';
    assert.equal(
      parseError(query),
      `1:${query.length + 1}: expected ')' to close the arguments of sum(, got end of input`,
    );
    assert.equal(
      parseError('rate(x[5m]'),
      "1:11: expected ')' to close the arguments of rate(, got end of input",
    );
    assert.equal(
      parseError('up{job="a" instance="b"}'),
      "1:12: expected ',' or '}' in the label matchers, got identifier \"instance\"",
    );
    assert.equal(
      parseError('sum(\n  rate(x)\n)'),
      '2:8: expected type range vector in call to function "rate", got instant vector',
    );
    assert.equal(parseError('1 > 2'), '1:3: comparisons between scalars must use BOOL modifier');
    assert.equal(parseError('up and 1'), '1:4: set operator "and" not allowed in binary scalar expression');
    assert.equal(parseError('nosuch(up)'), '1:1: unknown function with name "nosuch"');
    assert.equal(
      parseError('{job=~".*"}'),
      '1:1: vector selector must contain at least one non-empty matcher',
    );
    assert.equal(parseError('up[5x]'), '1:4: bad number or duration syntax: "5x"');
    assert.match(parseError('up{job=~"("}'), /^1:9: invalid regular expression "\("/);
    assert.equal(parseError(''), '1:1: no expression found in input');
  });

  test('refuse what the sandbox does not support, by name', () => {
    assert.match(
      parseError('max_over_time(rate(x[1m])[5m:1m])'),
      /subqueries .* are not supported by the sandbox/,
    );
    assert.match(parseError('up @ 1700000000'), /1:4: the @ modifier is not supported by the sandbox/);
    assert.match(
      parseError('holt_winters(x[5m], 0.5, 0.5)'),
      /function "holt_winters" is not supported by the sandbox/,
    );
    assert.match(
      parseError('predict_linear(x[5m], 60)'),
      /function "predict_linear" is not supported by the sandbox/,
    );
    assert.match(parseError('limitk(2, up)'), /aggregation "limitk" is not supported by the sandbox/);
  });

  test('accept what Prometheus accepts', () => {
    for (const query of [
      'sum without (instance) (rate(http_requests_total{job=~"api|web", code!~"2.."}[1m30s] offset -1m))',
      'up # a comment',
      "label_replace(up, 'a', `$1`, \"b\", '(.*)')",
      'SUM BY (job) (up)',
      'topk by (job) (3, up)',
      'a:recorded:rate5m{le="+Inf",}',
      'x / ignoring (a) group_right (b) y',
      'Inf - NaN',
    ]) {
      assert.doesNotThrow(() => parseQuery(query), query);
    }
  });
});

describe('number formatting', () => {
  test('sample values are written as Prometheus writes them', () => {
    assert.deepEqual(
      [1, 0.8, 1e21, 1.5e-7, -2, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY].map(
        formatSampleValue,
      ),
      ['1', '0.8', '1000000000000000000000', '0.00000015', '-2', 'NaN', '+Inf', '-Inf'],
    );
  });

  test('Go float verbs', () => {
    assert.deepEqual(
      [123456, 1234567, 0.0001, 0.00001].map((v) => formatGoFloat(v, 'v')),
      ['123456', '1.234567e+06', '0.0001', '1e-05'],
    );
    assert.equal(formatGoFloat(12345, 'g', 4), '1.235e+04');
    assert.equal(formatGoFloat(0.5, 'g', 4), '0.5');
    assert.equal(formatGoFloat(85, 'e', -1), '8.5e+01');
    assert.equal(formatGoFloat(16.666, 'f', 1), '16.7');
  });
});

describe('query API', () => {
  const store = buildStore([
    { name: 'http_requests_total', labels: { service: 'checkout', code: '200' }, values: linear(11, 10) },
    { name: 'http_requests_total', labels: { service: 'checkout', code: '500' }, values: linear(11, 1) },
  ]);
  let server: Server;
  let base = '';

  before(async () => {
    server = createServer((req, res) => {
      if (!handleQueryApi(store, req, res)) {
        res.writeHead(404);
        res.end('not mine');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function get(
    path: string,
    params: Record<string, string>,
  ): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${base}${path}?${new URLSearchParams(params)}`);
    return { status: res.status, body: await res.json() };
  }

  const t100 = String(at(100) / 1000);

  test('an instant vector, labels sorted with the name first, values as strings at the query time', async () => {
    const { status, body } = await get('/api/v1/query', { query: 'http_requests_total', time: t100 });
    assert.equal(status, 200);
    assert.deepEqual(body, {
      status: 'success',
      data: {
        resultType: 'vector',
        result: [
          {
            metric: { __name__: 'http_requests_total', code: '200', service: 'checkout' },
            value: [at(100) / 1000, '100'],
          },
          {
            metric: { __name__: 'http_requests_total', code: '500', service: 'checkout' },
            value: [at(100) / 1000, '10'],
          },
        ],
      },
    });
    assert.equal(
      JSON.stringify(
        Object.keys((body as { data: { result: { metric: object }[] } }).data.result[0]?.metric ?? {}),
      ),
      '["__name__","code","service"]',
    );
  });

  test('scalars, strings and range vectors; NaN and infinities spelled like Prometheus', async () => {
    const t = at(100) / 1000;
    assert.deepEqual((await get('/api/v1/query', { query: '1 / 0', time: t100 })).body, {
      status: 'success',
      data: { resultType: 'scalar', result: [t, '+Inf'] },
    });
    assert.deepEqual((await get('/api/v1/query', { query: '-1/0', time: t100 })).body, {
      status: 'success',
      data: { resultType: 'scalar', result: [t, '-Inf'] },
    });
    assert.deepEqual((await get('/api/v1/query', { query: 'vector(0/0)', time: t100 })).body, {
      status: 'success',
      data: { resultType: 'vector', result: [{ metric: {}, value: [t, 'NaN'] }] },
    });
    assert.deepEqual((await get('/api/v1/query', { query: '"hello"', time: t100 })).body, {
      status: 'success',
      data: { resultType: 'string', result: [t, 'hello'] },
    });
    assert.deepEqual(
      (await get('/api/v1/query', { query: 'http_requests_total{code="500"}[25s]', time: t100 })).body,
      {
        status: 'success',
        data: {
          resultType: 'matrix',
          result: [
            {
              metric: { __name__: 'http_requests_total', code: '500', service: 'checkout' },
              values: [
                [at(80) / 1000, '8'],
                [at(90) / 1000, '9'],
                [at(100) / 1000, '10'],
              ],
            },
          ],
        },
      },
    );
  });

  test('query_range evaluates at every step; POST form bodies and RFC 3339 times work too', async () => {
    const { body } = await get('/api/v1/query_range', {
      query: 'sum(http_requests_total)',
      start: String(at(80) / 1000),
      end: new Date(at(100)).toISOString(),
      step: '10s',
    });
    assert.deepEqual(body, {
      status: 'success',
      data: {
        resultType: 'matrix',
        result: [
          {
            metric: {},
            values: [
              [at(80) / 1000, '88'],
              [at(90) / 1000, '99'],
              [at(100) / 1000, '110'],
            ],
          },
        ],
      },
    });
    const res = await fetch(`${base}/api/v1/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: 'sum(http_requests_total) > 100', time: t100 }),
    });
    assert.deepEqual(await res.json(), {
      status: 'success',
      data: { resultType: 'vector', result: [{ metric: {}, value: [at(100) / 1000, '110'] }] },
    });
  });

  test('bad input answers 400 bad_data, a failing evaluation 422 execution', async () => {
    assert.deepEqual(await get('/api/v1/query', { query: 'sum(up', time: t100 }), {
      status: 400,
      body: {
        status: 'error',
        errorType: 'bad_data',
        error:
          'invalid parameter "query": 1:7: expected \')\' to close the arguments of sum(, got end of input',
      },
    });
    assert.deepEqual(await get('/api/v1/query', { query: 'up', time: 'yesterday' }), {
      status: 400,
      body: {
        status: 'error',
        errorType: 'bad_data',
        error: 'invalid parameter "time": cannot parse "yesterday" to a valid timestamp',
      },
    });
    const backwards = await get('/api/v1/query_range', { query: 'up', start: '20', end: '10', step: '1' });
    assert.equal(backwards.status, 400);
    assert.match(JSON.stringify(backwards.body), /end timestamp must not be before start time/);
    const tooMany = await get('/api/v1/query_range', { query: 'up', start: '0', end: '100000', step: '1' });
    assert.equal(tooMany.status, 400);
    assert.match(JSON.stringify(tooMany.body), /exceeded maximum resolution of 11,000 points/);
    const matrix = await get('/api/v1/query_range', { query: 'up[5m]', start: '0', end: '10', step: '1' });
    assert.equal(matrix.status, 400);
    const exec = await get('/api/v1/query', {
      query: 'http_requests_total * on (service) http_requests_total',
      time: t100,
    });
    assert.equal(exec.status, 422);
    assert.equal((exec.body as { errorType: string }).errorType, 'execution');
  });

  test('buildinfo, readiness, and paths that are not the API', async () => {
    assert.deepEqual((await get('/api/v1/status/buildinfo', {})).body, {
      status: 'success',
      data: { version: 'sandbox', revision: '', branch: '', buildUser: '', buildDate: '', goVersion: '' },
    });
    const ready = await fetch(`${base}/-/ready`);
    assert.equal(ready.status, 200);
    assert.equal(await ready.text(), 'Prometheus Server is Ready.\n');
    const other = await fetch(`${base}/chaos`);
    assert.equal(other.status, 404);
    assert.equal(await other.text(), 'not mine');
    const put = await fetch(`${base}/api/v1/query`, { method: 'PUT' });
    assert.equal(put.status, 405);
  });

  test("the bot's prometheus_query collector reads the sandbox's answers", async () => {
    const ctx: CollectContext = {
      signal: new AbortController().signal,
      timeoutMs: 5_000,
      targets: Targets.parse({}),
      db: {} as Queryable,
      prometheusUrl: base,
      incident: { id: 1, service: 'checkout', openedAt: new Date(at(100)) },
      now: new Date(at(100)),
    };
    const errorRatio = await prometheusQueryCollector.collect(
      PrometheusQueryConfig.parse({
        query:
          '100 * sum by (service) (rate(http_requests_total{code=~"5.."}[1m])) / sum by (service) (rate(http_requests_total[1m]))',
      }),
      ctx,
    );
    assert.equal(Number((errorRatio.value as number).toFixed(9)), 9.090909091);
    assert.equal(errorRatio.result.resultType, 'vector');
    assert.deepEqual((errorRatio.result.series as { labels: object }[])[0]?.labels, { service: 'checkout' });

    // A range query: [now - 1m, now] in 15 s steps (the collector's smallest default step).
    const peak = await prometheusQueryCollector.collect(
      PrometheusQueryConfig.parse({ query: 'sum(http_requests_total)', range: '1m', reduce: 'max' }),
      ctx,
    );
    assert.equal(peak.value, 110);
    assert.equal(peak.result.resultType, 'matrix');
    assert.deepEqual(
      (peak.result.series as { points: [number, number][] }[])[0]?.points,
      [
        [40, 44],
        [55, 55],
        [70, 77],
        [85, 88],
        [100, 110],
      ].map(([s, v]) => [at(s as number) / 1000, v]),
    );

    await assert.rejects(
      prometheusQueryCollector.collect(PrometheusQueryConfig.parse({ query: 'rate(up)' }), ctx),
      /Prometheus rejected the query \(HTTP 400\): bad_data: invalid parameter "query"/,
    );
  });
});

describe('range queries', () => {
  test('a series that appears mid-range has points only where it exists; series come sorted by labels', () => {
    const store = buildStore([
      { name: 'up', labels: { job: 'b' }, values: [1, 1, 1, 1] },
      { name: 'up', labels: { job: 'a' }, values: [null, null, 1, 1] },
    ]);
    const series = rangeQuery(store, 'up', at(0), at(30), 10_000);
    assert.deepEqual(
      series.map((s) => [s.labels.job, s.points.map((p) => (p.t - T0) / 1000)]),
      [
        ['a', [20, 30]],
        ['b', [0, 10, 20, 30]],
      ],
    );
  });
});
