import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { type WebSocket, WebSocketServer } from 'ws';
import { eventually, startTestApp, type TestApp } from './helpers/test-app.js';

// Slack's side of Socket Mode on loopback: apps.connections.open (the stub) hands out this server's URL; it says
// hello, sends envelopes, and collects the app's acks.
describe('Socket Mode (SLACK_APP_TOKEN set)', () => {
  let wss: WebSocketServer;
  let t: TestApp;
  let socket: WebSocket | undefined;
  const acks: { envelope_id: string; payload?: { text?: string } }[] = [];

  before(async () => {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    const { port } = wss.address() as { port: number };
    wss.on('connection', (ws) => {
      socket = ws;
      ws.on('message', (data) => acks.push(JSON.parse(String(data)) as (typeof acks)[number]));
      ws.send(JSON.stringify({ type: 'hello', num_connections: 1, connection_info: { app_id: 'A0001' } }));
    });
    t = await startTestApp(
      { SLACK_APP_TOKEN: 'xapp-1-A0001-test' },
      {
        prepareStub: (stub) =>
          stub.answerWith('apps.connections.open', { ok: true, url: `ws://127.0.0.1:${port}/link` }),
      },
    );
  });
  after(async () => {
    await t.close();
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });

  test('connects with the app token, and a slash command over the socket opens an incident', async () => {
    const open = await eventually(
      'apps.connections.open',
      async () => t.stub.callsTo('apps.connections.open')[0],
    );
    assert.equal(open.token, 'xapp-1-A0001-test');
    const ws = await eventually('the socket', async () => socket);
    ws.send(
      JSON.stringify({
        envelope_id: 'env-1',
        type: 'slash_commands',
        accepts_response_payload: true,
        payload: {
          token: 'verification_token',
          team_id: 'T0001',
          team_domain: 'ai-sre-test',
          channel_id: 'C0SOCK',
          channel_name: 'ops',
          user_id: 'U0SOCK',
          user_name: 'sam',
          command: '/incident',
          text: 'trigger sockets Socket Mode delivers commands',
          api_app_id: 'A0001',
          response_url: 'http://127.0.0.1:9/never',
          trigger_id: '1.2.3',
        },
      }),
    );
    const ack = await eventually('the ack', async () => acks.find((a) => a.envelope_id === 'env-1'));
    assert.match(String(ack.payload?.text), /Opening an incident for \*sockets\*/);
    const incident = await eventually(
      'the incident',
      async () =>
        (await t.query<{ service: string; source: string }>('SELECT service, source FROM incidents'))[0],
    );
    assert.deepEqual(incident, { service: 'sockets', source: 'slack' });
    await eventually('the card', async () =>
      t.stub
        .callsTo('chat.postMessage')
        .find((c) => /Socket Mode delivers commands/.test(JSON.stringify(c.args.blocks))),
    );
  });

  test('the webhooks and health routes are served beside the socket', async () => {
    const health = await fetch(`${t.baseUrl}/healthz`);
    assert.equal(health.status, 200);
    const res = await t.webhook('/webhooks/generic', { name: 'ViaSocketModeHost', service: 'sockets' });
    assert.equal(res.status, 202);
    const slackEvents = await fetch(`${t.baseUrl}/slack/events`, { method: 'POST', body: '{}' });
    assert.equal(slackEvents.status, 404, 'no HTTP Slack endpoint in Socket Mode');
  });
});
