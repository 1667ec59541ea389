/**
 * A sequence memory in the spirit of HTM and ARTime, kept to a few dozen numbers: each point is reduced to its kind
 * (a large step down, an ordinary point, a large step up, judged against the rolling median and its scale) and the
 * memory learns how often each kind follows each of the nine possible pairs of preceding kinds. A point whose kind
 * rarely or never followed the preceding ones is surprising even when its value is not: the same values in a new
 * order (a spike answered at once by a dip, a spike that lingers, spikes where there used to be single ones).
 *
 * The model is an interpolated Markov chain of order 2 over the three kinds: each order's estimate is its counts
 * plus PRIOR pseudo-counts spread as the next lower order predicts, so a pair of kinds never seen before falls back
 * on the order-1 estimate, and a kind never seen at all on a uniform prior. The counts forget with a half-life
 * (lazily, as in RarityCalibrator: newer points get larger weights, renormalised before a Float32 overflows).
 */

/** the kinds of point: a large step down, an ordinary point, a large step up */
export const STEP_DOWN = 0;
export const ORDINARY = 1;
export const STEP_UP = 2;
export const SEQUENCE_KINDS = 3;
/** counts: order 0 (3), order 1 (3 × 3), order 2 (9 × 3) */
export const SEQUENCE_CELLS = SEQUENCE_KINDS * (1 + SEQUENCE_KINDS + SEQUENCE_KINDS * SEQUENCE_KINDS);
/** the two preceding kinds, as 3 × older + newer; a fresh memory starts after two ordinary points */
export const FRESH_HISTORY = ORDINARY * SEQUENCE_KINDS + ORDINARY;

const ORDER1 = SEQUENCE_KINDS;
const ORDER2 = SEQUENCE_KINDS + SEQUENCE_KINDS * SEQUENCE_KINDS;
/** pseudo-counts each order takes from the order below it */
const PRIOR = 1;
const RENORMALISE_AT = 1e30;
/** 10^−0.5: a likelier kind has a surprise under 0.5 */
const LOWEST_BIN_P = 10 ** -0.5;

export class SequenceMemory {
  private readonly growth: number;

  constructor(
    /** SEQUENCE_CELLS Float32 counts (a slice of the detector's tables) */
    private readonly counts: Float32Array,
    /** counts halve after this many points */
    halfLife: number,
    /** weight the next point gets (grows by `growth` per point) */
    public weight = 1,
    /** the two preceding kinds */
    public history = FRESH_HISTORY,
  ) {
    this.growth = 2 ** (1 / halfLife);
  }

  /**
   * −log10 of the probability the memory gave `kind` (STEP_DOWN, ORDINARY or STEP_UP) after the two preceding
   * kinds; then learns it.
   */
  surprise(kind: number): number {
    const counts = this.counts;
    const scale = 1 / this.weight;
    const history = this.history;
    // order 0 (against a uniform prior), then the last kind, then the last two kinds
    const row1 = ORDER1 + (history % SEQUENCE_KINDS) * SEQUENCE_KINDS;
    const row2 = ORDER2 + history * SEQUENCE_KINDS;
    let p = ((counts[kind] as number) * scale + PRIOR / SEQUENCE_KINDS) / (rowSum(counts, 0) * scale + PRIOR);
    p = ((counts[row1 + kind] as number) * scale + PRIOR * p) / (rowSum(counts, row1) * scale + PRIOR);
    p = ((counts[row2 + kind] as number) * scale + PRIOR * p) / (rowSum(counts, row2) * scale + PRIOR);

    const weight = this.weight * this.growth;
    this.weight = weight;
    counts[kind] = (counts[kind] as number) + weight;
    counts[row1 + kind] = (counts[row1 + kind] as number) + weight;
    counts[row2 + kind] = (counts[row2 + kind] as number) + weight;
    if (weight > RENORMALISE_AT) {
      for (let j = 0; j < SEQUENCE_CELLS; j++) counts[j] = (counts[j] as number) / weight;
      this.weight = 1;
    }
    this.history = (history % SEQUENCE_KINDS) * SEQUENCE_KINDS + kind;
    // below 0.5 (p above 10^−0.5) a surprise only ever counts in the calibrator's lowest bin and reports nothing
    return p >= LOWEST_BIN_P ? 0 : -Math.log10(p);
  }
}

function rowSum(counts: Float32Array, start: number): number {
  return (counts[start] as number) + (counts[start + 1] as number) + (counts[start + 2] as number);
}
