import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { CollectContext } from '../src/diagnostics/collector.js';
import {
  closeDatabaseTargets,
  type DatabaseQueryConfig,
  databaseQueryCollector,
} from '../src/diagnostics/collectors/database-query.js';
import { parseRedisInfo, redisInfoCollector } from '../src/diagnostics/collectors/redis-info.js';
import { Targets } from '../src/diagnostics/targets.js';
import { TemplateError, type TemplateVars } from '../src/diagnostics/templating.js';

const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const HOSTILE = "x'; DROP TABLE t; --";

function buildVars(labels: Record<string, string> = {}): TemplateVars {
  return { labels, annotations: {}, incident: { id: '1', service: 'payment-service' }, service: {} };
}

/** A context whose signal aborts after `timeoutMs`, as the runner's would; `abortAfterMs` aborts it earlier. */
function buildContext(
  targets: Targets,
  db: CollectContext['db'],
  timeoutMs = 5_000,
  abortAfterMs = timeoutMs,
): CollectContext {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), abortAfterMs).unref();
  return {
    signal: controller.signal,
    timeoutMs,
    targets,
    db,
    incident: { id: 1, service: 'payment-service', openedAt: new Date() },
    now: new Date(),
  };
}

/** Milliseconds `fn` took to settle, and its rejection. */
async function timeRejection(fn: () => Promise<unknown>): Promise<{ ms: number; error: Error }> {
  const started = performance.now();
  try {
    await fn();
  } catch (err) {
    return { ms: performance.now() - started, error: err as Error };
  }
  assert.fail('expected a rejection');
}

/** A port on loopback that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

describe('database_query', () => {
  const dbName = `ai_sre_collectors_${randomBytes(5).toString('hex')}`;
  const dbUrl = `postgres://postgres@127.0.0.1:5432/${dbName}`;
  let admin: pg.Pool;
  let testDb: pg.Pool;
  let targets: Targets;
  const collect = (config: DatabaseQueryConfig, timeoutMs?: number, abortAfterMs?: number) =>
    databaseQueryCollector.collect(config, buildContext(targets, testDb, timeoutMs, abortAfterMs));
  const tableCount = async () =>
    (await testDb.query<{ n: number }>('SELECT count(*)::int AS n FROM t')).rows[0]?.n;

  before(async () => {
    admin = new pg.Pool({ connectionString: ADMIN_URL, max: 1 });
    await admin.query(`CREATE DATABASE ${dbName}`);
    testDb = new pg.Pool({ connectionString: dbUrl, max: 2 });
    // DROP DATABASE … WITH (FORCE) in after() terminates whatever is still connected; that is expected
    testDb.on('error', () => {});
    testDb.on('connect', (client) => client.on('error', () => {}));
    await testDb.query(
      "CREATE TABLE t (id int PRIMARY KEY, name text); INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    );
    const closed = await closedPort();
    targets = Targets.parse({
      databases: {
        main: { url: dbUrl },
        small: { url: dbUrl, maxRows: 3 },
        quick: { url: dbUrl, statementTimeoutMs: 300 },
        patient: { url: dbUrl, statementTimeoutMs: 60_000 },
        down: { url: `postgres://postgres@127.0.0.1:${closed}/postgres` },
      },
    });
  });

  after(async () => {
    await closeDatabaseTargets();
    await testDb?.end();
    await admin?.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin?.end();
  });

  test('the first column of the first row is the value; int8 and numeric come back as numbers', async () => {
    const out = await collect({
      target: 'main',
      sql: 'SELECT count(*) AS n, sum(id)::numeric / 4 AS quarter, max(name) AS top FROM t',
    });
    assert.equal(out.value, 3);
    assert.deepEqual(out.result, {
      rows: [{ n: 3, quarter: 1.5, top: 'c' }],
      rowCount: 1,
      columns: ['n', 'quarter', 'top'],
      truncated: false,
    });
    assert.equal(out.summary, 'n 3, quarter 1.5, top "c" (1 row)', 'the first row, value column first');
  });

  test('valueColumn picks the value; an unknown column is an error naming the columns there are', async () => {
    const out = await collect({
      target: 'main',
      sql: 'SELECT count(*) AS n, max(name) AS top FROM t',
      valueColumn: 'top',
    });
    assert.equal(out.value, 'c');
    assert.equal(out.summary, 'top "c", n 3 (1 row)');
    await assert.rejects(
      collect({ target: 'main', sql: 'SELECT 1 AS n, 2 AS m', valueColumn: 'nope' }),
      /database_query "main": column "nope" is not in the result \(columns: n, m\)/,
    );
  });

  test('no rows: value is null', async () => {
    const out = await collect({ target: 'main', sql: 'SELECT id FROM t WHERE false' });
    assert.equal(out.value, null);
    assert.deepEqual(out.result, { rows: [], rowCount: 0, columns: ['id'], truncated: false });
    assert.equal(out.summary, 'no rows');
  });

  test('rows stop at maxRows without fetching the rest', async () => {
    const started = performance.now();
    const out = await collect({ target: 'small', sql: 'SELECT g AS n FROM generate_series(1, 5000000) g' });
    assert.ok(performance.now() - started < 2_000, 'five million rows were not fetched');
    assert.deepEqual(out.result, {
      rows: [{ n: 1 }, { n: 2 }, { n: 3 }],
      rowCount: 3,
      columns: ['n'],
      truncated: true,
    });
    assert.equal(out.summary, 'n 1 (first 3 rows, more not fetched)');
  });

  test('dates, json and bytea become plain JSON', async () => {
    const out = await collect({
      target: 'main',
      sql: `SELECT timestamptz '2026-11-26 03:00:00+00' AS at, '{"a":[1,2]}'::jsonb AS doc, '\\x0102'::bytea AS raw`,
    });
    assert.equal(out.value, '2026-11-26T03:00:00.000Z');
    assert.deepEqual(out.result.rows, [
      { at: '2026-11-26T03:00:00.000Z', doc: { a: [1, 2] }, raw: '\\x0102' },
    ]);
  });

  for (const write of [
    "INSERT INTO t VALUES (4, 'd')",
    'CREATE TABLE t2 (x int)',
    'DELETE FROM t',
    'WITH gone AS (DELETE FROM t RETURNING id) SELECT count(*) FROM gone',
  ]) {
    test(`Postgres refuses a write in the READ ONLY transaction: ${write}`, async () => {
      await assert.rejects(collect({ target: 'main', sql: write }), (err: Error) => {
        assert.match(
          err.message,
          /^database_query "main": cannot execute (INSERT|CREATE TABLE|DELETE|SELECT) in a read-only transaction$/,
        );
        return true;
      });
      assert.equal(await tableCount(), 3);
      const t2 = await testDb.query<{ r: string | null }>("SELECT to_regclass('t2')::text AS r");
      assert.equal(t2.rows[0]?.r, null);
    });
  }

  test('more than one statement is refused by Postgres too', async () => {
    await assert.rejects(
      collect({ target: 'main', sql: 'SELECT 1; DELETE FROM t' }),
      /database_query "main": cannot insert multiple commands into a prepared statement/,
    );
    assert.equal(await tableCount(), 3);
  });

  test('statement_timeout cuts SELECT pg_sleep(10), and the pool stays usable', async () => {
    const { ms, error } = await timeRejection(() => collect({ target: 'quick', sql: 'SELECT pg_sleep(10)' }));
    assert.match(error.message, /^database_query "quick": timed out after 300 ms \(statement_timeout\)$/);
    assert.ok(ms < 2_000, `took ${ms} ms`);
    const again = await collect({ target: 'quick', sql: 'SELECT 42 AS answer' });
    assert.equal(again.value, 42);
  });

  test('statement_timeout is at most the step timeout', async () => {
    const { ms, error } = await timeRejection(() =>
      collect({ target: 'patient', sql: 'SELECT pg_sleep(10)' }, 400),
    );
    assert.match(error.message, /timed out after 400 ms/);
    assert.ok(ms < 1_500, `took ${ms} ms`);
  });

  test('an aborted step rejects at once, and the busy connection is not handed out again', async () => {
    const { ms, error } = await timeRejection(() =>
      collect({ target: 'patient', sql: 'SELECT pg_sleep(10)' }, 5_000, 200),
    );
    assert.match(error.message, /^timed out after 5000 ms$/);
    assert.ok(ms < 1_000, `took ${ms} ms`);
    // a released (not destroyed) client would still be sleeping: these would queue behind it and time out
    for (let i = 0; i < 3; i++) {
      const out = await collect({ target: 'patient', sql: 'SELECT 7 AS n' }, 1_500);
      assert.equal(out.value, 7);
    }
  });

  test('a hostile label value is a bind parameter: the table survives and the query sees the literal string', async () => {
    const config = databaseQueryCollector.render(
      {
        target: 'main',
        sql: 'SELECT count(*) AS n, {{labels.name}} AS seen FROM t WHERE name = {{labels.name}}',
      },
      buildVars({ name: HOSTILE }),
    );
    assert.equal(config.sql, 'SELECT count(*) AS n, $1 AS seen FROM t WHERE name = $1');
    assert.deepEqual(config.params, [HOSTILE]);
    const out = await collect(config);
    assert.equal(out.value, 0);
    assert.deepEqual(out.result.rows, [{ n: 0, seen: HOSTILE }]);
    assert.equal(await tableCount(), 3);

    const matching = databaseQueryCollector.render(
      { target: 'main', sql: 'SELECT id FROM t WHERE name = {{labels.name}} AND id > {{labels.min}}' },
      buildVars({ name: 'b', min: '1' }),
    );
    assert.deepEqual(matching.params, ['b', '1']);
    assert.equal((await collect(matching)).value, 2);
  });

  test('render refuses a placeholder inside quotes or joined to text, and names a missing label', () => {
    const vars = buildVars({ name: HOSTILE, datname: 'main' });
    assert.throws(
      () =>
        databaseQueryCollector.render(
          { target: 'main', sql: "SELECT * FROM t WHERE name = '{{labels.name}}'" },
          vars,
        ),
      (err: Error) => err instanceof TemplateError && /inside a quoted SQL literal/.test(err.message),
    );
    assert.throws(
      () => databaseQueryCollector.render({ target: 'main', sql: 'SELECT * FROM t_{{labels.name}}' }, vars),
      /joined to other text/,
    );
    assert.throws(
      () => databaseQueryCollector.render({ target: 'main', sql: 'SELECT {{labels.pod}}' }, vars),
      (err: Error) =>
        err instanceof TemplateError && err.message === '{{labels.pod}}: the incident has no label "pod"',
    );
  });

  test('check: unknown target, several statements, writes, server-acting functions, quoted placeholders', () => {
    const problems = (config: DatabaseQueryConfig) => databaseQueryCollector.check?.(config, targets) ?? [];
    assert.deepEqual(
      problems({ target: 'main', sql: "SELECT 1 AS semi_in_literal, ';' AS s; -- trailing\n" }),
      [],
    );
    assert.deepEqual(problems({ target: 'nope', sql: 'SELECT 1' }), [
      {
        path: ['target'],
        message: 'no database "nope" in the targets file (known: main, small, quick, patient, down)',
      },
    ]);
    assert.deepEqual(problems({ target: 'main', sql: '  -- nothing\n' }), [
      { path: ['sql'], message: 'expected one SQL statement' },
    ]);
    assert.match(
      problems({ target: 'main', sql: 'SELECT 1; SELECT 2' })[0]?.message ?? '',
      /expected one statement/,
    );
    assert.match(
      problems({ target: 'main', sql: "INSERT INTO t VALUES (9, 'z')" })[0]?.message ?? '',
      /"INSERT" is not a read/,
    );
    assert.match(
      problems({ target: 'main', sql: 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity' })[0]
        ?.message ?? '',
      /calls pg_terminate_backend\(\), which acts on the server even inside a READ ONLY transaction/,
    );
    assert.deepEqual(problems({ target: 'main', sql: "SELECT * FROM t WHERE name = '{{labels.name}}'" }), [
      {
        path: ['sql'],
        message:
          'placeholder {{labels.name}} is inside a quoted SQL literal: it becomes a bind parameter, which must stand alone (write {{…}} without quotes; Postgres supplies the value as a literal)',
      },
    ]);
    assert.match(
      problems({ target: 'main', sql: 'SELECT $$ {{labels.name}} $$' })[0]?.message ?? '',
      /inside a quoted SQL literal/,
    );
    assert.match(
      problems({ target: 'main', sql: 'SELECT * FROM t WHERE id = $1' })[0]?.message ?? '',
      /positional/,
    );
    assert.match(
      problems({ target: 'main', sql: 'SELECT 1', params: ['x'] })[0]?.message ?? '',
      /params is filled from the placeholders/,
    );
  });

  test('a missing target or an unreachable one rejects with a message naming it', async () => {
    await assert.rejects(
      collect({ target: 'nope', sql: 'SELECT 1' }),
      /database_query: no database "nope" in the targets file/,
    );
    await assert.rejects(
      collect({ target: 'down', sql: 'SELECT 1' }),
      /database_query "down": cannot connect: .*ECONNREFUSED/,
    );
    await assert.rejects(
      collect({ target: 'main', sql: 'SELEC 1' }),
      /database_query "main": syntax error at or near "SELEC"/,
    );
  });
});

describe('redis_info', () => {
  const prefix = `ai-sre-collectors-${randomBytes(5).toString('hex')}:`;
  let redis: Redis;
  let targets: Targets;
  let hanging: Server;
  let canned: Server;
  const hangingSockets = new Set<Socket>();
  const collect = (target: string, timeoutMs?: number) =>
    redisInfoCollector.collect(
      { target },
      buildContext(targets, { query: () => Promise.reject(new Error('unused')) }, timeoutMs),
    );

  // what a Redis with maxmemory 1 GiB and 512 MiB used answers to INFO
  const CANNED_INFO = [
    '# Server',
    'redis_version:7.2.4',
    'uptime_in_seconds:86400',
    '# Clients',
    'connected_clients:42',
    'blocked_clients:1',
    'maxclients:10000',
    '# Memory',
    'used_memory:536870912',
    'maxmemory:1073741824',
    'mem_fragmentation_ratio:1.25',
    '# Stats',
    'instantaneous_ops_per_sec:1500',
    'rejected_connections:0',
    'expired_keys:7',
    'evicted_keys:0',
    'keyspace_hits:900',
    'keyspace_misses:100',
    '# Replication',
    'role:master',
    '# Keyspace',
    'db0:keys=1200,expires=300,avg_ttl=60000',
    'db3:keys=5,expires=0,avg_ttl=0',
    '',
  ].join('\r\n');

  before(async () => {
    redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    hanging = createServer((socket) => {
      hangingSockets.add(socket);
      socket.on('close', () => hangingSockets.delete(socket));
      socket.on('error', () => {});
      // read (and drop) what arrives, so the client's FIN is seen and the socket closes
      socket.resume();
    });
    canned = createServer((socket) => {
      socket.on('error', () => {});
      socket.on('data', (chunk) => {
        // one bulk-string reply per RESP command (`*<n>` at a line start) in the chunk
        for (const _ of chunk.toString('latin1').matchAll(/(?:^|\r\n)\*\d+\r\n/g)) {
          socket.write(`$${Buffer.byteLength(CANNED_INFO)}\r\n${CANNED_INFO}\r\n`);
        }
      });
    });
    const [hangingPort, cannedPort, closed] = [
      await listen(hanging),
      await listen(canned),
      await closedPort(),
    ];
    targets = Targets.parse({
      redis: {
        main: { url: 'redis://127.0.0.1:6379' },
        canned: { url: `redis://127.0.0.1:${cannedPort}` },
        hanging: { url: `redis://127.0.0.1:${hangingPort}` },
        down: { url: `redis://127.0.0.1:${closed}` },
      },
    });
  });

  after(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    for (const socket of hangingSockets) socket.destroy();
    await new Promise<void>((resolve) => hanging.close(() => resolve()));
    await new Promise<void>((resolve) => canned.close(() => resolve()));
  });

  test('reads memory, clients, stats and the keyspace of the real Redis', async () => {
    await redis.set(`${prefix}a`, '1');
    await redis.set(`${prefix}b`, '2');
    await redis.set(`${prefix}c`, '3', 'EX', 60);
    await redis.get(`${prefix}a`);
    await redis.get(`${prefix}missing`);
    const maxmemory = Number((await redis.config('GET', 'maxmemory'))[1]);

    const out = await collect('main');
    const r = out.result as Record<string, unknown> & {
      keyspace: Record<string, { keys: number; expires: number }>;
    };
    assert.equal(r.maxMemoryBytes, maxmemory);
    assert.ok((r.usedMemoryBytes as number) > 0);
    assert.ok((r.connectedClients as number) >= 2, 'this test’s client and the collector’s');
    assert.ok((r.keyspaceHits as number) >= 1);
    assert.ok((r.keyspaceMisses as number) >= 1);
    assert.ok((r.hitRate as number) > 0 && (r.hitRate as number) < 1);
    assert.ok((r.keyspace.db0?.keys ?? 0) >= 3);
    assert.ok((r.keyspace.db0?.expires ?? 0) >= 1);
    assert.equal(r.role, 'master');
    assert.match(r.version as string, /^\d+\.\d+\.\d+$/);
    assert.equal(typeof r.uptimeSeconds, 'number');
    assert.equal(typeof r.memFragmentationRatio, 'number');
    if (maxmemory === 0) {
      assert.equal(out.value, null);
      assert.equal(r.memoryPercent, null);
      assert.match(
        out.summary,
        /^memory [\d.]+ (B|KiB|MiB|GiB) \(no maxmemory\), \d+ clients?, \d+ evicted$/,
      );
    } else {
      assert.equal(out.value, r.memoryPercent);
    }
  });

  test('memory as a percentage of maxmemory, hit rate and keyspace, from a Redis answering canned INFO', async () => {
    const out = await collect('canned');
    assert.equal(out.value, 50);
    assert.equal(out.summary, 'memory 512 MiB of 1 GiB (50%), 42 clients, 0 evicted');
    assert.deepEqual(out.result, {
      usedMemoryBytes: 536870912,
      maxMemoryBytes: 1073741824,
      memoryPercent: 50,
      memFragmentationRatio: 1.25,
      connectedClients: 42,
      blockedClients: 1,
      maxClients: 10000,
      rejectedConnections: 0,
      evictedKeys: 0,
      expiredKeys: 7,
      keyspaceHits: 900,
      keyspaceMisses: 100,
      hitRate: 0.9,
      opsPerSec: 1500,
      keyspace: { db0: { keys: 1200, expires: 300, avgTtl: 60000 }, db3: { keys: 5, expires: 0, avgTtl: 0 } },
      role: 'master',
      uptimeSeconds: 86400,
      version: '7.2.4',
    });
  });

  test('parseRedisInfo skips headers and blank lines', () => {
    assert.deepEqual(
      parseRedisInfo('# Memory\r\nused_memory:10\r\n\r\n# Keyspace\r\ndb1:keys=2,expires=1,avg_ttl=5\r\n'),
      {
        fields: { used_memory: '10' },
        keyspace: { db1: { keys: 2, expires: 1, avgTtl: 5 } },
      },
    );
  });

  test('a port nobody listens on is an error naming the target and the cause', async () => {
    const { ms, error } = await timeRejection(() => collect('down'));
    assert.match(error.message, /^redis_info "down": connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
    assert.ok(ms < 1_000, `took ${ms} ms`);
  });

  test('a server that accepts and never answers times out, and the connection is closed', async () => {
    const { ms, error } = await timeRejection(() => collect('hanging', 300));
    assert.equal(error.message, 'timed out after 300 ms');
    assert.ok(ms >= 250 && ms < 1_000, `took ${ms} ms`);
    const deadline = Date.now() + 1_000;
    while (hangingSockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(hangingSockets.size, 0, 'the collector disconnected');
  });

  test('an unknown target: check names it, collect rejects', async () => {
    assert.deepEqual(redisInfoCollector.check?.({ target: 'cache' }, targets), [
      {
        path: ['target'],
        message: 'no redis "cache" in the targets file (known: main, canned, hanging, down)',
      },
    ]);
    await assert.rejects(collect('cache'), /^Error: redis_info: no redis "cache" in the targets file$/);
  });
});
