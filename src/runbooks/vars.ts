import type { Targets } from '../diagnostics/targets.js';
import type { TemplateVars } from '../diagnostics/templating.js';
import type { MatchableAlert } from './matcher.js';

/**
 * The values a run's placeholders and conditions see: the incident's labels overlaid with its first firing alert's
 * labels, that alert's annotations, the incident's own fields, and the targets file's values for the service.
 */
export function buildTemplateVars(
  incident: { id: number; service: string; severity: string; title: string; labels: Record<string, string> },
  alerts: MatchableAlert[],
  targets: Targets,
): TemplateVars {
  const primary = alerts.find((a) => a.status === 'firing') ?? alerts[0];
  return {
    labels: { ...incident.labels, ...(primary?.labels ?? {}) },
    annotations: { ...(primary?.annotations ?? {}) },
    incident: {
      id: String(incident.id),
      service: incident.service,
      severity: incident.severity,
      title: incident.title,
      ...(primary ? { alert: primary.name } : {}),
    },
    service: { ...(targets.services[incident.service] ?? {}) },
  };
}
