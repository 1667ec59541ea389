import type { IncidentService } from '../../incidents/incident-service.js';
import type { Logger } from '../../logger.js';

/** What the Slack listeners may use: domain services only, never the store directly. */
export interface ListenerDeps {
  incidents: IncidentService;
  log: Logger;
}
