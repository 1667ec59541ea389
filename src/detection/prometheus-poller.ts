import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { yamlContent } from '../config-file.js';
import { durationField, parseDuration } from '../diagnostics/duration.js';
import { readBodyCapped } from '../diagnostics/read-body.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { DetectionService, IngestResult } from './detection-service.js';
import type { MetricSample } from './metric-sample.js';

/** DETECTION_QUERIES_FILE: the PromQL queries whose series are fed to the detectors, and how often. */
export const DetectionQueries = z.strictObject({
  /** how often every query is evaluated; default 60s */
  interval: durationField({ minMs: 5_000, maxMs: 3_600_000 }).default('60s'),
  queries: z
    .array(
      z.strictObject({
        /** the series name the results are stored under, e.g. `api_p99_latency` */
        name: z.string().regex(/^[A-Za-z_:][A-Za-z0-9_:.-]*$/, { error: 'expected a metric name' }),
        /** an instant PromQL query; each series it returns is one detector */
        query: z.string().min(1),
      }),
    )
    .min(1),
});
export type DetectionQueries = z.infer<typeof DetectionQueries>;

export async function loadDetectionQueries(file: string): Promise<DetectionQueries> {
  const raw = yamlContent(
    await readFile(file, 'utf8'),
    file,
    (message) => new AppError('queries_invalid', message),
  );
  const parsed = DetectionQueries.safeParse(raw);
  if (!parsed.success) {
    throw new AppError(
      'queries_invalid',
      parsed.error.issues.map((i) => `${file}: ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n'),
    );
  }
  return parsed.data;
}

const PromVector = z.object({
  status: z.literal('success'),
  data: z.object({
    resultType: z.literal('vector'),
    result: z.array(
      z.object({ metric: z.record(z.string(), z.string()), value: z.tuple([z.number(), z.string()]) }),
    ),
  }),
});

/** most bytes of one Prometheus answer; 20 MiB */
const MAX_BODY_BYTES = 20 * 1024 * 1024;

/** Evaluates every query once and feeds the returned samples; a failing query is logged and the others go on. */
export async function pollOnce(
  deps: { prometheusUrl: string; detection: DetectionService; log: Logger; timeoutMs?: number },
  queries: DetectionQueries['queries'],
): Promise<IngestResult & { failed: string[] }> {
  const samples: MetricSample[] = [];
  const failed: string[] = [];
  await Promise.all(
    queries.map(async (q) => {
      try {
        const url = new URL(
          'api/v1/query',
          deps.prometheusUrl.endsWith('/') ? deps.prometheusUrl : `${deps.prometheusUrl}/`,
        );
        url.searchParams.set('query', q.query);
        const res = await fetch(url, { signal: AbortSignal.timeout(deps.timeoutMs ?? 10_000) });
        const text = await readBodyCapped(res.body, MAX_BODY_BYTES, 'refuse');
        if (!res.ok) throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
        const parsed = PromVector.safeParse(JSON.parse(text));
        if (!parsed.success) throw new Error('not an instant vector answer');
        for (const { metric, value } of parsed.data.data.result) {
          const v = Number(value[1]);
          if (!Number.isFinite(v)) continue;
          const { __name__: _, ...labels } = metric;
          samples.push({ series: q.name, labels, timestamp: Math.round(value[0] * 1000), value: v });
        }
      } catch (err) {
        failed.push(q.name);
        deps.log.warn({ query: q.name, err: (err as Error).message }, 'detection query failed');
      }
    }),
  );
  const result = await deps.detection.ingest(samples.map((sample, index) => ({ index, sample })));
  return { ...result, failed };
}

/** Polls every `interval`; returns a stop function. */
export function startPoller(
  deps: {
    prometheusUrl: string;
    detection: DetectionService;
    log: Logger;
    onAnomalies?(r: IngestResult): void;
  },
  config: DetectionQueries,
): () => void {
  const every = parseDuration(config.interval) ?? 60_000;
  let running = false;
  const tick = () => {
    if (running) return; // a slow Prometheus must not pile polls up
    running = true;
    pollOnce({ ...deps, timeoutMs: Math.min(every, 30_000) }, config.queries)
      .then((r) => {
        if (r.anomalies.length > 0) deps.onAnomalies?.(r);
      })
      .catch((err: unknown) => deps.log.warn({ err: (err as Error).message }, 'detection poll failed'))
      .finally(() => {
        running = false;
      });
  };
  const timer = setInterval(tick, every);
  timer.unref();
  tick();
  return () => clearInterval(timer);
}
