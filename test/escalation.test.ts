import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eventually, SIGNING_SECRET, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * The escalation flow end to end: an incident the runbook cannot fix is escalated by the decision job, the owning
 * team's on-call person is paged (Slack DM with the context packet and buttons, a mention in the thread, or
 * PagerDuty Events v2), the policy is walked while nobody acknowledges, and Acknowledge / Reassign / Resolve act on it.
 * One policy minute is 250 ms here, so a 2-minute level waits half a second.
 */

const MINUTE_MS = 250;

const ONCALL = (quiet: { from: string; to: string }) => `
teams:
  payments:
    members:
      - { id: alice, slack: U0ALICE01, pagerduty: { user: PALICE1 } }
      - { id: bob, slack: U0BOB0001 }
      - { id: carol, slack: U0CAROL01 }
    rotations:
      - { name: primary, type: daily, handoff: "00:00", timezone: UTC, start: 2026-01-01, members: [alice] }
      - { name: secondary, type: daily, handoff: "00:00", timezone: UTC, start: 2026-01-01, members: [bob] }
    policy: payments
    quietHours: { from: "${quiet.from}", to: "${quiet.to}", timezone: UTC, severities: [P3, P4] }
services:
  payment-service: payments
  checkout: payments
  ledger: payments
  billing: payments
  refunds: payments
policies:
  payments:
    levels:
      - targets: [{ oncall: payments, rotation: primary }]
        delayMinutes: 2
      - targets: [{ oncall: payments, rotation: secondary }]
        delayMinutes: 2
    repeat: 1
`;

/** "HH:MM" UTC, `minutes` from now */
function utcClock(minutes: number): string {
  const d = new Date(Date.now() + minutes * 60_000);
  return `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
}

interface Received {
  body: Record<string, unknown>;
  at: number;
}

/** A PagerDuty Events API v2 stand-in on loopback: records every event, answers 202 (or what it is told first). */
async function startPagerdutyStandIn(): Promise<{
  url: string;
  received: Received[];
  answerNext(...statuses: number[]): void;
  close(): Promise<void>;
}> {
  const received: Received[] = [];
  const queued: number[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url !== '/v2/enqueue') {
        res.writeHead(404).end();
        return;
      }
      const status = queued.shift() ?? 202;
      received.push({ body: JSON.parse(Buffer.concat(chunks).toString('utf8')), at: Date.now() });
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { dedup_key?: string };
      res.writeHead(status, {
        'content-type': 'application/json',
        ...(status === 429 ? { 'retry-after': '0' } : {}),
      });
      res.end(
        JSON.stringify(
          status === 202
            ? { status: 'success', message: 'Event processed', dedup_key: body.dedup_key }
            : { status: 'throttled', message: 'Too many requests' },
        ),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    answerNext: (...statuses) => queued.push(...statuses),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface EventRow {
  id: number;
  type: string;
  actor: string;
  data: Record<string, unknown>;
}

interface EscalationRow {
  id: number;
  incident_id: number;
  status: string;
  category: string;
  team: string | null;
  step: number;
  policy: { name: string; levels: unknown[]; repeat: number };
  acked_by: string | null;
}

async function startEnvironment(
  env: Record<string, string>,
  dir: string,
  healthPort: number,
): Promise<TestApp> {
  await writeFile(
    join(dir, 'targets.yml'),
    [
      'services:',
      ...['payment-service', 'checkout', 'ledger', 'billing', 'refunds'].flatMap((s) => [
        `  ${s}:`,
        `    health_url: http://127.0.0.1:${healthPort}/health`,
      ]),
    ].join('\n'),
  );
  // the health check fails: the default triage runbook escalates to the service's owner
  const t = await startTestApp({
    RUNBOOKS_DIR: 'test/fixtures/runbooks-e2e',
    TARGETS_FILE: join(dir, 'targets.yml'),
    SAFETY_FILE: join(dir, 'safety.yml'),
    ONCALL_FILE: join(dir, 'oncall.yml'),
    SLACK_SYNC_DEBOUNCE_MS: '0',
    ESCALATION_MINUTE_MS: String(MINUTE_MS),
    PAGER_BACKOFF_BASE_MS: '10',
    ...env,
  });
  t.stub.connectBot({ url: t.baseUrl, signingSecret: SIGNING_SECRET });
  return t;
}

describe('escalation: paging through Slack', () => {
  let t: TestApp;
  let dir: string;
  let health: Server;

  before(async () => {
    health = createServer((_req, res) => res.writeHead(503).end('down'));
    await new Promise<void>((r) => health.listen(0, '127.0.0.1', r));
    dir = await mkdtemp(join(tmpdir(), 'ai-sre-escalation-'));
    await writeFile(join(dir, 'safety.yml'), 'mode: shadow\n');
    // quiet hours around now: P3/P4 are held for the digest, P1/P2 page
    await writeFile(join(dir, 'oncall.yml'), ONCALL({ from: utcClock(-60), to: utcClock(120) }));
    t = await startEnvironment(
      { PAGERS: 'slack', PAGER_MAX_ATTEMPTS: '1' },
      dir,
      (health.address() as AddressInfo).port,
    );
  });
  after(async () => {
    await t?.close();
    await new Promise((r) => health.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  const openIncident = async (service: string, severity = 'critical'): Promise<number> => {
    const res = await t.webhook('/webhooks/generic', {
      name: `${service}Down`,
      service,
      severity,
      summary: `${service} health check fails (password=hunter2)`,
    });
    assert.equal(res.status, 202);
    return eventually(
      'the incident',
      async () =>
        (await t.query<{ id: number }>('SELECT id FROM incidents WHERE service = $1', [service]))[0]?.id,
    );
  };
  const escalationsOf = (incidentId: number) =>
    t.query<EscalationRow>('SELECT * FROM escalations WHERE incident_id = $1 ORDER BY id', [incidentId]);
  const eventsOf = (incidentId: number, prefix: string) =>
    t.query<EventRow>(
      `SELECT id, type, actor, data FROM timeline_events WHERE incident_id = $1 AND type LIKE $2 ORDER BY id`,
      [incidentId, `${prefix}%`],
    );
  const dmsTo = (user: string) =>
    t.stub.callsTo('chat.postMessage').filter((c) => c.args.channel === `D${user.slice(1)}`);

  test('silence walks the policy: level 1, level 2, then both again, then the channel is asked', async () => {
    const id = await openIncident('payment-service');
    const [escalation] = await eventually('the escalation', async () => {
      const rows = await escalationsOf(id);
      return rows.length > 0 ? rows : null;
    });
    assert.ok(escalation);
    assert.equal(escalation.team, 'payments', 'routed to the service owner');
    assert.equal(
      escalation.category,
      'unknown_type',
      'only the default triage ran: no runbook knows this failure',
    );
    assert.equal(escalation.policy.name, 'payments', 'the team policy, snapshotted');
    assert.equal(escalation.policy.levels.length, 2);

    // a mid-incident edit of the policy (here: in memory) must not change the walk
    const removed = t.app.ctx.oncall?.policies.payments?.levels.splice(1, 1) ?? [];

    const done = await eventually(
      'the walk to end',
      async () => ((await escalationsOf(id))[0]?.status === 'exhausted' ? escalationsOf(id) : null),
      30_000,
    );
    assert.equal(done[0]?.step, 4, 'two levels × two cycles');
    t.app.ctx.oncall?.policies.payments?.levels.push(...removed);
    const pages = await eventsOf(id, 'page.sent');
    assert.deepEqual(
      pages.map((p) => [
        p.data.level,
        p.data.cycle,
        (p.data.targets as { name: string }[]).map((x) => x.name),
      ]),
      [
        [1, 1, ['alice']],
        [2, 1, ['bob']],
        [1, 2, ['alice']],
        [2, 2, ['bob']],
      ],
    );
    assert.equal((await eventsOf(id, 'escalation.exhausted')).length, 1);

    // each page is a DM carrying the packet and the buttons with this escalation's id
    const dm = dmsTo('U0ALICE01')[0];
    assert.ok(dm, 'alice got a DM');
    const blocks = JSON.stringify(dm.args.blocks);
    assert.match(blocks, /page_acknowledge/);
    assert.match(blocks, new RegExp(`"value":"${escalation.id}"`));
    assert.doesNotMatch(blocks, /hunter2/, 'secrets are redacted from the page');
    assert.equal(dmsTo('U0ALICE01').length, 2, 'alice paged once per cycle');
    assert.equal(dmsTo('U0BOB0001').length, 2);

    // the thread: a mention of each paged person, the packet, and the call for help at the end
    const [card] = await t.query<{ channel: string; ts: string }>(
      'SELECT channel, ts FROM slack_messages WHERE incident_id = $1',
      [id],
    );
    assert.ok(card);
    const thread = t.stub.callsTo('chat.postMessage').filter((c) => c.args.thread_ts === card.ts);
    const texts = thread.map((c) => String(c.args.text));
    assert.ok(
      texts.some((x) => x.includes('<@U0ALICE01>')),
      'alice is mentioned in the thread',
    );
    assert.ok(texts.some((x) => x.includes('<!here>') && x.includes('Nobody acknowledged')));
    await eventually(
      'the packet in the thread',
      async () =>
        (
          await t.query('SELECT 1 FROM slack_thread_messages WHERE incident_id = $1 AND key = $2', [
            id,
            `escalation:${escalation.id}`,
          ])
        ).length > 0,
    );
    const attempts = await t.query<{ pager: string; outcome: string }>(
      `SELECT pager, outcome FROM page_attempts WHERE incident_id = $1 ORDER BY id`,
      [id],
    );
    assert.equal(attempts.length, 4);
    assert.ok(attempts.every((a) => a.pager === 'slack' && a.outcome === 'succeeded'));
  });

  test('/incident page: a person pages again after the walk ran out; an escalation in progress is not doubled', async () => {
    const [exhausted] = await t.query<{ incident_id: number }>(
      `SELECT incident_id FROM escalations WHERE status = 'exhausted' ORDER BY id LIMIT 1`,
    );
    assert.ok(exhausted, 'the first test left an exhausted escalation');
    const id = exhausted.incident_id;
    const before = (await eventsOf(id, 'page.sent')).length;
    const answer = await t.stub.command(`page INC-${id} team=payments the error rate is climbing`, {
      user: 'U0BOB0001',
    });
    assert.ok(answer);
    const rows = await eventually('a manual escalation', async () => {
      const list = await escalationsOf(id);
      return list.length === 2 && (await eventsOf(id, 'page.sent')).length > before ? list : null;
    });
    assert.equal(rows[1]?.category, 'manual');
    assert.equal(rows[1]?.team, 'payments');
    const [requested] = await eventsOf(id, 'page.requested');
    assert.equal(requested?.actor, 'U0BOB0001');
    assert.equal(requested?.data.note, 'the error rate is climbing');
    const [started] = (await eventsOf(id, 'escalation.started')).slice(-1);
    assert.match(String(started?.data.reason), /U0BOB0001 asked for a person: the error rate is climbing/);

    // paging again while that walk is running is refused, naming who is being paged
    const again = await t.app.ctx.escalations.page({
      incidentId: id,
      userId: 'U0BOB0001',
      team: null,
      note: '',
    });
    assert.equal(again.ok, false);
    assert.match(again.message, /already escalated: paging <@U0ALICE01>/);
    assert.equal((await escalationsOf(id)).length, 2);
    const unknownTeam = await t.app.ctx.escalations.page({
      incidentId: id,
      userId: 'U0BOB0001',
      team: 'dba',
      note: '',
    });
    assert.match(unknownTeam.message, /no team `dba`.*teams: payments/);
    // let the walk run out before the next test
    await eventually(
      'the second walk to end',
      async () => (await escalationsOf(id))[1]?.status === 'exhausted',
      30_000,
    );
  });

  test('a Slack outage retries level 1 until Slack answers, instead of running through every level', async () => {
    // one try of the Slack pager is one call here (PAGER_MAX_ATTEMPTS=1): two tries fail, the level is tried again
    // every half policy-minute inside its 2-minute delay, and the third gets through
    t.stub.failNext('conversations.open', 2, { status: 503 });
    const id = await openIncident('refunds');
    const pages = await eventually(
      'level 1 paged after the outage',
      async () => {
        const rows = await eventsOf(id, 'page.sent');
        return rows.length > 0 ? rows : null;
      },
      30_000,
    );
    assert.equal(pages[0]?.data.level, 1, 'still level 1: the outage did not push the walk on');
    assert.deepEqual(
      ((pages[0]?.data.targets ?? []) as { name: string }[]).map((x) => x.name),
      ['alice'],
    );
    const failed = await eventsOf(id, 'page.failed');
    assert.equal(failed.length, 1, 'one failure recorded, not one per retry');
    assert.equal(failed[0]?.data.retrying, true);
    // every try was claimed and settled: one sent row for alice at step 0
    const claims = await t.query<{ step: number; target_key: string; status: string }>(
      `SELECT p.step, p.target_key, p.status FROM escalation_pages p JOIN escalations e ON e.id = p.escalation_id
        WHERE e.incident_id = $1 ORDER BY p.step`,
      [id],
    );
    assert.deepEqual(claims[0], { step: 0, target_key: 'U0ALICE01', status: 'sent' });
    // stop this walk so its timers do not run into the next test
    const [row] = await escalationsOf(id);
    assert.ok(row);
    assert.equal(
      (await t.app.ctx.escalations.resolve({ escalationId: row.id, userId: 'U0ALICE01' })).ok,
      true,
    );
  });

  test('an acknowledgement at level 1 stops the walk; the pending timer is removed', async () => {
    const id = await openIncident('checkout');
    await eventually('level 1 paged', async () => (await eventsOf(id, 'page.sent')).length === 1);
    const [escalation] = await escalationsOf(id);
    assert.ok(escalation);
    const dm = dmsTo('U0ALICE01').findLast((c) =>
      JSON.stringify(c.args.blocks).includes(`"value":"${escalation.id}"`),
    );
    assert.ok(dm, 'the DM of this escalation');
    const answer = await t.stub.click({
      channel: String(dm.args.channel),
      ts: await dmTs(t, String(dm.args.channel), escalation.id),
      actionId: 'page_acknowledge',
      user: 'U0ALICE01',
    });
    assert.ok(answer);
    const acked = await eventually('acknowledged', async () =>
      (await escalationsOf(id))[0]?.status === 'acknowledged' ? (await escalationsOf(id))[0] : null,
    );
    assert.equal(acked.acked_by, 'U0ALICE01');
    const ackEvents = await eventsOf(id, 'page.acknowledged');
    assert.equal(ackEvents.length, 1);
    assert.equal(ackEvents[0]?.actor, 'U0ALICE01');
    // well past level 1's wait: nobody else is paged
    await new Promise((r) => setTimeout(r, 4 * MINUTE_MS * 2));
    assert.equal((await eventsOf(id, 'page.sent')).length, 1, 'no level 2 after the acknowledgement');
    const delayed = await t.app.ctx.queues.depths();
    assert.equal(delayed.escalations.delayed, 0, 'the level 2 timer was removed');
    // a second click is answered, and changes nothing
    const again = await t.app.ctx.escalations.acknowledge({
      escalationId: escalation.id,
      userId: 'U0BOB0001',
    });
    assert.equal(again.ok, false);
    assert.match(again.message, /already acknowledged by <@U0ALICE01>/);
  });

  test('Reassign pages the chosen person; Resolve resolves the incident and closes the escalation', async () => {
    const id = await openIncident('ledger');
    await eventually('level 1 paged', async () => (await eventsOf(id, 'page.sent')).length === 1);
    const [first] = await escalationsOf(id);
    assert.ok(first);
    const moved = await t.app.ctx.escalations.reassign({
      escalationId: first.id,
      userId: 'U0ALICE01',
      to: 'U0CAROL01',
    });
    assert.equal(moved.ok, true, moved.message);
    const rows = await eventually('carol paged', async () => {
      const list = await escalationsOf(id);
      return list.length === 2 && (await eventsOf(id, 'page.sent')).length === 2 ? list : null;
    });
    assert.equal(rows[0]?.status, 'reassigned');
    assert.equal(rows[1]?.status, 'paging');
    const pages = await eventsOf(id, 'page.sent');
    assert.deepEqual(
      ((pages[1]?.data.targets ?? []) as { name: string }[]).map((x) => x.name),
      ['carol'],
    );
    assert.ok(dmsTo('U0CAROL01').length >= 1, 'carol got the DM');

    const resolved = await t.app.ctx.escalations.resolve({ escalationId: first.id, userId: 'U0CAROL01' });
    assert.equal(resolved.ok, true, resolved.message);
    const [incident] = await t.query<{ status: string }>('SELECT status FROM incidents WHERE id = $1', [id]);
    assert.equal(incident?.status, 'resolved');
    const after = await escalationsOf(id);
    assert.deepEqual(
      after.map((e) => e.status),
      ['reassigned', 'resolved'],
    );
    const [resolvedEvent] = await t.query<EventRow>(
      `SELECT id, type, actor, data FROM timeline_events WHERE incident_id = $1 AND type = 'incident.resolved'`,
      [id],
    );
    assert.equal(resolvedEvent?.actor, 'U0CAROL01');
    await new Promise((r) => setTimeout(r, 4 * MINUTE_MS * 2));
    assert.equal((await eventsOf(id, 'page.sent')).length, 2, 'nothing paged after the resolution');
  });

  test('quiet hours: a P3 at night is posted, not paged, and goes into the morning digest', async () => {
    const id = await openIncident('billing', 'warning');
    const [escalation] = await eventually('the escalation', async () => {
      const rows = await escalationsOf(id);
      return rows.length > 0 ? rows : null;
    });
    assert.equal(escalation?.status, 'deferred');
    assert.equal((await eventsOf(id, 'page.deferred')).length, 1);
    const before = t.stub.callsTo('chat.postMessage').length;
    // morning comes
    await t.query(`UPDATE escalations SET next_at = now() - interval '1 second' WHERE incident_id = $1`, [
      id,
    ]);
    assert.equal(await t.app.ctx.escalations.postDigests(), 1);
    const digest = t.stub
      .callsTo('chat.postMessage')
      .slice(before)
      .find((c) => String(c.args.text).includes('Held back overnight'));
    assert.ok(digest, 'the digest was posted in the channel');
    assert.equal(digest.args.thread_ts, undefined, 'in the channel, not a thread');
    assert.match(JSON.stringify(digest.args.blocks), new RegExp(`INC-${id}`));
    assert.match(JSON.stringify(digest.args.blocks), /<@U0ALICE01>/, 'the on-call person is mentioned');
    assert.equal((await escalationsOf(id))[0]?.status, 'digested');
    assert.equal((await eventsOf(id, 'page.sent')).length, 0, 'nobody was paged');
    assert.equal(
      dmsTo('U0ALICE01').filter((c) => JSON.stringify(c.args.blocks ?? []).includes(`INC-${id}`)).length,
      0,
    );
  });
});

/** The ts of the DM in `channel` carrying escalation `id`'s buttons, as the stand-in stored it. */
async function dmTs(t: TestApp, channel: string, id: number): Promise<string> {
  const message = t.stub.conversations
    .history(channel)
    .findLast((m) => JSON.stringify(m.blocks ?? []).includes(`"value":"${id}"`));
  assert.ok(message, `a DM in ${channel} for escalation ${id}`);
  return message.ts;
}

describe('escalation: paging through PagerDuty', () => {
  let t: TestApp;
  let dir: string;
  let health: Server;
  let pagerduty: Awaited<ReturnType<typeof startPagerdutyStandIn>>;

  before(async () => {
    health = createServer((_req, res) => res.writeHead(503).end('down'));
    await new Promise<void>((r) => health.listen(0, '127.0.0.1', r));
    pagerduty = await startPagerdutyStandIn();
    dir = await mkdtemp(join(tmpdir(), 'ai-sre-escalation-pd-'));
    await writeFile(join(dir, 'safety.yml'), 'mode: shadow\n');
    await writeFile(join(dir, 'oncall.yml'), ONCALL({ from: utcClock(-120), to: utcClock(-60) }));
    t = await startEnvironment(
      {
        PAGERS: 'pagerduty,slack',
        PAGERDUTY_ROUTING_KEY: 'R0UTINGKEY0000000000000000000000',
        PAGERDUTY_EVENTS_URL: pagerduty.url,
      },
      dir,
      (health.address() as AddressInfo).port,
    );
  });
  after(async () => {
    await t?.close();
    await pagerduty?.close();
    await new Promise((r) => health.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  test('trigger (after a 429), acknowledge and resolve reach PagerDuty with one dedup_key', async () => {
    pagerduty.answerNext(429);
    const res = await t.webhook('/webhooks/generic', {
      name: 'RefundsDown',
      service: 'refunds',
      severity: 'critical',
      summary: 'refunds fail; token xoxb-1234567890-abcdefghij',
    });
    assert.equal(res.status, 202);
    const id = await eventually(
      'the incident',
      async () =>
        (await t.query<{ id: number }>(`SELECT id FROM incidents WHERE service = 'refunds'`))[0]?.id,
    );
    await eventually('the trigger delivered', async () => pagerduty.received.length >= 2);
    const [throttled, trigger] = pagerduty.received;
    assert.deepEqual(throttled?.body, trigger?.body, 'the retry sends the same event');
    const body = trigger?.body as {
      routing_key: string;
      event_action: string;
      dedup_key: string;
      payload: { summary: string; severity: string; source: string; custom_details: Record<string, unknown> };
    };
    assert.equal(body.routing_key, 'R0UTINGKEY0000000000000000000000');
    assert.equal(body.event_action, 'trigger');
    assert.equal(body.dedup_key, `ai-sre-incident-${id}`);
    assert.equal(body.payload.severity, 'critical');
    assert.equal(body.payload.source, 'refunds');
    assert.match(body.payload.summary, new RegExp(`INC-${id} needs a person`));
    assert.ok(body.payload.summary.length <= 1024);
    assert.doesNotMatch(JSON.stringify(body), /xoxb-1234567890/, 'the token is redacted');
    const attempts = await eventually('the attempts stored', async () => {
      const rows = await t.query<{ pager: string; outcome: string; http_status: number }>(
        `SELECT pager, outcome, http_status FROM page_attempts WHERE incident_id = $1 ORDER BY id`,
        [id],
      );
      return rows.length >= 2 ? rows : null;
    });
    assert.deepEqual(
      attempts.map((a) => [a.pager, a.outcome, a.http_status]),
      [
        ['pagerduty', 'failed_retryable', 429],
        ['pagerduty', 'succeeded', 202],
      ],
    );

    const [escalation] = await t.query<EscalationRow>('SELECT * FROM escalations WHERE incident_id = $1', [
      id,
    ]);
    assert.ok(escalation);
    // Acknowledge from the packet in the incident thread
    const packet = await eventually(
      'the packet in the thread',
      async () =>
        (
          await t.query<{ channel: string; ts: string }>(
            `SELECT channel, ts FROM slack_thread_messages WHERE incident_id = $1 AND key = $2`,
            [id, `escalation:${escalation.id}`],
          )
        )[0],
    );
    await t.stub.click({
      channel: packet.channel,
      ts: packet.ts,
      actionId: 'page_acknowledge',
      user: 'U0ALICE01',
    });
    await eventually('the acknowledge event', async () =>
      pagerduty.received.some((r) => r.body.event_action === 'acknowledge'),
    );
    const ack = pagerduty.received.find((r) => r.body.event_action === 'acknowledge');
    assert.deepEqual(ack?.body, {
      routing_key: 'R0UTINGKEY0000000000000000000000',
      event_action: 'acknowledge',
      dedup_key: `ai-sre-incident-${id}`,
    });
    // the packet in the thread is edited to say who acknowledged
    await eventually('the packet edited', async () =>
      t.stub
        .callsTo('chat.update')
        .some((c) => c.args.ts === packet.ts && JSON.stringify(c.args.blocks).includes('U0ALICE01')),
    );

    const resolved = await t.app.ctx.escalations.resolve({
      escalationId: escalation.id,
      userId: 'U0ALICE01',
    });
    assert.equal(resolved.ok, true);
    await eventually('the resolve event', async () =>
      pagerduty.received.some((r) => r.body.event_action === 'resolve'),
    );
    const resolve = pagerduty.received.find((r) => r.body.event_action === 'resolve');
    assert.equal(resolve?.body.dedup_key, `ai-sre-incident-${id}`);
  });
});
