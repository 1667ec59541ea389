/** Eight levels, lowest first. */
const BLOCKS = '▁▂▃▄▅▆▇█';
/** A series with no spread sits mid-height. */
const FLAT = '▄';
/** Stands for a missing point (NaN or ±Infinity) so gaps stay visible and time stays aligned. */
const GAP = ' ';

export interface SparklineOptions {
  /** maximum characters; default 24. A longer series is averaged into this many buckets, oldest first. */
  width?: number;
  /** index into `values` of the first anomalous point; absent when nothing is anomalous */
  highlightFrom?: number;
}

export interface Sparkline {
  /** one block character a point (or bucket), oldest first; a space where the data is missing */
  text: string;
  /**
   * Index into `text` of the first character holding an anomalous point (a bucket that mixes normal and
   * anomalous points counts as anomalous, so the anomaly is never hidden), or null when none does. Callers
   * split `text` here to bold or mark the anomalous tail.
   */
  highlightAt: number | null;
}

/**
 * Plain-text sparkline of `values` scaled between their minimum and maximum, for a Slack card or a status
 * line. Non-finite values are shown as spaces; a bucket averages only its finite values.
 */
export function sparkline(values: readonly number[], options: SparklineOptions = {}): string {
  return renderSparkline(values, options).text;
}

/** Like `sparkline`, also returning where the anomalous part of the text begins. */
export function renderSparkline(values: readonly number[], options: SparklineOptions = {}): Sparkline {
  const width = options.width ?? 24;
  if (!Number.isInteger(width) || width < 1)
    throw new RangeError(`sparkline width must be a positive integer, got ${width}`);

  const { points, bucketStarts } = bucketByAverage(values, width);
  const highlightAt = locateHighlight(bucketStarts, values.length, options.highlightFrom);

  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of points) {
    if (!Number.isFinite(v)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  // Halving first keeps max − min finite for values near ±Number.MAX_VALUE.
  const halfSpan = max / 2 - min / 2;
  const text = points
    .map((v) => {
      if (!Number.isFinite(v)) return GAP;
      if (!(halfSpan > 0)) return FLAT;
      return BLOCKS[Math.round(((v / 2 - min / 2) / halfSpan) * (BLOCKS.length - 1))] ?? FLAT;
    })
    .join('');
  return { text, highlightAt };
}

/**
 * Splits `values` into at most `width` contiguous buckets of near-equal size (the last ends at the newest
 * point) and averages the finite values of each; a bucket with none is NaN.
 */
function bucketByAverage(
  values: readonly number[],
  width: number,
): { points: number[]; bucketStarts: number[] } {
  const n = values.length;
  if (n <= width) return { points: [...values], bucketStarts: values.map((_, i) => i) };
  const points: number[] = [];
  const bucketStarts: number[] = [];
  for (let b = 0; b < width; b++) {
    const start = Math.floor((b * n) / width);
    const end = Math.floor(((b + 1) * n) / width);
    const finite = values.slice(start, end).filter((v) => Number.isFinite(v));
    // Dividing each value before summing keeps the mean finite for values near ±Number.MAX_VALUE.
    const mean = finite.reduce((sum, v) => sum + v / finite.length, 0);
    bucketStarts.push(start);
    points.push(finite.length === 0 ? Number.NaN : mean);
  }
  return { points, bucketStarts };
}

function locateHighlight(
  bucketStarts: readonly number[],
  length: number,
  from: number | undefined,
): number | null {
  if (from === undefined || Number.isNaN(from)) return null;
  const first = Math.max(0, Math.ceil(from));
  if (first >= length) return null;
  // The bucket containing `first` is the last one that starts at or before it.
  let at = 0;
  for (let b = 0; b < bucketStarts.length; b++) if ((bucketStarts[b] ?? 0) <= first) at = b;
  return at;
}
