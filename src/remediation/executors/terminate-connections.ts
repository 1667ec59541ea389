import { z } from 'zod';
import type { ConfigProblem } from '../../diagnostics/collector.js';
import { durationField, parseDuration } from '../../diagnostics/duration.js';
import type { Targets } from '../../diagnostics/targets.js';
import type { ActionExecutor } from '../executor.js';
import {
  BACKEND_FILTERS,
  checkBackendConfig,
  countBackends,
  describeFailure,
  describeFilters,
  limitField,
  plural,
  refuseProblems,
  renderFilters,
  reparse,
  signalBackends,
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
  limit: limitField(MAX_TERMINATE_LIMIT, 'sessions'),
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

function check(config: TerminateConnectionsConfig, targets: Targets): ConfigProblem[] {
  return checkBackendConfig(config, targets);
}

/** Ends client sessions that have sat idle (or idle in a transaction) too long, holding connections or locks. */
export const terminateConnectionsExecutor: ActionExecutor<TerminateConnectionsConfig> = {
  action: ACTION,
  config: TerminateConnectionsConfig,
  check,
  render: renderFilters,

  describe(config) {
    return {
      target: `postgres:${config.target}`,
      blastRadius: `up to ${plural(config.limit, 'session')} ${sessionsPhrase(config)}; ${CONSEQUENCE[config.state]}`,
      rollback: 'none needed: clients reconnect',
    };
  },

  async execute(raw, ctx) {
    const config = reparse(ACTION, TerminateConnectionsConfig, raw);
    refuseProblems(ACTION, check(config, ctx.targets));
    const target = ctx.targets.remediation.databases[config.target];
    if (!target) throw new Error(`${ACTION}: no database "${config.target}"`);
    let picked: Awaited<ReturnType<typeof signalBackends>>;
    try {
      picked = await signalBackends(
        target.url,
        {
          mode: 'terminate',
          state: config.state,
          olderThanMs: parseDuration(config.idleLongerThan) as number,
          limit: config.limit,
          database: config.database,
          application: config.application,
          user: config.user,
        },
        { signal: ctx.signal, timeoutMs: ctx.timeoutMs, dryRun: ctx.dryRun },
      );
    } catch (err) {
      throw describeFailure(ACTION, config.target, err);
    }
    const { matched, done, notPermitted } = countBackends(picked);
    const phrase = sessionsPhrase(config);
    const refused = notPermitted > 0 ? ` (${notPermitted} not permitted for this role)` : '';
    let summary: string;
    if (matched === 0) summary = `no sessions ${phrase}`;
    else if (ctx.dryRun) summary = `would terminate ${plural(matched, 'session')} ${phrase}${refused}`;
    else summary = `terminated ${done} of ${plural(matched, 'session')} ${phrase}${refused}`;
    ctx.log.info({ action: ACTION, target: config.target, matched, done, dryRun: ctx.dryRun }, summary);
    return {
      ok: ctx.dryRun || done === matched,
      dryRun: ctx.dryRun,
      summary,
      details: {
        target: config.target,
        state: config.state,
        idleLongerThan: config.idleLongerThan,
        limit: config.limit,
        filters: { database: config.database, application: config.application, user: config.user },
        matched,
        done,
        notPermitted,
        backends: picked,
      },
    };
  },
};
