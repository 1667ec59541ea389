import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { inflateSync } from 'node:zlib';
import { computeSlis, type SliFigures, type SliReport, sliMetricLines } from '../src/postmortem/slis.js';
import { fitMessage, MAX_TOTAL_BLOCK_TEXT, measureText, SLACK_LIMITS } from '../src/slack/blocks/limits.js';
import {
  buildStatsMessage,
  describePeriod,
  formatPercent,
  formatSliDuration,
  MAX_SERVICE_ROWS,
} from '../src/slack/blocks/stats.js';
import { renderTrendChart, TREND_CHART_SIZE, TREND_COLOURS } from '../src/slack/charts/trend-chart.js';
import { useSeedDatabase } from './helpers/seed-incidents.js';

const FROM = new Date('2026-03-01T00:00:00Z');
const TO = new Date('2026-03-04T00:00:00Z');
const at = (iso: string) => new Date(`2026-${iso}Z`);

/** The figures of a group, written out; every test value below was worked out by hand from the seed. */
function figures(f: Partial<SliFigures> & Pick<SliFigures, 'incidents'>): SliFigures {
  return {
    resolved: 0,
    mttd: null,
    mtta: null,
    mttr: null,
    mttrMedian: null,
    autoResolveRate: null,
    escalationRate: null,
    actions: 0,
    wrongActions: 0,
    falseActionRate: null,
    paged: 0,
    acknowledged: 0,
    ...f,
  };
}

describe('SLIs from seeded incidents', () => {
  const db = useSeedDatabase('slis');
  before(seed);

  async function incident(spec: {
    service: string;
    opened: string;
    signal: string;
    resolved?: string;
    status?: string;
    openedBy?: string;
  }): Promise<number> {
    const status = spec.status ?? (spec.resolved ? 'resolved' : 'investigating');
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO incidents (service, title, severity, status, source, opened_at, first_signal_at, last_alert_at, resolved_at)
       VALUES ($1, $2, 'critical', $3, 'alertmanager', $4, $5, $4, $6) RETURNING id`,
      [
        spec.service,
        `trouble on ${spec.service}`,
        status,
        at(spec.opened),
        at(spec.signal),
        spec.resolved ? at(spec.resolved) : null,
      ],
    );
    const id = Number(rows[0]?.id);
    await event(id, spec.opened, spec.openedBy ?? 'alertmanager', 'incident.opened', {
      service: spec.service,
    });
    return id;
  }

  async function event(
    incidentId: number,
    when: string,
    actor: string,
    type: string,
    data: Record<string, unknown> = {},
  ): Promise<void> {
    await db.query(
      'INSERT INTO timeline_events (incident_id, at, actor, type, data) VALUES ($1, $2, $3, $4, $5)',
      [incidentId, at(when), actor, type, data],
    );
  }

  async function execution(incidentId: number, runbookId: string, requestKey = 'auto'): Promise<number> {
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO runbook_executions (incident_id, request_key, runbook_id, runbook_hash, runbook, matched_by, requested_by, vars)
       VALUES ($1, $2, $3, 'sha256:test', '{}', 'trigger', 'ai-sre', '{}') RETURNING id`,
      [incidentId, requestKey, runbookId],
    );
    return Number(rows[0]?.id);
  }

  /** A step row, and its `step.executed` event at `executedAt` unless it never ran. */
  async function step(spec: {
    incidentId: number;
    executionId: number;
    position: number;
    stepId: string;
    action: string;
    status: string;
    executedAt?: string;
    eventType?: string;
  }): Promise<number> {
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO remediation_steps (execution_id, incident_id, position, step_id, action, tier, mode, status)
       VALUES ($1, $2, $3, $4, $5, 'safe', 'autonomous', $6) RETURNING id`,
      [spec.executionId, spec.incidentId, spec.position, spec.stepId, spec.action, spec.status],
    );
    if (spec.executedAt) {
      await event(spec.incidentId, spec.executedAt, 'ai-sre', spec.eventType ?? 'step.executed', {
        executionId: spec.executionId,
        step: spec.stepId,
        action: spec.action,
        ok: true,
      });
    }
    return Number(rows[0]?.id);
  }

  async function verdict(incidentId: number, stepRowId: number, userId: string, value: 'right' | 'wrong') {
    await db.query(
      'INSERT INTO action_feedback (incident_id, step_row_id, user_id, verdict) VALUES ($1, $2, $3, $4)',
      [incidentId, stepRowId, userId, value],
    );
  }

  /**
   * Eight incidents from 03-01 to 03-03 (A–H) and two just outside the period (X before, Y at its exclusive end).
   * Services: checkout (A, B, E, F), payments (C, D, G, H). Runbooks: db-pool (A, B, F), cache-warm (C, E, G),
   * none (D, H).
   */
  async function seed(): Promise<void> {
    // A: the bot fixes it (verified step), nobody involved. detect 60 s, repair 600 s.
    const a = await incident({
      service: 'checkout',
      opened: '03-01T10:00:00',
      signal: '03-01T09:59:00',
      resolved: '03-01T10:10:00',
    });
    const aRun = await execution(a, 'db-pool');
    await event(a, '03-01T10:00:05', 'ai-sre', 'runbook.started', { runbookId: 'db-pool' });
    const aStep = await step({
      incidentId: a,
      executionId: aRun,
      position: 0,
      stepId: 'kill_idle',
      action: 'terminate_connections',
      status: 'verified',
      executedAt: '03-01T10:02:00',
    });
    // a communication step: not an automated action, so a "wrong" on it is not a false action either
    const aNotify = await step({
      incidentId: a,
      executionId: aRun,
      position: 1,
      stepId: 'tell',
      action: 'notify',
      status: 'succeeded',
      executedAt: '03-01T10:02:30',
    });
    // rating the action while the incident is open is commentary, not an intervention
    await event(a, '03-01T10:05:00', 'U0AAA0001', 'feedback.action', { stepRowId: aStep, verdict: 'right' });
    await event(a, '03-01T10:09:00', 'ai-sre', 'step.verified', { step: 'kill_idle' });
    await event(a, '03-01T10:10:00', 'ai-sre', 'incident.resolved', { reason: 'remediation verified' });
    await verdict(a, aStep, 'U0AAA0001', 'right');
    await verdict(a, aNotify, 'U0AAA0002', 'wrong');

    // B: escalated, paged, acknowledged after 150 s, resolved by a person the next day. detect 120 s, repair 3600 s.
    // Its one action is marked wrong by one person and right by another: it counts wrong.
    const b = await incident({
      service: 'checkout',
      opened: '03-01T23:30:00',
      signal: '03-01T23:28:00',
      resolved: '03-02T00:30:00',
    });
    const bRun = await execution(b, 'db-pool');
    const bStep = await step({
      incidentId: b,
      executionId: bRun,
      position: 0,
      stepId: 'restart',
      action: 'restart_service',
      status: 'verification_failed',
      executedAt: '03-01T23:33:00',
    });
    await event(b, '03-01T23:35:00', 'ai-sre', 'incident.escalated', { reason: 'fix failed' });
    await event(b, '03-01T23:35:00', 'ai-sre', 'page.sent', { level: 1 });
    await event(b, '03-01T23:37:30', 'U0AAA0002', 'page.acknowledged', { by: 'U0AAA0002' });
    await event(b, '03-02T00:30:00', 'U0AAA0002', 'incident.resolved', { reason: 'fixed by hand' });
    await verdict(b, bStep, 'U0AAA0001', 'wrong');
    await verdict(b, bStep, 'U0AAA0003', 'right');

    // C: a person approves a guarded step; the bot resolves. Not auto. detect 30 s, repair 1200 s. The executed
    // step is marked wrong; a rejected step (never executed) marked wrong does not count.
    const c = await incident({
      service: 'payments',
      opened: '03-02T09:00:00',
      signal: '03-02T08:59:30',
      resolved: '03-02T09:20:00',
    });
    const cRun = await execution(c, 'cache-warm');
    await event(c, '03-02T09:02:00', 'U0AAA0003', 'step.approved', { step: 'flush' });
    const cStep = await step({
      incidentId: c,
      executionId: cRun,
      position: 0,
      stepId: 'flush',
      action: 'flush_cache',
      status: 'verified',
      executedAt: '03-02T09:03:00',
    });
    const cRejected = await step({
      incidentId: c,
      executionId: cRun,
      position: 1,
      stepId: 'rollback',
      action: 'rollback',
      status: 'rejected',
    });
    await event(c, '03-02T09:20:00', 'ai-sre', 'incident.resolved', { reason: 'remediation verified' });
    await verdict(c, cStep, 'U0AAA0003', 'wrong');
    await verdict(c, cRejected, 'U0AAA0001', 'wrong');

    // D: no runbook; the alert resolves by itself. Auto. detect 0 s, repair 300 s.
    const d = await incident({
      service: 'payments',
      opened: '03-02T12:00:00',
      signal: '03-02T12:00:00',
      resolved: '03-02T12:05:00',
    });
    await event(d, '03-02T12:05:00', 'alertmanager', 'alert.resolved', { name: 'HighLatency' });
    await event(d, '03-02T12:05:00', 'alertmanager', 'incident.resolved', { reason: 'all alerts resolved' });

    // E: still escalated; paged twice, acknowledged 600 s after the first page. detect 300 s. A dry run does not
    // count as an action. A later manual run of db-pool does not change its runbook (the first one wins).
    const e = await incident({
      service: 'checkout',
      opened: '03-02T18:00:00',
      signal: '03-02T17:55:00',
      status: 'escalated',
    });
    const eRun = await execution(e, 'cache-warm');
    await step({
      incidentId: e,
      executionId: eRun,
      position: 0,
      stepId: 'scale',
      action: 'scale',
      status: 'succeeded',
      executedAt: '03-02T18:05:00',
    });
    await step({
      incidentId: e,
      executionId: eRun,
      position: 1,
      stepId: 'flush',
      action: 'flush_cache',
      status: 'dry_run',
      executedAt: '03-02T18:06:00',
      eventType: 'step.dry_run',
    });
    await event(e, '03-02T18:10:00', 'ai-sre', 'incident.escalated', { reason: 'not verified' });
    await event(e, '03-02T18:10:00', 'ai-sre', 'page.sent', { level: 1 });
    await event(e, '03-02T18:15:00', 'ai-sre', 'page.sent', { level: 2 });
    await event(e, '03-02T18:20:00', 'U0AAA0002', 'page.acknowledged', { by: 'U0AAA0002' });
    await execution(e, 'db-pool', 'manual:1');

    // F: escalated and paged, nobody acknowledged, the alert resolved itself: auto (no person was needed). A
    // resolution note afterwards does not change that. detect 600 s, repair 3600 s.
    const f = await incident({
      service: 'checkout',
      opened: '03-03T08:00:00',
      signal: '03-03T07:50:00',
      resolved: '03-03T09:00:00',
    });
    await execution(f, 'db-pool');
    await event(f, '03-03T08:02:00', 'ai-sre', 'incident.escalated', { reason: 'no fix' });
    await event(f, '03-03T08:02:00', 'ai-sre', 'page.sent', { level: 1 });
    await event(f, '03-03T09:00:00', 'alertmanager', 'incident.resolved', { reason: 'all alerts resolved' });
    await event(f, '03-03T09:30:00', 'U0AAA0001', 'resolution.noted', { cause: 'disk', fix: 'none' });

    // G: opened by hand (/incident trigger), fixed by the bot: auto. detect 60 s, repair 1800 s.
    const g = await incident({
      service: 'payments',
      opened: '03-03T11:00:00',
      signal: '03-03T10:59:00',
      resolved: '03-03T11:30:00',
      openedBy: 'U0AAA0005',
    });
    const gRun = await execution(g, 'cache-warm');
    const gStep = await step({
      incidentId: g,
      executionId: gRun,
      position: 0,
      stepId: 'breaker',
      action: 'http_request',
      status: 'verified',
      executedAt: '03-03T11:05:00',
    });
    await event(g, '03-03T11:30:00', 'ai-sre', 'incident.resolved', { reason: 'remediation verified' });
    await verdict(g, gStep, 'U0AAA0004', 'right');

    // H: open, nothing done. detect 15 s.
    await incident({ service: 'payments', opened: '03-03T20:00:00', signal: '03-03T19:59:45' });

    // X and Y are outside [from, to): everything about them must stay out of the figures.
    for (const [service, opened] of [
      ['checkout', '02-28T23:59:59'],
      ['payments', '03-04T00:00:00'],
    ] as const) {
      const out = await incident({
        service,
        opened,
        signal: opened,
        resolved: opened.replace(/T.*/, 'T23:59:59'),
      });
      const run = await execution(out, 'db-pool');
      const s = await step({
        incidentId: out,
        executionId: run,
        position: 0,
        stepId: 'x',
        action: 'scale',
        status: 'verified',
        executedAt: opened,
      });
      await event(out, opened, 'ai-sre', 'incident.escalated', {});
      await event(out, opened, 'ai-sre', 'page.sent', {});
      await verdict(out, s, 'U0AAA0001', 'wrong');
    }
  }

  const CHECKOUT = figures({
    incidents: 4,
    resolved: 3,
    mttd: (60 + 120 + 300 + 600) / 4,
    mtta: (150 + 600) / 2,
    mttr: (600 + 3600 + 3600) / 3,
    mttrMedian: 3600,
    autoResolveRate: 2 / 3,
    escalationRate: 3 / 4,
    actions: 3,
    wrongActions: 1,
    falseActionRate: 1 / 3,
    paged: 3,
    acknowledged: 2,
  });
  const PAYMENTS = figures({
    incidents: 4,
    resolved: 3,
    mttd: (30 + 0 + 60 + 15) / 4,
    mttr: (1200 + 300 + 1800) / 3,
    mttrMedian: 1200,
    autoResolveRate: 2 / 3,
    escalationRate: 0,
    actions: 2,
    wrongActions: 1,
    falseActionRate: 1 / 2,
  });
  const CACHE_WARM = figures({
    incidents: 3,
    resolved: 2,
    mttd: (30 + 300 + 60) / 3,
    mtta: 600,
    mttr: (1200 + 1800) / 2,
    mttrMedian: 1500,
    autoResolveRate: 1 / 2,
    escalationRate: 1 / 3,
    actions: 3,
    wrongActions: 1,
    falseActionRate: 1 / 3,
    paged: 1,
    acknowledged: 1,
  });
  const NONE = figures({
    incidents: 2,
    resolved: 1,
    mttd: (0 + 15) / 2,
    mttr: 300,
    mttrMedian: 300,
    autoResolveRate: 1,
    escalationRate: 0,
  });

  test('overall, per service and per runbook figures match the hand-worked answers', async () => {
    const report = await computeSlis(db, { from: FROM, to: TO });
    assert.equal(report.service, null);
    assert.deepEqual(
      report.overall,
      figures({
        incidents: 8,
        resolved: 6,
        mttd: 1185 / 8,
        mtta: 375,
        mttr: 11100 / 6,
        mttrMedian: 1500,
        autoResolveRate: 4 / 6,
        escalationRate: 3 / 8,
        actions: 5,
        wrongActions: 2,
        falseActionRate: 2 / 5,
        paged: 3,
        acknowledged: 2,
      }),
    );
    assert.deepEqual(report.byService, { checkout: CHECKOUT, payments: PAYMENTS });
    assert.deepEqual(report.byRunbook, {
      'cache-warm': CACHE_WARM,
      'db-pool': figures({
        incidents: 3,
        resolved: 3,
        mttd: (60 + 120 + 600) / 3,
        mtta: 150,
        mttr: (600 + 3600 + 3600) / 3,
        mttrMedian: 3600,
        autoResolveRate: 2 / 3,
        escalationRate: 2 / 3,
        actions: 2,
        wrongActions: 1,
        falseActionRate: 1 / 2,
        paged: 2,
        acknowledged: 1,
      }),
      none: NONE,
    });
  });

  test('the trend has one point per UTC day: opened that day, MTTR and auto rate of those resolved that day', async () => {
    const report = await computeSlis(db, { from: FROM, to: TO });
    assert.deepEqual(report.trend, [
      { day: '2026-03-01', incidents: 2, mttr: 600, autoResolveRate: 1 },
      // B (opened on the 1st) resolved just after midnight
      { day: '2026-03-02', incidents: 3, mttr: (3600 + 1200 + 300) / 3, autoResolveRate: 1 / 3 },
      { day: '2026-03-03', incidents: 3, mttr: (3600 + 1800) / 2, autoResolveRate: 1 },
    ]);
  });

  test('a service filter scopes every figure and the trend to that service', async () => {
    const report = await computeSlis(db, { from: FROM, to: TO, service: 'payments' });
    assert.equal(report.service, 'payments');
    assert.deepEqual(report.overall, PAYMENTS);
    assert.deepEqual(report.byService, { payments: PAYMENTS });
    assert.deepEqual(report.byRunbook, {
      'cache-warm': figures({
        incidents: 2,
        resolved: 2,
        mttd: (30 + 60) / 2,
        mttr: 1500,
        mttrMedian: 1500,
        autoResolveRate: 1 / 2,
        escalationRate: 0,
        actions: 2,
        wrongActions: 1,
        falseActionRate: 1 / 2,
      }),
      none: NONE,
    });
    assert.deepEqual(
      report.trend.map((d) => [d.day, d.incidents, d.mttr]),
      [
        ['2026-03-01', 0, null],
        ['2026-03-02', 2, 750],
        ['2026-03-03', 2, 1800],
      ],
    );
  });

  test('a period without incidents has counts of zero and no measures; bad periods are refused', async () => {
    const report = await computeSlis(db, {
      from: new Date('2026-01-10T12:00:00Z'),
      to: new Date('2026-01-11T12:00:00Z'),
    });
    assert.deepEqual(report.overall, figures({ incidents: 0 }));
    assert.deepEqual(report.byService, {});
    assert.deepEqual(report.byRunbook, {});
    assert.deepEqual(report.trend, [
      { day: '2026-01-10', incidents: 0, mttr: null, autoResolveRate: null },
      { day: '2026-01-11', incidents: 0, mttr: null, autoResolveRate: null },
    ]);
    await assert.rejects(computeSlis(db, { from: TO, to: FROM }), RangeError);
    await assert.rejects(
      computeSlis(db, { from: new Date('2024-01-01T00:00:00Z'), to: new Date('2026-01-01T00:00:00Z') }),
      RangeError,
    );
  });

  test('metric lines: one gauge family per figure, overall and per service and runbook, nulls left out', async () => {
    const week = await computeSlis(db, { from: FROM, to: TO });
    const payments = await computeSlis(db, { from: FROM, to: TO, service: 'payments' });
    const text = sliMetricLines([
      { window: '3d', report: week },
      { window: '3d-payments', report: payments },
    ]);
    const lines = text.trimEnd().split('\n');
    assert.ok(text.endsWith('\n'));
    assert.ok(lines.includes('# TYPE ai_sre_sli_mttr_seconds gauge'));
    assert.equal(lines.filter((l) => l === '# TYPE ai_sre_sli_mttr_seconds gauge').length, 1);
    const samples = (name: string) => lines.filter((l) => l.startsWith(`${name}{`));
    assert.deepEqual(samples('ai_sre_sli_mttr_seconds'), [
      'ai_sre_sli_mttr_seconds{window="3d"} 1850',
      'ai_sre_sli_mttr_seconds{window="3d",service="checkout"} 2600',
      'ai_sre_sli_mttr_seconds{window="3d",service="payments"} 1100',
      'ai_sre_sli_mttr_seconds{window="3d",runbook="cache-warm"} 1500',
      'ai_sre_sli_mttr_seconds{window="3d",runbook="db-pool"} 2600',
      'ai_sre_sli_mttr_seconds{window="3d",runbook="none"} 300',
      'ai_sre_sli_mttr_seconds{window="3d-payments",service="payments"} 1100',
    ]);
    // payments was never paged: no MTTA sample rather than NaN
    assert.deepEqual(samples('ai_sre_sli_mtta_seconds'), [
      'ai_sre_sli_mtta_seconds{window="3d"} 375',
      'ai_sre_sli_mtta_seconds{window="3d",service="checkout"} 375',
      'ai_sre_sli_mtta_seconds{window="3d",runbook="cache-warm"} 600',
      'ai_sre_sli_mtta_seconds{window="3d",runbook="db-pool"} 150',
    ]);
    assert.ok(lines.includes('ai_sre_sli_false_action_ratio{window="3d"} 0.4'));
    assert.ok(lines.includes('ai_sre_sli_incidents{window="3d",runbook="none"} 2'));
    assert.ok(!lines.some((l) => l.startsWith('ai_sre_sli_false_action_ratio{window="3d",runbook="none"}')));
    // every line is a comment or `name{labels} number`
    for (const line of lines) {
      assert.match(line, /^(# (HELP|TYPE) ai_sre_sli_\w+ .+|ai_sre_sli_\w+\{[^}]*\} -?[\d.e+-]+)$/);
    }
  });

  test('the stats message shows the table with human durations and stays within Slack limits', async () => {
    const report = await computeSlis(db, { from: FROM, to: TO });
    const msg = buildStatsMessage(report);
    assert.deepEqual(fitMessage(msg), msg, 'already fitted');
    const json = JSON.stringify(msg.blocks);
    assert.ok(json.includes('Incident SLIs — last 3 days'));
    const table = (msg.blocks[1] as { text: { text: string } }).text.text;
    const rows = table.split('\n');
    assert.equal(rows[0], '```');
    assert.equal(rows[1], '                      inc    MTTD    MTTA    MTTR  auto   esc false');
    assert.equal(rows[2], 'overall                 8  2m 28s  6m 15s 30m 50s   67%   38%   40%');
    assert.deepEqual(rows.slice(3, -1), [
      'by service',
      ' checkout               4  4m 30s  6m 15s 43m 20s   67%   75%   33%',
      ' payments               4     26s       – 18m 20s   67%    0%   50%',
      'by runbook',
      ' cache-warm             3  2m 10s     10m     25m   50%   33%   33%',
      ' db-pool                3  4m 20s  2m 30s 43m 20s   67%   67%   50%',
      ' none                   2      8s       –      5m  100%    0%     –',
    ]);
    assert.equal(rows.at(-1), '```');
    assert.match(msg.text, /8 incidents, MTTR 30m 50s, auto-resolved 67%, escalated 38%/);
    assert.ok(
      json.includes(
        '6 resolved · median MTTR 25m · 3 paged, 2 acknowledged · 5 automated actions, 2 marked wrong',
      ),
    );
  });
});

describe('stats message from a synthetic report', () => {
  const base = (f: Partial<SliFigures>): SliFigures => ({
    incidents: 1,
    resolved: 1,
    mttd: 5,
    mtta: null,
    mttr: 65,
    mttrMedian: 65,
    autoResolveRate: 1,
    escalationRate: 0,
    actions: 0,
    wrongActions: 0,
    falseActionRate: null,
    paged: 0,
    acknowledged: 0,
    ...f,
  });
  const busy: SliReport = {
    from: new Date('2026-03-01T00:00:00Z'),
    to: new Date('2026-03-31T00:00:00Z'),
    service: null,
    overall: base({ incidents: 30 }),
    byService: Object.fromEntries(
      Array.from({ length: 30 }, (_, i) => [
        i === 0 ? '<!channel> & `x` <@U123>' : `svc-${String(i).padStart(2, '0')}`,
        base({ incidents: 100 - i }),
      ]),
    ),
    byRunbook: { none: base({ incidents: 30 }) },
    trend: [],
  };

  test('names are escaped and cleaned, rows capped with a count of the rest', () => {
    const msg = buildStatsMessage(busy);
    const json = JSON.stringify(msg.blocks);
    assert.ok(!json.includes('<!channel>'), 'mention escaped');
    assert.ok(!json.includes('<@U123>'), 'user mention escaped');
    assert.ok(json.includes('&lt;!channel&gt; &amp; '));
    const table = (msg.blocks[1] as { text: { text: string } }).text.text;
    assert.equal((table.match(/```/g) ?? []).length, 2, 'a backtick in a name cannot end the code block');
    assert.ok(table.includes(` + ${30 - MAX_SERVICE_ROWS} more services`));
    assert.ok(table.includes(' svc-07 '));
    assert.ok(!table.includes(' svc-08 '), 'the ninth busiest is cut');
    assert.ok(msg.blocks.length <= SLACK_LIMITS.blocksPerMessage);
    assert.ok(msg.blocks.reduce((n, b) => n + measureText(b), 0) <= MAX_TOTAL_BLOCK_TEXT);
    assert.ok(json.includes('last 30 days'));
  });

  test('an empty period says so', () => {
    const msg = buildStatsMessage({
      ...busy,
      overall: base({
        incidents: 0,
        resolved: 0,
        mttd: null,
        mttr: null,
        mttrMedian: null,
        autoResolveRate: null,
      }),
      byService: {},
      byRunbook: {},
      service: 'checkout',
    });
    assert.equal(msg.text, 'No incidents opened in the last 30 days for checkout.');
    assert.ok(!JSON.stringify(msg.blocks).includes('```'));
  });

  test('durations, percentages and periods read like people write them', () => {
    assert.deepEqual(
      [null, 0, 0.4, 45, 250, 240, 3720, 3600, 86_400 + 3 * 3600, Number.NaN].map(formatSliDuration),
      ['–', '0s', '0s', '45s', '4m 10s', '4m', '1h 2m', '1h', '1d 3h', '–'],
    );
    assert.deepEqual([null, 0, 0.375, 2 / 3, 1].map(formatPercent), ['–', '0%', '38%', '67%', '100%']);
    assert.equal(describePeriod(new Date('2026-03-01T00:00Z'), new Date('2026-03-08T00:00Z')), 'last 7 days');
    assert.equal(
      describePeriod(new Date('2026-03-01T00:00Z'), new Date('2026-03-02T00:00Z')),
      'last 24 hours',
    );
    assert.equal(
      describePeriod(new Date('2026-03-01T00:00Z'), new Date('2026-03-01T06:30Z')),
      '2026-03-01 00:00 to 2026-03-01 06:30 UTC',
    );
  });

  test('the metric label values are escaped', () => {
    const text = sliMetricLines([
      { window: '30d', report: { ...busy, byService: { 'we"ird\\\nname': base({}) } } },
    ]);
    assert.ok(text.includes('ai_sre_sli_incidents{window="30d",service="we\\"ird\\\\\\nname"} 1\n'));
  });
});

/** Decodes the PNGs encodePng writes (8-bit RGBA, filter 0, one IDAT) into pixels. */
function decodePng(png: Buffer): { width: number; height: number; rgba: Uint8Array } {
  assert.deepEqual(
    [...png.subarray(0, 8)],
    [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
    'PNG signature',
  );
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  const idatLength = png.readUInt32BE(33);
  assert.equal(png.toString('latin1', 37, 41), 'IDAT');
  const scanlines = inflateSync(png.subarray(41, 41 + idatLength));
  const stride = width * 4;
  const rgba = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    rgba.set(scanlines.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)), y * stride);
  }
  return { width, height, rgba };
}

function countPixels(image: { rgba: Uint8Array }, colour: readonly number[]): number {
  let n = 0;
  for (let i = 0; i < image.rgba.length; i += 4) {
    if (image.rgba[i] === colour[0] && image.rgba[i + 1] === colour[1] && image.rgba[i + 2] === colour[2])
      n++;
  }
  return n;
}

describe('trend chart', () => {
  const days = [
    { day: '2026-03-01', incidents: 2, mttrMinutes: 10 },
    { day: '2026-03-02', incidents: 3, mttrMinutes: 28.3 },
    { day: '2026-03-03', incidents: 3, mttrMinutes: 45 },
  ];

  test('renders a PNG with bars for incidents and a line for MTTR', () => {
    const image = decodePng(renderTrendChart({ title: 'SLIs, last 3 days', days }));
    assert.equal(image.width, TREND_CHART_SIZE.width);
    assert.equal(image.height, TREND_CHART_SIZE.height);
    const bars = countPixels(image, TREND_COLOURS.bars);
    const line = countPixels(image, TREND_COLOURS.line);
    assert.ok(bars > 10_000, `bars drawn (${bars} px)`);
    assert.ok(line > 200, `MTTR line drawn (${line} px)`);

    const fewer = decodePng(
      renderTrendChart({
        title: 'SLIs',
        days: days.map((d, i) => ({ ...d, incidents: i === 0 ? 0 : d.incidents })),
      }),
    );
    assert.ok(countPixels(fewer, TREND_COLOURS.bars) < bars, 'a day with no incidents has no bar');
    const noMttr = decodePng(
      renderTrendChart({ title: 'SLIs', days: days.map((d) => ({ ...d, mttrMinutes: null })) }),
    );
    // only the legend swatch is left of the line
    assert.ok(countPixels(noMttr, TREND_COLOURS.line) < 100);
  });

  test('tolerates no days, one day and odd values', () => {
    for (const input of [
      [],
      [{ day: '2026-03-01', incidents: 1, mttrMinutes: 12 }],
      [{ day: '2026-03-01', incidents: Number.NaN, mttrMinutes: Number.POSITIVE_INFINITY }],
      Array.from({ length: 366 }, (_, i) => ({
        day: `2026-x-${i}`,
        incidents: i % 7,
        mttrMinutes: i % 3 ? i : null,
      })),
    ]) {
      const image = decodePng(renderTrendChart({ title: 'SLIs', days: input }));
      assert.equal(image.width, TREND_CHART_SIZE.width);
    }
    const single = decodePng(
      renderTrendChart({ title: 'one', days: [{ day: '2026-03-01', incidents: 1, mttrMinutes: 12 }] }),
    );
    assert.ok(countPixels(single, TREND_COLOURS.bars) > 1000, 'the one bar is drawn');
    assert.ok(countPixels(single, TREND_COLOURS.line) > 20, 'the one MTTR is a dot');
  });
});
