import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { buildAlert, buildAlertmanagerGroup } from './helpers/builders.js';
import { startTestApp, type TestApp } from './helpers/test-app.js';

const fixture = (path: string) => readFileSync(new URL(`./fixtures/${path}`, import.meta.url), 'utf8');

describe('webhook intake: authentication, validation, other sources', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ WEBHOOK_MAX_BYTES: '4096' });
  });
  after(async () => {
    await t.close();
  });

  const stored = async () =>
    (await t.query<{ n: number }>('SELECT count(*)::int AS n FROM alert_deliveries'))[0]?.n;
  const valid = buildAlertmanagerGroup([buildAlert({ name: 'HighLatency', service: 'api-gateway' })]);

  test('a missing or wrong bearer token is 401 and stores nothing', async () => {
    const missing = await t.webhook('/webhooks/alertmanager', valid, { token: null });
    assert.equal(missing.status, 401);
    assert.match(String(missing.json.message), /missing Authorization/);
    const wrong = await t.webhook('/webhooks/grafana', valid, { token: 'not-the-token-at-all-nope' });
    assert.equal(wrong.status, 401);
    assert.equal(await stored(), 0);
  });

  test('malformed JSON is 400 and stores nothing', async () => {
    const res = await t.webhook('/webhooks/alertmanager', '{"version": "4", "alerts": [');
    assert.equal(res.status, 400);
    assert.equal(res.json.error, 'malformed_json');
    assert.equal(await stored(), 0);
  });

  test('a wrong shape is 400 naming the field path', async () => {
    const bad = structuredClone(valid) as Record<string, unknown> & { alerts: Record<string, unknown>[] };
    (bad.alerts[0] as { labels: Record<string, unknown> }).labels.severity = 3;
    const res = await t.webhook('/webhooks/alertmanager', bad);
    assert.equal(res.status, 400);
    assert.equal(res.json.error, 'invalid_payload');
    assert.ok(
      (res.json.issues as string[]).some((i) => i.startsWith('alerts.0.labels.severity:')),
      JSON.stringify(res.json),
    );
    const wrongVersion = await t.webhook('/webhooks/alertmanager', { ...valid, version: '3' });
    assert.equal(wrongVersion.status, 400);
    assert.match(String(wrongVersion.json.message), /version/);
    const generic = await t.webhook('/webhooks/generic', {
      name: 'Oops',
      service: 'billing',
      severity: 'apocalyptic',
    });
    assert.equal(generic.status, 400);
    assert.ok(
      (generic.json.issues as string[]).some((i) => i.startsWith('severity:')),
      JSON.stringify(generic.json),
    );
    assert.equal(await stored(), 0);
  });

  test('a body over the limit is 413 and stores nothing', async () => {
    const huge = buildAlertmanagerGroup(
      Array.from({ length: 40 }, (_, i) =>
        buildAlert({ name: `Alert${i}`, service: 'api-gateway', summary: 'x'.repeat(200) }),
      ),
    );
    const res = await t.webhook('/webhooks/alertmanager', huge);
    assert.equal(res.status, 413);
    assert.equal(res.json.error, 'payload_too_large');
    assert.equal(await stored(), 0);
  });

  test('a wrong content type is 415', async () => {
    const res = await t.webhook('/webhooks/generic', 'name=x', {
      contentType: 'application/x-www-form-urlencoded',
    });
    assert.equal(res.status, 415);
    assert.equal(await stored(), 0);
  });

  test('Grafana alerting payloads open incidents', async () => {
    const res = await t.webhook('/webhooks/grafana', fixture('grafana-firing-two-alerts.json'));
    assert.equal(res.status, 202);
    assert.equal(res.json.alerts, 2);
    const alerts = await t.query<{ name: string; source: string; fingerprint: string }>(
      'SELECT name, source, fingerprint FROM incident_alerts ORDER BY id',
    );
    assert.deepEqual(
      alerts.map((a) => [a.name, a.source, a.fingerprint]),
      [
        ['High memory usage', 'grafana', 'c6eadffa33fcdf37'],
        ['High CPU usage', 'grafana', 'bc97ff14869b13e3'],
      ],
    );
  });

  test('generic alerts: one alert or a batch, fingerprint derived when absent', async () => {
    const one = await t.webhook('/webhooks/generic', {
      source: 'ci',
      name: 'DeployFailed',
      service: 'billing',
      severity: 'high',
      summary: 'deploy 1.4.2 failed health checks',
      labels: { env: 'prod' },
    });
    assert.equal(one.status, 202);
    const batch = await t.webhook('/webhooks/generic', {
      alerts: [
        { name: 'DeployFailed', service: 'billing', source: 'ci', labels: { env: 'prod' } },
        { name: 'QueueBacklog', service: 'billing', status: 'firing' },
      ],
    });
    assert.equal(batch.status, 202);
    assert.equal(batch.json.duplicates, 1, 'the same generic alert again is a duplicate');
    const [incident] = await t.query<{ alert_count: number; severity: string }>(
      `SELECT alert_count, severity FROM incidents WHERE service = 'billing'`,
    );
    assert.equal(incident?.alert_count, 2);
    assert.equal(incident?.severity, 'high');
  });

  test('the Alertmanager payload Grafana OnCall captured is accepted, extra keys ignored', async () => {
    const res = await t.webhook('/webhooks/alertmanager', fixture('alertmanager-firing-three.json'));
    assert.equal(res.status, 202);
    assert.equal(res.json.alerts, 3);
  });

  test('a delivery Postgres cannot store fails alone (400); the ones written with it are kept', async () => {
    const before = await stored();
    const good = (i: number) =>
      t.webhook('/webhooks/generic', { name: `Batch${i}`, service: 'batching', summary: `alert ${i}` });
    const bad = t.webhook('/webhooks/generic', {
      name: 'Nul',
      service: 'batching',
      labels: { broken: 'a\u0000b' },
    });
    const results = await Promise.all([good(1), good(2), bad, good(3), good(4)]);
    assert.deepEqual(
      results.map((r) => r.status),
      [202, 202, 400, 202, 202],
    );
    assert.equal(results[2]?.json.error, 'unstorable_payload');
    assert.equal(await stored(), (before ?? 0) + 4);
    const names = await t.query<{ name: string }>(
      `SELECT name FROM incident_alerts ia JOIN incidents i ON i.id = ia.incident_id WHERE i.service = 'batching' ORDER BY name`,
    );
    assert.deepEqual(
      names.map((n) => n.name),
      ['Batch1', 'Batch2', 'Batch3', 'Batch4'],
    );
  });

  test('health, readiness and metrics', async () => {
    const health = await fetch(`${t.baseUrl}/healthz`);
    assert.equal(health.status, 200);
    const ready = await fetch(`${t.baseUrl}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready', postgres: 'ok', redis: 'ok' });
    const metrics = await (await fetch(`${t.baseUrl}/metrics`)).text();
    assert.match(metrics, /ai_sre_alerts_received_total\{source="grafana"\} 2/);
    assert.match(metrics, /ai_sre_webhook_requests_total\{source="alertmanager",status="401"\} 1/);
    assert.match(metrics, /ai_sre_incidents_opened_total\{source="grafana"\} 1/);
    assert.match(metrics, /ai_sre_queue_jobs\{queue="slack",state="waiting"\} \d+/);
    assert.match(metrics, /ai_sre_slack_api_errors_total/);
  });
});
