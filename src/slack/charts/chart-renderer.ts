import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { anomalyChartOf } from './anomaly-chart.js';

export type AnomalyChart = NonNullable<ReturnType<typeof anomalyChartOf>>;

/** Renders the anomaly chart of an alert (null when its annotations hold no points to draw). */
export interface ChartRenderer {
  render(name: string, annotations: Record<string, string>): Promise<AnomalyChart | null>;
  close(): Promise<void>;
}

/** The same chart on the calling thread (tests, and the fallback when the worker thread cannot run). */
export const inThreadRenderer: ChartRenderer = {
  render: async (name, annotations) => anomalyChartOf(name, annotations),
  close: async () => {},
};

type Reply =
  | { id: number; chart: { png: Uint8Array; title: string; comment: string } | null }
  | { id: number; error: string };

/**
 * Renders charts on one worker thread, so the burst of charts a wave of anomaly incidents brings (a megabyte of pixels
 * and a deflate each) does not take the thread that ingests metrics and answers webhooks. If the worker cannot start
 * or dies, rendering falls back to the calling thread and says so once.
 */
export function createChartRenderer(log?: Pick<Logger, 'warn'>): ChartRenderer {
  let worker: Worker | null = null;
  let broken = false;
  let nextId = 1;
  const pending = new Map<number, { resolve(c: AnomalyChart | null): void; reject(e: Error): void }>();

  const fail = (error: Error) => {
    if (!broken) log?.warn({ err: error.message }, 'chart worker thread failed; rendering charts in-thread');
    broken = true;
    worker = null;
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };

  const start = (): Worker => {
    const w = startWorker();
    w.unref();
    w.on('message', (reply: Reply) => {
      const p = pending.get(reply.id);
      if (!p) return;
      pending.delete(reply.id);
      if ('error' in reply) p.reject(new Error(reply.error));
      else if (reply.chart === null) p.resolve(null);
      else {
        const { png, title, comment } = reply.chart;
        p.resolve({ png: Buffer.from(png.buffer, png.byteOffset, png.byteLength), title, comment });
      }
    });
    w.on('error', fail);
    w.on('exit', (code) => {
      if (worker === w) fail(new Error(`chart worker exited with code ${code}`));
    });
    return w;
  };

  return {
    async render(name, annotations) {
      if (broken) return anomalyChartOf(name, annotations);
      worker ??= start();
      const id = nextId++;
      const w = worker;
      try {
        return await new Promise<AnomalyChart | null>((resolve, reject) => {
          pending.set(id, { resolve, reject });
          w.postMessage({ id, name, annotations });
        });
      } catch (error) {
        // the worker died under this request: draw it here rather than lose the chart
        if (broken) return anomalyChartOf(name, annotations);
        throw error;
      }
    },
    async close() {
      const w = worker;
      worker = null;
      broken = true;
      if (w) await w.terminate();
    },
  };
}

/**
 * The chart thread's JavaScript heap, bounded for what it holds (one chart at a time, its pixel buffers reused:
 * scratch.ts) instead of V8's defaults for a whole process. A thread that outgrows it dies, and charts fall back to
 * the calling thread.
 */
const CHART_WORKER_LIMITS = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 };

/**
 * The worker's entry. Run from the TypeScript sources (tsx), a worker thread does not inherit tsx's loader, so a small
 * bootstrap registers it first; run from `dist/`, the compiled file starts directly.
 */
function startWorker(): Worker {
  if (import.meta.url.endsWith('.js')) {
    return new Worker(new URL('./chart-worker.js', import.meta.url), { resourceLimits: CHART_WORKER_LIMITS });
  }
  const entry = new URL('./chart-worker.ts', import.meta.url).href;
  return new Worker(
    `(async () => { const { register } = await import('tsx/esm/api'); register(); await import(${JSON.stringify(entry)}); })()`,
    { eval: true, resourceLimits: CHART_WORKER_LIMITS },
  );
}
