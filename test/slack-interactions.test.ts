import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sendEvent, sendSlashCommand } from '../src/devtools/slack-standin/sign.js';
import { buildAlert, buildAlertmanagerGroup } from './helpers/builders.js';
import { eventually, SIGNING_SECRET, startTestApp, type TestApp } from './helpers/test-app.js';

describe('Slack: signed slash commands and mentions through the Bolt receiver', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(async () => {
    await t.close();
  });

  const slash = (text: string, opts = {}) =>
    sendSlashCommand(
      t.baseUrl,
      SIGNING_SECRET,
      { command: '/incident', text, user_id: 'U0ALICE', channel_id: 'C0OPS' },
      opts,
    );
  const ackOf = (body: string) =>
    JSON.parse(body) as { text: string; blocks?: unknown[]; response_type?: string };

  test('/incident trigger opens an incident and its card follows', async () => {
    const res = await slash('trigger payment-service sev=critical Checkout returns 502 for 30% of requests');
    assert.equal(res.status, 200);
    assert.match(ackOf(res.body).text, /Opening an incident for \*payment-service\*/);

    type Row = { id: number; service: string; severity: string; source: string; title: string };
    const incident = await eventually(
      'the incident row',
      async () => (await t.query<Row>('SELECT * FROM incidents'))[0],
    );
    assert.equal(incident?.service, 'payment-service');
    assert.equal(incident?.severity, 'critical');
    assert.equal(incident?.source, 'slack');
    assert.equal(incident?.title, 'Checkout returns 502 for 30% of requests');
    const [opened] = await t.query<{ actor: string }>(
      `SELECT actor FROM timeline_events WHERE type = 'incident.opened'`,
    );
    assert.equal(opened?.actor, 'U0ALICE', 'the human who triggered it is the actor');

    const card = await eventually('the card', async () =>
      t.stub
        .callsTo('chat.postMessage')
        .find((c) => !c.args.thread_ts && /Checkout returns 502/.test(JSON.stringify(c.args.blocks))),
    );
    assert.equal(card.args.channel, '#payments-incidents');
    const confirmation = await eventually('the ephemeral confirmation', async () =>
      t.stub.callsTo('chat.postEphemeral').find((c) => /Opened INC-/.test(String(c.args.text))),
    );
    assert.equal(confirmation.args.user, 'U0ALICE');
    assert.equal(confirmation.args.channel, 'C0OPS');
  });

  test('/incident list and /incident show answer ephemerally with the incident', async () => {
    const list = ackOf((await slash('list')).body);
    assert.equal(list.response_type, 'ephemeral');
    assert.match(JSON.stringify(list.blocks), /payment-service/);
    const [incident] = await t.query<{ id: number }>('SELECT id FROM incidents');
    const show = ackOf((await slash(`show INC-${incident?.id}`)).body);
    assert.match(JSON.stringify(show.blocks), new RegExp(`INC-${incident?.id}`));
    assert.match(JSON.stringify(show.blocks), /incident\.opened/);
    const missing = ackOf((await slash('show 999999')).body);
    assert.match(missing.text, /INC-999999 does not exist/);
  });

  test('unknown subcommands and bad arguments get the usage, and open nothing', async () => {
    const before = (await t.query('SELECT id FROM incidents')).length;
    for (const [text, problem] of [
      ['frobnicate', /unknown subcommand `frobnicate`/],
      ['trigger', /needs a service and a summary/],
      ['trigger bad/service oops', /service `bad\/service`/],
      ['trigger api sev=apocalyptic down', /severity `apocalyptic`/],
      ['show abc', /`abc` is not an incident id/],
    ] as const) {
      const res = await slash(text);
      assert.equal(res.status, 200);
      const ack = ackOf(res.body);
      assert.equal(ack.response_type, 'ephemeral');
      assert.match(ack.text, problem);
      assert.match(ack.text, /Usage:/);
    }
    assert.equal((await t.query('SELECT id FROM incidents')).length, before);
  });

  test('a bad signature and a stale timestamp are 401 and do nothing', async () => {
    const calls = t.stub.calls.length;
    const before = (await t.query('SELECT id FROM incidents')).length;
    const forged = await slash('trigger api-gateway forged', { badSignature: true });
    assert.equal(forged.status, 401);
    const stale = await slash('trigger api-gateway replayed', {
      timestamp: Math.floor(Date.now() / 1000) - 10 * 60,
    });
    assert.equal(stale.status, 401);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await t.query('SELECT id FROM incidents')).length, before);
    assert.equal(t.stub.calls.length, calls);
  });

  test('@ai-sre status <service> lists its open incidents, or says all quiet', async () => {
    await t.webhook(
      '/webhooks/alertmanager',
      buildAlertmanagerGroup([
        buildAlert({ name: 'CPUSaturation', service: 'fraud-service', severity: 'warning' }),
      ]),
    );
    const mention = (text: string) =>
      sendEvent(t.baseUrl, SIGNING_SECRET, {
        type: 'app_mention',
        user: 'U0BOB',
        text,
        ts: `${Date.now() / 1000}`,
        channel: 'C0OPS',
      });

    const busy = await mention('<@U0BOT> status fraud-service');
    assert.equal(busy.status, 200);
    const answer = await eventually('status answer', async () =>
      t.stub
        .callsTo('chat.postMessage')
        .find((c) => c.args.channel === 'C0OPS' && /CPUSaturation/.test(JSON.stringify(c.args.blocks))),
    );
    assert.ok(answer.args.thread_ts, 'answered in the thread of the mention');
    assert.match(JSON.stringify(answer.args.blocks), /Open incidents of fraud-service/);

    await mention('<@U0BOT> status quiet-service');
    await eventually('all quiet answer', async () =>
      t.stub
        .callsTo('chat.postMessage')
        .find((c) => /All quiet: quiet-service has no open incidents/.test(String(c.args.text))),
    );
    await mention('<@U0BOT> dance');
    await eventually('usage answer', async () =>
      t.stub.callsTo('chat.postMessage').find((c) => /unknown request `dance`/.test(String(c.args.text))),
    );
  });
});
