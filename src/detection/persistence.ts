/**
 * Whether an anomaly has lasted: per series, the flags of its last `n` points (1 = anomalous) as bits of one
 * integer, newest lowest. A run is confirmed when at least `k` of the last `n` points were anomalous, and over when
 * none of them was. O(1) per point and two numbers of state.
 */
export interface PersistenceRule {
  /** anomalous points needed… */
  k: number;
  /** …among the last n (at most 30) */
  n: number;
}

export interface RunState {
  /** flags of the last n points, newest in bit 0 */
  bits: number;
  /** when the current anomalous run began (its first anomalous point), null when there is none */
  since: number | null;
  /** whether this run was already reported as confirmed */
  reported: boolean;
}

export const EMPTY_RUN: RunState = { bits: 0, since: null, reported: false };

function popcount(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

export type RunChange = 'confirmed' | 'ended' | null;

/**
 * Advances the run with one point. Returns `confirmed` the first time the rule holds within a run, `ended` when a
 * confirmed run has had no anomalous point for `n` points, else null.
 */
export function advanceRun(
  state: RunState,
  anomalous: boolean,
  timestamp: number,
  rule: PersistenceRule,
): { state: RunState; change: RunChange } {
  const mask = rule.n >= 31 ? 0x7fffffff : (1 << rule.n) - 1;
  const bits = ((state.bits << 1) | (anomalous ? 1 : 0)) & mask;
  if (bits === 0) {
    return { state: EMPTY_RUN, change: state.reported ? 'ended' : null };
  }
  const since = state.since ?? (anomalous ? timestamp : null);
  if (!state.reported && popcount(bits) >= rule.k) {
    return { state: { bits, since, reported: true }, change: 'confirmed' };
  }
  return { state: { bits, since, reported: state.reported }, change: null };
}

/** Confirms a run at once (several signals of one service agree), if it is not already reported. */
export function confirmRun(state: RunState, timestamp: number): { state: RunState; change: RunChange } {
  if (state.reported) return { state, change: null };
  return { state: { ...state, since: state.since ?? timestamp, reported: true }, change: 'confirmed' };
}
