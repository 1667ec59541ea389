import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sendSlashCommand } from '../src/devtools/slack-standin/sign.js';
import { eventually, SIGNING_SECRET, startTestApp, type TestApp } from './helpers/test-app.js';

interface ExecutionRow {
  id: number;
  incident_id: number;
  runbook_id: string;
  runbook_hash: string;
  matched_by: string;
  status: string;
  escalate: boolean;
  escalate_reason: string | null;
  decision: {
    outcome: string;
    text: string;
    hypothesis: { id: string } | null;
    plan: { id: string; requiresApproval: boolean }[];
  };
}

interface ResultRow {
  diagnostic_id: string;
  status: string;
  value: unknown;
  summary: string;
  error: string | null;
  duration_ms: number;
}

const threadTexts = (t: TestApp) =>
  t.stub
    .callsTo('chat.postMessage')
    .filter((c) => c.args.thread_ts)
    .map((c) => JSON.stringify(c.args.blocks ?? []) + String(c.args.text ?? ''));

describe('runbook execution: alert → diagnostics fan-out → decision → plan in Slack and Postgres', () => {
  let t: TestApp;
  let health: Server;
  let dir: string;
  before(async () => {
    health = createServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('pool exhausted');
    });
    await new Promise<void>((r) => health.listen(0, '127.0.0.1', r));
    const port = (health.address() as AddressInfo).port;
    dir = await mkdtemp(join(tmpdir(), 'ai-sre-runbooks-'));
    // The database target only runs read-only SELECTs, so the server's `postgres` database serves.
    await writeFile(
      join(dir, 'targets.yml'),
      [
        'databases:',
        '  main:',
        '    url: postgres://postgres@127.0.0.1:5432/postgres',
        'remediation:',
        '  databases:',
        '    main:',
        '      url: postgres://postgres@127.0.0.1:5432/postgres',
        'services:',
        '  checkout:',
        `    health_url: http://127.0.0.1:${port}/health`,
        '  unknown-service:',
        `    health_url: http://127.0.0.1:${port}/health`,
      ].join('\n'),
    );
    await writeFile(join(dir, 'safety.yml'), 'mode: shadow\n');
    t = await startTestApp({
      RUNBOOKS_DIR: 'test/fixtures/runbooks-e2e',
      TARGETS_FILE: join(dir, 'targets.yml'),
      // shadow: the plan is recorded and dry-run, nothing is changed (remediation has its own tests)
      SAFETY_FILE: join(dir, 'safety.yml'),
      SLACK_SYNC_DEBOUNCE_MS: '0',
    });
  });
  after(async () => {
    await t?.close();
    await new Promise((r) => health.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  test('every diagnostic is stored, errors never block the decision, the plan is recorded and posted', async () => {
    const res = await t.webhook('/webhooks/generic', {
      name: 'CheckoutDown',
      service: 'checkout',
      severity: 'critical',
      summary: 'checkout 5xx',
      labels: { pool: 'primary' },
    });
    assert.equal(res.status, 202);
    const execution = await eventually('the decision', async () => {
      const [row] = await t.query<ExecutionRow>(`SELECT * FROM runbook_executions WHERE status = 'decided'`);
      return row;
    });
    assert.equal(execution.runbook_id, 'checkout-down');
    assert.equal(execution.matched_by, 'trigger');
    const file = await readFile('test/fixtures/runbooks-e2e/checkout-down.yml');
    assert.equal(
      execution.runbook_hash,
      createHash('sha256').update(file).digest('hex'),
      'the content hash of the file',
    );

    const results = await t.query<ResultRow>(
      'SELECT diagnostic_id, status, value, summary, error, duration_ms FROM diagnostic_results WHERE execution_id = $1 ORDER BY position',
      [execution.id],
    );
    const byId = Object.fromEntries(results.map((r) => [r.diagnostic_id, r]));
    assert.deepEqual(Object.keys(byId), ['health', 'pool', 'slow_query', 'needs_label']);
    assert.equal(byId.health?.status, 'critical', 'the 503 health check');
    assert.equal(byId.pool?.status, 'critical');
    assert.equal(byId.pool?.value, 95);
    assert.equal(byId.slow_query?.status, 'error');
    assert.match(byId.slow_query?.error ?? '', /timed out|timeout|statement/i);
    assert.ok((byId.slow_query?.duration_ms ?? 0) < 10_000, 'the 1 s timeout cut the 20 s query');
    assert.equal(byId.needs_label?.status, 'error');
    assert.match(byId.needs_label?.error ?? '', /missing_label/);

    assert.equal(execution.decision.outcome, 'remediate');
    assert.equal(execution.decision.hypothesis?.id, 'pool_exhausted');
    assert.deepEqual(
      execution.decision.plan.map((s) => [s.id, s.requiresApproval]),
      [
        ['kill_idle_connections', false],
        ['raise_pool', true],
      ],
    );
    assert.match(
      execution.decision.text,
      /DB connection pool exhausted .*→ kill idle connections, then raise the pool/,
    );
    assert.equal(execution.escalate, false);

    const events = await t.query<{ type: string }>(
      'SELECT type FROM timeline_events WHERE incident_id = $1 ORDER BY id',
      [execution.incident_id],
    );
    const types = events.map((e) => e.type);
    assert.ok(types.indexOf('runbook.started') < types.indexOf('decision.made'));
    assert.equal(types.filter((x) => x === 'diagnostic.completed').length, 4);
    assert.ok(types.includes('incident.investigating'));

    // Slack: the diagnostics message (one line per check), edited to its final state, then the decision and plan.
    await t.stub.waitFor(() => threadTexts(t).some((x) => x.includes('Plan (each step')));
    const thread = threadTexts(t);
    const summaryIndex = thread.findIndex((x) => x.includes('Running runbook'));
    const decisionIndex = thread.findIndex((x) => x.includes('Plan (each step'));
    assert.ok(summaryIndex >= 0 && summaryIndex < decisionIndex, 'summary first, then the decision');
    assert.match(
      thread[decisionIndex] ?? '',
      /Kill idle connections \(terminate_connections, automatic if the policy allows\)/,
    );
    assert.match(thread[decisionIndex] ?? '', /Raise the pool \(scale, needs approval\)/);
    await t.stub.waitFor(() =>
      t.stub.callsTo('chat.update').some((c) => JSON.stringify(c.args.blocks).includes('all 4 checks done')),
    );
    const final = t.stub
      .callsTo('chat.update')
      .map((c) => JSON.stringify(c.args.blocks))
      .filter((b) => b.includes('all 4 checks done'))
      .at(-1) as string;
    assert.match(final, /:red_circle: \*pool\* 95 %/);
    assert.match(final, /:warning: \*slow_query\* error/);
  });

  test('a second app in the same process runs its own execution 1, never the first app run', async () => {
    // both databases number their first run 1; the diagnostics must read this app's run, never a cached other one
    const pick = (key: string) => t.env[key] ?? '';
    const other = await startTestApp({
      RUNBOOKS_DIR: pick('RUNBOOKS_DIR'),
      TARGETS_FILE: pick('TARGETS_FILE'),
      SAFETY_FILE: pick('SAFETY_FILE'),
    });
    try {
      await eventually('the first app to have run execution 1', async () => {
        const rows = await t.query('SELECT 1 FROM diagnostic_results WHERE execution_id = 1');
        return rows.length > 0;
      });
      const res = await other.webhook('/webhooks/generic', {
        name: 'CheckoutDown',
        service: 'checkout',
        severity: 'critical',
        summary: 'checkout 5xx',
        labels: { pool: 'replica' },
      });
      assert.equal(res.status, 202);
      const [pool] = await eventually('the other app to store its pool check', async () =>
        other
          .query<{ execution_id: string; result: { rows?: { pool?: string }[] } }>(
            `SELECT execution_id, result FROM diagnostic_results WHERE diagnostic_id = 'pool'`,
          )
          .then((rows) => (rows.length > 0 ? rows : null)),
      );
      assert.equal(Number(pool?.execution_id), 1);
      assert.equal(pool?.result.rows?.[0]?.pool, 'replica', JSON.stringify(pool?.result));
    } finally {
      await other.close();
    }
  });

  test('an incident no runbook matches runs the default triage and is escalated', async () => {
    await t.webhook('/webhooks/generic', {
      name: 'SomethingOdd',
      service: 'unknown-service',
      severity: 'high',
    });
    const execution = await eventually('the default triage decision', async () => {
      const [row] = await t.query<ExecutionRow>(
        `SELECT e.* FROM runbook_executions e JOIN incidents i ON i.id = e.incident_id
          WHERE i.service = 'unknown-service' AND e.status = 'decided'`,
      );
      return row;
    });
    assert.equal(execution.runbook_id, 'default-triage');
    assert.equal(execution.matched_by, 'default');
    assert.equal(execution.escalate, true);
    assert.match(execution.escalate_reason ?? '', /no runbook matches/);
    const [incident] = await t.query<{ status: string }>('SELECT status FROM incidents WHERE id = $1', [
      execution.incident_id,
    ]);
    assert.equal(incident?.status, 'escalated');
  });

  test('/incident run runs a runbook by hand on the open incident, recorded as manual', async () => {
    const [open] = await t.query<{ id: number }>(`SELECT id FROM incidents WHERE service = 'checkout'`);
    assert.ok(open);
    const res = await sendSlashCommand(t.baseUrl, SIGNING_SECRET, {
      command: '/incident',
      text: `run checkout-down INC-${open.id}`,
      user_id: 'U0ONCALL',
    });
    assert.equal(res.status, 200);
    const manual = await eventually('the manual run', async () => {
      const [row] = await t.query<ExecutionRow & { requested_by: string }>(
        `SELECT * FROM runbook_executions WHERE matched_by = 'manual' AND status = 'decided'`,
      );
      return row;
    });
    assert.equal(manual.incident_id, open.id);
    assert.equal(manual.requested_by, 'U0ONCALL');
    const unknown = await sendSlashCommand(t.baseUrl, SIGNING_SECRET, {
      command: '/incident',
      text: 'run no-such-runbook checkout',
    });
    assert.equal(unknown.status, 200);
    await t.stub.waitFor(() =>
      t.stub
        .callsTo('chat.postEphemeral')
        .some((c) => String(c.args.text).includes('no runbook "no-such-runbook"')),
    );
  });

  test('the sweep re-enqueues diagnosis Redis lost: an open incident with no run gets its run', async () => {
    // an incident Postgres holds but whose diagnose job never reached Redis
    const [row] = await t.query<{ id: number }>(
      `INSERT INTO incidents (service, title, severity, status, source, opened_at)
       VALUES ('unknown-service', 'lost job', 'high', 'open', 'test', now() - interval '2 minutes') RETURNING id`,
    );
    assert.ok(row);
    const { sweepDiagnoses } = await import('../src/runbooks/sweep.js');
    assert.equal(await sweepDiagnoses(t.app.ctx, 'test-sweep'), 1);
    const execution = await eventually('the swept run', async () => {
      const [e] = await t.query<ExecutionRow>(
        `SELECT * FROM runbook_executions WHERE incident_id = $1 AND status = 'decided'`,
        [row.id],
      );
      return e;
    });
    assert.equal(execution.runbook_id, 'default-triage');
    assert.equal(await sweepDiagnoses(t.app.ctx, 'test-sweep-2'), 0, 'nothing is owed any more');
  });
});
