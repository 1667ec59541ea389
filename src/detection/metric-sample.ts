import { z } from 'zod';

/** Prometheus-style names, so series from Prometheus and from our own senders look alike. */
const SERIES_NAME = /^[A-Za-z_:][A-Za-z0-9_:.-]*$/;
const SeriesName = z
  .string()
  .min(1)
  .max(200)
  .regex(SERIES_NAME, { error: 'expected a metric name (letters, digits, _ : . -)' });

const LabelName = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** a NUL or an unpaired UTF-16 surrogate (with the u flag, a proper pair is one code point, not a surrogate) */
const UNSTORABLE_TEXT = /\0|\p{Cs}/u;

/** at most this many labels per series, so one series key stays small */
const MAX_LABELS = 30;

/** Epoch seconds or milliseconds (told apart by magnitude), or an RFC 3339 string → epoch ms. */
const [MIN_TIMESTAMP, MAX_TIMESTAMP] = [Date.UTC(2000, 0, 1), Date.UTC(2100, 0, 1)];
const Timestamp = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const ms =
    typeof v === 'number'
      ? Math.abs(v) < 1e11
        ? v * 1000
        : v
      : /^\d+(\.\d+)?$/.test(v)
        ? Number(v) * (Number(v) < 1e11 ? 1000 : 1)
        : Date.parse(v);
  if (!Number.isFinite(ms) || ms < MIN_TIMESTAMP || ms > MAX_TIMESTAMP) {
    ctx.issues.push({
      code: 'custom',
      input: v,
      message: 'expected epoch seconds/ms or an RFC 3339 time (2000–2100)',
    });
    return z.NEVER;
  }
  return Math.round(ms);
});

/** One point of one series, as `POST /ingest/metrics` takes it. */
export const MetricSample = z.strictObject({
  series: SeriesName,
  labels: z
    .record(
      z.string().regex(LabelName, { error: 'expected a label name (letters, digits, _)' }),
      // a label value can reach Postgres (an anomaly's alert), which stores neither NUL nor an unpaired surrogate
      z
        .string()
        .max(1000)
        .refine((v) => !UNSTORABLE_TEXT.test(v), {
          error: 'expected text without NUL characters or unpaired UTF-16 surrogates',
        }),
    )
    .default({})
    .refine((l) => Object.keys(l).length <= MAX_LABELS, { error: `expected at most ${MAX_LABELS} labels` }),
  timestamp: Timestamp,
  value: z.number({ error: 'expected a finite number' }).finite({ error: 'expected a finite number' }),
});
export type MetricSample = z.infer<typeof MetricSample>;

/**
 * The common sample — known keys only, a numeric timestamp, labels that are plain short text — checked by hand:
 * exactly what MetricSample accepts and returns for it, at a fraction of the cost (ingestion validates every point).
 * Anything else, valid or not, is null: MetricSample then decides and names the problem.
 */
export function parseCommonSample(item: unknown): MetricSample | null {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return null;
  const { series, labels, timestamp, value } = item as Record<string, unknown>;
  let keys = 0;
  for (const key of Object.keys(item)) {
    if (key !== 'series' && key !== 'labels' && key !== 'timestamp' && key !== 'value') return null;
    keys++;
  }
  if (keys !== (labels === undefined ? 3 : 4)) return null;
  if (typeof series !== 'string' || series.length === 0 || series.length > 200 || !SERIES_NAME.test(series))
    return null;
  if (typeof value !== 'number' || !Number.isFinite(value)) return null;
  if (typeof timestamp !== 'number') return null;
  const ms = Math.abs(timestamp) < 1e11 ? timestamp * 1000 : timestamp;
  if (!Number.isFinite(ms) || ms < MIN_TIMESTAMP || ms > MAX_TIMESTAMP) return null;
  let checked: Record<string, string> = {};
  if (labels !== undefined) {
    if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) return null;
    if (Object.getPrototypeOf(labels) !== Object.prototype) return null;
    const names = Object.keys(labels);
    if (names.length > MAX_LABELS) return null;
    for (const name of names) {
      const text = (labels as Record<string, unknown>)[name];
      if (name === '__proto__' || !LabelName.test(name)) return null;
      if (typeof text !== 'string' || text.length > 1000 || UNSTORABLE_TEXT.test(text)) return null;
    }
    checked = labels as Record<string, string>;
  }
  return { series, labels: checked, timestamp: Math.round(ms), value };
}

/** The body: an array of samples or `{ "samples": [...] }`; each sample is validated on its own. */
export const MetricBatch = z.union([
  z.array(z.unknown()).min(1, { error: 'expected at least one sample' }).max(100_000),
  z.object({ samples: z.array(z.unknown()).min(1, { error: 'expected at least one sample' }).max(100_000) }),
]);
export type MetricBatch = z.infer<typeof MetricBatch>;

/** text JSON.stringify writes as is between its quotes: no quote, backslash, control character or surrogate */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are exactly what JSON escapes
const PLAIN_JSON_TEXT = /^[^"\\\x00-\x1f\ud800-\udfff]*$/;

/** `http_request_duration_seconds{job="api",le="0.5"}`: the series' identity, labels sorted (values as JSON strings). */
export function seriesKeyOf(sample: Pick<MetricSample, 'series' | 'labels'>): string {
  const names = Object.keys(sample.labels);
  if (names.length === 0) return sample.series;
  if (names.length > 1) names.sort();
  let key = `${sample.series}{`;
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    const value = sample.labels[name] as string;
    // the same text as JSON.stringify(value), without its work for the usual plain value
    key += `${i > 0 ? ',' : ''}${name}=${PLAIN_JSON_TEXT.test(value) ? `"${value}"` : JSON.stringify(value)}`;
  }
  return `${key}}`;
}
