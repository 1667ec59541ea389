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
/** histogram bins; surprises above 16 land in the last bin (the likelihood is 1 − 1e-12 there) */
export const RARITY_BINS = 32;
/**
 * default tolerance: a surprise counts as "seen before" if an earlier one reached within this much below it; log10
 * units
 */
export const RARITY_TOLERANCE = 0.5;
/** a surprise is new (and boosted) when nothing remembered reached within this much below it; log10 units */
const NOVELTY_TOLERANCE = 0.5;
const NOVELTY_BOOST = 2;
/** weights are renormalised before they overflow a Float32 bin */
const RENORMALISE_AT = 1e30;

/**
 * Caps a channel's surprise by how often comparable surprises occurred recently: a decayed histogram of past
 * surprises (exponential forgetting, lazy: newer points get larger weights) gives the frequency f of values at least
 * (s − tolerance), and the calibrated surprise is min(s, −log10 f). A daily spike stops looking like a one-in-a-
 * million event after it has happened a few days running; a first-of-its-kind event (nothing remembered reached
 * s − NOVELTY_TOLERANCE) keeps its full surprise, plus a boost for the distance past the highest remembered one.
 *
 * The tolerance is per channel: a wider one counts smaller earlier surprises as comparable, for surprises that are
 * log-compressed (a Student-t surprise 2 higher is a residual only about 3 times larger).
 *
 * The histogram is kept as suffix sums (tail[j] = weight of bins ≥ j, tail[0] = the total), so a query is O(1) and
 * an update touches only the bins up to the new value's, which is a handful for ordinary points. Several channels
 * share one Float32Array (one slice each) so the detector's state stays a few flat arrays.
 */
export class RarityCalibrator {
  constructor(
    /** bin j of this histogram is at `offset + j × stride` (several histograms interleaved share cache lines) */
    private readonly tails: Float32Array,
    private readonly offset: number,
    private readonly stride: number,
    /** per-point forgetting factor, e.g. 1 − 0.5^(1/halfLife) */
    forget: number,
    /** points a surprise waits before it counts; its delay line is `delay` slots at `delayOffset` */
    private readonly delay: number,
    private readonly delayOffset: number,
    /** weight the next point gets (grows by 1/(1−forget) per point) */
    public weight = 1,
    /** surprises offered so far (position in the delay line) */
    public seen = 0,
    /** remembered surprises at least (s − tolerance) count as comparable to s; log10 units, ≥ NOVELTY_TOLERANCE */
    private readonly tolerance = RARITY_TOLERANCE,
  ) {
    this.growth = 1 / (1 - forget);
  }

  /** 1 / (1 − forget): the factor the next point's weight grows by */
  private readonly growth: number;

  /** remembered weight of surprises at least `level`, interpolated within its bin */
  private weightAtLeast(level: number): number {
    const position = Math.max(0, level) / RARITY_BIN;
    const first = Math.floor(position);
    if (first >= RARITY_BINS) return 0;
    const tails = this.tails;
    const here = tails[this.offset + first * this.stride] as number;
    const above = first + 1 < RARITY_BINS ? (tails[this.offset + (first + 1) * this.stride] as number) : 0;
    return here - (here - above) * (position - first);
  }

  /** The calibrated surprise of `s`, then remembers `s`. */
  calibrate(s: number): number {
    const tails = this.tails;
    const start = this.offset;
    const total = tails[start] as number;
    // most points: nothing to report and the lowest bin to count (the general path below gives the same)
    if (s < NOVELTY_TOLERANCE && s < RARITY_BIN && this.delay === 0) {
      const weight = this.weight * this.growth;
      this.weight = weight;
      tails[start] = total + weight;
      if (weight > RENORMALISE_AT) this.renormalise(weight);
      return total > 0 ? 0 : s;
    }
    let calibrated = s;
    if (total > 0) {
      const novel = s - NOVELTY_TOLERANCE;
      if (novel <= 0) {
        // at or below the tolerance everything remembered counts as comparable: f = 1, nothing to report
        calibrated = 0;
      } else if (this.weightAtLeast(novel) > 0) {
        calibrated = Math.min(s, -Math.log10(this.weightAtLeast(s - this.tolerance) / total));
      } else {
        // beyond everything remembered: the distance past the highest remembered surprise adds to it
        let top = Math.min(Math.floor(novel / RARITY_BIN), RARITY_BINS) - 1;
        while (top >= 0 && (tails[start + top * this.stride] as number) <= 0) top--;
        calibrated = s + NOVELTY_BOOST * Math.max(0, novel - (top + 1) * RARITY_BIN);
      }
    }

    // remember with a delay so a statistic that climbs over several points is not capped by its own climb
    let remembered = s;
    const delay = this.delay;
    if (delay > 0) {
      const slot = this.delayOffset + (this.seen % delay);
      remembered = tails[slot] as number;
      tails[slot] = s;
      this.seen++;
      if (this.seen <= delay) return calibrated;
    }
    const weight = this.weight * this.growth;
    this.weight = weight;
    const bin = Math.min(RARITY_BINS - 1, Math.floor(remembered / RARITY_BIN));
    const stride = this.stride;
    for (let j = start + bin * stride; j >= start; j -= stride) tails[j] = (tails[j] as number) + weight;
    if (weight > RENORMALISE_AT) this.renormalise(weight);
    return calibrated;
  }

  /** scales the histogram back before a Float32 overflows; the weights are relative, so nothing changes */
  private renormalise(weight: number): void {
    const tails = this.tails;
    const end = this.offset + RARITY_BINS * this.stride;
    for (let j = this.offset; j < end; j += this.stride) tails[j] = (tails[j] as number) / weight;
    this.weight = 1;
  }
}
