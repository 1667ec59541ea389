import { z } from 'zod';
import {
  AlertStatus,
  type NormalizedAlert,
  parseEndsAt,
  StringMap,
  serviceFromLabels,
  severityFromLabels,
  Timestamp,
} from '../normalized-alert.js';

/** Alertmanager webhook payload, version 4 (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config). Unknown keys are ignored. */
export const AlertmanagerPayload = z.object({
  version: z.literal('4', { error: 'expected "4" (Alertmanager webhook payload version)' }),
  groupKey: z.string(),
  truncatedAlerts: z.number().int().nonnegative().optional(),
  status: AlertStatus,
  receiver: z.string(),
  groupLabels: StringMap.default({}),
  commonLabels: StringMap.default({}),
  commonAnnotations: StringMap.default({}),
  externalURL: z.string().default(''),
  alerts: z
    .array(
      z.object({
        status: AlertStatus,
        labels: StringMap,
        annotations: StringMap.default({}),
        startsAt: Timestamp,
        endsAt: z.string().optional(),
        generatorURL: z.string().default(''),
        fingerprint: z.string().min(1).max(128),
      }),
    )
    .min(1, { error: 'expected at least one alert' })
    .max(10_000),
});
export type AlertmanagerPayload = z.infer<typeof AlertmanagerPayload>;

export function normalizeAlertmanager(
  payload: AlertmanagerPayload,
  source = 'alertmanager',
): NormalizedAlert[] {
  return payload.alerts.map((alert) => ({
    source,
    fingerprint: alert.fingerprint,
    name: alert.labels.alertname ?? 'unnamed alert',
    service: serviceFromLabels(alert.labels),
    severity: severityFromLabels(alert.labels),
    status: alert.status,
    summary: alert.annotations.summary ?? alert.annotations.description ?? alert.annotations.message ?? '',
    labels: alert.labels,
    annotations: alert.annotations,
    startsAt: new Date(alert.startsAt),
    startsAtGiven: true,
    endsAt: parseEndsAt(alert.endsAt),
    generatorUrl: alert.generatorURL || null,
  }));
}
