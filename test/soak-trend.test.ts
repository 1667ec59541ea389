import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { linearRegression } from 'simple-statistics';
import { robustTrend } from '../bench/lib/trend.js';

/** a 30-minute soak's samples, one every 10 s; hours */
const xs = Array.from({ length: 180 }, (_, i) => (i * 10) / 3600);
/** deterministic noise in [-1, 1) */
const noise = (i: number) => ((Math.sin(i * 12.9898) * 43758.5453) % 1) * 2 - 1;

describe('soak trend statistics (Theil–Sen slope, Mann–Kendall z)', () => {
  test('memory that keeps growing: its slope, and a significant rise', () => {
    const ys = xs.map((x, i) => 150 + 8 * x + 0.5 * noise(i));
    const { slope, z } = robustTrend(xs, ys);
    assert.ok(Math.abs(slope - 8) < 0.5, `slope ${slope}`);
    assert.ok(z > 5, `z ${z}`);
  });

  test('flat memory with noise: a slope near zero and no significant rise', () => {
    const ys = xs.map((_, i) => 150 + 2 * noise(i));
    const { slope, z } = robustTrend(xs, ys);
    assert.ok(Math.abs(slope) < 2, `slope ${slope}`);
    assert.ok(z < 2, `z ${z}`);
  });

  test('a passing burst near the end does not tilt it, where it tilts a least-squares line', () => {
    // flat, but three samples 30 MiB up in the last minute (a wave of charts on their thread)
    const ys = xs.map((_, i) => 150 + 0.3 * noise(i) + (i >= 172 && i < 175 ? 30 : 0));
    const { slope } = robustTrend(xs, ys);
    const ls = linearRegression(xs.map((x, i) => [x, ys[i] as number])).m;
    assert.ok(ls > 5, `least squares ${ls}`);
    assert.ok(Math.abs(slope) < 1, `Theil–Sen ${slope}`);
  });

  test('a step that stays counts', () => {
    // 4 MiB up halfway, for good: 8 MiB/h over the half hour's pairs across the step
    const ys = xs.map((_, i) => 150 + 0.2 * noise(i) + (i >= 90 ? 4 : 0));
    const { slope, z } = robustTrend(xs, ys);
    assert.ok(slope > 5, `slope ${slope}`);
    assert.ok(z > 2, `z ${z}`);
  });

  test('ties: a constant series has slope 0 and z 0; mismatched lengths are refused', () => {
    assert.deepEqual(
      robustTrend(
        xs,
        xs.map(() => 7),
      ),
      { slope: 0, z: 0 },
    );
    assert.throws(() => robustTrend([0, 1], [1]), /2 xs but 1 ys/);
  });
});
