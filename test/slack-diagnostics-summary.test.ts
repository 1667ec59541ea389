import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  buildDiagnosticsSummary,
  type DiagnosticsSummaryView,
} from '../src/slack/blocks/diagnostics-summary.js';

const view = (checks: DiagnosticsSummaryView['checks']): DiagnosticsSummaryView => ({
  runbookId: 'db-connection-pool-exhausted',
  runbookName: 'Database connection pool exhausted',
  version: '3',
  hash: 'a20dcdc6b0d50605b0377b38e710b5279f479af38b5ca3cdf2990e73d6b689a3',
  chosenBecause: 'matched alert PostgresConnectionPoolExhausted',
  noRunbook: false,
  checks,
});

const check = (
  id: string,
  status: DiagnosticsSummaryView['checks'][number]['status'],
  extra: Partial<DiagnosticsSummaryView['checks'][number]> = {},
) => ({
  id,
  type: 'database_query',
  unit: null,
  status,
  value: null,
  summary: '',
  durationMs: null,
  ...extra,
});

const text = (msg: { blocks: unknown[] }) => JSON.stringify(msg.blocks);

describe('the diagnostics message of a runbook run', () => {
  test('pending checks show as running; finished ones with emoji, value and unit, summary and duration', () => {
    const msg = buildDiagnosticsSummary(
      view([
        check('connections', 'critical', {
          value: 97.94,
          unit: '%',
          summary: 'value 97.9 (1 row)',
          durationMs: 42,
        }),
        check('idle', 'healthy', { value: 4, summary: '4 idle', durationMs: 1500 }),
        check('app_pool', 'error', { summary: 'timed out after 15000 ms', durationMs: 15_000 }),
        check('long_queries', null),
      ]),
    );
    const blocks = text(msg);
    assert.match(blocks, /:red_circle: \*connections\* 97\.9 % — value 97\.9 \(1 row\) · 42 ms/);
    assert.match(blocks, /:large_green_circle: \*idle\* 4 — 4 idle · 1\.5 s/);
    assert.match(blocks, /:warning: \*app_pool\* error — timed out after 15000 ms · 15 s/);
    assert.match(blocks, /:hourglass_flowing_sand: \*long_queries\* running…/);
    assert.match(blocks, /3\/4 checks done · 1 critical, 1 error, 1 healthy · runbook sha256 `a20dcdc6b0d5`/);
    assert.match(msg.text, /Diagnostics \(db-connection-pool-exhausted\): 3\/4 checks done/);
  });

  test('text from monitored systems cannot mention the channel or break the formatting', () => {
    const msg = buildDiagnosticsSummary(
      view([check('logs', 'warning', { value: 3, summary: '<!channel> *boom* <https://evil|click>' })]),
    );
    assert.doesNotMatch(text(msg), /<!channel>/);
    assert.doesNotMatch(text(msg), /<https:\/\/evil\|click>/);
  });

  test('many checks stay inside Block Kit limits (sections of at most 3000 characters, 50 blocks)', () => {
    const many = Array.from({ length: 120 }, (_, i) =>
      check(`check_${i}`, 'critical', { value: i, summary: 'x'.repeat(400), durationMs: 10 }),
    );
    const msg = buildDiagnosticsSummary(view(many));
    assert.ok(msg.blocks.length <= 50);
    for (const block of msg.blocks as { type: string; text?: { text: string } }[]) {
      if (block.type === 'section') assert.ok((block.text?.text.length ?? 0) <= 3000);
    }
  });
});
