import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { sendBlockAction, signSlackRequest } from '../src/devtools/slack-standin/sign.js';
import { buildAlert, buildAlertmanagerGroup } from './helpers/builders.js';
import {
  assertNotPolluted,
  HOSTILE_STRINGS,
  hostileJson,
  hostileString,
  type Json,
  LIVE_MRKDWN,
  pathsOf,
  setAt,
} from './helpers/hostile-arbitraries.js';
import { SIGNING_SECRET, startTestApp, type TestApp, WEBHOOK_TOKEN } from './helpers/test-app.js';

const grafanaFixture = JSON.parse(
  readFileSync(new URL('./fixtures/grafana-firing-two-alerts.json', import.meta.url), 'utf8'),
) as Json;

/** One valid body per route; `n` keeps services and series apart between runs. */
const VALID_BODIES: Record<string, (n: number) => Json> = {
  '/webhooks/alertmanager': (n) =>
    buildAlertmanagerGroup([buildAlert({ name: `Fuzz${n}`, service: `fuzz-am-${n}` })]) as unknown as Json,
  '/webhooks/grafana': () => grafanaFixture,
  '/webhooks/generic': (n) => ({
    name: `Fuzz${n}`,
    service: `fuzz-generic-${n}`,
    severity: 'warning',
    summary: 'queue backlog',
    labels: { env: 'prod' },
  }),
  '/webhooks/deploy': (n) => ({
    service: `fuzz-deploy-${n}`,
    version: `1.0.${n}`,
    deployed_at: '2026-11-26T03:00:00Z',
  }),
  '/ingest/metrics': (n) => [
    { series: `fuzz_${n}`, labels: { job: 'api' }, timestamp: 1_700_000_000, value: 1 },
  ],
};
const ROUTES = Object.keys(VALID_BODIES);

describe('hostile input at the HTTP boundary (real app, Postgres, Redis, Slack stand-in)', () => {
  let t: TestApp;
  /** every line the app's pino logger wrote, at debug level */
  const logLines: string[] = [];
  let counter = 0;
  const next = () => ++counter;

  before(async () => {
    t = await startTestApp({ LOG_LEVEL: 'debug' });
    // pino writes to fd 1; point the app's logger (and its children, which inherit the stream) at an array instead
    (t.app.ctx.log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] = {
      write: (line: string) => logLines.push(line),
    };
    t.stub.connectBot({ url: t.baseUrl, signingSecret: SIGNING_SECRET });
  });
  after(async () => {
    await t.close();
  });

  const TABLES = ['alert_deliveries', 'incidents', 'incident_alerts', 'timeline_events', 'deploy_events'];
  const rowCounts = async () =>
    (
      await t.query<Record<string, number>>(
        `SELECT ${TABLES.map((table) => `(SELECT count(*)::int FROM ${table}) AS ${table}`).join(', ')}`,
      )
    )[0];

  async function post(path: string, body: string | Uint8Array, contentType = 'application/json') {
    const res = await fetch(`${t.baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': contentType, authorization: `Bearer ${WEBHOOK_TOKEN}` },
      body,
    });
    const text = await res.text();
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      assert.fail(`${path} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
    }
    return { status: res.status, json };
  }

  /** a 4xx with an error code and a message saying what is wrong */
  function assertClearRejection(res: { status: number; json: Record<string, unknown> }, what: string): void {
    assert.ok(
      res.status >= 400 && res.status < 500,
      `${what}: expected 4xx, got ${res.status} ${JSON.stringify(res.json)}`,
    );
    assert.ok(typeof res.json.error === 'string' && res.json.error.length > 0, `${what}: no error code`);
    assert.ok(typeof res.json.message === 'string' && res.json.message.length > 0, `${what}: no message`);
  }

  /** false after an accepted request, until its follow-up jobs (which write timeline events) have run */
  let settled = true;

  /** posts, and when the answer is a rejection, checks it is a clear 4xx and that nothing was written */
  async function postExpectingNoPartialWrite(path: string, body: string | Uint8Array, contentType?: string) {
    if (!settled) await t.drained();
    settled = true;
    const before = await rowCounts();
    const res = await post(path, body, contentType);
    assert.ok(res.status < 500, `${path}: ${res.status} ${JSON.stringify(res.json)}`);
    settled = res.status !== 202;
    if (res.status !== 202) {
      assertClearRejection(res, path);
      assert.deepEqual(await rowCounts(), before, `${path}: a rejected request wrote rows`);
    }
    return res;
  }

  test('arbitrary JSON values (prototype keys at every level) are refused with a clear 4xx and write nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), hostileJson, async (path, value) => {
        const res = await postExpectingNoPartialWrite(path, JSON.stringify(value) ?? 'null');
        assert.notEqual(res.status, 202, `${path} accepted ${JSON.stringify(value)}`);
        assertNotPolluted();
      }),
      { numRuns: 150 },
    );
  });

  test('truncated and garbled JSON: never 5xx; a rejection writes nothing', async () => {
    const garble = fc.record({
      path: fc.constantFrom(...ROUTES),
      at: fc.nat(),
      kind: fc.constantFrom('truncate', 'replace', 'insert', 'delete'),
      junk: fc.oneof(
        fc.constantFrom(
          '{',
          '}',
          '[',
          ']',
          '"',
          ',',
          ':',
          '\\',
          '\\u',
          '\\ud800',
          'null',
          '1e999999',
          '-',
          '\u0000',
        ),
        fc.string({ unit: 'binary', maxLength: 6 }),
      ),
    });
    await fc.assert(
      fc.asyncProperty(garble, async ({ path, at, kind, junk }) => {
        const text = JSON.stringify((VALID_BODIES[path] as (n: number) => Json)(next()));
        const i = at % text.length;
        const garbled =
          kind === 'truncate'
            ? text.slice(0, i)
            : kind === 'replace'
              ? text.slice(0, i) + junk + text.slice(i + 1)
              : kind === 'insert'
                ? text.slice(0, i) + junk + text.slice(i)
                : text.slice(0, i) + text.slice(i + 1 + (at % 7));
        await postExpectingNoPartialWrite(path, garbled);
      }),
      { numRuns: 150 },
    );
  });

  test('a wrong type in any field is a 400 whose issues name that field (or the object holding it)', async () => {
    const wrongValue = fc.oneof(
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.constant([]),
      fc.constant({}),
      fc.constant('x'.repeat(20_000)),
      hostileString,
    );
    const routes = ROUTES.filter((r) => r !== '/ingest/metrics');
    const mutation = fc.constantFrom(...routes).chain((path) => {
      const body = (VALID_BODIES[path] as (n: number) => Json)(next());
      return fc.record({
        path: fc.constant(path),
        body: fc.constant(body),
        field: fc.constantFrom(...pathsOf(body)),
        value: wrongValue,
      });
    });
    await fc.assert(
      fc.asyncProperty(mutation, async ({ path, body, field, value }) => {
        const res = await postExpectingNoPartialWrite(path, JSON.stringify(setAt(body, field, value)));
        if (res.status !== 400 || res.json.error !== 'invalid_payload') return;
        const named = field.join('.');
        const issues = res.json.issues as string[];
        assert.ok(
          issues.some((issue) => {
            const at = issue.slice(0, issue.indexOf(': '));
            return (
              at !== '(body)' && (named === at || named.startsWith(`${at}.`) || at.startsWith(`${named}.`))
            );
          }),
          `${path}: ${named} := ${JSON.stringify(value).slice(0, 60)} got ${JSON.stringify(issues)}`,
        );
      }),
      { numRuns: 150 },
    );
  });

  test('one bad item in an alert or deploy batch rejects the whole body, naming its index; nothing is stored', async () => {
    const batch = fc.record({
      kind: fc.constantFrom('alertmanager', 'generic', 'deploy'),
      good: fc.integer({ min: 1, max: 5 }),
      badAt: fc.nat(),
      bad: hostileJson,
    });
    await fc.assert(
      fc.asyncProperty(batch, async ({ kind, good, badAt, bad }) => {
        const n = next();
        const items: unknown[] = Array.from({ length: good }, (_, i) =>
          kind === 'alertmanager'
            ? buildAlert({ name: `Batch${n}x${i}`, service: `batch-${n}` })
            : kind === 'generic'
              ? { name: `Batch${n}x${i}`, service: `batch-${n}` }
              : { service: `batch-${n}`, version: `${n}.${i}` },
        );
        const index = badAt % (good + 1);
        // a primitive or an array can never be a valid alert or deploy
        items.splice(index, 0, bad !== null && typeof bad === 'object' && !Array.isArray(bad) ? [bad] : bad);
        const [path, key, body] =
          kind === 'alertmanager'
            ? ['/webhooks/alertmanager', 'alerts', { ...buildAlertmanagerGroup([]), alerts: items }]
            : kind === 'generic'
              ? ['/webhooks/generic', 'alerts', { alerts: items }]
              : ['/webhooks/deploy', 'deploys', { deploys: items }];
        const res = await postExpectingNoPartialWrite(path, JSON.stringify(body));
        assert.equal(res.status, 400, JSON.stringify(res.json));
        assert.ok(
          (res.json.issues as string[]).some((i) => i.startsWith(`${key}.${index}`)),
          JSON.stringify(res.json.issues),
        );
      }),
      { numRuns: 80 },
    );
  });

  test('/ingest/metrics keeps the good samples and names each bad one with its index and reason', async () => {
    const brokenSample = fc.constantFrom<(s: Record<string, unknown>) => unknown>(
      (s) => ({ ...s, value: undefined }),
      (s) => ({ ...s, value: 'NaN' }),
      (s) => ({ ...s, series: '9 bad name' }),
      (s) => ({ ...s, timestamp: 'yesterday' }),
      (s) => ({ ...s, timestamp: -1 }),
      (s) => ({ ...s, labels: { 'bad-label': 'x' } }),
      (s) => ({ ...s, labels: { __proto__x: 1 } }),
      (s) => ({ ...s, extra: true }),
      () => null,
      () => '<!channel>',
      () => [],
    );
    const samples = fc.array(fc.option(brokenSample, { nil: undefined, freq: 2 }), {
      minLength: 1,
      maxLength: 8,
    });
    await fc.assert(
      fc.asyncProperty(samples, async (plan) => {
        const n = next();
        const body = plan.map((broken, i) => {
          const sample = {
            series: `ingest_${n}_${i}`,
            labels: { job: 'api' },
            timestamp: 1_700_000_000 + i,
            value: i,
          };
          return broken ? broken(sample) : sample;
        });
        const bad = plan.flatMap((broken, i) => (broken ? [i] : []));
        const res = await postExpectingNoPartialWrite('/ingest/metrics', JSON.stringify(body));
        if (bad.length === plan.length) {
          assert.equal(res.status, 400);
          assert.deepEqual(
            (res.json.issues as string[]).map((i) => Number(i.split(':')[0])),
            bad.slice(0, 20),
          );
          return;
        }
        assert.equal(res.status, 202, JSON.stringify(res.json));
        assert.equal(res.json.accepted, plan.length - bad.length);
        const rejected = res.json.rejected as { index: number; reason: string }[];
        assert.deepEqual(
          rejected.map((r) => r.index),
          bad,
        );
        for (const r of rejected) assert.ok(r.reason.length > 0);
      }),
      { numRuns: 80 },
    );
  });

  test('bytes that are not UTF-8 are refused (400 invalid_encoding), never stored as replacement characters', async () => {
    const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.nat(), async (junk, at) => {
        const text = JSON.stringify({ name: 'Bytes', service: `bytes-${next()}`, summary: 'before|after' });
        const bytes = Buffer.from(text);
        const i = text.indexOf('|') + 1 + (at % 5);
        const body = Buffer.concat([bytes.subarray(0, i), junk, bytes.subarray(i)]);
        const res = await postExpectingNoPartialWrite('/webhooks/generic', body);
        let valid = true;
        try {
          strictUtf8.decode(body);
        } catch {
          valid = false;
        }
        if (!valid) assert.equal(res.json.error, 'invalid_encoding', JSON.stringify(res.json));
      }),
      { numRuns: 100 },
    );
  });

  test('content types other than JSON are 415 and write nothing', async () => {
    const contentType = fc
      .oneof(
        fc.constantFrom(
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
          'application/xml',
          'text/json',
          'application/jsonp',
          'application/octet-stream',
        ),
        fc.stringMatching(/^[a-z]{1,10}\/[a-z0-9.+-]{1,20}$/),
      )
      .filter((ct) => !/^application\/([a-z.+-]*\+)?json\b/i.test(ct));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), contentType, async (path, ct) => {
        const body = JSON.stringify((VALID_BODIES[path] as (n: number) => Json)(next()));
        const res = await postExpectingNoPartialWrite(path, body, ct);
        assert.equal(res.status, 415, `${ct}: ${JSON.stringify(res.json)}`);
      }),
      { numRuns: 60 },
    );
  });

  test('what Postgres cannot store is a 400 naming it: deep nesting, huge numbers, lone surrogates, years past 9999', async () => {
    const unstorable = fc.oneof(
      fc.integer({ min: 65, max: 5_000 }).map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`),
      fc.integer({ min: 65, max: 2_000 }).map((depth) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`),
      fc.integer({ min: 1_001, max: 1_000_000 }).map((e) => `1e${e}`),
      fc.integer({ min: 1_001, max: 1_000_000 }).map((e) => `-1e-${e}`),
      fc.integer({ min: 101, max: 5_000 }).map((digits) => '9'.repeat(digits)),
      fc.integer({ min: 0xd800, max: 0xdfff }).map((unit) => `"x\\u${unit.toString(16)}y"`),
    );
    // bodies that are stored as received (alerts, deploys): the whole body is refused, naming what cannot be stored
    const storedRoutes = ROUTES.filter((path) => path !== '/ingest/metrics');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...storedRoutes), unstorable, async (path, extra) => {
        const valid = JSON.stringify((VALID_BODIES[path] as (n: number) => Json)(next()));
        // an ignored extra member: the body is otherwise valid, so only the unstorable part can be refused
        const res = await postExpectingNoPartialWrite(path, `${valid.slice(0, -1)},"extra":${extra}}`);
        assert.equal(res.status, 400, JSON.stringify(res.json).slice(0, 300));
        assert.equal(res.json.error, 'unstorable_payload');
      }),
      { numRuns: 60 },
    );
    // metric batches are not stored: each sample's schema refuses what could not be stored, and the good samples
    // of the same batch are kept (a number that underflows to 0 is a 0, as JSON.parse reads it)
    await fc.assert(
      fc.asyncProperty(unstorable, fc.constantFrom('value', 'label'), async (extra, where) => {
        const bad =
          where === 'value'
            ? `{"series":"x_${next()}","timestamp":1700000000,"value":${extra}}`
            : `{"series":"x_${next()}","labels":{"l":${extra}},"timestamp":1700000000,"value":1}`;
        const good = `{"series":"ok_${next()}","timestamp":1700000000,"value":2}`;
        const res = await postExpectingNoPartialWrite('/ingest/metrics', `[${bad},${good}]`);
        const parsed = JSON.parse(extra) as unknown;
        if (where === 'value' && typeof parsed === 'number' && Number.isFinite(parsed)) {
          assert.equal(res.json.accepted, 2, JSON.stringify(res.json).slice(0, 300));
          return;
        }
        assert.equal(res.status, 202, JSON.stringify(res.json).slice(0, 300));
        assert.equal(res.json.accepted, 1, 'the good sample is kept');
        const [rejected] = res.json.rejected as { index: number; reason: string }[];
        assert.equal(rejected?.index, 0);
        assert.match(rejected?.reason ?? '', where === 'value' ? /^value: / : /^labels/);
      }),
      { numRuns: 60 },
    );
    const year = fc.oneof(fc.integer({ min: 10_000, max: 275_000 }), fc.integer({ min: -271_000, max: 0 }));
    await fc.assert(
      fc.asyncProperty(year, fc.constantFrom('startsAt', 'endsAt'), async (y, field) => {
        const date = new Date(Date.UTC(2000, 0, 1));
        date.setUTCFullYear(y);
        const res = await postExpectingNoPartialWrite(
          '/webhooks/generic',
          JSON.stringify({ name: 'Time', service: `time-${next()}`, [field]: date.toISOString() }),
        );
        assert.equal(res.status, 400, `${date.toISOString()}: ${JSON.stringify(res.json)}`);
        assert.ok((res.json.issues as string[]).some((i) => i.startsWith(`${field}:`)));
      }),
      { numRuns: 40 },
    );
  });

  test('huge strings: over the body limit is 413; under it, the card still fits Slack', async () => {
    const before = await rowCounts();
    const tooBig = await post(
      '/webhooks/alertmanager',
      JSON.stringify(
        buildAlertmanagerGroup([
          buildAlert({ name: 'Huge', service: 'huge', summary: 'x'.repeat(1_100_000) }),
        ]),
      ),
    );
    assert.equal(tooBig.status, 413);
    assert.deepEqual(await rowCounts(), before);
    const longSummary = await post(
      '/webhooks/generic',
      JSON.stringify({ name: 'Long', service: 'huge', summary: 'y'.repeat(10_001) }),
    );
    assert.equal(longSummary.status, 400);
    assert.ok((longSummary.json.issues as string[]).some((i) => i.startsWith('summary:')));
    const big = await post(
      '/webhooks/alertmanager',
      JSON.stringify(
        buildAlertmanagerGroup([
          buildAlert({ name: 'Big'.repeat(3_000), service: 'huge', summary: 'z'.repeat(900_000) }),
        ]),
      ),
    );
    assert.equal(big.status, 202, JSON.stringify(big.json));
    await t.drained();
    const card = t.stub.callsTo('chat.postMessage').find((c) => String(c.args.text).includes('BigBig'));
    assert.ok(card, 'the card of the huge alert was posted');
    assert.ok(JSON.stringify(card.args.blocks).length < 20_000, 'the card was cut to fit Slack');
  });

  test('prototype names as services and severities route and open incidents like any other name', async () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const res = await post(
        '/webhooks/alertmanager',
        JSON.stringify(
          buildAlertmanagerGroup([buildAlert({ name: `Proto${name}`, service: `${name}`, severity: name })]),
        ),
      );
      assert.equal(res.status, 202, `${name}: ${JSON.stringify(res.json)}`);
    }
    await t.drained();
    const incidents = await t.query<{ service: string; severity: string }>(
      `SELECT service, severity FROM incidents WHERE title LIKE 'Proto%' ORDER BY id`,
    );
    assert.deepEqual(
      incidents.map((i) => [i.service, i.severity]),
      [
        ['constructor', 'warning'],
        ['__proto__', 'warning'],
        ['toString', 'warning'],
        ['hasOwnProperty', 'warning'],
      ],
    );
    const cards = t.stub.callsTo('chat.postMessage').filter((c) => /Proto/.test(String(c.args.text)));
    assert.equal(cards.length, 4);
    for (const card of cards) assert.equal(card.args.channel, '#incidents', 'the default channel');
    assertNotPolluted();
  });

  test('/incident text: never a live mention, link or broadcast in what the bot answers or posts', async () => {
    const fragment = fc.oneof(
      fc.constantFrom(...HOSTILE_STRINGS),
      fc.constantFrom(
        'INC-1',
        '42',
        'sev=critical',
        'team=<!here>',
        '30m',
        'off',
        'on',
        '7d',
        'payment-service',
      ),
      fc.string({ maxLength: 12 }),
    );
    const subcommand = fc.constantFrom(
      'trigger hostile-svc',
      'trigger',
      'show',
      'run',
      'maintenance hostile-svc',
      'oncall',
      'page',
      'postmortem',
      'stats',
      'suggestions',
      'automation',
      'list',
      'frobnicate',
      '',
    );
    const firstCall = t.stub.calls.length;
    const answers: string[] = [];
    await fc.assert(
      fc.asyncProperty(subcommand, fc.array(fragment, { maxLength: 6 }), async (sub, words) => {
        const answer = await t.stub.command(`/incident ${sub} ${words.join(' ')}`, { user: 'U0001' });
        assert.equal(answer.status, 200, answer.error ?? answer.body);
        answers.push(answer.body);
      }),
      { numRuns: 60 },
    );
    await t.drained();
    await new Promise((r) => setTimeout(r, 300));
    const posted = t.stub.calls.slice(firstCall).flatMap((c) => mrkdwnOf(c.args));
    const acked = answers.flatMap((body) =>
      body ? mrkdwnOf(JSON.parse(body) as Record<string, unknown>) : [],
    );
    assert.ok(acked.length > 0);
    for (const text of [...posted, ...acked]) {
      for (const live of LIVE_MRKDWN)
        assert.ok(!text.includes(live), `${live} reached Slack in: ${text.slice(0, 300)}`);
    }
  });

  test('mentions with hostile text answer without live mentions', async () => {
    const firstCall = t.stub.calls.length;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('status', 'similar', 'help', ''),
        fc.array(hostileString, { maxLength: 3 }),
        async (sub, words) => {
          const answer = await t.stub.mention(`<@U0BOT> ${sub} ${words.join(' ')}`);
          assert.equal(answer.status, 200, answer.error ?? answer.body);
        },
      ),
      { numRuns: 30 },
    );
    await t.drained();
    await new Promise((r) => setTimeout(r, 300));
    const posted = t.stub.calls.slice(firstCall).flatMap((c) => mrkdwnOf(c.args));
    assert.ok(posted.length > 0, 'the bot answered the mentions');
    for (const text of posted)
      for (const live of LIVE_MRKDWN)
        assert.ok(!text.includes(live), `${live} reached Slack in: ${text.slice(0, 300)}`);
  });

  /** what a click could change: decisions, steps, pages, the timeline, incidents' status */
  const STATE_TABLES = [
    'approval_requests',
    'remediation_steps',
    'escalations',
    'timeline_events',
    'action_feedback',
  ];
  const stateOf = async () => ({
    counts: await t.query(
      `SELECT ${STATE_TABLES.map((table) => `(SELECT count(*)::int FROM ${table}) AS ${table}`).join(', ')}`,
    ),
    incidents: await t.query('SELECT id, status, revision FROM incidents ORDER BY id'),
  });

  test('signed block_actions with garbage values change nothing and answer without live mentions', async () => {
    const actionId = fc.constantFrom(
      'remediation_approve',
      'remediation_reject',
      'feedback_right',
      'feedback_wrong',
      'resolution_note_open',
      'page_acknowledge',
      'page_resolve',
    );
    // values that are not the id of anything: garbage, negative, fractional, or far beyond any row
    const value = fc.oneof(
      hostileString,
      fc.constantFrom('', '0', '-1', '1.5', '1e2x', 'NaN', 'Infinity', '0x', '9007199254740993', '  '),
      fc.integer({ min: 1_000_000_000, max: 2_000_000_000 }).map(String),
    );
    const before = await stateOf();
    const firstCall = t.stub.calls.length;
    await fc.assert(
      fc.asyncProperty(actionId, value, async (id, v) => {
        const res = await sendBlockAction(t.baseUrl, SIGNING_SECRET, {
          channel: { id: 'C0001', name: 'incidents' },
          container: { type: 'message', message_ts: '1700000000.000100', channel_id: 'C0001' },
          message: { ts: '1700000000.000100', thread_ts: '1700000000.000100' },
          actions: [{ type: 'button', action_id: id, block_id: 'b', value: v, action_ts: '1700000000.1' }],
        });
        assert.equal(res.status, 200, res.body);
      }),
      { numRuns: 60 },
    );
    await t.drained();
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await stateOf(), before, 'a garbage click changed state');
    const answers = t.stub.calls.slice(firstCall).flatMap((c) => mrkdwnOf(c.args));
    assert.ok(answers.length > 0, 'the clicker was told what was wrong');
    for (const text of answers)
      for (const live of LIVE_MRKDWN) assert.ok(!text.includes(live), `${live} reached Slack in: ${text}`);
  });

  test('unsigned, badly signed or stale Slack requests are 401 and change nothing', async () => {
    const before = await stateOf();
    const firstCall = t.stub.calls.length;
    const forgery = fc.constantFrom('none', 'bad', 'stale', 'garbage');
    await fc.assert(
      fc.asyncProperty(forgery, hostileJson, async (kind, junk) => {
        const payload = {
          type: 'block_actions',
          user: { id: 'U0001' },
          actions: [{ action_id: 'page_acknowledge', value: '1', junk }],
        };
        const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
        const now = Math.floor(Date.now() / 1000);
        const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
        if (kind === 'bad') Object.assign(headers, signSlackRequest(`${SIGNING_SECRET}-forged`, body, now));
        if (kind === 'stale') Object.assign(headers, signSlackRequest(SIGNING_SECRET, body, now - 600));
        if (kind === 'garbage')
          Object.assign(headers, { 'x-slack-signature': 'v0=zz', 'x-slack-request-timestamp': 'soon' });
        const res = await fetch(`${t.baseUrl}/slack/events`, { method: 'POST', headers, body });
        assert.equal(res.status, 401, `${kind}: ${res.status}`);
      }),
      { numRuns: 40 },
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(t.stub.calls.length, firstCall, 'a forged request made the bot call Slack');
    assert.deepEqual(await stateOf(), before);
  });

  test('secrets in alert text never reach Slack or the logs', async () => {
    const core = fc.stringMatching(/^[A-Za-z0-9]{16,24}$/);
    const secret = fc.oneof(
      core.map((c) => ({ text: `xoxb-1234-5678-${c}`, core: c })),
      core.map((c) => ({ text: `Bearer ${c}`, core: c })),
      core.map((c) => ({ text: `password=${c}`, core: c })),
      core.map((c) => ({ text: `postgres://admin:${c}@db.internal:5432/prod`, core: c })),
      fc.stringMatching(/^[A-Z0-9]{16}$/).map((c) => ({ text: `AKIA${c}`, core: `AKIA${c}` })),
    );
    const leaks: { text: string; core: string }[] = [];
    await fc.assert(
      fc.asyncProperty(
        secret,
        fc.constantFrom('summary', 'label', 'name'),
        fc.boolean(),
        async (s, where, viaAm) => {
          leaks.push(s);
          const n = next();
          const labels: Record<string, string> = where === 'label' ? { dsn: `conn ${s.text} end` } : {};
          const summary = where === 'summary' ? `login failed with ${s.text} for user` : 'nothing secret';
          const name = where === 'name' ? `Leak ${s.text}` : `Leak${n}`;
          const res = viaAm
            ? await post(
                '/webhooks/alertmanager',
                JSON.stringify({
                  ...buildAlertmanagerGroup([]),
                  alerts: [
                    {
                      ...buildAlert({ name, service: `leaky-${n}` }),
                      labels: { alertname: name, service: `leaky-${n}`, ...labels },
                      annotations: { summary },
                      // the builder puts the name in the link percent-encoded, which redaction does not decode
                      generatorURL: 'http://prometheus.example:9090/graph',
                    },
                  ],
                }),
              )
            : await post(
                '/webhooks/generic',
                JSON.stringify({ name, service: `leaky-${n}`, summary, labels }),
              );
          assert.equal(res.status, 202, JSON.stringify(res.json));
        },
      ),
      { numRuns: 20 },
    );
    await t.drained();
    await new Promise((r) => setTimeout(r, 500));
    await t.drained();
    const slack = JSON.stringify(t.stub.calls.map((c) => c.args));
    const logs = logLines.join('');
    assert.ok(logs.includes('posted incident card'), 'the app logs were captured');
    for (const s of leaks) {
      assert.ok(!slack.includes(s.core), `${s.text} reached Slack`);
      assert.ok(!logs.includes(s.core), `${s.text} reached the logs`);
    }
  });
});

/** The strings of a Slack payload that Slack reads as mrkdwn: top-level `text` and every `mrkdwn` text object. */
function mrkdwnOf(args: Record<string, unknown>): string[] {
  const out: string[] = typeof args.text === 'string' && args.mrkdwn !== false ? [args.text] : [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node !== null && typeof node === 'object') {
      const record = node as Record<string, unknown>;
      if (record.type === 'mrkdwn' && typeof record.text === 'string') out.push(record.text);
      Object.values(record).forEach(walk);
    }
  };
  walk(args.blocks);
  walk(args.attachments);
  return out;
}
