import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { CollectContext } from '../src/diagnostics/collector.js';
import { LogSearchConfig, logSearchCollector, redactLine } from '../src/diagnostics/collectors/log-search.js';
import { Targets } from '../src/diagnostics/targets.js';
import { TemplateError, type TemplateVars } from '../src/diagnostics/templating.js';

// Never queried by this collector; a Pool only connects on its first query.
const db = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres', max: 1 });
after(() => db.end());

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ai-sre-log-search-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const MINUTE = 60_000;

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

function buildVars(labels: Record<string, string> = {}): TemplateVars {
  return { labels, annotations: {}, incident: { id: '1', service: 'payment-service' }, service: {} };
}

/** "2026-11-26 04:00:00,123": local time, no offset, comma before the milliseconds (log4j's default). */
function localStamp(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())},${p(d.getMilliseconds(), 3)}`;
}

/** The same instant written with a +02:00 offset. */
function offsetStamp(ms: number): string {
  return new Date(ms + 120 * MINUTE).toISOString().replace('Z', '+02:00');
}

async function searchFiles(paths: string[], config: Record<string, unknown>, now = new Date()) {
  const targets = Targets.parse({ logs: { app: { paths } } });
  const parsed = LogSearchConfig.parse({ logs: 'app', ...config });
  return logSearchCollector.collect(parsed, buildContext({ targets, now }));
}

describe('log_search over files', () => {
  test('counts matches inside the window by each line’s time; continuation lines follow the line above', async () => {
    const logs = join(dir, 'window');
    await mkdir(join(logs, 'archive'), { recursive: true });
    const now = Date.now();
    const at = (minutesAgo: number) => new Date(now - minutesAgo * MINUTE).toISOString();
    await writeFile(
      join(logs, 'api.log'),
      [
        `${at(120)} ERROR java.lang.OutOfMemoryError: Java heap space (two hours ago)`,
        '    at com.example.Cache.grow(Cache.java:42) OutOfMemoryError continuation of the old line',
        `${at(10)} ERROR java.lang.OutOfMemoryError: Java heap space password=hunter2`,
        '    at com.example.Cache.grow(Cache.java:42)',
        '    Caused by: OutOfMemoryError while growing',
        `${offsetStamp(now - 5 * MINUTE)} WARN upstream timed out after 30s`,
        `[${localStamp(now - 4 * MINUTE)}] WARN db timed out token=abc123`,
        JSON.stringify({
          time: at(3),
          level: 'error',
          msg: 'upstream timeout',
          auth: 'Authorization: Bearer eyJabc.def',
        }),
        JSON.stringify({
          ts: (now - 2 * MINUTE) / 1000,
          msg: 'timeout talking to redis with xoxb-1234-5678-abcdef',
        }),
        JSON.stringify({ timestamp: now - 90 * 60_000, msg: 'timeout 90 minutes ago' }),
        `${new Date(now + 10 * MINUTE).toISOString()} ERROR timeout stamped in the future`,
        '',
      ].join('\n'),
    );
    // a minute older than worker.log, so it is read first and worker.log's lines are the most recent samples
    await utimes(join(logs, 'api.log'), new Date(now - MINUTE), new Date(now - MINUTE));
    // no times at all: the file's mtime (now) puts every line in the window
    await writeFile(join(logs, 'worker.log'), 'job 17 failed: OutOfMemoryError\r\njob 18 ok\r\n');
    // written two hours ago: not read at all
    await writeFile(join(logs, 'old.log'), 'OutOfMemoryError\nOutOfMemoryError\n');
    await utimes(join(logs, 'old.log'), new Date(now - 120 * MINUTE), new Date(now - 120 * MINUTE));
    // not recursive
    await writeFile(join(logs, 'archive', 'api.1.log'), 'OutOfMemoryError\n');

    const out = await searchFiles(
      [logs],
      { patterns: { oom: 'OutOfMemory', timeout: 'timed? ?out' }, samples: 2 },
      new Date(now),
    );
    assert.deepEqual(out.result.counts, { oom: 3, timeout: 4 });
    assert.equal(out.value, 7, 'lines matching either pattern');
    assert.equal(out.result.scannedLines, 13);
    assert.deepEqual(out.result.samples, {
      oom: ['    Caused by: OutOfMemoryError while growing', 'job 17 failed: OutOfMemoryError'],
      timeout: [
        JSON.stringify({
          time: at(3),
          level: 'error',
          msg: 'upstream timeout',
          auth: 'Authorization: Bearer ***',
        }),
        JSON.stringify({ ts: (now - 2 * MINUTE) / 1000, msg: 'timeout talking to redis with ***' }),
      ],
    });
    const files = (out.result.files as { path: string }[]).sort((a, b) => a.path.localeCompare(b.path));
    assert.deepEqual(files, [
      { path: join(logs, 'api.log'), scannedLines: 11, truncated: false, modifiedInWindow: true },
      { path: join(logs, 'old.log'), scannedLines: 0, truncated: false, modifiedInWindow: false },
      { path: join(logs, 'worker.log'), scannedLines: 2, truncated: false, modifiedInWindow: true },
    ]);
    assert.equal(
      out.summary,
      '7 matching lines in the last 15m (oom 3, timeout 4); 13 lines scanned in 2 of 3 files',
    );

    // a wider window takes in the lines of two hours ago (and reads old.log)
    const wide = await searchFiles([logs], { patterns: { oom: 'OutOfMemory' }, window: '3h' }, new Date(now));
    assert.deepEqual(wide.result.counts, { oom: 7 });
  });

  test('reads only the last 8 MiB of a file, starting at a whole line', async () => {
    const file = join(dir, 'big.log');
    const tailBytes = 8 * 1024 * 1024;
    const filler = `${'x'.repeat(99)}\n`;
    const head = `OutOfMemory in the head\n${filler.repeat(1_000)}`;
    const first = 'OutOfMemory on the 8 MiB boundary\n';
    const last = 'OutOfMemory at the end\n';
    const room = tailBytes - first.length - last.length;
    const tail = `${first}${filler.repeat(Math.floor(room / filler.length))}${'y'.repeat((room % filler.length) - 1)}\n${last}`;
    assert.equal(Buffer.byteLength(tail), tailBytes);
    await writeFile(file, head + tail);

    const out = await searchFiles([file], { patterns: { oom: 'OutOfMemory' }, samples: 5 });
    assert.deepEqual(out.result.counts, { oom: 2 });
    assert.deepEqual((out.result.samples as Record<string, string[]>).oom, [
      'OutOfMemory on the 8 MiB boundary',
      'OutOfMemory at the end',
    ]);
    const [view] = out.result.files as { truncated: boolean; scannedLines: number }[];
    assert.equal(view?.truncated, true);
    assert.equal(view?.scannedLines, 2 + Math.floor(room / filler.length) + 1);
  });

  test('samples are redacted and clipped to 500 characters', async () => {
    assert.equal(
      redactLine('login failed user=bob password=hunter2 ip=10.0.0.1'),
      'login failed user=bob password=*** ip=10.0.0.1',
    );
    assert.equal(redactLine('GET /x?token=abc123&page=2'), 'GET /x?token=***&page=2');
    assert.equal(redactLine('{"api_key": "sk-live-123", "ok": true}'), '{"api_key": "***", "ok": true}');
    assert.equal(
      redactLine('headers: Authorization: Bearer abc.def.ghi'),
      'headers: Authorization: Bearer ***',
    );
    assert.equal(redactLine('slack xoxb-12345-67890-abcdefgh failed'), 'slack *** failed');
    assert.equal(redactLine('aws key AKIAIOSFODNN7EXAMPLE used'), 'aws key *** used');
    assert.equal(
      redactLine('dial postgres://app:s3cret@db-1:5432/app'),
      'dial postgres://app:***@db-1:5432/app',
    );
    const long = redactLine(`ERROR ${'z'.repeat(2_000)}`);
    assert.equal(long.length, 500);
    assert.ok(long.endsWith('…'));

    const file = join(dir, 'secrets.log');
    await writeFile(file, `ERROR auth failed password=hunter2 ${'z'.repeat(2_000)}\n`);
    const out = await searchFiles([file], { patterns: { auth: 'auth failed' } });
    const [sample] = (out.result.samples as Record<string, string[]>).auth ?? [];
    assert.ok(sample?.startsWith('ERROR auth failed password=*** zzz'));
    assert.equal(sample?.length, 500);
    assert.ok(!JSON.stringify(out.result).includes('hunter2'));
  });

  test('a hostile label in a pattern matches itself literally', async () => {
    const file = join(dir, 'hostile.log');
    await writeFile(
      file,
      'request for (a+)+$ denied\nrequest for aaaa denied\nrequest for anything denied\n',
    );
    const config = LogSearchConfig.parse({
      logs: 'app',
      patterns: { denied: 'request for {{labels.user}} denied' },
    });
    const rendered = logSearchCollector.render(config, buildVars({ user: '(a+)+$' }));
    assert.deepEqual(rendered.patterns, { denied: 'request for \\(a\\+\\)\\+\\$ denied' });
    const targets = Targets.parse({ logs: { app: { paths: [file] } } });
    const out = await logSearchCollector.collect(rendered, buildContext({ targets }));
    assert.deepEqual(out.result.counts, { denied: 1 });

    const anything = logSearchCollector.render(config, buildVars({ user: '.*' }));
    const none = await logSearchCollector.collect(anything, buildContext({ targets }));
    assert.deepEqual(none.result.counts, { denied: 0 });
    assert.throws(
      () => logSearchCollector.render(config, buildVars({})),
      (err: unknown) => err instanceof TemplateError && /labels.user/.test(err.message),
    );
  });

  test('load-time check names the missing logs target; unreadable paths reject with the path', async () => {
    const targets = Targets.parse({ logs: { app: { paths: [dir] }, nginx: { paths: [dir] } } });
    const config = LogSearchConfig.parse({ logs: 'api', patterns: { e: 'error' } });
    assert.deepEqual(logSearchCollector.check?.(config, targets), [
      { path: ['logs'], message: 'no logs target "api" in the targets file (known: app, nginx)' },
    ]);
    assert.deepEqual(logSearchCollector.check?.({ ...config, logs: 'app' }, targets), []);
    assert.deepEqual(
      logSearchCollector.check?.(
        LogSearchConfig.parse({ source: 'loki', query: '{a="b"}', patterns: { e: 'x' } }),
        targets,
      ),
      [],
    );
    await assert.rejects(logSearchCollector.collect(config, buildContext({ targets })), {
      message: 'no logs target "api" in the targets file',
    });

    const missing = join(dir, 'nope.log');
    await assert.rejects(searchFiles([missing], { patterns: { e: 'error' } }), {
      message: `log path ${missing} does not exist`,
    });
    const fifo = join(dir, 'fifo');
    const made = spawnSync('mkfifo', [fifo]);
    assert.equal(made.status, 0, made.stderr?.toString());
    await assert.rejects(searchFiles([fifo], { patterns: { e: 'error' } }), {
      message: `log path ${fifo} is neither a regular file nor a directory`,
    });
    const empty = join(dir, 'empty');
    await mkdir(empty);
    const out = await searchFiles([empty], { patterns: { e: 'error' } });
    assert.equal(out.value, 0);
    assert.equal(out.summary, '0 matching lines in the last 15m (e 0); no files in logs "app"');
  });

  test('an aborted step rejects as timed out', async () => {
    const file = join(dir, 'abort.log');
    await writeFile(file, 'error\n');
    const controller = new AbortController();
    controller.abort();
    const targets = Targets.parse({ logs: { app: { paths: [file] } } });
    await assert.rejects(
      logSearchCollector.collect(
        LogSearchConfig.parse({ logs: 'app', patterns: { e: 'error' } }),
        buildContext({ targets, signal: controller.signal, timeoutMs: 2_000 }),
      ),
      { message: 'timed out after 2000 ms searching logs "app"' },
    );
  });

  test('config: source-specific fields, pattern limits, durations', () => {
    const problems = (input: unknown) =>
      LogSearchConfig.safeParse(input).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    assert.deepEqual(LogSearchConfig.parse({ logs: 'app', patterns: { e: 'error' } }), {
      source: 'file',
      logs: 'app',
      patterns: { e: 'error' },
      window: '15m',
      samples: 3,
    });
    assert.deepEqual(problems({ patterns: { e: 'error' } }), ['logs: a file search names a logs target']);
    assert.deepEqual(problems({ source: 'loki', patterns: { e: 'error' } }), [
      'query: a loki search needs a LogQL selector in query',
    ]);
    assert.deepEqual(problems({ logs: 'app', patterns: {} }), ['patterns: expected 1 to 20 patterns']);
    assert.deepEqual(problems({ logs: 'app', patterns: { e: '(' } }), [
      'patterns.e: not a valid regular expression: Invalid regular expression: /(/: Unterminated group',
    ]);
    assert.deepEqual(problems({ logs: 'app', patterns: { e: 'x' }, window: '8d' }), [
      'window: expected a duration between 1s and 7d',
    ]);
    assert.equal(problems({ logs: 'app', patterns: { e: 'x' }, samples: 21 }).length, 1);
    assert.equal(problems({ logs: 'app', patterns: { 'bad name': 'x' } }).length, 1);
  });
});

describe('log_search over Loki', () => {
  interface Stub {
    url: string;
    requests: URL[];
    close(): Promise<void>;
  }

  async function startLoki(
    handle: (url: URL, res: ServerResponse, req: IncomingMessage) => void,
  ): Promise<Stub> {
    const requests: URL[] = [];
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://loki');
      requests.push(url);
      handle(url, res, req);
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

  function streams(result: { stream: Record<string, string>; values: [string, string][] }[]) {
    return { status: 'success', data: { resultType: 'streams', result, stats: {} } };
  }

  test('one filtered query per pattern; counts, distinct value, newest samples, the limit', async () => {
    const both = 'ERROR OutOfMemoryError after timeout password=hunter2';
    const loki = await startLoki((url, res) => {
      const query = url.searchParams.get('query') ?? '';
      let body: unknown;
      if (query.endsWith('|~ "OutOfMemory"')) {
        body = streams([
          {
            stream: { service: 'payment-service', pod: 'p-1' },
            values: [
              ['1700000000300000000', both],
              ['1700000000100000000', 'ERROR OutOfMemoryError one'],
            ],
          },
          {
            stream: { service: 'payment-service', pod: 'p-2' },
            values: [['1700000000200000000', 'ERROR OutOfMemoryError two']],
          },
        ]);
      } else if (query.endsWith('|~ "timeout"')) {
        body = streams([
          { stream: { service: 'payment-service', pod: 'p-1' }, values: [['1700000000300000000', both]] },
        ]);
      } else {
        const values = Array.from({ length: 5_000 }, (_, i): [string, string] => [
          String(1700000000000000000n - BigInt(i)),
          `INFO ${i}`,
        ]);
        body = streams([{ stream: { service: 'payment-service' }, values }]);
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
    try {
      const now = new Date('2026-11-26T03:00:00Z');
      const config = LogSearchConfig.parse({
        source: 'loki',
        query: '{service="{{labels.service}}"}',
        patterns: { oom: 'OutOfMemory', timeout: 'timeout', info: 'INFO' },
        window: '30m',
        samples: 2,
      });
      const rendered = logSearchCollector.render(config, buildVars({ service: 'payment-service' }));
      const out = await logSearchCollector.collect(rendered, buildContext({ lokiUrl: `${loki.url}/`, now }));

      const sent = loki.requests.map((u) => ({
        path: u.pathname,
        query: u.searchParams.get('query'),
        start: u.searchParams.get('start'),
        end: u.searchParams.get('end'),
        limit: u.searchParams.get('limit'),
        direction: u.searchParams.get('direction'),
      }));
      const endNs = `${now.getTime()}000000`;
      const startNs = `${now.getTime() - 30 * MINUTE}000000`;
      assert.deepEqual(
        sent.sort((a, b) => (a.query ?? '').localeCompare(b.query ?? '')),
        [
          '{service="payment-service"} |~ "INFO"',
          '{service="payment-service"} |~ "OutOfMemory"',
          '{service="payment-service"} |~ "timeout"',
        ].map((query) => ({
          path: '/loki/api/v1/query_range',
          query,
          start: startNs,
          end: endNs,
          limit: '5000',
          direction: 'backward',
        })),
      );
      assert.deepEqual(out.result.counts, { oom: 3, timeout: 1, info: 5_000 });
      assert.equal(out.value, 5_003, 'the line matching oom and timeout counts once');
      assert.deepEqual(out.result.samples, {
        oom: ['ERROR OutOfMemoryError two', 'ERROR OutOfMemoryError after timeout password=***'],
        timeout: ['ERROR OutOfMemoryError after timeout password=***'],
        info: ['INFO 1', 'INFO 0'],
      });
      assert.deepEqual(out.result.limitReached, ['info']);
      assert.equal(out.result.files, undefined);
      assert.equal(
        out.summary,
        '5003 matching lines in the last 30m (oom 3, timeout 1, info ≥5000); Loki, 5000-line limit reached',
      );
    } finally {
      await loki.close();
    }
  });

  test('hostile labels stay inside the selector string and the pattern', async () => {
    const loki = await startLoki((_url, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(streams([])));
    });
    try {
      const config = LogSearchConfig.parse({
        source: 'loki',
        query: '{service="{{labels.service}}"}',
        patterns: { denied: 'user {{labels.user}} "denied"' },
      });
      const rendered = logSearchCollector.render(config, buildVars({ service: 'a"} |= "x', user: '.*\\' }));
      assert.equal(rendered.query, '{service="a\\"} |= \\"x"}');
      const out = await logSearchCollector.collect(rendered, buildContext({ lokiUrl: loki.url }));
      assert.equal(
        loki.requests[0]?.searchParams.get('query'),
        '{service="a\\"} |= \\"x"} |~ "user \\\\.\\\\*\\\\\\\\ \\"denied\\""',
      );
      assert.equal(out.value, 0);
      assert.deepEqual(out.result.samples, { denied: [] });
    } finally {
      await loki.close();
    }
  });

  test('Loki errors: text/plain 400, a metric query, non-JSON, no LOKI_URL', async () => {
    const loki = await startLoki((url, res) => {
      const query = url.searchParams.get('query') ?? '';
      if (query.startsWith('{bad')) {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end('parse error at line 1, col 5: syntax error: unexpected IDENTIFIER\n');
      } else if (query.startsWith('rate')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: 'success', data: { resultType: 'matrix', result: [] } }));
      } else {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html>login</html>');
      }
    });
    try {
      const ctx = buildContext({ lokiUrl: loki.url });
      const run = (query: string) =>
        logSearchCollector.collect(
          LogSearchConfig.parse({ source: 'loki', query, patterns: { e: 'error' } }),
          ctx,
        );
      await assert.rejects(run('{bad selector}'), {
        message:
          'Loki rejected the query for pattern e (HTTP 400): parse error at line 1, col 5: syntax error: unexpected IDENTIFIER',
      });
      await assert.rejects(run('rate({a="b"}[5m])'), {
        message: 'Loki returned matrix, not log lines; query must be a log selector',
      });
      await assert.rejects(run('{a="b"}'), {
        message: 'Loki answered the query for pattern e with a body that is not JSON: <html>login</html>',
      });
      await assert.rejects(
        logSearchCollector.collect(
          LogSearchConfig.parse({ source: 'loki', query: '{a="b"}', patterns: { e: 'error' } }),
          buildContext(),
        ),
        { message: 'LOKI_URL is not configured' },
      );
    } finally {
      await loki.close();
    }
  });

  test('a Loki that hangs: rejects at the step timeout', async () => {
    const loki = await startLoki(() => {
      // never answers
    });
    try {
      const config = LogSearchConfig.parse({
        source: 'loki',
        query: '{a="b"}',
        patterns: { e: 'error', w: 'warn' },
      });
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 300);
      let started = Date.now();
      await assert.rejects(
        logSearchCollector.collect(
          config,
          buildContext({ lokiUrl: loki.url, signal: controller.signal, timeoutMs: 300 }),
        ),
        /^Error: timed out after 300 ms querying Loki/,
      );
      clearTimeout(timer);
      assert.ok(Date.now() - started < 1_500, `rejected after ${Date.now() - started} ms`);

      // nobody aborts the signal: the collector's own bound ends it
      started = Date.now();
      await assert.rejects(
        logSearchCollector.collect(config, buildContext({ lokiUrl: loki.url, timeoutMs: 300 })),
        /timed out after 300 ms/,
      );
      assert.ok(Date.now() - started < 1_500, `rejected after ${Date.now() - started} ms`);
    } finally {
      await loki.close();
    }
  });
});
