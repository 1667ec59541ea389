/**
 * Preloaded into a bench's bot child (`node --import tsx --import ./bench/lib/memory-probe.ts …`, spawned with an
 * `ipc` stdio channel): answers each `{ type: 'memory?' }` message with the child's `process.memoryUsage()` and the
 * heap used just after its latest full (mark-sweep-compact) collection, so the bench can tell a growing JavaScript
 * heap (a leak) from RSS that V8 and malloc keep after collections. The bot's own code is unchanged: without an IPC
 * channel this does nothing.
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';

/** what the probe answers; bytes, as process.memoryUsage() */
export interface MemoryProbeAnswer {
  type: 'memory';
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /**
   * heapUsed read when the latest full collection was reported (what survived it, plus what was allocated between
   * the collection and the report); NaN before the first one. heapUsed at an arbitrary moment is mostly garbage not
   * yet collected and swings by tens of MiB with the collector's timing; this one follows what is retained.
   */
  heapAfterGc: number;
  /** full collections since the process started */
  fullGcs: number;
  /** what V8 reserved for each heap space (new_space, old_space, code_space, large_object_space, …); bytes */
  spaces: Record<string, number>;
}

if (process.send && process.channel) {
  let heapAfterGc = Number.NaN;
  let fullGcs = 0;
  const observer = new PerformanceObserver((list) => {
    const major = list
      .getEntries()
      .some(
        (e) => (e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR,
      );
    if (!major) return;
    fullGcs += 1;
    heapAfterGc = process.memoryUsage().heapUsed;
  });
  observer.observe({ entryTypes: ['gc'] });
  process.on('message', (message: unknown) => {
    if ((message as { type?: unknown } | null)?.type !== 'memory?') return;
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
    const answer: MemoryProbeAnswer = {
      type: 'memory',
      ...process.memoryUsage(),
      heapAfterGc,
      fullGcs,
      spaces,
    };
    process.send?.(answer);
  });
  // the channel must not keep the bot alive when it shuts down
  process.channel.unref();
}
