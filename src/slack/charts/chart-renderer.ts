import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { anomalyChartOf } from './anomaly-chart.js';

export type AnomalyChart = NonNullable<ReturnType<typeof anomalyChartOf>>;

/** Renders the anomaly chart of an alert (null when its annotations hold no points to draw). */
export interface ChartRenderer {
  render(name: string, annotations: Record<string, string>): Promise<AnomalyChart | null>;
  close(): Promise<void>;
  /** whether a chart thread is running now, and how many were started so far (0 and false for the in-thread one) */
  thread(): { running: boolean; starts: number };
}

/** The same chart on the calling thread (tests, and the fallback when the worker thread cannot run). */
export const inThreadRenderer: ChartRenderer = {
  render: async (name, annotations) => anomalyChartOf(name, annotations),
  close: async () => {},
  thread: () => ({ running: false, starts: 0 }),
};

type Reply =
  | { id: number; chart: { png: Uint8Array; title: string; comment: string } | null }
  | { id: number; error: string };

/**
 * How long the chart thread is kept after its last chart; milliseconds. Charts come with anomaly incidents, in waves
 * minutes or hours apart, and the thread holds a whole JavaScript heap (measured: 18–35 MiB of the process's private
 * memory under tsx, depending on what it drew last); starting it again costs a fraction of a second.
 */
export const CHART_THREAD_IDLE_MS = 15_000;

/**
 * Renders charts on one worker thread, so the burst of charts a wave of anomaly incidents brings (a megabyte of pixels
 * and a deflate each) does not take the thread that ingests metrics and answers webhooks. The thread starts with the
 * first chart of a wave and stops `idleMs` after the last, so its heap is not kept between waves. If the worker cannot
 * start or dies, rendering falls back to the calling thread and says so once.
 */
export function createChartRenderer(
  log?: Pick<Logger, 'warn'>,
  opts: { idleMs?: number } = {},
): ChartRenderer {
  const idleMs = opts.idleMs ?? CHART_THREAD_IDLE_MS;
  let worker: Worker | null = null;
  let broken = false;
  let nextId = 1;
  let starts = 0;
  let idleTimer: NodeJS.Timeout | null = null;
  const pending = new Map<number, { resolve(c: AnomalyChart | null): void; reject(e: Error): void }>();

  const stopIdleTimer = () => {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = null;
  };
  /** after the last pending chart: stop the thread if no chart comes within idleMs */
  const armIdleTimer = () => {
    stopIdleTimer();
    if (pending.size > 0 || !worker) return;
    idleTimer = setTimeout(() => {
      idleTimer = null;
      const w = worker;
      if (!w || pending.size > 0) return;
      // cleared first, so its exit is not taken for a failure
      worker = null;
      w.terminate().catch(() => {});
    }, idleMs);
    idleTimer.unref();
  };

  const fail = (error: Error) => {
    if (!broken) log?.warn({ err: error.message }, 'chart worker thread failed; rendering charts in-thread');
    broken = true;
    worker = null;
    stopIdleTimer();
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };

  const start = (): Worker => {
    const w = startWorker();
    starts += 1;
    w.unref();
    w.on('message', (reply: Reply) => {
      const p = pending.get(reply.id);
      if (!p) return;
      pending.delete(reply.id);
      if (pending.size === 0) armIdleTimer();
      if ('error' in reply) p.reject(new Error(reply.error));
      else if (reply.chart === null) p.resolve(null);
      else {
        const { png, title, comment } = reply.chart;
        p.resolve({ png: Buffer.from(png.buffer, png.byteOffset, png.byteLength), title, comment });
      }
    });
    // a thread stopped for being idle is no longer `worker`: what it says does not concern the charts in flight
    w.on('error', (error) => {
      if (worker === w) fail(error);
    });
    w.on('exit', (code) => {
      if (worker === w) fail(new Error(`chart worker exited with code ${code}`));
    });
    return w;
  };

  return {
    async render(name, annotations) {
      if (broken) return anomalyChartOf(name, annotations);
      stopIdleTimer();
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
      stopIdleTimer();
      if (w) await w.terminate();
    },
    thread: () => ({ running: worker !== null, starts }),
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
