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

const ACTION = 'cancel_query';

/** statements one run may cancel at most */
export const MAX_CANCEL_LIMIT = 20;

export const CancelQueryConfig = strictBackendConfig(ACTION, {
  /** a name in the targets file's remediation.databases */
  target: z.string().min(1),
  /**
   * only statements running longer than this (since pg_stat_activity.query_start, state 'active'). The floor is 1s
   * so tests can use real running statements; runbooks should keep to tens of seconds or more.
   */
  runningLongerThan: durationField({ minMs: 1_000, example: '"30s" or "5m"' }),
  /** required; at most this many statements per run, the longest running first */
  limit: limitField(MAX_CANCEL_LIMIT, 'statements', 'touch'),
  ...BACKEND_FILTERS,
});
export type CancelQueryConfig = z.infer<typeof CancelQueryConfig>;

function statementsPhrase(config: CancelQueryConfig): string {
  return `running for over ${config.runningLongerThan} on ${config.target}${describeFilters(config)}`;
}

/** Cancels long-running statements (pg_cancel_backend); the sessions stay connected. */
export const cancelQueryExecutor: ActionExecutor<CancelQueryConfig> = backendExecutor<CancelQueryConfig>({
  action: ACTION,
  config: CancelQueryConfig,
  mode: 'cancel',
  select: (config) => ({ state: 'active', olderThanMs: parseDuration(config.runningLongerThan) as number }),
  phrase: statementsPhrase,
  blastRadius: (config) =>
    `up to ${plural(config.limit, 'statement')} ${statementsPhrase(config)} are cancelled; their callers get an error and their transactions fail, the sessions stay connected`,
  rollback: 'none needed: the sessions stay connected and clients may retry the statement',
  settings: (config) => ({ runningLongerThan: config.runningLongerThan }),
});
