import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildAlert, buildAlertmanagerGroup } from './helpers/builders.js';
import { eventually, startTestApp, type TestApp } from './helpers/test-app.js';

interface IncidentRow {
  id: number;
  service: string;
  status: string;
  severity: string;
  alert_count: number;
  resolved_at: Date | null;
}

async function cardTs(t: TestApp, service: string): Promise<string> {
  const [row] = await t.query<{ ts: string }>(
    'SELECT m.ts FROM slack_messages m JOIN incidents i ON i.id = m.incident_id WHERE i.service = $1',
    [service],
  );
  assert.ok(row, `a card for ${service}`);
  return row.ts;
}

const blocksText = (args: Record<string, unknown>) => JSON.stringify(args.blocks ?? []);

describe('Alertmanager group → incident → Slack card', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => {
    await t.close();
  });

  const pool = [
    buildAlert({ name: 'PostgresConnectionPoolExhausted', service: 'payment-service', instance: 'db-1' }),
    buildAlert({ name: 'HighErrorRate', service: 'payment-service', severity: 'warning', instance: 'api-1' }),
  ];
  const firing = buildAlertmanagerGroup(pool);

  test('a group with two firing alerts opens one incident and posts one card', async () => {
    const res = await t.webhook('/webhooks/alertmanager', firing);
    assert.equal(res.status, 202);
    assert.equal(res.json.alerts, 2);

    const incidents = await t.query<IncidentRow>('SELECT * FROM incidents');
    assert.equal(incidents.length, 1);
    const [incident] = incidents;
    assert.equal(incident?.service, 'payment-service');
    assert.equal(incident?.status, 'open');
    assert.equal(incident?.severity, 'critical');
    assert.equal(incident?.alert_count, 2);

    const deliveries = await t.query<{ source: string; payload: { groupKey: string }; alert_count: number }>(
      'SELECT source, payload, alert_count FROM alert_deliveries',
    );
    assert.equal(deliveries.length, 1);
    assert.equal(deliveries[0]?.payload.groupKey, firing.groupKey, 'raw payload kept');

    const events = await t.query<{ type: string; actor: string }>(
      'SELECT type, actor FROM timeline_events ORDER BY id',
    );
    assert.deepEqual(
      events.map((e) => e.type),
      ['incident.opened', 'alert.attached'],
    );
    assert.equal(events[0]?.actor, 'alertmanager');

    await t.stub.waitFor((calls) => calls.some((c) => c.method === 'chat.postMessage'));
    await t.drained();
    const posts = t.stub.callsTo('chat.postMessage');
    assert.equal(posts.length, 1, 'exactly one card');
    const card = posts[0]?.args ?? {};
    assert.equal(card.channel, '#payments-incidents', 'routed to the service channel');
    assert.equal(card.thread_ts, undefined);
    assert.match(blocksText(card), /INC-\d+ · PostgresConnectionPoolExhausted/);
    assert.match(blocksText(card), /payment-service/);
    assert.match(blocksText(card), /\*Alerts\*.*2/s);

    const messages = await t.query<{ channel: string; ts: string }>('SELECT channel, ts FROM slack_messages');
    assert.equal(messages.length, 1);
    assert.equal(messages[0]?.channel, '#payments-incidents');
  });

  test('the same payload re-delivered changes nothing', async () => {
    const before = await t.query('SELECT * FROM incidents ORDER BY id');
    const eventsBefore = await t.query('SELECT id FROM timeline_events');
    const callsBefore = t.stub.calls.length;

    const res = await t.webhook('/webhooks/alertmanager', firing);
    assert.equal(res.status, 202);
    assert.equal(res.json.duplicates, 2);
    assert.deepEqual(res.json.opened, []);
    await t.drained();

    assert.deepEqual(await t.query('SELECT * FROM incidents ORDER BY id'), before);
    assert.equal((await t.query('SELECT id FROM timeline_events')).length, eventsBefore.length);
    assert.equal(t.stub.calls.length, callsBefore, 'no Slack call for a duplicate');
    const counts = await t.query<{ receive_count: number }>('SELECT receive_count FROM incident_alerts');
    assert.deepEqual(
      counts.map((c) => c.receive_count),
      [2, 2],
      'the re-delivery is counted on the alerts',
    );
  });

  test('another alert of the same service joins the incident and is posted in the thread', async () => {
    const extra = buildAlertmanagerGroup([
      buildAlert({ name: 'SlowQueries', service: 'payment-service', severity: 'warning' }),
    ]);
    const res = await t.webhook('/webhooks/alertmanager', extra);
    assert.equal(res.status, 202);
    const incidents = await t.query<IncidentRow>('SELECT * FROM incidents');
    assert.equal(incidents.length, 1);
    assert.equal(incidents[0]?.alert_count, 3);

    const ts = await cardTs(t, 'payment-service');
    const reply = await eventually('thread reply', async () =>
      t.stub.callsTo('chat.postMessage').find((c) => c.args.thread_ts === ts),
    );
    assert.match(String(reply.args.text), /SlowQueries/);
    await eventually('card edited with 3 alerts', async () =>
      t.stub.callsTo('chat.update').find((c) => /\*Alerts\*.*3/s.test(blocksText(c.args))),
    );
  });

  test('an alert of another service opens a second incident', async () => {
    const other = buildAlertmanagerGroup([buildAlert({ name: 'DiskFull', service: 'fraud-service' })]);
    assert.equal((await t.webhook('/webhooks/alertmanager', other)).status, 202);
    const incidents = await t.query<IncidentRow>('SELECT * FROM incidents ORDER BY id');
    assert.deepEqual(
      incidents.map((i) => i.service),
      ['payment-service', 'fraud-service'],
    );
    const card = await eventually('fraud-service card', async () =>
      t.stub
        .callsTo('chat.postMessage')
        .find((c) => /DiskFull/.test(blocksText(c.args)) && !c.args.thread_ts),
    );
    assert.equal(card.args.channel, '#incidents', 'unrouted services use the default channel');
  });

  test('an alert that fires again after resolving counts as a repeat', async () => {
    const [first] = pool;
    assert.ok(first);
    const resolvedOne = buildAlertmanagerGroup([
      { ...first, status: 'resolved', endsAt: '2026-11-26T03:10:00Z' },
    ]);
    assert.equal((await t.webhook('/webhooks/alertmanager', resolvedOne)).status, 202);
    let [incident] = await t.query<IncidentRow>(`SELECT * FROM incidents WHERE service = 'payment-service'`);
    assert.equal(incident?.status, 'open', 'other alerts still fire');

    const again = buildAlertmanagerGroup([{ ...first, startsAt: '2026-11-26T03:15:00Z' }]);
    assert.equal((await t.webhook('/webhooks/alertmanager', again)).status, 202);
    [incident] = await t.query<IncidentRow>(`SELECT * FROM incidents WHERE service = 'payment-service'`);
    assert.equal(incident?.alert_count, 4);
    const repeated = await t.query(`SELECT id FROM timeline_events WHERE type = 'alert.repeated'`);
    assert.equal(repeated.length, 1);
  });

  test('resolving every alert resolves the incident and edits the card', async () => {
    const all = (
      await t.query<{ labels: Record<string, string>; fingerprint: string; starts_at: Date }>(
        `SELECT ia.labels, ia.fingerprint, ia.starts_at FROM incident_alerts ia JOIN incidents i ON i.id = ia.incident_id
        WHERE i.service = 'payment-service'`,
      )
    ).map((a) => ({
      ...buildAlert({ name: a.labels.alertname ?? '', service: 'payment-service', status: 'resolved' }),
      labels: a.labels,
      fingerprint: a.fingerprint,
      startsAt: a.starts_at.toISOString(),
    }));
    const res = await t.webhook('/webhooks/alertmanager', buildAlertmanagerGroup(all));
    assert.equal(res.status, 202);

    const [incident] = await t.query<IncidentRow>(
      `SELECT * FROM incidents WHERE service = 'payment-service'`,
    );
    assert.equal(incident?.status, 'resolved');
    assert.ok(incident?.resolved_at instanceof Date);
    const resolvedEvent = await t.query<{ actor: string; data: { reason: string } }>(
      `SELECT actor, data FROM timeline_events WHERE type = 'incident.resolved' AND incident_id = $1`,
      [incident?.id],
    );
    assert.equal(resolvedEvent.length, 1);
    assert.equal(resolvedEvent[0]?.data.reason, 'all alerts resolved');

    const ts = await cardTs(t, 'payment-service');
    await eventually('card edited to Resolved', async () =>
      t.stub.callsTo('chat.update').find((c) => c.args.ts === ts && /Resolved/.test(blocksText(c.args))),
    );
    await eventually('resolution broadcast in the thread', async () =>
      t.stub
        .callsTo('chat.postMessage')
        .find((c) => c.args.thread_ts === ts && String(c.args.reply_broadcast) === 'true'),
    );

    // The other service's incident is untouched.
    const [fraud] = await t.query<IncidentRow>(`SELECT * FROM incidents WHERE service = 'fraud-service'`);
    assert.equal(fraud?.status, 'open');
  });

  test('the timeline is append-only', async () => {
    await assert.rejects(t.query('DELETE FROM timeline_events'), /append-only/);
    await assert.rejects(t.query(`UPDATE timeline_events SET actor = 'mallory'`), /append-only/);
  });
});
