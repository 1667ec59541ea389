import type { MetricSample } from './sample.js';

export type MetricType = 'counter' | 'gauge' | 'histogram';

/**
 * Every metric family the sandbox exposes, with its type and HELP text. Names and labels follow what the real
 * exporters use (client libraries, HikariCP, cAdvisor, kube-state-metrics, node_exporter), because runbooks and
 * alert rules are written against those.
 */
export const METRIC_FAMILIES: Readonly<Record<string, { type: MetricType; help: string }>> = {
  http_requests_total: {
    type: 'counter',
    help: 'API requests served, by route, status code and the version that served them.',
  },
  http_request_duration_seconds: { type: 'histogram', help: 'Time to answer an API request, in seconds.' },
  http_client_requests_total: {
    type: 'counter',
    help: 'Calls to another service, by peer and status code (code "0": timeout or connection error).',
  },
  http_client_request_duration_seconds: {
    type: 'histogram',
    help: 'Time until a call to another service answered or failed, in seconds.',
  },
  hikaricp_connections_active: { type: 'gauge', help: 'Database connections checked out of the pool.' },
  hikaricp_connections_idle: { type: 'gauge', help: 'Database connections idle in the pool.' },
  hikaricp_connections_max: { type: 'gauge', help: 'Most connections the pool may open.' },
  hikaricp_connections_pending: { type: 'gauge', help: 'Requests waiting for a connection from the pool.' },
  container_memory_working_set_bytes: {
    type: 'gauge',
    help: "Working set of the pod's container, in bytes.",
  },
  container_cpu_usage_seconds_total: { type: 'counter', help: 'CPU time used by the container, in seconds.' },
  container_cpu_cfs_periods_total: { type: 'counter', help: 'CFS enforcement periods that elapsed.' },
  container_cpu_cfs_throttled_periods_total: {
    type: 'counter',
    help: 'CFS periods in which the container hit its CPU limit.',
  },
  kube_pod_container_resource_limits: { type: 'gauge', help: 'Resource limit of the container.' },
  kube_pod_container_status_restarts_total: {
    type: 'counter',
    help: 'Times the container restarted inside its pod.',
  },
  kube_pod_container_status_last_terminated_reason: {
    type: 'gauge',
    help: 'Why the container last terminated (1 for the reason).',
  },
  kube_deployment_spec_replicas: { type: 'gauge', help: 'Replicas the deployment asks for.' },
  node_filesystem_avail_bytes: { type: 'gauge', help: 'Bytes available to writers on the filesystem.' },
  node_filesystem_size_bytes: { type: 'gauge', help: 'Size of the filesystem, in bytes.' },
  sandbox_build_info: { type: 'gauge', help: 'The version a service runs (always 1).' },
  circuit_breaker_open: { type: 'gauge', help: '1 while the circuit breaker to the peer is open.' },
  sandbox_log_level: { type: 'gauge', help: 'The log level a service writes at (1 for the current one).' },
};

/** Prometheus' default buckets; seconds */
export const DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

type Labels = Readonly<Record<string, string>>;

function keyOf(labels: Labels): string {
  return JSON.stringify(Object.entries(labels));
}

/** A counter with labels; series appear on their first increment. */
export class CounterVec {
  private readonly series = new Map<string, { labels: Labels; value: number }>();

  constructor(private readonly name: string) {}

  inc(labels: Labels, by = 1): void {
    const key = keyOf(labels);
    const s = this.series.get(key);
    if (s) s.value += by;
    else this.series.set(key, { labels: { ...labels }, value: by });
  }

  samples(): MetricSample[] {
    return [...this.series.values()].map((s) => ({ name: this.name, labels: s.labels, value: s.value }));
  }
}

/** A histogram with labels over DURATION_BUCKETS_SECONDS; `samples()` gives cumulative buckets, `_sum` and `_count`. */
export class HistogramVec {
  private readonly series = new Map<
    string,
    { labels: Labels; counts: number[]; sum: number; count: number }
  >();

  constructor(private readonly name: string) {}

  observe(labels: Labels, seconds: number): void {
    const key = keyOf(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { labels: { ...labels }, counts: DURATION_BUCKETS_SECONDS.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    const i = DURATION_BUCKETS_SECONDS.findIndex((le) => seconds <= le);
    if (i >= 0) s.counts[i] = (s.counts[i] ?? 0) + 1;
    s.sum += seconds;
    s.count += 1;
  }

  samples(): MetricSample[] {
    const out: MetricSample[] = [];
    for (const s of this.series.values()) {
      let cumulative = 0;
      DURATION_BUCKETS_SECONDS.forEach((le, i) => {
        cumulative += s.counts[i] ?? 0;
        out.push({ name: `${this.name}_bucket`, labels: { ...s.labels, le: String(le) }, value: cumulative });
      });
      out.push({ name: `${this.name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count });
      out.push({ name: `${this.name}_sum`, labels: s.labels, value: s.sum });
      out.push({ name: `${this.name}_count`, labels: s.labels, value: s.count });
    }
    return out;
  }
}

/** The family a sample belongs to: a histogram's `_bucket`, `_sum` and `_count` belong to the histogram. */
export function familyOf(name: string): string {
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (m?.[1] && METRIC_FAMILIES[m[1]]?.type === 'histogram') return m[1];
  return name;
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

/**
 * Prometheus text exposition format 0.0.4: samples grouped by family (first appearance order), each family
 * introduced by its HELP and TYPE lines.
 */
export function renderExposition(samples: readonly MetricSample[]): string {
  const families = new Map<string, MetricSample[]>();
  for (const s of samples) {
    const family = familyOf(s.name);
    const list = families.get(family);
    if (list) list.push(s);
    else families.set(family, [s]);
  }
  const lines: string[] = [];
  for (const [family, list] of families) {
    const meta = METRIC_FAMILIES[family];
    lines.push(`# HELP ${family} ${meta?.help ?? family}`);
    lines.push(`# TYPE ${family} ${meta?.type ?? 'untyped'}`);
    for (const s of list) {
      const labels = Object.entries(s.labels)
        .map(([k, v]) => `${k}="${escapeLabelValue(v)}"`)
        .join(',');
      lines.push(`${s.name}${labels ? `{${labels}}` : ''} ${formatValue(s.value)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The Content-Type of the text exposition format. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
