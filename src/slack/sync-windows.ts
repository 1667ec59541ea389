/**
 * The debounce windows whose delayed Slack sync job this process has already enqueued, so that later changes of the
 * incident inside the same window skip the Redis round trip. An entry is of use only until its window closes: the job
 * then runs, and a later change belongs to a later window (another job id). So closed windows are forgotten, swept at
 * most once per `sweepEveryMs`, and the set holds only the windows of incidents that changed in about the last
 * two sweep periods instead of growing with every window of every incident.
 */
export interface EnqueuedSyncWindows {
  /** true when this process enqueued the job `jobId` and its window has not closed by `now` (ms since the epoch) */
  has(jobId: string, now: number): boolean;
  /** records the job of a window that closes at `closesAt`; ms since the epoch */
  add(jobId: string, closesAt: number, now: number): void;
  /** windows remembered right now (closed ones not yet swept included) */
  readonly size: number;
}

/** `sweepEveryMs`: how often closed windows are dropped; milliseconds (SLACK_SYNC_DEBOUNCE_MS is a good value) */
export function createEnqueuedSyncWindows(sweepEveryMs: number): EnqueuedSyncWindows {
  const closesAtById = new Map<string, number>();
  let nextSweepAt = 0;
  const sweep = (now: number) => {
    if (now < nextSweepAt) return;
    nextSweepAt = now + Math.max(1, sweepEveryMs);
    for (const [id, closesAt] of closesAtById) if (closesAt <= now) closesAtById.delete(id);
  };
  return {
    has(jobId, now) {
      sweep(now);
      const closesAt = closesAtById.get(jobId);
      return closesAt !== undefined && closesAt > now;
    },
    add(jobId, closesAt, now) {
      sweep(now);
      if (closesAt > now) closesAtById.set(jobId, closesAt);
    },
    get size() {
      return closesAtById.size;
    },
  };
}
