import { z } from 'zod';
import type { JobDefinition } from '../../queue/jobs.js';

export const RemediateStepPayload = z.object({
  executionId: z.number().int().positive(),
  position: z.number().int().nonnegative(),
  /** why the step is (re)visited: gate, approved, wait-<n> (fleet full), next; part of the job id */
  phase: z.string().regex(/^[a-z0-9-]{1,40}$/),
});
export type RemediateStepPayload = z.infer<typeof RemediateStepPayload>;

/** Gates, runs and records one step of a plan; the id names the visit, so a re-delivered job is the same job. */
export const remediateStepJob: JobDefinition<RemediateStepPayload> = {
  queue: 'remediation',
  name: 'remediation.step',
  payload: RemediateStepPayload,
  jobId: (d) => `step-${d.executionId}-${d.position}-${d.phase}`,
  // retries cover Postgres/Redis being away; the side effect itself is guarded by the step row, never repeated
  attempts: 8,
  backoffMs: 1_000,
};

export const VerifyStepPayload = z.object({
  stepRowId: z.number().int().positive(),
  /** 1, 2, … : one job per re-check */
  check: z.number().int().positive(),
});
export type VerifyStepPayload = z.infer<typeof VerifyStepPayload>;

export const verifyStepJob: JobDefinition<VerifyStepPayload> = {
  queue: 'remediation',
  name: 'remediation.verify',
  payload: VerifyStepPayload,
  jobId: (d) => `verify-${d.stepRowId}-${d.check}`,
  attempts: 8,
  backoffMs: 1_000,
};

export const ExpireApprovalPayload = z.object({
  approvalId: z.number().int().positive(),
  /** bumped when the job ran before Postgres' clock said the request expired */
  check: z.number().int().nonnegative().default(0),
  /** set by the sweep, so its job is not swallowed by an earlier one with the same id */
  sweep: z.string().max(40).optional(),
});
export type ExpireApprovalPayload = z.infer<typeof ExpireApprovalPayload>;

export const expireApprovalJob: JobDefinition<ExpireApprovalPayload> = {
  queue: 'remediation',
  name: 'approval.expire',
  payload: ExpireApprovalPayload,
  jobId: (d) => `approval-expire-${d.approvalId}-${d.check}${d.sweep ? `-${d.sweep}` : ''}`,
  attempts: 8,
  backoffMs: 1_000,
};
