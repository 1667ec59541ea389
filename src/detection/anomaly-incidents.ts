import { createHash } from 'node:crypto';
import type { NormalizedAlert } from '../alerts/normalized-alert.js';
import { serviceFromLabels } from '../alerts/normalized-alert.js';
import type { IncidentService } from '../incidents/incident-service.js';
import type { Queryable } from '../store/db.js';
import type { AnomalySignal } from './detection-service.js';
import { renderSparkline } from './sparkline.js';

/**
 * A confirmed anomaly as an alert of source `anomaly`: it goes through the same intake as Alertmanager's, so it
 * joins the open incident of its service (deduplicated against alert-driven incidents) or opens one, and resolves
 * when the series recovers. Its labels carry `metric` and its annotations `value`, so runbooks' metric triggers match.
 */
export function anomalyAlertOf(signal: AnomalySignal): NormalizedAlert {
  const service = signal.labels.service ?? serviceFromLabels(signal.labels);
  const name = `Anomaly ${signal.series}`;
  const since = new Date(signal.since);
  const likelihood = signal.likelihood.toFixed(4);
  const range = signal.expected
    ? ` (expected ${compact(signal.expected.low)} to ${compact(signal.expected.high)})`
    : '';
  // the series at a glance, on the card and in the thread: the deviating part starts where the run began
  const values = signal.recent.map(([, v]) => v);
  const from = signal.recent.findIndex(([t]) => t >= signal.since);
  const spark =
    values.length >= 2
      ? `${renderSparkline(values, { width: 24, ...(from >= 0 ? { highlightFrom: from } : {}) }).text} `
      : '';
  const why =
    signal.reason === 'agreement'
      ? `together with ${signal.agreeing.length} other series of ${service}`
      : signal.reason === 'persisted'
        ? 'for several points in a row'
        : 'recovered';
  return {
    source: 'anomaly',
    fingerprint: `anomaly-${createHash('sha1').update(signal.seriesKey).digest('hex').slice(0, 16)}`,
    name,
    service,
    severity: signal.reason === 'agreement' ? 'high' : 'warning',
    status: signal.kind === 'confirmed' ? 'firing' : 'resolved',
    summary:
      signal.kind === 'confirmed'
        ? `${spark}${signal.seriesKey} is anomalous ${why}: value ${signal.value}${range}, likelihood ${likelihood}, deviating since ${since.toISOString()}`
        : `${signal.seriesKey} is back to normal (value ${signal.value})`,
    labels: { ...signal.labels, alertname: name, metric: signal.series, service },
    annotations: {
      value: String(signal.value),
      likelihood,
      deviating_since: since.toISOString(),
      reason: signal.reason,
      series: signal.seriesKey,
      ...(signal.agreeing.length > 0 ? { agreeing: signal.agreeing.slice(0, 10).join(' ') } : {}),
      ...(signal.expected
        ? { expected_low: compact(signal.expected.low), expected_high: compact(signal.expected.high) }
        : {}),
      // the series around the anomaly, for the sparkline and the chart: [[epoch ms, value], …]
      recent_points: JSON.stringify(signal.recent.map(([t, v]) => [t, Number(compact(v))])),
    },
    startsAt: since,
    startsAtGiven: true,
    endsAt: signal.kind === 'ended' ? new Date(signal.timestamp) : null,
    generatorUrl: null,
  };
}

/** 4 significant digits: evidence for people, not for arithmetic. */
function compact(n: number): string {
  return String(Number(n.toPrecision(4)));
}

/** Services in a maintenance window now. */
export async function servicesInMaintenance(db: Queryable, services: string[]): Promise<Set<string>> {
  if (services.length === 0) return new Set();
  const { rows } = await db.query<{ service: string }>(
    `SELECT DISTINCT service FROM maintenance_windows
      WHERE service = ANY($1) AND starts_at <= now() AND ends_at > now()`,
    [services],
  );
  return new Set(rows.map((r) => r.service));
}

/**
 * Turns confirmed (and ended) anomaly runs into incidents through the normal intake, except for services in
 * maintenance. Returns how many signals were suppressed.
 */
export async function reportAnomalies(
  deps: { db: Queryable; incidents: IncidentService },
  signals: AnomalySignal[],
): Promise<{ reported: number; suppressed: number }> {
  const alerts = signals.map((s) => anomalyAlertOf(s));
  const quiet = await servicesInMaintenance(deps.db, [...new Set(alerts.map((a) => a.service))]);
  const kept = alerts.filter((a) => !quiet.has(a.service));
  if (kept.length > 0) {
    await deps.incidents.ingestAlerts({
      source: 'anomaly',
      // the raw delivery keeps each signal without its recent points: its alert's annotations carry them already
      payloadJson: JSON.stringify({
        signals: signals
          .filter((_, i) => !quiet.has(alerts[i]?.service ?? ''))
          .map(({ recent: _, ...signal }) => signal),
      }),
      alerts: kept,
    });
  }
  return { reported: kept.length, suppressed: alerts.length - kept.length };
}

/** `/incident maintenance <service> <duration>`: opens a window now (or ends the service's windows with 0). */
export async function setMaintenance(
  db: Queryable,
  input: { service: string; durationMs: number; actor: string; reason: string },
): Promise<{ endsAt: Date | null }> {
  if (input.durationMs <= 0) {
    await db.query(`UPDATE maintenance_windows SET ends_at = now() WHERE service = $1 AND ends_at > now()`, [
      input.service,
    ]);
    return { endsAt: null };
  }
  const { rows } = await db.query<{ ends_at: Date }>(
    `INSERT INTO maintenance_windows (service, ends_at, created_by, reason)
     VALUES ($1, now() + make_interval(secs => $2), $3, $4) RETURNING ends_at`,
    [input.service, input.durationMs / 1000, input.actor, input.reason],
  );
  return { endsAt: (rows[0] as { ends_at: Date }).ends_at };
}
