import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pino } from 'pino';
import { Targets } from '../src/diagnostics/targets.js';
import { TemplateError, type TemplateVars } from '../src/diagnostics/templating.js';
import { type ActionContext, type ActionResult, ForbiddenActionError } from '../src/remediation/executor.js';
import { type CancelQueryConfig, cancelQueryExecutor } from '../src/remediation/executors/cancel-query.js';
import {
  escapeGlob,
  type FlushCacheConfig,
  flushCacheExecutor,
} from '../src/remediation/executors/flush-cache.js';
import type { PickedBackend } from '../src/remediation/executors/postgres-backends.js';
import {
  type TerminateConnectionsConfig,
  terminateConnectionsExecutor,
} from '../src/remediation/executors/terminate-connections.js';
import type { Queryable } from '../src/store/db.js';

const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = 'redis://127.0.0.1:6379';
const hex = randomBytes(5).toString('hex');
const dbName = `ai_sre_exec_${hex}`;
const dbUrl = `postgres://postgres@127.0.0.1:5432/${dbName}`;
/** a role that may read every session's state but not signal other roles' backends */
const limitedRole = `ai_sre_exec_${hex}_limited`;
const limitedUrl = `postgres://${limitedRole}@127.0.0.1:5432/${dbName}`;

const targets = Targets.parse({
  remediation: {
    databases: { main: { url: dbUrl }, limited: { url: limitedUrl } },
    redis: { cache: { url: REDIS_URL } },
  },
});

function buildVars(labels: Record<string, string> = {}): TemplateVars {
  return { labels, annotations: {}, incident: { id: '1', service: 'payment-service' }, service: {} };
}

/** A context as the runner builds it; the signal aborts after `timeoutMs`. ctx.db is not used by these actions. */
function buildContext(opts: { dryRun?: boolean; timeoutMs?: number; targets?: Targets } = {}): ActionContext {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const controller = new AbortController();
  setTimeout(() => controller.abort(), timeoutMs).unref();
  const db: Queryable = {
    query: (() =>
      Promise.reject(new Error('ctx.db is not used by data-store actions'))) as Queryable['query'],
  };
  return {
    signal: controller.signal,
    timeoutMs,
    dryRun: opts.dryRun ?? false,
    targets: opts.targets ?? targets,
    db,
    incident: { id: 1, service: 'payment-service', severity: 'critical', title: 'pool exhausted' },
    limits: { scaleStep: 3, maxReplicas: 10 },
    now: new Date(),
    log: pino({ level: 'silent' }),
  };
}

function backendsOf(result: ActionResult): PickedBackend[] {
  return result.details.backends as PickedBackend[];
}

/** The issue messages of a failed parse, joined; fails when the parse succeeds. */
function parseErrors(
  schema: { safeParse(v: unknown): { success: boolean; error?: { issues: unknown[] } } },
  v: unknown,
) {
  const parsed = schema.safeParse(v);
  assert.equal(parsed.success, false, `expected ${JSON.stringify(v)} to be refused`);
  return (parsed.error?.issues ?? []) as { path: (string | number)[]; message: string }[];
}

describe('terminate_connections and cancel_query', () => {
  let admin: pg.Pool;
  const clients: pg.Client[] = [];

  /** A session of our test database with a last statement that holds a secret; optionally left in a transaction. */
  async function openSession(
    application: string,
    opts: { inTransaction?: boolean; url?: string } = {},
  ): Promise<{ client: pg.Client; pid: number }> {
    const client = new pg.Client({ connectionString: opts.url ?? dbUrl, application_name: application });
    // terminated on purpose below
    client.on('error', () => {});
    clients.push(client);
    await client.connect();
    const { rows } = await client.query<{ pid: number }>(
      "SELECT pg_backend_pid() AS pid, 'password=hunter2' AS note",
    );
    if (opts.inTransaction) {
      await client.query('BEGIN');
      await client.query("SELECT 1 AS one, 'password=hunter2' AS note");
    }
    return { client, pid: rows[0]?.pid as number };
  }

  /** Waits until every pid has been in its current state for longer than `seconds`. */
  async function waitInStateFor(pids: number[], seconds: number, column = 'state_change'): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { rows } = await admin.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE pid = ANY($1) AND ${column} < now() - make_interval(secs => $2)`,
        [pids, seconds + 0.2],
      );
      if (rows[0]?.n === pids.length) return;
      if (Date.now() > deadline) assert.fail(`sessions ${pids.join(', ')} did not reach ${seconds}s`);
      await sleep(100);
    }
  }

  /** The pids still present in pg_stat_activity once terminations have had time to land. */
  async function presentAfterSettling(pids: number[], expectGone: number[]): Promise<number[]> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const { rows } = await admin.query<{ pid: number }>(
        'SELECT pid FROM pg_stat_activity WHERE pid = ANY($1)',
        [pids],
      );
      const present = rows.map((r) => r.pid);
      if (expectGone.every((p) => !present.includes(p)) || Date.now() > deadline) return present.sort();
      await sleep(50);
    }
  }

  async function stateOf(pid: number): Promise<string | null> {
    const { rows } = await admin.query<{ state: string }>(
      'SELECT state FROM pg_stat_activity WHERE pid = $1',
      [pid],
    );
    return rows[0]?.state ?? null;
  }

  const terminate = (config: TerminateConnectionsConfig, opts?: { dryRun?: boolean }) =>
    terminateConnectionsExecutor.execute(config, buildContext(opts));
  const cancel = (config: CancelQueryConfig, opts?: { dryRun?: boolean }) =>
    cancelQueryExecutor.execute(config, buildContext(opts));

  before(async () => {
    admin = new pg.Pool({ connectionString: ADMIN_URL, max: 2 });
    await admin.query(`CREATE DATABASE ${dbName}`);
    await admin.query(`CREATE ROLE ${limitedRole} LOGIN`);
    await admin.query(`GRANT pg_read_all_stats TO ${limitedRole}`);
  });

  // each test starts with no sessions of its predecessors in the test database
  afterEach(async () => {
    const open = clients.splice(0);
    await Promise.all(open.map((c) => c.end().catch(() => {})));
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      const { rows } = await admin.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'",
        [dbName],
      );
      if (rows[0]?.n === 0) return;
      await sleep(50);
    }
    assert.fail('sessions of the test database did not close');
  });

  after(async () => {
    await admin?.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin?.query(`DROP ROLE IF EXISTS ${limitedRole}`);
    await admin?.end();
  });

  test('terminates idle sessions of one application, the longest idle first, up to the limit', async () => {
    const victims = [];
    for (let i = 0; i < 3; i++) {
      victims.push(await openSession('victim-app'));
      await sleep(50); // distinct idle ages, so "longest idle first" is observable
    }
    const inTransaction = await openSession('victim-app', { inTransaction: true });
    const bystander = await openSession('bystander');
    const all = [...victims.map((v) => v.pid), inTransaction.pid, bystander.pid];
    await waitInStateFor(all, 1);

    const result = await terminate({
      target: 'main',
      state: 'idle',
      idleLongerThan: '1s',
      limit: 2,
      database: dbName,
      application: 'victim-app',
    });
    const [first, second, third] = victims.map((v) => v.pid);
    assert.deepEqual(
      backendsOf(result).map((b) => b.pid),
      [first, second],
      'the two longest idle victims',
    );
    assert.equal(result.ok, true);
    assert.equal(result.dryRun, false);
    assert.equal(result.details.matched, 2);
    assert.equal(result.details.done, 2);
    assert.match(result.summary, /^terminated 2 of 2 sessions idle for over 1s on main/);
    const gone = [first, second] as number[];
    const present = await presentAfterSettling(all, gone);
    assert.deepEqual(
      present,
      [third, inTransaction.pid, bystander.pid].sort(),
      'only the two were terminated',
    );

    const reported = backendsOf(result)[0];
    assert.equal(reported?.applicationName, 'victim-app');
    assert.equal(reported?.datname, dbName);
    assert.equal(reported?.usename, 'postgres');
    assert.equal(reported?.state, 'idle');
    assert.ok((reported?.ageSeconds ?? 0) >= 1, 'age in seconds');
    assert.match(reported?.query ?? '', /password=\*\*\*/, 'the last statement, secrets masked');
    assert.doesNotMatch(JSON.stringify(result.details), /hunter2/);

    // idle in transaction is its own state: the remaining idle victim and the bystander stay
    const tx = await terminate({
      target: 'main',
      state: 'idle in transaction',
      idleLongerThan: '1s',
      limit: 50,
      database: dbName,
      application: 'victim-app',
    });
    assert.deepEqual(
      backendsOf(tx).map((b) => [b.pid, b.state, b.done]),
      [[inTransaction.pid, 'idle in transaction', true]],
    );
    assert.match(tx.summary, /idle in a transaction for over 1s/);
    const left = await presentAfterSettling(all, [inTransaction.pid]);
    assert.deepEqual(left, [third, bystander.pid].sort());
  });

  test("the bot's own sessions and other databases' sessions are never picked", async () => {
    const own = await openSession('ai-sre-diagnostics');
    const elsewhere = new pg.Client({ connectionString: ADMIN_URL, application_name: 'victim-app' });
    elsewhere.on('error', () => {});
    clients.push(elsewhere);
    await elsewhere.connect();
    const elsewherePid = (await elsewhere.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]
      ?.pid as number;
    const victim = await openSession('victim-app');
    await waitInStateFor([own.pid, elsewherePid, victim.pid], 1);

    // no application filter: everything idle in our database is a candidate, except the bot's own
    const result = await terminate({
      target: 'main',
      state: 'idle',
      idleLongerThan: '1s',
      limit: 100,
      database: dbName,
    });
    const picked = backendsOf(result).map((b) => b.pid);
    assert.ok(picked.includes(victim.pid), 'the victim was picked');
    assert.ok(!picked.includes(own.pid), 'ai-sre* sessions are excluded');
    assert.ok(!picked.includes(elsewherePid), 'other databases are excluded by the database filter');
    const present = await presentAfterSettling([own.pid, elsewherePid, victim.pid], [victim.pid]);
    assert.deepEqual(present, [own.pid, elsewherePid].sort());
  });

  test('a filter value is a bind parameter: SQL in a label matches nothing', async () => {
    const victim = await openSession('victim-app');
    await waitInStateFor([victim.pid], 1);
    const config = terminateConnectionsExecutor.render(
      {
        target: 'main',
        state: 'idle',
        idleLongerThan: '1s',
        limit: 50,
        database: dbName,
        application: '{{labels.app}}',
      },
      buildVars({ app: "x' OR '1'='1" }),
    );
    assert.equal(config.application, "x' OR '1'='1");
    const result = await terminate(config);
    assert.equal(result.details.matched, 0);
    assert.match(result.summary, /^no sessions idle/);
    assert.equal(await stateOf(victim.pid), 'idle', 'the victim is untouched');
  });

  test('a dry run selects but terminates nothing', async () => {
    const victims = [await openSession('victim-app'), await openSession('victim-app')];
    const pids = victims.map((v) => v.pid);
    await waitInStateFor(pids, 1);
    const result = await terminate(
      {
        target: 'main',
        state: 'idle',
        idleLongerThan: '1s',
        limit: 50,
        application: 'victim-app',
        database: dbName,
      },
      { dryRun: true },
    );
    assert.equal(result.dryRun, true);
    assert.deepEqual(
      backendsOf(result)
        .map((b) => b.pid)
        .sort(),
      [...pids].sort(),
    );
    assert.ok(backendsOf(result).every((b) => b.done === undefined));
    assert.match(result.summary, /^would terminate 2 sessions/);
    await sleep(300);
    for (const v of victims) {
      const { rows } = await v.client.query<{ one: number }>('SELECT 1 AS one');
      assert.equal(rows[0]?.one, 1, 'the victim is still connected');
    }
  });

  test('a backend the role may not signal is reported as not done, and the rest still happen', async () => {
    const superuserVictim = await openSession('victim-app');
    const ownRoleVictim = await openSession('victim-app', { url: limitedUrl });
    await waitInStateFor([superuserVictim.pid, ownRoleVictim.pid], 1);

    const result = await terminateConnectionsExecutor.execute(
      {
        target: 'limited',
        state: 'idle',
        idleLongerThan: '1s',
        limit: 10,
        application: 'victim-app',
        database: dbName,
      },
      buildContext(),
    );
    const byPid = new Map(backendsOf(result).map((b) => [b.pid, b]));
    assert.equal(byPid.get(ownRoleVictim.pid)?.done, true);
    assert.equal(byPid.get(superuserVictim.pid)?.permitted, false);
    assert.equal(byPid.get(superuserVictim.pid)?.done, false);
    assert.equal(result.details.matched, 2);
    assert.equal(result.details.done, 1);
    assert.equal(result.details.notPermitted, 1);
    assert.equal(result.ok, false, 'not everything matched was done');
    assert.match(result.summary, /terminated 1 of 2 sessions .*\(1 not permitted for this role\)/);
    const present = await presentAfterSettling([superuserVictim.pid, ownRoleVictim.pid], [ownRoleVictim.pid]);
    assert.deepEqual(present, [superuserVictim.pid]);
  });

  test('cancel_query cancels the longest running statements up to the limit; the sessions stay connected', async () => {
    const first = await openSession('victim-app');
    const firstSleep = first.client.query('SELECT pg_sleep(30)');
    firstSleep.catch(() => {});
    await sleep(100);
    const second = await openSession('victim-app');
    const secondSleep = second.client.query('SELECT pg_sleep(30)');
    secondSleep.catch(() => {});
    const bystander = await openSession('bystander');
    const bystanderSleep = bystander.client.query('SELECT pg_sleep(30)');
    bystanderSleep.catch(() => {});
    const pids = [first.pid, second.pid, bystander.pid];
    await waitInStateFor(pids, 1, 'query_start');

    try {
      // a dry run cancels nothing
      const dry = await cancel(
        { target: 'main', runningLongerThan: '1s', limit: 5, application: 'victim-app', database: dbName },
        { dryRun: true },
      );
      assert.deepEqual(
        backendsOf(dry).map((b) => b.pid),
        [first.pid, second.pid],
      );
      assert.match(dry.summary, /^would cancel 2 statements running for over 1s on main/);
      await sleep(200);
      assert.equal(await stateOf(first.pid), 'active');

      const result = await cancel({
        target: 'main',
        runningLongerThan: '1s',
        limit: 1,
        application: 'victim-app',
        database: dbName,
      });
      assert.deepEqual(
        backendsOf(result).map((b) => [b.pid, b.state, b.done]),
        [[first.pid, 'active', true]],
        'only the longest running one (limit 1)',
      );
      assert.match(backendsOf(result)[0]?.query ?? '', /pg_sleep\(30\)/);
      assert.match(result.summary, /^cancelled 1 of 1 statement running for over 1s on main/);
      await assert.rejects(firstSleep, (err: Error & { code?: string }) => {
        assert.equal(err.code, '57014');
        return true;
      });
      const { rows } = await first.client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      assert.equal(rows[0]?.pid, first.pid, 'the same session answers after the cancel');
      assert.equal(await stateOf(second.pid), 'active', 'beyond the limit: still running');
      assert.equal(await stateOf(bystander.pid), 'active', 'other applications: still running');
    } finally {
      await admin.query('SELECT pg_cancel_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
    }
  });

  test('check() names an unknown target and remediation.databases; execute() refuses it', async () => {
    const config: TerminateConnectionsConfig = {
      target: 'nope',
      state: 'idle',
      idleLongerThan: '10m',
      limit: 50,
    };
    const problems = terminateConnectionsExecutor.check?.(config, targets) ?? [];
    assert.equal(problems.length, 1);
    assert.deepEqual(problems[0]?.path, ['target']);
    assert.match(problems[0]?.message ?? '', /"nope".*remediation\.databases.*known: main, limited/);
    await assert.rejects(terminate(config), ForbiddenActionError);
    const cancelProblems =
      cancelQueryExecutor.check?.({ target: 'nope', runningLongerThan: '5m', limit: 5 }, targets) ?? [];
    assert.match(cancelProblems[0]?.message ?? '', /remediation\.databases/);
    await assert.rejects(cancel({ target: 'nope', runningLongerThan: '5m', limit: 5 }), ForbiddenActionError);
  });

  test('execute() re-validates: state active and a missing limit are refused even without the loader', async () => {
    const victim = await openSession('victim-app');
    const activeSleep = victim.client.query('SELECT pg_sleep(5)');
    activeSleep.catch(() => {});
    await waitInStateFor([victim.pid], 1, 'query_start');
    const bad = {
      target: 'main',
      state: 'active',
      idleLongerThan: '1s',
      limit: 5,
      application: 'victim-app',
    };
    await assert.rejects(
      terminateConnectionsExecutor.execute(bad as unknown as TerminateConnectionsConfig, buildContext()),
      (err: Error) => err instanceof ForbiddenActionError && /cancel_query/.test(err.message),
    );
    const noLimit = { target: 'main', state: 'idle', idleLongerThan: '1s', database: dbName };
    await assert.rejects(
      terminateConnectionsExecutor.execute(noLimit as unknown as TerminateConnectionsConfig, buildContext()),
      (err: Error) => err instanceof ForbiddenActionError && /limit is required/.test(err.message),
    );
    assert.equal(await stateOf(victim.pid), 'active', 'the running session was not touched');
    await admin.query('SELECT pg_cancel_backend($1)', [victim.pid]);
  });

  test('describe() names the target, the blast radius and the rollback', () => {
    const d = terminateConnectionsExecutor.describe(
      { target: 'main', state: 'idle in transaction', idleLongerThan: '5m', limit: 50 },
      targets,
      buildContext().incident,
    );
    assert.deepEqual(d, {
      target: 'postgres:main',
      blastRadius:
        'up to 50 sessions idle in a transaction for over 5m on main; their open transactions roll back',
      rollback: 'none needed: clients reconnect',
    });
    const c = cancelQueryExecutor.describe(
      { target: 'main', runningLongerThan: '5m', limit: 5, application: 'checkout' },
      targets,
      buildContext().incident,
    );
    assert.equal(c.target, 'postgres:main');
    assert.match(c.blastRadius, /^up to 5 statements running for over 5m on main \(application checkout\)/);
  });
});

describe('abort', () => {
  let server: Server;
  let port: number;
  const sockets: Socket[] = [];
  const closed: Socket[] = [];

  before(async () => {
    // accepts and never answers: a connect or a command waits until the step's signal ends it
    server = createServer((socket) => {
      sockets.push(socket);
      // read (and drop) what the client sends, so its FIN is seen and 'close' fires
      socket.resume();
      socket.on('close', () => closed.push(socket));
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** Runs `fn`, expecting a rejection; returns how long it took and the error. */
  async function timeRejection(fn: () => Promise<unknown>): Promise<{ ms: number; error: Error }> {
    const started = performance.now();
    try {
      await fn();
    } catch (err) {
      return { ms: performance.now() - started, error: err as Error };
    }
    assert.fail('expected a rejection');
  }

  test('the step signal ends a hanging Postgres or Redis connection and the action fails promptly', async () => {
    const hanging = Targets.parse({
      remediation: {
        databases: { stuck: { url: `postgres://postgres@127.0.0.1:${port}/x` } },
        redis: { stuck: { url: `redis://127.0.0.1:${port}` } },
      },
    });
    const ctx = () => buildContext({ timeoutMs: 300, targets: hanging });
    const runs = [
      () =>
        terminateConnectionsExecutor.execute(
          { target: 'stuck', state: 'idle', idleLongerThan: '1s', limit: 1 },
          ctx(),
        ),
      () => cancelQueryExecutor.execute({ target: 'stuck', runningLongerThan: '1s', limit: 1 }, ctx()),
      () => flushCacheExecutor.execute({ target: 'stuck', pattern: 'session:*', limit: 1 }, ctx()),
    ];
    for (const [i, run] of runs.entries()) {
      const { ms, error } = await timeRejection(run);
      assert.match(error.message, /timed out after 300 ms/);
      assert.ok(ms < 2_000, `run ${i} settled after ${Math.round(ms)} ms`);
    }
    const deadline = Date.now() + 2_000;
    while (closed.length < sockets.length && Date.now() < deadline) await sleep(20);
    assert.equal(sockets.length, 3, 'each run opened its own connection');
    assert.equal(closed.length, 3, 'each connection was closed on abort');
  });
});

describe('data-store action configs', () => {
  test('the runbooks as written parse', () => {
    for (const config of [
      { target: 'main', state: 'idle in transaction', idleLongerThan: '5m', limit: 50 },
      { target: 'main', state: 'idle', idleLongerThan: '10m', limit: 50 },
    ]) {
      assert.deepEqual(terminateConnectionsExecutor.config.parse(config), config);
    }
    assert.deepEqual(
      cancelQueryExecutor.config.parse({ target: 'main', runningLongerThan: '5m', limit: 5 }),
      {
        target: 'main',
        runningLongerThan: '5m',
        limit: 5,
      },
    );
    const flush = { target: 'cache', pattern: 'session:{{labels.tenant}}:*', limit: 10_000 };
    assert.deepEqual(flushCacheExecutor.config.parse(flush), flush);
  });

  test('forbidden shapes fail schema parsing with a message naming the field', () => {
    const base = { target: 'main', state: 'idle', idleLongerThan: '5m', limit: 50 };
    for (const sql of ['DROP TABLE x', 'DELETE FROM x', 'TRUNCATE x']) {
      for (const [schema, config] of [
        [terminateConnectionsExecutor.config, { ...base, sql }],
        [cancelQueryExecutor.config, { target: 'main', runningLongerThan: '5m', limit: 5, sql }],
      ] as const) {
        const messages = parseErrors(schema, config).map((i) => i.message);
        assert.equal(messages.length, 1);
        assert.match(messages[0] ?? '', /^"sql": free SQL is not allowed in remediation/);
      }
    }
    assert.match(
      parseErrors(terminateConnectionsExecutor.config, { ...base, query: 'SELECT 1' })[0]?.message ?? '',
      /"query": free SQL is not allowed/,
    );
    const flush = parseErrors(flushCacheExecutor.config, {
      target: 'cache',
      pattern: 'session:*',
      limit: 10,
      command: 'FLUSHALL',
    });
    assert.match(flush[0]?.message ?? '', /^"command": raw Redis commands are not allowed in remediation/);
    assert.match(
      parseErrors(flushCacheExecutor.config, {
        target: 'cache',
        pattern: 'session:*',
        limit: 10,
        flushall: true,
      })[0]?.message ?? '',
      /"flushall": raw Redis commands are not allowed/,
    );
    const active = parseErrors(terminateConnectionsExecutor.config, { ...base, state: 'active' });
    assert.deepEqual(active[0]?.path, ['state']);
    assert.match(active[0]?.message ?? '', /state "active" is refused.*cancel_query/);
    const other = parseErrors(terminateConnectionsExecutor.config, { ...base, olderThan: '5m' });
    assert.match(other[0]?.message ?? '', /unknown field "olderThan" in terminate_connections/);
  });

  test('every bound is explicit: limit required and capped, durations at least 1s', () => {
    const base = { target: 'main', state: 'idle', idleLongerThan: '5m' };
    const missing = parseErrors(terminateConnectionsExecutor.config, base);
    assert.deepEqual(missing[0]?.path, ['limit']);
    assert.match(missing[0]?.message ?? '', /limit is required/);
    assert.match(
      parseErrors(terminateConnectionsExecutor.config, { ...base, limit: 101 })[0]?.message ?? '',
      /limit: at most 100 sessions/,
    );
    assert.match(
      parseErrors(cancelQueryExecutor.config, { target: 'main', runningLongerThan: '5m', limit: 21 })[0]
        ?.message ?? '',
      /limit: at most 20 statements/,
    );
    assert.match(
      parseErrors(flushCacheExecutor.config, { target: 'cache', pattern: 'session:*', limit: 100_001 })[0]
        ?.message ?? '',
      /limit: at most 100000 keys/,
    );
    const short = parseErrors(terminateConnectionsExecutor.config, {
      ...base,
      limit: 5,
      idleLongerThan: '500ms',
    });
    assert.deepEqual(short[0]?.path, ['idleLongerThan']);
    assert.deepEqual(
      parseErrors(cancelQueryExecutor.config, { target: 'main', runningLongerThan: '0s', limit: 5 })[0]?.path,
      ['runningLongerThan'],
    );
  });
});

describe('flush_cache', () => {
  const prefix = `ai-sre-exec-test-${hex}`;
  let redis: Redis;

  const flush = (config: FlushCacheConfig, opts: { dryRun?: boolean } = {}) =>
    flushCacheExecutor.execute(config, buildContext(opts));

  async function keysUnder(sub: string): Promise<string[]> {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(
        cursor,
        'MATCH',
        `${escapeGlob(`${prefix}:${sub}`)}*`,
        'COUNT',
        1000,
      );
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
    return [...new Set(out)].sort();
  }

  async function seed(keys: string[]): Promise<void> {
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.set(key, 'x');
    await pipeline.exec();
  }

  async function clear(): Promise<void> {
    const keys = await keysUnder('');
    if (keys.length > 0) await redis.del(...keys);
  }

  before(async () => {
    redis = new Redis(REDIS_URL);
  });

  after(async () => {
    await clear();
    redis?.disconnect();
  });

  test('removes the keys of one pattern, keeps the rest', async () => {
    await clear();
    const acme = Array.from({ length: 25 }, (_, i) => `${prefix}:session:acme:${i}`);
    await seed([...acme, `${prefix}:session:globex:1`, `${prefix}:other:1`, `${prefix}:other:2`]);
    const config = flushCacheExecutor.render(
      { target: 'cache', pattern: `${prefix}:session:{{labels.tenant}}:*`, limit: 10_000 },
      buildVars({ tenant: 'acme' }),
    );
    const result = await flush(config);
    assert.equal(result.ok, true);
    assert.equal(result.details.removed, 25);
    assert.equal(result.details.matched, 25);
    assert.equal(result.details.capReached, false);
    const sample = result.details.sample as string[];
    assert.equal(sample.length, 10);
    assert.ok(sample.every((k) => k.startsWith(`${prefix}:session:acme:`)));
    assert.equal(result.summary, `removed 25 keys matching ${prefix}:session:acme:* on cache`);
    assert.deepEqual(await keysUnder('session:'), [`${prefix}:session:globex:1`]);
    assert.deepEqual(await keysUnder('other:'), [`${prefix}:other:1`, `${prefix}:other:2`]);
  });

  test('stops at the limit and says so', async () => {
    await clear();
    await seed(Array.from({ length: 25 }, (_, i) => `${prefix}:session:acme:${i}`));
    const result = await flush({ target: 'cache', pattern: `${prefix}:session:*`, limit: 10 });
    assert.equal(result.details.removed, 10);
    assert.equal(result.details.capReached, true);
    assert.match(result.summary, /stopped at the limit of 10 \(more keys may match; how many is not known\)/);
    assert.equal((await keysUnder('session:')).length, 15);
  });

  test('a dry run counts and removes nothing', async () => {
    await clear();
    await seed(Array.from({ length: 7 }, (_, i) => `${prefix}:session:acme:${i}`));
    const result = await flush(
      { target: 'cache', pattern: `${prefix}:session:*`, limit: 100 },
      { dryRun: true },
    );
    assert.equal(result.dryRun, true);
    assert.equal(result.details.matched, 7);
    assert.equal(result.details.removed, 0);
    assert.match(result.summary, /^would remove 7 keys/);
    assert.equal((await keysUnder('session:')).length, 7);
  });

  test('a label value with glob characters is escaped and matches only itself', async () => {
    await clear();
    await seed([`${prefix}:session:*:1`, `${prefix}:session:acme:1`, `${prefix}:session:a:1`]);
    const config = flushCacheExecutor.render(
      { target: 'cache', pattern: `${prefix}:session:{{labels.tenant}}:*`, limit: 100 },
      buildVars({ tenant: '*' }),
    );
    assert.equal(config.pattern, `${prefix}:session:\\*:*`);
    assert.equal(
      flushCacheExecutor.render(config, buildVars()).pattern,
      config.pattern,
      'no placeholders left',
    );
    assert.equal(escapeGlob('a?[b]-^\\'), 'a\\?\\[b\\]\\-\\^\\\\');
    const result = await flush(config);
    assert.equal(result.details.removed, 1);
    assert.deepEqual(await keysUnder('session:'), [`${prefix}:session:a:1`, `${prefix}:session:acme:1`]);
    assert.throws(
      () =>
        flushCacheExecutor.render(
          { target: 'cache', pattern: 'session:{{labels.tenant}}:*', limit: 1 },
          buildVars(),
        ),
      TemplateError,
    );
  });

  test('broad patterns and unknown targets are refused at check() and at execute()', async () => {
    await clear();
    await seed([`${prefix}:session:1`]);
    for (const pattern of ['*', 'ab*', '{{labels.tenant}}:*', 'a?bcdef', '[a]bcdef']) {
      const config = { target: 'cache', pattern, limit: 10 };
      const problems = flushCacheExecutor.check?.(config, targets) ?? [];
      assert.equal(problems.length, 1, pattern);
      assert.deepEqual(problems[0]?.path, ['pattern']);
      assert.match(problems[0]?.message ?? '', /too broad: it needs at least 3 literal characters/);
      if (!pattern.includes('{{')) await assert.rejects(flush(config), ForbiddenActionError);
    }
    assert.deepEqual(
      flushCacheExecutor.check?.({ target: 'cache', pattern: 'abc*', limit: 10 }, targets),
      [],
    );
    const unknown =
      flushCacheExecutor.check?.({ target: 'nope', pattern: `${prefix}:*`, limit: 10 }, targets) ?? [];
    assert.deepEqual(unknown[0]?.path, ['target']);
    assert.match(unknown[0]?.message ?? '', /"nope".*remediation\.redis/);
    await assert.rejects(flush({ target: 'nope', pattern: `${prefix}:*`, limit: 10 }), ForbiddenActionError);
    assert.deepEqual(await keysUnder('session:'), [`${prefix}:session:1`], 'nothing was removed');
  });

  test('describe() names the target, the blast radius and the rollback', () => {
    const d = flushCacheExecutor.describe(
      { target: 'cache', pattern: 'session:anon:*', limit: 100_000 },
      targets,
      buildContext().incident,
    );
    assert.equal(d.target, 'redis:cache');
    assert.match(d.blastRadius, /up to 100000 keys matching session:anon:\* on cache/);
    assert.equal(d.rollback, 'none: the keys are rebuilt by the application on the next read (cache)');
  });
});
