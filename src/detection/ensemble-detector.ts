import type { DetectorSnapshot, StreamingDetector } from './detector.js';
import { RollingMedian } from './rolling-median.js';
import { SeasonalProfile } from './seasonal-profile.js';
import { poissonTailSurprise, RARITY_BINS, RarityCalibrator, residualSurprise } from './surprise.js';

/*
 * The detector (see README.md in this folder for the why and the measurements). Per point:
 *
 * 1. Four predictors each give a standardised residual z and its surprise s = residualSurprise(z):
 *    a robust fast level (Huber-clipped EWMA), the median of the last 16 points, a daily profile and a weekly
 *    profile. They are mixed by track record: a predictor explains the point only at a penalty that grows with how
 *    much worse its recent average surprise is than the best predictor's, and the prediction channel's surprise is
 *    the smallest penalised one ("no trusted model expected this").
 * 2. A change channel: a two-sided CUSUM on the residual from a slow robust level, each step winsorised so a lone
 *    spike cannot trip it; its statistic g has tail P(g > h) ≈ e^−h, so its surprise is g / ln 10.
 * 3. A rate channel: surprising points (prediction surprise > 1.5) counted over about the last 8 points against
 *    their long-run rate (Poisson tail): bursts of moderately odd points.
 * 4. A volatility channel: short- against long-run absolute residual (log ratio, standardised): a series that
 *    goes flat or starts thrashing.
 * 5. Each channel's surprise is capped by how often comparable surprises occurred recently (RarityCalibrator), the
 *    point's surprise is the largest channel's, and the likelihood is the posterior probability of "anomalous" under
 *    a prior of one anomalous point in a thousand: 1 / (1 + 10^(3 − s)).
 *
 * Everything is O(1) per point (the median window and the histograms are fixed, small sizes) and the state is a
 * few typed arrays, serialised by toJSON.
 */

export const SNAPSHOT_VERSION = 1;

const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;

/** daily profile bins: 5 minutes each */
const DAILY_BINS = 288;
/** weekly profile bins: 30 minutes each */
const WEEKLY_BINS = 336;
/** a seasonal predictor starts voting after this many periods of history */
const SEASONAL_PERIODS_BEFORE_USE = 2;
/** neighbouring daily bins (±5 min each) that may explain a point; weekly uses ±1 */
const DAILY_JITTER = 2;
const WEEKLY_JITTER = 1;
/** a seasonal bin moves this far towards the new value per visit (about the last two periods dominate) */
const SEASONAL_WEIGHT_PER_VISIT = 0.5;

/** points in the rolling-median window */
const MEDIAN_WINDOW = 16;
/** EWMA weights per point (floored at 1/n early on so the first points are averaged, not forgotten) */
const FAST_LEVEL_ALPHA = 0.1;
const SLOW_LEVEL_ALPHA = 0.01;
const SCALE_ALPHA = 0.02;
/** the scale floor follows the long-run mean absolute residual (unclipped), so spikes in flat series stay finite */
const LONG_SCALE_ALPHA = 0.0005;
const LONG_SCALE_FLOOR = 0.1;
/** and never drops below this fraction of the level (a constant series is not infinitely surprising to move) */
const RELATIVE_SCALE_FLOOR = 1e-4;
/** level updates are clipped at this many scales (Huber): outliers barely move the level */
const HUBER_CLIP = 1;
/** scale updates are clipped at this many scales: a spike does not blow up the scale, a regime change grows it */
const SCALE_CLIP = 4;

/** predictor track record: EWMA weight of each predictor's surprise */
const TRACK_ALPHA = 0.003;
/** penalty per log10 unit of worse average surprise, and its cap; log10 units */
const TRACK_PENALTY_SLOPE = 10;
const TRACK_PENALTY_CAP = 2;

/** CUSUM allowance and per-step winsorisation, in scales; restart above this statistic */
const CUSUM_ALLOWANCE = 0.5;
const CUSUM_STEP_CLIP = 3;
const CUSUM_RESTART = 30;

/** a point counts as a surprising event for the rate channel above this prediction surprise (p < 0.03) */
const EVENT_SURPRISE = 1.5;
/** short-run event count: EWMA weight (about 8 points); long-run event rate: EWMA weight, and floor */
const EVENT_SHORT_ALPHA = 0.125;
const EVENT_RATE_ALPHA = 0.002;
const EVENT_RATE_FLOOR = 0.002;

/** volatility: short- and long-run EWMA weights of the absolute residual */
const VOLATILITY_SHORT_ALPHA = 0.1;
const VOLATILITY_LONG_ALPHA = 0.005;

/** rarity memory: half-life in points */
const RARITY_HALF_LIFE = 1000;
const CHANNELS = 5;
const W_PRED = 1;
const W_CHANGE = 1;
const W_RATE = 1;
const W_VOL = 1;
const MEAN_SHORT_ALPHA = 0.1;
const MEAN_LONG_ALPHA = 0.002;
const MEAN_CAP = 6;
const MEAN_WEIGHT = 1;
/** channels start feeding their rarity histograms after this many points */
const CALIBRATION_START = 16;
/** prior odds of an anomalous point, as −log10: the likelihood is 0.5 at this surprise */
const PRIOR_SURPRISE = 3;

/** points before the detector may report anything but 0 */
export const DEFAULT_WARM_UP = 128;

/** Scalar state, in snapshot order. */
const SCALARS = [
  'count',
  'firstTimestamp',
  'lastTimestamp',
  'interval',
  'fastLevel',
  'fastScale',
  'slowLevel',
  'slowScale',
  'medianScale',
  'dailyScale',
  'weeklyScale',
  'longScale',
  'cusumUp',
  'cusumDown',
  'eventsShort',
  'eventRate',
  'volatilityShort',
  'volatilityLong',
  'volatilityMean',
  'volatilityScale',
  'trackFast',
  'trackMedian',
  'trackDaily',
  'trackWeekly',
  'meanShort',
  'meanLong',
  'meanScale',
] as const;
type Scalar = (typeof SCALARS)[number];

export interface EnsembleSnapshot extends DetectorSnapshot {
  version: typeof SNAPSHOT_VERSION;
  warmUp: number;
  scalars: number[];
  median: number[];
  /** base64 Float32 */
  daily: string;
  weekly: string;
  rarity: string;
  rarityWeights: number[];
}

export class EnsembleDetector implements StreamingDetector {
  count = 0;
  private firstTimestamp = Number.NaN;
  private lastTimestamp = Number.NaN;
  /** typical spacing of points, ms (robust running estimate; NaN until two points) */
  private interval = Number.NaN;
  private fastLevel = 0;
  private fastScale = 0;
  private slowLevel = 0;
  private slowScale = 0;
  private medianScale = 0;
  private dailyScale = 0;
  private weeklyScale = 0;
  private longScale = 0;
  private cusumUp = 0;
  private cusumDown = 0;
  private eventsShort = 0;
  private eventRate = 0;
  private volatilityShort = 0;
  private volatilityLong = 0;
  private volatilityMean = 0;
  private volatilityScale = 0;
  private trackFast = 0;
  private trackMedian = 0;
  private trackDaily = 0;
  private trackWeekly = 0;
  private meanShort = 0;
  private meanLong = 0;
  private meanScale = 0;

  private readonly window: RollingMedian;
  private readonly daily: SeasonalProfile;
  private readonly weekly: SeasonalProfile;
  private readonly rarityBins: Float32Array;
  private readonly rarity: RarityCalibrator[];

  constructor(
    readonly warmUp: number,
    state?: {
      scalars: Record<Scalar, number>;
      median: number[];
      daily: Float32Array;
      weekly: Float32Array;
      rarity: Float32Array;
      rarityWeights: number[];
    },
  ) {
    this.window = RollingMedian.of(MEDIAN_WINDOW, state?.median ?? []);
    this.daily = new SeasonalProfile(
      DAY_MS,
      state?.daily ?? new Float32Array(DAILY_BINS).fill(Number.NaN),
      DAILY_JITTER,
    );
    this.weekly = new SeasonalProfile(
      WEEK_MS,
      state?.weekly ?? new Float32Array(WEEKLY_BINS).fill(Number.NaN),
      WEEKLY_JITTER,
    );
    this.rarityBins = state?.rarity ?? new Float32Array(CHANNELS * RARITY_BINS);
    const forget = 1 - 0.5 ** (1 / RARITY_HALF_LIFE);
    this.rarity = Array.from(
      { length: CHANNELS },
      (_, c) =>
        new RarityCalibrator(
          this.rarityBins,
          c * RARITY_BINS,
          forget,
          state?.rarityWeights[c] ?? 1,
        ),
    );
    if (state) for (const name of SCALARS) this[name] = state.scalars[name];
  }

  update(timestampMs: number, value: number): number {
    if (!Number.isFinite(value) || !Number.isFinite(timestampMs)) return 0;
    const n = this.count;
    this.observeTime(timestampMs);

    const scaleFloor = Math.max(
      RELATIVE_SCALE_FLOOR * (Math.abs(this.slowLevel) + 1e-6),
      LONG_SCALE_FLOOR * this.longScale,
    );

    // 1. predictors
    const fastResidual = value - this.fastLevel;
    const median = this.window.median();
    const medianResidual = median === median ? value - median : 0;
    const elapsed = timestampMs - this.firstTimestamp;
    const dailyBin = this.daily.binOf(timestampMs);
    const weeklyBin = this.weekly.binOf(timestampMs);
    const dailyResidual =
      elapsed >= SEASONAL_PERIODS_BEFORE_USE * DAY_MS ? this.daily.residual(dailyBin, value) : Number.NaN;
    const weeklyResidual =
      elapsed >= SEASONAL_PERIODS_BEFORE_USE * WEEK_MS ? this.weekly.residual(weeklyBin, value) : Number.NaN;

    const sFast = residualSurprise(fastResidual / (this.fastScale + scaleFloor));
    const sMedian = residualSurprise(medianResidual / (this.medianScale + scaleFloor));
    const hasDaily = dailyResidual === dailyResidual;
    const hasWeekly = weeklyResidual === weeklyResidual;
    const sDaily = hasDaily ? residualSurprise(dailyResidual / (this.dailyScale + scaleFloor)) : 0;
    const sWeekly = hasWeekly ? residualSurprise(weeklyResidual / (this.weeklyScale + scaleFloor)) : 0;

    let bestTrack = Math.min(this.trackFast, this.trackMedian);
    if (hasDaily) bestTrack = Math.min(bestTrack, this.trackDaily);
    if (hasWeekly) bestTrack = Math.min(bestTrack, this.trackWeekly);
    let prediction = Math.min(
      sFast + trackPenalty(this.trackFast - bestTrack),
      sMedian + trackPenalty(this.trackMedian - bestTrack),
    );
    if (hasDaily) prediction = Math.min(prediction, sDaily + trackPenalty(this.trackDaily - bestTrack));
    if (hasWeekly) prediction = Math.min(prediction, sWeekly + trackPenalty(this.trackWeekly - bestTrack));

    // 2. change: CUSUM on the slow robust level's residual
    const slowResidual = value - this.slowLevel;
    const step = clamp(slowResidual / (this.slowScale + scaleFloor), CUSUM_STEP_CLIP);
    this.cusumUp = Math.max(0, this.cusumUp + step - CUSUM_ALLOWANCE);
    this.cusumDown = Math.max(0, this.cusumDown - step - CUSUM_ALLOWANCE);
    const change = Math.max(this.cusumUp, this.cusumDown) / Math.LN10;
    if (this.cusumUp > CUSUM_RESTART || this.cusumDown > CUSUM_RESTART) {
      this.cusumUp = 0;
      this.cusumDown = 0;
    }

    // 3. rate of surprising points
    const event = prediction > EVENT_SURPRISE ? 1 : 0;
    this.eventsShort += EVENT_SHORT_ALPHA * (event - this.eventsShort);
    const rate = poissonTailSurprise(
      this.eventsShort / EVENT_SHORT_ALPHA,
      Math.max(EVENT_RATE_FLOOR, this.eventRate) / EVENT_SHORT_ALPHA,
    );
    this.eventRate += Math.max(EVENT_RATE_ALPHA, 1 / (n + 1)) * (event - this.eventRate);

    // 4. volatility
    const absResidual =
      Math.min(Math.abs(medianResidual), CUSUM_STEP_CLIP * (this.medianScale + scaleFloor)) + scaleFloor;
    this.volatilityShort += VOLATILITY_SHORT_ALPHA * (absResidual - this.volatilityShort);
    this.volatilityLong += Math.max(VOLATILITY_LONG_ALPHA, 1 / (n + 1)) * (absResidual - this.volatilityLong);
    const logRatio = Math.log(this.volatilityShort / this.volatilityLong);
    const volatility =
      n >= 64 ? residualSurprise((logRatio - this.volatilityMean) / (this.volatilityScale + 0.05)) : 0;
    this.volatilityMean += VOLATILITY_LONG_ALPHA * (logRatio - this.volatilityMean);
    this.volatilityScale = updateScale(
      this.volatilityScale,
      logRatio - this.volatilityMean,
      VOLATILITY_LONG_ALPHA,
    );

    // 5. sustained surprise: short-run mean prediction surprise against its long-run distribution
    this.meanShort += MEAN_SHORT_ALPHA * (Math.min(prediction, MEAN_CAP) - this.meanShort);
    const sustained =
      n >= 64 ? MEAN_WEIGHT * residualSurprise(Math.max(0, this.meanShort - this.meanLong) / (this.meanScale + 0.05)) : 0;
    this.meanLong += Math.max(MEAN_LONG_ALPHA, 1 / (n + 1)) * (this.meanShort - this.meanLong);
    this.meanScale = updateScale(this.meanScale, this.meanShort - this.meanLong, Math.max(MEAN_LONG_ALPHA, 1 / (n + 1)));

    // learn
    this.trackFast += TRACK_ALPHA * (sFast - this.trackFast);
    this.trackMedian += TRACK_ALPHA * (sMedian - this.trackMedian);
    this.trackDaily += TRACK_ALPHA * (sDaily - this.trackDaily);
    this.trackWeekly += TRACK_ALPHA * (sWeekly - this.trackWeekly);
    const first = 1 / (n + 1);
    const scaleAlpha = Math.max(SCALE_ALPHA, first);
    this.fastLevel +=
      Math.max(FAST_LEVEL_ALPHA, first) * clamp(fastResidual, HUBER_CLIP * (this.fastScale + scaleFloor));
    this.slowLevel +=
      Math.max(SLOW_LEVEL_ALPHA, first) * clamp(slowResidual, HUBER_CLIP * (this.slowScale + scaleFloor));
    this.longScale += Math.max(LONG_SCALE_ALPHA, first) * (Math.abs(medianResidual) - this.longScale);
    this.fastScale = updateScale(this.fastScale, fastResidual, scaleAlpha);
    this.slowScale = updateScale(this.slowScale, slowResidual, scaleAlpha);
    this.medianScale = updateScale(this.medianScale, medianResidual, scaleAlpha);
    this.learnSeason(this.daily, dailyBin, value, hasDaily, 'dailyScale', scaleAlpha);
    this.learnSeason(this.weekly, weeklyBin, value, hasWeekly, 'weeklyScale', scaleAlpha);
    this.window.push(value);
    this.count = n + 1;

    if (this.count <= CALIBRATION_START) return 0;
    const rarity = this.rarity;
    const surprise = Math.max(
      W_PRED * (rarity[0] as RarityCalibrator).calibrate(prediction),
      W_CHANGE * (rarity[1] as RarityCalibrator).calibrate(change),
      W_RATE * (rarity[2] as RarityCalibrator).calibrate(rate),
      W_VOL * (rarity[3] as RarityCalibrator).calibrate(volatility),
      (rarity[4] as RarityCalibrator).calibrate(sustained),
    );
    if (this.count <= this.warmUp) return 0;
    return 1 / (1 + 10 ** (PRIOR_SURPRISE - surprise));
  }

  private observeTime(timestampMs: number): void {
    if (this.firstTimestamp !== this.firstTimestamp) this.firstTimestamp = timestampMs;
    const gap = timestampMs - this.lastTimestamp;
    if (gap > 0) {
      const interval = this.interval;
      // a robust running spacing: each gap moves it at most 4x, so a long outage does not redefine the cadence
      this.interval =
        interval === interval
          ? interval + 0.1 * (Math.min(Math.max(gap, interval / 4), interval * 4) - interval)
          : gap;
    }
    this.lastTimestamp = timestampMs;
  }

  /** Updates a seasonal bin with a weight per point that gives SEASONAL_WEIGHT_PER_VISIT per visit of the bin. */
  private learnSeason(
    profile: SeasonalProfile,
    bin: number,
    value: number,
    active: boolean,
    scale: 'dailyScale' | 'weeklyScale',
    scaleAlpha: number,
  ): void {
    const own = profile.means[bin] as number;
    if (active && own === own) this[scale] = updateScale(this[scale], value - own, scaleAlpha);
    const pointsPerVisit = this.interval === this.interval ? Math.max(1, profile.binMs / this.interval) : 1;
    const alpha =
      pointsPerVisit === 1
        ? SEASONAL_WEIGHT_PER_VISIT
        : 1 - (1 - SEASONAL_WEIGHT_PER_VISIT) ** (1 / pointsPerVisit);
    profile.update(bin, value, alpha);
  }

  toJSON(): EnsembleSnapshot {
    return {
      version: SNAPSHOT_VERSION,
      warmUp: this.warmUp,
      scalars: SCALARS.map((name) => this[name]),
      median: this.window.values(),
      daily: toBase64(this.daily.means),
      weekly: toBase64(this.weekly.means),
      rarity: toBase64(this.rarityBins),
      rarityWeights: this.rarity.map((r) => r.weight),
    };
  }

  static fromSnapshot(snapshot: EnsembleSnapshot): EnsembleDetector {
    const scalars = Object.fromEntries(
      SCALARS.map((name, i) => [name, snapshot.scalars[i] ?? Number.NaN]),
    ) as Record<Scalar, number>;
    return new EnsembleDetector(snapshot.warmUp, {
      scalars,
      median: snapshot.median,
      daily: fromBase64(snapshot.daily, DAILY_BINS, 'daily'),
      weekly: fromBase64(snapshot.weekly, WEEKLY_BINS, 'weekly'),
      rarity: fromBase64(snapshot.rarity, CHANNELS * RARITY_BINS, 'rarity'),
      rarityWeights: snapshot.rarityWeights,
    });
  }
}

export const SNAPSHOT_SHAPE = {
  scalars: SCALARS.length,
  median: MEDIAN_WINDOW,
  channels: CHANNELS,
} as const;

function trackPenalty(worseBy: number): number {
  return Math.min(TRACK_PENALTY_CAP, TRACK_PENALTY_SLOPE * worseBy);
}

function clamp(x: number, limit: number): number {
  return x > limit ? limit : x < -limit ? -limit : x;
}

/** EWMA of |residual|, each residual clipped at SCALE_CLIP scales (the first one is taken as is) */
function updateScale(scale: number, residual: number, alpha: number): number {
  const size = Math.abs(residual);
  return scale + alpha * ((scale > 0 ? Math.min(size, SCALE_CLIP * scale) : size) - scale);
}

function toBase64(values: Float32Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
}

function fromBase64(text: string, length: number, field: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== length * 4)
    throw new Error(`detector snapshot: ${field} has ${bytes.length} bytes, expected ${length * 4}`);
  const values = new Float32Array(length);
  new Uint8Array(values.buffer).set(bytes);
  return values;
}
