import { randomUUID } from 'node:crypto';
import { AppError, NotFoundError } from '../errors.js';
import type { Incident } from '../incidents/incident.js';
import { parseIncidentRef } from '../incidents/incident.js';
import type { IncidentService } from '../incidents/incident-service.js';
import type { Queues } from '../queue/queues.js';
import type { Db } from '../store/db.js';
import { diagnoseJob } from './jobs/diagnose.job.js';
import type { RunbookCatalog } from './matcher.js';

export interface RunbookService {
  /**
   * `/incident run <runbook> [service|INC-id]`: runs a runbook by hand on an incident (the given one, else the newest
   * open incident of the service), or opens an incident for it when the service has none open.
   */
  requestRun(input: { runbookId: string; target?: string; actor: string }): Promise<{
    incident: Incident;
    opened: boolean;
    runbookName: string;
  }>;
}

export function createRunbookService(deps: {
  db: Db;
  catalog: RunbookCatalog;
  incidents: IncidentService;
  queues: Queues;
}): RunbookService {
  return {
    async requestRun(input) {
      const loaded = deps.catalog.get(input.runbookId);
      if (!loaded) {
        const ids = deps.catalog.list().map((r) => r.runbook.id);
        throw new NotFoundError(`no runbook "${input.runbookId}"; available: ${ids.join(', ') || 'none'}`);
      }
      const { runbook } = loaded;
      const ref = input.target ? parseIncidentRef(input.target) : null;
      let incident: Incident | null = null;
      if (ref !== null) {
        incident = await deps.incidents.get(ref);
        if (!incident) throw new NotFoundError(`no incident INC-${ref}`);
        if (incident.status === 'resolved') throw new AppError('incident_resolved', `INC-${ref} is resolved`);
      } else {
        const services = Array.isArray(runbook.service) ? runbook.service : [runbook.service];
        const service =
          input.target ?? (services.length === 1 && services[0] !== '*' ? services[0] : undefined);
        if (!service) {
          throw new AppError(
            'service_required',
            `${runbook.id} serves several services: name one, e.g. \`/incident run ${runbook.id} payment-service\``,
          );
        }
        const [open] = await deps.incidents.listOpen({ service, limit: 1 });
        if (!open) {
          // The new incident names its runbook; the automatic run on open picks it (matched by label).
          const created = await deps.incidents.triggerManually({
            service,
            summary: `${runbook.name} (runbook run by hand)`,
            severity: runbook.severity,
            actor: input.actor,
            labels: { runbook_id: runbook.id },
          });
          return { incident: created, opened: true, runbookName: runbook.name };
        }
        incident = open;
      }
      await deps.queues.enqueue(diagnoseJob, {
        incidentId: incident.id,
        runbookId: runbook.id,
        requestedBy: input.actor,
        requestKey: `manual:${randomUUID()}`,
      });
      return { incident, opened: false, runbookName: runbook.name };
    },
  };
}
