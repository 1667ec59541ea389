import { Worker } from 'node:worker_threads';

/** one busy-then-sleep cycle of the burn; milliseconds */
const PERIOD_MS = 100;
/** the burn never takes more than this share of a core, whatever is asked */
export const MAX_BURN_CORES = 0.9;

/**
 * Runs in the worker: spins for `cores` of every period, sleeps (Atomics.wait, no CPU) for the rest, and adds the
 * microseconds it spun to a shared counter. Node 20 has no per-thread CPU clock, so spin time stands in for CPU time:
 * the spin never yields, so it is on a core for all of it unless the OS preempts it.
 */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const busyMicros = new BigInt64Array(workerData.busy);
const control = new Int32Array(workerData.control);
const duty = new Float64Array(workerData.duty);
const PERIOD_MS = ${PERIOD_MS};
let sink = 0;
while (Atomics.load(control, 0) === 0) {
  const share = duty[0];
  const start = performance.now();
  while (performance.now() - start < share * PERIOD_MS) sink += Math.sqrt(sink + 1);
  Atomics.add(busyMicros, 0, BigInt(Math.round((performance.now() - start) * 1000)));
  Atomics.wait(control, 0, 0, Math.max(1, (1 - share) * PERIOD_MS));
}
`;

/** A real, bounded CPU burn in a worker thread, at a duty cycle giving `cores` of one core. */
export class CpuBurner {
  private readonly busy = new SharedArrayBuffer(8);
  private readonly control = new SharedArrayBuffer(4);
  private readonly duty = new SharedArrayBuffer(8);
  private readonly worker: Worker;
  private stopped = false;

  /** `cores`: share of one core to burn; clamped to 0..MAX_BURN_CORES */
  constructor(cores: number) {
    this.setCores(cores);
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { busy: this.busy, control: this.control, duty: this.duty },
    });
    // the burn is decoration: it must never keep the process alive on its own
    this.worker.unref();
  }

  setCores(cores: number): void {
    new Float64Array(this.duty)[0] = Math.min(MAX_BURN_CORES, Math.max(0, cores));
  }

  cores(): number {
    return new Float64Array(this.duty)[0] ?? 0;
  }

  /** CPU time the worker has burnt so far; seconds */
  busySeconds(): number {
    return Number(Atomics.load(new BigInt64Array(this.busy), 0)) / 1e6;
  }

  /** Stops the loop at its next period and ends the thread. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const control = new Int32Array(this.control);
    Atomics.store(control, 0, 1);
    Atomics.notify(control, 0);
    await this.worker.terminate();
  }
}
