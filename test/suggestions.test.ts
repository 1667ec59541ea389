import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { KnownBlock } from '@slack/types';
import type pg from 'pg';
import { parse as parseYaml } from 'yaml';
import { COLLECTORS } from '../src/diagnostics/registry.js';
import { Targets } from '../src/diagnostics/targets.js';
import { openIncident, transitionIncident } from '../src/incidents/lifecycle.js';
import { computeSuggestions, type Suggestion } from '../src/postmortem/suggestions.js';
import { EXECUTORS } from '../src/remediation/registry.js';
import { appendEvent } from '../src/runbooks/execution-repo.js';
import { formatProblem, parseRunbook } from '../src/runbooks/loader.js';
import { Runbook } from '../src/runbooks/runbook.schema.js';
import { MAX_TOTAL_BLOCK_TEXT, measureText, SLACK_LIMITS } from '../src/slack/blocks/limits.js';
import { buildSuggestionsMessage } from '../src/slack/blocks/suggestions.js';
import { createDb } from '../src/store/db.js';
import { ensureDatabase, runMigrations } from '../src/store/migrate.js';
import { dropDatabase } from './helpers/test-app.js';

/** the runbook most of the seeded history ran: two diagnostics decide, one never varies, one times out */
const POOL = Runbook.parse({
  id: 'db-pool',
  name: 'DB pool exhausted',
  triggers: [{ alert: 'PgPoolExhausted' }],
  diagnostics: [
    { id: 'connections', type: 'database_query', config: { target: 'main', sql: 'SELECT 1' } },
    { id: 'idle', type: 'database_query', config: { target: 'main', sql: 'SELECT 1' } },
    { id: 'uptime', type: 'prometheus_query', config: { query: 'up' } },
    { id: 'slow_check', type: 'prometheus_query', config: { query: 'sum(rate(x[5m]))' } },
  ],
  decision: [
    {
      id: 'idle_sessions',
      description: 'Idle sessions hold the pool',
      likelihood: 1,
      when: 'diagnostics.connections.status == "critical" && diagnostics.idle.status == "critical"',
      remediate: ['terminate_idle', 'cancel_long'],
    },
  ],
  remediations: [
    {
      id: 'terminate_idle',
      action: 'terminate_connections',
      description: 'Terminate idle sessions',
      config: { target: 'main', state: 'idle', idleLongerThan: '10m', limit: 50 },
      verify: { diagnostics: ['connections'], expect: 'diagnostics.connections.status == "healthy"' },
    },
    {
      id: 'cancel_long',
      action: 'cancel_query',
      description: 'Cancel long queries',
      config: { target: 'main', runningLongerThan: '5m', limit: 5 },
    },
  ],
});

/** what default triage ran when nothing matched */
const TRIAGE = Runbook.parse({
  id: 'default-triage',
  name: 'Default triage',
  default: true,
  triggers: [{ manual: true }],
  diagnostics: [
    {
      id: 'health',
      type: 'http_check',
      config: { urls: ['{{service.health_url}}'], maxLatencyMs: 2000 },
      interpret: { critical: 'value >= 1.0' },
    },
    {
      id: 'error_rate',
      type: 'prometheus_query',
      unit: '%',
      config: { query: 'sum(rate(http_requests_total{code=~"5..",service="{{incident.service}}"}[5m]))' },
      interpret: { critical: 'value > 5.0' },
    },
  ],
});

/** the runbook people ran by hand (`/incident run checkout-fixes`) */
const HAND = Runbook.parse({
  id: 'checkout-fixes',
  name: 'Checkout fixes',
  triggers: [{ manual: true }],
  diagnostics: [{ id: 'error_rate', type: 'prometheus_query', config: { query: 'up' } }],
  decision: [
    {
      id: 'stuck',
      description: 'Stuck workers',
      likelihood: 1,
      when: 'true',
      remediate: ['restart_workers', 'flush_sessions'],
    },
  ],
  remediations: [
    {
      id: 'restart_workers',
      action: 'restart_service',
      description: 'Rolling restart of the checkout workers',
      config: { service: '{{incident.service}}' },
      verify: { diagnostics: ['error_rate'], expect: 'diagnostics.error_rate.status == "healthy"' },
    },
    {
      id: 'flush_sessions',
      action: 'flush_cache',
      description: 'Flush the checkout session keys',
      config: { target: 'cache', pattern: 'session:checkout:*', limit: 1000 },
      requiresApproval: true,
    },
  ],
});

const JAN = (day: number, minute = 0) => new Date(Date.UTC(2025, 0, day, 9, minute));

describe('runbook suggestions from history', () => {
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/ai_sre_test_suggest_${randomBytes(5).toString('hex')}`;
  let db: pg.Pool;
  const seeded = {
    pool: [] as number[],
    stuck: [] as number[],
    stuckSelfResolved: 0,
    noisy: [] as number[],
    noisyLong: 0,
    noisyTouched: 0,
  };

  before(async () => {
    await ensureDatabase(databaseUrl);
    await runMigrations(databaseUrl);
    // the app's pool: its int8 parsing is what production sees
    db = createDb(databaseUrl, 4);
    await seedHistory();
  });

  after(async () => {
    await db?.end();
    await dropDatabase(databaseUrl);
  });

  async function seedIncident(spec: { service: string; alert: string; openedAt: Date }): Promise<number> {
    const { incident } = await openIncident(
      db,
      {
        service: spec.service,
        title: `${spec.alert} on ${spec.service}`,
        summary: '',
        severity: 'critical',
        source: 'alertmanager',
        labels: { alertname: spec.alert, service: spec.service },
        links: [],
        firstSignalAt: spec.openedAt,
      },
      'alertmanager',
    );
    await db.query(
      `INSERT INTO incident_alerts (incident_id, fingerprint, source, name, status, severity, labels, annotations, starts_at)
       VALUES ($1, $2, 'alertmanager', $3, 'firing', 'critical', $4, '{}', $5)`,
      [
        incident.id,
        randomBytes(8).toString('hex'),
        spec.alert,
        JSON.stringify({ alertname: spec.alert, service: spec.service }),
        spec.openedAt,
      ],
    );
    await db.query('UPDATE incidents SET opened_at = $2 WHERE id = $1', [incident.id, spec.openedAt]);
    return incident.id;
  }

  async function resolveAfter(id: number, actor: string, minutes: number, openedAt: Date, alert?: string) {
    if (alert) await appendEvent(db, id, 'alertmanager', 'alert.resolved', true, { name: alert });
    await transitionIncident(db, id, 'resolved', {
      actor,
      reason: alert ? 'all alerts resolved' : 'fixed',
    });
    await db.query('UPDATE incidents SET resolved_at = $2 WHERE id = $1', [
      id,
      new Date(openedAt.getTime() + minutes * 60_000),
    ]);
  }

  /** a run of `runbook` with its results and decision, as diagnose/decide record them */
  async function seedRun(
    incidentId: number,
    runbook: Runbook,
    spec: {
      matchedBy: 'trigger' | 'default' | 'manual';
      requestedBy?: string;
      results: Record<string, { status: string; error?: string }>;
      winner: string | null;
    },
  ): Promise<number> {
    const requestedBy = spec.requestedBy ?? 'ai-sre';
    const hypothesis = runbook.decision.find((h) => h.id === spec.winner) ?? null;
    const decision = {
      outcome: hypothesis ? 'remediate' : 'escalate',
      hypothesis: hypothesis && {
        id: hypothesis.id,
        description: hypothesis.description,
        likelihood: hypothesis.likelihood,
      },
      tried: [],
      ambiguousWith: [],
      plan: [],
      escalation: null,
      evidence: [],
      text: hypothesis ? hypothesis.description : 'No hypothesis confirmed → escalate',
    };
    const { rows } = await db.query<{ id: number }>(
      `INSERT INTO runbook_executions (incident_id, request_key, runbook_id, runbook_hash, runbook, matched_by,
                                       requested_by, vars, status, decision, decided_at)
       VALUES ($1, $2, $3, 'hash', $4, $5, $6, '{}', 'decided', $7, now()) RETURNING id`,
      [
        incidentId,
        spec.matchedBy === 'manual' ? `manual:${randomBytes(4).toString('hex')}` : 'auto',
        runbook.id,
        JSON.stringify(runbook),
        spec.matchedBy,
        requestedBy,
        JSON.stringify(decision),
      ],
    );
    const executionId = (rows[0] as { id: number }).id;
    await appendEvent(db, incidentId, requestedBy, 'runbook.started', true, {
      executionId,
      runbookId: runbook.id,
      matchedBy: spec.matchedBy,
    });
    let position = 0;
    for (const [diagnosticId, r] of Object.entries(spec.results)) {
      await db.query(
        `INSERT INTO diagnostic_results (execution_id, diagnostic_id, position, type, status, summary, error,
                                         duration_ms, started_at, finished_at)
         VALUES ($1, $2, $3, 'x', $4, $5, $6, 10, now(), now())`,
        [
          executionId,
          diagnosticId,
          position++,
          r.status,
          r.error ?? `${diagnosticId} ${r.status}`,
          r.error ?? null,
        ],
      );
    }
    await appendEvent(db, incidentId, 'ai-sre', 'decision.made', true, {
      executionId,
      runbookId: runbook.id,
      outcome: decision.outcome,
      text: decision.text,
      hypothesis: decision.hypothesis,
      noRunbook: spec.matchedBy === 'default',
    });
    return executionId;
  }

  async function seedStep(
    incidentId: number,
    executionId: number,
    position: number,
    step: { id: string; action: string; status: string; config?: Record<string, unknown> },
  ): Promise<void> {
    await db.query(
      `INSERT INTO remediation_steps (execution_id, incident_id, position, step_id, action, tier, mode, status, config)
       VALUES ($1, $2, $3, $4, $5, 'guarded', 'autonomous', $6, $7)`,
      [
        executionId,
        incidentId,
        position,
        step.id,
        step.action,
        step.status,
        JSON.stringify(step.config ?? {}),
      ],
    );
  }

  async function addNote(incidentId: number, userId: string, note: { cause?: string; fix?: string }) {
    await db.query(
      'INSERT INTO resolution_notes (incident_id, user_id, cause, fix) VALUES ($1, $2, $3, $4)',
      [incidentId, userId, note.cause ?? '', note.fix ?? ''],
    );
  }

  async function seedHistory(): Promise<void> {
    // 1. four db-pool runs: uptime is healthy every time and no condition reads it; slow_check times out in 3 of 4;
    //    terminate_idle fails verification in 3 of 4; cancel_long is rejected twice and expires once in 4 requests
    for (let i = 0; i < 4; i++) {
      const openedAt = JAN(2 + i);
      const id = await seedIncident({ service: 'payments', alert: 'PgPoolExhausted', openedAt });
      seeded.pool.push(id);
      const run = await seedRun(id, POOL, {
        matchedBy: 'trigger',
        results: {
          connections: { status: 'critical' },
          idle: { status: 'critical' },
          uptime: { status: 'healthy' },
          slow_check: i < 3 ? { status: 'error', error: 'timed out after 10000 ms' } : { status: 'healthy' },
        },
        winner: 'idle_sessions',
      });
      await seedStep(id, run, 0, {
        id: 'terminate_idle',
        action: 'terminate_connections',
        status: i < 3 ? 'verification_failed' : 'verified',
      });
      const outcome = ['rejected', 'rejected', 'expired', 'approved'][i] as string;
      await seedStep(id, run, 1, { id: 'cancel_long', action: 'cancel_query', status: outcome });
      await appendEvent(db, id, 'ai-sre', 'approval.requested', true, {
        executionId: run,
        step: 'cancel_long',
        action: 'cancel_query',
      });
      if (outcome === 'expired') {
        await appendEvent(db, id, 'ai-sre', 'approval.expired', true, {
          executionId: run,
          step: 'cancel_long',
        });
      } else {
        await appendEvent(db, id, i === 0 ? 'U0DBA' : 'U0LEAD', `step.${outcome}`, true, {
          executionId: run,
          step: 'cancel_long',
          action: 'cancel_query',
        });
      }
      await resolveAfter(id, 'U0DBA', 40, openedAt);
    }

    // 2. CheckoutQueueStuck on checkout: three incidents no runbook matched, which people fixed by hand
    for (let i = 0; i < 3; i++) {
      const openedAt = JAN(10 + i);
      const id = await seedIncident({ service: 'checkout', alert: 'CheckoutQueueStuck', openedAt });
      seeded.stuck.push(id);
      await seedRun(id, TRIAGE, {
        matchedBy: 'default',
        results: { health: { status: 'healthy' }, error_rate: { status: 'critical' } },
        winner: null,
      });
      if (i < 2) {
        // `/incident run checkout-fixes` by a person: the restart ran; the flush was approved and ran
        const run = await seedRun(id, HAND, {
          matchedBy: 'manual',
          requestedBy: 'U0ANA',
          results: { error_rate: { status: 'critical' } },
          winner: 'stuck',
        });
        await seedStep(id, run, 0, {
          id: 'restart_workers',
          action: 'restart_service',
          status: 'verified',
          config: { service: 'checkout' },
        });
        await seedStep(id, run, 1, {
          id: 'flush_sessions',
          action: 'flush_cache',
          status: 'verified',
          config: { target: 'cache', pattern: 'session:checkout:*', limit: 1000 },
        });
        await appendEvent(db, id, 'U0BO', 'step.approved', true, {
          executionId: run,
          step: 'flush_sessions',
          action: 'flush_cache',
        });
        // an action outside the catalogue never makes it into a draft
        await seedStep(id, run, 2, { id: 'sql_fix', action: 'run_sql', status: 'succeeded' });
      }
      await addNote(id, 'U0ANA', {
        cause: i === 2 ? 'consumer deadlock after broker failover' : 'workers stuck on a poisoned message',
        fix:
          i === 2
            ? 'restarted the workers with password=hunter2 in the env'
            : 'restarted the checkout workers',
      });
      await resolveAfter(id, 'U0ANA', 35, openedAt);
    }
    // … and one that resolved by itself: noise, not a reason for a runbook
    const quick = await seedIncident({ service: 'checkout', alert: 'CheckoutQueueStuck', openedAt: JAN(14) });
    seeded.stuckSelfResolved = quick;
    await seedRun(quick, TRIAGE, {
      matchedBy: 'default',
      results: { health: { status: 'healthy' }, error_rate: { status: 'healthy' } },
      winner: null,
    });
    await resolveAfter(quick, 'alertmanager', 2, JAN(14), 'CheckoutQueueStuck');

    // 3. DiskIoSpike: three resolve by themselves within minutes; one lasted 30 min; in one a person acknowledged
    for (let i = 0; i < 3; i++) {
      const openedAt = JAN(20 + i);
      const id = await seedIncident({ service: 'storage', alert: 'DiskIoSpike', openedAt });
      seeded.noisy.push(id);
      await resolveAfter(id, 'alertmanager', 2 + i, openedAt, 'DiskIoSpike');
    }
    seeded.noisyLong = await seedIncident({ service: 'storage', alert: 'DiskIoSpike', openedAt: JAN(25) });
    await resolveAfter(seeded.noisyLong, 'alertmanager', 30, JAN(25), 'DiskIoSpike');
    seeded.noisyTouched = await seedIncident({ service: 'storage', alert: 'DiskIoSpike', openedAt: JAN(26) });
    await appendEvent(db, seeded.noisyTouched, 'U0OPS', 'page.acknowledged', true, { escalationId: 1 });
    await resolveAfter(seeded.noisyTouched, 'alertmanager', 3, JAN(26), 'DiskIoSpike');

    // 4. before the window: more of the same, which must not count
    for (let i = 0; i < 3; i++) {
      const openedAt = new Date(Date.UTC(2024, 11, 10 + i, 9));
      const id = await seedIncident({ service: 'storage', alert: 'DiskIoSpike', openedAt });
      await resolveAfter(id, 'alertmanager', 1, openedAt, 'DiskIoSpike');
    }

    // 5. March: clean history. Diagnostics vary, steps verify, approvals are granted, runbooks match, people resolve
    for (let i = 0; i < 4; i++) {
      const openedAt = new Date(Date.UTC(2025, 2, 3 + i, 9));
      const id = await seedIncident({ service: 'payments', alert: 'PgPoolExhausted', openedAt });
      const run = await seedRun(id, POOL, {
        matchedBy: 'trigger',
        results: {
          connections: { status: 'critical' },
          idle: { status: i % 2 === 0 ? 'critical' : 'warning' },
          uptime: { status: i % 2 === 0 ? 'healthy' : 'warning' },
          slow_check: {
            status: i === 0 ? 'error' : 'healthy',
            error: i === 0 ? 'timed out after 10000 ms' : undefined,
          },
        },
        winner: i % 2 === 0 ? 'idle_sessions' : null,
      });
      await seedStep(id, run, 0, {
        id: 'terminate_idle',
        action: 'terminate_connections',
        status: 'verified',
      });
      await seedStep(id, run, 1, { id: 'cancel_long', action: 'cancel_query', status: 'approved' });
      await appendEvent(db, id, 'ai-sre', 'approval.requested', true, {
        executionId: run,
        step: 'cancel_long',
      });
      await appendEvent(db, id, 'U0DBA', 'step.approved', true, { executionId: run, step: 'cancel_long' });
      await resolveAfter(id, 'U0DBA', 30, openedAt);
    }
  }

  const january = () => computeSuggestions(db, { from: JAN(1), to: new Date(Date.UTC(2025, 1, 1)) });
  const only = (all: Suggestion[], kind: Suggestion['kind']): Suggestion[] =>
    all.filter((s) => s.kind === kind);

  test('every kind is found once, with its evidence, in a stable order', async () => {
    const all = await january();
    assert.deepEqual(
      all.map((s) => s.kind),
      [
        'alert_without_runbook',
        'remediation_fails_verification',
        'remediation_rejected',
        'diagnostic_times_out',
        'diagnostic_never_decides',
        'noisy_alert',
      ],
    );
    assert.deepEqual(await january(), all, 'the same answer every time');
  });

  test('a diagnostic that never varied and no winning condition read: never changed a decision', async () => {
    const [s, ...rest] = only(await january(), 'diagnostic_never_decides');
    assert.equal(rest.length, 0, 'connections and idle were read by the winning condition');
    assert.equal(s?.runbookId, 'db-pool');
    assert.match(s?.title ?? '', /uptime of runbook db-pool never changed a decision/);
    assert.deepEqual(s?.evidence, { incidentIds: seeded.pool, counts: { runs: 4, healthy: 4 } });
  });

  test('a diagnostic that often times out', async () => {
    const [s, ...rest] = only(await january(), 'diagnostic_times_out');
    assert.equal(rest.length, 0);
    assert.match(s?.title ?? '', /slow_check of runbook db-pool often times out/);
    assert.deepEqual(s?.evidence, {
      incidentIds: seeded.pool.slice(0, 3),
      counts: { runs: 4, timeouts: 3, errors: 3 },
    });
  });

  test('a step that fails verification in at least half of its runs', async () => {
    const [s, ...rest] = only(await january(), 'remediation_fails_verification');
    assert.equal(rest.length, 0);
    assert.equal(s?.runbookId, 'db-pool');
    assert.match(s?.title ?? '', /terminate_idle \(terminate_connections\)/);
    assert.deepEqual(s?.evidence, {
      incidentIds: seeded.pool.slice(0, 3),
      counts: { runs: 4, verificationFailed: 3, verified: 1 },
    });
  });

  test('a guarded step approvers reject or let expire', async () => {
    const [s, ...rest] = only(await january(), 'remediation_rejected');
    assert.equal(rest.length, 0);
    assert.match(s?.title ?? '', /cancel_long \(cancel_query\) of runbook db-pool/);
    assert.match(s?.detail ?? '', /rejected by U0DBA, U0LEAD/);
    assert.deepEqual(s?.evidence, {
      incidentIds: seeded.pool.slice(0, 3),
      counts: { requested: 4, approved: 1, rejected: 2, expired: 1 },
    });
  });

  test('noise: incidents that resolved by themselves within minutes, nobody acting', async () => {
    const noisy = only(await january(), 'noisy_alert');
    assert.equal(noisy.length, 1, 'one self-resolved CheckoutQueueStuck is below the threshold');
    const [s] = noisy;
    assert.match(s?.title ?? '', /^DiskIoSpike fires and resolves on its own/);
    assert.match(s?.detail ?? '', /raise the threshold or add a `for:`/);
    assert.match(s?.detail ?? '', /median 3 min/);
    assert.deepEqual(s?.evidence, {
      incidentIds: seeded.noisy,
      counts: { selfResolved: 3, incidents: 5 },
    });
    assert.equal(s?.runbookId, null);
  });

  test('an alert no runbook matched, with a draft runbook from what people did', async () => {
    const [s, ...rest] = only(await january(), 'alert_without_runbook');
    assert.equal(rest.length, 0);
    assert.match(
      s?.title ?? '',
      /^CheckoutQueueStuck on checkout opened 3 incidents that no runbook matched/,
    );
    assert.deepEqual(s?.evidence, {
      incidentIds: seeded.stuck,
      counts: { incidents: 3, notes: 3, actions: 2 },
    });
    assert.ok(!s?.evidence.incidentIds.includes(seeded.stuckSelfResolved));
    assert.match(
      s?.detail ?? '',
      /People ran checkout-fixes by hand: a trigger for CheckoutQueueStuck there/,
    );
    const yaml = s?.draftRunbookYaml ?? '';
    assert.match(yaml, /^# DRAFT runbook generated by ai-sre/);
    assert.ok(!yaml.includes('hunter2'), 'notes are redacted');
    assert.ok(!yaml.includes('run_sql'), 'only catalogue actions');
    assert.match(
      yaml,
      /# {3}INC-\d+ \(U0ANA\): cause: consumer deadlock after broker failover; fix: restarted/,
    );

    const draft = parseYaml(yaml) as Record<string, unknown>;
    assert.equal(draft.id, 'draft-checkout-queue-stuck');
    assert.equal(draft.service, 'checkout');
    assert.deepEqual(draft.triggers, [{ alert: 'CheckoutQueueStuck' }]);
    assert.deepEqual(
      (draft.diagnostics as { id: string }[]).map((d) => d.id),
      ['error_rate'],
      'the diagnostics that were unhealthy in those incidents',
    );
    const [hypothesis] = draft.decision as Record<string, unknown>[];
    assert.equal(
      hypothesis?.description,
      'People noted: workers stuck on a poisoned message; consumer deadlock after broker failover',
    );
    assert.deepEqual(hypothesis?.remediate, ['restart_workers', 'flush_sessions']);
    const steps = draft.remediations as Record<string, unknown>[];
    assert.deepEqual(
      steps.map((r) => [r.id, r.action, r.requiresApproval]),
      [
        ['restart_workers', 'restart_service', true],
        ['flush_sessions', 'flush_cache', true],
      ],
    );
    assert.deepEqual(
      steps[0]?.config,
      { service: '{{incident.service}}' },
      "the runbook's templated config, not one incident's rendered values",
    );

    // the draft passes the loader's full validation: schema, CEL, collector configs, executor configs
    const targets = Targets.parse({
      remediation: {
        redis: { cache: { url: 'redis://127.0.0.1:6379' } },
        platforms: { checkout: { http: { restartUrl: 'http://deploy.internal/restart' } } },
      },
    });
    const loaded = parseRunbook(yaml, 'runbooks/draft.yml', {
      collectors: COLLECTORS,
      targets,
      executors: EXECUTORS,
    });
    assert.deepEqual(loaded.problems.map(formatProblem), []);
    assert.equal(
      loaded.runbook?.runbook.remediations.every((r) => r.requiresApproval),
      true,
    );
  });

  test('a draft with nothing people did to mirror: a health-check stub and a hypothesis that escalates', async () => {
    const may = (day: number) => new Date(Date.UTC(2025, 4, day, 9));
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const id = await seedIncident({ service: 'batch', alert: 'BatchJobLate', openedAt: may(2 + i) });
      ids.push(id);
      await appendEvent(db, id, 'ai-sre', 'runbook.none', true, { reason: 'no runbook matches' });
      if (i === 0) await addNote(id, 'U0CY', { fix: 'reran the job by hand' });
      await resolveAfter(id, 'U0CY', 50, may(2 + i));
    }
    const all = await computeSuggestions(db, { from: may(1), to: may(31) });
    assert.deepEqual(
      all.map((s) => [s.kind, s.evidence.incidentIds]),
      [['alert_without_runbook', ids]],
    );
    const yaml = all[0]?.draftRunbookYaml ?? '';
    const draft = parseYaml(yaml) as Record<string, unknown>;
    assert.deepEqual(
      (draft.diagnostics as { id: string; type: string }[]).map((d) => [d.id, d.type]),
      [['health', 'http_check']],
    );
    assert.deepEqual(draft.remediations, []);
    assert.deepEqual((draft.decision as Record<string, unknown>[])[0]?.escalate, {
      reason: 'default',
      note: 'Fixes people noted: reran the job by hand',
    });
    const loaded = parseRunbook(yaml, 'runbooks/draft.yml', {
      collectors: COLLECTORS,
      targets: Targets.parse({}),
    });
    assert.deepEqual(loaded.problems.map(formatProblem), []);
  });

  test('a higher bar or a window with nothing wrong: no suggestions', async () => {
    assert.deepEqual(
      await computeSuggestions(db, { from: JAN(1), to: new Date(Date.UTC(2025, 1, 1)), minOccurrences: 6 }),
      [],
    );
    assert.deepEqual(
      await computeSuggestions(db, {
        from: new Date(Date.UTC(2025, 2, 1)),
        to: new Date(Date.UTC(2025, 3, 1)),
      }),
      [],
      'March is clean',
    );
    assert.deepEqual(
      await computeSuggestions(db, {
        from: new Date(Date.UTC(2030, 0, 1)),
        to: new Date(Date.UTC(2030, 1, 1)),
      }),
      [],
      'an empty window',
    );
  });

  test('the Slack message: evidence, the draft in a code block, escaped and within limits', async () => {
    const all = await january();
    const message = buildSuggestionsMessage(all, 'the last 30 days');
    assert.match(message.text, /^6 runbook suggestions for the last 30 days: CheckoutQueueStuck on checkout/);
    assertWithinLimits(message);
    const body = JSON.stringify(message.blocks);
    assert.match(body, /```\\n# DRAFT runbook generated by ai-sre/);
    assert.match(body, new RegExp(`INC-${seeded.noisy[0]}, INC-${seeded.noisy[1]}, INC-${seeded.noisy[2]}`));
    assert.match(body, /selfResolved 3, incidents 5/);
    assert.match(body, /runbook `db-pool`/);
  });
});

const suggestion = (over: Partial<Suggestion> = {}): Suggestion => ({
  kind: 'noisy_alert',
  title: 'DiskIoSpike fires and resolves on its own',
  detail: 'raise the threshold',
  evidence: { incidentIds: [1, 2, 3], counts: { selfResolved: 3, incidents: 4 } },
  runbookId: null,
  ...over,
});

function assertWithinLimits(message: { text: string; blocks: KnownBlock[] }): void {
  assert.ok(message.blocks.length <= SLACK_LIMITS.blocksPerMessage, `${message.blocks.length} blocks`);
  for (const block of message.blocks) {
    if (block.type === 'section')
      assert.ok((block.text?.text.length ?? 0) <= SLACK_LIMITS.sectionText, 'section');
    if (block.type === 'header') assert.ok(block.text.text.length <= SLACK_LIMITS.headerText, 'header');
    if (block.type === 'context') {
      for (const x of block.elements) if ('text' in x) assert.ok(x.text.length <= SLACK_LIMITS.textObject);
    }
  }
  assert.ok(measureText(message.blocks) <= MAX_TOTAL_BLOCK_TEXT, `total ${measureText(message.blocks)}`);
  assert.ok(!/block.? not shown/.test(JSON.stringify(message.blocks)), 'nothing dropped by fitMessage');
}

describe('the Slack rendering of suggestions', () => {
  test('nothing to suggest', () => {
    const message = buildSuggestionsMessage([], 'the last 7 days');
    assert.equal(message.text, 'Nothing to suggest for the last 7 days.');
    assert.equal(message.blocks.length, 2);
    assertWithinLimits(message);
  });

  test('untrusted text is escaped, long drafts are cut at a whole line, many suggestions still fit', () => {
    const evil = '<!channel> <https://evil.example|x> & ```';
    const yaml = Array.from({ length: 400 }, (_, i) => `  line_${i}: "<@U123> & ${'v'.repeat(60)}"`).join(
      '\n',
    );
    const items = Array.from({ length: 20 }, (_, i) =>
      suggestion({
        kind: i % 2 === 0 ? 'alert_without_runbook' : 'noisy_alert',
        title: `${evil} ${i}`,
        detail: evil.repeat(50),
        evidence: { incidentIds: Array.from({ length: 80 }, (_, j) => j + 1), counts: { incidents: 80 } },
        ...(i % 2 === 0 ? { draftRunbookYaml: yaml } : {}),
      }),
    );
    const message = buildSuggestionsMessage(items, 'the last 30 days');
    assertWithinLimits(message);
    const body = JSON.stringify(message.blocks);
    assert.ok(!body.includes('<!channel>') && !body.includes('<@U123>') && !body.includes('<https://evil'));
    assert.match(body, /&lt;!channel&gt;/);
    assert.match(body, /INC-12 and 68 more/);
    assert.match(body, /8 more not shown/);
    const code = message.blocks.find((b) => b.type === 'section' && b.text?.text.startsWith('```'));
    assert.ok(code && code.type === 'section');
    const lines = (code.text?.text ?? '').split('\n');
    assert.match(lines.at(-2) ?? '', /^# … \d+ more lines not shown$/);
    assert.match(lines.at(-3) ?? '', /^ {2}line_\d+: "&lt;@U123&gt; &amp; v{60}"$/, 'whole lines only');
  });
});
