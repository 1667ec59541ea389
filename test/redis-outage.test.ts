import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { eventually, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Redis is not the store: with it down, webhooks still store alerts and answer 2xx and /readyz says what is degraded;
 * when it comes back EMPTY (no persistence, as on these machines), the reconciler re-enqueues from Postgres what the
 * lost queues held, and the incident goes on: its card is posted and its runbook runs. A private Redis on another
 * port is killed and restarted; the shared one is not touched.
 */

async function freePort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
    { stdio: 'ignore' },
  );
  const client = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  await eventually('the private Redis', async () => {
    try {
      await client.connect();
      return (await client.ping()) === 'PONG';
    } catch {
      client.disconnect();
      return false;
    }
  });
  client.disconnect();
  return child;
}

async function stop(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

describe('Redis down, then back empty', () => {
  let t: TestApp;
  let redis: ChildProcess | null = null;
  let port: number;
  let dir: string;
  let health: Server;

  before(async () => {
    port = await freePort();
    redis = await startRedis(port);
    health = createServer((_req, res) => res.writeHead(503).end('down'));
    await new Promise<void>((r) => health.listen(0, '127.0.0.1', r));
    dir = await mkdtemp(join(tmpdir(), 'ai-sre-redis-outage-'));
    await writeFile(
      join(dir, 'targets.yml'),
      `services:\n  ledger:\n    health_url: http://127.0.0.1:${(health.address() as AddressInfo).port}/health\n`,
    );
    await writeFile(join(dir, 'safety.yml'), 'mode: shadow\n');
    t = await startTestApp({
      REDIS_URL: `redis://127.0.0.1:${port}`,
      RUNBOOKS_DIR: 'test/fixtures/runbooks-e2e',
      TARGETS_FILE: join(dir, 'targets.yml'),
      SAFETY_FILE: join(dir, 'safety.yml'),
      SLACK_SYNC_DEBOUNCE_MS: '0',
    });
  });
  after(async () => {
    await t?.close();
    await stop(redis);
    await new Promise((r) => health.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  test('alerts are stored while Redis is down; its work is re-enqueued from Postgres when Redis is back', async () => {
    await stop(redis);
    redis = null;
    await eventually('the app to notice', async () => {
      const res = await fetch(`${t.baseUrl}/readyz`);
      const body = (await res.json()) as { status: string };
      return res.status === 200 && body.status === 'degraded' ? body : null;
    });

    const res = await t.webhook('/webhooks/generic', {
      name: 'LedgerDown',
      service: 'ledger',
      severity: 'critical',
      summary: 'ledger health check fails',
    });
    assert.equal(res.status, 202, 'accepted while Redis is down');
    const [incident] = await t.query<{ id: number }>(`SELECT id FROM incidents WHERE service = 'ledger'`);
    assert.ok(incident, 'stored in Postgres');
    const ready = (await (await fetch(`${t.baseUrl}/readyz`)).json()) as Record<string, string>;
    assert.equal(ready.status, 'degraded');
    assert.equal(ready.postgres, 'ok');
    assert.match(ready.redis ?? '', /failing/);
    assert.match(ready.degraded ?? '', /alerts are accepted/);
    // nothing can have run: the queues were unreachable
    assert.equal(t.stub.callsTo('chat.postMessage').length, 0);
    assert.equal((await t.query('SELECT 1 FROM runbook_executions')).length, 0);

    // back, and empty
    redis = await startRedis(port);
    await eventually(
      'the runbook ran',
      async () =>
        (
          await t.query(`SELECT 1 FROM timeline_events WHERE incident_id = $1 AND type = 'decision.made'`, [
            incident.id,
          ])
        ).length > 0,
      60_000,
    );
    await eventually(
      'the card posted',
      async () =>
        (await t.query('SELECT 1 FROM slack_messages WHERE incident_id = $1', [incident.id])).length > 0,
      60_000,
    );
    const runs = await t.query('SELECT 1 FROM runbook_executions WHERE incident_id = $1', [incident.id]);
    assert.equal(runs.length, 1, 'diagnosed once');
    const cards = t.stub.callsTo('chat.postMessage').filter((c) => c.args.thread_ts === undefined);
    assert.equal(cards.length, 1, 'one card');
    const readyAgain = (await (await fetch(`${t.baseUrl}/readyz`)).json()) as Record<string, string>;
    assert.equal(readyAgain.status, 'ready');
  });
});
