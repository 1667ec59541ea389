import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sendBlockAction } from '../src/devtools/slack-standin/sign.js';
import { APPROVE_ACTION } from '../src/slack/blocks/approval-packet.js';
import { eventually, SIGNING_SECRET, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * A worker killed with SIGKILL in the middle of an action: BullMQ hands its job to another worker (stalled-job
 * recovery), which finds the step `started` and must not run the action again.
 */
describe('remediation: a worker killed mid-step never causes a second execution', () => {
  let t: TestApp;
  let dir: string;
  let target: Server;
  let health: Server;
  const workers: ChildProcess[] = [];
  /** requests the admin API received; it never answers, so the action is in flight when the worker dies */
  const received: string[] = [];

  before(async () => {
    target = createServer((req) => {
      received.push(`${req.method} ${req.url}`);
    });
    health = createServer((_req, res) => {
      res.writeHead(503);
      res.end('down');
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => health.listen(0, '127.0.0.1', r));
    const adminUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
    const healthUrl = `http://127.0.0.1:${(health.address() as AddressInfo).port}/health`;
    dir = await mkdtemp(join(tmpdir(), 'ai-sre-crash-'));
    await writeFile(
      join(dir, 'targets.yml'),
      [
        'remediation:',
        '  http:',
        `    allow: ["${adminUrl}/admin/"]`,
        'services:',
        '  crash-svc:',
        `    health_url: ${healthUrl}`,
        `    admin_url: ${adminUrl}`,
      ].join('\n'),
    );
    await writeFile(join(dir, 'safety.yml'), 'approvers: [U0APPROVER]\n');
    // the web process only: every job runs in the worker processes this test starts and kills
    t = await startTestApp(
      {
        RUNBOOKS_DIR: 'test/fixtures/runbooks-remediation',
        TARGETS_FILE: join(dir, 'targets.yml'),
        SAFETY_FILE: join(dir, 'safety.yml'),
        SLACK_SYNC_DEBOUNCE_MS: '0',
        WORKER_LOCK_MS: '1500',
        ACTION_TIMEOUT_MS: '600000',
      },
      { role: 'web' },
    );
  });

  after(async () => {
    for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
    await t?.close();
    target.closeAllConnections();
    await new Promise((r) => target.close(r));
    await new Promise((r) => health.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  function startWorker(): ChildProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start', '--role', 'worker'], {
      env: { ...process.env, ...t.env, MIGRATE_ON_START: 'false' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    workers.push(child);
    return child;
  }

  test('SIGKILL during the action: the next worker records the outcome unknown, verifies, escalates; one request', async () => {
    const first = startWorker();
    const res = await t.webhook('/webhooks/generic', {
      name: 'BreakerNeeded',
      service: 'crash-svc',
      severity: 'high',
      summary: 'crash-svc is failing',
    });
    assert.equal(res.status, 202);
    const approval = await eventually(
      'the approval request',
      async () => (await t.query<{ id: number }>('SELECT id FROM approval_requests'))[0],
      60_000,
    );
    await sendBlockAction(t.baseUrl, SIGNING_SECRET, {
      user: { id: 'U0APPROVER', username: 'approver', name: 'approver', team_id: 'T0001' },
      channel: { id: 'C0INCIDENTS', name: 'incidents' },
      actions: [
        {
          type: 'button',
          action_id: APPROVE_ACTION,
          block_id: 'b',
          value: String(approval.id),
          action_ts: '1.2',
        },
      ],
    });
    await eventually('the action in flight', async () => received.length > 0, 60_000);
    const [started] = await t.query<{ status: string }>('SELECT status FROM remediation_steps');
    assert.equal(started?.status, 'started', 'recorded started before the action ran');
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));

    startWorker();
    await eventually(
      'the outcome recorded unknown by the next worker',
      async () =>
        (await t.query(`SELECT 1 FROM timeline_events WHERE type = 'step.outcome_unknown'`)).length > 0,
      60_000,
    );
    const step = await eventually(
      'verification to end',
      async () =>
        (
          await t.query<{ status: string; reason: string }>(
            `SELECT status, reason FROM remediation_steps WHERE status IN ('verified', 'verification_failed')`,
          )
        )[0],
      60_000,
    );
    assert.equal(step.status, 'verification_failed', 'still broken: verified as not fixed');
    assert.deepEqual(received, ['POST /admin/crash-svc/breaker'], 'the action ran exactly once');
    const [incident] = await t.query<{ status: string }>('SELECT status FROM incidents');
    assert.equal(incident?.status, 'escalated');
  });
});
