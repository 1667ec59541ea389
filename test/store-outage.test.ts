import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildAlert, buildAlertmanagerGroup } from './helpers/builders.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

// The app reaches Postgres through a private proxy, so "Postgres down" is a fault of this test only.
describe('Postgres unreachable', () => {
  let proxy: TcpProxy;
  let t: TestApp;
  before(async () => {
    proxy = await startTcpProxy(5432);
    t = await startTestApp({}, { viaPort: proxy.port });
  });
  after(async () => {
    await proxy.up().catch(() => {});
    await t.close();
    await proxy.close();
  });

  test('webhooks answer 503 with Retry-After while Postgres is down, and accept again once it is back', async () => {
    const group = buildAlertmanagerGroup([buildAlert({ name: 'ReplicaLag', service: 'ledger' })]);
    await proxy.down();
    const res = await fetch(`${t.baseUrl}/webhooks/alertmanager`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-webhook-token-0123456789', 'content-type': 'application/json' },
      body: JSON.stringify(group),
    });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '5');
    assert.equal(((await res.json()) as { error: string }).error, 'store_unavailable');
    const ready = await fetch(`${t.baseUrl}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(((await ready.json()) as { postgres: string }).postgres, /failing/);

    await proxy.up();
    const retried = await t.webhook('/webhooks/alertmanager', group);
    assert.equal(retried.status, 202, 'the sender’s retry is accepted');
    const incidents = await t.query<{ service: string }>('SELECT service FROM incidents');
    assert.deepEqual(incidents, [{ service: 'ledger' }]);
    assert.equal((await t.query('SELECT id FROM alert_deliveries')).length, 1);
  });
});
