import type { Incident } from '../incidents/incident.js';
import type { TimelineEvent } from '../incidents/timeline.js';
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

const str = (v: unknown): string =>
  typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);

/** One line of plain words for a thread post about a timeline event. */
export function describeEvent(event: Pick<TimelineEvent, 'type' | 'data'>): string {
  const d = event.data;
  switch (event.type) {
    case 'incident.opened':
      return `Incident opened for ${str(d.service)}: ${str(d.title)}`;
    case 'alert.attached':
      return `New alert ${str(d.name)} (${str(d.severity)})${d.summary ? `: ${str(d.summary)}` : ''}`;
    case 'alert.repeated':
      return `Alert ${str(d.name)} is firing again`;
    case 'alert.resolved':
      return `Alert ${str(d.name)} resolved`;
    case 'incident.severity_changed':
      return `Severity changed from ${str(d.from)} to ${str(d.to)}`;
    case 'runbook.started':
      return `Running runbook ${str(d.name)} (${str(d.runbookId)}): ${Array.isArray(d.diagnostics) ? d.diagnostics.length : 0} checks`;
    case 'runbook.none':
      return `No runbook to run: ${str(d.reason)}`;
    case 'diagnostic.completed':
      return `Check ${str(d.diagnostic)}: ${str(d.status)} — ${str(d.summary)}`;
    case 'decision.made':
      return describeDecision(d);
    case 'incident.resolved':
      return `Incident resolved${d.reason ? `: ${str(d.reason)}` : ''}`;
    default:
      if (event.type.startsWith('incident.') && d.to) {
        return `Status changed from ${str(d.from)} to ${str(d.to)}${d.reason ? `: ${str(d.reason)}` : ''}`;
      }
      return event.type;
  }
}

interface PlannedStep {
  description?: unknown;
  action?: unknown;
  requiresApproval?: unknown;
}

/**
 * The decision in plain words and the planned steps, e.g. "Decision: DB connection pool at 95% of max (critical) →
 * kill idle connections, then raise the pool" followed by the numbered plan.
 */
function describeDecision(d: Record<string, unknown>): string {
  const lines = [`Decision (${str(d.runbookName) || str(d.runbookId)}): ${str(d.text)}`];
  const plan = Array.isArray(d.plan) ? (d.plan as PlannedStep[]) : [];
  if (plan.length > 0) {
    // execution arrives with the remediation module; until then people must know nothing was done
    lines.push('Planned remediation (recorded, not executed yet):');
    plan.forEach((step, i) => {
      const gate = step.requiresApproval === true ? 'needs approval' : 'automatic';
      lines.push(`${i + 1}. ${str(step.description)} (${str(step.action)}, ${gate})`);
    });
  }
  if (d.escalate === true) lines.push(`Escalating: ${str(d.reason)}`);
  return lines.join('\n');
}
