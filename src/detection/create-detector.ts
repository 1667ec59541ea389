import { z } from 'zod';
import type { DetectorSnapshot, StreamingDetector } from './detector.js';
import {
  DEFAULT_WARM_UP,
  EnsembleDetector,
  type EnsembleSnapshot,
  SNAPSHOT_SHAPE,
  SNAPSHOT_VERSION,
} from './ensemble-detector.js';

export const DetectorOptions = z.strictObject({
  /**
   * points before the detector reports anything but 0; default 128 (about 10 h of 5-minute data). The models need
   * a few dozen points for a level and a scale; the rest lets the rarity histograms see what "normal" looks like.
   */
  warmUp: z.number().int().min(16).max(100_000).default(DEFAULT_WARM_UP),
});
export type DetectorOptions = z.input<typeof DetectorOptions>;

/** A snapshot that this build cannot continue from (another layout, or damaged). */
export class DetectorSnapshotError extends Error {
  readonly code = 'detector_snapshot_invalid';
}

const EnsembleSnapshotSchema = z.strictObject({
  version: z.literal(SNAPSHOT_VERSION),
  warmUp: z.number().int().min(16),
  // NaN marks "not seen yet" (a timestamp, the spacing); JSON turns it into null
  scalars: z
    .array(z.custom<number | null>((x) => x === null || typeof x === 'number', 'expected a number or null'))
    .length(SNAPSHOT_SHAPE.scalars),
  median: z.array(z.number()).max(SNAPSHOT_SHAPE.median),
  /** base64; its decoded length is checked against the layout */
  tables: z.string(),
  rarityWeights: z.array(z.number().positive()).length(SNAPSHOT_SHAPE.channels),
});

/** A fresh detector for one series. */
export function createDetector(options?: DetectorOptions): StreamingDetector {
  const { warmUp } = DetectorOptions.parse(options ?? {});
  return new EnsembleDetector(warmUp);
}

/**
 * A detector that continues exactly where the one that produced `snapshot` (its toJSON(), possibly through
 * JSON.stringify/parse) left off. Throws DetectorSnapshotError for another version or a damaged snapshot.
 */
export function restoreDetector(snapshot: DetectorSnapshot): StreamingDetector {
  const parsed = EnsembleSnapshotSchema.safeParse(snapshot);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new DetectorSnapshotError(
      `detector snapshot: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`,
    );
  }
  const scalars = parsed.data.scalars.map((x) => x ?? Number.NaN);
  try {
    return EnsembleDetector.fromSnapshot({ ...parsed.data, scalars } satisfies EnsembleSnapshot);
  } catch (err) {
    throw new DetectorSnapshotError((err as Error).message);
  }
}

/**
 * A detector that continues exactly where the one whose toBytes() gave `bytes` left off. Throws DetectorSnapshotError
 * for another version or a damaged buffer.
 */
export function restoreDetectorBytes(bytes: Uint8Array): StreamingDetector {
  try {
    return EnsembleDetector.fromBytes(bytes);
  } catch (err) {
    throw new DetectorSnapshotError((err as Error).message);
  }
}
