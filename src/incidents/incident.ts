import { z } from 'zod';
import type { Severity } from '../alerts/normalized-alert.js';

export const IncidentStatus = z.enum([
  'open',
  'investigating',
  'mitigating',
  'awaiting_approval',
  'escalated',
  'resolved',
]);
export type IncidentStatus = z.infer<typeof IncidentStatus>;

export const IncidentLink = z.object({ label: z.string(), url: z.string() });
export type IncidentLink = z.infer<typeof IncidentLink>;

export interface Incident {
  id: number;
  service: string;
  title: string;
  summary: string;
  severity: Severity;
  status: IncidentStatus;
  source: string;
  alertCount: number;
  labels: Record<string, string>;
  links: IncidentLink[];
  revision: number;
  openedAt: Date;
  firstSignalAt: Date;
  lastAlertAt: Date;
  updatedAt: Date;
  resolvedAt: Date | null;
}

export interface IncidentRow {
  id: number;
  service: string;
  title: string;
  summary: string;
  severity: Severity;
  status: IncidentStatus;
  source: string;
  alert_count: number;
  labels: Record<string, string>;
  links: IncidentLink[];
  revision: number;
  opened_at: Date;
  first_signal_at: Date;
  last_alert_at: Date;
  updated_at: Date;
  resolved_at: Date | null;
}

export const INCIDENT_COLUMNS =
  'id, service, title, summary, severity, status, source, alert_count, labels, links, revision, opened_at, first_signal_at, last_alert_at, updated_at, resolved_at';

export function incidentFromRow(row: IncidentRow): Incident {
  return {
    id: row.id,
    service: row.service,
    title: row.title,
    summary: row.summary,
    severity: row.severity,
    status: row.status,
    source: row.source,
    alertCount: row.alert_count,
    labels: row.labels,
    links: row.links,
    revision: row.revision,
    openedAt: row.opened_at,
    firstSignalAt: row.first_signal_at,
    lastAlertAt: row.last_alert_at,
    updatedAt: row.updated_at,
    resolvedAt: row.resolved_at,
  };
}

/** How incidents are shown to people: `INC-42`. */
export function incidentRef(id: number): string {
  return `INC-${id}`;
}

/** Accepts `42`, `INC-42`, `inc-42`, `#42`; null when it is not an incident id. */
export function parseIncidentRef(text: string): number | null {
  const match = /^(?:inc-|#)?(\d{1,15})$/i.exec(text.trim());
  if (!match?.[1]) return null;
  const id = Number(match[1]);
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}
