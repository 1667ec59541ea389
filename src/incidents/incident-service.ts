import type { NormalizedAlert, Severity } from '../alerts/normalized-alert.js';
import type { Db } from '../store/db.js';
import { isConnectionError, withTransaction } from '../store/db.js';
import type { Incident } from './incident.js';
import { createBatcher } from './intake-batcher.js';
import { getIncident, listOpenIncidents, openIncident } from './lifecycle.js';
import {
  type AlertDelivery,
  type IncidentChange,
  type RecordAlertsResult,
  recordAlertBatch,
  recordAlerts,
} from './record-alerts.js';
import { listTimeline, type TimelineEvent } from './timeline.js';

/** What happens after a committed change: later issues hang diagnostics and paging off these. */
export interface IncidentHooks {
  /** incidents whose state or timeline changed, with the newest event id; must not throw */
  changed(changes: IncidentChange[]): Promise<void>;
  opened?(incidentIds: number[], source: string): void;
  resolved?(incidentIds: number[]): void;
}

export interface IncidentService {
  ingestAlerts(delivery: {
    source: string;
    payloadJson: string;
    alerts: NormalizedAlert[];
  }): Promise<RecordAlertsResult>;
  /** `/incident trigger`: a human opens an incident; no grouping, a person asked for it */
  triggerManually(input: {
    service: string;
    summary: string;
    severity: Severity;
    actor: string;
    /** extra labels, e.g. `runbook_id` when a person runs a runbook on a service with no open incident */
    labels?: Record<string, string>;
  }): Promise<Incident>;
  get(id: number): Promise<Incident | null>;
  listOpen(opts?: { service?: string; limit?: number }): Promise<Incident[]>;
  timeline(id: number, opts?: { limit?: number }): Promise<TimelineEvent[]>;
}

export function createIncidentService(deps: {
  db: Db;
  hooks: IncidentHooks;
  groupWindowSeconds: number;
  /** concurrent intake transactions */
  concurrency: number;
  /** most deliveries per intake transaction */
  batchMax: number;
}): IncidentService {
  const { db, hooks } = deps;
  const opts = { groupWindowSeconds: deps.groupWindowSeconds };
  const batcher = createBatcher<AlertDelivery, RecordAlertsResult>(
    async (deliveries) => {
      try {
        return await recordAlertBatch(db, deliveries, opts);
      } catch (err) {
        // Postgres down fails them all (503, the senders retry); anything else is retried one by one, so a bad
        // delivery fails alone instead of taking its neighbours with it.
        if (isConnectionError(err) || deliveries.length === 1) throw err;
        return Promise.all(deliveries.map((d) => recordAlerts(db, d, opts)));
      }
    },
    { maxBatch: deps.batchMax, maxConcurrent: deps.concurrency },
  );
  return {
    async ingestAlerts(delivery) {
      const result = await batcher.submit(delivery);
      if (result.opened.length > 0) hooks.opened?.(result.opened, delivery.source);
      if (result.resolvedIncidents.length > 0) hooks.resolved?.(result.resolvedIncidents);
      if (result.changed.length > 0) await hooks.changed(result.changed);
      return result;
    },
    async triggerManually(input) {
      const { incident, eventId } = await withTransaction(db, async (tx) => {
        await tx.query('INSERT INTO alert_deliveries (source, payload, alert_count) VALUES ($1, $2, 0)', [
          'slack',
          JSON.stringify({ command: '/incident trigger', ...input }),
        ]);
        return openIncident(
          tx,
          {
            service: input.service,
            title: input.summary.split('\n')[0]?.slice(0, 200) || `Manual incident for ${input.service}`,
            summary: input.summary,
            severity: input.severity,
            source: 'slack',
            labels: { ...input.labels, service: input.service, triggered_by: input.actor },
            links: [],
          },
          input.actor,
        );
      });
      hooks.opened?.([incident.id], 'slack');
      await hooks.changed([{ incidentId: incident.id, eventId, opened: true }]);
      return incident;
    },
    get: (id) => getIncident(db, id),
    listOpen: (opts) => listOpenIncidents(db, opts),
    timeline: (id, opts) =>
      listTimeline(db, id, opts?.limit ? { limit: opts.limit, newest: true } : { limit: 10_000 }),
  };
}
