import { getIncident } from '../incidents/lifecycle.js';
import { appendEvent, getExecution } from '../runbooks/execution-repo.js';
import { moveIncident } from '../runbooks/incident-status.js';
import { type Approval, getApproval, settleApproval } from '../safety/approvals-repo.js';
import { automationState, listDisabledSwitches, setAutomation } from '../safety/automation-repo.js';
import { isApprover, type SafetyPolicy } from '../safety/policy.js';
import { type Tx, withTransaction } from '../store/db.js';
import { type RemediationDeps, stopAndEscalate } from './engine.js';
import { expireApprovalJob, remediateStepJob } from './jobs/remediation-jobs.js';
import { moveStep } from './step-repo.js';

export type ApprovalDecision = 'approve' | 'reject';

/** What a click did, for the person who clicked (an ephemeral reply). */
export interface ApprovalOutcome {
  outcome: 'approved' | 'rejected' | 'refused' | 'already_decided' | 'expired' | 'not_found';
  message: string;
  approval: Approval | null;
}

const when = (d: Date) => `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

/**
 * The decisions people make about remediation: approving or rejecting a guarded step, and the kill switch. Slack
 * resolves who the user is and which user groups they belong to; everything else is decided here, with every
 * request, decision and refusal written to the timeline with the user and Postgres' time.
 */
export interface RemediationService {
  decide(input: {
    approvalId: number;
    userId: string;
    /** user groups (S…) the user belongs to among the request's approvers */
    groups: string[];
    decision: ApprovalDecision;
  }): Promise<ApprovalOutcome>;
  /** approvers of a request, to resolve group membership before deciding */
  approversOf(approvalId: number): Promise<string[] | null>;
  /** settles a request whose time is up (the expiry job); false when it had been decided or is not due */
  expire(approvalId: number, check: number): Promise<boolean>;
  /** `/incident automation off|on [service]` */
  setAutomation(input: {
    enabled: boolean;
    service: string | null;
    userId: string;
    groups: string[];
    reason: string | null;
  }): Promise<{ ok: boolean; message: string }>;
  /** who may flip the kill switch (admins and global approvers), to resolve group membership */
  automationAdmins(): string[];
  /** one line per switch that is off, and the mode of `service`, for `@ai-sre status` */
  automationStatus(service: string | null): Promise<string>;
}

export function createRemediationService(
  deps: RemediationDeps & { policy: SafetyPolicy },
): RemediationService {
  return {
    async approversOf(approvalId) {
      return (await getApproval(deps.db, approvalId))?.approvers ?? null;
    },

    async decide(input) {
      type Settled = ApprovalOutcome & { eventId: number | null };
      const result = await withTransaction(deps.db, async (tx): Promise<Settled> => {
        const approval = await getApproval(tx, input.approvalId, { forUpdate: true });
        if (!approval) {
          return {
            outcome: 'not_found' as const,
            message: 'This approval request does not exist.',
            approval: null,
            eventId: null,
          };
        }
        const refuse = async (outcome: ApprovalOutcome['outcome'], why: string): Promise<Settled> => {
          const eventId = await appendEvent(
            tx,
            approval.incidentId,
            input.userId,
            'approval.refused',
            false,
            {
              approvalId: approval.id,
              executionId: approval.executionId,
              step: approval.packet.step.id,
              decision: input.decision,
              why,
            },
          );
          return { outcome, message: why, approval, eventId };
        };
        if (approval.status !== 'pending') {
          const by = approval.decidedBy ? ` by <@${approval.decidedBy}>` : '';
          const at = approval.decidedAt ? ` at ${when(approval.decidedAt)}` : '';
          return refuse(
            approval.status === 'expired' ? 'expired' : 'already_decided',
            `Nothing changed: this request was already ${approval.status}${by}${at}.`,
          );
        }
        if (approval.expiresAt <= approval.now) {
          const eventId = await expireNow(tx, approval);
          const refused = await refuse(
            'expired',
            `Nothing changed: this request expired at ${when(approval.expiresAt)}.`,
          );
          return { ...refused, eventId: eventId ?? refused.eventId };
        }
        if (!isApprover(approval.approvers, input.userId, input.groups)) {
          return refuse(
            'refused',
            `You are not an approver of this step. Approvers: ${approval.approvers.map((a) => (a.startsWith('S') ? `<!subteam^${a}>` : `<@${a}>`)).join(', ')}.`,
          );
        }
        if (approval.packet.secondPersonRequired && input.userId === approval.requestedBy) {
          return refuse(
            'refused',
            'This is a P1: the step must be approved by someone other than who asked for the run.',
          );
        }
        const status: 'approved' | 'rejected' = input.decision === 'approve' ? 'approved' : 'rejected';
        await settleApproval(tx, approval.id, status, input.userId);
        await moveStep(tx, approval.stepRowId, ['awaiting_approval'], status, {
          reason: `${status} by ${input.userId}`,
        });
        let eventId = await appendEvent(tx, approval.incidentId, input.userId, `step.${status}`, true, {
          approvalId: approval.id,
          executionId: approval.executionId,
          step: approval.packet.step.id,
          action: approval.packet.step.action,
          target: approval.packet.target,
        });
        const execution = await getExecution(tx, approval.executionId);
        if (status === 'rejected' && execution) {
          eventId =
            (await stopAndEscalate(
              tx,
              execution,
              `${approval.packet.step.id} was rejected by ${input.userId}`,
            )) ?? eventId;
        } else {
          eventId =
            (await moveIncident(
              tx,
              approval.incidentId,
              'mitigating',
              `${approval.packet.step.id} approved`,
              input.userId,
            )) ?? eventId;
        }
        const fresh = await getApproval(tx, approval.id);
        return {
          outcome: status,
          message:
            status === 'approved'
              ? `Approved: ${approval.packet.step.description} will run now.`
              : `Rejected: ${approval.packet.step.id} will not run; the incident is escalated.`,
          approval: fresh,
          eventId,
        };
      });
      if (result.outcome === 'approved' && result.approval) {
        await deps.queues.enqueue(remediateStepJob, {
          executionId: result.approval.executionId,
          position: result.approval.packet.step.position,
          phase: 'approved',
        });
      }
      if (result.approval && result.eventId !== null)
        await deps.changed({ incidentId: result.approval.incidentId, eventId: result.eventId, urgent: true });
      return { outcome: result.outcome, message: result.message, approval: result.approval };
    },

    async expire(approvalId, check) {
      const outcome = await withTransaction(deps.db, async (tx) => {
        const approval = await getApproval(tx, approvalId, { forUpdate: true });
        if (approval?.status !== 'pending') return { eventId: null, retryInMs: null };
        if (approval.expiresAt > approval.now) {
          // this worker's timer fired before Postgres' clock says so: come back when it does
          return { eventId: null, retryInMs: approval.expiresAt.getTime() - approval.now.getTime() + 50 };
        }
        return { eventId: await expireNow(tx, approval), retryInMs: null, incidentId: approval.incidentId };
      });
      if (outcome.retryInMs !== null) {
        await deps.queues.enqueue(
          expireApprovalJob,
          { approvalId, check: check + 1 },
          { delayMs: outcome.retryInMs },
        );
        return false;
      }
      if (outcome.eventId === null || !('incidentId' in outcome) || outcome.incidentId === undefined)
        return false;
      await deps.changed({ incidentId: outcome.incidentId, eventId: outcome.eventId, urgent: true });
      return true;
    },

    automationAdmins() {
      return [...new Set([...deps.policy.admins, ...deps.policy.approvers])];
    },

    async setAutomation(input) {
      const admins = this.automationAdmins();
      if (!isApprover(admins, input.userId, input.groups)) {
        deps.log.warn(
          { user: input.userId, enabled: input.enabled },
          'automation switch refused: not an admin',
        );
        return {
          ok: false,
          message: `Only automation admins may turn automation ${input.enabled ? 'on' : 'off'}${admins.length > 0 ? ` (${admins.map((a) => (a.startsWith('S') ? `<!subteam^${a}>` : `<@${a}>`)).join(', ')})` : ' (none are configured: set `admins` in the safety policy)'}.`,
        };
      }
      const scope = input.service ?? '*';
      await setAutomation(deps.db, {
        scope,
        enabled: input.enabled,
        actor: input.userId,
        reason: input.reason,
      });
      deps.log.warn({ user: input.userId, scope, enabled: input.enabled }, 'automation switched');
      const what = input.service ? `for ${input.service}` : 'for every service';
      const state = await automationState(deps.db, input.service);
      const note =
        input.enabled && !state.enabled
          ? ` Note: automation is still off globally (by <@${state.changedBy}>); \`/incident automation on\` turns that back on.`
          : '';
      return {
        ok: true,
        message: input.enabled
          ? `Automation is back on ${what}.${note}`
          : `Automation is off ${what}: no remediation action runs until someone turns it back on. Diagnostics and notifications go on.`,
      };
    },

    async automationStatus(service) {
      const off = await listDisabledSwitches(deps.db);
      const mode = service ? (deps.policy.services[service]?.mode ?? deps.policy.mode) : deps.policy.mode;
      const lines = off.map(
        (s) =>
          `:no_entry: Automation is *off* ${s.scope === '*' ? 'for every service' : `for ${s.scope}`} (by <@${s.changed_by}> at ${when(s.changed_at)}${s.reason ? `: ${s.reason}` : ''})`,
      );
      const state = await automationState(deps.db, service);
      if (lines.length === 0 || state.enabled) {
        lines.unshift(`:robot_face: Automation is *on*${service ? ` for ${service}` : ''}; mode *${mode}*`);
      }
      return lines.join('\n');
    },
  };
}

/**
 * Marks a pending request expired and escalates; returns the last event id. A request whose incident resolved in the
 * meantime is cancelled instead: nobody needs to decide any more.
 */
async function expireNow(tx: Tx, approval: Approval): Promise<number> {
  const incident = await getIncident(tx, approval.incidentId);
  if (incident?.status === 'resolved') {
    await settleApproval(tx, approval.id, 'cancelled', null);
    await moveStep(tx, approval.stepRowId, ['awaiting_approval'], 'skipped', {
      reason: 'the incident resolved before anyone decided',
    });
    await tx.query(
      `UPDATE runbook_executions SET remediation_status = 'cleared', remediation_finished_at = now(), revision = revision + 1
        WHERE id = $1 AND remediation_status = 'running'`,
      [approval.executionId],
    );
    return appendEvent(tx, approval.incidentId, 'ai-sre', 'step.skipped', true, {
      approvalId: approval.id,
      executionId: approval.executionId,
      step: approval.packet.step.id,
      action: approval.packet.step.action,
      kind: 'incident_resolved',
      reason: 'the incident resolved before anyone decided; the request is cancelled',
    });
  }
  await settleApproval(tx, approval.id, 'expired', null);
  await moveStep(tx, approval.stepRowId, ['awaiting_approval'], 'expired', {
    reason: `nobody approved it by ${when(approval.expiresAt)}`,
  });
  const eventId = await appendEvent(tx, approval.incidentId, 'ai-sre', 'approval.expired', true, {
    approvalId: approval.id,
    executionId: approval.executionId,
    step: approval.packet.step.id,
    expiresAt: approval.expiresAt.toISOString(),
  });
  const execution = await getExecution(tx, approval.executionId);
  if (!execution) return eventId;
  return (
    (await stopAndEscalate(
      tx,
      execution,
      `nobody approved ${approval.packet.step.id} in time (expired at ${when(approval.expiresAt)})`,
    )) ?? eventId
  );
}
