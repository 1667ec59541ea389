import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type ModalView, WebAPIPlatformError, WebAPIRateLimitedError, WebClient } from '@slack/web-api';
import { chromium } from 'playwright-core';
import type { StoreEvent } from '../src/devtools/slack-standin/conversations.js';
import { PAGE_SCRIPTS } from '../src/devtools/slack-standin/page.js';
import { loadRenderer, type RenderNode } from '../src/devtools/slack-standin/render-script.js';
import { type SlackStub, StandInError, startSlackStub } from '../src/devtools/slack-standin/stand-in.js';
import { APPROVE_ACTION, buildApprovalPacket } from '../src/slack/blocks/approval-packet.js';
import { SIGNING_SECRET, startTestApp } from './helpers/test-app.js';

const BOT_SECRET = 'fake-bot-signing-secret';
/** Debian's Chromium, as test/e2e-browser.test.ts drives it; the browser check is skipped without it */
const CHROMIUM = '/usr/bin/chromium';
/** the smallest valid PNG: 1×1, one transparent pixel */
const PNG_1X1 = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=',
  'base64',
);

function client(stub: SlackStub, options: { rejectRateLimitedCalls?: boolean } = {}) {
  return new WebClient('xoxb-test', { slackApiUrl: stub.url, retryConfig: { retries: 0 }, ...options });
}

/** What a fake bot received: verified like Bolt verifies it, and decoded. */
interface Received {
  kind: 'command' | 'event' | 'action';
  fields: Record<string, unknown>;
}

/**
 * A stand-in for the bot's HTTP receiver: refuses (401) anything not signed with BOT_SECRET, records the rest, and
 * answers what `reply` says.
 */
async function startFakeBot(
  reply: (r: Received) => { status: number; body?: string; contentType?: string } = () => ({ status: 200 }),
) {
  const received: Received[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const timestamp = String(req.headers['x-slack-request-timestamp'] ?? '');
      const expected = `v0=${createHmac('sha256', BOT_SECRET).update(`v0:${timestamp}:${raw}`).digest('hex')}`;
      const given = String(req.headers['x-slack-signature'] ?? '');
      const fresh = Math.abs(Date.now() / 1000 - Number(timestamp)) < 300;
      if (
        req.url !== '/slack/events' ||
        !fresh ||
        given.length !== expected.length ||
        !timingSafeEqual(Buffer.from(given), Buffer.from(expected))
      ) {
        res.writeHead(401).end('bad signature');
        return;
      }
      let r: Received;
      if ((req.headers['content-type'] ?? '').startsWith('application/json')) {
        r = { kind: 'event', fields: JSON.parse(raw) as Record<string, unknown> };
      } else {
        const form = Object.fromEntries(new URLSearchParams(raw));
        r = form.payload
          ? { kind: 'action', fields: JSON.parse(form.payload) as Record<string, unknown> }
          : { kind: 'command', fields: form };
      }
      received.push(r);
      const answer = reply(r);
      res.writeHead(answer.status, { 'content-type': answer.contentType ?? 'application/json' });
      res.end(answer.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

/** Reads Server-Sent Events from the stand-in's stream until `want` matches one (or the timeout passes). */
async function openStream(stub: SlackStub, as: string) {
  const controller = new AbortController();
  const res = await fetch(`${stub.pageUrl}ui/stream?as=${as}`, { signal: controller.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const seen: { type: string; data: Record<string, unknown> }[] = [];
  return {
    seen,
    async next(want: (e: { type: string; data: Record<string, unknown> }) => boolean, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = seen.find(want);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no such event; seen: ${JSON.stringify(seen)}`);
        const timer = setTimeout(() => controller.abort(), Math.max(1, deadline - Date.now()));
        const chunk = await reader.read().finally(() => clearTimeout(timer));
        if (chunk.done) throw new Error('stream ended');
        buffer += decoder.decode(chunk.value, { stream: true });
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const type = /^event: (.+)$/m.exec(frame)?.[1];
          const data = /^data: (.+)$/m.exec(frame)?.[1];
          if (type && data) seen.push({ type, data: JSON.parse(data) as Record<string, unknown> });
          end = buffer.indexOf('\n\n');
        }
      }
    },
    close: () => controller.abort(),
  };
}

describe('slack stand-in: the conversations the bot makes', () => {
  let stub: SlackStub;
  before(async () => {
    stub = await startSlackStub({
      users: [
        { id: 'U0001', name: 'alice' },
        { id: 'U0002', name: 'bob' },
      ],
      usergroups: [{ id: 'S0LEADS', handle: 'sre-leads', users: ['U0002'] }],
    });
  });
  after(async () => {
    await stub.close();
  });

  test('listens on loopback: the Web API under /api/, the page at /', () => {
    assert.match(stub.url, /^http:\/\/127\.0\.0\.1:\d+\/api\/$/);
    assert.equal(stub.pageUrl, stub.url.replace(/api\/$/, ''));
  });

  test('a post by channel name lands in the known channel, replies group under their root', async () => {
    const slack = client(stub);
    const blocks = [{ type: 'section', text: { type: 'mrkdwn', text: '*checkout* is down' } }];
    const root = await slack.chat.postMessage({ channel: '#incidents', text: 'checkout is down', blocks });
    assert.equal(root.channel, '#incidents', 'the channel as the app gave it, as before');
    const reply = await slack.chat.postMessage({ channel: 'C0001', thread_ts: root.ts, text: 'first' });
    // replying to a reply lands in the root's thread, as in Slack
    await slack.chat.postMessage({ channel: 'C0001', thread_ts: reply.ts, text: 'second' });

    const store = stub.conversations;
    const stored = store.message(root.ts as string, 'C0001');
    assert.equal(stored?.text, 'checkout is down');
    assert.equal(stored?.user, 'U0BOT');
    assert.equal(stored?.botId, 'B0BOT');
    assert.equal(stored?.source, 'web-api');
    assert.equal(stored?.blocks?.[0]?.type, 'section');
    assert.equal(typeof stored?.blocks?.[0]?.block_id, 'string', 'Slack names every block');
    assert.deepEqual(
      store.replies('C0001', root.ts as string).map((m) => m.text),
      ['first', 'second'],
    );
    assert.equal(
      store.history('C0001').some((m) => m.text === 'first'),
      false,
      'replies are not in the channel',
    );
    assert.equal(store.channel('C0001')?.name, 'incidents');

    const thread = await slack.conversations.replies({ channel: 'C0001', ts: root.ts as string });
    assert.deepEqual(
      thread.messages?.map((m) => m.text),
      ['checkout is down', 'first', 'second'],
    );
    assert.equal(thread.messages?.[0]?.reply_count, 2);
  });

  test('a post to a channel never configured creates it (any id or name the bot uses)', async () => {
    const slack = client(stub);
    await slack.chat.postMessage({ channel: 'C0PAY', text: 'by id' });
    await slack.chat.postMessage({ channel: '#payments-incidents', text: 'by name' });
    assert.equal(stub.conversations.channel('C0PAY')?.name, 'channel-c0pay');
    const byName = stub.conversations.channel('payments-incidents');
    assert.match(byName?.id ?? '', /^C[A-Z0-9]+$/);
    assert.deepEqual(
      stub.conversations.history(byName?.id ?? '').map((m) => m.text),
      ['by name'],
    );
    const info = await slack.conversations.info({ channel: 'C0001' });
    assert.equal(info.channel?.name, 'incidents');
  });

  test('chat.update replaces the message in place and marks it edited; chat.delete removes it', async () => {
    const slack = client(stub);
    const posted = await slack.chat.postMessage({ channel: 'C0001', text: 'investigating' });
    const ts = posted.ts as string;
    const blocks = [{ type: 'section', text: { type: 'mrkdwn', text: 'resolved' } }];
    const updated = await slack.chat.update({ channel: 'C0001', ts, text: 'resolved', blocks });
    assert.equal(updated.ts, ts);
    const message = stub.conversations.message(ts, 'C0001');
    assert.equal(message?.text, 'resolved');
    assert.deepEqual(
      message?.blocks?.map((b) => (b.text as { text: string }).text),
      ['resolved'],
    );
    assert.equal(message?.edited?.user, 'U0BOT');
    assert.equal(stub.conversations.history('C0001').filter((m) => m.ts === ts).length, 1, 'in place');

    await slack.chat.delete({ channel: 'C0001', ts });
    assert.equal(stub.conversations.message(ts, 'C0001'), undefined);
    await assert.rejects(slack.chat.delete({ channel: 'C0001', ts }), (error: unknown) => {
      assert.ok(error instanceof WebAPIPlatformError);
      assert.equal(error.data.error, 'message_not_found');
      return true;
    });
  });

  test('an update of a message never seen still answers ok (as tests rely on) and says so on the page', async () => {
    const notices: StoreEvent[] = [];
    const stop = stub.conversations.subscribe((e) => {
      if (e.type === 'notice') notices.push(e);
    });
    const res = await client(stub).chat.update({ channel: 'C0001', ts: '1699999999.000001', text: 'x' });
    stop();
    assert.equal(res.ok, true);
    assert.equal(stub.conversations.message('1699999999.000001', 'C0001'), undefined, 'nothing made up');
    assert.match(JSON.stringify(notices), /1699999999\.000001.*message_not_found/);
  });

  test('ephemeral messages are stored for their user only', async () => {
    const slack = client(stub);
    const root = await slack.chat.postMessage({ channel: 'C0001', text: 'card' });
    const res = await slack.chat.postEphemeral({
      channel: 'C0001',
      user: 'U0002',
      text: 'only bob',
      thread_ts: root.ts as string,
    });
    const ts = res.message_ts as string;
    assert.equal(stub.conversations.message(ts, 'C0001')?.ephemeralTo, 'U0002');
    assert.equal(stub.conversations.message(ts, 'C0001')?.threadTs, root.ts);
    const visible = (viewer: string) =>
      stub.conversations.messages({ viewer }).some((m) => m.ts === ts && m.text === 'only bob');
    assert.equal(visible('U0002'), true);
    assert.equal(visible('U0001'), false);

    const asAlice = (await (await fetch(`${stub.pageUrl}ui/state?as=U0001`)).json()) as {
      messages: { ts: string }[];
    };
    const asBob = (await (await fetch(`${stub.pageUrl}ui/state?as=bob`)).json()) as {
      messages: { ts: string }[];
      me: string;
    };
    assert.equal(
      asAlice.messages.some((m) => m.ts === ts),
      false,
    );
    assert.equal(
      asBob.messages.some((m) => m.ts === ts),
      true,
    );
    assert.equal(asBob.me, 'U0002');
    const history = await slack.conversations.replies({ channel: 'C0001', ts: root.ts as string });
    assert.equal(history.messages?.length, 1, 'the API never lists ephemeral messages');
  });

  test('a file uploaded with files upload v2 shows as a message in the thread, its bytes served back', async () => {
    const slack = client(stub);
    const root = await slack.chat.postMessage({ channel: 'C0001', text: 'card' });
    await slack.filesUploadV2({
      channel_id: 'C0001',
      thread_ts: root.ts as string,
      file: PNG_1X1,
      filename: 'chart.png',
      title: 'latency chart',
      initial_comment: 'the series around the anomaly',
    });
    const [message] = stub.conversations.replies('C0001', root.ts as string);
    assert.equal(message?.text, 'the series around the anomaly');
    const file = message?.files?.[0];
    assert.equal(file?.title, 'latency chart');
    assert.equal(file?.mimetype, 'image/png');
    assert.equal(file?.size, PNG_1X1.length);
    const res = await fetch(`${stub.pageUrl}files/${file?.id}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/png');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), PNG_1X1);
    // the raw upload is still kept as before (tests look for the PNG inside it)
    assert.ok(stub.uploads.get(file?.id ?? '')?.includes(PNG_1X1.subarray(0, 8)));
  });

  test('a file that is not an image is only ever served as a download', async () => {
    const slack = client(stub);
    await slack.filesUploadV2({
      channel_id: 'C0001',
      file: Buffer.from('<html><script>alert(1)</script></html>'),
      filename: 'page.html',
    });
    const message = stub.conversations.history('C0001').findLast((m) => m.files?.[0]?.name === 'page.html');
    const res = await fetch(`${stub.pageUrl}files/${message?.files?.[0]?.id}`);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    assert.match(res.headers.get('content-disposition') ?? '', /^attachment/);
    assert.equal((await fetch(`${stub.pageUrl}files/F0NOPE`)).status, 404);
  });

  test('reactions and user groups are answered from the store', async () => {
    const slack = client(stub);
    const posted = await slack.chat.postMessage({ channel: 'C0001', text: 'react to me' });
    await slack.reactions.add({ channel: 'C0001', timestamp: posted.ts as string, name: 'eyes' });
    assert.deepEqual(stub.conversations.message(posted.ts as string, 'C0001')?.reactions, [
      { name: 'eyes', users: ['U0BOT'] },
    ]);
    const members = await slack.usergroups.users.list({ usergroup: 'S0LEADS' });
    assert.deepEqual(members.users, ['U0002']);
    assert.deepEqual((await slack.usergroups.users.list({ usergroup: 'S0OTHER' })).users, []);
    assert.equal((await slack.users.info({ user: 'U0002' })).user?.name, 'bob');
  });

  test('rateLimit answers 429 with Retry-After past the limit, and can be lifted', async () => {
    const slack = client(stub, { rejectRateLimitedCalls: true });
    stub.rateLimit('chat.postMessage', { calls: 2, perMs: 60_000, retryAfter: 3 });
    await slack.chat.postMessage({ channel: 'C0001', text: '1' });
    await slack.chat.postMessage({ channel: 'C0001', text: '2' });
    await assert.rejects(slack.chat.postMessage({ channel: 'C0001', text: '3' }), (error: unknown) => {
      assert.ok(error instanceof WebAPIRateLimitedError);
      assert.equal(error.retryAfter, 3);
      return true;
    });
    assert.equal((await slack.auth.test()).ok, true, 'other methods are not limited');
    assert.equal(
      stub.conversations.history('C0001').some((m) => m.text === '3'),
      false,
    );
    stub.rateLimit('chat.postMessage', null);
    assert.equal((await slack.chat.postMessage({ channel: 'C0001', text: '4' })).ok, true);
  });
});

describe('slack stand-in: strict mode', () => {
  test('refuses channels not in the list and updates of messages never posted, like Slack', async () => {
    const stub = await startSlackStub({ strict: true, channels: [{ id: 'C0OPS', name: 'ops' }] });
    try {
      const slack = client(stub);
      const posted = await slack.chat.postMessage({ channel: '#ops', text: 'ok' });
      assert.equal(posted.ok, true);
      const refusal = (code: string) => (error: unknown) => {
        assert.ok(error instanceof WebAPIPlatformError);
        assert.equal(error.data.error, code);
        return true;
      };
      await assert.rejects(
        slack.chat.postMessage({ channel: 'C0ELSE', text: 'x' }),
        refusal('channel_not_found'),
      );
      await assert.rejects(
        slack.chat.update({ channel: 'C0OPS', ts: '1700000099.000100', text: 'x' }),
        refusal('message_not_found'),
      );
      assert.equal(
        (await slack.chat.update({ channel: 'C0OPS', ts: posted.ts as string, text: 'edited' })).ok,
        true,
      );
    } finally {
      await stub.close();
    }
  });

  test('options are checked, naming the bad one', async () => {
    await assert.rejects(
      startSlackStub({ channels: [{ id: 'incidents', name: 'incidents' }] }),
      /channels\.0\.id: expected a channel id/,
    );
    await assert.rejects(startSlackStub({ host: '0.0.0.0' as '127.0.0.1' }), /host/);
  });
});

describe('slack stand-in: acting as a user', () => {
  let stub: SlackStub;
  let bot: Awaited<ReturnType<typeof startFakeBot>>;
  let answerCommand: (r: Received) => { status: number; body?: string } = () => ({ status: 200 });

  before(async () => {
    stub = await startSlackStub({
      users: [
        { id: 'U0001', name: 'alice' },
        { id: 'U0002', name: 'bob' },
      ],
    });
    bot = await startFakeBot((r) => (r.kind === 'command' ? answerCommand(r) : { status: 200 }));
    stub.connectBot({ url: bot.url, signingSecret: BOT_SECRET });
  });
  after(async () => {
    await stub.close();
    await bot.close();
  });

  test('before a bot is connected, acting answers a clear 409', async () => {
    const unconnected = await startSlackStub();
    try {
      await assert.rejects(unconnected.command('/incident help'), (error: unknown) => {
        assert.ok(error instanceof StandInError);
        assert.equal(error.code, 'not_connected');
        return true;
      });
      const res = await postJson(`${unconnected.pageUrl}ui/command`, { text: '/incident help' });
      assert.equal(res.status, 409);
      assert.equal(res.json.error, 'not_connected');
      assert.match(String(res.json.message), /connectBot/);
      assert.throws(
        () => unconnected.connectBot({ url: 'http://10.0.0.1:3000', signingSecret: 's' }),
        /loopback/,
      );
    } finally {
      await unconnected.close();
    }
  });

  test('a slash command is signed and shaped like Slack; its ephemeral answer is shown to its user', async () => {
    answerCommand = () => ({
      status: 200,
      body: JSON.stringify({ response_type: 'ephemeral', text: '*Usage:* `/incident list`' }),
    });
    const answer = await stub.command('/incident list', { user: 'bob', channel: '#incidents' });
    assert.equal(answer.status, 200);
    const sent = bot.received.at(-1);
    assert.equal(sent?.kind, 'command');
    assert.equal(sent?.fields.command, '/incident');
    assert.equal(sent?.fields.text, 'list');
    assert.equal(sent?.fields.user_id, 'U0002');
    assert.equal(sent?.fields.user_name, 'bob');
    assert.equal(sent?.fields.channel_id, 'C0001');
    assert.equal(sent?.fields.channel_name, 'incidents');
    assert.equal(sent?.fields.team_id, 'T0001');
    assert.equal(sent?.fields.api_app_id, 'A0001');
    assert.match(String(sent?.fields.trigger_id), /\S+/);
    assert.equal(sent?.fields.response_url, answer.responseUrl);
    assert.match(answer.responseUrl, new RegExp(`^${stub.pageUrl}response/[a-f0-9]{32}$`));

    const shown = stub.conversations.history('C0001').at(-1);
    assert.equal(shown?.text, '*Usage:* `/incident list`');
    assert.equal(shown?.ephemeralTo, 'U0002');
    assert.equal(shown?.source, 'command-ack');
  });

  test('an in-channel answer shows the command and the answer to everyone', async () => {
    answerCommand = () => ({
      status: 200,
      body: JSON.stringify({ response_type: 'in_channel', text: 'done' }),
    });
    await stub.command('maintenance checkout 2h', { user: 'alice' });
    const [echo, shown] = stub.conversations.history('C0001', 'U0002').slice(-2);
    assert.equal(echo?.text, '/incident maintenance checkout 2h');
    assert.equal(echo?.user, 'U0001');
    assert.equal(shown?.text, 'done');
    assert.equal(shown?.ephemeralTo, undefined);
  });

  test('a command the bot fails is shown as Slack shows it, and as a notice', async () => {
    answerCommand = () => ({ status: 500, body: 'boom' });
    const notices: string[] = [];
    const stop = stub.conversations.subscribe((e) => {
      if (e.type === 'notice') notices.push(e.text);
    });
    const answer = await stub.command('/incident list');
    stop();
    assert.equal(answer.status, 500);
    assert.equal(answer.body, 'boom');
    const shown = stub.conversations.history('C0001').at(-1);
    assert.equal(shown?.user, 'USLACKBOT');
    assert.equal(shown?.text, '/incident failed with the error "dispatch_failed"');
    assert.deepEqual(notices, ['The bot answered /incident list with HTTP 500: boom']);
  });

  test('the response_url shows, replaces and deletes messages, and refuses bad bodies naming the field', async () => {
    answerCommand = () => ({ status: 200 });
    const { responseUrl } = await stub.command('/incident list', { user: 'alice' });
    const first = await postJson(responseUrl, { text: 'first answer' });
    assert.deepEqual([first.status, first.json.ok], [200, true]);
    const answer = stub.conversations.history('C0001').at(-1);
    assert.equal(answer?.text, 'first answer');
    assert.equal(answer?.ephemeralTo, 'U0001', 'ephemeral unless told otherwise');
    assert.equal(answer?.source, 'response-url');

    await postJson(responseUrl, { text: 'second answer', replace_original: true });
    assert.equal(stub.conversations.message(answer?.ts ?? '', 'C0001')?.text, 'second answer');

    await postJson(responseUrl, { text: 'for all', response_type: 'in_channel' });
    assert.equal(stub.conversations.history('C0001', 'U0002').at(-1)?.text, 'for all');

    const bad = await postJson(responseUrl, { text: 'x', response_type: 'loud' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.field, 'response_type');

    await postJson(responseUrl, { delete_original: true });
    assert.equal(stub.conversations.message(answer?.ts ?? '', 'C0001'), undefined);

    const fifth = await postJson(responseUrl, { text: 'fifth use' });
    assert.equal(fifth.status, 200, 'a refused body was not a use');
    const used = await postJson(responseUrl, { text: 'sixth use' });
    assert.deepEqual([used.status, used.json.error], [404, 'used_url'], 'five uses, as Slack allows');
    const unknown = await postJson(`${stub.pageUrl}response/${'0'.repeat(32)}`, { text: 'x' });
    assert.deepEqual([unknown.status, unknown.json.error], [404, 'expired_url']);
    assert.equal(stub.responses.filter((r) => r.id === responseUrl.split('/').at(-1)).length, 7);
  });

  test('a mention is stored as the user message and sent as an app_mention event in its thread', async () => {
    const root = await client(stub).chat.postMessage({ channel: 'C0001', text: 'incident card' });
    const answer = await stub.mention('@ai-sre status checkout <b>', {
      user: 'bob',
      threadTs: root.ts as string,
    });
    assert.equal(answer.status, 200);
    const sent = bot.received.at(-1);
    assert.equal(sent?.kind, 'event');
    assert.equal(sent?.fields.type, 'event_callback');
    assert.equal(sent?.fields.event_id, answer.eventId);
    const event = sent?.fields.event as Record<string, unknown>;
    assert.equal(event.type, 'app_mention');
    assert.equal(event.text, '<@U0BOT> status checkout &lt;b&gt;');
    assert.equal(event.user, 'U0002');
    assert.equal(event.channel, 'C0001');
    assert.equal(event.ts, answer.ts);
    assert.equal(event.thread_ts, root.ts);
    assert.equal((event.blocks as { type: string }[])[0]?.type, 'rich_text');

    const stored = stub.conversations.message(answer.ts, 'C0001');
    assert.equal(stored?.user, 'U0002');
    assert.equal(stored?.source, 'user');
    assert.equal(stored?.threadTs, root.ts);
  });

  test('a click sends a block_actions payload shaped like Slack, with the stored message', async () => {
    const packet = buildApprovalPacket({
      id: 7,
      status: 'pending',
      approvers: ['U0002'],
      expiresAt: new Date(Date.now() + 900_000),
      decidedBy: null,
      decidedAt: null,
      packet: {
        incident: { id: 42, title: 'slow', service: 'checkout', severity: 'critical' },
        runbook: { id: 'latency', name: 'Latency triage' },
        step: { id: 's1', action: 'k8s.restart', description: 'Restart pods', position: 0, of: 1 },
        hypothesis: null,
        target: 'deploy/checkout',
        config: {},
        evidence: [],
        preconditions: ['still unhealthy'],
        tier: 'guarded',
        tierWhy: 'restarts',
        blastRadius: 'checkout',
        rollback: 'none',
        verification: null,
        secondPersonRequired: false,
      },
    });
    const slack = client(stub);
    const root = await slack.chat.postMessage({ channel: 'C0001', text: 'card' });
    const posted = await slack.chat.postMessage({
      channel: 'C0001',
      thread_ts: root.ts as string,
      text: packet.text,
      blocks: packet.blocks,
    });
    const answer = await stub.click({ ts: posted.ts as string, actionId: APPROVE_ACTION, user: 'bob' });
    assert.equal(answer.status, 200);
    const payload = bot.received.at(-1)?.fields as Record<string, unknown>;
    assert.equal(bot.received.at(-1)?.kind, 'action');
    assert.equal(payload.type, 'block_actions');
    assert.deepEqual(payload.user, { id: 'U0002', username: 'bob', name: 'bob', team_id: 'T0001' });
    assert.deepEqual(payload.team, { id: 'T0001', domain: 'ai-sre-test' });
    assert.equal(payload.api_app_id, 'A0001');
    assert.match(String(payload.trigger_id), /\S+/);
    assert.equal(payload.response_url, answer.responseUrl);
    assert.deepEqual(payload.container, {
      type: 'message',
      message_ts: posted.ts,
      channel_id: 'C0001',
      is_ephemeral: false,
      thread_ts: root.ts,
    });
    assert.deepEqual(payload.channel, { id: 'C0001', name: 'incidents' });
    assert.deepEqual(payload.state, { values: {} });
    const message = payload.message as { ts: string; thread_ts: string; blocks: { type: string }[] };
    assert.equal(message.ts, posted.ts);
    assert.equal(message.thread_ts, root.ts);
    assert.deepEqual(
      message.blocks.map((b) => b.type),
      packet.blocks.map((b) => b.type),
    );
    const [action] = payload.actions as Record<string, unknown>[];
    assert.equal(action?.type, 'button');
    assert.equal(action?.action_id, APPROVE_ACTION);
    assert.equal(action?.block_id, 'approval-7');
    assert.deepEqual(action?.text, { type: 'plain_text', text: 'Approve' });
    assert.equal(action?.value, '7');
    assert.equal(action?.style, 'primary');
    assert.match(String(action?.action_ts), /^\d{10}\.\d{6}$/);

    // the bot answers through the response_url: replace_original edits the packet in place
    await postJson(answer.responseUrl, { replace_original: true, text: 'approved by bob' });
    assert.equal(stub.conversations.message(posted.ts as string, 'C0001')?.text, 'approved by bob');
  });

  test('choosing in a select sends the option picked; an option the select lacks is refused', async () => {
    const posted = await client(stub).chat.postMessage({
      channel: 'C0001',
      text: 'pick one',
      blocks: [
        {
          type: 'actions',
          block_id: 'choose',
          elements: [
            {
              type: 'static_select',
              action_id: 'severity',
              placeholder: { type: 'plain_text', text: 'Severity' },
              options: [
                { text: { type: 'plain_text', text: 'High' }, value: 'high' },
                { text: { type: 'plain_text', text: 'Low' }, value: 'low' },
              ],
            },
          ],
        },
      ],
    });
    await stub.click({ ts: posted.ts as string, actionId: 'severity', value: 'low' });
    const [action] = (bot.received.at(-1)?.fields.actions ?? []) as Record<string, unknown>[];
    assert.deepEqual(action?.selected_option, { text: { type: 'plain_text', text: 'Low' }, value: 'low' });
    assert.equal(action?.type, 'static_select');
    assert.equal(action?.block_id, 'choose');
    await assert.rejects(
      stub.click({ ts: posted.ts as string, actionId: 'severity', value: 'medium' }),
      /no element with action_id severity and value medium/,
    );
  });

  test('the bot can be given at start', async () => {
    const given = await startSlackStub({ bot: { url: bot.url, signingSecret: BOT_SECRET } });
    try {
      const state = (await (await fetch(`${given.pageUrl}ui/state`)).json()) as { botConnected: boolean };
      assert.equal(state.botConnected, true);
      const before = bot.received.length;
      assert.equal((await given.command('/incident help')).status, 200);
      assert.equal(bot.received.length, before + 1);
    } finally {
      await given.close();
    }
  });

  test('a click on an element the message does not have is refused, programmatically and on the page', async () => {
    const posted = await client(stub).chat.postMessage({ channel: 'C0001', text: 'no buttons' });
    await assert.rejects(stub.click({ ts: posted.ts as string, actionId: 'nope' }), (error: unknown) => {
      assert.ok(error instanceof StandInError);
      assert.equal(error.code, 'action_not_found');
      return true;
    });
    const res = await postJson(`${stub.pageUrl}ui/action`, { ts: posted.ts, actionId: 'nope' });
    assert.equal(res.status, 404);
    assert.equal(res.json.error, 'action_not_found');
  });

  test('the page routes act the same way as the methods', async () => {
    const before = bot.received.length;
    const res = await postJson(`${stub.pageUrl}ui/mention`, {
      text: 'hello @ai-sre help',
      user: 'U0001',
      channel: 'C0001',
    });
    assert.equal(res.status, 200);
    assert.equal((res.json.bot as { status: number }).status, 200);
    assert.equal(bot.received.length, before + 1);
    assert.equal(
      (bot.received.at(-1)?.fields.event as Record<string, unknown> | undefined)?.text,
      'hello <@U0BOT> help',
    );

    const said = await postJson(`${stub.pageUrl}ui/message`, { text: 'hi @bob <script>', user: 'alice' });
    assert.equal(said.status, 200);
    assert.equal(bot.received.length, before + 1, 'a plain message is not sent to the bot');
    assert.equal(
      stub.conversations.message(String(said.json.ts), 'C0001')?.text,
      'hi <@U0002> &lt;script&gt;',
    );
  });

  test('a bot that cannot be reached answers status 0 with the reason', async () => {
    const other = await startSlackStub();
    try {
      other.connectBot({ url: 'http://127.0.0.1:9', signingSecret: 's' });
      const answer = await other.command('/incident help');
      assert.equal(answer.status, 0);
      assert.match(answer.error ?? '', /fetch failed|ECONNREFUSED/);
      assert.equal(other.conversations.history('C0001').at(-1)?.user, 'USLACKBOT');
    } finally {
      await other.close();
    }
  });
});

describe('slack stand-in: the page and its JSON routes', () => {
  let stub: SlackStub;
  before(async () => {
    stub = await startSlackStub();
  });
  after(async () => {
    await stub.close();
  });

  test('the page is served self-contained, with a CSP that runs only its own scripts', async () => {
    const res = await fetch(stub.pageUrl);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'sha256-[^']+' 'sha256-[^']+'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const html = await res.text();
    assert.doesNotMatch(html, /https?:\/\//, 'no URL of any site');
    assert.doesNotMatch(html, /(src|href)\s*=\s*["']?\/\//i, 'no protocol-relative URL');
    assert.doesNotMatch(html, /@import|url\(/, 'no stylesheet or font fetched');
    for (const hook of ['composer', 'thread', 'thread-composer', 'user-select', 'messages']) {
      assert.match(html, new RegExp(`data-testid="${hook}"`));
    }
    assert.match(html, /setAttribute\('data-testid', 'message'|'data-testid': 'message'/);
  });

  test('the page scripts never hand data to an HTML parser', () => {
    for (const [name, script] of Object.entries(PAGE_SCRIPTS)) {
      assert.doesNotMatch(
        script,
        /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|srcdoc|\.html\(/,
        name,
      );
    }
  });

  test('the JSON routes answer 400 naming the bad field', async () => {
    const cases: [string, unknown, string][] = [
      ['ui/command', {}, 'text'],
      ['ui/command', { text: '   ' }, 'text'],
      ['ui/mention', { text: 'hi', threadTs: 'yesterday' }, 'threadTs'],
      ['ui/message', { text: 'hi', user: '' }, 'user'],
      ['ui/action', { actionId: 'x' }, 'ts'],
      ['ui/action', { ts: '1700000000.000100' }, 'actionId'],
      ['ui/action', { ts: '1700000000.000100', actionId: 'x', value: 5 }, 'value'],
      ['ui/command', 'not json', '(body)'],
    ];
    for (const [path, body, field] of cases) {
      const res = await postJson(`${stub.pageUrl}${path}`, body);
      assert.equal(res.status, 400, `${path} ${JSON.stringify(body)}`);
      assert.equal(res.json.field, field, `${path} ${JSON.stringify(body)}`);
      assert.match(String(res.json.message), new RegExp(`^${field.replace(/[()]/g, '\\$&')}: `));
    }
  });

  test('only same-origin JSON is taken: other content types and origins are refused', async () => {
    const form = await fetch(`${stub.pageUrl}ui/message`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ text: 'csrf' }),
    });
    assert.equal(form.status, 415);
    const foreign = await postJson(
      `${stub.pageUrl}ui/message`,
      { text: 'csrf' },
      { origin: 'https://evil.example' },
    );
    assert.equal(foreign.status, 403);
    const own = await postJson(
      `${stub.pageUrl}ui/message`,
      { text: 'mine' },
      { origin: stub.pageUrl.replace(/\/$/, '') },
    );
    assert.equal(own.status, 200);
    assert.equal((await fetch(`${stub.pageUrl}ui/message`)).status, 405);
    assert.equal(
      stub.conversations.messages().some((m) => m.text === 'csrf'),
      false,
    );
  });

  test('the stream delivers a new message, an edit and a deletion live, and no one else’s ephemeral message', async () => {
    const stream = await openStream(stub, 'U0001');
    try {
      const slack = client(stub);
      await slack.chat.postEphemeral({ channel: 'C0001', user: 'U0SOMEONE', text: 'not for alice' });
      const posted = await slack.chat.postMessage({ channel: 'C0001', text: 'live' });
      const added = await stream.next(
        (e) => e.type === 'message' && (e.data.message as { ts: string }).ts === posted.ts,
      );
      assert.equal((added.data.message as { text: string }).text, 'live');
      await slack.chat.update({ channel: 'C0001', ts: posted.ts as string, text: 'live, edited' });
      const edited = await stream.next(
        (e) => e.type === 'message' && (e.data.message as { text: string }).text === 'live, edited',
      );
      assert.ok((edited.data.message as { edited?: unknown }).edited);
      await slack.chat.delete({ channel: 'C0001', ts: posted.ts as string });
      await stream.next((e) => e.type === 'deleted' && e.data.ts === posted.ts);
      assert.equal(
        stream.seen.some((e) => JSON.stringify(e.data).includes('not for alice')),
        false,
      );
    } finally {
      stream.close();
    }
  });
});

/** A modal like the bot's resolution note: block_ids differ from action_ids so the values' nesting is checked. */
const NOTE_MODAL: ModalView = {
  type: 'modal',
  callback_id: 'note',
  private_metadata: '42',
  notify_on_close: true,
  title: { type: 'plain_text', text: 'Resolution note' },
  submit: { type: 'plain_text', text: 'Save' },
  close: { type: 'plain_text', text: 'Not now' },
  blocks: [
    { type: 'section', text: { type: 'mrkdwn', text: 'For *INC-42*' } },
    {
      type: 'input',
      block_id: 'cause',
      optional: true,
      label: { type: 'plain_text', text: 'What caused it' },
      hint: { type: 'plain_text', text: 'e.g. a connection leak' },
      element: { type: 'plain_text_input', action_id: 'cause_text', max_length: 1000 },
    },
    {
      type: 'input',
      block_id: 'note',
      label: { type: 'plain_text', text: 'Anything else' },
      element: { type: 'plain_text_input', action_id: 'note_text', multiline: true },
    },
    { type: 'context', elements: [{ type: 'mrkdwn', text: 'saved to the postmortem' }] },
  ],
};

describe('slack stand-in: modals the bot opens', () => {
  let stub: SlackStub;
  let bot: Awaited<ReturnType<typeof startFakeBot>>;
  let buttonTs = '';
  const opened: Promise<unknown>[] = [];

  /** what the bot received of `type` (block_actions, view_submission, view_closed) */
  const payloads = (type: string) =>
    bot.received.filter((r) => r.kind === 'action' && r.fields.type === type).map((r) => r.fields);
  const stateAs = async (user: string) => {
    const res = await fetch(`${stub.pageUrl}ui/state?as=${user}`);
    return (await res.json()) as { views: { id: string; user?: string; view: Record<string, unknown> }[] };
  };
  /** alice clicks the button on the page; the bot answers by opening the modal; its id */
  const openAsAlice = async (): Promise<string> => {
    const before = stub.callsTo('views.open').length;
    const click = await postJson(`${stub.pageUrl}ui/action`, {
      ts: buttonTs,
      actionId: 'open_note',
      user: 'alice',
    });
    assert.equal(click.status, 200);
    await stub.waitFor((calls) => calls.filter((c) => c.method === 'views.open').length > before);
    await Promise.all(opened);
    const view = stub.conversations.views().at(-1);
    assert.ok(view);
    return view.id;
  };

  before(async () => {
    stub = await startSlackStub({
      users: [
        { id: 'U0001', name: 'alice' },
        { id: 'U0002', name: 'bob' },
      ],
    });
    bot = await startFakeBot((r) => {
      if (r.kind !== 'action') return { status: 200 };
      if (r.fields.type === 'block_actions') {
        // as Bolt does: ack at once, then open the modal with the click's trigger
        opened.push(client(stub).views.open({ trigger_id: String(r.fields.trigger_id), view: NOTE_MODAL }));
        return { status: 200 };
      }
      if (r.fields.type === 'view_submission') {
        const values = (
          r.fields.view as { state: { values: Record<string, Record<string, { value: string }>> } }
        ).state.values;
        if (!values.cause?.cause_text?.value)
          return {
            status: 200,
            body: JSON.stringify({ response_action: 'errors', errors: { cause: 'Say what caused it' } }),
          };
      }
      return { status: 200 };
    });
    stub.connectBot({ url: bot.url, signingSecret: BOT_SECRET });
    const posted = await client(stub).chat.postMessage({
      channel: 'C0001',
      text: 'resolved',
      blocks: [
        {
          type: 'actions',
          elements: [
            { type: 'button', action_id: 'open_note', text: { type: 'plain_text', text: 'Add a note' } },
          ],
        },
      ],
    });
    buttonTs = posted.ts as string;
  });
  after(async () => {
    await stub.close();
    await bot.close();
  });

  test('a modal opened with a click’s trigger is listed and streamed to that person only', async () => {
    const aliceStream = await openStream(stub, 'U0001');
    const bobStream = await openStream(stub, 'U0002');
    try {
      const id = await openAsAlice();
      const event = await aliceStream.next((e) => e.type === 'view');
      const streamed = event.data.view as { id: string; user?: string; view: { callback_id: string } };
      assert.equal(streamed.id, id);
      assert.equal(streamed.user, 'U0001');
      assert.equal(streamed.view.callback_id, 'note');

      const alice = await stateAs('U0001');
      const listed = alice.views.find((v) => v.id === id);
      assert.equal(listed?.user, 'U0001');
      assert.deepEqual(listed?.view.title, NOTE_MODAL.title);
      assert.equal((await stateAs('U0002')).views.length, 0, 'bob does not see alice’s modal');
      // a message after the view proves bob's stream was read past the moment the view opened
      await client(stub).chat.postMessage({ channel: 'C0001', text: 'marker' });
      await bobStream.next((e) => e.type === 'message');
      assert.equal(
        bobStream.seen.some((e) => e.type === 'view'),
        false,
      );
      assert.ok(await stub.closeView({ viewId: id, user: 'alice' }));
    } finally {
      aliceStream.close();
      bobStream.close();
    }
  });

  test('submitting: the bot’s field errors keep the modal open; values close it, signed as view_submission', async () => {
    const id = await openAsAlice();
    const before = payloads('view_submission').length;
    const empty = await postJson(`${stub.pageUrl}ui/view`, {
      callbackId: 'note',
      viewId: id,
      user: 'alice',
      values: { cause_text: '' },
    });
    assert.equal(empty.status, 200);
    assert.equal(empty.json.closed, false);
    assert.deepEqual(empty.json.errors, { cause: 'Say what caused it' });
    assert.ok(
      (await stateAs('U0001')).views.some((v) => v.id === id),
      'still open',
    );

    const stream = await openStream(stub, 'U0001');
    try {
      const done = await postJson(`${stub.pageUrl}ui/view`, {
        callbackId: 'note',
        viewId: id,
        user: 'alice',
        values: { cause_text: 'a leak in the export', note_text: 'cap the pool\nand alert on it' },
      });
      assert.equal(done.status, 200);
      assert.equal(done.json.closed, true);
      assert.equal(done.json.errors, undefined);
      await stream.next((e) => e.type === 'view-closed' && e.data.id === id);
    } finally {
      stream.close();
    }

    const sent = payloads('view_submission').slice(before);
    assert.equal(sent.length, 2, 'both submissions reached the bot (it verified their signatures)');
    const last = sent[1] as { user: { id: string }; view: Record<string, unknown> };
    assert.equal(last.user.id, 'U0001');
    assert.equal(last.view.id, id);
    assert.equal(last.view.callback_id, 'note');
    assert.equal(last.view.private_metadata, '42');
    assert.deepEqual((last.view.state as { values: unknown }).values, {
      cause: { cause_text: { type: 'plain_text_input', value: 'a leak in the export' } },
      note: { note_text: { type: 'plain_text_input', value: 'cap the pool\nand alert on it' } },
    });
    assert.equal(
      (await stateAs('U0001')).views.some((v) => v.id === id),
      false,
    );
    assert.equal(stub.conversations.view(id)?.submittedBy, 'U0001');
    const again = await postJson(`${stub.pageUrl}ui/view`, { callbackId: 'note', viewId: id, values: {} });
    assert.equal(again.status, 404);
    assert.equal(again.json.error, 'view_not_found');
  });

  test('closing hides the modal for good and tells a bot that asked (notify_on_close)', async () => {
    const id = await openAsAlice();
    const byBob = await postJson(`${stub.pageUrl}ui/view/close`, { viewId: id, user: 'bob' });
    assert.equal(byBob.status, 404, 'bob cannot close alice’s modal');
    const closed = await postJson(`${stub.pageUrl}ui/view/close`, { viewId: id, user: 'alice' });
    assert.equal(closed.status, 200);
    assert.equal(
      (await stateAs('U0001')).views.some((v) => v.id === id),
      false,
    );
    assert.ok(stub.conversations.view(id)?.closedAt);
    const told = payloads('view_closed').at(-1) as { view: { id: string }; user: { id: string } } | undefined;
    assert.equal(told?.view.id, id);
    assert.equal(told?.user.id, 'U0001');
    const late = await postJson(`${stub.pageUrl}ui/view`, {
      callbackId: 'note',
      viewId: id,
      user: 'alice',
      values: { cause_text: 'x' },
    });
    assert.equal(late.status, 404);
  });

  test('the modal routes take only same-origin JSON and name the bad field', async () => {
    const id = await openAsAlice();
    const before = bot.received.length;
    const body = { callbackId: 'note', viewId: id, user: 'alice', values: { cause_text: 'csrf' } };
    const foreign = await postJson(`${stub.pageUrl}ui/view`, body, { origin: 'https://evil.example' });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.json.error, 'forbidden_origin');
    const foreignClose = await postJson(
      `${stub.pageUrl}ui/view/close`,
      { viewId: id },
      { origin: 'https://evil.example' },
    );
    assert.equal(foreignClose.status, 403);
    const form = await fetch(`${stub.pageUrl}ui/view`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify(body),
    });
    assert.equal(form.status, 415);
    assert.equal((await fetch(`${stub.pageUrl}ui/view`)).status, 405);
    assert.equal(bot.received.length, before, 'nothing reached the bot');
    assert.ok(
      (await stateAs('U0001')).views.some((v) => v.id === id),
      'still open',
    );
    const cases: [string, unknown, string][] = [
      ['ui/view', { viewId: id }, 'callbackId'],
      ['ui/view', { callbackId: 'note', viewId: 'nope' }, 'viewId'],
      ['ui/view', { callbackId: 'note', viewId: id, values: { cause_text: 5 } }, 'values.cause_text'],
      ['ui/view/close', {}, 'viewId'],
    ];
    for (const [path, bad, field] of cases) {
      const res = await postJson(`${stub.pageUrl}${path}`, bad);
      assert.equal(res.status, 400, `${path} ${JSON.stringify(bad)}`);
      assert.equal(res.json.field, field, `${path} ${JSON.stringify(bad)}`);
    }
    const own = await postJson(
      `${stub.pageUrl}ui/view/close`,
      { viewId: id, user: 'alice' },
      {
        origin: stub.pageUrl.replace(/\/$/, ''),
      },
    );
    assert.equal(own.status, 200);
  });

  test('a modal whose trigger the stand-in did not hand out is shown to everyone', async () => {
    const answer = await client(stub).views.open({ trigger_id: '123.T0001.made-up', view: NOTE_MODAL });
    const id = answer.view?.id ?? '';
    for (const user of ['U0001', 'U0002']) {
      const listed = (await stateAs(user)).views.find((v) => v.id === id);
      assert.ok(listed, user);
      assert.equal(listed.user, undefined);
    }
    const submitted = await stub.submitView({
      callbackId: 'note',
      viewId: id,
      user: 'bob',
      values: { cause_text: 'seen by bob' },
    });
    assert.equal(submitted.closed, true);
  });

  test('the renderer lays a modal out: title, labelled text inputs with hints, text blocks, button texts', () => {
    const render = loadRenderer();
    const laid = JSON.parse(
      JSON.stringify(render.modal(NOTE_MODAL as unknown as Record<string, unknown>)),
    ) as {
      title: string;
      blocks: RenderNode[];
      submit: string | null;
      close: string;
    };
    assert.equal(laid.title, 'Resolution note');
    assert.equal(laid.submit, 'Save');
    assert.equal(laid.close, 'Not now');
    const all = (nodes: RenderNode[]): RenderNode[] =>
      nodes.flatMap((n) => ('tag' in n ? [n, ...all(n.kids)] : [n]));
    const nodes = all(laid.blocks);
    const byTestId = (testId: string) =>
      nodes.find((n) => 'tag' in n && n.attrs?.['data-testid'] === testId) as
        | Extract<RenderNode, { tag: string }>
        | undefined;
    const cause = byTestId('modal-input-cause_text');
    assert.equal(cause?.tag, 'input');
    assert.equal(cause?.attrs?.['data-block-id'], 'cause');
    assert.equal(cause?.attrs?.maxlength, '1000');
    assert.equal(cause?.attrs?.['data-required'], undefined, 'optional');
    const note = byTestId('modal-input-note_text');
    assert.equal(note?.tag, 'textarea');
    assert.equal(note?.attrs?.['data-required'], 'true');
    const texts = nodes.filter((n) => !('tag' in n)).map((n) => (n as { text: string }).text);
    for (const text of ['What caused it', ' (optional)', 'e.g. a connection leak', 'Anything else', 'INC-42'])
      assert.ok(texts.includes(text), text);
    assert.ok(texts.includes('saved to the postmortem'), 'context block shown as text');
    const label = nodes.find((n) => 'tag' in n && n.tag === 'label') as Extract<RenderNode, { tag: string }>;
    assert.equal(label.attrs?.for, cause?.attrs?.id);
    assert.equal(render.modal({ title: { type: 'plain_text', text: 'Info' } }).submit, null);
  });

  test('in a browser: the click opens the overlay, the bot’s error shows under its field, a good submission closes it', {
    skip: existsSync(CHROMIUM) ? false : `no ${CHROMIUM}`,
  }, async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(m.text());
      });
      page.on('pageerror', (e) => problems.push(e.message));
      await page.goto(stub.pageUrl);
      await page.locator('[data-action-id="open_note"]').first().click();
      const modal = page.getByTestId('modal');
      await modal.waitFor({ timeout: 10_000 });
      for (const text of ['Resolution note', 'For INC-42', 'What caused it', 'e.g. a connection leak'])
        assert.ok((await modal.textContent())?.includes(text), text);
      assert.equal(await page.getByTestId('modal-submit').textContent(), 'Save');
      assert.equal(await page.getByTestId('modal-cancel').textContent(), 'Not now');
      assert.equal(await page.getByTestId('modal-input-note_text').evaluate((e) => e.tagName), 'TEXTAREA');

      await page.getByTestId('modal-input-note_text').fill('only the note');
      await page.getByTestId('modal-submit').click();
      await page.getByTestId('modal-error-cause').waitFor({ timeout: 10_000 });
      assert.equal(await page.getByTestId('modal-error-cause').textContent(), 'Say what caused it');
      assert.ok(await modal.isVisible(), 'stays open on the bot’s errors');

      await page.getByTestId('modal-input-cause_text').fill('typed in the browser');
      await page.getByTestId('modal-submit').click();
      await modal.waitFor({ state: 'detached', timeout: 10_000 });
      const sent = payloads('view_submission').at(-1) as { view: { state: { values: unknown } } } | undefined;
      assert.deepEqual(sent?.view.state.values, {
        cause: { cause_text: { type: 'plain_text_input', value: 'typed in the browser' } },
        note: { note_text: { type: 'plain_text_input', value: 'only the note' } },
      });
      assert.deepEqual(problems, [], 'no script error and no CSP violation');
    } finally {
      await browser.close();
    }
  });
});

describe('slack stand-in: the page renderer', () => {
  const render = loadRenderer();
  const ctx = {
    users: { U0001: 'alice' },
    channels: { C0001: 'incidents' },
    groups: { S0001: 'sre-leads' },
    origin: 'http://127.0.0.1:1234',
  };
  /** the tree as plain JSON (it was built in another realm) */
  const plain = (nodes: RenderNode[]) => JSON.parse(JSON.stringify(nodes)) as RenderNode[];
  const textOf = (nodes: RenderNode[]): string =>
    nodes.map((n) => ('tag' in n ? (n.tag === 'br' ? '\n' : textOf(n.kids ?? [])) : n.text)).join('');
  const tagsOf = (nodes: RenderNode[]): string[] =>
    nodes.flatMap((n) => ('tag' in n ? [n.tag, ...tagsOf(n.kids ?? [])] : []));

  test('mrkdwn: emphasis, code, quotes, links, mentions and line breaks like Slack', () => {
    const tree = plain(
      render.mrkdwn(
        '*bold* _it_ ~gone~ `x<y` snake_case_name\n> quoted\n```pre *not bold*```\n<https://a.example/x?q=1|docs> <@U0001> <#C0001> <!here> <!subteam^S0001> &lt;tag&gt;',
        ctx,
      ),
    );
    assert.deepEqual(tree.slice(0, 7), [
      { tag: 'b', kids: [{ text: 'bold' }] },
      { text: ' ' },
      { tag: 'i', kids: [{ text: 'it' }] },
      { text: ' ' },
      { tag: 's', kids: [{ text: 'gone' }] },
      { text: ' ' },
      { tag: 'code', cls: 'sk-code', kids: [{ text: 'x<y' }] },
    ]);
    assert.ok(textOf(tree).includes(' snake_case_name'));
    assert.equal(tagsOf(tree).filter((t) => t === 'i').length, 1, 'no emphasis inside words');
    const quote = tree.find((n) => 'tag' in n && n.tag === 'blockquote');
    assert.equal(textOf([quote as RenderNode]), 'quoted');
    const pre = tree.find((n) => 'tag' in n && n.tag === 'pre');
    assert.equal(textOf([pre as RenderNode]), 'pre *not bold*', 'literal inside code blocks');
    const link = tree.find((n) => 'tag' in n && n.tag === 'a');
    assert.deepEqual(link, {
      tag: 'a',
      cls: 'sk-link',
      kids: [{ text: 'docs' }],
      attrs: { href: 'https://a.example/x?q=1', target: '_blank', rel: 'noopener noreferrer' },
    });
    assert.match(textOf(tree), /docs @alice #incidents @here @sre-leads <tag>$/);
  });

  test('dates render from <!date^…> in the reader’s zone, with the fallback when unreadable', () => {
    const now = new Date(2024, 4, 10, 15, 0);
    const unix = Math.floor(new Date(2024, 4, 10, 9, 5).getTime() / 1000);
    assert.equal(render.formatDate(String(unix), '{date_short_pretty} {time}', 'x', now), 'Today 09:05');
    assert.equal(
      textOf(plain(render.mrkdwn('<!date^nope^{date}|2024-05-10T09:05Z>', ctx))),
      '2024-05-10T09:05Z',
    );
  });

  test('markup in data is shown as text: no element, no attribute, no script URL comes from it', () => {
    const attempts = [
      '<img src=x onerror=alert(1)>',
      '&lt;img src=x onerror=alert(1)&gt;',
      '<javascript:alert(1)|click me>',
      '<data:text/html,<script>alert(1)</script>|x>',
      '*<script>alert(1)</script>*',
    ];
    for (const text of attempts) {
      const tree = plain(
        render.body({ text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] }, ctx),
      );
      const tags = tagsOf(tree);
      assert.equal(tags.includes('img'), false, text);
      assert.equal(tags.includes('script'), false, text);
      assert.equal(tags.includes('a'), false, text);
      assert.doesNotMatch(JSON.stringify(tree), /"(on\w+|href|src)":/, text);
    }
    assert.match(
      textOf(plain(render.mrkdwn('&lt;img src=x onerror=alert(1)&gt;', ctx))),
      /^<img src=x onerror/,
    );
  });

  test('the DOM builder only makes allowed elements and attributes, and re-checks URLs', () => {
    class FakeElement {
      attrs = new Map<string, string>();
      children: unknown[] = [];
      className = '';
      style: Record<string, string> = {};
      listeners: string[] = [];
      constructor(readonly tag: string) {}
      setAttribute(k: string, v: string) {
        this.attrs.set(k, v);
      }
      appendChild(c: unknown) {
        this.children.push(c);
        return c;
      }
      addEventListener(type: string) {
        this.listeners.push(type);
      }
    }
    const doc = {
      createElement: (tag: string) => new FakeElement(tag),
      createTextNode: (text: string) => ({ text }),
    };
    const built = render.toDom(
      {
        tag: 'script',
        attrs: {
          onerror: 'alert(1)',
          href: 'javascript:alert(1)',
          src: 'https://evil.example/x.png',
          title: 'ok',
        },
        kids: [
          { text: '<b>text</b>' },
          { tag: 'a', attrs: { href: 'https://good.example/' }, kids: [] },
          { tag: 'img', attrs: { src: '/files/F0001' }, kids: [] },
          { tag: 'button', attrs: { type: 'button' }, kids: [], act: { kind: 'button' } },
        ],
      },
      doc,
      () => {},
    ) as FakeElement;
    assert.equal(built.tag, 'span', 'no script element');
    assert.deepEqual([...built.attrs.entries()], [['title', 'ok']]);
    const [text, link, image, button] = built.children as [
      { text: string },
      FakeElement,
      FakeElement,
      FakeElement,
    ];
    assert.deepEqual(text, { text: '<b>text</b>' });
    assert.equal(link.attrs.get('href'), 'https://good.example/');
    assert.equal(image.attrs.get('src'), '/files/F0001');
    assert.deepEqual(button.listeners, ['click']);
  });

  test('the bot’s blocks: header, two-column fields, buttons with styles and a confirm, images and files', () => {
    const packet = buildApprovalPacket({
      id: 3,
      status: 'pending',
      approvers: ['S0001'],
      expiresAt: new Date(),
      decidedBy: null,
      decidedAt: null,
      packet: {
        incident: { id: 1, title: 't', service: 'api', severity: 'high' },
        runbook: { id: 'r', name: 'R' },
        step: { id: 's', action: 'http.post', description: 'Flush cache', position: 0, of: 2 },
        hypothesis: 'stale cache',
        target: 'api',
        config: {},
        evidence: [],
        preconditions: ['x'],
        tier: 'guarded',
        tierWhy: 'writes',
        blastRadius: 'api',
        rollback: 'none',
        verification: null,
        secondPersonRequired: false,
      },
    });
    const tree = plain(render.blocks(packet.blocks, ctx));
    const flat = JSON.stringify(tree);
    assert.equal((tree[0] as { cls: string }).cls, 'sk-block sk-header');
    const section = tree[1] as { kids: { kids: { cls: string; kids: { cls: string }[] }[] }[] };
    const fields = section.kids[0]?.kids[0];
    assert.equal(fields?.cls, 'sk-fields');
    assert.deepEqual(
      fields?.kids.map((k) => k.cls),
      ['sk-field', 'sk-field', 'sk-field', 'sk-field'],
    );
    assert.match(flat, /Approval needed: Flush cache/);
    const buttons: Record<string, unknown>[] = [];
    const walk = (nodes: RenderNode[]) => {
      for (const n of nodes) {
        if ('tag' in n) {
          if (n.tag === 'button') buttons.push(n as unknown as Record<string, unknown>);
          walk(n.kids ?? []);
        }
      }
    };
    walk(tree);
    assert.deepEqual(
      buttons.map((b) => [textOf((b.kids as RenderNode[]) ?? []), b.cls]),
      [
        ['Approve', 'sk-button sk-primary'],
        ['Reject', 'sk-button sk-danger'],
      ],
    );
    const approve = buttons[0] as { act: { actionId: string; value: string; confirm: { title: string } } };
    assert.equal(approve.act.actionId, APPROVE_ACTION);
    assert.equal(approve.act.value, '3');
    assert.equal(approve.act.confirm.title, 'Run this step?');
    assert.equal((buttons[1] as { act: { confirm: unknown } }).act.confirm, null);

    const media = plain(
      render.body(
        {
          text: '',
          blocks: [
            { type: 'image', image_url: 'https://elsewhere.example/a.png', alt_text: 'remote' },
            { type: 'image', image_url: `${ctx.origin}/files/F0002`, alt_text: 'local' },
            {
              type: 'actions',
              elements: [
                {
                  type: 'static_select',
                  action_id: 'pick',
                  options: [{ text: { type: 'plain_text', text: 'One' }, value: '1' }],
                },
              ],
            },
          ],
          files: [{ id: 'F0003', name: 'c.png', title: 'chart', mimetype: 'image/png', size: 10 }],
        },
        ctx,
      ),
    );
    const imgs = JSON.stringify(media).match(/"src":"[^"]+"/g);
    assert.deepEqual(
      imgs,
      [`"src":"${ctx.origin}/files/F0002"`, '"src":"/files/F0003"'],
      'remote images are not loaded',
    );
    assert.match(JSON.stringify(media), /"tag":"select".*"value":"1"/);
  });
});

describe('slack stand-in with the real bot', () => {
  test('/incident help and @ai-sre help are answered where Slack shows them', async () => {
    const t = await startTestApp();
    try {
      t.stub.connectBot({ url: t.baseUrl, signingSecret: SIGNING_SECRET });
      const command = await t.stub.command('/incident help', { user: 'U0001' });
      assert.equal(command.status, 200);
      const help = t.stub.conversations.history('C0001').at(-1);
      assert.equal(help?.ephemeralTo, 'U0001');
      assert.match(help?.text ?? '', /^\*Usage:\*\n`\/incident trigger/);

      const mention = await t.stub.mention('@ai-sre help');
      assert.equal(mention.status, 200);
      const deadline = Date.now() + 10_000;
      while (t.stub.conversations.replies('C0001', mention.ts).length === 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 25));
      }
      const [reply] = t.stub.conversations.replies('C0001', mention.ts);
      assert.equal(reply?.user, 'U0BOT', 'the bot answers in the thread of the mention');
      assert.match(reply?.text ?? '', /@ai-sre status <service>/);
    } finally {
      await t.close();
    }
  });
});
