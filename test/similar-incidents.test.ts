import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KnownBlock } from '@slack/types';
import {
  loadSearchText,
  refreshIncidentSearch,
  refreshMissingIncidentSearch,
} from '../src/incidents/incident-search.js';
import { transitionIncident } from '../src/incidents/lifecycle.js';
import {
  findSimilarIncidents,
  type SimilarIncident,
  textQueryOf,
} from '../src/incidents/similar-incidents.js';
import { appendEvent } from '../src/runbooks/execution-repo.js';
import { MAX_TOTAL_BLOCK_TEXT, measureText, SLACK_LIMITS } from '../src/slack/blocks/limits.js';
import { buildSimilarMessage } from '../src/slack/blocks/similar.js';
import { createDb } from '../src/store/db.js';
import { resolveSeededIncident, seedIncident, useSeedDatabase } from './helpers/seed-incidents.js';

const at = (iso: string) => new Date(iso);

test('the text query keeps only plain words of three characters or more', () => {
  assert.equal(
    textQueryOf("Ledger's p99 & lag: it's 'high' | !(DROP) <b>ok</b> ledger"),
    'ledger | p99 | lag | high | drop',
  );
  assert.equal(textQueryOf('a b c !! ??'), '');
});

const SECRETS = ['hunter2', 'xoxb-1234567890', 'sup3rs3cret', 'AKIAIOSFODNN7EXAMPLE'];

describe('against Postgres', () => {
  // the app's pool: its int8 parsing is what production sees
  const db = useSeedDatabase('similar', { pool: (url) => createDb(url, 4) });

  async function addNote(
    incidentId: number,
    userId: string,
    note: { cause?: string; fix?: string; note?: string },
  ) {
    await db.query(
      'INSERT INTO resolution_notes (incident_id, user_id, cause, fix, note) VALUES ($1, $2, $3, $4, $5)',
      [incidentId, userId, note.cause ?? '', note.fix ?? '', note.note ?? ''],
    );
  }

  /** a decided run of `runbookId` with diagnostics (id → summary) and a decision text */
  async function addRun(incidentId: number, diagnostics: Record<string, string>, decisionText: string) {
    const { rows } = await db.query<{ id: number }>(
      `INSERT INTO runbook_executions (incident_id, request_key, runbook_id, runbook_hash, runbook, matched_by,
                                       requested_by, vars, status, decision)
       VALUES ($1, 'auto', 'default-triage', 'h', '{}', 'default', 'ai-sre', '{}', 'decided', $2) RETURNING id`,
      [incidentId, JSON.stringify({ outcome: 'escalate', hypothesis: null, text: decisionText })],
    );
    const executionId = (rows[0] as { id: number }).id;
    let position = 0;
    for (const [id, summary] of Object.entries(diagnostics)) {
      await db.query(
        `INSERT INTO diagnostic_results (execution_id, diagnostic_id, position, type, status, summary, duration_ms,
                                         started_at, finished_at)
         VALUES ($1, $2, $3, 'prometheus_query', 'critical', $4, 10, now(), now())`,
        [executionId, id, position++, summary],
      );
    }
  }

  test('similar incidents: same service and alert first, then service, alert, text; never itself or unrelated', async () => {
    const target = await seedIncident(db, {
      service: 'ledger-svc',
      title: 'Ledger reconciliation backlog growing',
      summary: 'reconciliation backlog above 10k entries',
      alert: 'LedgerLagHigh',
      openedAt: at('2020-06-01T12:00:00Z'),
    });
    const both = await seedIncident(db, {
      service: 'ledger-svc',
      title: 'Ledger lag high',
      alert: 'LedgerLagHigh',
      openedAt: at('2020-05-01T12:00:00Z'),
    });
    await resolveSeededIncident(db, both, { actor: 'U0LEDGER', reason: 'fixed by hand', afterMinutes: 14 });
    const serviceOnly = await seedIncident(db, {
      service: 'ledger-svc',
      title: 'Ledger writes slow',
      alert: 'LedgerWriteLatency',
      openedAt: at('2020-05-20T12:00:00Z'),
    });
    await appendEvent(db, serviceOnly.id, 'ai-sre', 'remediation.verified', true, {
      executionId: 1,
      reason: 'remediation verified: rollback',
      tried: [
        { step: 'rollback', action: 'rollback', status: 'verified', reason: null, summary: 'rolled back' },
      ],
    });
    await resolveSeededIncident(db, serviceOnly, {
      actor: 'ai-sre',
      reason: 'remediation verified: rollback',
      afterMinutes: 9,
    });
    const alertOnly = await seedIncident(db, {
      service: 'ledger-consumer',
      title: 'Consumer stalled',
      alert: 'LedgerLagHigh',
      openedAt: at('2020-05-10T12:00:00Z'),
    });
    const textOnly = await seedIncident(db, {
      service: 'billing',
      title: 'Reconciliation backlog in billing export',
      alert: 'BillingExportStuck',
      openedAt: at('2020-05-25T12:00:00Z'),
    });
    await transitionIncident(db, textOnly.id, 'escalated', { actor: 'ai-sre', reason: 'x' });
    // as the escalation flow writes it: the category id and its words
    await appendEvent(db, textOnly.id, 'ai-sre', 'escalation.started', true, {
      escalationId: 1,
      category: 'fix_failed',
      categoryText: 'automatic fix failed',
      reason: 'x',
    });
    const unrelated = await seedIncident(db, {
      service: 'search',
      title: 'Search index stale',
      alert: 'IndexStale',
      openedAt: at('2020-05-28T12:00:00Z'),
    });
    const later = await seedIncident(db, {
      service: 'ledger-svc',
      title: 'Ledger reconciliation backlog growing',
      alert: 'LedgerLagHigh',
      openedAt: at('2020-06-02T12:00:00Z'),
    });
    const tooOld = await seedIncident(db, {
      service: 'ledger-svc',
      title: 'Ledger reconciliation backlog growing',
      alert: 'LedgerLagHigh',
      openedAt: at('2019-01-01T12:00:00Z'),
    });

    const all = await findSimilarIncidents(db, target, { limit: 10 });
    assert.deepEqual(
      all.map((s) => s.id),
      [both.id, serviceOnly.id, alertOnly.id, textOnly.id],
    );
    const ids = new Set(all.map((s) => s.id));
    for (const never of [target.id, unrelated.id, later.id, tooOld.id]) assert.ok(!ids.has(never));

    const [first, second, third, fourth] = all;
    assert.deepEqual(first?.matched, ['service', 'alert', 'text']);
    assert.ok((first?.score ?? 0) > 5);
    assert.equal(first?.resolution, 'resolved by U0LEDGER after 14 min');
    assert.deepEqual(second?.matched, ['service', 'text']);
    assert.equal(second?.resolution, 'auto-resolved: rollback verified after 9 min');
    assert.deepEqual(third?.matched, ['alert']);
    assert.equal(third?.score, 2);
    assert.equal(third?.resolution, 'still open');
    assert.deepEqual(fourth?.matched, ['text']);
    assert.ok((fourth?.score ?? 0) > 0 && (fourth?.score ?? 0) < 2);
    assert.equal(fourth?.resolution, 'escalated (automatic fix failed), still open');

    const top = await findSimilarIncidents(db, target);
    assert.deepEqual(
      top.map((s) => s.id),
      [both.id, serviceOnly.id, alertOnly.id],
      'default limit 3',
    );
    assert.equal((await findSimilarIncidents(db, target, { limit: 1 })).length, 1);
    // a narrow window keeps only what was opened within it
    const recent = await findSimilarIncidents(db, target, { limit: 10, withinDays: 14 });
    assert.deepEqual(
      recent.map((s) => s.id),
      [serviceOnly.id, textOnly.id],
    );

    // once indexed, the alert names are words of the documents too: the same order, the shared alert also counts
    // as shared words
    assert.equal(await refreshMissingIncidentSearch(db), 8);
    assert.equal(await refreshMissingIncidentSearch(db), 0, 'nothing left to index');
    const indexed = await findSimilarIncidents(db, target, { limit: 10 });
    assert.deepEqual(
      indexed.map((s) => [s.id, s.matched]),
      [
        [both.id, ['service', 'alert', 'text']],
        [serviceOnly.id, ['service', 'text']],
        [alertOnly.id, ['alert', 'text']],
        [textOnly.id, ['text']],
      ],
    );
  });

  test('the search document: weighted, redacted, bounded and rebuilt whole on every refresh', async () => {
    const incident = await seedIncident(db, {
      service: 'orders-api',
      title: 'Orders checkout timeouts password=hunter2',
      summary: 'upstream xoxb-1234567890-abcdefghijkl slow',
      alert: 'OrdersLatencyHigh',
      openedAt: at('2021-03-01T10:00:00Z'),
    });
    await addRun(incident.id, { upstream: 'inventory upstream answering in 4200 ms' }, 'Nothing confirmed');
    await addNote(incident.id, 'U0ANA', {
      cause: 'cache stampede after a deploy',
      fix: 'warmed the redis cache; db at postgres://app:sup3rs3cret@db-1:5432/orders',
      note: 'x'.repeat(20_000),
    });
    await refreshIncidentSearch(db, incident.id);
    const lexemes = async () => {
      const { rows } = await db.query<{ lexeme: string; weights: string[] }>(
        `SELECT u.lexeme, u.weights FROM incident_search s, unnest(s.document) u WHERE s.incident_id = $1`,
        [incident.id],
      );
      return new Map(rows.map((r) => [r.lexeme, r.weights]));
    };
    const first = await lexemes();
    assert.deepEqual(first.get('checkout'), ['A'], 'title: A');
    assert.deepEqual(first.get('stamped'), ['A'], 'note cause: A');
    assert.deepEqual(first.get('warm'), ['A'], 'note fix: A');
    assert.ok(first.get('orders-api')?.includes('B'), 'service: B');
    assert.ok(first.get('orderslatencyhigh')?.includes('B'), 'alert name: B');
    assert.deepEqual(first.get('inventori'), ['C'], 'diagnostic summary: C');
    assert.deepEqual(first.get('confirm'), ['C'], 'decision text: C');
    for (const [lexeme] of first) {
      for (const secret of SECRETS) assert.ok(!lexeme.includes(secret.toLowerCase()), `leaks ${lexeme}`);
    }
    const text = await loadSearchText(db, incident.id);
    assert.ok(text && text.a.length <= 4_000, 'the 20,000-character note is cut');

    // a second note and a second refresh: one row, with the new words
    await addNote(incident.id, 'U0BO', { fix: 'rolled back the gateway' });
    await refreshIncidentSearch(db, incident.id);
    await refreshIncidentSearch(db, incident.id);
    const { rows } = await db.query('SELECT 1 FROM incident_search WHERE incident_id = $1', [incident.id]);
    assert.equal(rows.length, 1);
    assert.deepEqual((await lexemes()).get('gateway'), ['A']);
    // an incident that does not exist is a no-op
    await refreshIncidentSearch(db, 999_999_999);
    assert.equal(await loadSearchText(db, 999_999_999), null);
  });

  test("a resolution note's words make an older incident match, and name what fixed it", async () => {
    const older = await seedIncident(db, {
      service: 'checkout',
      title: 'Checkout errors spiked',
      alert: 'CheckoutErrors',
      openedAt: at('2022-01-10T08:00:00Z'),
    });
    await resolveSeededIncident(db, older, { actor: 'U0OPS1', reason: 'fixed', afterMinutes: 14 });
    await addNote(older.id, 'U0OPS1', { cause: 'pgbouncer pool saturated', fix: 'bumped the pool size' });
    await addNote(older.id, 'U0OPS1', {
      cause: 'pgbouncer pool saturated',
      fix: 'restarted the pgbouncer pool',
    });
    const autoResolved = await seedIncident(db, {
      service: 'payments',
      title: 'Payments slow',
      alert: 'PaymentsSlow',
      openedAt: at('2022-01-20T08:00:00Z'),
    });
    await resolveSeededIncident(db, autoResolved, {
      actor: 'alertmanager',
      reason: 'all alerts resolved',
      afterMinutes: 6,
    });
    await addNote(autoResolved.id, 'U0OPS2', { cause: 'pgbouncer restarted by the platform team' });
    // its own words say nothing of pgbouncer: its diagnostics do
    const target = await seedIncident(db, {
      service: 'orders',
      title: 'Orders API 5xx',
      alert: 'OrdersErrors',
      openedAt: at('2022-02-01T08:00:00Z'),
    });
    await addRun(target.id, { pool: 'pgbouncer pool 100% used, 340 clients waiting' }, 'escalate');

    assert.deepEqual(await findSimilarIncidents(db, target, { limit: 10 }), [], 'not indexed yet: no match');
    await refreshIncidentSearch(db, older.id);
    await refreshIncidentSearch(db, autoResolved.id);
    const found = await findSimilarIncidents(db, target, { limit: 10 });
    assert.deepEqual(
      found.map((s) => s.id),
      [older.id, autoResolved.id],
      'two note words beat one',
    );
    assert.deepEqual(found[0]?.matched, ['text']);
    assert.ok((found[0]?.score ?? 0) > (found[1]?.score ?? 0));
    assert.equal(found[0]?.resolution, 'resolved by U0OPS1 after 14 min: restarted the pgbouncer pool');
    assert.equal(
      found[1]?.resolution,
      'resolved: all alerts resolved after 6 min; noted by U0OPS2: pgbouncer restarted by the platform team',
    );
  });

  test('titles and resolution lines are redacted', async () => {
    const older = await seedIncident(db, {
      service: 'vault-proxy',
      title: 'Login failing with password=hunter2 in the log',
      alert: 'VaultProxyDown',
      openedAt: at('2023-01-01T08:00:00Z'),
    });
    await resolveSeededIncident(db, older, { actor: 'U0OPS9', reason: 'fixed', afterMinutes: 30 });
    await addNote(older.id, 'U0OPS9', {
      fix: `rotated xoxb-1234567890-abcdefghijkl and AKIAIOSFODNN7EXAMPLE, see postgres://app:sup3rs3cret@db/x ${'y'.repeat(300)}`,
    });
    const target = await seedIncident(db, {
      service: 'vault-proxy',
      title: 'Login failing',
      alert: 'VaultProxyDown',
      openedAt: at('2023-02-01T08:00:00Z'),
    });
    const [found] = await findSimilarIncidents(db, target);
    assert.equal(found?.id, older.id);
    const shown = `${found?.title} ${found?.resolution}`;
    for (const secret of SECRETS) assert.ok(!shown.includes(secret), `leaks ${secret}: ${shown}`);
    assert.match(found?.title ?? '', /password=\*\*\*/);
    assert.match(found?.resolution ?? '', /^resolved by U0OPS9 after 30 min: rotated \*\*\* and \*\*\*/);
    assert.ok((found?.resolution.length ?? 0) < 260, 'a long note is cut');
  });

  test('the limit: default 3, at most 50, 0 asks for nothing; ties go to the newest', async () => {
    const base = at('2024-06-01T00:00:00Z').getTime();
    const ids: number[] = [];
    for (let i = 0; i < 55; i++) {
      const incident = await seedIncident(db, {
        service: 'limit-svc',
        title: `Unrelated words ${i}`,
        alert: `LimitAlert${i}`,
        openedAt: new Date(base + i * 60_000),
      });
      ids.push(incident.id);
    }
    const target = await seedIncident(db, {
      service: 'limit-svc',
      title: 'zzz',
      alert: 'Other',
      openedAt: new Date(base + 3_600_000),
    });
    const newestFirst = [...ids].reverse();
    assert.deepEqual(
      (await findSimilarIncidents(db, target)).map((s) => s.id),
      newestFirst.slice(0, 3),
    );
    assert.deepEqual(
      (await findSimilarIncidents(db, target, { limit: 2 })).map((s) => s.id),
      newestFirst.slice(0, 2),
    );
    assert.equal((await findSimilarIncidents(db, target, { limit: 500 })).length, 50);
    assert.deepEqual(await findSimilarIncidents(db, target, { limit: 0 }), []);
    assert.deepEqual(await findSimilarIncidents(db, target, { limit: -3 }), []);
  });
});

const similar = (over: Partial<SimilarIncident> = {}): SimilarIncident => ({
  id: 41,
  title: 'PgBouncer pool exhausted',
  service: 'payments',
  severity: 'critical',
  openedAt: at('2026-01-05T10:00:00Z'),
  resolvedAt: at('2026-01-05T10:14:00Z'),
  score: 5.061,
  matched: ['service', 'alert', 'text'],
  resolution: 'resolved by U0OPS1 after 14 min: restarted the pgbouncer pool',
  ...over,
});

/** Every block checked against Slack's documented limits, and the total under the budget fitMessage keeps. */
function assertWithinLimits(message: { text: string; blocks: KnownBlock[] }): void {
  assert.ok(message.blocks.length <= SLACK_LIMITS.blocksPerMessage, `${message.blocks.length} blocks`);
  for (const block of message.blocks) {
    if (block.type === 'section')
      assert.ok((block.text?.text.length ?? 0) <= SLACK_LIMITS.sectionText, 'section');
    if (block.type === 'context') {
      for (const x of block.elements) if ('text' in x) assert.ok(x.text.length <= SLACK_LIMITS.textObject);
    }
  }
  assert.ok(measureText(message.blocks) <= MAX_TOTAL_BLOCK_TEXT, `total ${measureText(message.blocks)}`);
}

describe('the Slack answer to `similar`', () => {
  test('each incident with how it ended, why it matched and its score', () => {
    const message = buildSimilarMessage('INC-57', [
      similar(),
      similar({ id: 12, matched: ['text'], score: 0.12, resolution: 'escalated (fix failed), still open' }),
    ]);
    assert.equal(message.text, '2 incidents like INC-57: INC-41, INC-12');
    const texts = message.blocks.map((b) => (b.type === 'section' ? (b.text?.text ?? '') : ''));
    assert.match(texts[0] ?? '', /Incidents like INC-57/);
    assert.match(texts[1] ?? '', /^\*INC-41\* PgBouncer pool exhausted\n/);
    assert.match(texts[1] ?? '', /same service, alert, text · score 5\.061/);
    assert.match(texts[1] ?? '', /↳ resolved by U0OPS1 after 14 min: restarted the pgbouncer pool$/);
    assert.match(texts[2] ?? '', /same text · score 0\.12/);
    assert.equal(message.blocks.at(-1)?.type, 'context');
    assertWithinLimits(message);
  });

  test('no similar incidents', () => {
    const message = buildSimilarMessage('INC-57', []);
    assert.equal(message.text, 'No similar incidents found for INC-57.');
    assert.equal(message.blocks.length, 1);
    assertWithinLimits(message);
  });

  test('alert text cannot inject mentions or links, and 50 huge results still fit', () => {
    const evil = '<!channel> <https://evil.example|click> & more';
    const one = buildSimilarMessage('INC-1', [similar({ title: evil, resolution: evil, service: evil })]);
    const body = JSON.stringify(one.blocks);
    assert.ok(!body.includes('<!channel>') && !body.includes('<https://evil'), body);
    assert.match(body, /&lt;!channel&gt;/);

    const long = 'word '.repeat(2_000);
    const many = buildSimilarMessage(
      'INC-1',
      Array.from({ length: 50 }, (_, i) => similar({ id: i, title: long, resolution: long })),
    );
    assertWithinLimits(many);
    const shown = many.blocks.filter((b) => b.type === 'section').length - 1;
    assert.equal(shown, 48, 'every result that fits the block count is shown, shortened');
    assert.match(JSON.stringify(many.blocks.at(-1)), /2 more not shown/);
  });
});
