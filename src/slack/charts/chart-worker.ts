import { parentPort } from 'node:worker_threads';
import { anomalyChartOf } from './anomaly-chart.js';

/** The worker-thread side of chart-renderer.ts: one request, one chart (or null), the PNG's bytes transferred. */
interface ChartRequest {
  id: number;
  name: string;
  annotations: Record<string, string>;
}

parentPort?.on('message', (request: ChartRequest) => {
  try {
    const chart = anomalyChartOf(request.name, request.annotations);
    if (!chart) {
      parentPort?.postMessage({ id: request.id, chart: null });
      return;
    }
    // a copy in its own buffer: a Buffer may be a slice of Node's shared pool, which must never be transferred
    const png = new Uint8Array(chart.png);
    parentPort?.postMessage({ id: request.id, chart: { png, title: chart.title, comment: chart.comment } }, [
      png.buffer,
    ]);
  } catch (error) {
    parentPort?.postMessage({
      id: request.id,
      error: error instanceof Error ? error.message : String(error),
    });
  }
});
