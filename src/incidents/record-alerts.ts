import { mostSevere, type NormalizedAlert, type Severity } from '../alerts/normalized-alert.js';
import { type Db, type Tx, withTransaction } from '../store/db.js';
import type { IncidentLink } from './incident.js';
import { openIncident, transitionIncident } from './lifecycle.js';
import { appendTimeline, type TimelineEventInput } from './timeline.js';

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

interface Attachment {
  id: number;
  incident_id: number;
  fingerprint: string;
  status: 'firing' | 'resolved';
  starts_at: Date;
}

interface OpenIncidentRow {
  id: number;
  service: string;
  severity: Severity;
  links: IncidentLink[];
}

const MAX_LINKS = 6;

/** The links an alert brings: where it came from, its runbook and dashboard; only http(s). */
export function linksOf(alert: NormalizedAlert): IncidentLink[] {
  const candidates: [string, string | undefined | null][] = [
    ['Source', alert.generatorUrl],
    ['Runbook', alert.annotations.runbook_url],
    ['Dashboard', alert.annotations.dashboard_url ?? alert.annotations.grafana_url],
  ];
  return candidates.flatMap(([label, url]) => (url && /^https?:\/\//i.test(url) ? [{ label, url }] : []));
}

function mergeLinks(existing: IncidentLink[], extra: IncidentLink[]): IncidentLink[] {
  const merged = [...existing];
  for (const link of extra) {
    if (merged.length >= MAX_LINKS) break;
    if (!merged.some((l) => l.url === link.url)) merged.push(link);
  }
  return merged;
}

/**
 * Stores one accepted webhook delivery and folds its alerts into incidents, in one transaction, so that an
 * answered delivery is never lost and never half-applied:
 * - an alert already attached to an open incident (same fingerprint) stays there: an identical re-delivery only
 *   bumps its receive count; firing again after it resolved, or with a new start time, counts as a repeat;
 * - a new firing alert joins the open incident of its service when that saw an alert within the window,
 *   otherwise it opens an incident;
 * - a resolved alert resolves its attachment, and the incident resolves when none of its alerts still fires.
 * Deliveries for one service are serialised by an advisory lock, so concurrent senders cannot open two incidents.
 */
export async function recordAlerts(
  db: Db,
  delivery: { source: string; payload: unknown; alerts: NormalizedAlert[] },
  opts: RecordAlertsOptions,
): Promise<RecordAlertsResult> {
  return withTransaction(db, (tx) => recordAlertsInTx(tx, delivery, opts));
}

async function recordAlertsInTx(
  tx: Tx,
  delivery: { source: string; payload: unknown; alerts: NormalizedAlert[] },
  opts: RecordAlertsOptions,
): Promise<RecordAlertsResult> {
  const { alerts, source } = delivery;
  const inserted = await tx.query<{ id: number }>(
    'INSERT INTO alert_deliveries (source, payload, alert_count) VALUES ($1, $2, $3) RETURNING id',
    [source, JSON.stringify(delivery.payload), alerts.length],
  );
  const deliveryId = (inserted.rows[0] as { id: number }).id;
  const result: RecordAlertsResult = {
    deliveryId,
    opened: [],
    attached: 0,
    repeated: 0,
    duplicates: 0,
    resolvedAlerts: 0,
    resolvedIncidents: [],
    ignored: 0,
    changed: [],
  };
  if (alerts.length === 0) return result;

  const services = [...new Set(alerts.map((a) => a.service))].sort();
  // Sorted lock order: two deliveries touching the same services cannot deadlock.
  await tx.query(
    `SELECT pg_advisory_xact_lock(k) FROM (SELECT hashtextextended('ai-sre:incident-group:' || s, 0) AS k FROM unnest($1::text[]) AS s ORDER BY 1) AS locks`,
    [services],
  );

  // The latest alert per fingerprint wins when a delivery carries the same alert twice.
  const byFingerprint = new Map<string, NormalizedAlert>();
  for (const alert of alerts) byFingerprint.set(alert.fingerprint, alert);
  const fingerprints = [...byFingerprint.keys()];
  result.duplicates += alerts.length - fingerprints.length;

  const attachments = await tx.query<Attachment>(
    `SELECT ia.id, ia.incident_id, ia.fingerprint, ia.status, ia.starts_at
       FROM incident_alerts ia JOIN incidents i ON i.id = ia.incident_id
      WHERE ia.fingerprint = ANY($1::text[]) AND i.status <> 'resolved'`,
    [fingerprints],
  );
  const attachmentOf = new Map(attachments.rows.map((a) => [a.fingerprint, a]));

  const openRows = await tx.query<OpenIncidentRow>(
    `SELECT DISTINCT ON (service) id, service, severity, links FROM incidents
      WHERE service = ANY($1::text[]) AND status <> 'resolved' AND last_alert_at >= now() - make_interval(secs => $2)
      ORDER BY service, last_alert_at DESC`,
    [services, opts.groupWindowSeconds],
  );
  const openByService = new Map(openRows.rows.map((r) => [r.service, r]));
  const incidentById = new Map<number, OpenIncidentRow>(openRows.rows.map((r) => [r.id, r]));

  const duplicateIds: number[] = [];
  const repeats: { id: number; alert: NormalizedAlert; incidentId: number }[] = [];
  const resolves: { id: number; alert: NormalizedAlert; incidentId: number }[] = [];
  const newAttachments: { incidentId: number; alert: NormalizedAlert }[] = [];
  const events: TimelineEventInput[] = [];
  /** per incident: alerts added, most severe new severity, links to add */
  const growth = new Map<number, { added: number; severity: Severity | null; links: IncidentLink[] }>();
  const grow = (incidentId: number, alert: NormalizedAlert) => {
    const g = growth.get(incidentId) ?? { added: 0, severity: null, links: [] };
    g.added += 1;
    g.severity = g.severity ? mostSevere(g.severity, alert.severity) : alert.severity;
    g.links.push(...linksOf(alert));
    growth.set(incidentId, g);
  };

  for (const alert of byFingerprint.values()) {
    const attachment = attachmentOf.get(alert.fingerprint);
    if (alert.status === 'resolved') {
      if (attachment?.status === 'firing') {
        resolves.push({ id: attachment.id, alert, incidentId: attachment.incident_id });
        events.push({
          incidentId: attachment.incident_id,
          actor: alert.source,
          type: 'alert.resolved',
          data: {
            fingerprint: alert.fingerprint,
            name: alert.name,
            endsAt: alert.endsAt?.toISOString() ?? null,
          },
          notify: true,
        });
      } else {
        result.ignored += attachment ? 0 : 1;
        result.duplicates += attachment ? 1 : 0;
        if (attachment) duplicateIds.push(attachment.id);
      }
      continue;
    }
    if (attachment) {
      const sameOccurrence =
        !alert.startsAtGiven || attachment.starts_at.getTime() === alert.startsAt.getTime();
      if (attachment.status === 'firing' && sameOccurrence) {
        duplicateIds.push(attachment.id);
        result.duplicates += 1;
      } else {
        repeats.push({ id: attachment.id, alert, incidentId: attachment.incident_id });
        grow(attachment.incident_id, alert);
        events.push({
          incidentId: attachment.incident_id,
          actor: alert.source,
          type: 'alert.repeated',
          data: { fingerprint: alert.fingerprint, name: alert.name, startsAt: alert.startsAt.toISOString() },
          notify: true,
        });
      }
      continue;
    }
    let target = openByService.get(alert.service);
    if (!target) {
      const opened = await openIncident(
        tx,
        {
          service: alert.service,
          title: alert.name,
          summary: alert.summary,
          severity: alert.severity,
          source: alert.source,
          labels: alert.labels,
          links: linksOf(alert),
          firstSignalAt: alert.startsAt,
          alertCount: 0,
        },
        alert.source,
      );
      target = {
        id: opened.incident.id,
        service: alert.service,
        severity: alert.severity,
        links: opened.incident.links,
      };
      openByService.set(alert.service, target);
      incidentById.set(target.id, target);
      result.opened.push(target.id);
    } else {
      events.push({
        incidentId: target.id,
        actor: alert.source,
        type: 'alert.attached',
        data: {
          fingerprint: alert.fingerprint,
          name: alert.name,
          severity: alert.severity,
          summary: alert.summary.slice(0, 500),
        },
        notify: !result.opened.includes(target.id),
      });
    }
    newAttachments.push({ incidentId: target.id, alert });
    grow(target.id, alert);
  }

  if (duplicateIds.length > 0) {
    await tx.query(
      `UPDATE incident_alerts SET receive_count = receive_count + 1, last_received_at = now(), last_delivery_id = $2
        WHERE id = ANY($1::bigint[])`,
      [duplicateIds, deliveryId],
    );
  }
  if (newAttachments.length > 0) {
    await insertAttachments(tx, newAttachments, deliveryId);
    result.attached = newAttachments.length - result.opened.length;
  }
  if (repeats.length > 0) {
    await tx.query(
      `UPDATE incident_alerts ia
          SET status = 'firing', starts_at = r.starts_at, ends_at = NULL, severity = r.severity, summary = r.summary,
              labels = r.labels, annotations = r.annotations, receive_count = ia.receive_count + 1,
              last_received_at = now(), last_delivery_id = $2
         FROM jsonb_to_recordset($1::jsonb) AS r(id bigint, starts_at timestamptz, severity text, summary text, labels jsonb, annotations jsonb)
        WHERE ia.id = r.id`,
      [
        JSON.stringify(
          repeats.map(({ id, alert }) => ({
            id,
            starts_at: alert.startsAt.toISOString(),
            severity: alert.severity,
            summary: alert.summary,
            labels: alert.labels,
            annotations: alert.annotations,
          })),
        ),
        deliveryId,
      ],
    );
    result.repeated = repeats.length;
  }
  if (resolves.length > 0) {
    await tx.query(
      `UPDATE incident_alerts ia
          SET status = 'resolved', ends_at = COALESCE(r.ends_at, now()), receive_count = ia.receive_count + 1,
              last_received_at = now(), last_delivery_id = $2
         FROM jsonb_to_recordset($1::jsonb) AS r(id bigint, ends_at timestamptz)
        WHERE ia.id = r.id`,
      [
        JSON.stringify(
          resolves.map(({ id, alert }) => ({ id, ends_at: alert.endsAt?.toISOString() ?? null })),
        ),
        deliveryId,
      ],
    );
    result.resolvedAlerts = resolves.length;
  }

  for (const [incidentId, g] of growth) {
    const known = incidentById.get(incidentId);
    const severity = known && g.severity ? mostSevere(known.severity, g.severity) : null;
    const links = known ? mergeLinks(known.links, g.links) : null;
    await tx.query(
      `UPDATE incidents SET alert_count = alert_count + $2, last_alert_at = now(), updated_at = now(), revision = revision + 1,
              severity = COALESCE($3, severity), links = COALESCE($4::jsonb, links)
        WHERE id = $1`,
      [incidentId, g.added, severity, links ? JSON.stringify(links) : null],
    );
    if (known && severity && severity !== known.severity) {
      events.push({
        incidentId,
        actor: 'ai-sre',
        type: 'incident.severity_changed',
        data: { from: known.severity, to: severity },
        notify: true,
      });
    }
  }

  const eventIds = await appendTimeline(tx, events);
  const newest = new Map<number, number>();
  events.forEach((e, i) => {
    newest.set(e.incidentId, Math.max(newest.get(e.incidentId) ?? 0, eventIds[i] ?? 0));
  });

  const resolvedIncidentIds = [...new Set(resolves.map((r) => r.incidentId))];
  if (resolvedIncidentIds.length > 0) {
    const stillFiring = await tx.query<{ incident_id: number }>(
      `SELECT DISTINCT incident_id FROM incident_alerts WHERE incident_id = ANY($1::bigint[]) AND status = 'firing'`,
      [resolvedIncidentIds],
    );
    const firing = new Set(stillFiring.rows.map((r) => r.incident_id));
    for (const incidentId of resolvedIncidentIds) {
      if (firing.has(incidentId)) continue;
      const { eventId } = await transitionIncident(tx, incidentId, 'resolved', {
        actor: source,
        reason: 'all alerts resolved',
      });
      newest.set(incidentId, Math.max(newest.get(incidentId) ?? 0, eventId));
      result.resolvedIncidents.push(incidentId);
    }
  }
  for (const id of result.opened) {
    if (!newest.has(id)) newest.set(id, 0);
  }
  result.changed = [...newest].map(([incidentId, eventId]) => ({
    incidentId,
    eventId,
    opened: result.opened.includes(incidentId),
  }));
  return result;
}

async function insertAttachments(
  tx: Tx,
  rows: { incidentId: number; alert: NormalizedAlert }[],
  deliveryId: number,
): Promise<void> {
  await tx.query(
    `INSERT INTO incident_alerts (incident_id, fingerprint, source, name, status, severity, summary, labels, annotations,
                                  starts_at, ends_at, generator_url, first_delivery_id, last_delivery_id)
     SELECT r.incident_id, r.fingerprint, r.source, r.name, 'firing', r.severity, r.summary, r.labels, r.annotations,
            r.starts_at, NULL, r.generator_url, $2, $2
       FROM jsonb_to_recordset($1::jsonb) AS r(incident_id bigint, fingerprint text, source text, name text, severity text,
            summary text, labels jsonb, annotations jsonb, starts_at timestamptz, generator_url text)`,
    [
      JSON.stringify(
        rows.map(({ incidentId, alert }) => ({
          incident_id: incidentId,
          fingerprint: alert.fingerprint,
          source: alert.source,
          name: alert.name,
          severity: alert.severity,
          summary: alert.summary,
          labels: alert.labels,
          annotations: alert.annotations,
          starts_at: alert.startsAt.toISOString(),
          generator_url: alert.generatorUrl,
        })),
      ),
      deliveryId,
    ],
  );
}
