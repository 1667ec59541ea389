import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import type { CollectContext } from '../src/diagnostics/collector.js';
import { HttpCheckConfig, httpCheckCollector } from '../src/diagnostics/collectors/http-check.js';
import {
  PrometheusQueryConfig,
  prometheusQueryCollector,
} from '../src/diagnostics/collectors/prometheus-query.js';
import { Targets } from '../src/diagnostics/targets.js';
import { TemplateError, type TemplateVars } from '../src/diagnostics/templating.js';

// Never queried by these collectors; a Pool only connects on its first query.
const db = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres', max: 1 });
after(() => db.end());

const HOSTILE = 'a"} or vector(1) #';

interface Stub {
  url: string;
  requests: { method: string; url: URL; headers: IncomingMessage['headers'] }[];
  close(): Promise<void>;
}

/** A loopback HTTP server on port 0 that records every request. */
async function startStub(
  handle: (req: IncomingMessage, res: ServerResponse, url: URL) => void,
): Promise<Stub> {
  const requests: Stub['requests'] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://stub');
    requests.push({ method: req.method ?? '', url, headers: req.headers });
    handle(req, res, url);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function buildContext(overrides: Partial<CollectContext> = {}): CollectContext {
  return {
    signal: new AbortController().signal,
    timeoutMs: 5_000,
    targets: Targets.parse({}),
    db,
    incident: { id: 1, service: 'payment-service', openedAt: new Date() },
    now: new Date(),
    ...overrides,
  };
}

function buildVars(labels: Record<string, string> = {}, service: Record<string, string> = {}): TemplateVars {
  return { labels, annotations: {}, incident: { id: '1', service: 'payment-service' }, service };
}

function promSuccess(data: unknown) {
  return { status: 'success', data };
}

describe('prometheus_query', () => {
  test('an instant vector: value is the max, series ordered by value, the query sent at now', async () => {
    const stub = await startStub((_req, res) =>
      sendJson(
        res,
        200,
        promSuccess({
          resultType: 'vector',
          result: [
            { metric: { instance: 'db-1:9187', job: 'pg' }, value: [1700000000, '0.25'] },
            { metric: { instance: 'db-2:9187', job: 'pg' }, value: [1700000000, '0.9312'] },
            { metric: { instance: 'db-3:9187', job: 'pg' }, value: [1700000000, 'NaN'] },
          ],
        }),
      ),
    );
    try {
      const now = new Date('2026-11-26T03:00:00.500Z');
      const config = PrometheusQueryConfig.parse({ query: 'pg_up' });
      const out = await prometheusQueryCollector.collect(
        config,
        buildContext({ prometheusUrl: stub.url, now }),
      );
      assert.equal(out.value, 0.9312);
      assert.deepEqual(out.result, {
        resultType: 'vector',
        series: [
          { labels: { instance: 'db-2:9187', job: 'pg' }, value: 0.9312 },
          { labels: { instance: 'db-1:9187', job: 'pg' }, value: 0.25 },
          { labels: { instance: 'db-3:9187', job: 'pg' }, value: null },
        ],
        seriesCount: 3,
      });
      assert.equal(out.summary, '0.9312 (max of 3 series); top {instance="db-2:9187", job="pg"}');
      const [req] = stub.requests;
      assert.equal(req?.url.pathname, '/api/v1/query');
      assert.equal(req?.url.searchParams.get('query'), 'pg_up');
      assert.equal(req?.url.searchParams.get('time'), '1795662000.5');
      assert.equal(req?.url.searchParams.get('timeout'), '5s');
    } finally {
      await stub.close();
    }
  });

  test('a hostile label value stays inside its string literal, all the way to Prometheus', async () => {
    const stub = await startStub((_req, res) =>
      sendJson(res, 200, promSuccess({ resultType: 'vector', result: [] })),
    );
    try {
      const config = PrometheusQueryConfig.parse({ query: 'up{job="{{labels.job}}"}' });
      const rendered = prometheusQueryCollector.render(config, buildVars({ job: HOSTILE }));
      assert.equal(rendered.query, 'up{job="a\\"} or vector(1) #"}');
      // A path prefix in PROMETHEUS_URL (behind a reverse proxy) is kept.
      const out = await prometheusQueryCollector.collect(
        rendered,
        buildContext({ prometheusUrl: `${stub.url}/prom` }),
      );
      assert.equal(stub.requests[0]?.url.pathname, '/prom/api/v1/query');
      assert.equal(stub.requests[0]?.url.searchParams.get('query'), 'up{job="a\\"} or vector(1) #"}');
      assert.equal(out.value, null);
      assert.equal(out.summary, 'no data');
      assert.deepEqual(out.result, { resultType: 'vector', series: [], seriesCount: 0 });
      assert.throws(
        () => prometheusQueryCollector.render(config, buildVars({})),
        (err: unknown) => err instanceof TemplateError && /labels.job/.test(err.message),
      );
    } finally {
      await stub.close();
    }
  });

  test('a range query: window and default step, per-series reduce, min/max, NaN skipped, +Inf kept', async () => {
    const stub = await startStub((_req, res) =>
      sendJson(
        res,
        200,
        promSuccess({
          resultType: 'matrix',
          result: [
            {
              metric: { pod: 'api-1' },
              values: [
                [100, '1'],
                [115, '5'],
                [130, 'NaN'],
                [145, '3'],
              ],
            },
            {
              metric: { pod: 'api-2' },
              values: [
                [100, '2'],
                [115, '+Inf'],
                [130, '-Inf'],
                [145, '4'],
              ],
            },
          ],
        }),
      ),
    );
    try {
      const now = new Date('2026-11-26T03:00:00Z');
      const ctx = buildContext({ prometheusUrl: stub.url, now });
      const last = await prometheusQueryCollector.collect(
        PrometheusQueryConfig.parse({ query: 'rate(errors[1m])', range: '15m' }),
        ctx,
      );
      const params = stub.requests[0]?.url.searchParams;
      assert.equal(stub.requests[0]?.url.pathname, '/api/v1/query_range');
      assert.equal(params?.get('start'), String(now.getTime() / 1000 - 900));
      assert.equal(params?.get('end'), String(now.getTime() / 1000));
      assert.equal(params?.get('step'), '15', '15m / 60 = 15 s');
      // last: api-1 → 3 (the NaN at 130 is no value), api-2 → 4; max of them
      assert.equal(last.value, 4);
      assert.deepEqual(last.result.series, [
        {
          labels: { pod: 'api-2' },
          value: 4,
          min: -Number.MAX_VALUE,
          max: Number.MAX_VALUE,
          points: [
            [100, 2],
            [115, Number.MAX_VALUE],
            [130, -Number.MAX_VALUE],
            [145, 4],
          ],
        },
        {
          labels: { pod: 'api-1' },
          value: 3,
          min: 1,
          max: 5,
          points: [
            [100, 1],
            [115, 5],
            [130, null],
            [145, 3],
          ],
        },
      ]);
      assert.equal(last.summary, '4 (max of 2 series, last over 15m); top {pod="api-2"}');
      // JSON-safe all the way: nothing turns into null on the way to jsonb
      assert.deepEqual(JSON.parse(JSON.stringify(last.result)), last.result);

      const peak = await prometheusQueryCollector.collect(
        PrometheusQueryConfig.parse({ query: 'x', range: '2h', reduce: 'max' }),
        ctx,
      );
      assert.equal(stub.requests[1]?.url.searchParams.get('step'), '120', '2h / 60 = 120 s');
      assert.equal(peak.value, Number.MAX_VALUE);
      assert.match(peak.summary, /^\+Inf \(max of 2 series, max over 2h\)/);

      const mean = await prometheusQueryCollector.collect(
        PrometheusQueryConfig.parse({
          query: 'x',
          range: '1m',
          step: '30s',
          reduce: 'avg',
          aggregate: 'min',
        }),
        ctx,
      );
      assert.equal(stub.requests[2]?.url.searchParams.get('step'), '30');
      // api-1 avg of 1, 5, 3 = 3; api-2 avg holds +Inf and -Inf = NaN, so no value
      assert.equal(mean.value, 3);
      assert.match(mean.summary, /^3 \(min of 2 series, avg over 1m\); lowest \{pod="api-1"\}$/);

      const short = await prometheusQueryCollector.collect(
        PrometheusQueryConfig.parse({ query: 'x', range: '5m' }),
        ctx,
      );
      assert.equal(short.value, 4);
      assert.equal(stub.requests[3]?.url.searchParams.get('step'), '15', 'the default step is at least 15 s');
    } finally {
      await stub.close();
    }
  });

  test('a scalar, sum and first aggregates, and the 50-series cap', async () => {
    const many = Array.from({ length: 60 }, (_, i) => ({
      metric: { shard: String(i) },
      value: [1, String(i + 1)],
    }));
    const stub = await startStub((_req, res, url) => {
      if (url.searchParams.get('query') === 'scalar(x)') {
        sendJson(res, 200, promSuccess({ resultType: 'scalar', result: [1, '42.5'] }));
      } else {
        sendJson(res, 200, promSuccess({ resultType: 'vector', result: many }));
      }
    });
    try {
      const ctx = buildContext({ prometheusUrl: stub.url });
      const scalar = await prometheusQueryCollector.collect(
        PrometheusQueryConfig.parse({ query: 'scalar(x)' }),
        ctx,
      );
      assert.equal(scalar.value, 42.5);
      assert.deepEqual(scalar.result, {
        resultType: 'scalar',
        series: [{ labels: {}, value: 42.5 }],
        seriesCount: 1,
      });
      assert.equal(scalar.summary, '42.5');

      const sum = await prometheusQueryCollector.collect(
        PrometheusQueryConfig.parse({ query: 'x', aggregate: 'sum' }),
        ctx,
      );
      assert.equal(sum.value, 1830, '1 + 2 + ... + 60');
      assert.equal(sum.result.seriesCount, 60);
      const series = sum.result.series as { value: number }[];
      assert.equal(series.length, 50);
      assert.equal(series[0]?.value, 60, 'largest first');
      assert.equal(sum.summary, '1830 (sum of 60 series)');

      const first = await prometheusQueryCollector.collect(
        PrometheusQueryConfig.parse({ query: 'x', aggregate: 'first' }),
        ctx,
      );
      assert.equal(first.value, 1, "Prometheus' order is kept");
      assert.equal((first.result.series as { value: number }[])[0]?.value, 1);
    } finally {
      await stub.close();
    }
  });

  test('Prometheus errors: error bodies, non-2xx, non-JSON, strings, no URL', async () => {
    const stub = await startStub((_req, res, url) => {
      const query = url.searchParams.get('query');
      if (query === 'bad(') {
        sendJson(res, 400, {
          status: 'error',
          errorType: 'bad_data',
          error: '1:5: parse error: unclosed left parenthesis',
        });
      } else if (query === 'proxy') {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<html>\nBad Gateway</html>');
      } else if (query === 'unavailable') {
        sendJson(res, 503, { status: 'success', data: { resultType: 'vector', result: [] } });
      } else if (query === 'shape') {
        sendJson(res, 200, promSuccess({ resultType: 'vector', result: [{ metric: {}, value: ['x', 1] }] }));
      } else {
        sendJson(res, 200, promSuccess({ resultType: 'string', result: [1, 'hello'] }));
      }
    });
    try {
      const ctx = buildContext({ prometheusUrl: stub.url });
      const run = (query: string) =>
        prometheusQueryCollector.collect(PrometheusQueryConfig.parse({ query }), ctx);
      await assert.rejects(run('bad('), {
        message:
          'Prometheus rejected the query (HTTP 400): bad_data: 1:5: parse error: unclosed left parenthesis',
      });
      await assert.rejects(run('proxy'), {
        message: 'Prometheus answered HTTP 502 with a body that is not JSON: <html>',
      });
      await assert.rejects(run('unavailable'), { message: 'Prometheus answered HTTP 503' });
      await assert.rejects(
        run('shape'),
        /Prometheus answered with unexpected data at data\.result\.0\.value/,
      );
      await assert.rejects(run('"hello"'), /Prometheus returned a string, not a number/);
      await assert.rejects(
        prometheusQueryCollector.collect(PrometheusQueryConfig.parse({ query: 'up' }), buildContext()),
        { message: 'PROMETHEUS_URL is not configured' },
      );
    } finally {
      await stub.close();
    }
    const gone = await startStub(() => undefined);
    await gone.close();
    await assert.rejects(
      prometheusQueryCollector.collect(
        PrometheusQueryConfig.parse({ query: 'up' }),
        buildContext({ prometheusUrl: gone.url }),
      ),
      /could not query Prometheus at 127\.0\.0\.1:\d+: connect ECONNREFUSED/,
    );
  });

  test('a Prometheus that hangs: rejects at the step timeout, by the signal or by its own bound', async () => {
    const stub = await startStub(() => {
      // never answers
    });
    try {
      const config = PrometheusQueryConfig.parse({ query: 'up' });
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 300);
      let started = Date.now();
      await assert.rejects(
        prometheusQueryCollector.collect(
          config,
          buildContext({ prometheusUrl: stub.url, signal: controller.signal, timeoutMs: 300 }),
        ),
        /^Error: timed out after 300 ms querying Prometheus at 127\.0\.0\.1:\d+$/,
      );
      clearTimeout(timer);
      assert.ok(Date.now() - started < 1_500, `rejected after ${Date.now() - started} ms`);

      // A signal nobody aborts: the collector's own bound still ends it.
      started = Date.now();
      await assert.rejects(
        prometheusQueryCollector.collect(config, buildContext({ prometheusUrl: stub.url, timeoutMs: 300 })),
        /timed out after 300 ms/,
      );
      assert.ok(Date.now() - started < 1_500, `rejected after ${Date.now() - started} ms`);
    } finally {
      await stub.close();
    }
  });

  test('config: defaults, durations, and step limits', () => {
    assert.deepEqual(PrometheusQueryConfig.parse({ query: 'up' }), {
      query: 'up',
      reduce: 'last',
      aggregate: 'max',
    });
    const problems = (input: unknown) =>
      PrometheusQueryConfig.safeParse(input).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ??
      [];
    assert.deepEqual(problems({ query: 'up', range: '15 minutes' }), [
      'range: expected a duration like "30s", "15m" or "1h30m"',
    ]);
    assert.deepEqual(problems({ query: 'up', step: '30s' }), [
      'step: step only applies to a range query; set range too',
    ]);
    assert.deepEqual(problems({ query: 'up', range: '7d', step: '1s' }), [
      'step: range/step is more than 11000 points; use a larger step',
    ]);
    assert.deepEqual(problems({ query: 'up', reduce: 'median' }).length, 1);
    assert.deepEqual(problems({ query: 'up', extra: 1 }).length, 1, 'strict');
  });
});

describe('http_check', () => {
  async function startService(): Promise<Stub> {
    return startStub((_req, res, url) => {
      switch (url.pathname) {
        case '/health':
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"status":"ok","version":"1.4.2"}');
          return;
        case '/down':
          res.writeHead(503);
          res.end('unavailable');
          return;
        case '/slow':
          setTimeout(() => {
            res.writeHead(200);
            res.end('ok');
          }, 250);
          return;
        case '/moved':
          res.writeHead(302, { location: '/elsewhere' });
          res.end();
          return;
        case '/big':
          res.writeHead(200);
          res.end(`${'x'.repeat(300 * 1024)}MARKER`);
          return;
        default:
          res.writeHead(404);
          res.end();
      }
    });
  }

  test('checks in parallel: value is the number failed, each check says why', async () => {
    const svc = await startService();
    try {
      const config = HttpCheckConfig.parse({
        urls: [`${svc.url}/health`, `${svc.url}/down`, `${svc.url}/slow`],
        maxLatencyMs: 150,
        headers: { 'x-probe': 'ai-sre' },
      });
      const started = Date.now();
      const out = await httpCheckCollector.collect(config, buildContext());
      assert.ok(Date.now() - started < 600, 'the slow URL does not hold up the others');
      assert.equal(out.value, 2);
      const checks = out.result.checks as {
        url: string;
        ok: boolean;
        status: number;
        latencyMs: number;
        error: string;
      }[];
      assert.deepEqual(
        checks.map(({ url, ok, status, error }) => ({ url, ok, status, error })),
        [
          { url: `${svc.url}/health`, ok: true, status: 200, error: null },
          { url: `${svc.url}/down`, ok: false, status: 503, error: 'status 503, expected 2xx/3xx' },
          {
            url: `${svc.url}/slow`,
            ok: false,
            status: 200,
            error: `took ${checks[2]?.latencyMs} ms, more than 150 ms`,
          },
        ],
      );
      assert.ok((checks[2]?.latencyMs ?? 0) >= 240);
      assert.equal(out.result.failed, 2);
      assert.equal(out.result.total, 3);
      assert.equal(out.result.maxLatencyMs, checks[2]?.latencyMs);
      const host = new URL(svc.url).host;
      assert.equal(
        out.summary,
        `1/3 up; ${host}/down 503; ${host}/slow slow ${checks[2]?.latencyMs} ms; slowest ${checks[2]?.latencyMs} ms`,
      );
      assert.ok(svc.requests.every((r) => r.method === 'GET' && r.headers['x-probe'] === 'ai-sre'));
    } finally {
      await svc.close();
    }
  });

  test('bodyMatch, expectStatus, HEAD, redirects not followed, body read capped at 256 KiB', async () => {
    const svc = await startService();
    try {
      const ctx = buildContext();
      const body = await httpCheckCollector.collect(
        HttpCheckConfig.parse({ urls: [`${svc.url}/health`], bodyMatch: '"version":"1\\.4\\.' }),
        ctx,
      );
      assert.equal(body.value, 0);
      assert.equal((body.result.checks as { bodyMatched: boolean }[])[0]?.bodyMatched, true);

      const mismatch = await httpCheckCollector.collect(
        HttpCheckConfig.parse({
          urls: [`${svc.url}/health`, `${svc.url}/big`],
          bodyMatch: 'MARKER|"status":"degraded"',
        }),
        ctx,
      );
      assert.equal(mismatch.value, 2, 'MARKER lies beyond the first 256 KiB of /big');
      assert.deepEqual(
        (mismatch.result.checks as { bodyMatched: boolean; error: string }[]).map((c) => [
          c.bodyMatched,
          c.error,
        ]),
        [
          [false, 'body does not match /MARKER|"status":"degraded"/'],
          [false, 'body does not match /MARKER|"status":"degraded"/'],
        ],
      );

      const statuses = await httpCheckCollector.collect(
        HttpCheckConfig.parse({ urls: [`${svc.url}/down`, `${svc.url}/moved`], expectStatus: [503] }),
        ctx,
      );
      assert.deepEqual(
        (statuses.result.checks as { status: number; error: string | null }[]).map((c) => [
          c.status,
          c.error,
        ]),
        [
          [503, null],
          [302, 'status 302, expected 503'],
        ],
      );

      const redirect = await httpCheckCollector.collect(
        HttpCheckConfig.parse({ urls: [`${svc.url}/moved`], method: 'HEAD' }),
        ctx,
      );
      assert.equal(redirect.value, 0, '3xx counts as up by default');
      assert.equal((redirect.result.checks as { bodyMatched: null }[])[0]?.bodyMatched, null);
      assert.ok(!svc.requests.some((r) => r.url.pathname === '/elsewhere'), 'the redirect is not followed');
      assert.ok(svc.requests.some((r) => r.method === 'HEAD'));
    } finally {
      await svc.close();
    }
  });

  test('an unreachable URL is a failed check, not a collector failure', async () => {
    const gone = await startStub(() => undefined);
    await gone.close();
    const out = await httpCheckCollector.collect(
      HttpCheckConfig.parse({ urls: [`${gone.url}/health`] }),
      buildContext(),
    );
    assert.equal(out.value, 1);
    const [check] = out.result.checks as { ok: boolean; status: number | null; error: string }[];
    assert.deepEqual(
      { ok: check?.ok, status: check?.status, error: check?.error },
      {
        ok: false,
        status: null,
        error: 'connection refused',
      },
    );
    assert.match(out.summary, /^0\/1 up; 127\.0\.0\.1:\d+\/health refused; slowest \d+ ms$/);
  });

  test('a URL that hangs is recorded as timed out before the step times out; an aborted step rejects', async () => {
    const svc = await startService();
    const hang = await startStub(() => {
      // never answers
    });
    try {
      const config = HttpCheckConfig.parse({ urls: [`${svc.url}/health`, `${hang.url}/health`] });
      let started = Date.now();
      const out = await httpCheckCollector.collect(config, buildContext({ timeoutMs: 600 }));
      assert.ok(Date.now() - started < 1_000, `answered after ${Date.now() - started} ms`);
      assert.equal(out.value, 1);
      const checks = out.result.checks as { ok: boolean; error: string | null }[];
      assert.deepEqual(
        checks.map((c) => [c.ok, c.error]),
        [
          [true, null],
          [false, 'timed out after 540 ms'],
        ],
      );
      assert.match(out.summary, /^1\/2 up; 127\.0\.0\.1:\d+\/health timed out; slowest \d+ ms$/);

      // The step's signal fires before the checks' own deadline (e.g. the worker shuts down): no result.
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 200);
      started = Date.now();
      await assert.rejects(
        httpCheckCollector.collect(config, buildContext({ signal: controller.signal, timeoutMs: 5_000 })),
        { message: 'timed out after 5000 ms checking 2 URLs' },
      );
      clearTimeout(timer);
      assert.ok(Date.now() - started < 1_000, `rejected after ${Date.now() - started} ms`);
    } finally {
      await hang.close();
      await svc.close();
    }
  });

  test('render: label values are URL-encoded, service values are URLs, anything else is refused', async () => {
    const svc = await startService();
    try {
      const config = HttpCheckConfig.parse({
        urls: ['{{service.health_url}}', `${svc.url}/status/{{labels.pod}}?q={{labels.pod}}`],
        bodyMatch: 'version":"{{labels.version}}"',
      });
      const rendered = httpCheckCollector.render(
        config,
        buildVars({ pod: '../admin?x=1#', version: '1.4.2' }, { health_url: `${svc.url}/health` }),
      );
      assert.deepEqual(rendered.urls, [
        `${svc.url}/health`,
        `${svc.url}/status/..%2Fadmin%3Fx%3D1%23?q=..%2Fadmin%3Fx%3D1%23`,
      ]);
      assert.equal(rendered.bodyMatch, 'version":"1\\.4\\.2"');
      await httpCheckCollector.collect(rendered, buildContext());
      const paths = svc.requests.map((r) => `${r.url.pathname}${r.url.search}`);
      assert.deepEqual(paths.sort(), ['/health', '/status/..%2Fadmin%3Fx%3D1%23?q=..%2Fadmin%3Fx%3D1%23']);

      const refuse = (urls: string[], labels: Record<string, string>, service: Record<string, string> = {}) =>
        assert.throws(
          () => httpCheckCollector.render(HttpCheckConfig.parse({ urls }), buildVars(labels, service)),
          (err: unknown) => err instanceof TemplateError,
        );
      // a label cannot change the host: its "/" and "@" are encoded, which no host may hold
      refuse(['http://{{labels.host}}:8080/health'], { host: 'evil.example/x' });
      refuse(['http://{{labels.host}}/health'], { host: 'user@evil.example' });
      refuse(['{{service.health_url}}'], {}, { health_url: 'file:///etc/passwd' });
      refuse(['{{labels.url}}'], { url: 'http://evil.example/' });
      refuse(['http://user:secret@{{labels.host}}/'], { host: 'db-1' });
      refuse(['http://{{labels.missing}}/'], {});
      await assert.rejects(
        httpCheckCollector.collect(HttpCheckConfig.parse({ urls: ['ftp://files.example/'] }), buildContext()),
        { message: 'http_check urls[0]: "ftp://files.example/" is not an http or https URL' },
      );
    } finally {
      await svc.close();
    }
  });

  test('config: read-only methods and headers, limits', () => {
    const problems = (input: unknown) =>
      HttpCheckConfig.safeParse(input).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    assert.deepEqual(HttpCheckConfig.parse({ urls: ['http://a/'] }), { urls: ['http://a/'], method: 'GET' });
    assert.equal(problems({ urls: ['http://a/'], method: 'POST' }).length, 1);
    assert.deepEqual(problems({ urls: ['http://a/'], headers: { 'X-HTTP-Method-Override': 'DELETE' } }), [
      'headers: method-override headers would make the check other than read-only',
    ]);
    assert.deepEqual(problems({ urls: ['http://a/'], method: 'HEAD', bodyMatch: 'ok' }), [
      'bodyMatch: a HEAD request has no body to match; use GET',
    ]);
    assert.deepEqual(problems({ urls: ['http://a/'], bodyMatch: '(' }), [
      'bodyMatch: expected a valid regular expression',
    ]);
    assert.equal(problems({ urls: [] }).length, 1);
    assert.equal(problems({ urls: Array.from({ length: 21 }, () => 'http://a/') }).length, 1);
  });
});
