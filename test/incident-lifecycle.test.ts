import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TransitionError } from '../src/errors.js';
import { TRANSITIONS, transitionIncident } from '../src/incidents/lifecycle.js';
import { withTransaction } from '../src/store/db.js';
import { buildAlert, buildAlertmanagerGroup } from './helpers/builders.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

describe('incident lifecycle on Postgres', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ INCIDENT_GROUP_WINDOW_SECONDS: '900' });
  });
  after(async () => {
    await t.close();
  });

  test('concurrent deliveries for one service open exactly one incident', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        t.webhook(
          '/webhooks/alertmanager',
          buildAlertmanagerGroup([buildAlert({ name: `Alert${i}`, service: 'checkout' })]),
        ),
      ),
    );
    assert.ok(results.every((r) => r.status === 202));
    const incidents = await t.query<{ alert_count: number }>(
      `SELECT alert_count FROM incidents WHERE service = 'checkout'`,
    );
    assert.equal(incidents.length, 1);
    assert.equal(incidents[0]?.alert_count, 20);
    const alerts = await t.query(`SELECT id FROM incident_alerts`);
    assert.equal(alerts.length, 20);
  });

  test('the state machine in Postgres is the one lifecycle.ts describes', async () => {
    const rows = await t.query<{ from_status: string; to_status: string }>(
      'SELECT from_status, to_status FROM incident_transitions ORDER BY 1, 2',
    );
    const expected = Object.entries(TRANSITIONS)
      .flatMap(([from, tos]) => tos.map((to) => ({ from_status: from, to_status: to })))
      .sort((a, b) => a.from_status.localeCompare(b.from_status) || a.to_status.localeCompare(b.to_status));
    assert.deepEqual(rows, expected);
  });

  test('a transition writes its timeline event in the same transaction; a forbidden one writes nothing', async () => {
    const [incident] = await t.query<{ id: number; revision: number }>(
      `SELECT id, revision FROM incidents WHERE service = 'checkout'`,
    );
    assert.ok(incident);
    const { ctx } = t.app;
    await withTransaction(ctx.db, (tx) =>
      transitionIncident(tx, incident.id, 'investigating', {
        actor: 'U0ALICE',
        reason: 'looking at the pool',
      }),
    );
    const events = await t.query<{ type: string; actor: string; data: Record<string, string> }>(
      `SELECT type, actor, data FROM timeline_events WHERE incident_id = $1 AND type LIKE 'incident.%' ORDER BY id`,
      [incident.id],
    );
    assert.deepEqual(events.at(-1), {
      type: 'incident.investigating',
      actor: 'U0ALICE',
      data: { from: 'open', to: 'investigating', reason: 'looking at the pool' },
    });

    await withTransaction(ctx.db, (tx) =>
      transitionIncident(tx, incident.id, 'resolved', { actor: 'U0ALICE', reason: 'fixed' }),
    );
    const count = (await t.query('SELECT id FROM timeline_events')).length;
    await assert.rejects(
      withTransaction(ctx.db, (tx) =>
        transitionIncident(tx, incident.id, 'mitigating', { actor: 'ai-sre', reason: 'late' }),
      ),
      TransitionError,
    );
    assert.equal((await t.query('SELECT id FROM timeline_events')).length, count);
    const [row] = await t.query<{ status: string; revision: number }>(
      'SELECT status, revision FROM incidents WHERE id = $1',
      [incident.id],
    );
    assert.equal(row?.status, 'resolved');
    assert.equal(row?.revision, incident.revision + 2);
  });

  test('after its incident resolved, the same alert firing again opens a new incident', async () => {
    const res = await t.webhook(
      '/webhooks/alertmanager',
      buildAlertmanagerGroup([buildAlert({ name: 'Alert0', service: 'checkout' })]),
    );
    assert.equal(res.status, 202);
    assert.equal((res.json.opened as number[]).length, 1);
    const open = await t.query(
      `SELECT id FROM incidents WHERE service = 'checkout' AND status <> 'resolved'`,
    );
    assert.equal(open.length, 1);
  });
});

describe('grouping window', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ INCIDENT_GROUP_WINDOW_SECONDS: '0' });
  });
  after(async () => {
    await t.close();
  });

  test('with a zero window, a later alert of the service opens its own incident', async () => {
    await t.webhook(
      '/webhooks/alertmanager',
      buildAlertmanagerGroup([buildAlert({ name: 'A', service: 'cart' })]),
    );
    await new Promise((r) => setTimeout(r, 20));
    await t.webhook(
      '/webhooks/alertmanager',
      buildAlertmanagerGroup([buildAlert({ name: 'B', service: 'cart' })]),
    );
    const incidents = await t.query(`SELECT id FROM incidents WHERE service = 'cart'`);
    assert.equal(incidents.length, 2);
  });
});
