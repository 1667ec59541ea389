/**
 * Whether an anomaly has lasted: per series, the flags of its last `n` points (1 = anomalous) as bits of one
 * integer, newest lowest. A run is confirmed when at least `k` of the last `n` points were anomalous, and over after
 * `endAfter` quiet points in a row (hysteresis: a run that flickers stays one run, one incident, instead of ending
 * and opening a new incident each time it comes back). O(1) per point and a few numbers of state.
 */
export interface PersistenceRule {
  /** anomalous points needed… */
  k: number;
  /** …among the last n (at most 30) */
  n: number;
  /** quiet points in a row that end a confirmed run; default 2n */
  endAfter?: number;
}

export interface RunState {
  /** flags of the last n points, newest in bit 0 */
  bits: number;
  /** when the current anomalous run began (its first anomalous point), null when there is none */
  since: number | null;
  /** whether this run was already reported as confirmed */
  reported: boolean;
  /** quiet points in a row since the last anomalous one (counted once the run is reported; absent in old states) */
  quiet?: number;
}

export const EMPTY_RUN: RunState = { bits: 0, since: null, reported: false, quiet: 0 };

function popcount(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

export type RunChange = 'confirmed' | 'ended' | null;

/**
 * Advances the run with one point. Returns `confirmed` the first time the rule holds within a run, `ended` when a
 * confirmed run has had `endAfter` (default 2n) quiet points in a row, else null.
 */
export function advanceRun(
  state: RunState,
  anomalous: boolean,
  timestamp: number,
  rule: PersistenceRule,
): { state: RunState; change: RunChange } {
  const mask = rule.n >= 31 ? 0x7fffffff : (1 << rule.n) - 1;
  const bits = ((state.bits << 1) | (anomalous ? 1 : 0)) & mask;
  if (state.reported) {
    const quiet = anomalous ? 0 : (state.quiet ?? 0) + 1;
    if (quiet >= (rule.endAfter ?? 2 * rule.n)) return { state: EMPTY_RUN, change: 'ended' };
    return { state: { bits, since: state.since, reported: true, quiet }, change: null };
  }
  if (bits === 0) return { state: EMPTY_RUN, change: null };
  const since = state.since ?? (anomalous ? timestamp : null);
  if (popcount(bits) >= rule.k) {
    return { state: { bits, since, reported: true, quiet: 0 }, change: 'confirmed' };
  }
  return { state: { bits, since, reported: false, quiet: 0 }, change: null };
}

/** Confirms a run at once (several signals of one service agree), if it is not already reported. */
export function confirmRun(state: RunState, timestamp: number): { state: RunState; change: RunChange } {
  if (state.reported) return { state, change: null };
  return {
    state: { ...state, since: state.since ?? timestamp, reported: true, quiet: 0 },
    change: 'confirmed',
  };
}
