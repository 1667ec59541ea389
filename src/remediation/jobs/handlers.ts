import type { JobHandler } from '../../queue/queues.js';
import type { RemediationService } from '../approval-service.js';
import { type RemediationDeps, verifyStep, visitStep } from '../engine.js';
import {
  type ExpireApprovalPayload,
  expireApprovalJob,
  type RemediateStepPayload,
  remediateStepJob,
  type VerifyStepPayload,
  verifyStepJob,
} from './remediation-jobs.js';

/** The remediation queue's handlers: step visits, verification re-checks, approval expiry. */
export function remediationHandlers(
  deps: RemediationDeps,
  service: RemediationService,
): [JobHandler<RemediateStepPayload>, JobHandler<VerifyStepPayload>, JobHandler<ExpireApprovalPayload>] {
  return [
    {
      definition: remediateStepJob,
      concurrency: 10,
      handle: (data) => visitStep(deps, data.executionId, data.position),
    },
    {
      definition: verifyStepJob,
      concurrency: 10,
      handle: (data) => verifyStep(deps, data.stepRowId, data.check),
    },
    {
      definition: expireApprovalJob,
      concurrency: 5,
      handle: async (data) => {
        await service.expire(data.approvalId, data.check);
      },
    },
  ];
}
