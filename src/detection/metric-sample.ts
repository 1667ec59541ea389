import { z } from 'zod';

/** Prometheus-style names, so series from Prometheus and from our own senders look alike. */
const SeriesName = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z_:][A-Za-z0-9_:.-]*$/, { error: 'expected a metric name (letters, digits, _ : . -)' });

const LabelName = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** at most this many labels per series, so one series key stays small */
const MAX_LABELS = 30;

/** Epoch seconds or milliseconds (told apart by magnitude), or an RFC 3339 string → epoch ms. */
const Timestamp = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const ms =
    typeof v === 'number'
      ? Math.abs(v) < 1e11
        ? v * 1000
        : v
      : /^\d+(\.\d+)?$/.test(v)
        ? Number(v) * (Number(v) < 1e11 ? 1000 : 1)
        : Date.parse(v);
  if (!Number.isFinite(ms) || ms < Date.UTC(2000, 0, 1) || ms > Date.UTC(2100, 0, 1)) {
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
      z.string().max(1000),
    )
    .default({})
    .refine((l) => Object.keys(l).length <= MAX_LABELS, { error: `expected at most ${MAX_LABELS} labels` }),
  timestamp: Timestamp,
  value: z.number({ error: 'expected a finite number' }).finite({ error: 'expected a finite number' }),
});
export type MetricSample = z.infer<typeof MetricSample>;

/** The body: an array of samples or `{ "samples": [...] }`; each sample is validated on its own. */
export const MetricBatch = z.union([
  z.array(z.unknown()).min(1, { error: 'expected at least one sample' }).max(100_000),
  z.object({ samples: z.array(z.unknown()).min(1, { error: 'expected at least one sample' }).max(100_000) }),
]);
export type MetricBatch = z.infer<typeof MetricBatch>;

/** `http_request_duration_seconds{job="api",le="0.5"}`: the series' identity, labels sorted. */
export function seriesKeyOf(sample: Pick<MetricSample, 'series' | 'labels'>): string {
  const labels = Object.keys(sample.labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(sample.labels[k])}`)
    .join(',');
  return labels ? `${sample.series}{${labels}}` : sample.series;
}
