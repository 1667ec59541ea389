import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  NAB_NO_DETECTION_THRESHOLD,
  NAB_PROFILE_NAMES,
  NAB_PROFILES,
  type NabSeries,
  probationLength,
  scaledSigmoid,
  scoreNab,
} from '../src/detection/nab-score.js';

const T0 = Date.UTC(2024, 0, 1);
/** five minutes, NAB's usual spacing */
const STEP_MS = 300_000;
const ROWS = 1000; // probation: the first 150 rows
/** two windows of 50 rows each: rows 400–449 and 700–749 */
const WINDOWS: [number, number][] = [
  [400, 449],
  [700, 749],
];

/** A series of `rows` rows scoring 0 except `fire` (row index → score), with windows given as row indices. */
function buildSeries(
  fire: Record<number, number>,
  options: { name?: string; rows?: number; windows?: [number, number][] } = {},
): NabSeries {
  const rows = options.rows ?? ROWS;
  const timestamps = Array.from({ length: rows }, (_, i) => T0 + i * STEP_MS);
  const scores = timestamps.map((_, i) => fire[i] ?? 0);
  const windows = (options.windows ?? WINDOWS).map(([s, e]): [number, number] => [
    T0 + s * STEP_MS,
    T0 + e * STEP_MS,
  ]);
  return { name: options.name ?? 'test/series.csv', timestamps, scores, windows };
}

const MAX_TP = scaledSigmoid(-1);

/** equal up to float summation order */
function assertClose(actual: number, expected: number, message?: string): void {
  assert.ok(Math.abs(actual - expected) < 1e-12, `${message ?? ''} expected ${expected}, got ${actual}`);
}

describe('NAB scaled sigmoid', () => {
  test('matches the values NAB documents', () => {
    assert.ok(Math.abs(scaledSigmoid(-1) - 0.98661) < 1e-5);
    assert.ok(Math.abs(scaledSigmoid(-0.5) - 0.84828) < 1e-5);
    assert.equal(scaledSigmoid(0), 0);
    assert.ok(Math.abs(scaledSigmoid(1) + 0.98661) < 1e-5);
    assert.equal(scaledSigmoid(3.01), -1);
  });

  test('probation is 15 % of the rows, floored, and never more than 750 rows', () => {
    assert.equal(probationLength(1000), 150);
    assert.equal(probationLength(4032), 604);
    assert.equal(probationLength(5000), 750);
    assert.equal(probationLength(22_000), 750);
  });
});

describe('scoreNab', () => {
  test('the null detector (0.5 everywhere) and a detector that never fires score 0 in every profile', () => {
    const constant = buildSeries(Object.fromEntries(Array.from({ length: ROWS }, (_, i) => [i, 0.5])));
    const silent = buildSeries({});
    for (const series of [constant, silent]) {
      const result = scoreNab([series]);
      for (const profile of NAB_PROFILE_NAMES) {
        assert.equal(result[profile].normalizedScore, 0, profile);
        assert.equal(result[profile].rawScore, -2 * NAB_PROFILES[profile].fnWeight, profile);
        assert.equal(result[profile].tp, 0);
        assert.equal(result[profile].fn, 2);
      }
    }
  });

  test('a detector firing exactly at each window start scores 100 in every profile', () => {
    const result = scoreNab([
      buildSeries({ 400: 1, 700: 1 }, { name: 'a.csv' }),
      buildSeries({ 250: 0.8 }, { name: 'b.csv', windows: [[250, 299]] }),
    ]);
    for (const profile of NAB_PROFILE_NAMES) {
      const score = result[profile];
      assert.equal(score.normalizedScore, 100, profile);
      assert.equal(score.rawScore, 3, profile);
      assert.equal(score.perfectScore, 3);
      assert.equal(score.threshold, 0.8);
      assert.deepEqual([score.tp, score.fp, score.fn], [3, 0, 0]);
      assert.deepEqual(
        score.files.map((f) => [f.name, f.rawScore, f.tp, f.fp, f.fn]),
        [
          ['a.csv', 2, 2, 0, 0],
          ['b.csv', 1, 1, 0, 0],
        ],
      );
    }
  });

  test('a false positive before the first window or long after one costs the full fpWeight', () => {
    for (const fpRow of [200, 449 + 200]) {
      const result = scoreNab([buildSeries({ 400: 1, 700: 1, [fpRow]: 1 })]);
      for (const profile of NAB_PROFILE_NAMES) {
        const { fpWeight } = NAB_PROFILES[profile];
        assertClose(result[profile].rawScore, 2 - fpWeight, `${profile}, FP at row ${fpRow}:`);
        assert.equal(result[profile].fp, 1);
      }
    }
  });

  test('a false positive just after a window costs a little, scaled by its distance in window widths', () => {
    const result = scoreNab([buildSeries({ 400: 1, 700: 1, 451: 1 })]);
    // two rows past the end of a 50-row window: position 2 / (50 − 1)
    const cost = -0.11 * scaledSigmoid(2 / 49);
    assert.ok(cost > 0 && cost < 0.11 * 0.11);
    assertClose(result.standard.rawScore, 2 - cost);
  });

  test('an early true positive earns more than a late one, and only the first firing in a window counts', () => {
    const early = scoreNab([buildSeries({ 402: 1 }, { windows: [[400, 449]] })]).standard;
    const late = scoreNab([buildSeries({ 445: 1 }, { windows: [[400, 449]] })]).standard;
    const both = scoreNab([buildSeries({ 402: 1, 445: 1 }, { windows: [[400, 449]] })]).standard;
    // row i of window s..e (width w) earns S(−(e − i + 1) / w) / S(−1)
    assertClose(early.rawScore, scaledSigmoid(-48 / 50) / MAX_TP);
    assertClose(late.rawScore, scaledSigmoid(-5 / 50) / MAX_TP);
    assert.ok(early.rawScore > 0.99 && late.rawScore < 0.5 && late.rawScore > 0);
    assert.equal(both.rawScore, early.rawScore);
    assert.deepEqual([both.tp, both.fp, both.fn], [1, 0, 0]);
  });

  test('firings in the probationary period never count, inside or outside a window', () => {
    const probation = probationLength(ROWS);
    const result = scoreNab([
      buildSeries({ 0: 1, 10: 1, [probation - 1]: 1, 400: 1, 700: 1 }),
      buildSeries({ 100: 1 }, { name: 'early-window.csv', windows: [[100, 159]] }),
    ]);
    // the early window's firing is in probation: that window is missed (its rows 150–159 still count)
    assert.equal(result.standard.rawScore, 2 - 1);
    assert.deepEqual([result.standard.tp, result.standard.fp, result.standard.fn], [2, 0, 1]);
    assert.equal(result.standard.files[1]?.rawScore, -1);

    const firstScored = scoreNab([buildSeries({ [probation]: 1, 400: 1, 700: 1 })]);
    assertClose(firstScored.standard.rawScore, 2 - 0.11);
  });

  test('each profile gets the threshold that maximises its own total over the corpus', () => {
    // 20 FPs far from any window score 0.6, as does a TP 20 rows into window 1 (rows 400–449); window 2 fires at
    // its start with 1.0. Firing at ≥ 0.6 wins window 1 (≈ 0.917 + fnWeight) for 20 × fpWeight.
    const fire: Record<number, number> = { 420: 0.6, 700: 1 };
    for (let i = 160; i < 180; i++) fire[i] = 0.6;
    const result = scoreNab([buildSeries(fire)]);
    const tp = scaledSigmoid(-30 / 50) / MAX_TP;

    // standard: at 0.6, 1 + tp − 20 × 0.11 = −0.28 < 0 at 1.0 (window 2 found, window 1 missed)
    assert.equal(result.standard.threshold, 1);
    assert.equal(result.standard.rawScore, 0);
    // reward low FP: at 0.6, 1 + tp − 20 × 0.22 = −2.48 < 0
    assert.equal(result.reward_low_FP_rate.threshold, 1);
    assert.equal(result.reward_low_FP_rate.rawScore, 0);
    // reward low FN: at 1.0, 1 − 2 = −1; at 0.6, 1 + tp − 20 × 0.11 = −0.28 — better
    assert.equal(result.reward_low_FN_rate.threshold, 0.6);
    assertClose(result.reward_low_FN_rate.rawScore, 1 + tp - 20 * 0.11);
    assert.deepEqual(
      [result.reward_low_FN_rate.tp, result.reward_low_FN_rate.fp, result.reward_low_FN_rate.fn],
      [2, 20, 0],
    );
    // and firing everywhere (threshold 0) would cost hundreds of FPs
    assert.ok(result.reward_low_FN_rate.rawScore > -1);
  });

  test('when firing anywhere does harm, the best threshold is "nothing fires"', () => {
    const result = scoreNab([buildSeries({ 200: 1, 300: 0.9 })]);
    assert.equal(result.standard.threshold, NAB_NO_DETECTION_THRESHOLD);
    assert.equal(result.standard.normalizedScore, 0);
    assert.equal(result.standard.fp, 0);
  });

  test('refuses malformed input, naming the series', () => {
    const offGrid = buildSeries({});
    offGrid.windows = [[T0 + 400 * STEP_MS + 1, T0 + 449 * STEP_MS]];
    assert.throws(
      () => scoreNab([offGrid]),
      /test\/series\.csv: window \[.*\] does not start and end on row timestamps/,
    );
    assert.throws(
      () => scoreNab([buildSeries({ 2: 1.5 })]),
      /test\/series\.csv: row 3 has score 1\.5, outside \[0, 1\]/,
    );
    assert.throws(() => scoreNab([buildSeries({}, { windows: [] })]), /no labelled window/);
    assert.throws(
      () =>
        scoreNab([
          buildSeries(
            {},
            {
              windows: [
                [400, 449],
                [440, 460],
              ],
            },
          ),
        ]),
      /overlaps/,
    );
  });
});
