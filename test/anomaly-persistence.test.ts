import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { anomalyAlertOf } from '../src/detection/anomaly-incidents.js';
import { advanceRun, confirmRun, EMPTY_RUN, type RunState } from '../src/detection/persistence.js';

const rule = { k: 3, n: 5 };

function run(flags: number[]): { changes: (string | null)[]; state: RunState } {
  let state = EMPTY_RUN;
  const changes: (string | null)[] = [];
  flags.forEach((f, i) => {
    const step = advanceRun(state, f === 1, 1000 + i, rule);
    state = step.state;
    changes.push(step.change);
  });
  return { changes, state };
}

describe('anomaly persistence: k of the last n points', () => {
  test('a single spike is not confirmed', () => {
    assert.deepEqual(run([0, 1, 0, 0, 0, 0, 0]).changes, [null, null, null, null, null, null, null]);
  });

  test('3 of 5 confirms once, remembering when the run began; 2n quiet points in a row end it', () => {
    const { changes, state } = run([0, 1, 0, 1, 1, 1, 1, ...Array(10).fill(0)]);
    assert.deepEqual(changes, [
      null,
      null,
      null,
      null,
      'confirmed',
      null,
      null,
      ...Array(9).fill(null),
      'ended',
    ]);
    assert.deepEqual(state, EMPTY_RUN);
  });

  test('a run that flickers stays one run: an anomalous point during the quiet spell starts the count again', () => {
    // confirmed, 6 quiet, one anomalous, 9 quiet: still the same run; the 10th quiet point ends it
    const flags = [1, 1, 1, ...Array(6).fill(0), 1, ...Array(10).fill(0)];
    const { changes } = run(flags);
    assert.deepEqual(
      changes.flatMap((c, i) => (c ? [[i, c]] : [])),
      [
        [2, 'confirmed'],
        [19, 'ended'],
      ],
    );
  });

  test('endAfter sets the quiet spell', () => {
    let state = EMPTY_RUN;
    const changes: (string | null)[] = [];
    for (const [i, f] of [1, 1, 1, 0, 0, 0].entries()) {
      const step = advanceRun(state, f === 1, i, { k: 3, n: 5, endAfter: 3 });
      state = step.state;
      changes.push(step.change);
    }
    assert.deepEqual(changes, [null, null, 'confirmed', null, null, 'ended']);
  });

  test('a state stored before quiet was counted still ends its run', () => {
    const old = { bits: 0b111, since: 1, reported: true } as RunState;
    let state = old;
    let ended = -1;
    for (let i = 0; i < 12 && ended < 0; i++) {
      const step = advanceRun(state, false, i, rule);
      state = step.state;
      if (step.change === 'ended') ended = i;
    }
    assert.equal(ended, 9);
  });

  test('the run starts at its first anomalous point', () => {
    let state = EMPTY_RUN;
    for (const [i, f] of [0, 1, 0, 1, 1].entries()) state = advanceRun(state, f === 1, 1000 + i, rule).state;
    assert.equal(state.since, 1001);
    assert.equal(state.reported, true);
  });

  test('agreement confirms at once, and only once', () => {
    const first = confirmRun(advanceRun(EMPTY_RUN, true, 5, rule).state, 5);
    assert.equal(first.change, 'confirmed');
    assert.equal(confirmRun(first.state, 6).change, null);
  });
});

describe('an anomaly as an alert', () => {
  test('carries the evidence and the labels runbook metric triggers read', () => {
    const alert = anomalyAlertOf({
      kind: 'confirmed',
      series: 'http_p99_latency_seconds',
      labels: { service: 'payment-service', route: '/pay' },
      seriesKey: 'http_p99_latency_seconds{route="/pay",service="payment-service"}',
      since: Date.UTC(2026, 10, 26, 3, 0),
      timestamp: Date.UTC(2026, 10, 26, 3, 5),
      value: 2.4,
      likelihood: 0.99991,
      reason: 'persisted',
      agreeing: [],
      expected: { low: 0.1812345, high: 0.42 },
      recent: [
        [Date.UTC(2026, 10, 26, 2, 59), 0.31],
        [Date.UTC(2026, 10, 26, 3, 0), 2.4],
      ],
    });
    assert.equal(alert.service, 'payment-service');
    assert.equal(alert.source, 'anomaly');
    assert.equal(alert.status, 'firing');
    assert.equal(alert.labels.metric, 'http_p99_latency_seconds');
    assert.equal(alert.annotations.value, '2.4');
    assert.equal(alert.annotations.deviating_since, '2026-11-26T03:00:00.000Z');
    assert.equal(alert.startsAt.toISOString(), '2026-11-26T03:00:00.000Z');
    assert.match(alert.summary, /^[▁▂▃▄▅▆▇█]{2} /, 'a sparkline of the series first');
    assert.match(
      alert.summary,
      /anomalous for several points in a row: value 2\.4 \(expected 0\.1812 to 0\.42\), likelihood 0\.9999/,
    );
    assert.equal(alert.annotations.expected_low, '0.1812');
    assert.deepEqual(JSON.parse(alert.annotations.recent_points ?? '[]'), [
      [Date.UTC(2026, 10, 26, 2, 59), 0.31],
      [Date.UTC(2026, 10, 26, 3, 0), 2.4],
    ]);
    assert.match(alert.fingerprint, /^anomaly-[0-9a-f]{16}$/);
  });
});
