/**
 * A seasonal profile learned online: the period (a day, a week) is cut into equal bins keyed by the timestamp's
 * position in the period (UTC), and each bin keeps an exponentially weighted mean of the values that fell in it.
 * Unseen bins are NaN. Works for any sampling interval: with data sparser than the bin width only the bins the
 * series visits fill in, and it only ever predicts from those.
 */
export class SeasonalProfile {
  readonly binMs: number;

  constructor(
    readonly periodMs: number,
    /** one Float32 mean per bin, NaN while unseen (Float32: half the state, ample precision for a typical level) */
    readonly means: Float32Array,
    /** neighbouring bins on each side that may also explain a point (timing jitter of a few minutes) */
    readonly jitter: number,
  ) {
    this.binMs = periodMs / means.length;
  }

  binOf(timestampMs: number): number {
    // the fractional part of the period count (a floor instead of a floating-point modulo: cheaper)
    const periods = timestampMs / this.periodMs;
    const bins = this.means.length;
    return Math.min(bins - 1, Math.floor((periods - Math.floor(periods)) * bins));
  }

  /**
   * The residual of `value` against the closest learned mean among the bin and its jitter neighbours; NaN when
   * none of them has been seen.
   */
  residual(bin: number, value: number): number {
    const bins = this.means.length;
    let best = Number.NaN;
    for (let d = -this.jitter; d <= this.jitter; d++) {
      const mean = this.means[(bin + d + bins) % bins] as number;
      if (!Number.isNaN(mean) && !(Math.abs(value - mean) >= Math.abs(best))) best = value - mean;
    }
    return best;
  }

  /** Moves the bin's mean towards `value` by `alpha` (the first value seeds it). */
  update(bin: number, value: number, alpha: number): void {
    const mean = this.means[bin] as number;
    this.means[bin] = !Number.isNaN(mean) ? mean + alpha * (value - mean) : value;
  }
}
