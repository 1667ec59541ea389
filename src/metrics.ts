import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The bot's own metrics, served on /metrics in the Prometheus text format. */
export function createMetrics() {
  const registry = new Registry();
  const metrics = {
    registry,
    alertsReceived: new Counter({
      name: 'ai_sre_alerts_received_total',
      help: 'Alerts accepted from webhooks, by source',
      labelNames: ['source'] as const,
      registers: [registry],
    }),
    webhookRequests: new Counter({
      name: 'ai_sre_webhook_requests_total',
      help: 'Webhook requests by source and HTTP status',
      labelNames: ['source', 'status'] as const,
      registers: [registry],
    }),
    webhookDuration: new Histogram({
      name: 'ai_sre_webhook_duration_seconds',
      help: 'Time from request to answer of accepted webhooks',
      labelNames: ['source'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    incidentsOpened: new Counter({
      name: 'ai_sre_incidents_opened_total',
      help: 'Incidents opened, by source',
      labelNames: ['source'] as const,
      registers: [registry],
    }),
    detectionSplitSeries: new Counter({
      name: 'ai_sre_detection_split_series_total',
      help: 'Times a metric series was found fed to more than one process (route each series to one process)',
      registers: [registry],
    }),
    incidentsResolved: new Counter({
      name: 'ai_sre_incidents_resolved_total',
      help: 'Incidents resolved',
      registers: [registry],
    }),
    slackApiErrors: new Counter({
      name: 'ai_sre_slack_api_errors_total',
      help: 'Failed Slack Web API calls, by method and error',
      labelNames: ['method', 'error'] as const,
      registers: [registry],
    }),
    diagnosticDuration: new Histogram({
      name: 'ai_sre_diagnostic_duration_seconds',
      help: 'Time each diagnostic took, by type and outcome status',
      labelNames: ['type', 'status'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    runbookDecisions: new Counter({
      name: 'ai_sre_runbook_decisions_total',
      help: 'Runbook decisions, by runbook and outcome (remediate, escalate)',
      labelNames: ['runbook', 'outcome'] as const,
      registers: [registry],
    }),
    remediationSteps: new Counter({
      name: 'ai_sre_remediation_steps_total',
      help: 'Remediation steps by action and how they ended (succeeded, failed, refused, skipped, dry_run, verified, verification_failed, rejected, expired)',
      labelNames: ['action', 'outcome'] as const,
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'ai_sre_queue_jobs',
      help: 'Jobs per queue and state, read at scrape time',
      labelNames: ['queue', 'state'] as const,
      registers: [registry],
    }),
  };
  return metrics;
}
export type Metrics = ReturnType<typeof createMetrics>;
