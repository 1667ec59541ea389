import { z } from 'zod';
import {
  AlertStatus,
  fingerprintOf,
  type NormalizedAlert,
  Severity,
  StringMap,
  Timestamp,
} from '../normalized-alert.js';

/**
 * ai-sre's own alert format, for senders without a dedicated route (scripts, CI jobs, other monitors).
 * A body is one alert or `{ "alerts": [ ... ] }`. Documented in the README.
 */
export const GenericAlert = z.object({
  source: z.string().min(1).max(100).default('generic'),
  name: z.string().min(1).max(500),
  service: z.string().min(1).max(200),
  severity: Severity.default('warning'),
  summary: z.string().max(10_000).default(''),
  labels: StringMap.default({}),
  annotations: StringMap.default({}),
  status: AlertStatus.default('firing'),
  /** identity across deliveries; default: a hash of source, name, service and labels */
  fingerprint: z.string().min(1).max(128).optional(),
  startsAt: Timestamp.optional(),
  endsAt: Timestamp.optional(),
  url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).optional(),
});
export type GenericAlert = z.infer<typeof GenericAlert>;

/** Several alerts in one body. */
export const GenericBatch = z.object({
  alerts: z.array(GenericAlert).min(1, { error: 'expected at least one alert' }).max(10_000),
});

export type GenericPayload = z.infer<typeof GenericBatch>;

/** A body with an `alerts` key is a batch, anything else one alert, so errors name the fields of the shape sent. */
export function parseGenericPayload(body: unknown): z.ZodSafeParseResult<GenericPayload> {
  if (body !== null && typeof body === 'object' && 'alerts' in body) return GenericBatch.safeParse(body);
  const single = GenericAlert.safeParse(body);
  return single.success
    ? { success: true, data: { alerts: [single.data] } }
    : { success: false, error: single.error as unknown as z.ZodError<GenericPayload> };
}

export function normalizeGeneric(payload: GenericPayload, receivedAt = new Date()): NormalizedAlert[] {
  return payload.alerts.map((alert) => {
    const labels = { alertname: alert.name, service: alert.service, ...alert.labels };
    return {
      source: alert.source,
      fingerprint: alert.fingerprint ?? fingerprintOf(alert.source, labels),
      name: alert.name,
      service: alert.service,
      severity: alert.severity,
      status: alert.status,
      summary: alert.summary,
      labels,
      annotations: alert.annotations,
      startsAt: alert.startsAt ? new Date(alert.startsAt) : receivedAt,
      startsAtGiven: alert.startsAt !== undefined,
      endsAt: alert.endsAt ? new Date(alert.endsAt) : null,
      generatorUrl: alert.url ?? null,
    };
  });
}
