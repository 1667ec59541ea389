import type { NormalizedAlert } from '../alerts/normalized-alert.js';
import type { Db } from '../store/db.js';
import type { IncidentLink } from './incident.js';

/** An incident whose view changed: its newest timeline event, and whether the change opened it. */
export interface IncidentChange {
  incidentId: number;
  eventId: number;
  opened: boolean;
}

export interface RecordAlertsOptions {
  /** alerts of a service join its open incident when that incident saw an alert within this window; seconds */
  groupWindowSeconds: number;
}

/** What one delivery did; `changed` lists the incidents whose view changed (for Slack), with their newest event. */
export interface RecordAlertsResult {
  deliveryId: number;
  opened: number[];
  attached: number;
  repeated: number;
  duplicates: number;
  resolvedAlerts: number;
  resolvedIncidents: number[];
  ignored: number;
  changed: IncidentChange[];
}

export interface AlertDelivery {
  source: string;
  /** the delivery's body as JSON text, kept as the raw payload */
  payloadJson: string;
  alerts: NormalizedAlert[];
}

/** The links an alert brings: where it came from, its runbook and dashboard; only http(s). */
export function linksOf(alert: NormalizedAlert): IncidentLink[] {
  const candidates: [string, string | undefined | null][] = [
    ['Source', alert.generatorUrl],
    ['Runbook', alert.annotations.runbook_url],
    ['Dashboard', alert.annotations.dashboard_url ?? alert.annotations.grafana_url],
  ];
  return candidates.flatMap(([label, url]) => (url && /^https?:\/\//i.test(url) ? [{ label, url }] : []));
}

/**
 * Stores one accepted webhook delivery and folds its alerts into incidents, atomically (one statement: the
 * `record_alert_delivery` function of migrations/…_incident-functions.sql), so an answered delivery is never lost
 * and never half-applied:
 * - an alert already attached to an open incident (same fingerprint) stays there: an identical re-delivery only
 *   bumps its receive count; firing again after it resolved, or with a new start time, counts as a repeat;
 * - a new firing alert joins the open incident of its service when that saw an alert within the window,
 *   otherwise it opens an incident;
 * - a resolved alert resolves its attachment, and the incident resolves when none of its alerts still fires.
 * Deliveries for one service are serialised by an advisory lock, so concurrent senders cannot open two incidents.
 * One round trip per delivery keeps the intake fast: the rules run next to the data.
 */
export async function recordAlerts(
  db: Db,
  delivery: AlertDelivery,
  opts: RecordAlertsOptions,
): Promise<RecordAlertsResult> {
  const { rows } = await db.query<{ result: RecordAlertsResult }>({
    name: 'record-alert-delivery',
    text: 'SELECT record_alert_delivery($1, $2, $3, $4) AS result',
    values: [
      delivery.source,
      delivery.payloadJson,
      JSON.stringify(delivery.alerts.map(toRow)),
      opts.groupWindowSeconds,
    ],
  });
  return (rows[0] as { result: RecordAlertsResult }).result;
}

/**
 * Records several deliveries in one statement and so one transaction (`record_alert_deliveries`): the same rules,
 * applied in order, with one commit for all. Results come back in input order.
 */
export async function recordAlertBatch(
  db: Db,
  deliveries: AlertDelivery[],
  opts: RecordAlertsOptions,
): Promise<RecordAlertsResult[]> {
  if (deliveries.length === 1) return [await recordAlerts(db, deliveries[0] as AlertDelivery, opts)];
  // The bodies are spliced in as received: they are valid JSON, and re-serialising them would cost CPU for nothing.
  const batch = `[${deliveries
    .map(
      (d) =>
        `{"source":${JSON.stringify(d.source)},"payload":${d.payloadJson},"alerts":${JSON.stringify(d.alerts.map(toRow))}}`,
    )
    .join(',')}]`;
  const { rows } = await db.query<{ results: RecordAlertsResult[] }>({
    name: 'record-alert-deliveries',
    text: 'SELECT record_alert_deliveries($1, $2) AS results',
    values: [batch, opts.groupWindowSeconds],
  });
  return (rows[0] as { results: RecordAlertsResult[] }).results;
}

/** The row shape the SQL functions read (see record_alert_delivery). */
function toRow(a: NormalizedAlert) {
  return {
    fingerprint: a.fingerprint,
    source: a.source,
    name: a.name,
    service: a.service,
    severity: a.severity,
    status: a.status,
    summary: a.summary,
    labels: a.labels,
    annotations: a.annotations,
    starts_at: a.startsAt.toISOString(),
    starts_at_given: a.startsAtGiven,
    ends_at: a.endsAt?.toISOString() ?? null,
    generator_url: a.generatorUrl,
    links: linksOf(a),
  };
}
