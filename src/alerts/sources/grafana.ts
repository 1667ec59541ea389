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

/** Grafana unified-alerting webhook contact point payload (version "1"). Unknown keys are ignored. */
export const GrafanaPayload = z.object({
  receiver: z.string().default(''),
  status: AlertStatus,
  orgId: z.number().int().optional(),
  groupKey: z.string().default(''),
  groupLabels: StringMap.default({}),
  commonLabels: StringMap.default({}),
  commonAnnotations: StringMap.default({}),
  externalURL: z.string().default(''),
  truncatedAlerts: z.number().int().nonnegative().optional(),
  title: z.string().optional(),
  message: z.string().optional(),
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
        silenceURL: z.string().optional(),
        dashboardURL: z.string().optional(),
        panelURL: z.string().optional(),
        valueString: z.string().optional(),
      }),
    )
    .min(1, { error: 'expected at least one alert' })
    .max(10_000),
});
export type GrafanaPayload = z.infer<typeof GrafanaPayload>;

export function normalizeGrafana(payload: GrafanaPayload): NormalizedAlert[] {
  return payload.alerts.map((alert) => {
    const annotations = { ...alert.annotations };
    if (alert.dashboardURL) annotations.dashboard_url ??= alert.dashboardURL;
    if (alert.panelURL) annotations.panel_url ??= alert.panelURL;
    if (alert.valueString) annotations.value_string ??= alert.valueString;
    return {
      source: 'grafana',
      fingerprint: alert.fingerprint,
      name: alert.labels.alertname ?? payload.title ?? 'unnamed alert',
      service: serviceFromLabels(alert.labels),
      severity: severityFromLabels(alert.labels),
      status: alert.status,
      summary: alert.annotations.summary ?? alert.annotations.description ?? '',
      labels: alert.labels,
      annotations,
      startsAt: new Date(alert.startsAt),
      startsAtGiven: true,
      endsAt: parseEndsAt(alert.endsAt),
      generatorUrl: alert.generatorURL || null,
    };
  });
}
