import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { after, test } from 'node:test';
import { buildAlert, buildAlertmanagerGroup } from './helpers/builders.js';
import { deleteKeys, dropDatabase, eventually, WEBHOOK_TOKEN } from './helpers/test-app.js';

const id = randomBytes(5).toString('hex');
const databaseUrl = `postgres://postgres@127.0.0.1:5432/ai_sre_test_${id}`;
const prefix = `ai-sre-test-${id}`;

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

let child: ChildProcess | undefined;

/** `ai-sre start` as its own process on `port`, with everything it prints kept. */
function startBot(port: number, logLevel: string): { proc: ChildProcess; output: () => string } {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start'], {
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: databaseUrl,
      QUEUE_PREFIX: prefix,
      HOST: '127.0.0.1',
      PORT: String(port),
      WEBHOOK_TOKEN,
      LOG_LEVEL: logLevel,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const keep = (chunk: Buffer) => {
    text += chunk.toString();
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  return { proc, output: () => text };
}
after(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await dropDatabase(databaseUrl);
  await deleteKeys(`${prefix}:*`);
});

test('the ai-sre process serves, then shuts down cleanly on SIGTERM', async () => {
  const port = await freePort();
  const started = startBot(port, 'info');
  child = started.proc;
  await eventually(
    'the process listening',
    async () => started.output().includes('ai-sre listening'),
    30_000,
  );

  const res = await fetch(`http://127.0.0.1:${port}/webhooks/alertmanager`, {
    method: 'POST',
    headers: { authorization: `Bearer ${WEBHOOK_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(buildAlertmanagerGroup([buildAlert({ name: 'Shutdown', service: 'lifecycle' })])),
  });
  assert.equal(res.status, 202);

  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const [code, signal] = (await exited) as [number | null, string | null];
  assert.equal(signal, null, started.output());
  assert.equal(code, 0, started.output());
  assert.match(started.output(), /"signal":"SIGTERM".*"msg":"shutting down"/);
  await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'the port is closed after shutdown');
});

test('a port already in use stops the start with the error, and the process exits instead of hanging', async () => {
  const taken = createServer();
  taken.listen(0, '127.0.0.1');
  await once(taken, 'listening');
  const { port } = taken.address() as { port: number };
  try {
    const { proc, output } = startBot(port, 'silent');
    const exited = once(proc, 'exit');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    const [code, signal] = (await exited) as [number | null, string | null];
    clearTimeout(timer);
    assert.equal(signal, null, `killed after 60 s: the failed start left something running\n${output()}`);
    assert.equal(code, 1, output());
    assert.match(output(), /EADDRINUSE/);
  } finally {
    taken.close();
  }
});
