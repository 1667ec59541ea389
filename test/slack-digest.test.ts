import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { appendTimelineEvent } from '../src/incidents/timeline.js';
import { buildAlert, buildAlertmanagerGroup } from './helpers/builders.js';
import { eventually, startTestApp, type TestApp } from './helpers/test-app.js';

describe('Slack sync under an alert storm', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ SLACK_SYNC_DEBOUNCE_MS: '1500' });
  });
  after(async () => {
    await t.close();
  });

  test('the card is posted at once; a burst of changes becomes one edit and one thread digest', async () => {
    await t.webhook(
      '/webhooks/alertmanager',
      buildAlertmanagerGroup([buildAlert({ name: 'Root', service: 'storm' })]),
    );
    // The first card does not wait for the debounce window.
    await eventually(
      'the card',
      async () => (await t.query('SELECT ts FROM slack_messages')).length === 1,
      1_000,
    );
    const [{ ts } = { ts: '' }] = await t.query<{ ts: string }>('SELECT ts FROM slack_messages');

    for (const name of ['Burst1', 'Burst2', 'Burst3', 'Burst4']) {
      const res = await t.webhook(
        '/webhooks/alertmanager',
        buildAlertmanagerGroup([buildAlert({ name, service: 'storm' })]),
      );
      assert.equal(res.status, 202);
    }
    const threadPosts = () => t.stub.callsTo('chat.postMessage').filter((c) => c.args.thread_ts === ts);
    await eventually('all four alerts in the thread', async () => {
      const text = threadPosts()
        .map((c) => String(c.args.text))
        .join('\n');
      return ['Burst1', 'Burst2', 'Burst3', 'Burst4'].every((n) => text.includes(n));
    });
    await t.drained();
    // Four changes inside one 1.5 s window: one digest (two if the burst straddled a window boundary).
    assert.ok(threadPosts().length <= 2, `${threadPosts().length} thread posts`);
    const edits = t.stub.callsTo('chat.update').filter((c) => c.args.ts === ts);
    assert.ok(edits.length >= 1 && edits.length <= 2, `${edits.length} card edits`);
    assert.match(JSON.stringify(edits.at(-1)?.args.blocks), /\*Alerts\*.*5/s);
  });

  test('an event committed after a later one still reaches the thread, in id order', async () => {
    await t.webhook(
      '/webhooks/alertmanager',
      buildAlertmanagerGroup([buildAlert({ name: 'Slow', service: 'late' })]),
    );
    await eventually(
      'the card',
      async () =>
        (
          await t.query(
            "SELECT m.ts FROM slack_messages m JOIN incidents i ON i.id = m.incident_id WHERE i.service = 'late'",
          )
        )[0] as { ts: string } | undefined,
    );
    await t.drained();
    const [{ id, ts } = { id: 0, ts: '' }] = await t.query<{ id: number; ts: string }>(
      "SELECT i.id::int, m.ts FROM incidents i JOIN slack_messages m ON m.incident_id = i.id WHERE i.service = 'late'",
    );
    const thread = () =>
      t.stub
        .callsTo('chat.postMessage')
        .filter((c) => c.args.thread_ts === ts)
        .map((c) => String(c.args.text))
        .join('\n');
    // A writer draws the lower id and is slow to commit (as the intake was while a worker recorded a decision) ...
    const writer = new pg.Client({ connectionString: t.databaseUrl });
    await writer.connect();
    try {
      await writer.query('BEGIN');
      const early = await appendTimelineEvent(writer, id, 'alertmanager', 'alert.repeated', true, {
        name: 'DrawnFirst',
      });
      // ... while a later event commits and the sync runs for it
      const res = await t.webhook(
        '/webhooks/alertmanager',
        buildAlertmanagerGroup([buildAlert({ name: 'CommittedFirst', service: 'late' })]),
      );
      assert.equal(res.status, 202);
      const [{ later } = { later: 0 }] = await t.query<{ later: number }>(
        "SELECT max(id)::int AS later FROM timeline_events WHERE incident_id = $1 AND type = 'alert.attached'",
        [id],
      );
      assert.ok(later > early, `the later event has the higher id (${later} > ${early})`);
      // the sync runs (past the debounce window) before the slow writer commits
      const until = Date.now() + 4_000;
      while (Date.now() < until && !thread().includes('CommittedFirst'))
        await new Promise((r) => setTimeout(r, 50));
      await writer.query('COMMIT');
    } finally {
      await writer.end();
    }
    await eventually('both events in the thread', async () =>
      /DrawnFirst[\s\S]*CommittedFirst/.test(thread()),
    );
    await t.drained();
    // each once: one line per event
    const lines = thread().split('\n');
    assert.equal(lines.filter((l) => l.includes('DrawnFirst')).length, 1, thread());
    assert.equal(lines.filter((l) => l.includes('CommittedFirst')).length, 1, thread());
  });
});
