import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
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
});
