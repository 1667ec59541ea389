import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { CollectContext } from '../src/diagnostics/collector.js';
import { RecentDeploysConfig, recentDeploysCollector } from '../src/diagnostics/collectors/recent-deploys.js';
import { Targets } from '../src/diagnostics/targets.js';
import { TemplateError, type TemplateVars } from '../src/diagnostics/templating.js';
import { type DeployEventRecord, recordDeployEvents } from '../src/store/deploy-events-repo.js';
import { ensureDatabase, runMigrations } from '../src/store/migrate.js';
import { dropDatabase } from './helpers/test-app.js';

const now = new Date();
const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000);

function buildDeploy(
  spec: Partial<DeployEventRecord> & { service: string; version: string },
): DeployEventRecord {
  return {
    environment: 'production',
    previousVersion: null,
    status: 'succeeded',
    deployedAt: now,
    deployedBy: null,
    commit: null,
    url: null,
    description: null,
    externalId: null,
    ...spec,
  };
}

const vars = (service = 'payment-service', labels: Record<string, string> = {}): TemplateVars => ({
  labels,
  annotations: {},
  incident: { service, id: '1' },
  service: {},
});

describe('recent_deploys collector', () => {
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/ai_sre_test_deploys_${randomBytes(5).toString('hex')}`;
  let db: pg.Pool;

  const ctx = (overrides: Partial<CollectContext> = {}): CollectContext => ({
    signal: new AbortController().signal,
    timeoutMs: 5_000,
    targets: Targets.parse({}),
    db,
    incident: { id: 1, service: 'payment-service', openedAt: now },
    now,
    ...overrides,
  });
  /** parse as the runbook loader does, render with the incident's values, collect */
  const run = (config: Record<string, unknown>, context = ctx(), templateVars = vars()) =>
    recentDeploysCollector.collect(
      recentDeploysCollector.render(RecentDeploysConfig.parse(config), templateVars),
      context,
    );

  before(async () => {
    await ensureDatabase(databaseUrl);
    await runMigrations(databaseUrl);
    db = new pg.Pool({ connectionString: databaseUrl, max: 4 });
    db.on('error', () => {});
    const json = '{}';
    await recordDeployEvents(db, json, [
      buildDeploy({ service: 'payment-service', version: '2.3.0', deployedAt: minutesAgo(180) }),
      buildDeploy({ service: 'payment-service', version: '2.4.0', deployedAt: minutesAgo(50) }),
      buildDeploy({
        service: 'payment-service',
        version: '2.4.1',
        previousVersion: '2.4.0',
        deployedAt: minutesAgo(7),
        deployedBy: 'alice',
        commit: 'a1b2c3d',
        url: 'https://ci.example/deploys/981',
      }),
      buildDeploy({
        service: 'payment-service',
        version: '2.4.2',
        status: 'failed',
        deployedAt: minutesAgo(3),
      }),
      buildDeploy({
        service: 'payment-service',
        environment: 'staging',
        version: '2.5.0-rc1',
        deployedAt: minutesAgo(1),
        deployedBy: 'bob',
      }),
      buildDeploy({ service: 'checkout', version: '9.0.0', deployedAt: minutesAgo(2) }),
      buildDeploy({ service: 'broken', version: '1.1.0', status: 'failed', deployedAt: minutesAgo(14) }),
      buildDeploy({ service: 'flaky', version: 'build-40', deployedAt: minutesAgo(60) }),
      buildDeploy({ service: 'flaky', version: 'build-41', status: 'failed', deployedAt: minutesAgo(10) }),
      buildDeploy({ service: 'flaky', version: 'build-42', status: 'started', deployedAt: minutesAgo(5) }),
    ]);
  });
  after(async () => {
    await db?.end();
    await dropDatabase(databaseUrl);
  });

  test('config: defaults, bounds, strictness', () => {
    assert.deepEqual(RecentDeploysConfig.parse({}), {
      service: '{{incident.service}}',
      window: '2h',
      limit: 10,
    });
    assert.equal(RecentDeploysConfig.safeParse({ limit: 51 }).success, false);
    assert.equal(RecentDeploysConfig.safeParse({ window: '2 hours' }).success, false);
    assert.equal(RecentDeploysConfig.safeParse({ window: '31d' }).success, false);
    assert.equal(RecentDeploysConfig.safeParse({ window: '0m' }).success, false);
    assert.equal(RecentDeploysConfig.safeParse({ window: '1h30m' }).success, true);
    const unknown = RecentDeploysConfig.safeParse({ services: 'x' });
    assert.equal(unknown.success, false);
    assert.equal(recentDeploysCollector.valueType, 'dyn');
    assert.equal(recentDeploysCollector.type, 'recent_deploys');
  });

  test('production only: minutes since the newest successful deploy, with who and what it replaced', async () => {
    const out = await run({ environment: 'production' });
    assert.equal(out.value, 7);
    assert.equal(
      out.summary,
      'payment-service v2.4.1 deployed 7 min ago by alice (prev v2.4.0); 3 deploys in the last 2 h, 1 failed or rolled back',
    );
    assert.equal(out.result.count, 3);
    assert.equal(out.result.minutesSinceLatest, 7);
    assert.deepEqual(out.result.latest, {
      service: 'payment-service',
      environment: 'production',
      version: '2.4.1',
      previousVersion: '2.4.0',
      status: 'succeeded',
      deployedAt: minutesAgo(7).toISOString(),
      deployedBy: 'alice',
      commit: 'a1b2c3d',
      url: 'https://ci.example/deploys/981',
      minutesAgo: 7,
    });
    const deploys = out.result.deploys as { version: string; status: string; minutesAgo: number }[];
    assert.deepEqual(
      deploys.map((d) => [d.version, d.status, d.minutesAgo]),
      [
        ['2.4.2', 'failed', 3],
        ['2.4.1', 'succeeded', 7],
        ['2.4.0', 'succeeded', 50],
      ],
      'newest first; the 3 h old deploy is outside the 2 h window',
    );
  });

  test('every environment by default: a staging deploy is the newest', async () => {
    const out = await run({});
    assert.equal(out.value, 1);
    assert.equal(out.result.count, 4);
    assert.match(
      out.summary,
      /^payment-service v2\.5\.0-rc1 deployed to staging 1 min ago by bob; 4 deploys/,
    );
  });

  test('the window and the limit bound what is listed', async () => {
    const narrow = await run({ environment: 'production', window: '30m' });
    assert.equal(narrow.result.count, 2);
    assert.equal(narrow.value, 7);
    const one = await run({ environment: 'production', limit: 1 });
    assert.equal(one.result.count, 1);
    assert.equal((one.result.latest as { version: string }).version, '2.4.1');
    assert.equal(one.value, 7, 'a newer failed deploy filling the list does not hide the newest success');
  });

  test('a list full of failures still finds the older success', async () => {
    const out = await run({ limit: 2 }, ctx(), vars('flaky'));
    assert.deepEqual(
      (out.result.deploys as { version: string }[]).map((d) => d.version),
      ['build-42', 'build-41'],
    );
    assert.equal(out.value, 60);
    assert.match(out.summary, /^flaky build-40 deployed 60 min ago; 2\+ deploys in the last 2 h, 1 failed/);
  });

  test('only failed deploys: null value, the newest failure in the summary', async () => {
    const out = await run({}, ctx(), vars('broken'));
    assert.equal(out.value, null);
    assert.equal(out.result.latest, null);
    assert.equal(out.result.minutesSinceLatest, null);
    assert.equal(out.result.count, 1);
    assert.equal(
      out.summary,
      'no successful deploy of broken in the last 2 h (1 deploy); newest v1.1.0 failed 14 min ago',
    );
  });

  test('no deploys: null value and a plain summary', async () => {
    const out = await run({ window: '90m' }, ctx(), vars('quiet-service'));
    assert.equal(out.value, null);
    assert.deepEqual(out.result, { deploys: [], count: 0, latest: null, minutesSinceLatest: null });
    assert.equal(out.summary, 'no deploys of quiet-service in the last 90 min');
  });

  test('render: hostile label values are bind parameters, matched literally; NUL and missing values refused', async () => {
    const hostile = "payment-service' OR '1'='1'; DROP TABLE deploy_events; --";
    const config = RecentDeploysConfig.parse({
      service: '{{labels.service}}',
      environment: '{{labels.env}}',
    });
    const rendered = recentDeploysCollector.render(
      config,
      vars('x', { service: hostile, env: "production' --" }),
    );
    assert.equal(rendered.service, hostile, 'no escaping: the value is passed verbatim as a bind parameter');
    assert.equal(rendered.environment, "production' --");
    const out = await recentDeploysCollector.collect(rendered, ctx());
    assert.equal(out.result.count, 0);
    assert.equal(out.value, null);
    const stored = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM deploy_events');
    assert.equal(stored.rows[0]?.n, 10, 'the table is intact');

    assert.throws(
      () => recentDeploysCollector.render(config, vars('x', { service: 'a\u0000b', env: 'production' })),
      (err: unknown) => err instanceof TemplateError && /NUL/.test(err.message),
    );
    assert.throws(
      () => recentDeploysCollector.render(config, vars('x', {})),
      (err: unknown) => err instanceof TemplateError && /labels\.service/.test(err.message),
    );
    const byDefault = recentDeploysCollector.render(RecentDeploysConfig.parse({}), vars('checkout'));
    assert.equal(byDefault.service, 'checkout');
  });

  test('a hanging database: rejects with "timed out" within the step timeout', async () => {
    const locker = new pg.Client({ connectionString: databaseUrl });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE deploy_events IN ACCESS EXCLUSIVE MODE');
      const controller = new AbortController();
      const timeoutMs = 300;
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      const started = Date.now();
      await assert.rejects(
        run({}, ctx({ signal: controller.signal, timeoutMs })),
        /timed out after 300 ms reading deploys of payment-service/,
      );
      clearTimeout(timer);
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 1_000, `rejected after ${elapsed} ms`);

      const aborted = new AbortController();
      aborted.abort();
      await assert.rejects(run({}, ctx({ signal: aborted.signal })), /timed out/);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
  });

  test('the query bound holds even when the signal never aborts', async () => {
    const locker = new pg.Client({ connectionString: databaseUrl });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE deploy_events IN ACCESS EXCLUSIVE MODE');
      const started = Date.now();
      await assert.rejects(run({}, ctx({ timeoutMs: 300 })), /timed out after 300 ms/);
      assert.ok(Date.now() - started < 1_000);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
  });

  test('a database that cannot be read: a one-line error naming what failed', async () => {
    const missing = new pg.Pool({
      connectionString: `${databaseUrl}_missing`,
      max: 1,
      connectionTimeoutMillis: 2_000,
    });
    missing.on('error', () => {});
    try {
      await assert.rejects(
        run({}, ctx({ db: missing })),
        /^Error: could not read deploys of payment-service from the bot's database: database ".*_missing" does not exist$/,
      );
    } finally {
      await missing.end();
    }
  });
});
