import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import { sendBlockAction, sendEvent, sendSlashCommand } from '../src/devtools/slack-standin/sign.js';
import { APPROVE_ACTION, REJECT_ACTION } from '../src/slack/blocks/approval-packet.js';
import { deleteKeys, eventually, SIGNING_SECRET, startTestApp, type TestApp } from './helpers/test-app.js';

/** A local stand-in for the services' health checks, admin APIs and deploy API; records every request. */
interface Admin {
  server: Server;
  url: string;
  requests: { method: string; path: string; body: string; headers: IncomingMessage['headers'] }[];
  /** health status per service (200 healthy; anything else fails the check) */
  health: Map<string, number>;
  /** services whose health turns 200 when the breaker opens or the service restarts */
  fixable: Set<string>;
}

async function startAdmin(): Promise<Admin> {
  const admin: Omit<Admin, 'server' | 'url'> = { requests: [], health: new Map(), fixable: new Set() };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const path = req.url ?? '/';
      const health = /^\/health\/([\w-]+)$/.exec(path);
      if (health) {
        const status = admin.health.get(health[1] as string) ?? 200;
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(status === 200 ? 'ok' : 'down');
        return;
      }
      admin.requests.push({ method: req.method ?? '', path, body, headers: req.headers });
      const action = /^\/admin\/([\w-]+)\/(breaker|restart|rollback)$/.exec(path);
      if (action && req.method === 'POST') {
        const service = action[1] as string;
        if (admin.fixable.has(service)) admin.health.set(service, 200);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true, service, token: 'password=hunter2' }));
        return;
      }
      res.writeHead(404);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { ...admin, server, url };
}

interface StepRow {
  id: number;
  execution_id: number;
  step_id: string;
  action: string;
  tier: string;
  mode: string;
  status: string;
  reason: string | null;
  result: { summary?: string; details?: Record<string, unknown>; output?: string } | null;
  config: Record<string, unknown>;
}

const SERVICES = [
  'pool-svc',
  'shadow-svc',
  'kill-svc',
  'flag-svc',
  'reject-svc',
  'expire-svc',
  'expire-job-svc',
  'restart-svc',
  'cache-svc',
  'nofix-svc',
  'cleared-svc',
  'crash-svc',
  'p1-svc',
  'sweep-svc',
  'sweep-expire-svc',
  'rollback-svc',
  'stale-deploy-svc',
  'attempts-svc',
  'killrun-svc',
];

describe('remediation: executed inside the safety bounds, approved in Slack, verified or handed over', () => {
  let t: TestApp;
  let admin: Admin;
  let dir: string;
  const victims: pg.Client[] = [];
  const run = randomBytes(4).toString('hex');
  const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });

  before(async () => {
    admin = await startAdmin();
    dir = await mkdtemp(join(tmpdir(), 'ai-sre-remediation-'));
    const services = SERVICES.map(
      (s) => `  ${s}:\n    health_url: ${admin.url}/health/${s}\n    admin_url: ${admin.url}`,
    ).join('\n');
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
        '  redis:',
        '    cache:',
        '      url: redis://127.0.0.1:6379',
        '  http:',
        `    allow: ["${admin.url}/admin/"]`,
        '  platforms:',
        '    rollback-svc:',
        '      http:',
        `        rollbackUrl: ${admin.url}/admin/rollback-svc/rollback`,
        '    stale-deploy-svc:',
        '      http:',
        `        rollbackUrl: ${admin.url}/admin/stale-deploy-svc/rollback`,
        '    restart-svc:',
        '      http:',
        `        restartUrl: ${admin.url}/admin/restart-svc/restart`,
        '        headers:',
        '          authorization: Bearer deploy-secret-token-123',
        'services:',
        services,
      ].join('\n'),
    );
    await writeFile(
      join(dir, 'safety.yml'),
      [
        'mode: supervised',
        'approvers: [U0APPROVER, S0APPROVERS]',
        'admins: [U0ADMIN]',
        'services:',
        '  pool-svc: { mode: autonomous }',
        '  kill-svc: { mode: autonomous }',
        '  restart-svc: { mode: autonomous }',
        '  shadow-svc: { mode: shadow }',
      ].join('\n'),
    );
    t = await startTestApp(
      {
        RUNBOOKS_DIR: 'test/fixtures/runbooks-remediation',
        TARGETS_FILE: join(dir, 'targets.yml'),
        SAFETY_FILE: join(dir, 'safety.yml'),
        SLACK_SYNC_DEBOUNCE_MS: '0',
      },
      {
        // U0GROUPIE approves through the approvers user group
        prepareStub: (stub) => stub.answerWith('usergroups.users.list', { ok: true, users: ['U0GROUPIE'] }),
      },
    );
  });

  after(async () => {
    for (const c of victims) await c.end().catch(() => {});
    await t?.close();
    await new Promise((r) => admin.server.close(r));
    await rm(dir, { recursive: true, force: true });
    await deleteKeys(`ai-sre-remediation-test:${run}:*`);
    redis.disconnect();
  });

  /** idle Postgres sessions of one application, as a leaking service would leave them */
  async function openVictims(app: string, n: number): Promise<number[]> {
    const pids: number[] = [];
    for (let i = 0; i < n; i++) {
      const c = new pg.Client({
        connectionString: 'postgres://postgres@127.0.0.1:5432/postgres',
        application_name: app,
      });
      c.on('error', () => {});
      await c.connect();
      const { rows } = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      pids.push((rows[0] as { pid: number }).pid);
      victims.push(c);
    }
    // past the step's idleLongerThan (1s)
    await new Promise((r) => setTimeout(r, 1_200));
    return pids;
  }

  async function alive(pids: number[]): Promise<number> {
    const rows = await t.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1)',
      [pids],
    );
    return rows[0]?.n ?? 0;
  }

  async function fire(name: string, service: string, labels: Record<string, string> = {}, severity = 'high') {
    const res = await t.webhook('/webhooks/generic', {
      name,
      service,
      severity,
      summary: `${name} on ${service}`,
      labels: { instance: `${service}-${randomBytes(3).toString('hex')}`, ...labels },
    });
    assert.equal(res.status, 202);
    return eventually(`the incident of ${service}`, async () => {
      const [row] = await t.query<{ id: number }>(
        `SELECT id FROM incidents WHERE service = $1 AND status <> 'resolved' ORDER BY id DESC LIMIT 1`,
        [service],
      );
      return row?.id;
    });
  }

  const stepsOf = (incidentId: number) =>
    t.query<StepRow>('SELECT * FROM remediation_steps WHERE incident_id = $1 ORDER BY id', [incidentId]);

  async function stepIn(incidentId: number, statuses: string[], timeoutMs = 30_000): Promise<StepRow> {
    return eventually(
      `a step of INC-${incidentId} in ${statuses.join('|')}`,
      async () => (await stepsOf(incidentId)).find((s) => statuses.includes(s.status)),
      timeoutMs,
    );
  }

  const statusOf = async (incidentId: number) =>
    (await t.query<{ status: string }>('SELECT status FROM incidents WHERE id = $1', [incidentId]))[0]
      ?.status;

  const eventsOf = async (incidentId: number) =>
    t.query<{ type: string; actor: string; data: Record<string, unknown> }>(
      'SELECT type, actor, data FROM timeline_events WHERE incident_id = $1 ORDER BY id',
      [incidentId],
    );

  async function approvalOf(incidentId: number) {
    return eventually(`the approval request of INC-${incidentId}`, async () => {
      const [row] = await t.query<{ id: number; status: string; expires_at: Date }>(
        'SELECT id, status, expires_at FROM approval_requests WHERE incident_id = $1',
        [incidentId],
      );
      return row;
    });
  }

  /** the decision packet of one approval, once posted in the thread (a person can only click what Slack shows) */
  const packetPosted = (approvalId: number) =>
    t.stub.waitFor((calls) =>
      calls.some(
        (c) =>
          c.method === 'chat.postMessage' &&
          JSON.stringify(c.args.blocks ?? []).includes(`"block_id":"approval-${approvalId}"`),
      ),
    );

  const click = (approvalId: number, user: string, actionId = APPROVE_ACTION) =>
    sendBlockAction(t.baseUrl, SIGNING_SECRET, {
      user: { id: user, username: user, name: user, team_id: 'T0001' },
      channel: { id: 'C0INCIDENTS', name: 'incidents' },
      container: { type: 'message', message_ts: '1.1', channel_id: 'C0INCIDENTS', is_ephemeral: false },
      message: { ts: '1.1', thread_ts: '1.0', type: 'message', text: 'packet' },
      actions: [
        {
          type: 'button',
          action_id: actionId,
          block_id: `approval-${approvalId}`,
          value: String(approvalId),
          action_ts: '1.2',
          text: { type: 'plain_text', text: 'Approve' },
        },
      ],
    });

  /** the ephemeral answers a user got */
  const answersTo = (user: string) =>
    t.stub
      .callsTo('chat.postEphemeral')
      .filter((c) => c.args.user === user)
      .map((c) => String(c.args.text));

  const adminCalls = (path: string) => admin.requests.filter((r) => r.path === path);

  test('a safe action runs on its own: idle sessions are terminated, the fix is verified, the incident resolves', async () => {
    const pids = await openVictims(`victim-${run}-a`, 4);
    const bystanders = await openVictims(`bystander-${run}`, 1);
    const incident = await fire('PoolIdle', 'pool-svc', { app: `victim-${run}-a` });
    const step = await stepIn(incident, ['verified', 'verification_failed', 'failed', 'refused', 'skipped']);
    assert.equal(step.status, 'verified');
    assert.equal(step.tier, 'safe');
    assert.equal(step.mode, 'autonomous');
    assert.equal(await alive(pids), 0, 'every idle victim session was terminated');
    assert.equal(await alive(bystanders), 1, 'a session of another application is untouched');
    assert.match(step.result?.summary ?? '', /terminated 4/);
    await eventually('the incident resolved', async () => (await statusOf(incident)) === 'resolved');
    const types = (await eventsOf(incident)).map((e) => e.type);
    for (const type of [
      'decision.made',
      'step.started',
      'step.executed',
      'step.verified',
      'remediation.verified',
    ]) {
      assert.ok(types.includes(type), `${type} in the timeline: ${types.join(', ')}`);
    }
    assert.ok(types.indexOf('step.started') < types.indexOf('step.executed'));
    assert.ok(types.indexOf('step.executed') < types.indexOf('step.verified'));
    const executed = (await eventsOf(incident)).find((e) => e.type === 'step.executed');
    assert.ok(executed);
    assert.equal(typeof executed.data.durationMs, 'number');
    const metrics = await (await fetch(`${t.baseUrl}/metrics`)).text();
    assert.match(
      metrics,
      /ai_sre_remediation_steps_total\{action="terminate_connections",outcome="succeeded"\} 1/,
    );
    assert.match(
      metrics,
      /ai_sre_remediation_steps_total\{action="terminate_connections",outcome="verified"\} 1/,
    );
    assert.deepEqual((executed.data.inputs as { application?: string }).application, `victim-${run}-a`);
    await t.stub.waitFor((calls) =>
      calls.some(
        (c) => c.method === 'chat.postMessage' && JSON.stringify(c.args).includes('Verified terminate_idle'),
      ),
    );
  });

  test('shadow mode records what would run and changes nothing', async () => {
    const pids = await openVictims(`victim-${run}-b`, 3);
    const incident = await fire('PoolIdle', 'shadow-svc', { app: `victim-${run}-b` });
    const step = await stepIn(incident, ['dry_run', 'succeeded', 'failed', 'refused']);
    assert.equal(step.status, 'dry_run');
    assert.equal(step.mode, 'shadow');
    assert.equal(await alive(pids), 3, 'nothing was terminated');
    assert.match(step.result?.summary ?? '', /would/i);
    await eventually(
      'escalated after the shadow run',
      async () => (await statusOf(incident)) === 'escalated',
    );
    const [execution] = await t.query<{ remediation_status: string }>(
      'SELECT remediation_status FROM runbook_executions WHERE incident_id = $1',
      [incident],
    );
    assert.equal(execution?.remediation_status, 'shadow');
  });

  test('the kill switch: only admins may flip it; while off nothing executes; it survives in Postgres', async () => {
    const slash = (text: string, user: string) =>
      sendSlashCommand(t.baseUrl, SIGNING_SECRET, {
        command: '/incident',
        text,
        user_id: user,
        channel_id: 'C0OPS',
      });
    const refused = await slash('automation off kill-svc', 'U0RANDOM');
    assert.match(JSON.parse(refused.body).text, /Only automation admins/);
    assert.equal((await t.query('SELECT * FROM automation_switches')).length, 0, 'nothing recorded');

    const off = await slash('automation off kill-svc investigating a bad release', 'U0ADMIN');
    assert.match(JSON.parse(off.body).text, /Automation is off for kill-svc/);
    const [row] = await t.query<{ enabled: boolean; changed_by: string; reason: string }>(
      `SELECT enabled, changed_by, reason FROM automation_switches WHERE scope = 'kill-svc'`,
    );
    assert.deepEqual(row, { enabled: false, changed_by: 'U0ADMIN', reason: 'investigating a bad release' });
    const status = await slash('automation', 'U0RANDOM');
    assert.match(JSON.parse(status.body).text, /off\* for kill-svc/);

    const pids = await openVictims(`victim-${run}-k`, 3);
    const incident = await fire('PoolIdle', 'kill-svc', { app: `victim-${run}-k` });
    const step = await stepIn(incident, ['skipped', 'verified', 'succeeded', 'failed']);
    assert.equal(step.status, 'skipped');
    assert.match(
      step.reason ?? '',
      /automation is off for kill-svc \(by U0ADMIN: investigating a bad release\)/,
    );
    assert.equal(await alive(pids), 3, 'nothing was terminated while automation was off');
    await eventually('escalated', async () => (await statusOf(incident)) === 'escalated');

    // @ai-sre status shows the switch
    await sendEvent(t.baseUrl, SIGNING_SECRET, {
      type: 'app_mention',
      user: 'U0BOB',
      text: '<@U0BOT> status kill-svc',
      ts: `${Date.now() / 1000}`,
      channel: 'C0OPS',
    });
    await t.stub.waitFor((calls) =>
      calls.some(
        (c) =>
          c.method === 'chat.postMessage' &&
          c.args.channel === 'C0OPS' &&
          JSON.stringify(c.args.blocks ?? []).includes('Automation is *off* for kill-svc'),
      ),
    );

    const on = await slash('automation on kill-svc', 'U0ADMIN');
    assert.match(JSON.parse(on.body).text, /back on for kill-svc/);
    const [after] = await t.query<{ enabled: boolean }>(
      `SELECT enabled FROM automation_switches WHERE scope = 'kill-svc'`,
    );
    assert.equal(after?.enabled, true);
  });

  test('a guarded step waits for an authorised approver; refusals and a second click change nothing', async () => {
    admin.health.set('flag-svc', 503);
    admin.fixable.add('flag-svc');
    const incident = await fire('BreakerNeeded', 'flag-svc');
    const approval = await approvalOf(incident);
    assert.equal(approval.status, 'pending');
    assert.equal(await statusOf(incident), 'awaiting_approval');
    // the packet: what, where, why, preconditions, blast radius, rollback, verification, and the two buttons
    await packetPosted(approval.id);
    const packet = JSON.stringify(
      t.stub
        .callsTo('chat.postMessage')
        .find((c) => JSON.stringify(c.args.blocks ?? []).includes(`"block_id":"approval-${approval.id}"`))
        ?.args.blocks,
    );
    for (const part of [
      'Approval needed',
      'Evidence',
      'Blast radius',
      'Rollback plan',
      'Verification',
      REJECT_ACTION,
    ]) {
      assert.ok(packet.includes(part), `packet shows ${part}`);
    }
    assert.ok(packet.includes(`http:${admin.url}/admin/flag-svc/breaker`), 'packet names the target');

    await click(approval.id, 'U0RANDOM');
    await eventually('the refusal answer', async () =>
      answersTo('U0RANDOM').some((x) => x.includes('not an approver')),
    );
    assert.equal(adminCalls('/admin/flag-svc/breaker').length, 0, 'an unauthorised click runs nothing');
    assert.equal((await approvalOf(incident)).status, 'pending');

    // U0GROUPIE is an approver through the S0APPROVERS user group
    await click(approval.id, 'U0GROUPIE');
    const step = await stepIn(incident, ['verified', 'verification_failed', 'failed']);
    assert.equal(step.status, 'verified');
    const calls = adminCalls('/admin/flag-svc/breaker');
    assert.equal(calls.length, 1, 'exactly one request');
    assert.equal(calls[0]?.method, 'POST');
    assert.deepEqual(JSON.parse(calls[0]?.body ?? '{}'), { ttl: '15m' });
    assert.match(step.result?.output ?? '', /"token":"\*\*\*"/, 'secrets in the response are masked');
    assert.doesNotMatch(JSON.stringify(step.result), /hunter2/);

    await click(approval.id, 'U0APPROVER');
    await eventually('the second click answer', async () =>
      answersTo('U0APPROVER').some((x) => x.includes('already approved by <@U0GROUPIE>')),
    );
    assert.equal(adminCalls('/admin/flag-svc/breaker').length, 1, 'a second click runs nothing');
    await eventually('the incident resolved', async () => (await statusOf(incident)) === 'resolved');
    // the packet is edited to show who decided
    await t.stub.waitFor((c) =>
      c.some(
        (x) =>
          x.method === 'chat.update' &&
          JSON.stringify(x.args.blocks ?? []).includes('Approved by <@U0GROUPIE>'),
      ),
    );
    const events = await eventsOf(incident);
    const refusedEvent = events.find((e) => e.type === 'approval.refused' && e.actor === 'U0RANDOM');
    assert.ok(refusedEvent, 'the unauthorised click is recorded with the user');
    assert.ok(events.some((e) => e.type === 'step.approved' && e.actor === 'U0GROUPIE'));
    assert.ok(events.some((e) => e.type === 'approval.refused' && e.actor === 'U0APPROVER'));
  });

  test('a rejected step never runs and the incident is escalated', async () => {
    admin.health.set('reject-svc', 503);
    const incident = await fire('BreakerNeeded', 'reject-svc');
    const approval = await approvalOf(incident);
    // clicked on the packet as posted, so the packet is then edited to say who rejected it
    await packetPosted(approval.id);
    await click(approval.id, 'U0APPROVER', REJECT_ACTION);
    await eventually('escalated', async () => (await statusOf(incident)) === 'escalated');
    const [step] = await stepsOf(incident);
    assert.equal(step?.status, 'rejected');
    assert.equal(adminCalls('/admin/reject-svc/breaker').length, 0);
    await t.stub.waitFor((c) =>
      c.some(
        (x) =>
          x.method === 'chat.update' &&
          JSON.stringify(x.args.blocks ?? []).includes('Rejected by <@U0APPROVER>'),
      ),
    );
  });

  test('an expired request escalates; a click on it changes nothing and says why (Postgres time)', async () => {
    admin.health.set('expire-svc', 503);
    const incident = await fire('BreakerNeeded', 'expire-svc');
    const approval = await approvalOf(incident);
    await t.query(`UPDATE approval_requests SET expires_at = now() - interval '1 second' WHERE id = $1`, [
      approval.id,
    ]);
    await click(approval.id, 'U0APPROVER');
    await eventually('the expiry answer', async () =>
      answersTo('U0APPROVER').some((x) => x.includes('expired at')),
    );
    assert.equal((await approvalOf(incident)).status, 'expired');
    await eventually('escalated', async () => (await statusOf(incident)) === 'escalated');
    assert.equal(adminCalls('/admin/expire-svc/breaker').length, 0);

    // the expiry job settles it on its own, and a job that fires early (a worker's clock ahead) waits for Postgres
    admin.health.set('expire-job-svc', 503);
    const second = await fire('BreakerNeeded', 'expire-job-svc');
    const pending = await approvalOf(second);
    assert.equal(
      await t.app.ctx.remediation.service.expire(pending.id, 0),
      false,
      'not due yet: nothing changes',
    );
    assert.equal((await approvalOf(second)).status, 'pending');
    await t.query(`UPDATE approval_requests SET expires_at = now() - interval '1 second' WHERE id = $1`, [
      pending.id,
    ]);
    assert.equal(await t.app.ctx.remediation.service.expire(pending.id, 1), true);
    assert.equal((await approvalOf(second)).status, 'expired');
    await eventually('escalated', async () => (await statusOf(second)) === 'escalated');
    const [step] = await stepsOf(second);
    assert.equal(step?.status, 'expired');
  });

  test('a P1 needs an approver other than who asked for the run', async () => {
    admin.health.set('p1-svc', 503);
    const incident = await fire('BreakerNeeded', 'p1-svc', {}, 'critical');
    const approval = await approvalOf(incident);
    await t.query(`UPDATE approval_requests SET requested_by = 'U0APPROVER' WHERE id = $1`, [approval.id]);
    await click(approval.id, 'U0APPROVER');
    await eventually('the P1 answer', async () => answersTo('U0APPROVER').some((x) => x.includes('P1')));
    assert.equal((await approvalOf(incident)).status, 'pending');
    assert.equal(adminCalls('/admin/p1-svc/breaker').length, 0);
  });

  test('a restart storm is cut at the limit: the third restart of one target in 10 minutes is refused and escalates', async () => {
    admin.fixable.add('restart-svc');
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) {
      admin.health.set('restart-svc', 503);
      const incident = await fire('RestartNeeded', 'restart-svc');
      const step = await stepIn(incident, ['verified', 'refused', 'failed', 'verification_failed']);
      outcomes.push(step.status);
      if (step.status === 'refused') {
        assert.match(step.reason ?? '', /already restarted 2 times in the last 10 minutes \(limit 2\)/);
        await eventually('escalated', async () => (await statusOf(incident)) === 'escalated');
      } else {
        await eventually('resolved', async () => (await statusOf(incident)) === 'resolved');
      }
    }
    assert.deepEqual(outcomes, ['verified', 'verified', 'refused']);
    // the limit hit is shown in the incident's thread
    await t.stub.waitFor((calls) =>
      calls.some(
        (c) =>
          c.method === 'chat.postMessage' &&
          c.args.thread_ts !== undefined &&
          /Refused restart_service \(restart_service\): limit: .*already restarted 2 times/.test(
            JSON.stringify(c.args.blocks ?? []),
          ),
      ),
    );
    const restarts = adminCalls('/admin/restart-svc/restart');
    assert.equal(restarts.length, 2, 'the deploy API got exactly two restarts');
    assert.equal(restarts[0]?.headers.authorization, 'Bearer deploy-secret-token-123');
    const steps = await t.query<StepRow>(`SELECT * FROM remediation_steps WHERE action = 'restart_service'`);
    assert.doesNotMatch(JSON.stringify(steps), /deploy-secret-token/, 'the deploy token is never stored');
  });

  test('a step whose config was tampered with after approval is refused at execution (FLUSHALL-wide pattern)', async () => {
    admin.health.set('cache-svc', 503);
    await redis.set(`ai-sre-remediation-test:${run}:session:1`, 'x');
    await redis.set(`ai-sre-remediation-test:${run}:other:1`, 'y');
    const incident = await fire('StaleSessions', 'cache-svc', { run });
    const approval = await approvalOf(incident);
    // the stored plan is changed to a pattern that would match every key
    await t.query(
      `UPDATE runbook_executions SET decision = jsonb_set(decision, '{plan,0,config,pattern}', '"*"')
        WHERE incident_id = $1`,
      [incident],
    );
    await click(approval.id, 'U0APPROVER');
    const step = await stepIn(incident, ['refused', 'succeeded', 'failed']);
    assert.equal(step.status, 'refused');
    assert.match(step.reason ?? '', /pattern/);
    assert.equal(await redis.exists(`ai-sre-remediation-test:${run}:session:1`), 1, 'nothing was flushed');
    assert.equal(await redis.exists(`ai-sre-remediation-test:${run}:other:1`), 1);
    await eventually('escalated', async () => (await statusOf(incident)) === 'escalated');
  });

  test('a fix that does not verify stops and escalates with what was tried', async () => {
    admin.health.set('nofix-svc', 503);
    const incident = await fire('BreakerNeeded', 'nofix-svc');
    const approval = await approvalOf(incident);
    await click(approval.id, 'U0APPROVER');
    const step = await stepIn(incident, ['verification_failed', 'verified', 'failed']);
    assert.equal(step.status, 'verification_failed');
    assert.equal(adminCalls('/admin/nofix-svc/breaker').length, 1);
    await eventually('escalated', async () => (await statusOf(incident)) === 'escalated');
    const escalated = (await eventsOf(incident)).find((e) => e.type === 'remediation.escalated');
    assert.ok(escalated);
    assert.match(String(escalated.data.reason), /open_breaker did not fix it/);
    assert.deepEqual(
      (escalated.data.tried as { step: string; status: string }[]).map((x) => [x.step, x.status]),
      [['open_breaker', 'verification_failed']],
    );
  });

  test('the cause is re-checked before acting: a condition that cleared is skipped, not fixed', async () => {
    admin.health.set('cleared-svc', 503);
    const incident = await fire('BreakerNeeded', 'cleared-svc');
    const approval = await approvalOf(incident);
    admin.health.set('cleared-svc', 200);
    await click(approval.id, 'U0APPROVER');
    const step = await stepIn(incident, ['skipped', 'verified', 'succeeded', 'failed']);
    assert.equal(step.status, 'skipped');
    assert.match(step.reason ?? '', /condition has cleared/);
    assert.equal(adminCalls('/admin/cleared-svc/breaker').length, 0);
  });

  test('a step found started (its worker died mid-step) is never run again: it is verified or escalated', async () => {
    admin.health.set('crash-svc', 503);
    const incident = await fire('BreakerNeeded', 'crash-svc');
    const approval = await approvalOf(incident);
    const [step] = await stepsOf(incident);
    assert.ok(step);
    // what a worker leaves when it dies after recording `started` and before recording the outcome
    await t.query(`UPDATE remediation_steps SET status = 'started', started_at = now() WHERE id = $1`, [
      step.id,
    ]);
    await t.query(
      `UPDATE approval_requests SET status = 'approved', decided_by = 'U0APPROVER' WHERE id = $1`,
      [approval.id],
    );
    // the job is delivered again (stalled-job recovery re-runs the same job)
    const { remediateStepJob } = await import('../src/remediation/jobs/remediation-jobs.js');
    await t.app.ctx.queues.enqueue(remediateStepJob, {
      executionId: step.execution_id,
      position: 0,
      phase: 'approved',
    });
    await eventually('the outcome recorded unknown', async () =>
      (await eventsOf(incident)).some((e) => e.type === 'step.outcome_unknown'),
    );
    const final = await stepIn(incident, ['verification_failed', 'verified']);
    assert.equal(final.status, 'verification_failed', 'verified (still broken), not re-run');
    assert.equal(adminCalls('/admin/crash-svc/breaker').length, 0, 'the action was not run a second time');
    await eventually('escalated', async () => (await statusOf(incident)) === 'escalated');
  });

  test('the sweep re-enqueues what Redis lost: an approved step that never ran, a request past its expiry', async () => {
    admin.health.set('sweep-svc', 503);
    admin.fixable.add('sweep-svc');
    const incident = await fire('BreakerNeeded', 'sweep-svc');
    const approval = await approvalOf(incident);
    const [step] = await stepsOf(incident);
    assert.ok(step);
    // the approval committed, but its step job never reached Redis
    await t.query(
      `UPDATE approval_requests SET status = 'approved', decided_by = 'U0APPROVER' WHERE id = $1`,
      [approval.id],
    );
    await t.query(
      `UPDATE remediation_steps SET status = 'approved', updated_at = now() - interval '3 minutes' WHERE id = $1`,
      [step.id],
    );
    admin.health.set('sweep-expire-svc', 503);
    const other = await fire('BreakerNeeded', 'sweep-expire-svc');
    const pending = await approvalOf(other);
    await t.query(`UPDATE approval_requests SET expires_at = now() - interval '1 minute' WHERE id = $1`, [
      pending.id,
    ]);

    const { sweepRemediation } = await import('../src/remediation/sweep.js');
    const enqueued = await sweepRemediation(
      { db: t.app.ctx.db, queues: t.app.ctx.queues, actionTimeoutMs: 120_000 },
      'test',
    );
    assert.ok(enqueued >= 2, `enqueued ${enqueued}`);
    const ran = await stepIn(incident, ['verified', 'verification_failed', 'failed']);
    assert.equal(ran.status, 'verified');
    assert.equal(adminCalls('/admin/sweep-svc/breaker').length, 1);
    await eventually('the stale request expired', async () => (await approvalOf(other)).status === 'expired');
    await eventually('escalated', async () => (await statusOf(other)) === 'escalated');
    // a second sweep finds nothing owed for these two
    await eventually('resolved', async () => (await statusOf(incident)) === 'resolved');
    await sweepRemediation(
      { db: t.app.ctx.db, queues: t.app.ctx.queues, actionTimeoutMs: 120_000 },
      'test-2',
    );
    assert.equal(adminCalls('/admin/sweep-svc/breaker').length, 1, 'nothing ran twice');
  });

  test('a rollback announces itself, rolls back a recent deploy only, and refuses one older than the window', async () => {
    admin.health.set('rollback-svc', 503);
    admin.fixable.add('rollback-svc');
    const deploy = await t.webhook('/webhooks/deploy', {
      service: 'rollback-svc',
      version: '2.0.0',
      previousVersion: '1.9.9',
    });
    assert.equal(deploy.status, 202);
    const incident = await fire('BadDeploy', 'rollback-svc', { note: '<!channel> v2.0.0 is broken' });
    // the notify step ran on its own (communication), in the incident's thread, with Slack markup neutralised
    const announce = await stepIn(incident, ['succeeded', 'verified', 'failed', 'refused']);
    assert.equal(announce.step_id, 'announce');
    assert.notEqual(announce.status, 'failed');
    const posted = await eventually('the announcement', async () =>
      t.stub
        .callsTo('chat.postMessage')
        .find((c) => String(c.args.text).startsWith('Rolling back rollback-svc')),
    );
    assert.equal(posted.args.text, 'Rolling back rollback-svc: &lt;!channel&gt; v2.0.0 is broken');
    assert.ok(posted.args.thread_ts, 'in the incident thread');
    const approval = await approvalOf(incident);
    await click(approval.id, 'U0APPROVER');
    await eventually('resolved', async () => (await statusOf(incident)) === 'resolved');
    assert.equal(adminCalls('/admin/rollback-svc/rollback').length, 1);
    assert.deepEqual(JSON.parse(adminCalls('/admin/rollback-svc/rollback')[0]?.body ?? '{}').to, 'previous');

    // a deploy from two hours ago is outside the 60-minute window: refused, escalated, nothing called
    admin.health.set('stale-deploy-svc', 503);
    await t.query(
      `INSERT INTO deploy_events (service, version, deployed_at, payload) VALUES ('stale-deploy-svc', '3.1.0', now() - interval '2 hours', '{}')`,
    );
    const stale = await fire('BadDeploy', 'stale-deploy-svc', { note: 'old deploy' });
    const staleApproval = await approvalOf(stale);
    await click(staleApproval.id, 'U0APPROVER');
    const refused = await eventually('the rollback step settled', async () =>
      (await stepsOf(stale)).find(
        (x) => x.step_id === 'roll_back' && !['approved', 'awaiting_approval'].includes(x.status),
      ),
    );
    assert.equal(refused.status, 'refused');
    assert.match(refused.reason ?? '', /no deploy of stale-deploy-svc in the last 60 minutes/);
    assert.equal(adminCalls('/admin/stale-deploy-svc/rollback').length, 0);
    await eventually('escalated', async () => (await statusOf(stale)) === 'escalated');
  });

  test('at most two remediation attempts per incident: a third run is refused before it asks anyone', async () => {
    admin.health.set('attempts-svc', 503);
    const incident = await fire('BreakerNeeded', 'attempts-svc');
    const attempt = async (n: number) => {
      const approval = await eventually(`approval of attempt ${n}`, async () => {
        const rows = await t.query<{ id: number }>(
          `SELECT id FROM approval_requests WHERE incident_id = $1 AND status = 'pending'`,
          [incident],
        );
        return rows[0];
      });
      await click(approval.id, 'U0APPROVER');
      await eventually(`attempt ${n} to fail verification`, async () => {
        const rows = await t.query(
          `SELECT 1 FROM remediation_steps WHERE incident_id = $1 AND status = 'verification_failed'`,
          [incident],
        );
        return rows.length === n;
      });
    };
    await attempt(1);
    const again = () =>
      sendSlashCommand(t.baseUrl, SIGNING_SECRET, {
        command: '/incident',
        text: `run breaker INC-${incident}`,
        user_id: 'U0ONCALL',
      });
    await again();
    await attempt(2);
    await again();
    const third = await eventually('the third run refused', async () => {
      const rows = await t.query<StepRow>(
        `SELECT * FROM remediation_steps WHERE incident_id = $1 AND status = 'refused'`,
        [incident],
      );
      return rows[0];
    });
    assert.match(third.reason ?? '', /already had 2 remediation attempts \(at most 2\)/);
    assert.equal(adminCalls('/admin/attempts-svc/breaker').length, 2);
    const pending = await t.query(
      `SELECT 1 FROM approval_requests WHERE incident_id = $1 AND status = 'pending'`,
      [incident],
    );
    assert.equal(pending.length, 0, 'nobody was asked a third time');
  });

  test('the kill switch thrown during a run: an approved step waiting to run is skipped, and it escalates', async () => {
    admin.health.set('killrun-svc', 503);
    admin.fixable.add('killrun-svc');
    const incident = await fire('BreakerNeeded', 'killrun-svc');
    const approval = await approvalOf(incident);
    const slash = (text: string) =>
      sendSlashCommand(t.baseUrl, SIGNING_SECRET, {
        command: '/incident',
        text,
        user_id: 'U0ADMIN',
        channel_id: 'C0OPS',
      });
    const off = await slash('automation off');
    assert.match(JSON.parse(off.body).text, /Automation is off for every service/);
    try {
      await click(approval.id, 'U0APPROVER');
      const step = await stepIn(incident, ['skipped', 'verified', 'succeeded', 'failed']);
      assert.equal(step.status, 'skipped');
      assert.match(step.reason ?? '', /automation is off \(by U0ADMIN\)/);
      assert.equal(adminCalls('/admin/killrun-svc/breaker').length, 0, 'nothing ran');
      await eventually('escalated', async () => (await statusOf(incident)) === 'escalated');
    } finally {
      await slash('automation on');
    }
    const [global] = await t.query<{ enabled: boolean }>(
      `SELECT enabled FROM automation_switches WHERE scope = '*'`,
    );
    assert.equal(global?.enabled, true);
  });
});
