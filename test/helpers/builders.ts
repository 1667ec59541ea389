import { createHash } from 'node:crypto';

export interface AlertSpec {
  name: string;
  service: string;
  severity?: string;
  instance?: string;
  status?: 'firing' | 'resolved';
  startsAt?: string;
  endsAt?: string;
  summary?: string;
}

/** A fingerprint that is stable per label set, as Alertmanager's is. */
export function fingerprintOf(labels: Record<string, string>): string {
  const text = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** One Alertmanager alert as the webhook carries it. */
export function buildAlert(spec: AlertSpec) {
  const labels: Record<string, string> = {
    alertname: spec.name,
    service: spec.service,
    severity: spec.severity ?? 'critical',
    instance: spec.instance ?? 'db-1:9187',
  };
  const status = spec.status ?? 'firing';
  return {
    status,
    labels,
    annotations: { summary: spec.summary ?? `${spec.name} on ${spec.service}` },
    startsAt: spec.startsAt ?? '2026-11-26T03:00:00Z',
    endsAt: status === 'resolved' ? (spec.endsAt ?? '2026-11-26T03:20:00Z') : '0001-01-01T00:00:00Z',
    generatorURL: `http://prometheus.example:9090/graph?g0.expr=${encodeURIComponent(spec.name)}`,
    fingerprint: fingerprintOf(labels),
  };
}

/** An Alertmanager webhook v4 group. */
export function buildAlertmanagerGroup(alerts: ReturnType<typeof buildAlert>[]) {
  const firing = alerts.some((a) => a.status === 'firing');
  const first = alerts[0];
  return {
    receiver: 'ai-sre',
    status: firing ? 'firing' : 'resolved',
    alerts,
    groupLabels: { service: first?.labels.service ?? '' },
    commonLabels: { service: first?.labels.service ?? '' },
    commonAnnotations: {},
    externalURL: 'http://alertmanager.example:9093',
    version: '4',
    groupKey: `{}:{service="${first?.labels.service ?? ''}"}`,
    truncatedAlerts: 0,
  };
}
