import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { snapshotCache } from '../src/runbooks/jobs/run-diagnostic.job.js';
import { createEnqueuedSyncWindows } from '../src/slack/sync-windows.js';
import type { Queryable } from '../src/store/db.js';
import { buildAlert, buildAlertmanagerGroup } from './helpers/builders.js';
import { eventually, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * What the worker keeps in memory between jobs stays bounded by the work in flight, not by the work done so far: the
 * soak (bench/soak.ts) saw the heap grow with every incident synced and every run diagnosed.
 */
describe('worker memory: per-incident and per-run state is let go', () => {
  test('a Slack sync window is forgotten once it has closed', () => {
    const debounceMs = 5_000;
    const windows = createEnqueuedSyncWindows(debounceMs);
    const t0 = 1_700_000_000_000;
    // a storm: 2,000 incidents, each with its window open for up to 5 s
    for (let i = 0; i < 2_000; i++) windows.add(`sync-slack-${i}-w1`, t0 + 1 + (i % debounceMs), t0);
    assert.equal(windows.size, 2_000);
    assert.equal(windows.has('sync-slack-7-w1', t0 + 2), true, 'still open: the Redis round trip is skipped');
    assert.equal(windows.has('sync-slack-7-w2', t0 + 2), false, 'another window is another job');
    // every window has closed: the next look sweeps them all
    assert.equal(windows.has('sync-slack-7-w1', t0 + debounceMs + 1), false);
    assert.equal(windows.size, 0);
    // steady load for an hour: one new window per incident change, never more than a couple of periods remembered
    let most = 0;
    for (let now = t0 + debounceMs + 1, i = 0; now < t0 + 3_600_000; now += 100, i++) {
      windows.add(`sync-slack-${i % 40}-w${Math.floor(now / debounceMs)}`, now + debounceMs, now);
      most = Math.max(most, windows.size);
    }
    assert.ok(most <= 40 * 2, `at most two windows per incident remembered, saw ${most}`);
  });

  test('a window that closed in the past is not recorded at all', () => {
    const windows = createEnqueuedSyncWindows(1_000);
    windows.add('sync-slack-1-w1', 10, 20);
    assert.equal(windows.size, 0);
    assert.equal(windows.has('sync-slack-1-w1', 20), false);
  });

  describe('run snapshots of the diagnostics handler', () => {
    let t: TestApp;
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'ai-sre-worker-memory-'));
      await copyFile('test/fixtures/runbooks-e2e/default-triage.yml', join(dir, 'default-triage.yml'));
      t = await startTestApp({ RUNBOOKS_DIR: dir, SLACK_SYNC_DEBOUNCE_MS: '0' });
    });
    after(async () => {
      await t.close();
      await rm(dir, { recursive: true, force: true });
    });

    test('are cached while used and the oldest let go past the bound', async () => {
      for (const service of ['mem-a', 'mem-b', 'mem-c']) {
        const res = await t.webhook(
          '/webhooks/alertmanager',
          buildAlertmanagerGroup([buildAlert({ name: 'Down', service })]),
        );
        assert.equal(res.status, 202);
      }
      const rows = await eventually('three runbook runs', async () => {
        const found = await t.query<{ id: number }>('SELECT id FROM runbook_executions ORDER BY id');
        return found.length === 3 ? found : null;
      });
      const [a, b, c] = rows.map((r) => r.id) as [number, number, number];
      let loads = 0;
      const db = t.app.ctx.db;
      const counting = {
        query: (...args: Parameters<Queryable['query']>) => {
          loads += 1;
          return (db.query as (...a: unknown[]) => unknown)(...args);
        },
      } as Queryable;
      const cache = snapshotCache(counting, 2);

      assert.equal((await cache.get(a))?.id, a);
      assert.equal((await cache.get(a))?.runbookId, 'default-triage');
      assert.equal(loads, 1, 'the second diagnostic of a run reads no snapshot');
      await cache.get(b);
      await cache.get(c);
      assert.equal(cache.size, 2, 'never more than the bound');
      assert.equal(loads, 3);
      assert.equal((await cache.get(a))?.id, a, 'a run let go is read again when needed');
      assert.equal(loads, 4);
      assert.equal(cache.size, 2);
      assert.equal(await cache.get(999_999), null);
      assert.equal(cache.size, 2, 'a missing run is not cached');
    });
  });
});
