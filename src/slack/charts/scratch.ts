/** Scratch buffers above this are not kept: a one-off huge chart does not hold its memory for good; bytes */
const SCRATCH_MAX_BYTES = 4 * 2 ** 20;

/**
 * A typed array this thread reuses from chart to chart (grown as needed): `get(length)` answers `length` elements of
 * it, or an array of their own above SCRATCH_MAX_BYTES. For buffers filled and consumed in one synchronous call:
 * a chart's megabytes of pixels otherwise stay allocated until the next collection, and a thread drawing a burst of
 * charts grew its malloc arena by tens of MiB it never gave back.
 */
export function scratchArray<T extends { length: number; subarray(begin: number, end: number): T }>(
  make: (length: number) => T,
  bytesPerElement: number,
): (length: number) => T {
  let kept: T | null = null;
  return (length) => {
    if (length * bytesPerElement > SCRATCH_MAX_BYTES) return make(length);
    if (!kept || kept.length < length) kept = make(length);
    return kept.subarray(0, length);
  };
}
