import { z } from 'zod';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|[smhdw]))+$/;

/**
 * Durations as runbooks write them, the Prometheus way plus decimals: "500ms", "30s", "1.5m", "1h30m", "7d", "1w" →
 * milliseconds; null when the text is not one.
 */
export function parseDuration(text: string): number | null {
  const trimmed = text.trim();
  if (!DURATION.test(trimmed)) return null;
  let ms = 0;
  for (const [, n, unit] of trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|[smhdw])/g)) {
    ms += Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  return Math.round(ms);
}

/** A duration field between `minMs` and `maxMs` (inclusive); the error names the accepted range. */
export function durationField(opts: { minMs?: number; maxMs?: number; example?: string } = {}) {
  const min = opts.minMs ?? 1;
  const max = opts.maxMs ?? Number.POSITIVE_INFINITY;
  return z
    .string()
    .refine((v) => parseDuration(v) !== null, {
      error: `expected a duration like ${opts.example ?? '"30s", "15m" or "1h30m"'}`,
      abort: true,
    })
    .refine(
      (v) => {
        const ms = parseDuration(v) as number;
        return ms >= min && ms <= max;
      },
      {
        error: `expected a duration between ${formatDuration(min)} and ${Number.isFinite(max) ? formatDuration(max) : 'any length'}`,
      },
    );
}

/** 90_000 → "1m30s"; for messages. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  let rest = Math.round(ms / 1000);
  let out = '';
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}
