import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import pg from 'pg';
import {
  createPageAttemptsRepo,
  deliveredPagers,
  listPageAttempts,
} from '../src/escalation/pagers/attempts-repo.js';
import { createPagers } from '../src/escalation/pagers/create-pagers.js';
import {
  dedupKeyFor,
  type Page,
  type PageAttemptStore,
  pageWithFallback,
  updatePagers,
} from '../src/escalation/pagers/pager.js';
import { createPagerdutyPager } from '../src/escalation/pagers/pagerduty.js';
import {
  PagerdutyPagerConfig,
  PagersConfigError,
  parsePagersConfig,
  SlackPagerConfig,
  WebhookPagerConfig,
} from '../src/escalation/pagers/pagers.schema.js';
import { createSlackDmPager, type SlackDmClient } from '../src/escalation/pagers/slack-dm.js';
import {
  createWebhookPager,
  SIGNATURE_HEADER,
  signWebhookBody,
  TIMESTAMP_HEADER,
  verifyWebhookSignature,
} from '../src/escalation/pagers/webhook.js';
import { ensureDatabase, runMigrations } from '../src/store/migrate.js';
import { dropDatabase } from './helpers/test-app.js';

const FIXTURES = '/work/shared/fixtures/pagerduty';
const fixture = (name: string) =>
  JSON.parse(readFileSync(`${FIXTURES}/${name}`, 'utf8')) as Record<string, unknown>;
const PD_ERROR = fixture('response_error.json');
const PD_OK = fixture('response_success_202.json');

const WEBHOOK_SECRET = 'test-webhook-secret-0123456789';
const FIXED_NOW = new Date('2026-03-02T10:15:00.000Z');

/** A canned answer of the loopback stand-in. */
interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** ms before answering (for timeouts) */
  delayMs?: number;
}

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  json: Record<string, unknown>;
}

/**
 * PagerDuty's Events v2 endpoint (`/v2/enqueue`) and a webhook receiver (`/hook`) on loopback. Each path answers
 * from its own queue of replies, then 202/200 once the queue is empty. The webhook receiver checks the signature as
 * a real receiver would and answers 401 when it does not verify.
 */
class StandIn {
  readonly received: Received[] = [];
  readonly replies: Record<string, Reply[]> = { '/v2/enqueue': [], '/hook': [] };
  private readonly server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const path = req.url ?? '';
      this.received.push({
        path,
        headers: req.headers,
        raw,
        json: JSON.parse(raw) as Record<string, unknown>,
      });
      let reply =
        this.replies[path]?.shift() ?? (path === '/hook' ? { status: 200 } : { status: 202, body: PD_OK });
      if (path === '/hook') {
        const valid = verifyWebhookSignature({
          secret: WEBHOOK_SECRET,
          body: raw,
          signature: req.headers[SIGNATURE_HEADER] as string | undefined,
          timestamp: req.headers[TIMESTAMP_HEADER] as string | undefined,
        });
        if (!valid) reply = { status: 401, body: { error: 'bad signature' } };
      }
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
        res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  });
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  reset(): void {
    this.received.length = 0;
    for (const queue of Object.values(this.replies)) queue.length = 0;
  }

  on(path: '/v2/enqueue' | '/hook', ...replies: Reply[]): void {
    this.replies[path]?.push(...replies);
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function buildPage(incidentId: number, overrides: Partial<Page> = {}): Page {
  return {
    incidentId,
    dedupKey: dedupKeyFor(incidentId),
    summary: 'payment-service: 38% of checkouts fail with 502 since 10:02 UTC',
    severity: 'critical',
    source: 'payment-service',
    component: 'checkout',
    group: 'payments',
    class: 'availability',
    timestamp: new Date('2026-03-02T10:02:00.000Z'),
    target: { slackUser: 'U0ALICE01', team: 'payments', pagerdutyUser: 'PALICE1' },
    links: [{ href: 'https://grafana.example/d/payments', text: 'Payments dashboard' }],
    details: { reason: 'no runbook matched', error_rate: 0.38 },
    ...overrides,
  };
}

/** A Slack client that throws the given errors from postMessage first, then posts. */
function fakeSlack(failures: unknown[] = []) {
  const posted: { channel: string; text: string; blocks?: unknown[] }[] = [];
  const opened: string[] = [];
  const client: SlackDmClient = {
    async conversationsOpen(user) {
      opened.push(user);
      return `D${user}`;
    },
    async postMessage(message) {
      const failure = failures.shift();
      if (failure) throw failure;
      posted.push(message);
      return { ts: `1700000000.00000${posted.length}` };
    },
  };
  return { client, posted, opened };
}

describe('pagers', () => {
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/ai_sre_test_pagers_${randomBytes(5).toString('hex')}`;
  const standIn = new StandIn();
  let db: pg.Pool;
  let store: PageAttemptStore;
  /** waits the retry loop asked for, ms */
  let waits: number[] = [];

  const clock = {
    now: () => FIXED_NOW,
    sleep: async (ms: number) => {
      waits.push(ms);
    },
  };
  const pdConfig = (overrides: Record<string, unknown> = {}) =>
    PagerdutyPagerConfig.parse({
      url: standIn.url,
      routingKeys: { default: 'rk-default', payments: 'rk-payments' },
      clientUrl: 'https://ai-sre.example/incidents',
      timeoutMs: 2_000,
      maxAttempts: 3,
      backoffBaseMs: 1,
      backoffMaxMs: 5,
      ...overrides,
    });
  const webhookConfig = (overrides: Record<string, unknown> = {}) =>
    WebhookPagerConfig.parse({
      url: `${standIn.url}/hook`,
      secret: WEBHOOK_SECRET,
      timeoutMs: 2_000,
      maxAttempts: 3,
      backoffBaseMs: 1,
      backoffMaxMs: 5,
      ...overrides,
    });

  async function openIncident(): Promise<number> {
    const { rows } = await db.query<{ id: number }>(
      `INSERT INTO incidents (service, title, severity, status, source)
       VALUES ('payment-service', 'checkout 502s', 'critical', 'escalated', 'test') RETURNING id`,
    );
    const row = rows[0];
    assert.ok(row);
    return row.id;
  }

  before(async () => {
    await ensureDatabase(databaseUrl);
    await runMigrations(databaseUrl);
    db = new pg.Pool({ connectionString: databaseUrl, max: 4 });
    db.on('error', () => {});
    store = createPageAttemptsRepo(db);
    await standIn.start();
  });

  after(async () => {
    await standIn.stop();
    await db?.end();
    await dropDatabase(databaseUrl);
  });

  beforeEach(() => {
    standIn.reset();
    waits = [];
  });

  describe('PagerDuty Events v2', () => {
    test('trigger sends exactly the documented event, with the team routing key and mapped severity', async () => {
      const pager = createPagerdutyPager(pdConfig(), clock);
      const outcome = await pager.trigger(buildPage(41, { severity: 'high' }));

      assert.equal(outcome.ok, true);
      assert.equal(outcome.status, 202);
      assert.equal(outcome.attempts.length, 1);
      assert.equal(outcome.externalRef, PD_OK.dedup_key, 'the dedup_key PagerDuty answered with');
      const [req] = standIn.at('/v2/enqueue');
      assert.ok(req);
      assert.equal(req.headers['content-type'], 'application/json');
      assert.deepEqual(req.json, {
        routing_key: 'rk-payments',
        event_action: 'trigger',
        dedup_key: 'ai-sre-incident-41',
        payload: {
          summary: 'payment-service: 38% of checkouts fail with 502 since 10:02 UTC',
          source: 'payment-service',
          severity: 'error',
          timestamp: '2026-03-02T10:02:00.000Z',
          component: 'checkout',
          group: 'payments',
          class: 'availability',
          custom_details: {
            reason: 'no runbook matched',
            error_rate: 0.38,
            incident_id: 41,
            oncall_user: 'PALICE1',
          },
        },
        links: [{ href: 'https://grafana.example/d/payments', text: 'Payments dashboard' }],
        client: 'ai-sre',
        client_url: 'https://ai-sre.example/incidents',
      });
      // every field we send is one PagerDuty's own example uses (images aside)
      const documented = fixture('trigger_api_schema.json');
      for (const key of Object.keys(req.json)) assert.ok(key in documented, `${key} is an Events v2 field`);
      const documentedPayload = documented.payload as Record<string, unknown>;
      for (const key of Object.keys(req.json.payload as object)) assert.ok(key in documentedPayload, key);
    });

    test('acknowledge and resolve send the documented three-field events; no team falls back to default', async () => {
      const pager = createPagerdutyPager(pdConfig(), clock);
      const ref = { incidentId: 42, dedupKey: dedupKeyFor(42), target: {} };
      assert.equal((await pager.acknowledge(ref)).ok, true);
      assert.equal((await pager.resolve(ref)).ok, true);

      const [ack, resolve] = standIn.at('/v2/enqueue');
      assert.deepEqual(ack?.json, {
        routing_key: 'rk-default',
        dedup_key: 'ai-sre-incident-42',
        event_action: 'acknowledge',
      });
      assert.deepEqual(resolve?.json, {
        routing_key: 'rk-default',
        dedup_key: 'ai-sre-incident-42',
        event_action: 'resolve',
      });
      assert.deepEqual(
        Object.keys(ack?.json ?? {}).sort(),
        Object.keys(fixture('acknowledge_developer_docs.json')).sort(),
      );
      assert.deepEqual(
        Object.keys(resolve?.json ?? {}).sort(),
        Object.keys(fixture('resolve_developer_docs.json')).sort(),
      );
    });

    test('severities map to critical|error|warning|info and a long summary is cut to 1024 characters', async () => {
      const pager = createPagerdutyPager(pdConfig(), clock);
      for (const severity of ['critical', 'high', 'warning', 'info'] as const) {
        await pager.trigger(buildPage(43, { severity, summary: 'x'.repeat(5000) }));
      }
      const sent = standIn
        .at('/v2/enqueue')
        .map((r) => r.json.payload as { severity: string; summary: string });
      assert.deepEqual(
        sent.map((p) => p.severity),
        ['critical', 'error', 'warning', 'info'],
      );
      for (const p of sent) {
        assert.equal(p.summary.length, 1024);
        assert.ok(p.summary.endsWith('…'));
      }
    });

    test('429 with Retry-After: 0, then 202: delivered on the second attempt and both attempts stored', async () => {
      const incidentId = await openIncident();
      standIn.on('/v2/enqueue', {
        status: 429,
        headers: { 'retry-after': '0' },
        body: { status: 'throttled' },
      });
      const pager = createPagerdutyPager(pdConfig(), clock);

      const result = await pageWithFallback([pager], buildPage(incidentId), store);

      assert.equal(result.ok, true);
      assert.equal(result.deliveredBy, 'pagerduty');
      assert.equal(standIn.at('/v2/enqueue').length, 2);
      assert.deepEqual(waits, [0], 'Retry-After: 0 is honoured instead of the backoff');
      const rows = await listPageAttempts(db, incidentId);
      assert.deepEqual(
        rows.map((r) => [r.pager, r.action, r.attempt, r.outcome, r.httpStatus, r.dedupKey]),
        [
          ['pagerduty', 'trigger', 1, 'failed_retryable', 429, `ai-sre-incident-${incidentId}`],
          ['pagerduty', 'trigger', 2, 'succeeded', 202, `ai-sre-incident-${incidentId}`],
        ],
      );
      assert.match(rows[0]?.error ?? '', /PagerDuty 429/);
      assert.equal(rows[1]?.externalRef, PD_OK.dedup_key);
      assert.equal(rows[1]?.startedAt.toISOString(), FIXED_NOW.toISOString());
      assert.deepEqual(
        result.records.map((r) => r.outcome),
        ['failed_retryable', 'succeeded'],
      );
    });

    test('Retry-After is honoured up to backoffMaxMs', async () => {
      standIn.on(
        '/v2/enqueue',
        { status: 429, headers: { 'retry-after': '2' } },
        { status: 429, headers: { 'retry-after': '120' } },
      );
      const pager = createPagerdutyPager(pdConfig({ backoffMaxMs: 10_000 }), clock);
      const outcome = await pager.trigger(buildPage(44));
      assert.equal(outcome.ok, true);
      assert.deepEqual(waits, [2_000, 10_000]);
    });

    test('500, 500, 202: three attempts with exponential jittered backoff, then success', async () => {
      standIn.on('/v2/enqueue', { status: 500, body: { message: 'oops' } }, { status: 503 });
      const pager = createPagerdutyPager(pdConfig({ backoffBaseMs: 100, backoffMaxMs: 1_000 }), {
        ...clock,
        random: () => 0.5,
      });
      const outcome = await pager.trigger(buildPage(45));
      assert.equal(outcome.ok, true);
      assert.deepEqual(
        outcome.attempts.map((a) => [a.attempt, a.outcome, a.httpStatus]),
        [
          [1, 'failed_retryable', 500],
          [2, 'failed_retryable', 503],
          [3, 'succeeded', 202],
        ],
      );
      // full jitter: random × min(max, base·2^(n-1)) = 0.5×100, then 0.5×200
      assert.deepEqual(waits, [50, 100]);
    });

    test('5xx on every attempt gives up after maxAttempts', async () => {
      standIn.on('/v2/enqueue', { status: 502 }, { status: 502 }, { status: 502 }, { status: 202 });
      const outcome = await createPagerdutyPager(pdConfig(), clock).trigger(buildPage(46));
      assert.equal(outcome.ok, false);
      assert.equal(outcome.status, 502);
      assert.equal(outcome.attempts.length, 3);
      assert.equal(standIn.at('/v2/enqueue').length, 3);
      assert.match(outcome.error ?? '', /PagerDuty 502.*gave up after 3 attempts/);
    });

    test("400 is not retried and the error carries PagerDuty's message and errors", async () => {
      standIn.on('/v2/enqueue', { status: 400, body: PD_ERROR });
      const outcome = await createPagerdutyPager(pdConfig(), clock).trigger(buildPage(47));
      assert.equal(outcome.ok, false);
      assert.equal(outcome.status, 400);
      assert.equal(outcome.attempts.length, 1);
      assert.equal(standIn.at('/v2/enqueue').length, 1);
      assert.deepEqual(waits, []);
      assert.equal(outcome.error, 'PagerDuty 400: Event object format is unrecognized (JSON parse error)');
      assert.equal(outcome.attempts[0]?.outcome, 'failed');
    });

    test('a request that outlasts timeoutMs is retried', async () => {
      standIn.on('/v2/enqueue', { status: 202, body: PD_OK, delayMs: 1_000 });
      const outcome = await createPagerdutyPager(pdConfig({ timeoutMs: 100 }), clock).trigger(buildPage(48));
      assert.equal(outcome.ok, true);
      assert.deepEqual(
        outcome.attempts.map((a) => [a.outcome, a.httpStatus, a.error]),
        [
          ['failed_retryable', null, 'timed out'],
          ['succeeded', 202, undefined],
        ],
      );
      assert.equal(standIn.at('/v2/enqueue').length, 2);
    });

    test('a refused connection is retried, then reported', async () => {
      const closed = new StandIn();
      await closed.start();
      const url = closed.url;
      await closed.stop();
      const outcome = await createPagerdutyPager(pdConfig({ url }), clock).trigger(buildPage(49));
      assert.equal(outcome.ok, false);
      assert.equal(outcome.attempts.length, 3);
      assert.ok(outcome.attempts.every((a) => a.outcome === 'failed_retryable' && a.httpStatus === null));
      assert.match(outcome.error ?? '', /ECONNREFUSED|fetch failed/);
    });

    test('a team without a key and no default is skipped without a request', async () => {
      const pager = createPagerdutyPager(pdConfig({ routingKeys: { dba: 'rk-dba' } }), clock);
      const outcome = await pager.trigger(buildPage(50));
      assert.equal(outcome.ok, false);
      assert.equal(outcome.attempts[0]?.outcome, 'skipped');
      assert.match(outcome.error ?? '', /no PagerDuty routing key for team payments/);
      assert.equal(standIn.received.length, 0);
    });
  });

  describe('signed webhook', () => {
    test('trigger posts the signed page; the receiver verifies it', async () => {
      const outcome = await createWebhookPager(webhookConfig()).trigger(buildPage(51));
      assert.equal(outcome.ok, true, outcome.error);
      const [req] = standIn.at('/hook');
      assert.ok(req);
      assert.equal(req.json.event, 'trigger');
      assert.deepEqual(req.json.incident, {
        id: 51,
        dedupKey: 'ai-sre-incident-51',
        summary: 'payment-service: 38% of checkouts fail with 502 since 10:02 UTC',
        severity: 'critical',
        source: 'payment-service',
        component: 'checkout',
        group: 'payments',
        class: 'availability',
        startedAt: '2026-03-02T10:02:00.000Z',
        target: { slackUser: 'U0ALICE01', team: 'payments', pagerdutyUser: 'PALICE1' },
        links: [{ href: 'https://grafana.example/d/payments', text: 'Payments dashboard' }],
      });
      assert.deepEqual(req.json.details, { reason: 'no runbook matched', error_rate: 0.38 });
      const timestamp = req.headers[TIMESTAMP_HEADER] as string;
      assert.match(timestamp, /^\d+$/);
      assert.equal(req.headers[SIGNATURE_HEADER], signWebhookBody(WEBHOOK_SECRET, timestamp, req.raw));
    });

    test('verifyWebhookSignature rejects a tampered body, a wrong secret, a stale timestamp and junk', () => {
      const body = JSON.stringify({ event: 'trigger', incident: { id: 1 } });
      const now = new Date('2026-03-02T10:00:00Z');
      const timestamp = String(Math.floor(now.getTime() / 1000));
      const signature = signWebhookBody(WEBHOOK_SECRET, timestamp, body);
      const check = (over: Partial<Parameters<typeof verifyWebhookSignature>[0]>) =>
        verifyWebhookSignature({ secret: WEBHOOK_SECRET, body, signature, timestamp, now, ...over });

      assert.equal(check({}), true);
      assert.equal(check({ body: body.replace('"id":1', '"id":2') }), false);
      assert.equal(check({ secret: 'another-secret-0123456789' }), false);
      assert.equal(check({ timestamp: String(Number(timestamp) - 1) }), false, 'the timestamp is signed');
      assert.equal(check({ now: new Date(now.getTime() + 301_000) }), false, 'older than 5 minutes');
      assert.equal(check({ now: new Date(now.getTime() + 299_000) }), true);
      assert.equal(check({ signature: undefined }), false);
      assert.equal(check({ signature: 'sha256=00' }), false);
    });

    test('a receiver that rejects the signature (401) is not retried', async () => {
      const outcome = await createWebhookPager(
        webhookConfig({ secret: 'not-the-receivers-secret' }),
        // real time: a fixed clock would be rejected as stale, not as wrongly signed
        { sleep: clock.sleep },
      ).trigger(buildPage(52));
      assert.equal(outcome.ok, false);
      assert.equal(outcome.status, 401);
      assert.equal(standIn.at('/hook').length, 1);
      assert.match(outcome.error ?? '', /webhook 401: .*bad signature/);
    });

    test('503 then 200 is retried; acknowledge and resolve carry the incident id and dedup key', async () => {
      standIn.on('/hook', { status: 503 });
      const pager = createWebhookPager(webhookConfig());
      const ref = { incidentId: 53, dedupKey: dedupKeyFor(53), target: { team: 'payments' } };
      const ack = await pager.acknowledge(ref);
      assert.equal(ack.ok, true);
      assert.equal(ack.attempts.length, 2);
      await pager.resolve(ref);
      const sent = standIn.at('/hook').map((r) => [r.json.event, r.json.incident]);
      assert.deepEqual(sent, [
        ['acknowledge', { id: 53, dedupKey: 'ai-sre-incident-53', target: { team: 'payments' } }],
        ['acknowledge', { id: 53, dedupKey: 'ai-sre-incident-53', target: { team: 'payments' } }],
        ['resolve', { id: 53, dedupKey: 'ai-sre-incident-53', target: { team: 'payments' } }],
      ]);
    });
  });

  describe('Slack DM', () => {
    const slackConfig = SlackPagerConfig.parse({ maxAttempts: 3, backoffBaseMs: 1, backoffMaxMs: 5_000 });

    test('DMs the on-call user and returns the thread mention for the caller to post', async () => {
      const slack = fakeSlack();
      const outcome = await createSlackDmPager(slackConfig, { ...clock, client: slack.client }).trigger(
        buildPage(61, { summary: 'checkout <!channel> fails' }),
      );
      assert.equal(outcome.ok, true);
      assert.deepEqual(slack.opened, ['U0ALICE01']);
      assert.equal(outcome.externalRef, 'DU0ALICE01/1700000000.000001');
      assert.equal(outcome.threadMention, ':pager: Paged <@U0ALICE01> by direct message.');
      const [dm] = slack.posted;
      assert.ok(dm);
      assert.match(dm.text, /INC-61 \(critical\)/);
      assert.ok(!dm.text.includes('<!channel>'), 'page text cannot ping a channel');
      assert.ok(
        JSON.stringify(dm.blocks).includes('<https://grafana.example/d/payments|Payments dashboard>'),
      );
    });

    test('ratelimited is retried after Retry-After; other Slack errors fail at once', async () => {
      const rateLimited = Object.assign(new Error('rate limited'), {
        code: 'slack_webapi_rate_limited_error',
        retryAfter: 3,
      });
      const slack = fakeSlack([rateLimited]);
      const ok = await createSlackDmPager(slackConfig, { ...clock, client: slack.client }).trigger(
        buildPage(62),
      );
      assert.equal(ok.ok, true);
      assert.deepEqual(
        ok.attempts.map((a) => [a.outcome, a.error]),
        [
          ['failed_retryable', 'Slack: ratelimited'],
          ['succeeded', undefined],
        ],
      );
      assert.deepEqual(waits, [3_000]);

      const notFound = Object.assign(new Error('An API error occurred: channel_not_found'), {
        code: 'slack_webapi_platform_error',
        data: { ok: false, error: 'channel_not_found' },
      });
      const failing = fakeSlack([notFound]);
      const failed = await createSlackDmPager(slackConfig, { ...clock, client: failing.client }).trigger(
        buildPage(63),
      );
      assert.equal(failed.ok, false);
      assert.equal(failed.attempts.length, 1);
      assert.equal(failed.error, 'Slack: channel_not_found');
    });
  });

  describe('fallback chain', () => {
    test('PagerDuty failing 400 falls back to the webhook; both attempts stored in order', async () => {
      const incidentId = await openIncident();
      standIn.on('/v2/enqueue', { status: 400, body: PD_ERROR });
      const pagers = [createPagerdutyPager(pdConfig(), clock), createWebhookPager(webhookConfig())];

      const result = await pageWithFallback(pagers, buildPage(incidentId), store);

      assert.equal(result.ok, true);
      assert.equal(result.deliveredBy, 'webhook');
      assert.equal(result.storeError, undefined);
      assert.deepEqual(
        standIn.received.map((r) => r.path),
        ['/v2/enqueue', '/hook'],
      );
      const rows = await listPageAttempts(db, incidentId);
      assert.deepEqual(
        rows.map((r) => [r.pager, r.attempt, r.outcome, r.httpStatus]),
        [
          ['pagerduty', 1, 'failed', 400],
          ['webhook', 1, 'succeeded', 200],
        ],
      );
      assert.match(rows[0]?.error ?? '', /Event object format is unrecognized/);
      assert.deepEqual(
        result.records.map((r) => r.pager),
        ['pagerduty', 'webhook'],
      );
      assert.deepEqual(await deliveredPagers(db, incidentId), ['webhook']);
    });

    test('no Slack user skips the DM; every pager failing is reported with all its rows', async () => {
      const incidentId = await openIncident();
      const slack = createSlackDmPager(SlackPagerConfig.parse({}), { client: fakeSlack().client });
      const pd = createPagerdutyPager(pdConfig({ maxAttempts: 1 }), clock);
      const hook = createWebhookPager(webhookConfig({ maxAttempts: 1 }));
      const page = buildPage(incidentId, { target: { team: 'payments' } });
      standIn.on('/v2/enqueue', { status: 503 });
      standIn.on('/hook', { status: 404 });

      const result = await pageWithFallback([slack, pd, hook], page, store);

      assert.equal(result.ok, false);
      assert.equal(result.deliveredBy, null);
      const rows = await listPageAttempts(db, incidentId);
      assert.deepEqual(
        rows.map((r) => [r.pager, r.outcome, r.httpStatus]),
        [
          ['slack', 'skipped', null],
          ['pagerduty', 'failed_retryable', 503],
          ['webhook', 'failed', 404],
        ],
      );
      assert.equal(rows[0]?.error, 'no Slack user to page');
      assert.deepEqual(await deliveredPagers(db, incidentId), []);
    });

    test('a store that fails does not stop the page', async () => {
      const broken: PageAttemptStore = {
        async recordAttempts() {
          throw new Error('postgres unreachable');
        },
      };
      const result = await pageWithFallback([createPagerdutyPager(pdConfig(), clock)], buildPage(70), broken);
      assert.equal(result.ok, true);
      assert.equal(result.storeError, 'postgres unreachable');
      assert.equal(standIn.at('/v2/enqueue').length, 1);
    });

    test('acknowledge and resolve go to every pager that delivered and are stored', async () => {
      const incidentId = await openIncident();
      const pagers = createPagers(
        parsePagersConfig(
          {
            pagerduty: pdConfig(),
            webhook: webhookConfig(),
            order: ['pagerduty', 'webhook'],
          },
          'test',
        ),
        clock,
      );
      await pageWithFallback(pagers, buildPage(incidentId), store);
      const delivered = await deliveredPagers(db, incidentId);
      assert.deepEqual(delivered, ['pagerduty']);

      const ref = { incidentId, dedupKey: dedupKeyFor(incidentId), target: { team: 'payments' } };
      const update = await updatePagers(
        pagers.filter((p) => delivered.includes(p.name)),
        'resolve',
        ref,
        store,
      );
      assert.equal(update.ok, true);
      const rows = await listPageAttempts(db, incidentId);
      assert.deepEqual(
        rows.map((r) => [r.pager, r.action, r.outcome]),
        [
          ['pagerduty', 'trigger', 'succeeded'],
          ['pagerduty', 'resolve', 'succeeded'],
        ],
      );
      assert.deepEqual(standIn.at('/v2/enqueue')[1]?.json, {
        routing_key: 'rk-payments',
        dedup_key: `ai-sre-incident-${incidentId}`,
        event_action: 'resolve',
      });
    });
  });

  describe('redaction', () => {
    const secretPage = (incidentId: number) =>
      buildPage(incidentId, {
        summary: 'db login failed: password=hunter2 with token xoxb-1234-5678-abcdefghij',
        source: 'postgres://app:s3cretpw@db.internal:5432/payments',
        links: [{ href: 'https://grafana.example/d/x?api_key=AKIAABCDEFGHIJKLMNOP', text: 'dash' }],
        details: {
          log: 'Authorization: Bearer abcdefghijklmnop1234',
          password: 'hunter2',
          nested: {
            lines: ['ok', 'slack token xoxp-9999-8888-zzzz'],
            dsn: 'redis://default:r3dispw@cache:6379',
          },
        },
      });
    const SECRETS = [
      'hunter2',
      'xoxb-',
      'xoxp-',
      's3cretpw',
      'r3dispw',
      'abcdefghijklmnop1234',
      'AKIAABCDEFGHIJKLMNOP',
    ];

    test('secrets in summary, source, links and details never reach PagerDuty, the webhook or Slack', async () => {
      const slack = (() => {
        const posted: string[] = [];
        const client: SlackDmClient = {
          conversationsOpen: async (user) => `D${user}`,
          postMessage: async (m) => {
            posted.push(JSON.stringify(m));
            return { ts: '1.1' };
          },
        };
        return { client, posted };
      })();
      await createPagerdutyPager(pdConfig(), clock).trigger(secretPage(81));
      await createWebhookPager(webhookConfig()).trigger(secretPage(81));
      await createSlackDmPager(SlackPagerConfig.parse({}), { client: slack.client }).trigger(secretPage(81));

      const sent = [...standIn.received.map((r) => r.raw), ...slack.posted];
      assert.equal(sent.length, 3);
      for (const body of sent) {
        for (const secret of SECRETS) assert.ok(!body.includes(secret), `${secret} leaked in ${body}`);
      }
      const pd = standIn.at('/v2/enqueue')[0]?.json as {
        payload: { summary: string; custom_details: unknown };
      };
      assert.equal(pd.payload.summary, 'db login failed: password=*** with token ***');
      assert.deepEqual((pd.payload.custom_details as Record<string, unknown>).password, '***');
      // the routing key is sent as is: it is what PagerDuty needs, not page content
      assert.equal(standIn.at('/v2/enqueue')[0]?.json.routing_key, 'rk-payments');
    });
  });

  describe('config', () => {
    test('defaults fill in and the chain is built in order', () => {
      const config = parsePagersConfig(
        {
          pagerduty: { routingKeys: { default: 'rk' } },
          slack: {},
          order: ['slack', 'pagerduty'],
        },
        'oncall.yml: pagers',
      );
      assert.equal(config.pagerduty?.url, 'https://events.pagerduty.com');
      assert.equal(config.pagerduty?.timeoutMs, 10_000);
      assert.equal(config.pagerduty?.maxAttempts, 4);
      assert.equal(config.slack?.enabled, true);
      const pagers = createPagers(config, {
        slack: { conversationsOpen: async () => 'D1', postMessage: async () => ({ ts: '1' }) },
      });
      assert.deepEqual(
        pagers.map((p) => p.name),
        ['slack', 'pagerduty'],
      );
    });

    test('errors name the field path and what is wrong', () => {
      const problems = (input: unknown) => {
        try {
          parsePagersConfig(input, 'pagers.yml');
        } catch (err) {
          assert.ok(err instanceof PagersConfigError);
          assert.equal(err.code, 'pagers_invalid');
          return err.message.split('\n');
        }
        assert.fail('expected an error');
      };
      assert.deepEqual(problems({ order: ['pagerduty', 'pagerduty'] }), [
        'pagers.yml: order.0: pagerduty has no `pagerduty:` section',
        'pagers.yml: order.1: pagerduty is listed twice',
        'pagers.yml: order.1: pagerduty has no `pagerduty:` section',
      ]);
      assert.deepEqual(problems({ webhook: { url: 'ftp://x', secret: 'short' }, order: ['webhook'] }), [
        'pagers.yml: webhook.url: expected an http(s) URL',
        'pagers.yml: webhook.secret: expected a secret of at least 16 characters',
      ]);
      assert.deepEqual(problems({ slack: { enabled: false }, order: ['slack'] }), [
        'pagers.yml: order.0: slack is listed but `slack.enabled` is false',
      ]);
      assert.deepEqual(
        problems({
          pagerduty: { routingKeys: {}, backoffBaseMs: 10, backoffMaxMs: 5 },
          order: ['pagerduty', 'sms'],
        }),
        [
          'pagers.yml: pagerduty.routingKeys: expected at least one key (e.g. `default`)',
          'pagers.yml: order.1: Invalid option: expected one of "slack"|"pagerduty"|"webhook"',
        ],
      );
      assert.deepEqual(problems({ order: [] }), ['pagers.yml: order: expected at least one pager']);
    });
  });
});
