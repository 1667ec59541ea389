import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { App, isValidSlackRequest, LogLevel, webApi } from '@slack/bolt';
import {
  sendBlockAction,
  sendEvent,
  sendSlashCommand,
  signSlackRequest,
} from '../src/devtools/slack-standin/sign.js';
import { type SlackStub, startSlackStub } from '../src/devtools/slack-standin/stand-in.js';

const { WebClient, WebAPIHTTPError, WebAPIPlatformError, WebAPIRateLimitedError } = webApi;

const SIGNING_SECRET = 'test-signing-secret';

function buildClient(stub: SlackStub, options: { rejectRateLimitedCalls?: boolean } = {}) {
  return new WebClient('xoxb-test', { slackApiUrl: stub.url, retryConfig: { retries: 0 }, ...options });
}

describe('slack stub', () => {
  let stub: SlackStub;
  before(async () => {
    stub = await startSlackStub();
  });
  after(async () => {
    await stub.close();
  });

  test('listens on loopback under /api/', () => {
    assert.match(stub.url, /^http:\/\/127\.0\.0\.1:\d+\/api\/$/);
  });

  test('records chat.postMessage from a real WebClient, with decoded blocks, and answers like Slack', async () => {
    const client = buildClient(stub);
    const blocks = [{ type: 'section', text: { type: 'mrkdwn', text: '*checkout* is down' } }];
    const first = await client.chat.postMessage({ channel: 'C0INC', text: 'checkout is down', blocks });
    const second = await client.chat.postMessage({ channel: 'C0INC', text: 'update', thread_ts: first.ts });

    const posts = stub.callsTo('chat.postMessage').slice(-2);
    assert.equal(posts.length, 2);
    assert.deepEqual(posts[0]?.args.blocks, blocks);
    assert.equal(posts[0]?.args.channel, 'C0INC');
    assert.equal(posts[0]?.token, 'xoxb-test');
    assert.equal(posts[1]?.args.thread_ts, first.ts);
    assert.ok((posts[0]?.at ?? 0) <= Date.now());

    assert.equal(first.ok, true);
    assert.equal(first.channel, 'C0INC');
    assert.match(first.ts ?? '', /^\d{10}\.\d{6}$/);
    assert.ok(Number(second.ts) > Number(first.ts), 'ts values increase');
    assert.equal(first.message?.bot_id, 'B0BOT');
    assert.deepEqual(first.message?.blocks, blocks);
  });

  test('answers auth.test, chat.update, chat.postEphemeral, conversations.info, users.info and others', async () => {
    const client = buildClient(stub);
    const auth = await client.auth.test();
    assert.equal(auth.user_id, 'U0BOT');
    assert.equal(auth.bot_id, 'B0BOT');
    assert.equal(auth.team_id, 'T0001');

    const updated = await client.chat.update({ channel: 'C0INC', ts: '1700000000.000100', text: 'resolved' });
    assert.deepEqual([updated.channel, updated.ts, updated.text], ['C0INC', '1700000000.000100', 'resolved']);

    const ephemeral = await client.chat.postEphemeral({ channel: 'C0INC', user: 'U0001', text: 'only you' });
    assert.match(ephemeral.message_ts ?? '', /^\d{10}\.\d{6}$/);

    const info = await client.conversations.info({ channel: 'C0INC' });
    assert.equal(info.channel?.id, 'C0INC');
    const user = await client.users.info({ user: 'U0001' });
    assert.equal(user.user?.id, 'U0001');

    const other = await client.reactions.add({
      channel: 'C0INC',
      timestamp: '1700000000.000100',
      name: 'eyes',
    });
    assert.equal(other.ok, true);
  });

  test('parses JSON bodies and a token form field', async () => {
    const jsonResponse = await fetch(`${stub.url}chat.postMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', authorization: 'Bearer xoxb-json' },
      body: JSON.stringify({ channel: 'C0JSON', text: 'hi', blocks: [{ type: 'divider' }] }),
    });
    assert.equal(jsonResponse.headers.get('content-type')?.startsWith('application/json'), true);
    const jsonCall = stub.callsTo('chat.postMessage').at(-1);
    assert.deepEqual(jsonCall?.args, { channel: 'C0JSON', text: 'hi', blocks: [{ type: 'divider' }] });
    assert.equal(jsonCall?.token, 'xoxb-json');

    await fetch(`${stub.url}chat.postMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: 'xoxb-form', channel: 'C0FORM', text: 'hi' }).toString(),
    });
    assert.equal(stub.callsTo('chat.postMessage').at(-1)?.token, 'xoxb-form');
  });

  test('failNext with 429 + retryAfter makes a rate-limit-rejecting WebClient throw with retryAfter', async () => {
    const client = buildClient(stub, { rejectRateLimitedCalls: true });
    const postsBefore = stub.callsTo('chat.postMessage').length;
    stub.failNext('chat.postMessage', 1, { status: 429, retryAfter: 7 });

    await assert.rejects(client.chat.postMessage({ channel: 'C0INC', text: 'x' }), (error: unknown) => {
      assert.ok(error instanceof WebAPIRateLimitedError);
      assert.equal(error.retryAfter, 7);
      assert.equal(error.code, 'slack_webapi_rate_limited_error');
      return true;
    });
    const retried = await client.chat.postMessage({ channel: 'C0INC', text: 'x' });
    assert.equal(retried.ok, true, 'only the next call fails');
    assert.equal(stub.callsTo('chat.postMessage').length, postsBefore + 2, 'failed calls are recorded too');
  });

  test('failNext with a 500 makes the WebClient throw an HTTP error', async () => {
    const client = buildClient(stub);
    stub.failNext('*', 2, { status: 500 });
    for (const call of [
      () => client.auth.test(),
      () => client.chat.postMessage({ channel: 'C0INC', text: 'x' }),
    ]) {
      await assert.rejects(call(), (error: unknown) => {
        assert.ok(error instanceof WebAPIHTTPError);
        assert.equal(error.statusCode, 500);
        return true;
      });
    }
    assert.equal((await client.auth.test()).ok, true);
  });

  test('failNext with a Slack error answers ok:false, which the WebClient throws as a platform error', async () => {
    const client = buildClient(stub);
    stub.failNext('chat.postMessage', 1, { error: 'channel_not_found' });
    assert.equal((await client.auth.test()).ok, true, 'other methods are unaffected');
    await assert.rejects(client.chat.postMessage({ channel: 'C0GONE', text: 'x' }), (error: unknown) => {
      assert.ok(error instanceof WebAPIPlatformError);
      assert.equal(error.data.error, 'channel_not_found');
      return true;
    });
  });

  test('waitFor resolves once the predicate holds and rejects listing the calls on timeout', async () => {
    const client = buildClient(stub);
    setTimeout(() => {
      client.chat.postMessage({ channel: 'C0LATE', text: 'late' }).catch(() => undefined);
    }, 50);
    await stub.waitFor((calls) => calls.some((c) => c.args.channel === 'C0LATE'), 2_000);

    await assert.rejects(
      stub.waitFor((calls) => calls.some((c) => c.method === 'views.open'), 100),
      /within 100 ms; calls seen:[\s\S]*chat\.postMessage \{"channel":"C0LATE"/,
    );
  });
});

describe('slack request signing', () => {
  const body = 'token=x&command=%2Fincident&text=ack';

  test('produces a signature that Bolt verifies, and a tampered body fails', () => {
    const headers = signSlackRequest(SIGNING_SECRET, body);
    const verify = (rawBody: string, secret = SIGNING_SECRET) =>
      isValidSlackRequest({
        signingSecret: secret,
        body: rawBody,
        headers: {
          'x-slack-signature': headers['X-Slack-Signature'] ?? '',
          'x-slack-request-timestamp': Number(headers['X-Slack-Request-Timestamp']),
        },
      });
    assert.match(headers['X-Slack-Signature'] ?? '', /^v0=[0-9a-f]{64}$/);
    assert.equal(verify(body), true);
    assert.equal(verify(`${body}&text=resolve`), false);
    assert.equal(verify(body, 'another-secret'), false);
  });

  test('a timestamp older than five minutes is rejected as stale', () => {
    const timestamp = Math.floor(Date.now() / 1000) - 6 * 60;
    const headers = signSlackRequest(SIGNING_SECRET, body, timestamp);
    assert.equal(headers['X-Slack-Request-Timestamp'], String(timestamp));
    const valid = isValidSlackRequest({
      signingSecret: SIGNING_SECRET,
      body,
      headers: {
        'x-slack-signature': headers['X-Slack-Signature'] ?? '',
        'x-slack-request-timestamp': timestamp,
      },
    });
    assert.equal(valid, false);
  });
});

describe('signed requests against a real Bolt receiver', () => {
  let stub: SlackStub;
  let app: App;
  let baseUrl: string;
  const seen: Record<string, unknown>[] = [];

  before(async () => {
    stub = await startSlackStub();
    app = new App({
      token: 'xoxb-test',
      signingSecret: SIGNING_SECRET,
      logLevel: LogLevel.ERROR,
      clientOptions: { slackApiUrl: stub.url, retryConfig: { retries: 0 } },
    });
    app.command('/incident', async ({ ack, command, client }) => {
      await ack();
      seen.push({ kind: 'command', ...command });
      await client.chat.postMessage({ channel: command.channel_id, text: `command: ${command.text}` });
    });
    app.event('app_mention', async ({ event, say }) => {
      seen.push({ kind: 'event', ...event });
      await say(`mention: ${event.text}`);
    });
    app.action('ack_incident', async ({ ack, body }) => {
      // recorded before ack(), which is what lets the HTTP response return
      seen.push({ kind: 'action', user: body.user.id });
      await ack();
    });
    const server = await app.start({ port: 0, host: '127.0.0.1' });
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await app.stop();
    await stub.close();
  });

  test('a slash command is accepted and its listener reaches the stub', async () => {
    const res = await sendSlashCommand(baseUrl, SIGNING_SECRET, {
      command: '/incident',
      text: 'ack INC-1',
      channel_id: 'C0INC',
    });
    assert.equal(res.status, 200);
    await stub.waitFor((calls) => calls.some((c) => c.args.text === 'command: ack INC-1'));
    const command = seen.find((s) => s.kind === 'command');
    assert.equal(command?.channel_id, 'C0INC');
    assert.equal(command?.user_id, 'U0001');
    assert.equal(command?.team_id, 'T0001');
    assert.match(String(command?.response_url), /^http:\/\/127\.0\.0\.1:9\//);
    assert.equal(stub.callsTo('auth.test').length >= 1, true, 'Bolt verified its token against the stub');
  });

  test('an event is accepted and answered through the stub', async () => {
    const res = await sendEvent(baseUrl, SIGNING_SECRET, {
      type: 'app_mention',
      user: 'U0001',
      text: '<@U0BOT> status',
      channel: 'C0INC',
      ts: '1700000001.000100',
    });
    assert.equal(res.status, 200);
    assert.match(res.eventId, /^Ev[0-9A-F]{12}$/);
    await stub.waitFor((calls) => calls.some((c) => c.args.text === 'mention: <@U0BOT> status'));
  });

  test('a block action is accepted', async () => {
    const res = await sendBlockAction(baseUrl, SIGNING_SECRET, {
      actions: [{ type: 'button', action_id: 'ack_incident', block_id: 'incident', value: 'INC-1' }],
      container: { type: 'message', message_ts: '1700000000.000100', channel_id: 'C0INC' },
      channel: { id: 'C0INC', name: 'incidents' },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(
      seen.find((s) => s.kind === 'action'),
      { kind: 'action', user: 'U0001' },
    );
  });

  test('a bad signature or a stale timestamp is refused', async () => {
    const forged = await sendSlashCommand(
      baseUrl,
      SIGNING_SECRET,
      { command: '/incident', text: 'forged' },
      { badSignature: true },
    );
    assert.equal(forged.status, 401);
    const stale = await sendEvent(
      baseUrl,
      SIGNING_SECRET,
      { type: 'app_mention', user: 'U0001', text: 'old', channel: 'C0INC' },
      { timestamp: Math.floor(Date.now() / 1000) - 10 * 60 },
    );
    assert.equal(stale.status, 401);
    assert.equal(
      seen.some((s) => s.text === 'forged' || s.text === 'old'),
      false,
    );
  });
});
