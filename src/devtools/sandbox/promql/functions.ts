/**
 * The numeric cores of PromQL's functions and aggregations, kept to Prometheus' own algorithms (promql/functions.go,
 * quantile.go, aggregation.go) so results agree with a real server to the last bit where it matters.
 */
import type { Point } from '../tsdb.js';

/** Neumaier's improved Kahan summation step: returns the new sum and compensation. */
export function kahanSumInc(inc: number, sum: number, c: number): [number, number] {
  const t = sum + inc;
  if (t === Number.POSITIVE_INFINITY || t === Number.NEGATIVE_INFINITY) return [t, 0];
  if (Math.abs(sum) >= Math.abs(inc)) return [t, c + (sum - t + inc)];
  return [t, c + (inc - t + sum)];
}

/** Compensated sum, as sum and sum_over_time add (an infinite sum stays infinite). */
export function kahanSum(values: readonly number[]): number {
  let sum = 0;
  let c = 0;
  for (const v of values) [sum, c] = kahanSumInc(v, sum, c);
  return sum === Number.POSITIVE_INFINITY || sum === Number.NEGATIVE_INFINITY ? sum : sum + c;
}

/** Mean with Kahan summation, switching to an incremental mean once the running sum would overflow. */
export function kahanMean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  let sum = values[0] as number;
  let c = 0;
  let mean = 0;
  let incremental = false;
  for (let i = 1; i < values.length; i++) {
    const v = values[i] as number;
    const count = i + 1;
    if (!incremental) {
      const [newSum, newC] = kahanSumInc(v, sum, c);
      if (newSum !== Number.POSITIVE_INFINITY && newSum !== Number.NEGATIVE_INFINITY) {
        sum = newSum;
        c = newC;
        continue;
      }
      incremental = true;
      mean = sum / (count - 1);
      c /= count - 1;
    }
    const q = (count - 1) / count;
    [mean, c] = kahanSumInc(v / count, q * mean, q * c);
  }
  return incremental ? mean + c : sum / values.length + c / values.length;
}

/** Population variance (Welford with Kahan-compensated mean), as stdvar and stdvar_over_time compute it. */
export function variance(values: readonly number[]): number {
  let count = 0;
  let mean = 0;
  let cMean = 0;
  let aux = 0;
  let cAux = 0;
  for (const v of values) {
    count++;
    const delta = v - (mean + cMean);
    [mean, cMean] = kahanSumInc(delta / count, mean, cMean);
    [aux, cAux] = kahanSumInc(delta * (v - (mean + cMean)), aux, cAux);
  }
  return (aux + cAux) / count;
}

/**
 * rate / increase / delta: the change over the samples in the range, counter resets added back (counters), then
 * extrapolated towards the range's ends — all the way when the first/last sample is within 1.1 average intervals of
 * its end, else by half an interval — and never back past the point where a counter would have been zero.
 * Null when there are fewer than two samples. `rangeStartMs`/`rangeEndMs` are the selector's window (after offset).
 */
export function extrapolatedRate(
  points: readonly Point[],
  rangeStartMs: number,
  rangeEndMs: number,
  isCounter: boolean,
  isRate: boolean,
): number | null {
  if (points.length < 2) return null;
  const first = points[0] as Point;
  const last = points[points.length - 1] as Point;
  let result = last.v - first.v;
  if (isCounter) {
    for (let i = 1; i < points.length; i++) {
      const prev = (points[i - 1] as Point).v;
      if ((points[i] as Point).v < prev) result += prev;
    }
  }
  let durationToStart = (first.t - rangeStartMs) / 1000;
  let durationToEnd = (rangeEndMs - last.t) / 1000;
  const sampledInterval = (last.t - first.t) / 1000;
  const averageInterval = sampledInterval / (points.length - 1);
  const threshold = averageInterval * 1.1;
  if (durationToStart >= threshold) durationToStart = averageInterval / 2;
  if (isCounter && result > 0 && first.v >= 0) {
    const durationToZero = sampledInterval * (first.v / result);
    if (durationToZero < durationToStart) durationToStart = durationToZero;
  }
  if (durationToEnd >= threshold) durationToEnd = averageInterval / 2;
  let factor = (sampledInterval + durationToStart + durationToEnd) / sampledInterval;
  if (isRate) factor /= (rangeEndMs - rangeStartMs) / 1000;
  return result * factor;
}

/** irate / idelta: from the last two samples; a drop counts as a counter reset for irate. */
export function instantValue(points: readonly Point[], isRate: boolean): number | null {
  if (points.length < 2) return null;
  const last = points[points.length - 1] as Point;
  const prev = points[points.length - 2] as Point;
  const interval = last.t - prev.t;
  if (interval === 0) return null;
  let result = isRate && last.v < prev.v ? last.v : last.v - prev.v;
  if (isRate) result /= interval / 1000;
  return result;
}

/** Least-squares slope per second (deriv); null below two samples. */
export function derivative(points: readonly Point[]): number | null {
  if (points.length < 2) return null;
  const interceptTime = (points[0] as Point).t;
  const initY = (points[0] as Point).v;
  let constY = true;
  let n = 0;
  let sumX = 0;
  let cX = 0;
  let sumY = 0;
  let cY = 0;
  let sumXY = 0;
  let cXY = 0;
  let sumX2 = 0;
  let cX2 = 0;
  for (const p of points) {
    if (constY && p.v !== initY) constY = false;
    n++;
    const x = (p.t - interceptTime) / 1e3;
    [sumX, cX] = kahanSumInc(x, sumX, cX);
    [sumY, cY] = kahanSumInc(p.v, sumY, cY);
    [sumXY, cXY] = kahanSumInc(x * p.v, sumXY, cXY);
    [sumX2, cX2] = kahanSumInc(x * x, sumX2, cX2);
  }
  if (constY) return Number.isFinite(initY) ? 0 : Number.NaN;
  sumX += cX;
  sumY += cY;
  sumXY += cXY;
  sumX2 += cX2;
  const covXY = sumXY - (sumX * sumY) / n;
  const varX = sumX2 - (sumX * sumX) / n;
  return covXY / varX;
}

/** How often the value changed between consecutive samples (NaN to NaN is no change). */
export function changes(points: readonly Point[]): number {
  let n = 0;
  for (let i = 1; i < points.length; i++) {
    const prev = (points[i - 1] as Point).v;
    const cur = (points[i] as Point).v;
    if (cur !== prev && !(Number.isNaN(cur) && Number.isNaN(prev))) n++;
  }
  return n;
}

/** How often the value fell between consecutive samples: counter resets. */
export function resets(points: readonly Point[]): number {
  let n = 0;
  for (let i = 1; i < points.length; i++) {
    if ((points[i] as Point).v < (points[i - 1] as Point).v) n++;
  }
  return n;
}

/** max (or min) where NaN loses to any number, as max_over_time and the max aggregation pick. */
export function extreme(values: readonly number[], kind: 'max' | 'min'): number {
  let best = values[0] as number;
  for (const v of values) {
    if (Number.isNaN(best) || (kind === 'max' ? v > best : v < best)) best = v;
  }
  return best;
}

/** The φ-quantile of the values, interpolating between neighbours (the quantile aggregation). */
export function quantile(q: number, values: readonly number[]): number {
  if (values.length === 0 || Number.isNaN(q)) return Number.NaN;
  if (q < 0) return Number.NEGATIVE_INFINITY;
  if (q > 1) return Number.POSITIVE_INFINITY;
  // NaN sorts first, as in Prometheus' vectorByValueHeap.
  const sorted = [...values].sort((a, b) => (Number.isNaN(a) ? -1 : Number.isNaN(b) ? 1 : a - b));
  const n = sorted.length;
  const rank = q * (n - 1);
  const lower = Math.max(0, Math.floor(rank));
  const upper = Math.min(n - 1, lower + 1);
  const weight = rank - Math.floor(rank);
  return (sorted[lower] as number) * (1 - weight) + (sorted[upper] as number) * weight;
}

/** One classic histogram bucket: the `le` bound and the cumulative count up to it. */
export interface Bucket {
  upperBound: number;
  count: number;
}

const SMALL_DELTA_TOLERANCE = 1e-12;
const MIN_NORMAL = 2.2250738585072014e-308;

function almostEqual(a: number, b: number, epsilon: number): boolean {
  if (a === b) return true;
  const absSum = Math.abs(a) + Math.abs(b);
  const diff = Math.abs(a - b);
  if (a === 0 || b === 0 || absSum < MIN_NORMAL) return diff < epsilon * MIN_NORMAL;
  return diff / Math.min(absSum, Number.MAX_VALUE) < epsilon;
}

/**
 * histogram_quantile over classic (`le`) buckets: linear interpolation inside the bucket the rank falls in, 0 as
 * the lower bound of the first bucket (when its bound is positive), the second-highest bound when the rank falls in
 * the +Inf bucket; NaN without a +Inf bucket, with fewer than two buckets or no observations.
 */
export function bucketQuantile(q: number, input: readonly Bucket[]): number {
  if (Number.isNaN(q)) return Number.NaN;
  if (q < 0) return Number.NEGATIVE_INFINITY;
  if (q > 1) return Number.POSITIVE_INFINITY;
  const sorted = [...input].sort((a, b) => a.upperBound - b.upperBound);
  if (sorted.length === 0 || (sorted[sorted.length - 1] as Bucket).upperBound !== Number.POSITIVE_INFINITY) {
    return Number.NaN;
  }
  // Buckets with the same bound (le="1" and le="1.0") are one bucket.
  const buckets: Bucket[] = [];
  for (const b of sorted) {
    const last = buckets[buckets.length - 1];
    if (last && last.upperBound === b.upperBound) last.count += b.count;
    else buckets.push({ ...b });
  }
  // Counts must not fall from bucket to bucket; float noise is flattened, real drops are forced monotonic.
  let prev = (buckets[0] as Bucket).count;
  for (let i = 1; i < buckets.length; i++) {
    const b = buckets[i] as Bucket;
    if (b.count === prev) continue;
    if (almostEqual(prev, b.count, SMALL_DELTA_TOLERANCE) || b.count < prev) {
      b.count = prev;
      continue;
    }
    prev = b.count;
  }
  if (buckets.length < 2) return Number.NaN;
  const observations = (buckets[buckets.length - 1] as Bucket).count;
  if (observations === 0) return Number.NaN;
  let rank = q * observations;
  let b = 0;
  while (b < buckets.length - 1 && (buckets[b] as Bucket).count < rank) b++;
  if (b === buckets.length - 1) return (buckets[buckets.length - 2] as Bucket).upperBound;
  if (b === 0 && (buckets[0] as Bucket).upperBound <= 0) return (buckets[0] as Bucket).upperBound;
  let bucketStart = 0;
  const bucketEnd = (buckets[b] as Bucket).upperBound;
  let count = (buckets[b] as Bucket).count;
  if (b > 0) {
    const below = buckets[b - 1] as Bucket;
    bucketStart = below.upperBound;
    count -= below.count;
    rank -= below.count;
  }
  return bucketStart + (bucketEnd - bucketStart) * (rank / count);
}

/** Go's strconv.ParseFloat for an `le` value: "+Inf", "0.25", "1e3"; null when it is not a number. */
export function parseBucketBound(text: string): number | null {
  const lower = text.toLowerCase();
  if (lower === '+inf' || lower === 'inf' || lower === '+infinity' || lower === 'infinity') {
    return Number.POSITIVE_INFINITY;
  }
  if (lower === '-inf' || lower === '-infinity') return Number.NEGATIVE_INFINITY;
  if (lower === 'nan') return Number.NaN;
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(text)) return null;
  return Number(text);
}

/** Go's math.Pow where it differs from `**`: 1^y and (-1)^±Inf are 1. */
export function goPow(x: number, y: number): number {
  if (x === 1) return 1;
  if (x === -1 && (y === Number.POSITIVE_INFINITY || y === Number.NEGATIVE_INFINITY)) return 1;
  return x ** y;
}

/**
 * Go's regexp Expand for label_replace's replacement: `$1`, `${1}`, `$name`, `${name}`, `$$`; a name runs as long as
 * letters, digits and `_` follow (so `$1x` is group "1x", which is empty).
 */
export function expandReplacement(template: string, match: RegExpExecArray): string {
  let out = '';
  let i = 0;
  while (i < template.length) {
    const c = template[i] as string;
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = template[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    let name: string | undefined;
    let end = i + 1;
    if (next === '{') {
      const close = template.indexOf('}', i + 2);
      const inner = close < 0 ? '' : template.slice(i + 2, close);
      if (close >= 0 && /^\w+$/.test(inner)) {
        name = inner;
        end = close + 1;
      }
    } else {
      const m = /^\w+/.exec(template.slice(i + 1));
      if (m) {
        name = m[0];
        end = i + 1 + m[0].length;
      }
    }
    if (name === undefined) {
      // Not a valid reference: Go copies the '$' and goes on.
      out += '$';
      i++;
      continue;
    }
    if (/^\d+$/.test(name)) out += match[Number(name)] ?? '';
    else out += match.groups?.[name] ?? '';
    i = end;
  }
  return out;
}
