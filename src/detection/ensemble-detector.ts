import type { DetectorSnapshot, StreamingDetector } from './detector.js';
import { RollingMedian } from './rolling-median.js';
import { SeasonalProfile } from './seasonal-profile.js';
import {
  FRESH_HISTORY,
  ORDINARY,
  SEQUENCE_CELLS,
  SequenceMemory,
  STEP_DOWN,
  STEP_UP,
} from './sequence-memory.js';
import {
  poissonTailSurprise,
  RARITY_BINS,
  RARITY_TOLERANCE,
  RarityCalibrator,
  residualSurprise,
} from './surprise.js';

/*
 * The detector (see README.md in this folder for the why and the measurements). Surprise is −log10 p. Per point:
 *
 * 1. Four predictors each give a standardised residual z and its surprise s = residualSurprise(z): a robust fast
 *    level (Huber-clipped EWMA), the median of the last 16 points, a daily and a weekly profile. They are mixed by
 *    track record: each predictor's log-loss (surprise + log10 of its scale) is averaged, a predictor explains the
 *    point only at a penalty that grows with how much worse its average is than the best one's, and the prediction
 *    surprise is the smallest penalised loss less the best model's scale term ("no trusted model expected this").
 * 2. A change channel: a two-sided CUSUM on the residual from a slow robust level, each step winsorised so a lone
 *    spike cannot trip it; its statistic g has tail P(g > h) ≈ e^−h, so its surprise is g / ln 10.
 * 3. A rate channel: surprising points (prediction surprise > 1.5) counted over about the last 8 points against
 *    their long-run rate (Poisson tail): bursts of moderately odd points.
 * 4. A volatility channel: short- against long-run absolute residual (log ratio, standardised): a series that
 *    goes flat or starts thrashing.
 * 5. A sequence channel: each point's kind (large step down, ordinary, large step up against the rolling median)
 *    and how often that kind followed the two preceding kinds (SequenceMemory): the same values in a new order.
 * 6. Each channel's surprise is capped by how often comparable surprises occurred recently (RarityCalibrator), the
 *    point's surprise is the largest channel's, and the likelihood is the posterior probability of "anomalous" under
 *    a prior of one anomalous point in 10^4: 1 / (1 + 10^(4 − s)).
 *
 * Everything is O(1) per point (the median window and the histograms are fixed, small sizes) and the state is a
 * few typed arrays, serialised by toJSON (plain JSON) or toBytes (one binary buffer, what the bot keeps in Redis).
 */

export const SNAPSHOT_VERSION = 2;

const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;

/** daily profile bins: 5 minutes each */
const DAILY_BINS = 288;
/** weekly profile bins: an hour each */
const WEEKLY_BINS = 168;
/** a seasonal predictor starts voting after this many periods of history */
const SEASONAL_PERIODS_BEFORE_USE = 2;
/** ... and starts building its track record (every bin then has a value) after one period */
const SEASONAL_PERIODS_BEFORE_TRACK = 1;
/** neighbouring daily bins (±5 min each) that may explain a point; weekly uses ±1 (an hour) */
const DAILY_JITTER = 2;
const WEEKLY_JITTER = 1;
/** a seasonal bin moves this far towards the new value per visit (about the last two periods dominate) */
const SEASONAL_WEIGHT_PER_VISIT = 0.5;
const LOG_KEEP_PER_VISIT = Math.log1p(-SEASONAL_WEIGHT_PER_VISIT);

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

/** predictor track record: EWMA weight of each predictor's log-loss (surprise + log10 scale) */
const TRACK_ALPHA = 0.003;
/** penalty per log10 unit of worse average log-loss, and its cap; log10 units */
const TRACK_PENALTY_SLOPE = 10;
const TRACK_PENALTY_CAP = 2;

/** CUSUM allowance and per-step winsorisation, in scales; restart above this statistic */
const CUSUM_ALLOWANCE = 0.5;
const CUSUM_STEP_CLIP = 3;
const CUSUM_RESTART = 30;

/** a point counts as a surprising event for the rate channel above this prediction surprise (p ≈ 0.03) */
const EVENT_SURPRISE = 1.5;
/** short-run event count: EWMA weight (about 8 points); long-run event rate: EWMA weight, and floor */
const EVENT_SHORT_ALPHA = 0.125;
const EVENT_RATE_ALPHA = 0.002;
const EVENT_RATE_FLOOR = 0.002;

/** volatility: short- and long-run EWMA weights of the absolute residual */
const VOLATILITY_SHORT_ALPHA = 0.1;
const VOLATILITY_LONG_ALPHA = 0.005;
/** residuals are clipped at this many scales before entering the volatility averages */
const VOLATILITY_CLIP = 3;
/**
 * the volatility statistic climbs over tens of points when a series goes flat; its rarity histogram learns it this
 * many points late so the climb does not cap itself
 */
const VOLATILITY_RARITY_DELAY = 32;

/** sequence: a point is a large step when its rolling-median residual reaches this many median scales */
const SEQUENCE_STEP = 6;
/** sequence memory: half-life of its counts, in points */
const SEQUENCE_HALF_LIFE = 4000;

/** rarity memory: half-life in points */
const RARITY_HALF_LIFE = 1000;
const CHANNELS = 5;
/** per channel (prediction, change, rate, volatility, sequence): delay line length of its rarity histogram */
const RARITY_DELAYS = [0, 0, 0, VOLATILITY_RARITY_DELAY, 0];
/** per channel: remembered surprises at least (s − tolerance) count as comparable to s */
const RARITY_TOLERANCES = [2, RARITY_TOLERANCE, 2, 2, 1];
/**
 * The rarity histograms are interleaved (bin j of channel c at j × CHANNELS + c), so the low bins nearly every point
 * touches share one cache line across the five channels; the delay lines follow them.
 */
const RARITY_DELAY_OFFSETS = RARITY_DELAYS.map(
  (_, c) => CHANNELS * RARITY_BINS + RARITY_DELAYS.slice(0, c).reduce((sum, delay) => sum + delay, 0),
);
const RARITY_LENGTH = CHANNELS * RARITY_BINS + RARITY_DELAYS.reduce((a, b) => a + b, 0);
const SEQUENCE_OFFSET = DAILY_BINS + WEEKLY_BINS + RARITY_LENGTH;
const TABLES_LENGTH = SEQUENCE_OFFSET + SEQUENCE_CELLS;
/** channels start feeding their rarity histograms after this many points */
const CALIBRATION_START = 16;
/** prior odds of an anomalous point, as −log10: the likelihood is 0.5 at this surprise */
const PRIOR_SURPRISE = 4;

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
  'sequenceWeight',
  'sequenceHistory',
] as const;

export interface EnsembleSnapshot extends DetectorSnapshot {
  version: typeof SNAPSHOT_VERSION;
  warmUp: number;
  scalars: number[];
  median: number[];
  /** base64 of the Float32 tables: the daily profile, the weekly profile, the rarity histograms, the sequence counts */
  tables: string;
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
  private sequenceWeight = 1;
  private sequenceHistory = FRESH_HISTORY;

  /** seasonalAlpha's memo (derived, not state) */
  private alphaFor = Number.NaN;
  private alphaValue = SEASONAL_WEIGHT_PER_VISIT;
  private readonly window: RollingMedian;
  private readonly daily: SeasonalProfile;
  private readonly weekly: SeasonalProfile;
  private readonly tables: Float32Array;
  private readonly rarityBins: Float32Array;
  private readonly rarity: RarityCalibrator[];
  private readonly sequence: SequenceMemory;

  constructor(
    readonly warmUp: number,
    state?: {
      scalars: readonly number[];
      median: number[];
      tables: Float32Array;
      rarityWeights: number[];
    },
  ) {
    this.window = RollingMedian.of(MEDIAN_WINDOW, state?.median ?? []);
    // one allocation for every table: a detector's state sits together in memory and restores with one copy
    this.tables =
      state?.tables ?? new Float32Array(TABLES_LENGTH).fill(Number.NaN, 0, DAILY_BINS + WEEKLY_BINS);
    this.daily = new SeasonalProfile(DAY_MS, this.tables.subarray(0, DAILY_BINS), DAILY_JITTER);
    this.weekly = new SeasonalProfile(
      WEEK_MS,
      this.tables.subarray(DAILY_BINS, DAILY_BINS + WEEKLY_BINS),
      WEEKLY_JITTER,
    );
    this.rarityBins = this.tables.subarray(DAILY_BINS + WEEKLY_BINS, SEQUENCE_OFFSET);
    const forget = 1 - 0.5 ** (1 / RARITY_HALF_LIFE);
    this.rarity = Array.from(
      { length: CHANNELS },
      (_, c) =>
        new RarityCalibrator(
          this.rarityBins,
          c,
          CHANNELS,
          forget,
          RARITY_DELAYS[c] as number,
          RARITY_DELAY_OFFSETS[c] as number,
          state?.rarityWeights[c] ?? 1,
          // every channel is offered one surprise per point once calibration starts
          Math.max(0, (state?.scalars[0] ?? 0) - CALIBRATION_START),
          RARITY_TOLERANCES[c] as number,
        ),
    );
    if (state)
      for (let i = 0; i < SCALARS.length; i++)
        this[SCALARS[i] as (typeof SCALARS)[number]] = state.scalars[i] ?? Number.NaN;
    this.sequence = new SequenceMemory(
      this.tables.subarray(SEQUENCE_OFFSET),
      SEQUENCE_HALF_LIFE,
      this.sequenceWeight,
      this.sequenceHistory,
    );
  }

  /** the robust fast level ± 4 of its scales: where the level model puts nearly all normal points */
  expectedRange(): { low: number; high: number } | null {
    if (this.count < this.warmUp || !Number.isFinite(this.fastLevel) || !Number.isFinite(this.fastScale))
      return null;
    const half = 4 * this.fastScale;
    return { low: this.fastLevel - half, high: this.fastLevel + half };
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
    const medianResidual = !Number.isNaN(median) ? value - median : 0;
    const elapsed = timestampMs - this.firstTimestamp;
    const dailyBin = this.daily.binOf(timestampMs);
    const weeklyBin = this.weekly.binOf(timestampMs);
    const dailyResidual =
      elapsed >= SEASONAL_PERIODS_BEFORE_TRACK * DAY_MS ? this.daily.residual(dailyBin, value) : Number.NaN;
    const weeklyResidual =
      elapsed >= SEASONAL_PERIODS_BEFORE_TRACK * WEEK_MS
        ? this.weekly.residual(weeklyBin, value)
        : Number.NaN;

    const sFast = residualSurprise(fastResidual / (this.fastScale + scaleFloor));
    const sMedian = residualSurprise(medianResidual / (this.medianScale + scaleFloor));
    const hasDaily = !Number.isNaN(dailyResidual);
    const hasWeekly = !Number.isNaN(weeklyResidual);
    const dailyVotes = hasDaily && elapsed >= SEASONAL_PERIODS_BEFORE_USE * DAY_MS;
    const weeklyVotes = hasWeekly && elapsed >= SEASONAL_PERIODS_BEFORE_USE * WEEK_MS;
    const sDaily = hasDaily ? residualSurprise(dailyResidual / (this.dailyScale + scaleFloor)) : 0;
    const sWeekly = hasWeekly ? residualSurprise(weeklyResidual / (this.weeklyScale + scaleFloor)) : 0;

    // log-loss of each predictor's density: the surprise plus log10 of its scale (a vaguer model pays for it)
    const lossFast = sFast + Math.log10(this.fastScale + scaleFloor);
    const lossMedian = sMedian + Math.log10(this.medianScale + scaleFloor);
    const lossDaily = hasDaily ? sDaily + Math.log10(this.dailyScale + scaleFloor) : 0;
    const lossWeekly = hasWeekly ? sWeekly + Math.log10(this.weeklyScale + scaleFloor) : 0;
    let bestTrack = this.trackFast;
    let reference = lossFast - sFast;
    if (this.trackMedian < bestTrack) {
      bestTrack = this.trackMedian;
      reference = lossMedian - sMedian;
    }
    if (dailyVotes && this.trackDaily < bestTrack) {
      bestTrack = this.trackDaily;
      reference = lossDaily - sDaily;
    }
    if (weeklyVotes && this.trackWeekly < bestTrack) {
      bestTrack = this.trackWeekly;
      reference = lossWeekly - sWeekly;
    }
    let explained = Math.min(
      lossFast + trackPenalty(this.trackFast - bestTrack),
      lossMedian + trackPenalty(this.trackMedian - bestTrack),
    );
    if (dailyVotes) explained = Math.min(explained, lossDaily + trackPenalty(this.trackDaily - bestTrack));
    if (weeklyVotes) explained = Math.min(explained, lossWeekly + trackPenalty(this.trackWeekly - bestTrack));
    const prediction = Math.max(0, explained - reference);

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
    const relativeFloor = RELATIVE_SCALE_FLOOR * (Math.abs(this.slowLevel) + 1e-6);
    const absResidual =
      Math.min(Math.abs(medianResidual), VOLATILITY_CLIP * (this.medianScale + scaleFloor)) + relativeFloor;
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

    // 5. sequence: this point's kind after the two before it (learning starts with calibration)
    let sequence = 0;
    if (n >= CALIBRATION_START) {
      const large = SEQUENCE_STEP * (this.medianScale + scaleFloor);
      const kind = medianResidual >= large ? STEP_UP : medianResidual <= -large ? STEP_DOWN : ORDINARY;
      sequence = this.sequence.surprise(kind);
      this.sequenceWeight = this.sequence.weight;
      this.sequenceHistory = this.sequence.history;
    }

    // learn
    this.trackFast += TRACK_ALPHA * (lossFast - this.trackFast);
    this.trackMedian += TRACK_ALPHA * (lossMedian - this.trackMedian);
    // a seasonal predictor without residuals yet inherits the worse level predictor's record: it earns trust
    const levelTrack = Math.max(this.trackFast, this.trackMedian);
    this.trackDaily = hasDaily ? this.trackDaily + TRACK_ALPHA * (lossDaily - this.trackDaily) : levelTrack;
    this.trackWeekly = hasWeekly
      ? this.trackWeekly + TRACK_ALPHA * (lossWeekly - this.trackWeekly)
      : levelTrack;
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
    // seasonal scales follow the residual from the bin's own mean (not a jitter neighbour's)
    const dailyOwn = this.daily.means[dailyBin] as number;
    if (hasDaily && !Number.isNaN(dailyOwn))
      this.dailyScale = updateScale(this.dailyScale, value - dailyOwn, scaleAlpha);
    this.daily.update(dailyBin, value, this.seasonalAlpha(this.daily.binMs));
    const weeklyOwn = this.weekly.means[weeklyBin] as number;
    if (hasWeekly && !Number.isNaN(weeklyOwn))
      this.weeklyScale = updateScale(this.weeklyScale, value - weeklyOwn, scaleAlpha);
    this.weekly.update(weeklyBin, value, this.seasonalAlpha(this.weekly.binMs));
    this.window.push(value);
    this.count = n + 1;

    if (this.count <= CALIBRATION_START) return 0;
    const rarity = this.rarity;
    const surprise = Math.max(
      (rarity[0] as RarityCalibrator).calibrate(prediction),
      (rarity[1] as RarityCalibrator).calibrate(change),
      (rarity[2] as RarityCalibrator).calibrate(rate),
      (rarity[3] as RarityCalibrator).calibrate(volatility),
      (rarity[4] as RarityCalibrator).calibrate(sequence),
    );
    if (this.count <= this.warmUp) return 0;
    return 1 / (1 + 10 ** (PRIOR_SURPRISE - surprise));
  }

  private observeTime(timestampMs: number): void {
    if (Number.isNaN(this.firstTimestamp)) this.firstTimestamp = timestampMs;
    const gap = timestampMs - this.lastTimestamp;
    if (gap > 0) {
      const interval = this.interval;
      // a robust running spacing: each gap moves it at most 4x, so a long outage does not redefine the cadence
      this.interval = !Number.isNaN(interval)
        ? interval + 0.1 * (Math.min(Math.max(gap, interval / 4), interval * 4) - interval)
        : gap;
    }
    this.lastTimestamp = timestampMs;
  }

  /**
   * The weight per point that moves a seasonal bin SEASONAL_WEIGHT_PER_VISIT of the way per visit, however many
   * points a visit holds (one with 5-minute data in 5-minute bins, twelve in hourly bins).
   */
  private seasonalAlpha(binMs: number): number {
    const pointsPerVisit = binMs / this.interval;
    if (!(pointsPerVisit > 1)) return SEASONAL_WEIGHT_PER_VISIT;
    // a pure function of pointsPerVisit, which stops changing once the spacing has settled: remember the last one
    if (pointsPerVisit !== this.alphaFor) {
      this.alphaFor = pointsPerVisit;
      this.alphaValue = -Math.expm1(LOG_KEEP_PER_VISIT / pointsPerVisit);
    }
    return this.alphaValue;
  }

  toJSON(): EnsembleSnapshot {
    return {
      version: SNAPSHOT_VERSION,
      warmUp: this.warmUp,
      scalars: SCALARS.map((name) => this[name]),
      median: this.window.values(),
      tables: toBase64(this.tables),
      rarityWeights: this.rarity.map((r) => r.weight),
    };
  }

  /**
   * The same state as toJSON in one buffer (see BINARY below): about 3 KB instead of 4.4 KB of JSON, and written and
   * read back without building any intermediate objects. Numbers keep every bit, so a restored detector continues
   * exactly as this one would. The Float32 tables are in this machine's byte order (little-endian on x86 and ARM).
   */
  toBytes(): Uint8Array {
    const bytes = new Uint8Array(BINARY.length);
    this.writeBytes(bytes, 0);
    return bytes;
  }

  get byteLength(): number {
    return BINARY.length;
  }

  /** toBytes() into `target` at `offset` (any alignment): one copy from a scratch buffer, nothing allocated */
  writeBytes(target: Uint8Array, offset: number): void {
    const median = this.window.values();
    const { head, numbers, tables, bytes } = SCRATCH;
    head.setUint16(0, BINARY.magic);
    head.setUint8(2, SNAPSHOT_VERSION);
    head.setUint8(3, median.length);
    head.setUint32(4, this.warmUp, true);
    let i = 0;
    for (const name of SCALARS) numbers[i++] = this[name];
    for (const r of this.rarity) numbers[i++] = r.weight;
    for (const v of median) numbers[i++] = v;
    numbers.fill(0, i);
    tables.set(this.tables);
    target.set(bytes, offset);
  }

  /** The detector toBytes() wrote. Throws (a plain Error naming what is wrong) on a foreign or damaged buffer. */
  static fromBytes(bytes: Uint8Array): EnsembleDetector {
    if (bytes.length !== BINARY.length)
      throw new Error(`detector snapshot: ${bytes.length} bytes, expected ${BINARY.length}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint16(0) !== BINARY.magic)
      throw new Error('detector snapshot: not a binary detector snapshot');
    const version = view.getUint8(2);
    if (version !== SNAPSHOT_VERSION)
      throw new Error(`detector snapshot: version ${version}, this build reads ${SNAPSHOT_VERSION}`);
    const medianCount = view.getUint8(3);
    const warmUp = view.getUint32(4, true);
    if (medianCount > MEDIAN_WINDOW) throw new Error(`detector snapshot: ${medianCount} median values`);
    if (warmUp < 16) throw new Error(`detector snapshot: warm-up ${warmUp}`);
    // the buffer may sit at any offset (a slice of a socket read): read the numbers through the view
    const number = (i: number) => view.getFloat64(BINARY.header + 8 * i, true);
    const scalars = Array.from({ length: SCALARS.length }, (_, i) => number(i));
    const rarityWeights = Array.from({ length: CHANNELS }, (_, c) => number(SCALARS.length + c));
    if (!rarityWeights.every((w) => w > 0))
      throw new Error('detector snapshot: rarity weights must be positive');
    const median = Array.from({ length: medianCount }, (_, i) => number(SCALARS.length + CHANNELS + i));
    const tables = new Float32Array(TABLES_LENGTH);
    new Uint8Array(tables.buffer).set(bytes.subarray(BINARY.tablesAt, BINARY.length));
    return new EnsembleDetector(warmUp, { scalars, median, tables, rarityWeights });
  }

  static fromSnapshot(snapshot: EnsembleSnapshot): EnsembleDetector {
    return new EnsembleDetector(snapshot.warmUp, {
      scalars: snapshot.scalars,
      median: snapshot.median,
      tables: fromBase64(snapshot.tables, TABLES_LENGTH, 'tables'),
      rarityWeights: snapshot.rarityWeights,
    });
  }
}

/**
 * toBytes' layout: a header of 8 bytes (magic "AD", the snapshot version, how many median values, the warm-up as a
 * little-endian u32), then Float64 numbers (the scalars, the rarity weights, the median window padded to its size),
 * then the Float32 tables.
 */
const BINARY = (() => {
  const header = 8;
  const numbers = SCALARS.length + CHANNELS + MEDIAN_WINDOW;
  const tablesAt = header + 8 * numbers;
  return { magic: 0x4144, header, numbers, tablesAt, length: tablesAt + 4 * TABLES_LENGTH };
})();

/** where writeBytes lays a snapshot out before copying it (one thread, no await in between: safe to share) */
const SCRATCH = (() => {
  const buffer = new ArrayBuffer(BINARY.length);
  return {
    bytes: new Uint8Array(buffer),
    head: new DataView(buffer),
    numbers: new Float64Array(buffer, BINARY.header, BINARY.numbers),
    tables: new Float32Array(buffer, BINARY.tablesAt, TABLES_LENGTH),
  };
})();

export const SNAPSHOT_SHAPE = {
  scalars: SCALARS.length,
  median: MEDIAN_WINDOW,
  channels: CHANNELS,
} as const;

function trackPenalty(worseBy: number): number {
  return Math.min(TRACK_PENALTY_CAP, TRACK_PENALTY_SLOPE * worseBy);
}

function clamp(x: number, limit: number): number {
  return x > limit ? limit : Math.max(x, -limit);
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
