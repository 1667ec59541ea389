import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildAlert, buildAlertmanagerGroup } from './helpers/builders.js';
import { eventually, startTestApp, type TestApp } from './helpers/test-app.js';

describe('Slack failing while an incident opens', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ SLACK_RETRY_BASE_MS: '100', SLACK_RETRY_ATTEMPTS: '10' });
  });
  after(async () => {
    await t.close();
  });

  test('a Slack outage leaves the incident intact and the card is posted once Slack is back', async () => {
    t.stub.failNext('chat.postMessage', 3, { status: 503 });
    const res = await t.webhook(
      '/webhooks/alertmanager',
      buildAlertmanagerGroup([buildAlert({ name: 'DatabaseDown', service: 'orders' })]),
    );
    assert.equal(res.status, 202, 'the webhook does not wait for Slack');
    const [incident] = await t.query<{ id: number; status: string }>('SELECT id, status FROM incidents');
    assert.equal(incident?.status, 'open');

    await eventually(
      'the card after retries',
      async () => (await t.query('SELECT ts FROM slack_messages')).length === 1,
    );
    const attempts = t.stub.callsTo('chat.postMessage');
    assert.equal(attempts.length, 4, 'three failed attempts, then one success');
    assert.equal(new Set(attempts.map((c) => c.args.channel)).size, 1);
    const metrics = await (await fetch(`${t.baseUrl}/metrics`)).text();
    assert.match(metrics, /ai_sre_slack_api_errors_total\{method="chat",error="http_error"\} 3/);
    const [after] = await t.query<{ status: string; alert_count: number }>(
      'SELECT status, alert_count FROM incidents',
    );
    assert.deepEqual(after, { status: 'open', alert_count: 1 });
  });

  test('a 429 waits for Retry-After before the next attempt', async () => {
    t.stub.failNext('chat.postMessage', 1, { status: 429, retryAfter: 1 });
    await t.webhook(
      '/webhooks/alertmanager',
      buildAlertmanagerGroup([buildAlert({ name: 'DiskFull', service: 'search' })]),
    );
    await eventually(
      'the card after the rate limit',
      async () => (await t.query('SELECT ts FROM slack_messages')).length === 2,
    );
    const attempts = t.stub
      .callsTo('chat.postMessage')
      .filter((c) => /DiskFull/.test(JSON.stringify(c.args.blocks)));
    assert.equal(attempts.length, 2);
    const [limited, retried] = attempts;
    assert.ok(limited && retried);
    assert.ok(
      retried.at - limited.at >= 950,
      `retried after ${retried.at - limited.at} ms, Retry-After was 1 s`,
    );
    const metrics = await (await fetch(`${t.baseUrl}/metrics`)).text();
    assert.match(metrics, /ai_sre_slack_api_errors_total\{method="chat",error="ratelimited"\} 1/);
  });

  test('a permanent Slack error stops retrying and the incident still stands', async () => {
    t.stub.failNext('chat.postMessage', 1, { error: 'channel_not_found' });
    const res = await t.webhook(
      '/webhooks/alertmanager',
      buildAlertmanagerGroup([buildAlert({ name: 'Leak', service: 'ghost' })]),
    );
    assert.equal(res.status, 202);
    await t.drained();
    const attempts = t.stub
      .callsTo('chat.postMessage')
      .filter((c) => /Leak/.test(JSON.stringify(c.args.blocks)));
    assert.equal(attempts.length, 1, 'not retried');
    const [incident] = await t.query<{ status: string }>(
      `SELECT status FROM incidents WHERE service = 'ghost'`,
    );
    assert.equal(incident?.status, 'open');
  });
});
