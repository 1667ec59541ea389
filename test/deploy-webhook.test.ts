import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from './helpers/test-app.js';

interface DeployRow {
  id: number;
  service: string;
  environment: string;
  version: string;
  previous_version: string | null;
  status: string;
  deployed_at: Date;
  deployed_by: string | null;
  commit_sha: string | null;
  url: string | null;
  description: string | null;
  external_id: string | null;
  payload: Record<string, unknown>;
  received_at: Date;
}

describe('POST /webhooks/deploy', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ WEBHOOK_MAX_BYTES: '16384' });
  });
  after(async () => {
    await t.close();
  });

  const rowsOf = (service: string) =>
    t.query<DeployRow>('SELECT * FROM deploy_events WHERE service = $1 ORDER BY id', [service]);
  const total = async () =>
    (await t.query<{ n: number }>('SELECT count(*)::int AS n FROM deploy_events'))[0]?.n;

  test('one deploy with snake_case fields is stored whole and opens no incident', async () => {
    const body = {
      service: 'payment-service',
      version: '2.4.1',
      environment: 'staging',
      previous_version: '2.4.0',
      status: 'succeeded',
      deployed_at: '2026-11-26T03:00:00.250+01:00',
      deployed_by: 'alice',
      commit: 'a1b2c3d',
      url: 'https://ci.example/deploys/981',
      description: 'bump stripe client',
      id: 'deploy-981',
      extra: { ignored: true },
    };
    const res = await t.webhook('/webhooks/deploy', body);
    assert.equal(res.status, 202, JSON.stringify(res.json));
    const [row] = await rowsOf('payment-service');
    assert.ok(row);
    assert.deepEqual(res.json, { stored: 1, duplicates: 0, ids: [row.id] });
    assert.equal(row.environment, 'staging');
    assert.equal(row.version, '2.4.1');
    assert.equal(row.previous_version, '2.4.0');
    assert.equal(row.status, 'succeeded');
    assert.equal(row.deployed_at.toISOString(), '2026-11-26T02:00:00.250Z');
    assert.equal(row.deployed_by, 'alice');
    assert.equal(row.commit_sha, 'a1b2c3d');
    assert.equal(row.url, 'https://ci.example/deploys/981');
    assert.equal(row.description, 'bump stripe client');
    assert.equal(row.external_id, 'deploy-981');
    assert.deepEqual(row.payload, body, 'the event is kept as sent, unknown keys included');
    const incidents = await t.query<{ n: number }>('SELECT count(*)::int AS n FROM incidents');
    assert.equal(incidents[0]?.n, 0);
  });

  test('camelCase and alias fields, defaults for what is missing', async () => {
    const before = Date.now();
    const res = await t.webhook('/webhooks/deploy', {
      service: 'checkout',
      version: 417,
      previousVersion: '416',
      user: { login: 'bob', name: 'Bob B' },
      sha: 'ffee99',
      message: 'release 417',
      status: 'Success',
    });
    assert.equal(res.status, 202, JSON.stringify(res.json));
    const [row] = await rowsOf('checkout');
    assert.ok(row);
    assert.equal(row.environment, 'production');
    assert.equal(row.version, '417');
    assert.equal(row.previous_version, '416');
    assert.equal(row.status, 'succeeded');
    assert.equal(row.deployed_by, 'bob');
    assert.equal(row.commit_sha, 'ffee99');
    assert.equal(row.description, 'release 417');
    assert.equal(row.external_id, null);
    const at = row.deployed_at.getTime();
    assert.ok(at >= before - 1000 && at <= Date.now() + 1000, 'no time given: the receive time');
  });

  test('epoch seconds, epoch milliseconds, digit strings and ISO without offset are the same instant', async () => {
    const iso = '2026-11-26T03:00:00Z';
    const seconds = Date.parse(iso) / 1000;
    const res = await t.webhook('/webhooks/deploy', {
      deploys: [
        { service: 'clock', version: '1', timestamp: seconds },
        { service: 'clock', version: '2', deployed_at: seconds * 1000 },
        { service: 'clock', version: '3', timestamp: String(seconds) },
        { service: 'clock', version: '4', deployed_at: '2026-11-26T03:00:00' },
        { service: 'clock', version: '5', deployed_at: '2026-11-26T05:30:00+0230' },
      ],
    });
    assert.equal(res.status, 202, JSON.stringify(res.json));
    const rows = await rowsOf('clock');
    assert.deepEqual(
      rows.map((r) => [r.version, r.deployed_at.toISOString()]),
      ['1', '2', '3', '4', '5'].map((v) => [v, '2026-11-26T03:00:00.000Z']),
    );
  });

  test('a batch stores each event with its own payload; a re-delivery with the same ids stores nothing', async () => {
    const batch = {
      deploys: [
        { service: 'search', version: '7.1.0', id: 'gh-1', status: 'started', author: 'carol' },
        { service: 'search', version: '7.1.0', id: 'gh-2', status: 'failure', author: 'carol' },
        { service: 'search', version: '7.1.1', id: 'gh-3', status: 'rolled-back' },
        // the same id again inside one body is one deploy
        { service: 'search', version: '7.1.1', id: 'gh-3', status: 'rolled-back' },
        // the same id for another service is another deploy
        { service: 'indexer', version: '7.1.1', id: 'gh-3' },
      ],
    };
    const first = await t.webhook('/webhooks/deploy', batch);
    assert.equal(first.status, 202, JSON.stringify(first.json));
    assert.equal(first.json.stored, 4);
    assert.equal(first.json.duplicates, 1);
    const rows = await rowsOf('search');
    const indexer = await rowsOf('indexer');
    assert.deepEqual(first.json.ids, [...rows.map((r) => r.id), ...indexer.map((r) => r.id)]);
    assert.deepEqual(
      rows.map((r) => [r.external_id, r.status, r.deployed_by]),
      [
        ['gh-1', 'started', 'carol'],
        ['gh-2', 'failed', 'carol'],
        ['gh-3', 'rolled_back', null],
      ],
    );
    assert.deepEqual(rows[1]?.payload, batch.deploys[1], 'each row keeps its own event, not the whole batch');

    const countBefore = await total();
    const again = await t.webhook('/webhooks/deploy', batch);
    assert.equal(again.status, 202);
    assert.deepEqual(again.json, { stored: 0, duplicates: 5, ids: [] });
    const single = await t.webhook('/webhooks/deploy', { service: 'search', version: '7.1.0', id: 'gh-1' });
    assert.deepEqual(single.json, { stored: 0, duplicates: 1, ids: [] });
    assert.equal(await total(), countBefore);
  });

  test('a missing or wrong bearer token is 401 and stores nothing', async () => {
    const countBefore = await total();
    const missing = await t.webhook('/webhooks/deploy', { service: 'auth', version: '1' }, { token: null });
    assert.equal(missing.status, 401);
    assert.equal(missing.json.error, 'unauthorized');
    const wrong = await t.webhook(
      '/webhooks/deploy',
      { service: 'auth', version: '1' },
      { token: 'not-the-token-at-all-nope' },
    );
    assert.equal(wrong.status, 401);
    assert.equal(await total(), countBefore);
  });

  test('invalid events are 400 naming the field paths; one bad event rejects the whole batch', async () => {
    const countBefore = await total();
    const single = await t.webhook('/webhooks/deploy', {
      service: '',
      status: 'exploded',
      timestamp: 'yesterday',
      url: 'ftp://ci.example/1',
    });
    assert.equal(single.status, 400);
    assert.equal(single.json.error, 'invalid_payload');
    const issues = single.json.issues as string[];
    for (const path of ['service:', 'version:', 'status:', 'timestamp:', 'url:']) {
      assert.ok(
        issues.some((i) => i.startsWith(path)),
        `${path} in ${JSON.stringify(issues)}`,
      );
    }
    assert.ok(issues.some((i) => /status: expected one of started, succeeded, failed, rolled_back/.test(i)));

    const batch = await t.webhook('/webhooks/deploy', {
      deploys: [
        { service: 'ledger', version: '1.0.0' },
        { service: 'ledger', version: '1.0.1', deployed_at: 12 },
        { service: 'ledger', version: '1.0.2' },
      ],
    });
    assert.equal(batch.status, 400);
    assert.deepEqual(
      (batch.json.issues as string[]).map((i) => i.split(':')[0]),
      ['deploys.1.deployed_at'],
    );
    assert.match(String(batch.json.message), /^invalid deploy payload: deploys\.1\.deployed_at:/);

    const empty = await t.webhook('/webhooks/deploy', { deploys: [] });
    assert.equal(empty.status, 400);
    assert.ok((empty.json.issues as string[])[0]?.startsWith('deploys:'));
    const tooMany = await t.webhook('/webhooks/deploy', {
      deploys: Array.from({ length: 501 }, () => ({ service: 's', version: '1' })),
    });
    assert.equal(tooMany.status, 400);
    assert.ok((tooMany.json.issues as string[])[0]?.startsWith('deploys:'));
    assert.equal(await total(), countBefore);
  });

  test('the shared intake path: malformed JSON 400, wrong content type 415, too large 413, NUL 400', async () => {
    const countBefore = await total();
    const malformed = await t.webhook('/webhooks/deploy', '{"service": "x", ');
    assert.equal(malformed.status, 400);
    assert.equal(malformed.json.error, 'malformed_json');
    const form = await t.webhook('/webhooks/deploy', 'service=x&version=1', {
      contentType: 'application/x-www-form-urlencoded',
    });
    assert.equal(form.status, 415);
    const huge = await t.webhook('/webhooks/deploy', {
      service: 'big',
      version: '1',
      description: 'x'.repeat(17_000),
    });
    assert.equal(huge.status, 413);
    assert.equal(huge.json.error, 'payload_too_large');
    const nul = await t.webhook('/webhooks/deploy', {
      service: 'nul',
      version: '1',
      description: 'a\u0000b',
    });
    assert.equal(nul.status, 400);
    assert.equal(nul.json.error, 'unstorable_payload');
    assert.equal(await total(), countBefore);
  });

  test('deploy answers are counted in the webhook metrics', async () => {
    const metrics = await (await fetch(`${t.baseUrl}/metrics`)).text();
    assert.match(metrics, /ai_sre_webhook_requests_total\{source="deploy",status="202"\} \d+/);
    assert.match(metrics, /ai_sre_webhook_requests_total\{source="deploy",status="401"\} 2/);
  });
});
