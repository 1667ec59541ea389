import { z } from 'zod';
import { durationField, parseDuration } from '../../diagnostics/duration.js';
import { type ActionExecutor, limitField } from '../executor.js';
import {
  BACKEND_FILTERS,
  backendExecutor,
  describeFilters,
  plural,
  strictBackendConfig,
} from './postgres-backends.js';

const ACTION = 'terminate_connections';

/** Session states this action may end. `active` is cancel_query's job: a running statement is cancelled, not killed. */
export const TERMINABLE_STATES = ['idle', 'idle in transaction', 'idle in transaction (aborted)'] as const;
export type TerminableState = (typeof TERMINABLE_STATES)[number];

/** sessions one run may terminate at most */
export const MAX_TERMINATE_LIMIT = 100;

export const TerminateConnectionsConfig = strictBackendConfig(ACTION, {
  /** a name in the targets file's remediation.databases */
  target: z.string().min(1),
  state: z.enum(TERMINABLE_STATES, {
    error: (issue) =>
      issue.input === 'active'
        ? 'state "active" is refused: terminating sessions that are running a statement is not allowed; use cancel_query to cancel long statements'
        : `state: expected one of ${TERMINABLE_STATES.map((s) => `"${s}"`).join(', ')}`,
  }),
  /**
   * only sessions in `state` for longer than this (since pg_stat_activity.state_change). The floor is 1s so tests
   * can use real idle sessions; runbooks should keep to minutes.
   */
  idleLongerThan: durationField({ minMs: 1_000, example: '"5m" or "10m"' }),
  /** required; at most this many sessions per run, the longest idle first */
  limit: limitField(MAX_TERMINATE_LIMIT, 'sessions', 'touch'),
  ...BACKEND_FILTERS,
});
export type TerminateConnectionsConfig = z.infer<typeof TerminateConnectionsConfig>;

const STATE_WORDS: Record<TerminableState, string> = {
  idle: 'idle',
  'idle in transaction': 'idle in a transaction',
  'idle in transaction (aborted)': 'idle in a failed transaction',
};

const CONSEQUENCE: Record<TerminableState, string> = {
  idle: 'their clients reconnect on demand',
  'idle in transaction': 'their open transactions roll back',
  'idle in transaction (aborted)': 'their failed transactions are discarded',
};

function sessionsPhrase(config: TerminateConnectionsConfig): string {
  return `${STATE_WORDS[config.state]} for over ${config.idleLongerThan} on ${config.target}${describeFilters(config)}`;
}

/** Ends client sessions that have sat idle (or idle in a transaction) too long, holding connections or locks. */
export const terminateConnectionsExecutor: ActionExecutor<TerminateConnectionsConfig> =
  backendExecutor<TerminateConnectionsConfig>({
    action: ACTION,
    config: TerminateConnectionsConfig,
    mode: 'terminate',
    select: (config) => ({
      state: config.state,
      olderThanMs: parseDuration(config.idleLongerThan) as number,
    }),
    phrase: sessionsPhrase,
    blastRadius: (config) =>
      `up to ${plural(config.limit, 'session')} ${sessionsPhrase(config)}; ${CONSEQUENCE[config.state]}`,
    rollback: 'none needed: clients reconnect',
    settings: (config) => ({ state: config.state, idleLongerThan: config.idleLongerThan }),
  });
