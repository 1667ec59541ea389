import { type LabelMatcher, type Labels, labelsKey, METRIC_NAME } from './promql/labels.js';
import type { MetricSample } from './sample.js';

/** Default sample retention; milliseconds (15 min). */
const DEFAULT_RETENTION_MS = 15 * 60_000;
/** How far back an instant selector looks for a series' latest sample; milliseconds (Prometheus' default, 5 min). */
export const LOOKBACK_DELTA_MS = 5 * 60_000;

/** One sample: unix milliseconds and value. */
export interface Point {
  t: number;
  v: number;
}

/** A series' samples inside a window (stale markers left out). */
export interface SeriesPoints {
  /** with `__name__` */
  labels: Labels;
  /** oldest first */
  points: Point[];
}

/** A series' latest sample at an instant. */
export interface SeriesSample {
  labels: Labels;
  /** the sample's own time (not the query's); unix milliseconds */
  t: number;
  v: number;
}

interface StoredSeries {
  labels: Labels;
  /** labelsKey(labels); ordering by it is Prometheus' label order */
  key: string;
  name: string;
  times: number[];
  /** null is a stale marker: the series was missing from the scrape at that time */
  values: (number | null)[];
}

/**
 * The sandbox's short in-memory time series store: one `append` per scrape, samples older than the retention
 * dropped, series with no sample left forgotten.
 *
 * Staleness follows Prometheus: a series missing from a scrape gets a stale marker at that scrape's time, so a query
 * at or after it no longer sees the series (instead of seeing its last value for the 5-minute lookback), while a
 * query of an earlier time still does.
 */
export class SeriesStore {
  readonly retentionMs: number;
  readonly #series = new Map<string, StoredSeries>();
  /** metric name → keys of its series */
  readonly #byName = new Map<string, Set<string>>();
  #lastAppendMs = Number.NEGATIVE_INFINITY;

  constructor(opts: { /** milliseconds; default 15 min */ retentionMs?: number } = {}) {
    this.retentionMs = opts.retentionMs ?? DEFAULT_RETENTION_MS;
    if (!(this.retentionMs > 0)) throw new RangeError('retentionMs must be positive');
  }

  /** Time of the latest scrape; unix milliseconds, or -Infinity before the first. */
  get lastAppendMs(): number {
    return this.#lastAppendMs;
  }

  /** Series held (including ones that went stale but still have samples inside the retention). */
  get seriesCount(): number {
    return this.#series.size;
  }

  /** Samples and stale markers held, over all series. */
  get sampleCount(): number {
    let n = 0;
    for (const s of this.#series.values()) n += s.times.length;
    return n;
  }

  /**
   * Records one scrape taken at `atMs` (unix milliseconds). Every series that had a live sample and is missing from
   * `samples` is marked stale at `atMs`. A series listed twice keeps its last value. A scrape that is not later than
   * the previous one (the wall clock stepped back) is dropped and false returned, as Prometheus rejects out-of-order
   * samples rather than failing the scrape loop.
   */
  append(samples: readonly MetricSample[], atMs: number): boolean {
    if (!Number.isFinite(atMs)) throw new RangeError(`scrape time must be a finite number, got ${atMs}`);
    if (atMs <= this.#lastAppendMs) return false;
    const seen = new Set<string>();
    for (const sample of samples) {
      const labels = seriesLabels(sample);
      const key = labelsKey(labels);
      let series = this.#series.get(key);
      if (!series) {
        series = { labels, key, name: sample.name, times: [], values: [] };
        this.#series.set(key, series);
        let keys = this.#byName.get(sample.name);
        if (!keys) {
          keys = new Set();
          this.#byName.set(sample.name, keys);
        }
        keys.add(key);
      }
      if (seen.has(key)) {
        series.values[series.values.length - 1] = sample.value;
      } else {
        series.times.push(atMs);
        series.values.push(sample.value);
        seen.add(key);
      }
    }
    for (const [key, series] of this.#series) {
      if (!seen.has(key) && series.values.length > 0 && series.values[series.values.length - 1] !== null) {
        series.times.push(atMs);
        series.values.push(null);
      }
    }
    this.#lastAppendMs = atMs;
    this.#dropExpired(atMs - this.retentionMs);
    return true;
  }

  /**
   * The latest sample of each matching series in (atMs - lookbackMs, atMs], ordered by labels; a series whose
   * latest entry there is a stale marker is left out.
   */
  selectInstant(
    matchers: readonly LabelMatcher[],
    atMs: number,
    lookbackMs = LOOKBACK_DELTA_MS,
  ): SeriesSample[] {
    const out: SeriesSample[] = [];
    for (const series of this.#matching(matchers)) {
      const i = lastIndexAtOrBefore(series.times, atMs);
      if (i < 0) continue;
      const t = series.times[i] as number;
      const v = series.values[i];
      if (t <= atMs - lookbackMs || v === null || v === undefined) continue;
      out.push({ labels: series.labels, t, v });
    }
    return out;
  }

  /** The samples of each matching series in (fromMs, toMs], ordered by labels; series with none are left out. */
  selectRange(matchers: readonly LabelMatcher[], fromMs: number, toMs: number): SeriesPoints[] {
    const out: SeriesPoints[] = [];
    for (const series of this.#matching(matchers)) {
      const points: Point[] = [];
      for (let i = lastIndexAtOrBefore(series.times, fromMs) + 1; i < series.times.length; i++) {
        const t = series.times[i] as number;
        if (t > toMs) break;
        const v = series.values[i];
        if (v !== null && v !== undefined) points.push({ t, v });
      }
      if (points.length > 0) out.push({ labels: series.labels, points });
    }
    return out;
  }

  /** The series every matcher accepts, ordered by labels. */
  #matching(matchers: readonly LabelMatcher[]): StoredSeries[] {
    // An exact metric name, the usual case, narrows the scan to that name's series.
    const byName = matchers.find((m) => m.name === METRIC_NAME && m.type === '=');
    const candidates = byName
      ? [...(this.#byName.get(byName.value) ?? [])].flatMap((k) => this.#series.get(k) ?? [])
      : [...this.#series.values()];
    return candidates
      .filter((series) => matchers.every((m) => m.matches(series.labels[m.name] ?? '')))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  #dropExpired(cutoffMs: number): void {
    for (const [key, series] of this.#series) {
      let drop = 0;
      while (drop < series.times.length && (series.times[drop] as number) < cutoffMs) drop++;
      if (drop > 0) {
        series.times.splice(0, drop);
        series.values.splice(0, drop);
      }
      // A series whose only entries left are stale markers has nothing to answer with.
      if (series.values.every((v) => v === null)) {
        this.#series.delete(key);
        const keys = this.#byName.get(series.name);
        keys?.delete(key);
        if (keys?.size === 0) this.#byName.delete(series.name);
      }
    }
  }
}

/** The sample's labels with its name as `__name__`; empty values are dropped, as Prometheus drops them at ingestion. */
function seriesLabels(sample: MetricSample): Labels {
  const labels: Record<string, string> = {};
  for (const [name, value] of Object.entries(sample.labels)) if (value !== '') labels[name] = value;
  labels[METRIC_NAME] = sample.name;
  return labels;
}

/** Index of the last time <= t in ascending `times`; -1 when there is none. */
function lastIndexAtOrBefore(times: readonly number[], t: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((times[mid] as number) <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}
