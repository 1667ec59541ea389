/** One sample of a metric series as a scrape of the sandbox sees it (counters are cumulative, as in Prometheus). */
export interface MetricSample {
  /** metric name, e.g. `http_requests_total` or `http_request_duration_seconds_bucket` */
  name: string;
  /** label values; never `__name__` */
  labels: Readonly<Record<string, string>>;
  value: number;
}
