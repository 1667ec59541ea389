import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { getIncident } from '../../incidents/lifecycle.js';
import type { JobDefinition } from '../../queue/jobs.js';
import type { JobHandler } from '../../queue/queues.js';
import type { Queryable } from '../../store/db.js';
import { withTransaction } from '../../store/db.js';
import { appendEvent, createExecution } from '../execution-repo.js';
import { markInvestigating } from '../incident-status.js';
import { type MatchableAlert, matchRunbook, type RunbookMatch } from '../matcher.js';
import { buildTemplateVars } from '../vars.js';
import { decideJob } from './decide.job.js';
import type { RunbookJobDeps } from './deps.js';
import { runDiagnosticJob } from './run-diagnostic.job.js';

export const DiagnosePayload = z.object({
  incidentId: z.number().int().positive(),
  /** a person asked for this runbook (`/incident run`); otherwise the alerts choose */
  runbookId: z.string().optional(),
  requestedBy: z.string().default('ai-sre'),
  /** one run per key: `auto` for the run on open, `manual:<id>` for each request by a person */
  requestKey: z.string().default('auto'),
  /** set by the sweep so its re-run is not swallowed by an earlier job with the same id */
  sweep: z.string().optional(),
});
export type DiagnosePayload = z.input<typeof DiagnosePayload>;

/** Chooses an incident's runbook and fans its diagnostics out; one per incident and request. */
export const diagnoseJob: JobDefinition<DiagnosePayload> = {
  queue: 'runbooks',
  name: 'incident.diagnose',
  payload: DiagnosePayload,
  jobId: (d) =>
    `diagnose-${d.incidentId}-${(d.requestKey ?? 'auto').replace(/[^A-Za-z0-9_.-]/g, '_')}${d.sweep ? `-${d.sweep}` : ''}`,
  attempts: 8,
  backoffMs: 1_000,
};

async function alertsOf(db: Queryable, incidentId: number): Promise<MatchableAlert[]> {
  const { rows } = await db.query<MatchableAlert>(
    `SELECT name, status, labels, annotations FROM incident_alerts WHERE incident_id = $1 ORDER BY id LIMIT 200`,
    [incidentId],
  );
  return rows;
}

/**
 * Picks the runbook (a requested one, else by triggers, else the default triage playbook), records the execution
 * with its runbook snapshot and content hash, moves the incident to investigating, then adds the flow: one job per
 * diagnostic, and the decide job that runs when they have all finished. Re-running finds the execution and re-adds
 * the same job ids, which BullMQ ignores when they exist.
 */
export function diagnoseHandler(deps: RunbookJobDeps): JobHandler<DiagnosePayload> {
  return {
    definition: diagnoseJob,
    concurrency: 10,
    async handle(input) {
      const data = DiagnosePayload.parse(input);
      const incident = await getIncident(deps.db, data.incidentId);
      if (!incident) throw new UnrecoverableError(`incident ${data.incidentId} does not exist`);
      if (incident.status === 'resolved') return;
      const alerts = await alertsOf(deps.db, incident.id);
      let match: RunbookMatch | null;
      if (data.runbookId) {
        const loaded = deps.catalog.get(data.runbookId);
        if (!loaded) throw new UnrecoverableError(`no runbook "${data.runbookId}"`);
        match = { loaded, matchedBy: 'manual', detail: { requested: data.runbookId, by: data.requestedBy } };
      } else {
        match = matchRunbook(deps.catalog, incident, alerts);
      }
      if (!match) {
        const eventId = await withTransaction(deps.db, (tx) =>
          appendEvent(tx, incident.id, 'ai-sre', 'runbook.none', true, {
            reason: 'no runbook matches and no default triage playbook is installed',
          }),
        );
        await deps.changed({ incidentId: incident.id, eventId, urgent: true });
        return;
      }
      const chosen = match;
      const vars = buildTemplateVars(incident, alerts, deps.targets);
      const { execution, created, eventId } = await withTransaction(deps.db, async (tx) => {
        const result = await createExecution(tx, {
          incidentId: incident.id,
          requestKey: data.requestKey,
          match: chosen,
          requestedBy: data.requestedBy,
          vars,
        });
        if (result.created) {
          const moved = await markInvestigating(
            tx,
            incident.id,
            `running runbook ${chosen.loaded.runbook.id}`,
          );
          return { ...result, eventId: moved ?? result.eventId };
        }
        return result;
      });
      if (execution.status === 'diagnosing') {
        await deps.queues.addFlow(
          { definition: decideJob, data: { executionId: execution.id } },
          execution.runbook.diagnostics.map((d) => ({
            definition: runDiagnosticJob,
            data: { executionId: execution.id, diagnosticId: d.id },
          })),
        );
      }
      if (created && eventId !== null) {
        deps.log.info(
          {
            incident: incident.id,
            execution: execution.id,
            runbook: execution.runbookId,
            matchedBy: execution.matchedBy,
          },
          'runbook started',
        );
        await deps.changed({ incidentId: incident.id, eventId, urgent: true });
      }
    },
  };
}
