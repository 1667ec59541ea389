/**
 * The streaming anomaly detector's contract: one series at a time, one point at a time, no look-ahead, bounded
 * memory and (amortised) O(1) work per point. Implemented in `src/detection/` (see createDetector there).
 */
export interface StreamingDetector {
  /**
   * Feeds the next point of the series (timestamps non-decreasing; epoch milliseconds) and returns its anomaly
   * likelihood in [0, 1]: 0 while warming up, close to 1 only for points the model finds very unlikely.
   */
  update(timestampMs: number, value: number): number;
  /** points seen so far */
  readonly count: number;
  /** the model's state as plain JSON (numbers, arrays, objects), compact enough to keep per series in Redis */
  toJSON(): DetectorSnapshot;
  /** the same state as one binary buffer (what the bot keeps in Redis); restoreDetectorBytes reads it */
  toBytes(): Uint8Array;
  /** the length of toBytes()' buffer */
  readonly byteLength: number;
  /** toBytes()' bytes written into `target` at `offset`, for a caller that frames them without another copy */
  writeBytes(target: Uint8Array, offset: number): void;
  /**
   * The range the model expects the next value in (for people reading the evidence, not for scoring); null while
   * warming up.
   */
  expectedRange(): { low: number; high: number } | null;
}

/** A detector's state as stored; `version` lets a newer build refuse (and restart) an older layout. */
export interface DetectorSnapshot {
  version: number;
  [key: string]: unknown;
}
