/**
 * The Numenta Anomaly Benchmark's scoring, as NAB 1.x computes it (nab/sweeper.py, nab/optimizer.py,
 * nab/runner.py normalize(), config/profiles.json):
 *
 * - Probation: the first min(floor(0.15 × rows), 0.15 × 5000) rows of each file count for nothing, whatever they
 *   hold (so never more than 750 rows).
 * - A point fires when its anomaly score is ≥ the threshold. Inside a window [start, end] (indices s..e, width
 *   w = e − s + 1) a firing at index i is worth tpWeight × S(−(e − i + 1) / w) / S(−1), where
 *   S(x) = 2 / (1 + e^(5x)) − 1 (S(x) = −1 for x > 3): exactly tpWeight at the window's first row, S(−1/w) / S(−1)
 *   (≈ 2.5 / w) × tpWeight at its last. Only a window's best (that is, earliest) firing counts; a window without one
 *   costs −fnWeight.
 * - A firing outside every window adds fpWeight × S((i − e) / (w − 1)), measured from the end e of the closest
 *   preceding window (of width w): almost nothing just after a window, 0.987 × −fpWeight one window width on, the
 *   full −fpWeight from three widths on and anywhere before the first window. (After a one-row window NAB divides by
 *   zero and fails; here such a firing costs the full −fpWeight.)
 * - One threshold for the whole corpus: every distinct score is tried, from the highest down (plus "nothing fires"),
 *   and the one with the highest total wins (on a tie, the higher threshold).
 * - Normalised = 100 × (raw − null) / (perfect − null), where null is the best total of NAB's null detector (a
 *   constant 0.5 everywhere, with its own best threshold; in effect every window missed) and perfect is
 *   tpWeight × the number of windows (a window lying wholly inside probation counts there, and nowhere else).
 */

export interface NabCostMatrix {
  tpWeight: number;
  fpWeight: number;
  fnWeight: number;
}

/** NAB's three application profiles (its config/profiles.json). */
export const NAB_PROFILES = {
  standard: { tpWeight: 1, fpWeight: 0.11, fnWeight: 1 },
  reward_low_FP_rate: { tpWeight: 1, fpWeight: 0.22, fnWeight: 1 },
  reward_low_FN_rate: { tpWeight: 1, fpWeight: 0.11, fnWeight: 2 },
} as const satisfies Record<string, NabCostMatrix>;
export type NabProfileName = keyof typeof NAB_PROFILES;
export const NAB_PROFILE_NAMES = Object.keys(NAB_PROFILES) as NabProfileName[];

/** NAB's share of each file that is probationary, capped at this share of 5000 rows */
export const NAB_PROBATION_PERCENT = 0.15;
/** NAB's threshold before any score is reached: nothing fires */
export const NAB_NO_DETECTION_THRESHOLD = 1.1;
/** the score NAB's null detector gives every row */
const NULL_DETECTOR_SCORE = 0.5;

/** One file of the corpus with a detector's scores. */
export interface NabSeries {
  /** unique within the corpus, e.g. `realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv` */
  name: string;
  /** epoch milliseconds per row, non-decreasing */
  timestamps: ArrayLike<number>;
  /** the detector's anomaly score per row, in [0, 1] */
  scores: ArrayLike<number>;
  /** labelled windows as [start, end] epoch milliseconds, in order, not overlapping; both ends must be row timestamps */
  windows: readonly (readonly [number, number])[];
}

/** A file's share at a profile's corpus threshold. */
export interface NabFileScore {
  name: string;
  rawScore: number;
  /** windows with a firing (after probation) */
  tp: number;
  /** firing rows outside every window (after probation) */
  fp: number;
  /** windows without a firing (windows entirely inside probation count neither way) */
  fn: number;
}

export interface NabProfileScore {
  profile: NabProfileName;
  costs: NabCostMatrix;
  /** the lowest score that fires; {@link NAB_NO_DETECTION_THRESHOLD} when firing nowhere scores best */
  threshold: number;
  rawScore: number;
  /** the null detector's best raw score, which normalises to 0 */
  nullScore: number;
  /** tpWeight × windows, which normalises to 100 */
  perfectScore: number;
  normalizedScore: number;
  tp: number;
  fp: number;
  fn: number;
  files: NabFileScore[];
}

/** S(x): NAB's scaled sigmoid of a position relative to a window's end (−1 = its start, 0 = its end). */
export function scaledSigmoid(position: number): number {
  if (position > 3) return -1;
  return 2 * (1 / (1 + Math.exp(5 * position))) - 1;
}

/** rows at the head of a file that never count: NAB's `min(floor(p × rows), p × 5000)` */
export function probationLength(rows: number, probationPercent = NAB_PROBATION_PERCENT): number {
  return Math.min(Math.floor(probationPercent * rows), probationPercent * 5000);
}

/**
 * Scores a detector over a corpus for NAB's three profiles: each profile's best corpus-wide threshold, its raw and
 * normalised score, and TP/FP/FN counts in total and per file. Throws when a series is malformed (lengths differ, a
 * score outside [0, 1], a window bound that is not a row timestamp) or the corpus has no window at all.
 */
export function scoreNab(
  corpus: readonly NabSeries[],
  options: { probationPercent?: number } = {},
): Record<NabProfileName, NabProfileScore> {
  const probationPercent = options.probationPercent ?? NAB_PROBATION_PERCENT;
  const labelled = labelCorpus(corpus, probationPercent);
  if (labelled.windowCount === 0)
    throw new Error('scoreNab: the corpus has no labelled window to score against');
  const nullScores = new Float64Array(labelled.score.length).fill(NULL_DETECTOR_SCORE);

  const result = {} as Record<NabProfileName, NabProfileScore>;
  for (const profile of NAB_PROFILE_NAMES) {
    const costs = NAB_PROFILES[profile];
    // NAB picks each detector's threshold on the whole corpus, then totals the files' scores at that threshold
    // (the sweep's best total summed in another order: equal up to rounding)
    const best = sweepThresholds(labelled, labelled.score, costs);
    const files = corpus.map((series, f) =>
      scoreFileAt(labelled, labelled.score, f, series.name, best.threshold, costs),
    );
    const rawScore = sum(files, (file) => file.rawScore);
    const nullThreshold = sweepThresholds(labelled, nullScores, costs).threshold;
    const nullScore = sum(
      corpus,
      (series, f) => scoreFileAt(labelled, nullScores, f, series.name, nullThreshold, costs).rawScore,
    );
    const perfectScore = labelled.windowCount * costs.tpWeight;
    result[profile] = {
      profile,
      costs,
      threshold: best.threshold,
      rawScore,
      nullScore,
      perfectScore,
      normalizedScore: (100 * (rawScore - nullScore)) / (perfectScore - nullScore),
      tp: sum(files, (f) => f.tp),
      fp: sum(files, (f) => f.fp),
      fn: sum(files, (f) => f.fn),
      files,
    };
  }
  return result;
}

/**
 * The scorable (post-probation) rows of the whole corpus, columnar: each row's score, its window (corpus-wide id,
 * −1 outside every window) and its unweighted S value (as a TP inside a window, as an FP outside).
 */
interface LabelledCorpus {
  score: Float64Array;
  window: Int32Array;
  unweighted: Float64Array;
  /** scorable rows of file f are fileStart[f] ≤ k < fileStart[f + 1] */
  fileStart: number[];
  /** all windows, including any lying wholly inside probation (NAB's perfect score counts them) */
  windowCount: number;
}

function labelCorpus(corpus: readonly NabSeries[], probationPercent: number): LabelledCorpus {
  const total = corpus.reduce((n, s) => n + s.scores.length, 0);
  const score = new Float64Array(total);
  const window = new Int32Array(total);
  const unweighted = new Float64Array(total);
  const fileStart: number[] = [];
  let n = 0;
  let windowCount = 0;
  for (const series of corpus) {
    fileStart.push(n);
    const { timestamps, scores, name } = series;
    if (timestamps.length !== scores.length)
      throw new Error(`${name}: ${timestamps.length} timestamps but ${scores.length} scores`);
    const bounds = windowIndices(series);
    const probation = probationLength(scores.length, probationPercent);
    let next = 0; // the next window not yet passed
    let prevEnd = -1;
    let prevWidth = 0;
    for (let i = 0; i < scores.length; i++) {
      const s = scores[i] ?? Number.NaN;
      if (!(s >= 0 && s <= 1)) throw new Error(`${name}: row ${i + 1} has score ${s}, outside [0, 1]`);
      let current = bounds[next];
      if (current && i > current.end) {
        prevEnd = current.end;
        prevWidth = current.end - current.start + 1;
        current = bounds[++next];
      }
      const inside = current !== undefined && i >= current.start;
      if (i >= probation) {
        score[n] = s;
        if (inside && current) {
          window[n] = windowCount + next;
          unweighted[n] = scaledSigmoid(-(current.end - i + 1) / (current.end - current.start + 1));
        } else {
          window[n] = -1;
          unweighted[n] = prevEnd < 0 ? -1 : scaledSigmoid(Math.abs(prevEnd - i) / (prevWidth - 1));
        }
        n++;
      }
    }
    windowCount += bounds.length;
  }
  fileStart.push(n);
  return {
    score: score.subarray(0, n),
    window: window.subarray(0, n),
    unweighted: unweighted.subarray(0, n),
    fileStart,
    windowCount,
  };
}

/** Row indices of each window; NAB finds a window by its exact start and end timestamps. */
function windowIndices(series: NabSeries): { start: number; end: number }[] {
  const { timestamps, windows, name } = series;
  const indexOf = (t: number): number => {
    for (let i = 0; i < timestamps.length; i++) if (timestamps[i] === t) return i;
    return -1;
  };
  const bounds: { start: number; end: number }[] = [];
  for (const [startMs, endMs] of windows) {
    const label = `[${new Date(startMs).toISOString()}, ${new Date(endMs).toISOString()}]`;
    const start = indexOf(startMs);
    const end = indexOf(endMs);
    if (start < 0 || end < 0)
      throw new Error(`${name}: window ${label} does not start and end on row timestamps`);
    if (end < start) throw new Error(`${name}: window ${label} ends before it starts`);
    const previous = bounds.at(-1);
    if (previous && start <= previous.end)
      throw new Error(`${name}: window ${label} overlaps or precedes the window before it`);
    bounds.push({ start, end });
  }
  return bounds;
}

/** the weighted value of one scorable row firing: a TP candidate inside a window, an FP outside */
function weighted(labelled: LabelledCorpus, k: number, costs: NabCostMatrix): number {
  const u = labelled.unweighted[k] ?? 0;
  return (labelled.window[k] ?? -1) >= 0 ? (u * costs.tpWeight) / MAX_TP : u * costs.fpWeight;
}
const MAX_TP = scaledSigmoid(-1);

/** rows from ≤ k < to by descending score, ties in row order (as Python's stable sort with reverse=True) */
function descending(scores: Float64Array, from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i).sort(
    (a, b) => (scores[b] ?? 0) - (scores[a] ?? 0) || a - b,
  );
}

/**
 * NAB's running total while rows fire in descending score: the false positives' sum, and per window its best
 * firing (−fnWeight until one fires). Summed as NAB sums its dict — false positives first, then windows in order of
 * first appearance in `order` — so near-ties resolve as in NAB.
 */
function createScoreParts(labelled: LabelledCorpus, order: readonly number[], costs: NabCostMatrix) {
  const windows = new Map<number, number>();
  for (const k of order) {
    const w = labelled.window[k] ?? -1;
    if (w >= 0 && !windows.has(w)) windows.set(w, -costs.fnWeight);
  }
  const detected = new Set<number>();
  let fpScore = 0;
  let fp = 0;
  return {
    fire(k: number): void {
      const w = labelled.window[k] ?? -1;
      const value = weighted(labelled, k, costs);
      if (w < 0) {
        fpScore += value;
        fp++;
      } else {
        windows.set(w, Math.max(windows.get(w) ?? -costs.fnWeight, value));
        detected.add(w);
      }
    },
    total(): number {
      let t = fpScore;
      for (const part of windows.values()) t += part;
      return t;
    },
    counts: () => ({ tp: detected.size, fp, fn: windows.size - detected.size }),
  };
}

/**
 * NAB's Sweeper.calcScoreByThreshold + optimizeThreshold: rows fire in descending score (ties in corpus order), the
 * total is recorded each time the score changes, and the best total wins (the first, i.e. highest, threshold on a
 * tie).
 */
function sweepThresholds(
  labelled: LabelledCorpus,
  scores: Float64Array,
  costs: NabCostMatrix,
): { threshold: number; score: number } {
  const order = descending(scores, 0, scores.length);
  const parts = createScoreParts(labelled, order, costs);
  let threshold: number = NAB_NO_DETECTION_THRESHOLD;
  let best = { threshold, score: parts.total() };
  for (const k of order) {
    const s = scores[k] ?? 0;
    if (s !== threshold) {
      const total = parts.total();
      if (total > best.score) best = { threshold, score: total };
      threshold = s;
    }
    parts.fire(k);
  }
  const total = parts.total();
  if (total > best.score) best = { threshold, score: total };
  return best;
}

/** One file's total and counts when every row scoring ≥ threshold fires (NAB's Sweeper.scoreDataSet). */
function scoreFileAt(
  labelled: LabelledCorpus,
  scores: Float64Array,
  f: number,
  name: string,
  threshold: number,
  costs: NabCostMatrix,
): NabFileScore {
  const order = descending(scores, labelled.fileStart[f] ?? 0, labelled.fileStart[f + 1] ?? 0);
  const parts = createScoreParts(labelled, order, costs);
  for (const k of order) {
    if ((scores[k] ?? 0) < threshold) break;
    parts.fire(k);
  }
  return { name, rawScore: parts.total(), ...parts.counts() };
}

function sum<T>(items: readonly T[], of: (item: T, index: number) => number): number {
  return items.reduce((n, item, index) => n + of(item, index), 0);
}
