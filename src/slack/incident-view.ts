import type { Incident } from '../incidents/incident.js';
import type { IncidentCardView } from './blocks/incident-card.js';

export function cardViewOf(incident: Incident): IncidentCardView {
  return {
    id: String(incident.id),
    title: incident.title,
    service: incident.service,
    severity: incident.severity,
    status: incident.status,
    summary: incident.summary,
    alertCount: incident.alertCount,
    openedAt: incident.openedAt,
    resolvedAt: incident.resolvedAt,
    links: incident.links,
    labels: incident.labels,
  };
}

export { describeEvent } from '../incidents/describe-event.js';
