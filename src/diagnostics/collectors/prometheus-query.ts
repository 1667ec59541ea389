import { z } from 'zod';
import type { CollectContext, Collector } from '../collector.js';
import { durationField, parseDuration } from '../duration.js';
import { readBodyCapped } from '../read-body.js';
import { escapeQueryString, renderTemplate } from '../templating.js';

/** Prometheus refuses range queries of more than 11,000 points per series. */
const MAX_POINTS_PER_QUERY = 11_000;
/** smallest default step of a range query; milliseconds (a typical scrape interval) */
const MIN_DEFAULT_STEP_MS = 15_000;
/** series kept in `result.series` */
const MAX_SERIES = 50;
/** points kept per series of a range query (evenly picked, first and last included) */
const MAX_POINTS_KEPT = 60;
/** bytes of a Prometheus answer read before giving up; 20 MiB */
const MAX_BODY_BYTES = 20 * 1024 * 1024;

const Duration = durationField();

export const PrometheusQueryConfig = z
  .strictObject({
    /**
     * PromQL. Placeholders are escaped for a quoted string literal, so write them inside quotes:
     * `up{job="{{labels.job}}"}`.
     */
    query: z.string().min(1).max(10_000),
    /** when set, a range query over [now - range, now] (e.g. "15m"); an instant query at `now` otherwise */
    range: Duration.optional(),
    /** resolution of a range query; default range/60, at least 15s */
    step: Duration.optional(),
    /** how a range series becomes its value; default last */
    reduce: z.enum(['last', 'max', 'min', 'avg']).default('last'),
    /** how several series become `value`; default max ('first' keeps Prometheus' order, e.g. after topk) */
    aggregate: z.enum(['max', 'min', 'sum', 'avg', 'first']).default('max'),
  })
  .superRefine((c, ctx) => {
    if (c.step !== undefined && c.range === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['step'],
        message: 'step only applies to a range query; set range too',
      });
    }
    if (
      c.step !== undefined &&
      c.range !== undefined &&
      (parseDuration(c.range) as number) / (parseDuration(c.step) as number) > MAX_POINTS_PER_QUERY
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['step'],
        message: `range/step is more than ${MAX_POINTS_PER_QUERY} points; use a larger step`,
      });
    }
  });
export type PrometheusQueryConfig = z.infer<typeof PrometheusQueryConfig>;

/** [unix seconds, sample as text] — Prometheus writes samples as strings so NaN and ±Inf survive JSON. */
const Sample = z.tuple([z.number(), z.string()]);
const Labels = z.record(z.string(), z.string());
/** `data` of a successful answer; native histograms come without `value`/`values` and are skipped. */
const PromData = z.discriminatedUnion('resultType', [
  z.object({ resultType: z.literal('scalar'), result: Sample }),
  z.object({ resultType: z.literal('string'), result: Sample }),
  z.object({
    resultType: z.literal('vector'),
    result: z.array(z.object({ metric: Labels.default({}), value: Sample.optional() })),
  }),
  z.object({
    resultType: z.literal('matrix'),
    result: z.array(z.object({ metric: Labels.default({}), values: z.array(Sample).optional() })),
  }),
]);
type PromData = z.infer<typeof PromData>;

const PromEnvelope = z.object({
  status: z.string(),
  data: z.unknown().optional(),
  errorType: z.string().optional(),
  error: z.string().optional(),
});

/** A series as `result` shows it; numbers are JSON-safe (see jsonNumber). */
interface SeriesView {
  labels: Record<string, string>;
  value: number | null;
  min?: number | null;
  max?: number | null;
  /** range queries only: [unix seconds, value] */
  points?: [number, number | null][];
}

/** Prometheus sample text → number; "+Inf"/"-Inf" are not understood by Number(). */
function parseSample(text: string): number {
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

/**
 * JSON has no NaN or Infinity: NaN (no meaningful value, e.g. 0/0) becomes null; ±Inf becomes ±Number.MAX_VALUE so
 * `value > 0.5` still fires and the number survives jsonb.
 */
function jsonNumber(n: number): number | null {
  if (Number.isNaN(n)) return null;
  if (n === Number.POSITIVE_INFINITY) return Number.MAX_VALUE;
  if (n === Number.NEGATIVE_INFINITY) return -Number.MAX_VALUE;
  return n;
}

function reduceValues(values: number[], how: 'last' | 'max' | 'min' | 'avg' | 'sum'): number | null {
  if (values.length === 0) return null;
  switch (how) {
    case 'last':
      return values[values.length - 1] ?? null;
    case 'max':
      return Math.max(...values);
    case 'min':
      return Math.min(...values);
    case 'sum':
      return values.reduce((a, b) => a + b, 0);
    case 'avg':
      return values.reduce((a, b) => a + b, 0) / values.length;
  }
}

/** Up to `max` points evenly spread over the series, first and last included. */
function pickPoints<T>(points: T[], max: number): T[] {
  if (points.length <= max) return points;
  const picked: T[] = [];
  for (let k = 0; k < max; k++) {
    const p = points[Math.round((k * (points.length - 1)) / (max - 1))];
    if (p !== undefined) picked.push(p);
  }
  return picked;
}

function formatNumber(n: number): string {
  if (n >= Number.MAX_VALUE) return '+Inf';
  if (n <= -Number.MAX_VALUE) return '-Inf';
  if (Number.isInteger(n) && Math.abs(n) < 1e15) return String(n);
  const abs = Math.abs(n);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e9)) return n.toExponential(2);
  return String(Number(n.toPrecision(4)));
}

function formatLabels(labels: Record<string, string>): string {
  const text = Object.entries(labels)
    .filter(([k]) => k !== '__name__')
    .slice(0, 4)
    .map(([k, v]) => `${k}="${v}"`)
    .join(', ');
  const clipped = text.length > 120 ? `${text.slice(0, 119)}…` : text;
  return `{${clipped}}`;
}

function apiUrl(base: string, path: string, params: Record<string, string>): URL {
  const url = new URL(path, base.endsWith('/') ? base : `${base}/`);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url;
}

function firstLine(text: string): string {
  const line = text.trim().split('\n', 1)[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause;
    if (cause instanceof Error) return cause.message;
    return err.message;
  }
  return String(err);
}

/** GETs one Prometheus API endpoint and returns `data`; bounded by the step's signal and by `ctx.timeoutMs`. */
async function getPrometheus(url: URL, ctx: CollectContext): Promise<PromData> {
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.timeoutMs)]);
  const timedOut = () => new Error(`timed out after ${ctx.timeoutMs} ms querying Prometheus at ${url.host}`);
  if (signal.aborted) throw timedOut();
  let status: number;
  let text: string;
  try {
    const res = await fetch(url, { signal, headers: { accept: 'application/json' } });
    status = res.status;
    text = await readBodyCapped(res.body, MAX_BODY_BYTES, 'refuse', '; narrow the query');
  } catch (err) {
    if (signal.aborted) throw timedOut();
    throw new Error(`could not query Prometheus at ${url.host}: ${describeError(err)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(
      `Prometheus answered HTTP ${status} with a body that is not JSON: ${firstLine(text) || '(empty)'}`,
    );
  }
  const envelope = PromEnvelope.safeParse(json);
  if (!envelope.success)
    throw new Error(`Prometheus answered HTTP ${status} with JSON that is not an API response`);
  if (envelope.data.status === 'error') {
    const kind = envelope.data.errorType ? `${envelope.data.errorType}: ` : '';
    throw new Error(
      `Prometheus rejected the query (HTTP ${status}): ${kind}${envelope.data.error ?? 'no reason given'}`,
    );
  }
  if (status < 200 || status > 299) throw new Error(`Prometheus answered HTTP ${status}`);
  const data = PromData.safeParse(envelope.data.data);
  if (!data.success) {
    const issue = data.error.issues[0];
    throw new Error(
      `Prometheus answered with unexpected data at data.${issue?.path.join('.') ?? ''}: ${issue?.message}`,
    );
  }
  return data.data;
}

/** One series, reduced: NaN samples are left out (they carry no value), ±Inf are kept. */
function viewSeries(
  labels: Record<string, string>,
  samples: [number, string][],
  reduce: PrometheusQueryConfig['reduce'],
  isRange: boolean,
): { view: SeriesView; value: number | null } {
  const parsed = samples.map(([t, s]) => [t, parseSample(s)] as const);
  const numeric = parsed.map(([, v]) => v).filter((v) => !Number.isNaN(v));
  const reduced = reduceValues(numeric, isRange ? reduce : 'last');
  // the avg of +Inf and -Inf is NaN: no value, like a NaN sample
  const value = reduced === null || Number.isNaN(reduced) ? null : reduced;
  const view: SeriesView = { labels, value: value === null ? null : jsonNumber(value) };
  if (isRange) {
    view.min = numeric.length > 0 ? jsonNumber(Math.min(...numeric)) : null;
    view.max = numeric.length > 0 ? jsonNumber(Math.max(...numeric)) : null;
    view.points = pickPoints(parsed, MAX_POINTS_KEPT).map(([t, v]) => [t, jsonNumber(v)]);
  }
  return { view, value };
}

function summarize(
  config: PrometheusQueryConfig,
  value: number | null,
  series: { view: SeriesView; value: number | null }[],
): string {
  if (series.length === 0) return 'no data';
  if (value === null) return `no numeric data (${series.length} series, all NaN)`;
  const shown = formatNumber(jsonNumber(value) ?? 0);
  const over = config.range ? `${config.reduce} over ${config.range}` : '';
  if (series.length === 1) {
    const labels = series[0] ? formatLabels(series[0].view.labels) : '{}';
    return `${shown}${over ? ` (${over})` : ''}${labels === '{}' ? '' : ` ${labels}`}`;
  }
  const how = `${config.aggregate} of ${series.length} series${over ? `, ${over}` : ''}`;
  const pick =
    config.aggregate === 'max' || config.aggregate === 'min' || config.aggregate === 'first'
      ? series.find((s) => s.value !== null && (config.aggregate === 'first' || s.value === value))
      : undefined;
  const which = { max: 'top', min: 'lowest', first: 'first' } as const;
  const from =
    pick && config.aggregate in which
      ? `; ${which[config.aggregate as keyof typeof which]} ${formatLabels(pick.view.labels)}`
      : '';
  return `${shown} (${how})${from}`;
}

/**
 * A PromQL instant or range query against PROMETHEUS_URL. `value` is one number made from every series (`aggregate`
 * of each series' `reduce`d samples); null when the query returned nothing numeric.
 */
export const prometheusQueryCollector: Collector<PrometheusQueryConfig> = {
  type: 'prometheus_query',
  config: PrometheusQueryConfig,
  // null when the query returns no data, so rules can guard with `value != null`
  valueType: 'dyn',
  render(config, vars) {
    return { ...config, query: renderTemplate(config.query, vars, escapeQueryString) };
  },
  async collect(config, ctx) {
    if (!ctx.prometheusUrl) throw new Error('PROMETHEUS_URL is not configured');
    const nowMs = ctx.now.getTime();
    // Prometheus aborts its own evaluation at `timeout`; whole seconds, at least 1.
    const timeout = `${Math.max(1, Math.floor(ctx.timeoutMs / 1000))}s`;
    let url: URL;
    if (config.range !== undefined) {
      const rangeMs = parseDuration(config.range) as number;
      const stepMs =
        config.step !== undefined
          ? (parseDuration(config.step) as number)
          : Math.max(MIN_DEFAULT_STEP_MS, Math.ceil(rangeMs / 60 / 1000) * 1000);
      url = apiUrl(ctx.prometheusUrl, 'api/v1/query_range', {
        query: config.query,
        start: String((nowMs - rangeMs) / 1000),
        end: String(nowMs / 1000),
        step: String(stepMs / 1000),
        timeout,
      });
    } else {
      url = apiUrl(ctx.prometheusUrl, 'api/v1/query', {
        query: config.query,
        time: String(nowMs / 1000),
        timeout,
      });
    }
    const data = await getPrometheus(url, ctx);

    let series: { view: SeriesView; value: number | null }[];
    switch (data.resultType) {
      case 'string':
        throw new Error(
          'Prometheus returned a string, not a number; the query must return a scalar, vector or matrix',
        );
      case 'scalar':
        series = [viewSeries({}, [data.result], config.reduce, false)];
        break;
      case 'vector':
        series = data.result
          .filter((s) => s.value !== undefined)
          .map((s) => viewSeries(s.metric, s.value ? [s.value] : [], config.reduce, false));
        break;
      case 'matrix':
        series = data.result
          .filter((s) => s.values !== undefined)
          .map((s) => viewSeries(s.metric, s.values ?? [], config.reduce, true));
        break;
    }

    const numeric = series.map((s) => s.value).filter((v): v is number => v !== null);
    const value =
      config.aggregate === 'first' ? (numeric[0] ?? null) : reduceValues(numeric, config.aggregate);
    // The series that decide a max (or min) come first; 'first' keeps Prometheus' own order (topk, sort_desc).
    const ordered =
      config.aggregate === 'first'
        ? series
        : [...series].sort((a, b) => {
            if (a.value === null) return b.value === null ? 0 : 1;
            if (b.value === null) return -1;
            // compared, not subtracted: Inf - Inf is NaN
            const [x, y] = config.aggregate === 'min' ? [a.value, b.value] : [b.value, a.value];
            return x < y ? -1 : x > y ? 1 : 0;
          });
    return {
      value: value === null ? null : jsonNumber(value),
      result: {
        resultType: data.resultType,
        series: ordered.slice(0, MAX_SERIES).map((s) => s.view),
        seriesCount: series.length,
      },
      summary: summarize(config, value, ordered),
    };
  },
};
