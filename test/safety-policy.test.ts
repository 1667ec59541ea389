import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { COLLECTORS } from '../src/diagnostics/registry.js';
import { Targets } from '../src/diagnostics/targets.js';
import { EXECUTORS } from '../src/remediation/registry.js';
import { formatProblem, parseRunbook } from '../src/runbooks/loader.js';
import { ACTION_CATALOGUE, catalogueTier, strictest } from '../src/safety/action-catalog.js';
import { createLimiter } from '../src/safety/limits.js';
import { PolicyError, parsePolicy, resolveStepPolicy } from '../src/safety/policy.js';
import { deleteKeys } from './helpers/test-app.js';

const targets = Targets.parse({
  databases: { main: { url: 'postgres://postgres@127.0.0.1:5432/postgres' } },
  remediation: {
    databases: { main: { url: 'postgres://postgres@127.0.0.1:5432/postgres' } },
    redis: { cache: { url: 'redis://127.0.0.1:6379' } },
    scripts: { allow: ['logrotate', 'rm', 'psql', 'redis-cli', 'dd', 'kubectl', 'bash'] },
    http: { allow: ['http://127.0.0.1:9081/admin/'] },
    platforms: {
      checkout: {
        http: {
          scaleUrl: 'http://127.0.0.1:9081/admin/scale',
          statusUrl: 'http://127.0.0.1:9081/admin/status',
        },
      },
    },
  },
});

/** A runbook with one remediation step (the YAML of its `action`/`config`), used by one hypothesis. */
function runbookWith(step: string): string {
  return [
    'id: shapes',
    'name: Shapes',
    'diagnostics:',
    '  - id: health',
    '    type: http_check',
    '    config: { urls: ["http://127.0.0.1:9/health"] }',
    'decision:',
    '  - id: broken',
    '    description: Broken',
    '    likelihood: 1',
    "    when: diagnostics.health.status == 'critical'",
    '    remediate: [fix]',
    'remediations:',
    '  - id: fix',
    '    description: Fix it',
    ...step.split('\n').map((l) => `    ${l}`),
  ].join('\n');
}

function problemsOf(step: string): string[] {
  const { problems } = parseRunbook(runbookWith(step), 'shapes.yml', {
    collectors: COLLECTORS,
    targets,
    executors: EXECUTORS,
  });
  return problems.map(formatProblem);
}

describe('safety: the action catalogue, the policy and forbidden shapes', () => {
  test('every catalogue action has exactly one executor, and nothing else has one', () => {
    assert.deepEqual([...EXECUTORS.keys()].sort(), Object.keys(ACTION_CATALOGUE).sort());
    assert.equal(catalogueTier('drop_database'), 'forbidden');
    assert.equal(catalogueTier('anything_else'), 'forbidden');
    assert.equal(strictest('safe', 'guarded', undefined), 'guarded');
    assert.equal(strictest('guarded', 'forbidden', 'safe'), 'forbidden');
  });

  const FORBIDDEN_SHAPES: [string, string, RegExp][] = [
    [
      'an action outside the catalogue',
      'action: drop_database',
      /drop_database is forbidden: schema changes/,
    ],
    [
      'free SQL as an action',
      'action: run_sql\nconfig: { sql: "DROP TABLE users" }',
      /run_sql is forbidden: free SQL/,
    ],
    [
      'SQL DELETE smuggled into a Postgres action',
      'action: terminate_connections\nconfig: { target: main, state: idle, idleLongerThan: 5m, limit: 5, sql: "DELETE FROM users" }',
      /free SQL is not allowed/,
    ],
    [
      'SQL TRUNCATE smuggled into cancel_query',
      'action: cancel_query\nconfig: { target: main, runningLongerThan: 5m, limit: 5, query: "TRUNCATE users" }',
      /free SQL is not allowed/,
    ],
    ['rm -rf', 'action: run_script\nconfig: { argv: [rm, -rf, /] }', /rm/],
    ['psql DROP TABLE', 'action: run_script\nconfig: { argv: [psql, -c, "DROP TABLE users"] }', /psql|DROP/i],
    [
      'redis-cli FLUSHALL',
      'action: run_script\nconfig: { argv: [redis-cli, FLUSHALL] }',
      /redis-cli|FLUSHALL/,
    ],
    ['dd over a disk', 'action: run_script\nconfig: { argv: [dd, "if=/dev/zero", "of=/dev/sda"] }', /dd/],
    ['a shell', 'action: run_script\nconfig: { argv: [bash, -c, "rm -rf /"] }', /shell/],
    ['kubectl delete', 'action: run_script\nconfig: { argv: [kubectl, delete, pod, x] }', /delete/],
    [
      'FLUSHALL as a cache flush',
      'action: flush_cache\nconfig: { target: cache, command: FLUSHALL, limit: 5 }',
      /raw Redis commands are not allowed/,
    ],
    [
      'a flush of every key',
      'action: flush_cache\nconfig: { target: cache, pattern: "*", limit: 5 }',
      /pattern/,
    ],
    ['scale to 1000', 'action: scale\nconfig: { service: checkout, to: 1000 }', /unbounded/],
    ['a scale step of 1000', 'action: scale\nconfig: { service: checkout, by: 1000, max: 1000 }', /by|max/],
    [
      'terminating active sessions',
      'action: terminate_connections\nconfig: { target: main, state: active, idleLongerThan: 5m, limit: 5 }',
      /cancel_query/,
    ],
    [
      'an HTTP DELETE',
      'action: http_request\nconfig: { method: DELETE, url: "http://127.0.0.1:9081/admin/x" }',
      /DELETE is forbidden/,
    ],
    [
      'a URL outside the allow list',
      'action: http_request\nconfig: { method: POST, url: "http://10.0.0.1/admin/drop" }',
      /allow/,
    ],
  ];
  for (const [what, step, message] of FORBIDDEN_SHAPES) {
    test(`a runbook asking for ${what} does not load`, () => {
      const problems = problemsOf(step);
      assert.ok(problems.length > 0, `${what} must be refused`);
      assert.ok(
        problems.some((p) => message.test(p)),
        `a problem matching ${message}: ${problems.join(' | ')}`,
      );
      assert.ok(
        problems.every((p) => p.startsWith('shapes.yml:')),
        'each names the file and line',
      );
    });
  }

  test('the shipped shapes load: bounded terminate, specific flush, scale by a step', () => {
    assert.deepEqual(
      problemsOf(
        'action: terminate_connections\nconfig: { target: main, state: idle, idleLongerThan: 10m, limit: 50 }',
      ),
      [],
    );
    assert.deepEqual(
      problemsOf(
        'action: flush_cache\nconfig: { target: cache, pattern: "session:{{labels.tenant}}:*", limit: 1000 }',
      ),
      [],
    );
    assert.deepEqual(problemsOf('action: scale\nconfig: { service: checkout, by: 2, max: 12 }'), []);
  });

  test('the policy may tighten tiers but never loosen them; each problem names the field', () => {
    assert.throws(
      () => parsePolicy('tiers: { rollback: safe }', 'safety.yml'),
      (err: Error) => {
        assert.ok(err instanceof PolicyError);
        assert.match(err.message, /safety\.yml: tiers\.rollback: safe would loosen the catalogue's guarded/);
        return true;
      },
    );
    assert.throws(
      () => parsePolicy('services: { web: { tiers: { cancel_query: safe } } }', 'safety.yml'),
      /services\.web\.tiers\.cancel_query: safe would loosen/,
    );
    assert.throws(
      () => parsePolicy('tiers: { drop_table: guarded }', 'safety.yml'),
      /tiers\.drop_table: unknown action/,
    );
    assert.throws(
      () => parsePolicy('approvers: [alice]', 'safety.yml'),
      /approvers\.0: expected a Slack user id/,
    );
    assert.throws(() => parsePolicy('mode: yolo', 'safety.yml'), /mode:/);
    assert.doesNotThrow(() =>
      parsePolicy('tiers: { restart_service: guarded, scale: forbidden }', 'safety.yml'),
    );
  });

  test('a step gets the strictest tier of catalogue, runbook, policy and mode; limits only tighten per scope', () => {
    const policy = parsePolicy(
      [
        'mode: autonomous',
        'approvers: [U0GLOBAL]',
        'tiers: { scale: guarded }',
        'limits: { maxReplicas: 30, restartsPerTarget: 3 }',
        'services:',
        '  web: { mode: supervised, approvers: [U0WEB], limits: { maxReplicas: 50, restartsPerTarget: 1, restartWindow: 30m } }',
        '  quiet: { mode: shadow }',
        'runbooks:',
        '  db: { approvers: [S0DBA], tiers: { terminate_connections: forbidden } }',
      ].join('\n'),
      'safety.yml',
    );
    const of = (action: string, service: string, runbookId = 'other', requiresApproval = false) =>
      resolveStepPolicy(policy, { action, service, runbookId, requiresApproval });
    assert.equal(of('restart_service', 'api').tier, 'safe');
    assert.equal(
      of('restart_service', 'api', 'other', true).tier,
      'guarded',
      'the runbook may ask for approval',
    );
    assert.equal(of('scale', 'api').tier, 'guarded', 'the policy tightened scale');
    assert.equal(of('rollback', 'api').tier, 'guarded', 'the catalogue tier holds');
    assert.equal(of('restart_service', 'web').tier, 'guarded', 'supervised: every action needs approval');
    assert.ok(of('restart_service', 'web').tierSources.includes('supervised mode'));
    assert.equal(of('notify', 'web').tier, 'safe', 'telling people needs no approval');
    assert.equal(of('terminate_connections', 'api', 'db').tier, 'forbidden');
    assert.equal(of('restart_service', 'quiet').mode, 'shadow');
    assert.deepEqual(of('rollback', 'api', 'db').approvers, ['S0DBA'], 'the runbook names the approvers');
    assert.deepEqual(of('rollback', 'web').approvers, ['U0WEB']);
    assert.deepEqual(of('rollback', 'api').approvers, ['U0GLOBAL']);
    assert.equal(
      of('scale', 'api').limits.maxReplicas,
      30,
      'the global level sets the deployment’s own limit',
    );
    assert.equal(of('scale', 'web').limits.maxReplicas, 30, 'a service cannot raise it');
    assert.equal(of('scale', 'web').limits.restartsPerTarget, 1, 'but can lower it');
    assert.equal(of('scale', 'web').limits.restartWindowMs, 30 * 60_000, 'a longer window is stricter');
  });
});

describe('safety: hard limits in Redis, reserved atomically', () => {
  const prefix = `ai-sre-test-limits-${randomBytes(4).toString('hex')}`;
  const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  const limiter = createLimiter(redis, prefix);
  after(async () => {
    await deleteKeys(`${prefix}:*`);
    redis.disconnect();
  });
  const base = {
    restartsPerTarget: 2,
    restartWindowMs: 600_000,
    actionsPerIncident: 100,
    inFlight: 100,
    inFlightTtlMs: 60_000,
  };

  test('ten workers racing to restart one target: exactly two win, the rest are refused', async () => {
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        limiter.reserve({
          ...base,
          stepKey: `race-${i}`,
          incidentId: 1000 + i,
          restartTarget: 'k8s:prod/web',
        }),
      ),
    );
    assert.equal(outcomes.filter((o) => o.ok).length, 2);
    const refused = outcomes.find((o) => !o.ok);
    assert.ok(refused && !refused.ok && refused.limit === 'restarts_per_target');
    assert.match(refused.message, /k8s:prod\/web was already restarted 2 times in the last 10 minutes/);
    // a winner asking again (its job re-delivered) keeps its reservation instead of counting twice
    const winner = outcomes.findIndex((o) => o.ok);
    const retry = await limiter.reserve({
      ...base,
      stepKey: `race-${winner}`,
      incidentId: 1000 + winner,
      restartTarget: 'k8s:prod/web',
    });
    assert.equal(retry.ok, true);
  });

  test('actions per incident and the fleet in-flight cap (which asks to wait, not to fail)', async () => {
    const perIncident = { ...base, actionsPerIncident: 2, incidentId: 7 };
    assert.equal((await limiter.reserve({ ...perIncident, stepKey: 'a1' })).ok, true);
    assert.equal((await limiter.reserve({ ...perIncident, stepKey: 'a2' })).ok, true);
    const third = await limiter.reserve({ ...perIncident, stepKey: 'a3' });
    assert.ok(!third.ok && third.limit === 'actions_per_incident');

    const fleet = createLimiter(redis, `${prefix}:fleet`);
    const one = { ...base, inFlight: 1 };
    assert.equal((await fleet.reserve({ ...one, stepKey: 'f1', incidentId: 1 })).ok, true);
    const waiting = await fleet.reserve({ ...one, stepKey: 'f2', incidentId: 2 });
    assert.ok(!waiting.ok && waiting.limit === 'in_flight' && waiting.retryInMs > 0);
    await fleet.release('f1');
    assert.equal((await fleet.reserve({ ...one, stepKey: 'f2', incidentId: 2 })).ok, true);
  });
});
