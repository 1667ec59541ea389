import type { IncidentService } from '../../incidents/incident-service.js';
import type { Logger } from '../../logger.js';
import type { RunbookService } from '../../runbooks/runbook-service.js';

/** What the Slack listeners may use: domain services only, never the store directly. */
export interface ListenerDeps {
  incidents: IncidentService;
  runbooks: RunbookService;
  log: Logger;
}
