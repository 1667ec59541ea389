import { z } from 'zod';

/** A kind of job: its queue, name, payload schema and retry behaviour. The handler lives with the domain that owns the work. */
export interface JobDefinition<T> {
  queue: QueueName;
  name: string;
  payload: z.ZodType<T>;
  /** id derived from the work, so enqueueing the same work twice is a no-op */
  jobId(data: T): string;
  attempts: number;
  /** base delay of exponential back-off; milliseconds */
  backoffMs: number;
  /**
   * BullMQ priority, 1 = first. BullMQ runs jobs without a priority before prioritised ones, so every job of a queue
   * that uses priorities gets one; default 5.
   */
  priority?: number;
}

/**
 * slack: card and thread syncs; runbooks: choosing a runbook; diagnostics: the checks themselves; decisions: the
 * decision once an execution's checks are in (its own workers, so a storm of new incidents never delays it);
 * remediation: gated steps, verification re-checks and approval expiry; escalations: pages, re-escalation timers,
 * pager updates and the morning digest; learning: postmortem drafts and the weekly runbook suggestions
 */
export const QUEUE_NAMES = [
  'slack',
  'runbooks',
  'diagnostics',
  'decisions',
  'remediation',
  'escalations',
  'learning',
] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

export const SyncIncidentSlackPayload = z.object({
  incidentId: z.number().int().positive(),
  /** newest timeline event the sync must cover; only part of the job id */
  eventId: z.number().int().nonnegative(),
  /** set by the reconciler so its sweep is not swallowed by an earlier job with the same id */
  sweep: z.string().optional(),
  /** debounce window the job closes; changes in one window share one job */
  window: z.number().int().nonnegative().optional(),
});
export type SyncIncidentSlackPayload = z.infer<typeof SyncIncidentSlackPayload>;

/** Brings an incident's Slack card and thread up to date with Postgres. */
export function syncIncidentSlackJob(opts: {
  attempts: number;
  backoffMs: number;
}): JobDefinition<SyncIncidentSlackPayload> {
  return {
    queue: 'slack',
    name: 'incident.sync-slack',
    payload: SyncIncidentSlackPayload,
    jobId: (d) =>
      d.window !== undefined
        ? `sync-slack-${d.incidentId}-w${d.window}`
        : `sync-slack-${d.incidentId}-${d.eventId}${d.sweep ? `-${d.sweep}` : ''}`,
    ...opts,
  };
}
