/**
 * The action catalogue: every action a runbook may name, with its tier. The tier is the loosest an action can ever
 * be; runbooks (`requiresApproval`) and the safety policy may only tighten it. Anything not listed is forbidden.
 *
 * - safe: bounded and reversible; runs on its own in `autonomous` mode (still inside the hard limits)
 * - guarded: an authorised person clicks Approve in Slack first
 * - forbidden: never runs, whatever asks for it
 */
export const TIERS = ['safe', 'guarded', 'forbidden'] as const;
export type Tier = (typeof TIERS)[number];

export interface CatalogueEntry {
  tier: Tier;
  /** why this tier, for the approval packet and the docs */
  why: string;
  /** tells people something instead of changing a system: needs no approval and runs while automation is off */
  communication?: boolean;
}

export const ACTION_CATALOGUE: Readonly<Record<string, CatalogueEntry>> = {
  notify: { tier: 'safe', why: 'posts a message', communication: true },
  escalate: { tier: 'safe', why: 'hands the incident to people', communication: true },
  terminate_connections: {
    tier: 'safe',
    why: 'only idle sessions, at most 100, past an age; pools reconnect',
  },
  restart_service: { tier: 'safe', why: 'a rolling restart; at most 2 per target per 10 minutes' },
  scale: { tier: 'safe', why: 'adds replicas in bounded steps up to an absolute maximum; never scales down' },
  cancel_query: { tier: 'guarded', why: 'cancels running statements: their work is lost' },
  flush_cache: { tier: 'guarded', why: 'removes cached keys: the backing store takes their load' },
  rollback: { tier: 'guarded', why: 'changes the running version' },
  http_request: { tier: 'guarded', why: 'changes a service through its admin API (flags, breakers, pools)' },
  run_script: { tier: 'guarded', why: 'runs a program on the bot host' },
};

/** Actions no runbook and no config can enable, named so a runbook that asks gets a reason, not just "unknown". */
export const FORBIDDEN_ACTIONS: Readonly<Record<string, string>> = {
  run_sql: 'free SQL can change or delete data',
  execute_sql: 'free SQL can change or delete data',
  delete_data: 'data deletion is never automated',
  drop_table: 'schema changes are never automated',
  drop_database: 'schema changes are never automated',
  truncate_table: 'data deletion is never automated',
  flush_all: 'an unbounded flush empties the whole cache',
  flushall: 'an unbounded flush empties the whole cache',
  flushdb: 'an unbounded flush empties the whole cache',
  delete_service: 'deleting workloads is never automated',
  delete_pod: 'deleting workloads is never automated',
  delete_volume: 'data deletion is never automated',
  shell: 'a shell runs anything',
  exec: 'a shell runs anything',
  scale_to: 'an absolute replica count is unbounded; use scale with `by`',
  scale_down: 'scaling down can take capacity away mid-incident',
};

const RANK: Record<Tier, number> = { safe: 0, guarded: 1, forbidden: 2 };

/** The strictest of the tiers given. */
export function strictest(...tiers: (Tier | undefined)[]): Tier {
  let out: Tier = 'safe';
  for (const t of tiers) if (t !== undefined && RANK[t] > RANK[out]) out = t;
  return out;
}

/** True when `proposed` would loosen `base` (guarded → safe, forbidden → anything). */
export function loosens(base: Tier, proposed: Tier): boolean {
  return RANK[proposed] < RANK[base];
}

/** The catalogue tier of an action; anything unknown is forbidden. */
export function catalogueTier(action: string): Tier {
  return ACTION_CATALOGUE[action]?.tier ?? 'forbidden';
}

/** Why an action is forbidden by name (null when the catalogue lists it). */
export function forbiddenActionReason(action: string): string | null {
  if (ACTION_CATALOGUE[action]) return null;
  const named = FORBIDDEN_ACTIONS[action.toLowerCase()];
  return named
    ? `action ${action} is forbidden: ${named}`
    : `action ${action} is not in the action catalogue, so it is forbidden (catalogue: ${Object.keys(ACTION_CATALOGUE).join(', ')})`;
}

export function isCommunication(action: string): boolean {
  return ACTION_CATALOGUE[action]?.communication === true;
}
