/**
 * Surprise is measured in log10 units throughout the detector: s = −log10 p, so s = 3 means "a one-in-a-thousand
 * point". Every model turns its evidence into s, and the detector compares and combines those numbers.
 */

/** Student-t degrees of freedom for residual tails: heavy enough that metrics' outliers do not look impossible */
const T_DOF = 3;
const T_SCALE = (T_DOF + 1) / 2 / Math.LN10;

/**
 * Surprise of a standardised residual z under a Student-t(3) tail (−log10 of its density ratio to the centre).
 * Grows like 4·log10|z| for large |z| instead of z²: a value twice as far out is a little more surprising, not
 * astronomically more, which keeps spiky series comparable with calm ones.
 */
export function residualSurprise(z: number): number {
  return T_SCALE * Math.log1p((z * z) / T_DOF);
}

/** −log10 P(X ≥ k) for X ~ Poisson(mean); k is floored, k ≤ 0 gives 0 */
export function poissonTailSurprise(k: number, mean: number): number {
  const whole = Math.floor(k);
  if (whole <= 0) return 0;
  let term = Math.exp(-mean);
  let below = term;
  for (let i = 1; i < whole; i++) {
    term *= mean / i;
    below += term;
  }
  const tail = 1 - below;
  if (tail > 1e-12) return -Math.log10(tail);
  // 1 − cdf underflows: the first tail term bounds the tail closely when k is far above the mean
  return -(whole * Math.log(mean) - mean - logFactorial(whole)) / Math.LN10;
}

function logFactorial(k: number): number {
  let sum = 0;
  for (let i = 2; i <= k; i++) sum += Math.log(i);
  return sum;
}

/** histogram bin width, log10 units */
export const RARITY_BIN = 0.5;
/** histogram bins; surprises above 24 land in the last bin */
export const RARITY_BINS = 48;
/** a surprise counts as "seen before" if an earlier one reached within this much below it; log10 units */
const RARITY_TOLERANCE = 0.5;
const NOVELTY_BOOST = 2;
/** weights are renormalised before they overflow a Float32 bin */
const RENORMALISE_AT = 1e30;

/**
 * Caps a channel's surprise by how often comparable surprises occurred recently: a decayed histogram of past
 * surprises (exponential forgetting, lazy: newer points get larger weights) gives the frequency f of values at least
 * (s − tolerance), and the calibrated surprise is min(s, −log10 f). A daily spike stops looking like a one-in-a-
 * million event after it has happened a few days running; a first-of-its-kind event keeps its full surprise.
 *
 * The histogram is kept as suffix sums (tail[j] = weight of bins ≥ j, tail[0] = the total), so a query is O(1) and
 * an update touches only the bins up to the new value's, which is a handful for ordinary points. Several channels
 * share one Float32Array (one slice each) so the detector's state stays a few flat arrays.
 */
export class RarityCalibrator {
  constructor(
    private readonly tails: Float32Array,
    private readonly offset: number,
    /** per-point forgetting factor, e.g. 1 − 0.5^(1/halfLife) */
    forget: number,
    /** points a surprise waits before it counts; the slice holds RARITY_BINS then this many slots */
    private readonly delay: number,
    /** weight the next point gets (grows by 1/(1−forget) per point) */
    public weight = 1,
    /** surprises offered so far (position in the delay line) */
    public seen = 0,
  ) {
    this.growth = 1 / (1 - forget);
  }

  /** 1 / (1 − forget): the factor the next point's weight grows by */
  private readonly growth: number;

  /** The calibrated surprise of `s`, then remembers `s`. */
  calibrate(s: number): number {
    const tails = this.tails;
    const start = this.offset;
    const total = tails[start] as number;
    const low = Math.max(0, s - RARITY_TOLERANCE) / RARITY_BIN;
    const first = Math.floor(low);
    let atLeast = 0;
    if (first < RARITY_BINS) {
      const here = tails[start + first] as number;
      const above = first + 1 < RARITY_BINS ? (tails[start + first + 1] as number) : 0;
      atLeast = here - (here - above) * (low - first);
    }
    // at or below the tolerance everything remembered counts as comparable: f = 1, nothing to report
    let calibrated = low === 0 && total > 0 ? 0 : atLeast > 0 ? Math.min(s, -Math.log10(atLeast / total)) : s;
    if (atLeast <= 0 && NOVELTY_BOOST > 0 && total > 0) {
      // beyond everything remembered: the distance past the highest remembered surprise adds to it
      let top = Math.min(first, RARITY_BINS) - 1;
      while (top >= 0 && (tails[start + top] as number) <= 0) top--;
      const edge = (top + 1) * RARITY_BIN;
      calibrated = s + NOVELTY_BOOST * Math.max(0, low * RARITY_BIN - edge);
    }

    // remember with a delay so a statistic that climbs over several points is not capped by its own climb
    let remembered = s;
    const delay = this.delay;
    if (delay > 0) {
      const slot = start + RARITY_BINS + (this.seen % delay);
      remembered = tails[slot] as number;
      tails[slot] = s;
      this.seen++;
      if (this.seen <= delay) return calibrated;
    }
    const weight = this.weight * this.growth;
    this.weight = weight;
    const bin = Math.min(RARITY_BINS - 1, Math.floor(remembered / RARITY_BIN));
    for (let j = start + bin; j >= start; j--) tails[j] = (tails[j] as number) + weight;
    if (weight > RENORMALISE_AT) {
      for (let j = start; j < start + RARITY_BINS; j++) tails[j] = (tails[j] as number) / weight;
      this.weight = 1;
    }
    return calibrated;
  }
}
