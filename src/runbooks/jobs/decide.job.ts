import { z } from 'zod';
import type { JobDefinition } from '../../queue/jobs.js';
import type { JobHandler } from '../../queue/queues.js';
import { withTransaction } from '../../store/db.js';
import { decide } from '../decide.js';
import { appendEvent, getExecution, listResults, storeDecision, storeResult } from '../execution-repo.js';
import { markEscalated } from '../incident-status.js';
import type { Finding } from '../interpret.js';
import type { RunbookJobDeps } from './deps.js';

export const DecidePayload = z.object({ executionId: z.number().int().positive() });
export type DecidePayload = z.infer<typeof DecidePayload>;

/** The parent of an execution's diagnostics: runs once every child has finished, failed or timed out. */
export const decideJob: JobDefinition<DecidePayload> = {
  queue: 'decisions',
  name: 'runbook.decide',
  payload: DecidePayload,
  jobId: (d) => `decide-${d.executionId}`,
  attempts: 8,
  backoffMs: 1_000,
};

/**
 * Evaluates the decision tree over the stored results and records the decision, the plan and (when nobody can act
 * automatically) the escalation, in one transaction. Diagnostics with no stored result (their job failed for good)
 * are recorded as `error` first, so the record is complete. Safe to re-run: a decided execution is left alone.
 */
export function decideHandler(deps: RunbookJobDeps): JobHandler<DecidePayload> {
  return {
    definition: decideJob,
    concurrency: 10,
    async handle(data) {
      const outcome = await withTransaction(deps.db, async (tx) => {
        const execution = await getExecution(tx, data.executionId, { forUpdate: true });
        if (!execution) return null;
        if (execution.status === 'decided') return null;
        const stored = await listResults(tx, execution.id);
        const have = new Set(stored.map((r) => r.diagnosticId));
        const now = new Date();
        const findings: Record<string, Finding> = {};
        for (const r of stored) findings[r.diagnosticId] = r;
        for (const [position, step] of execution.runbook.diagnostics.entries()) {
          if (have.has(step.id)) continue;
          const message = 'did not report: its job failed on every attempt';
          await storeResult(tx, execution, {
            diagnosticId: step.id,
            position,
            type: step.type,
            status: 'error',
            value: null,
            result: {},
            summary: message,
            error: message,
            durationMs: Math.max(0, now.getTime() - execution.startedAt.getTime()),
            startedAt: execution.startedAt,
            finishedAt: now,
          });
          findings[step.id] = { status: 'error', value: null, result: {}, summary: message, error: message };
        }
        const decision = decide(execution.runbook, findings, execution.vars);
        const noRunbook = execution.matchedBy === 'default';
        const escalate = noRunbook || decision.outcome === 'escalate';
        const reason = noRunbook
          ? `no runbook matches this incident; ${decision.escalation?.why ?? decision.text}`
          : decision.outcome === 'escalate'
            ? (decision.escalation?.why ?? 'escalate')
            : null;
        await storeDecision(tx, execution, decision, { escalate, reason });
        const remediate = !escalate && decision.plan.length > 0;
        if (remediate) {
          await tx.query(`UPDATE runbook_executions SET remediation_status = 'running' WHERE id = $1`, [
            execution.id,
          ]);
        }
        let eventId = await appendEvent(tx, execution.incidentId, 'ai-sre', 'decision.made', true, {
          executionId: execution.id,
          runbookId: execution.runbookId,
          runbookName: execution.runbook.name,
          outcome: decision.outcome,
          text: decision.text,
          hypothesis: decision.hypothesis,
          plan: decision.plan.map((s) => ({
            id: s.id,
            action: s.action,
            description: s.description,
            requiresApproval: s.requiresApproval,
          })),
          escalation: decision.escalation,
          escalate,
          reason,
          noRunbook,
        });
        if (escalate) {
          const moved = await markEscalated(tx, execution.incidentId, reason ?? 'escalate');
          if (moved) eventId = moved;
        }
        return {
          incidentId: execution.incidentId,
          runbookId: execution.runbookId,
          eventId,
          decision,
          escalate,
          remediate,
        };
      });
      if (!outcome) return;
      deps.observeDecision?.(outcome.runbookId, outcome.escalate ? 'escalate' : outcome.decision.outcome);
      deps.log.info(
        {
          incident: outcome.incidentId,
          execution: data.executionId,
          outcome: outcome.decision.outcome,
          escalate: outcome.escalate,
        },
        'runbook decided',
      );
      await deps.changed({ incidentId: outcome.incidentId, eventId: outcome.eventId, urgent: true });
      if (outcome.remediate) await deps.startRemediation?.(data.executionId);
    },
  };
}
