import type { AppContext } from './context.js';
import { sweepRemediation } from './remediation/sweep.js';
import { sweepDiagnoses } from './runbooks/sweep.js';
import { sweepSlackBacklog } from './slack/sweep.js';

/**
 * Postgres is the source of truth and Redis may lose everything (the machines here run it without persistence). The
 * reconciler derives from Postgres the work that must be pending and re-enqueues what Redis does not have:
 * - `startup` and `redis-back` (Redis was unreachable and answers again, possibly empty): everything owed, at once,
 *   with the ORIGINAL job ids, which are no-ops for jobs Redis still has;
 * - `periodic`: what has been owed for longer than a job should take, with ids naming the sweep (a finished job's id
 *   is kept for an hour and would swallow a re-add).
 * A step recorded `started` is never re-run: it is verified or escalated (see remediation/sweep.ts).
 */

export type ReconcileReason = 'startup' | 'periodic' | 'redis-back';

export interface Reconciliation {
  reason: ReconcileReason;
  /** jobs (re-)enqueued per kind of work; -1 when that part failed (logged) */
  enqueued: { diagnoses: number; remediation: number; slack: number; escalations: number; learning: number };
}

export interface Reconciler {
  reconcile(reason: ReconcileReason): Promise<Reconciliation>;
  /** reconciles whenever the Redis connection comes back after losing it; returns the unsubscribe */
  watchRedis(): () => void;
}

/** after Redis is back, a pass that could not enqueue everything is tried again this often, this many times */
const REDIS_BACK_RETRY_MS = 2_000;
const REDIS_BACK_ATTEMPTS = 30;

/** every 10 minutes; milliseconds */
export const RECONCILE_INTERVAL_MS = 10 * 60_000;

export function createReconciler(ctx: AppContext): Reconciler {
  const { log } = ctx;
  // one pass at a time per process: a reconnect during the startup pass waits for it, then runs
  let chain: Promise<unknown> = Promise.resolve();

  const part = async (name: string, fn: () => Promise<number>): Promise<number> => {
    try {
      return await fn();
    } catch (err) {
      log.warn(
        { err: (err as Error).message, part: name },
        'reconciliation part failed; the next one retries',
      );
      return -1;
    }
  };

  const reconcileOnce = async (reason: ReconcileReason): Promise<Reconciliation> => {
    const lost = reason !== 'periodic';
    const tag = `${reason === 'periodic' ? 'p' : 'r'}${Math.floor(Date.now() / (lost ? 1_000 : RECONCILE_INTERVAL_MS))}`;
    const hasRunbooks = ctx.runbooks.catalog.list().length > 0;
    const enqueued = {
      diagnoses: hasRunbooks ? await part('diagnoses', () => sweepDiagnoses(ctx, tag, { lost })) : 0,
      remediation: await part('remediation', () =>
        sweepRemediation(
          { db: ctx.db, queues: ctx.queues, actionTimeoutMs: ctx.config.ACTION_TIMEOUT_MS },
          tag,
          {
            lost,
          },
        ),
      ),
      slack: await part('slack', () => sweepSlackBacklog(ctx, tag)),
      escalations: await part('escalations', () => ctx.escalations.sweep(tag)),
      learning: await part('learning', () => ctx.learning.sweep(tag)),
    };
    const total = Object.values(enqueued).reduce((sum, n) => sum + Math.max(0, n), 0);
    if (total > 0 || lost) log.info({ reason, enqueued }, 'reconciled pending work from Postgres');
    return { reason, enqueued };
  };

  const reconciler: Reconciler = {
    reconcile(reason) {
      const next = chain.then(() => reconcileOnce(reason));
      chain = next.catch(() => {});
      return next;
    },
    watchRedis() {
      let lostConnection = false;
      const onClose = () => {
        lostConnection = true;
      };
      let retry: NodeJS.Timeout | undefined;
      /** the queues' own connections come back a moment after this one: a part that failed is tried again */
      const pass = async (attempt: number) => {
        const result = await reconciler.reconcile('redis-back');
        const failed = Object.values(result.enqueued).some((n) => n < 0);
        if (failed && attempt < REDIS_BACK_ATTEMPTS && !lostConnection) {
          retry = setTimeout(() => void pass(attempt + 1), REDIS_BACK_RETRY_MS);
          retry.unref();
        }
      };
      const onReady = () => {
        if (!lostConnection) return;
        lostConnection = false;
        clearTimeout(retry);
        log.info('Redis answers again: re-enqueueing the work Postgres says is pending');
        void pass(1);
      };
      ctx.redis.on('close', onClose);
      ctx.redis.on('ready', onReady);
      return () => {
        clearTimeout(retry);
        ctx.redis.off('close', onClose);
        ctx.redis.off('ready', onReady);
      };
    },
  };
  return reconciler;
}
