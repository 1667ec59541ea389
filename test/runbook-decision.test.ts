import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TemplateVars } from '../src/diagnostics/templating.js';
import { decide } from '../src/runbooks/decide.js';
import { errorFinding, type Finding, interpretOutput } from '../src/runbooks/interpret.js';
import type { LoadedRunbook } from '../src/runbooks/loader.js';
import { createCatalog, matchRunbook } from '../src/runbooks/matcher.js';
import { Runbook, type RunbookInput } from '../src/runbooks/runbook.schema.js';

const vars: TemplateVars = {
  labels: { service: 'payment-service', env: 'prod' },
  annotations: {},
  incident: { id: '7', service: 'payment-service' },
  service: {},
};

function runbook(extra: Partial<RunbookInput> = {}): Runbook {
  return Runbook.parse({
    id: 'pool',
    name: 'Pool exhausted',
    diagnostics: [
      {
        id: 'pool',
        type: 'database_query',
        interpret: { critical: 'value >= 90.0', warning: 'value >= 70.0' },
      },
      { id: 'idle', type: 'database_query' },
      { id: 'deploys', type: 'recent_deploys' },
    ],
    decision: [
      {
        id: 'idle_hog',
        description: 'Idle connections are holding the pool',
        likelihood: 1,
        when: "diagnostics.pool.status == 'critical' && diagnostics.idle.value > 20",
        remediate: ['kill_idle', 'raise_pool'],
      },
      {
        id: 'bad_deploy',
        description: 'A deploy leaks connections',
        likelihood: 2,
        when: "diagnostics.pool.status == 'critical' && diagnostics.deploys.value < 30.0",
        remediate: ['rollback'],
      },
    ],
    remediations: [
      { id: 'kill_idle', action: 'terminate_connections', description: 'Kill idle connections' },
      { id: 'raise_pool', action: 'scale', description: 'Raise the pool', requiresApproval: true },
      { id: 'rollback', action: 'rollback', description: 'Roll back the deploy', requiresApproval: true },
    ],
    escalation: { team: 'dba', reason: 'database' },
    ...extra,
  });
}

const finding = (
  status: Finding['status'],
  value: Finding['value'],
  summary = `value ${value}`,
): Finding => ({
  status,
  value,
  result: {},
  summary,
  error: null,
});

describe('decision tree over recorded results', () => {
  test('the first confirmed hypothesis (by likelihood) wins, with its plan and plain-words text', () => {
    const d = decide(
      runbook(),
      {
        pool: finding('critical', 95, 'pool 95% of max'),
        idle: finding('healthy', 42),
        deploys: finding('healthy', 5),
      },
      vars,
    );
    assert.equal(d.outcome, 'remediate');
    assert.equal(d.hypothesis?.id, 'idle_hog');
    assert.deepEqual(
      d.plan.map((s) => [s.id, s.action, s.requiresApproval]),
      [
        ['kill_idle', 'terminate_connections', false],
        ['raise_pool', 'scale', true],
      ],
    );
    assert.equal(
      d.text,
      'Idle connections are holding the pool (pool 95 critical) → kill idle connections, then raise the pool',
    );
    assert.deepEqual(
      d.tried.map((t) => [t.id, t.confirmed]),
      [
        ['idle_hog', true],
        ['bad_deploy', true],
      ],
    );
  });

  test('likelihood, not file order, decides which is tried first', () => {
    const rb = runbook();
    rb.decision.reverse();
    const d = decide(
      rb,
      { pool: finding('critical', 95), idle: finding('healthy', 42), deploys: finding('healthy', 5) },
      vars,
    );
    assert.equal(d.hypothesis?.id, 'idle_hog');
  });

  test('a tie in likelihood between hypotheses calling for different actions is ambiguous → escalate', () => {
    const rb = runbook();
    for (const h of rb.decision) h.likelihood = 1;
    const d = decide(
      rb,
      { pool: finding('critical', 95), idle: finding('healthy', 42), deploys: finding('healthy', 5) },
      vars,
    );
    assert.equal(d.outcome, 'escalate');
    assert.deepEqual(d.ambiguousWith, ['bad_deploy']);
    assert.equal(d.escalation?.reason, 'ambiguous');
    assert.deepEqual(d.plan, []);
  });

  test('a tie where both call for the same action is not ambiguous: file order wins', () => {
    const rb = runbook();
    for (const h of rb.decision) {
      h.likelihood = 1;
      h.remediate = ['kill_idle'];
    }
    const d = decide(
      rb,
      { pool: finding('critical', 95), idle: finding('healthy', 42), deploys: finding('healthy', 5) },
      vars,
    );
    assert.equal(d.outcome, 'remediate');
    assert.equal(d.hypothesis?.id, 'idle_hog');
  });

  test('nothing confirmed → escalate to the runbook escalation target, with the unhealthy evidence', () => {
    const d = decide(
      runbook(),
      { pool: finding('warning', 75), idle: finding('healthy', 3), deploys: finding('healthy', 300) },
      vars,
    );
    assert.equal(d.outcome, 'escalate');
    assert.equal(d.hypothesis, null);
    assert.equal(d.escalation?.team, 'dba');
    assert.match(d.text, /No hypothesis confirmed → escalate to dba/);
    assert.deepEqual(
      d.evidence.map((e) => e.diagnostic),
      ['pool'],
    );
  });

  test('an errored diagnostic never blocks: a condition over it is not confirmed, the next one can win', () => {
    const d = decide(
      runbook(),
      {
        pool: finding('critical', 95),
        idle: errorFinding('timed out after 5000 ms'),
        deploys: finding('healthy', 5),
      },
      vars,
    );
    // idle.value is null: `null > 20` cannot be evaluated, so idle_hog is unconfirmed (not an error of the decision)
    assert.equal(d.tried[0]?.confirmed, null);
    assert.match(d.tried[0]?.error ?? '', /overload|null/);
    assert.equal(d.hypothesis?.id, 'bad_deploy');
    assert.deepEqual(
      d.plan.map((s) => s.id),
      ['rollback'],
    );
  });

  test('all diagnostics errored or missing → escalate, naming them as inconclusive', () => {
    const d = decide(runbook(), { pool: errorFinding('connection refused') }, vars);
    assert.equal(d.outcome, 'escalate');
    assert.match(d.escalation?.why ?? '', /inconclusive: pool, idle, deploys did not report/);
  });

  test('a hypothesis that escalates (unexpected process → security) carries its target', () => {
    const rb = runbook({
      decision: [
        {
          id: 'unexpected',
          description: 'An unexpected process is burning CPU',
          likelihood: 1,
          when: "diagnostics.idle.status == 'critical'",
          escalate: { reason: 'security', team: 'security' },
        },
      ],
    });
    const d = decide(
      rb,
      { pool: finding('healthy', 1), idle: finding('critical', 1), deploys: finding('healthy', 1) },
      vars,
    );
    assert.equal(d.outcome, 'escalate');
    assert.equal(d.escalation?.reason, 'security');
    assert.equal(d.escalation?.team, 'security');
    assert.match(d.text, /→ escalate to security \(security\)/);
  });
});

describe('interpret rules', () => {
  const step = runbook().diagnostics[0] as Runbook['diagnostics'][number];
  test('critical is tested first, then warning, else healthy', () => {
    assert.equal(
      interpretOutput(step, 'dyn', { value: 95, result: {}, summary: '' }, vars).status,
      'critical',
    );
    assert.equal(
      interpretOutput(step, 'dyn', { value: 75, result: {}, summary: '' }, vars).status,
      'warning',
    );
    assert.equal(interpretOutput(step, 'dyn', { value: 5, result: {}, summary: '' }, vars).status, 'healthy');
  });

  test('a rule that cannot be evaluated (no data) is an error naming the rule, not a guess', () => {
    const f = interpretOutput(step, 'dyn', { value: null, result: {}, summary: 'no rows' }, vars);
    assert.equal(f.status, 'error');
    assert.match(f.error ?? '', /^no data \(value is null\); interpret\.critical: /);
  });

  test('`value` can be recomputed from the result', () => {
    const s = {
      ...step,
      interpret: {
        ...step.interpret,
        value: 'double(result.rows[0].used) / double(result.rows[0].max) * 100.0',
      },
    };
    const f = interpretOutput(
      s,
      'dyn',
      { value: 1, result: { rows: [{ used: 96, max: 100 }] }, summary: '' },
      vars,
    );
    assert.equal(f.value, 96);
    assert.equal(f.status, 'critical');
    assert.match(f.summary, /^96 /);
  });
});

describe('matching an incident to its runbook', () => {
  const loaded = (input: RunbookInput): LoadedRunbook => ({
    runbook: Runbook.parse(input),
    file: `${input.id}.yml`,
    hash: 'h',
  });
  const diag = [{ id: 'x', type: 'http_check' }];
  const catalog = createCatalog([
    loaded({ id: 'generic-cpu', name: 'CPU', triggers: [{ alert: '~High.*CPU.*' }], diagnostics: diag }),
    loaded({
      id: 'payment-cpu',
      name: 'Payment CPU',
      service: 'payment-service',
      triggers: [{ alert: 'HighCPUUsage' }],
      diagnostics: diag,
    }),
    loaded({
      id: 'pool',
      name: 'Pool',
      triggers: [{ alert: 'PoolExhausted', labels: { env: '~prod|staging' } }],
      diagnostics: diag,
    }),
    loaded({
      id: 'disk',
      name: 'Disk',
      triggers: [{ metric: 'disk_used_percent', above: 90 }],
      diagnostics: diag,
    }),
    loaded({ id: 'triage', name: 'Triage', default: true, diagnostics: diag }),
  ]);
  const alert = (
    name: string,
    labels: Record<string, string> = {},
    annotations: Record<string, string> = {},
  ) => ({
    name,
    status: 'firing' as const,
    labels,
    annotations,
  });

  test('a service-specific runbook beats a wildcard one', () => {
    assert.equal(
      matchRunbook(catalog, { service: 'payment-service', labels: {} }, [alert('HighCPUUsage')])?.loaded
        .runbook.id,
      'payment-cpu',
    );
    assert.equal(
      matchRunbook(catalog, { service: 'api', labels: {} }, [alert('HighCPUUsage')])?.loaded.runbook.id,
      'generic-cpu',
    );
  });

  test('label matchers (exact and ~regex) must all match', () => {
    assert.equal(
      matchRunbook(catalog, { service: 'db', labels: {} }, [alert('PoolExhausted', { env: 'prod' })])?.loaded
        .runbook.id,
      'pool',
    );
    const other = matchRunbook(catalog, { service: 'db', labels: {} }, [
      alert('PoolExhausted', { env: 'dev' }),
    ]);
    assert.equal(other?.matchedBy, 'default');
  });

  test('a metric threshold trigger compares the alert value', () => {
    const hot = matchRunbook(catalog, { service: 'node', labels: {} }, [
      alert('Anomaly', { metric: 'disk_used_percent' }, { value: '93' }),
    ]);
    assert.equal(hot?.loaded.runbook.id, 'disk');
    const cool = matchRunbook(catalog, { service: 'node', labels: {} }, [
      alert('Anomaly', { metric: 'disk_used_percent' }, { value: '50' }),
    ]);
    assert.equal(cool?.matchedBy, 'default');
  });

  test('an alert naming its runbook (runbook_id) wins; no match falls back to the default playbook', () => {
    const named = matchRunbook(catalog, { service: 'x', labels: {} }, [
      alert('Whatever', {}, { runbook_id: 'disk' }),
    ]);
    assert.equal(named?.loaded.runbook.id, 'disk');
    assert.equal(named?.matchedBy, 'label');
    const none = matchRunbook(catalog, { service: 'x', labels: {} }, [alert('Unknown')]);
    assert.equal(none?.loaded.runbook.id, 'triage');
    assert.equal(none?.matchedBy, 'default');
  });
});
