import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  createDetector,
  DetectorSnapshotError,
  restoreDetector,
  restoreDetectorBytes,
} from '../src/detection/create-detector.js';
import { DEFAULT_WARM_UP } from '../src/detection/ensemble-detector.js';

const START = Date.UTC(2024, 0, 1);
const FIVE_MINUTES = 300_000;
const DAY_POINTS = 288;
/** well past warm-up and the daily model's two days of history */
const ANOMALY_AT = 900;
/** the likelihood the assertions treat as "fires" */
const FIRES = 0.9;
/** and as "stays quiet" */
const QUIET = 0.5;

/** Deterministic uniform [0, 1) (mulberry32), so every run sees the same series. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(next: () => number): number {
  return Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next());
}

interface Point {
  t: number;
  v: number;
}

/** level + unit Gaussian noise every 5 minutes, then `shape(i, value)` applied per point */
function buildSeries(
  length: number,
  seed: number,
  shape: (i: number, value: number) => number = (_, v) => v,
): Point[] {
  const next = random(seed);
  return Array.from({ length }, (_, i) => ({ t: START + i * FIVE_MINUTES, v: shape(i, 50 + normal(next)) }));
}

/** a daily cycle 30 → 70 → 30 (peak at noon UTC) with unit noise, every 5 minutes */
function buildDaily(days: number, seed: number): Point[] {
  const next = random(seed);
  return Array.from({ length: days * DAY_POINTS }, (_, i) => ({
    t: START + i * FIVE_MINUTES,
    v: 50 - 20 * Math.cos((2 * Math.PI * (i % DAY_POINTS)) / DAY_POINTS) + normal(next),
  }));
}

function score(points: Point[], detector = createDetector()): number[] {
  return points.map((p) => detector.update(p.t, p.v));
}

function maxOver(scores: number[], from: number, to: number): number {
  let max = 0;
  for (let i = Math.max(0, from); i <= Math.min(scores.length - 1, to); i++)
    max = Math.max(max, scores[i] as number);
  return max;
}

/** the highest score after warm-up outside [from, to] */
function maxOutside(scores: number[], from: number, to: number): number {
  return Math.max(maxOver(scores, DEFAULT_WARM_UP, from - 1), maxOver(scores, to + 1, scores.length - 1));
}

const SEEDS = [1, 2, 3];

describe('streaming detector: synthetic series with known answers', () => {
  test('white noise stays quiet', () => {
    for (const seed of SEEDS) {
      const scores = score(buildSeries(2000, seed));
      assert.ok(maxOver(scores, 0, 1999) < QUIET, `seed ${seed}: ${maxOver(scores, 0, 1999)}`);
    }
  });

  test('a spike fires on the spike and nowhere else', () => {
    for (const seed of SEEDS) {
      const scores = score(buildSeries(1500, seed, (i, v) => (i === ANOMALY_AT ? v + 15 : v)));
      assert.ok((scores[ANOMALY_AT] as number) >= FIRES, `seed ${seed}: spike ${scores[ANOMALY_AT]}`);
      assert.ok(maxOutside(scores, ANOMALY_AT, ANOMALY_AT) < QUIET, `seed ${seed}: elsewhere`);
    }
  });

  test('a level shift fires within a few points, then the new level becomes normal', () => {
    for (const seed of SEEDS) {
      const scores = score(buildSeries(2000, seed, (i, v) => (i >= ANOMALY_AT ? v + 6 : v)));
      assert.ok(maxOver(scores, ANOMALY_AT, ANOMALY_AT + 15) >= FIRES, `seed ${seed}: at the shift`);
      assert.ok(maxOver(scores, DEFAULT_WARM_UP, ANOMALY_AT - 1) < QUIET, `seed ${seed}: before`);
      assert.ok(maxOver(scores, ANOMALY_AT + 300, 1999) < QUIET, `seed ${seed}: long after`);
    }
  });

  test('a slow drift (0.03 σ per point) fires once it has moved a couple of σ', () => {
    for (const seed of SEEDS) {
      const scores = score(
        buildSeries(1500, seed, (i, v) => (i >= ANOMALY_AT ? v + 0.03 * (i - ANOMALY_AT) : v)),
      );
      assert.ok(maxOver(scores, DEFAULT_WARM_UP, ANOMALY_AT - 1) < QUIET, `seed ${seed}: before`);
      assert.ok(maxOver(scores, ANOMALY_AT, ANOMALY_AT + 150) >= FIRES, `seed ${seed}: within 150 points`);
    }
  });

  test('daily season: a value normal at noon fires at midnight, the daily cycle itself does not', () => {
    for (const seed of SEEDS) {
      const points = buildDaily(6, seed);
      const midnight = 5 * DAY_POINTS; // day 6, 00:00 UTC: the trough (30)
      for (let i = midnight; i < midnight + 6; i++) (points[i] as Point).v = 70 + (seed - 2) * 0.5; // the noon level
      const scores = score(points);
      assert.ok(maxOver(scores, midnight, midnight + 5) >= FIRES, `seed ${seed}: off-season`);
      assert.ok(maxOutside(scores, midnight, midnight + 30) < QUIET, `seed ${seed}: the cycle`);
      // the same value at noon on the same day is expected
      const noon = midnight + DAY_POINTS / 2;
      assert.ok(maxOver(scores, noon - 6, noon + 6) < QUIET, `seed ${seed}: noon`);
    }
  });

  test('daily season sampled hourly: the profile is learned from 24 points a day', () => {
    const next = random(7);
    const hour = 3_600_000;
    const points = Array.from({ length: 24 * 20 }, (_, i) => ({
      t: START + i * hour,
      v: 50 - 20 * Math.cos((2 * Math.PI * (i % 24)) / 24) + normal(next),
    }));
    const midnight = 24 * 15;
    (points[midnight] as Point).v = 70;
    const scores = score(points);
    assert.ok((scores[midnight] as number) >= FIRES, `off-season ${scores[midnight]}`);
    assert.ok(maxOutside(scores, midnight, midnight + 2) < QUIET, 'the hourly cycle');
  });

  test('the same values in a new order: regular single spikes and dips, then a spike answered at once by a dip', () => {
    for (const seed of SEEDS) {
      const dipAt = 2401;
      const scores = score(
        buildSeries(3000, seed, (i, v) =>
          i % 40 === 0 ? v + 12 : i % 40 === 20 || i === dipAt ? v - 12 : v,
        ),
      );
      // every value is ordinary for this series; only the order is new
      assert.ok((scores[dipAt] as number) >= 0.15, `seed ${seed}: the dip after a spike ${scores[dipAt]}`);
      assert.ok(
        maxOutside(scores, dipAt, dipAt) < 0.1,
        `seed ${seed}: elsewhere ${maxOutside(scores, dipAt, dipAt)}`,
      );
    }
  });

  test('a flatline after noise fires (a stuck sensor)', () => {
    for (const seed of SEEDS) {
      const scores = score(buildSeries(1200, seed, (i, v) => (i >= ANOMALY_AT ? 50 : v)));
      assert.ok(maxOver(scores, DEFAULT_WARM_UP, ANOMALY_AT - 1) < QUIET, `seed ${seed}: before`);
      assert.ok(maxOver(scores, ANOMALY_AT, ANOMALY_AT + 80) >= FIRES, `seed ${seed}: flatline`);
    }
  });

  test('a constant series stays at the prior (1e-4), and its first step fires', () => {
    const scores = score(buildSeries(800, 1, (i) => (i >= 600 ? 11 : 10)));
    assert.ok(maxOver(scores, 0, 599) <= 1e-4, `before ${maxOver(scores, 0, 599)}`);
    assert.ok((scores[600] as number) >= FIRES, `step ${scores[600]}`);
  });

  test('missing points: random gaps and a 6-hour outage are not anomalies; a spike after them is', () => {
    for (const seed of SEEDS) {
      const drop = random(seed + 100);
      const points = buildSeries(1500, seed).filter(
        (_, i) => !(i > 700 && i < 772) && (i < 100 || drop() >= 0.2),
      );
      const quiet = score(points);
      assert.ok(maxOver(quiet, 0, quiet.length - 1) < QUIET, `seed ${seed}: gaps alone`);

      const spikeAt = points.findIndex((p) => p.t >= START + 1000 * FIVE_MINUTES);
      (points[spikeAt] as Point).v += 15;
      const spiked = score(points);
      assert.ok((spiked[spikeAt] as number) >= FIRES, `seed ${seed}: spike after gaps`);
    }
  });

  test('warm-up: exactly 0 until the detector has seen warmUp points, even for a huge spike', () => {
    // the spike during warm-up is learnt: a later one must be bigger to be news
    const points = buildSeries(400, 1, (i, v) => (i === 50 ? v + 1000 : i === 300 ? v + 10_000 : v));
    const detector = createDetector();
    const scores = points.map((p) => detector.update(p.t, p.v));
    assert.deepEqual(scores.slice(0, DEFAULT_WARM_UP), new Array(DEFAULT_WARM_UP).fill(0));
    assert.equal(detector.count, 400);
    assert.ok((scores[300] as number) >= FIRES, `after warm-up ${scores[300]}`);

    const late = createDetector({ warmUp: 350 });
    const lateScores = points.map((p) => late.update(p.t, p.v));
    assert.equal(maxOver(lateScores, 0, 349), 0);
    assert.throws(() => createDetector({ warmUp: 3 }), /warmUp/);
  });

  test('the likelihood stays in [0, 1]; non-finite input is skipped', () => {
    const detector = createDetector();
    const series = [
      ...buildSeries(600, 4, (i, v) => (i % 97 === 0 ? v * 1e9 : i % 89 === 0 ? -v * 1e6 : v)),
      ...buildDaily(3, 5).map((p) => ({ t: p.t + 600 * FIVE_MINUTES, v: p.v })),
    ];
    for (const p of series) {
      const s = detector.update(p.t, p.v);
      assert.ok(s >= 0 && s <= 1 && !Number.isNaN(s), `${s}`);
    }
    const before = detector.count;
    assert.equal(detector.update(START, Number.NaN), 0);
    assert.equal(detector.update(START, Number.POSITIVE_INFINITY), 0);
    assert.equal(detector.count, before);
  });
});

describe('streaming detector: state', () => {
  test('a restored detector continues exactly as the original, through JSON', () => {
    const points = buildDaily(8, 9).map((p, i) => (i % 500 === 0 ? { ...p, v: p.v + 30 } : p));
    for (const cut of [40, DEFAULT_WARM_UP + 5, 1000, 2000]) {
      const original = createDetector();
      for (const p of points.slice(0, cut)) original.update(p.t, p.v);
      const restored = restoreDetector(JSON.parse(JSON.stringify(original.toJSON())));
      assert.equal(restored.count, original.count);
      for (const p of points.slice(cut)) assert.equal(restored.update(p.t, p.v), original.update(p.t, p.v));
      assert.deepEqual(restored.toJSON(), original.toJSON());
    }
  });

  test('a restored detector continues exactly as the original, through its binary snapshot', () => {
    const points = buildDaily(8, 9).map((p, i) => (i % 500 === 0 ? { ...p, v: p.v + 30 } : p));
    for (const cut of [0, 7, DEFAULT_WARM_UP + 5, 2000]) {
      const original = createDetector({ warmUp: 40 });
      for (const p of points.slice(0, cut)) original.update(p.t, p.v);
      // at an odd offset inside a larger buffer, as a slice of a socket read would be
      const bytes = original.toBytes();
      const framed = Buffer.alloc(bytes.length + 3);
      framed.set(bytes, 3);
      const restored = restoreDetectorBytes(framed.subarray(3));
      assert.equal(restored.count, original.count);
      assert.deepEqual(restored.toJSON(), original.toJSON(), 'the same state as the JSON snapshot sees it');
      for (const p of points.slice(cut)) assert.equal(restored.update(p.t, p.v), original.update(p.t, p.v));
      assert.deepEqual(Buffer.from(restored.toBytes()), Buffer.from(original.toBytes()));
    }
  });

  test('a damaged or foreign binary snapshot is refused with a coded error', () => {
    const detector = createDetector();
    for (const p of buildDaily(2, 3)) detector.update(p.t, p.v);
    const bytes = detector.toBytes();
    const refused = (b: Uint8Array, pattern: RegExp) =>
      assert.throws(
        () => restoreDetectorBytes(b),
        (err: unknown) => err instanceof DetectorSnapshotError && pattern.test(err.message),
      );
    refused(bytes.subarray(0, bytes.length - 1), /bytes, expected/);
    refused(Buffer.from(JSON.stringify(detector.toJSON())), /bytes, expected|not a binary/);
    const otherVersion = Uint8Array.from(bytes);
    otherVersion[2] = 99;
    refused(otherVersion, /version 99/);
    const badMagic = Uint8Array.from(bytes);
    badMagic[0] = 0;
    refused(badMagic, /not a binary/);
    const tooManyMedians = Uint8Array.from(bytes);
    tooManyMedians[3] = 200;
    refused(tooManyMedians, /median/);
  });

  test('the snapshot is compact', () => {
    const detector = createDetector();
    for (const p of buildDaily(15, 3)) detector.update(p.t, p.v);
    const size = JSON.stringify(detector.toJSON()).length;
    assert.ok(size < 5000, `${size} bytes`);
    const binary = detector.toBytes().length;
    assert.ok(binary < 3300, `${binary} bytes binary`);
  });

  test('a snapshot from another layout or a damaged one is refused with a coded error', () => {
    const snapshot = createDetector().toJSON();
    assert.throws(() => restoreDetector({ ...snapshot, version: 99 }), DetectorSnapshotError);
    assert.throws(
      () => restoreDetector({ ...snapshot, tables: 'AAAA' }),
      (err: unknown) => err instanceof DetectorSnapshotError && /tables/.test(err.message),
    );
    assert.throws(
      () => restoreDetector({ version: snapshot.version }),
      (err: unknown) => err instanceof DetectorSnapshotError && err.code === 'detector_snapshot_invalid',
    );
  });
});
