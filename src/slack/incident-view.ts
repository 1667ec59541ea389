import { redactSecrets } from '../diagnostics/redact.js';
import type { Incident } from '../incidents/incident.js';
import type { IncidentCardView } from './blocks/incident-card.js';

/** What a card shows of an incident: alert text is untrusted, so tokens and passwords in it are masked for Slack. */
export function cardViewOf(incident: Incident): IncidentCardView {
  return {
    id: String(incident.id),
    title: redactSecrets(incident.title),
    service: redactSecrets(incident.service),
    severity: incident.severity,
    status: incident.status,
    summary: redactSecrets(incident.summary),
    alertCount: incident.alertCount,
    openedAt: incident.openedAt,
    resolvedAt: incident.resolvedAt,
    links: incident.links.map((link) => ({ ...link, url: redactSecrets(link.url) })),
    labels: Object.fromEntries(
      Object.entries(incident.labels).map(([key, value]) => [redactSecrets(key), redactSecrets(value)]),
    ),
  };
}

export { describeEvent } from '../incidents/describe-event.js';
