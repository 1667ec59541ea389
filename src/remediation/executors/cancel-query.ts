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
  limit: limitField(MAX_CANCEL_LIMIT, 'statements'),
  ...BACKEND_FILTERS,
});
export type CancelQueryConfig = z.infer<typeof CancelQueryConfig>;

function statementsPhrase(config: CancelQueryConfig): string {
  return `running for over ${config.runningLongerThan} on ${config.target}${describeFilters(config)}`;
}

function check(config: CancelQueryConfig, targets: Targets): ConfigProblem[] {
  return checkBackendConfig(config, targets);
}

/** Cancels long-running statements (pg_cancel_backend); the sessions stay connected. */
export const cancelQueryExecutor: ActionExecutor<CancelQueryConfig> = {
  action: ACTION,
  config: CancelQueryConfig,
  check,
  render: renderFilters,

  describe(config) {
    return {
      target: `postgres:${config.target}`,
      blastRadius: `up to ${plural(config.limit, 'statement')} ${statementsPhrase(config)} are cancelled; their callers get an error and their transactions fail, the sessions stay connected`,
      rollback: 'none needed: the sessions stay connected and clients may retry the statement',
    };
  },

  async execute(raw, ctx) {
    const config = reparse(ACTION, CancelQueryConfig, raw);
    refuseProblems(ACTION, check(config, ctx.targets));
    const target = ctx.targets.remediation.databases[config.target];
    if (!target) throw new Error(`${ACTION}: no database "${config.target}"`);
    let picked: Awaited<ReturnType<typeof signalBackends>>;
    try {
      picked = await signalBackends(
        target.url,
        {
          mode: 'cancel',
          state: 'active',
          olderThanMs: parseDuration(config.runningLongerThan) as number,
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
    const phrase = statementsPhrase(config);
    const refused = notPermitted > 0 ? ` (${notPermitted} not permitted for this role)` : '';
    let summary: string;
    if (matched === 0) summary = `no statements ${phrase}`;
    else if (ctx.dryRun) summary = `would cancel ${plural(matched, 'statement')} ${phrase}${refused}`;
    else summary = `cancelled ${done} of ${plural(matched, 'statement')} ${phrase}${refused}`;
    ctx.log.info({ action: ACTION, target: config.target, matched, done, dryRun: ctx.dryRun }, summary);
    return {
      ok: ctx.dryRun || done === matched,
      dryRun: ctx.dryRun,
      summary,
      details: {
        target: config.target,
        runningLongerThan: config.runningLongerThan,
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
