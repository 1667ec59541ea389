import { DelayedError } from 'bullmq';
import { z } from 'zod';
import type { JobDefinition } from '../../queue/jobs.js';
import type { JobHandler } from '../../queue/queues.js';
import type { EscalationService } from '../escalation-service.js';

export const StartEscalationPayload = z.object({
  incidentId: z.number().int().positive(),
  /** the incident.escalated event it answers; part of the id, so each hand-over is started once */
  eventId: z.number().int().positive(),
  /** set by the sweep so its re-enqueue is not swallowed by a finished job of the same id */
  sweep: z.string().optional(),
});
export type StartEscalationPayload = z.infer<typeof StartEscalationPayload>;

/** Starts the escalation of an incident that was handed to people: why, which team, the policy snapshot, level 1. */
export const startEscalationJob: JobDefinition<StartEscalationPayload> = {
  queue: 'escalations',
  name: 'escalation.start',
  payload: StartEscalationPayload,
  jobId: (d) => `escalation-start-${d.incidentId}-${d.eventId}${d.sweep ? `-${d.sweep}` : ''}`,
  attempts: 10,
  backoffMs: 1_000,
  priority: 1,
};

export const PageStepPayload = z.object({
  escalationId: z.number().int().positive(),
  /** level = step mod levels; step = levels × (repeat + 1) records that nobody acknowledged */
  step: z.number().int().nonnegative(),
  /**
   * the row's revision when the timer was set; only part of the id, so a step retried during a pager outage gets a
   * new timer instead of colliding with the finished job of its previous try
   */
  revision: z.number().int().nonnegative().optional(),
});
export type PageStepPayload = z.infer<typeof PageStepPayload>;

/** One step of the policy walk, delayed by the previous level's wait; removed when someone acknowledges. */
export const pageStepJob: JobDefinition<PageStepPayload> = {
  queue: 'escalations',
  name: 'escalation.page',
  payload: PageStepPayload,
  jobId: (d) =>
    `escalation-${d.escalationId}-step-${d.step}${d.revision !== undefined ? `-v${d.revision}` : ''}`,
  attempts: 10,
  backoffMs: 2_000,
  priority: 1,
};

export const UpdatePagersPayload = z.object({
  escalationId: z.number().int().positive(),
  action: z.enum(['acknowledge', 'resolve']),
});
export type UpdatePagersPayload = z.infer<typeof UpdatePagersPayload>;

/** Tells every pager that delivered a page (PagerDuty above all) that it was acknowledged or resolved. */
export const updatePagersJob: JobDefinition<UpdatePagersPayload> = {
  queue: 'escalations',
  name: 'escalation.update-pagers',
  payload: UpdatePagersPayload,
  jobId: (d) => `escalation-${d.escalationId}-${d.action}`,
  attempts: 6,
  backoffMs: 5_000,
  priority: 3,
};

export const DigestPayload = z.object({
  /** epoch minute the quiet hours end; only part of the id (one digest per end of night) */
  minute: z.number().int().nonnegative(),
  sweep: z.string().optional(),
});
export type DigestPayload = z.infer<typeof DigestPayload>;

/** Posts the morning digest of the escalations quiet hours held back. */
export const digestJob: JobDefinition<DigestPayload> = {
  queue: 'escalations',
  name: 'escalation.digest',
  payload: DigestPayload,
  jobId: (d) => `escalation-digest-${d.minute}${d.sweep ? `-${d.sweep}` : ''}`,
  attempts: 10,
  backoffMs: 5_000,
  priority: 3,
};

/** The escalation jobs' handlers; each is safe to re-run (the service checks the row before acting). */
export function escalationHandlers(service: EscalationService): JobHandler<never>[] {
  const start: JobHandler<StartEscalationPayload> = {
    definition: startEscalationJob,
    concurrency: 5,
    async handle(data) {
      await service.start(data.incidentId);
    },
  };
  const step: JobHandler<PageStepPayload> = {
    definition: pageStepJob,
    concurrency: 5,
    async handle(data, job, token) {
      const outcome = await service.runStep(data.escalationId, data.step);
      if (outcome.retryInMs !== undefined) {
        // fired before the step is due by Postgres' clock (a skewed worker clock): wait the difference
        await job.moveToDelayed(Date.now() + outcome.retryInMs, token);
        throw new DelayedError();
      }
    },
  };
  const update: JobHandler<UpdatePagersPayload> = {
    definition: updatePagersJob,
    concurrency: 5,
    async handle(data) {
      await service.updatePagers(data.escalationId, data.action);
    },
  };
  const digest: JobHandler<DigestPayload> = {
    definition: digestJob,
    concurrency: 1,
    async handle() {
      await service.postDigests();
    },
  };
  return [start, step, update, digest] as JobHandler<never>[];
}
