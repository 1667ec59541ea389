/**
 * The soak's trend statistics (bench/soak.ts): robust to a few outlying samples, as memory samples have them (a burst
 * of work in flight, a collection in progress), and as sensitive as a least-squares line to memory that keeps growing.
 */
import { median } from 'simple-statistics';

/**
 * Theil–Sen slope (the median of the slopes between every two points) and Mann–Kendall z (S, the count of rising
 * minus falling pairs, over its standard deviation, ties corrected, with the usual continuity correction) of ys against
 * xs; xs ascending. O(n²): fine for the few hundred samples of a soak.
 */
export function robustTrend(xs: readonly number[], ys: readonly number[]): { slope: number; z: number } {
  if (xs.length !== ys.length) throw new Error(`robustTrend: ${xs.length} xs but ${ys.length} ys`);
  const n = xs.length;
  const slopes: number[] = [];
  let s = 0;
  for (let i = 0; i < n; i++) {
    const xi = xs[i] as number;
    const yi = ys[i] as number;
    for (let j = i + 1; j < n; j++) {
      const dy = (ys[j] as number) - yi;
      const dx = (xs[j] as number) - xi;
      s += Math.sign(dy);
      if (dx > 0) slopes.push(dy / dx);
    }
  }
  const ties = new Map<number, number>();
  for (const y of ys) ties.set(y, (ties.get(y) ?? 0) + 1);
  let tieTerm = 0;
  for (const t of ties.values()) tieTerm += t * (t - 1) * (2 * t + 5);
  const variance = (n * (n - 1) * (2 * n + 5) - tieTerm) / 18;
  const z = variance > 0 ? (s - Math.sign(s)) / Math.sqrt(variance) : 0;
  return { slope: slopes.length > 0 ? median(slopes) : 0, z };
}
