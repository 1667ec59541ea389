import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { AlertmanagerPayload, normalizeAlertmanager } from '../src/alerts/sources/alertmanager.js';
import {
  AlertRuleEvaluator,
  type AlertRuleEvaluatorOptions,
  alertFingerprint,
  type EvaluationReport,
  loadRuleFile,
  parseRuleFile,
  type WebhookPayload,
} from '../src/devtools/sandbox/alert-rules.js';
import { handleQueryApi } from '../src/devtools/sandbox/query-api.js';
import type { MetricSample } from '../src/devtools/sandbox/sample.js';
import { SeriesStore } from '../src/devtools/sandbox/tsdb.js';

const T0 = Date.UTC(2024, 0, 1);
const at = (seconds: number) => T0 + seconds * 1000;
const iso = (seconds: number) => new Date(at(seconds)).toISOString().replace('.000Z', 'Z');
const TOKEN = 'sandbox-webhook-token';

interface Receiver {
  url: string;
  requests: { headers: IncomingHttpHeaders; body: WebhookPayload }[];
  close(): Promise<void>;
}

/** A loopback webhook receiver; answers each POST with the next of `statuses` (200 once they run out). */
async function startReceiver(statuses: number[] = []): Promise<Receiver> {
  const requests: Receiver['requests'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      res.writeHead(statuses.shift() ?? 200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/alertmanager`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const RULES = `
groups:
  - name: checkout
    rules:
      - alert: HighErrorRate
        expr: service_error_percent > 5
        for: 20s
        labels:
          severity: critical
        annotations:
          summary: '{{ $labels.service }} on {{ $labels.instance }} fails {{ printf "%.1f" $value }}% of requests'
          value: '{{ $value }}'
`;

/**
 * Scrapes `service_error_percent` every 10 s from t=0 (one value per scrape and instance; null: not scraped) and
 * evaluates the rules after each scrape, as the demo's loop does. Returns each evaluation's report.
 */
async function run(
  evaluator: AlertRuleEvaluator,
  store: SeriesStore,
  percents: Record<string, (number | null)[]>,
  from = 0,
): Promise<EvaluationReport[]> {
  const reports: EvaluationReport[] = [];
  const scrapes = Math.max(...Object.values(percents).map((v) => v.length));
  for (let i = 0; i < scrapes; i++) {
    const t = from + i * 10;
    const samples: MetricSample[] = Object.entries(percents).flatMap(([instance, values]) => {
      const value = values[i];
      return value === null || value === undefined
        ? []
        : [{ name: 'service_error_percent', labels: { service: 'checkout', instance }, value }];
    });
    store.append(samples, at(t));
    reports.push(await evaluator.evaluate(at(t)));
  }
  return reports;
}

function buildEvaluator(
  receiver: Receiver | null,
  overrides: Partial<AlertRuleEvaluatorOptions> = {},
  rules = RULES,
): { evaluator: AlertRuleEvaluator; store: SeriesStore } {
  const store = new SeriesStore();
  const evaluator = new AlertRuleEvaluator({
    rules: parseRuleFile(rules, 'rules.yml'),
    store,
    ...(receiver ? { webhook: { url: receiver.url, token: TOKEN } } : {}),
    receiver: 'ai-sre',
    externalUrl: 'http://sandbox.test/',
    ...overrides,
  });
  return { evaluator, store };
}

describe('alert rule evaluation', () => {
  test('pending, then firing after `for`, then resolved: one webhook each for firing and resolved', async () => {
    const receiver = await startReceiver();
    try {
      const { evaluator, store } = buildEvaluator(receiver);
      const states: string[] = [];
      for (const [i, value] of [1, 20, 30, 25, 25, 1, 1].entries()) {
        await run(evaluator, store, { a: [value] }, i * 10);
        states.push(
          evaluator
            .alerts()
            .map((a) => a.state)
            .join(',') || '-',
        );
      }
      // t=10 first above 5 → pending; 20 s later (t=30) firing; t=50 below again → resolved (gone).
      assert.deepEqual(states, ['-', 'pending', 'pending', 'firing', 'firing', '-', '-']);
      assert.equal(receiver.requests.length, 2, 'one POST when it fires, one when it resolves');

      const labels = { alertname: 'HighErrorRate', service: 'checkout', instance: 'a', severity: 'critical' };
      const fingerprint = alertFingerprint(labels);
      assert.match(fingerprint, /^[0-9a-f]{16}$/);
      const annotations = { summary: 'checkout on a fails 25.0% of requests', value: '25' };
      const alert = {
        labels,
        annotations,
        startsAt: iso(30),
        generatorURL: 'http://sandbox.test/graph?g0.expr=service_error_percent+%3E+5&g0.tab=1',
        fingerprint,
      };
      const envelope = {
        receiver: 'ai-sre',
        groupLabels: { alertname: 'HighErrorRate', service: 'checkout' },
        commonLabels: labels,
        commonAnnotations: annotations,
        externalURL: 'http://sandbox.test',
        version: '4',
        groupKey: '{}:{alertname="HighErrorRate", service="checkout"}',
        truncatedAlerts: 0,
      };
      const [fired, resolved] = receiver.requests;
      assert.deepEqual(fired?.body, {
        ...envelope,
        status: 'firing',
        alerts: [{ ...alert, status: 'firing', endsAt: '0001-01-01T00:00:00Z' }],
      });
      assert.deepEqual(resolved?.body, {
        ...envelope,
        status: 'resolved',
        alerts: [{ ...alert, status: 'resolved', endsAt: iso(50) }],
      });
      assert.equal(fired?.headers.authorization, `Bearer ${TOKEN}`);
      assert.equal(fired?.headers['content-type'], 'application/json');

      // What the bot's own webhook route would make of it.
      const normalized = normalizeAlertmanager(AlertmanagerPayload.parse(fired?.body));
      assert.equal(normalized[0]?.service, 'checkout');
      assert.equal(normalized[0]?.fingerprint, fingerprint);
      assert.equal(normalized[0]?.endsAt, null);
      assert.equal(normalizeAlertmanager(AlertmanagerPayload.parse(resolved?.body))[0]?.status, 'resolved');
    } finally {
      await receiver.close();
    }
  });

  test('alerts of one service share a group: one POST with both, common labels without what differs', async () => {
    const receiver = await startReceiver();
    try {
      const { evaluator, store } = buildEvaluator(receiver, {}, RULES.replace('for: 20s', 'for: 0s'));
      // b recovers at t=20, a at t=40
      await run(evaluator, store, { a: [10, 10, 10, 10, 1], b: [40, 40, 1, 1, 1] });
      const bodies = receiver.requests.map((r) => r.body);
      assert.deepEqual(
        bodies.map((b) => [b.status, b.alerts.map((a) => `${a.labels.instance}:${a.status}`)]),
        [
          ['firing', ['a:firing', 'b:firing']],
          ['firing', ['a:firing', 'b:resolved']],
          // b's resolution was delivered, so only a is left to report
          ['resolved', ['a:resolved']],
        ],
      );
      assert.deepEqual(bodies[0]?.commonLabels, {
        alertname: 'HighErrorRate',
        service: 'checkout',
        severity: 'critical',
      });
      assert.deepEqual(bodies[0]?.commonAnnotations, {});
      assert.deepEqual(
        bodies[1]?.alerts.map((a) => a.endsAt),
        ['0001-01-01T00:00:00Z', iso(20)],
      );
      // The fingerprint is the label set's: the same in every notification.
      assert.equal(bodies[0]?.alerts[0]?.fingerprint, bodies[2]?.alerts[0]?.fingerprint);
    } finally {
      await receiver.close();
    }
  });

  test('a POST the receiver answered with 500 is sent again on the next evaluation', async () => {
    const receiver = await startReceiver([500]);
    try {
      const { evaluator, store } = buildEvaluator(receiver);
      const reports = await run(evaluator, store, { a: [20, 20, 20, 20, 20, 20] });
      assert.deepEqual(
        reports.map((r) => r.notifications.map((n) => `${n.status}:${n.ok ? 'ok' : n.error}`)),
        [[], [], ['firing:HTTP 500'], ['firing:ok'], [], []],
      );
      assert.equal(receiver.requests.length, 2);
      assert.deepEqual(receiver.requests[1]?.body, receiver.requests[0]?.body);
    } finally {
      await receiver.close();
    }
  });

  test('an unreachable receiver does not break evaluation, and is retried until it answers', async () => {
    const receiver = await startReceiver();
    const url = receiver.url;
    await receiver.close();
    const { evaluator, store } = buildEvaluator(null, { webhook: { url }, webhookTimeoutMs: 2_000 });
    const reports = await run(evaluator, store, { a: [20, 20, 20, 20] });
    assert.deepEqual(
      reports.map((r) => r.notifications.map((n) => n.ok)),
      [[], [], [false], [false]],
    );
    assert.equal(evaluator.alerts()[0]?.state, 'firing');
  });

  test('a group that keeps firing is sent again every repeat interval', async () => {
    const receiver = await startReceiver();
    try {
      const { evaluator, store } = buildEvaluator(receiver, { repeatIntervalMs: 30_000 });
      const reports = await run(evaluator, store, { a: [20, 20, 20, 20, 20, 20, 20, 20] });
      assert.deepEqual(
        reports.map((r, i) => (r.notifications.length > 0 ? i * 10 : null)).filter((t) => t !== null),
        [20, 50],
      );
      assert.equal(receiver.requests[1]?.body.alerts[0]?.startsAt, iso(20));
    } finally {
      await receiver.close();
    }
  });

  test('keep_firing_for keeps an alert firing after its expression stops returning it', async () => {
    const { evaluator, store } = buildEvaluator(
      null,
      {},
      RULES.replace('for: 20s', 'for: 0s\n        keep_firing_for: 20s'),
    );
    const states: string[] = [];
    for (const [i, value] of [20, 20, 1, 1, 1, 1].entries()) {
      await run(evaluator, store, { a: [value] }, i * 10);
      states.push(
        evaluator
          .alerts()
          .map((a) => a.state)
          .join(',') || '-',
      );
    }
    // stops at t=20; kept at 20 and 30 (less than 20 s since), resolved at 40
    assert.deepEqual(states, ['firing', 'firing', 'firing', 'firing', '-', '-']);
  });

  test('a series that stops being scraped resolves its alert at the next scrape (staleness)', async () => {
    const receiver = await startReceiver();
    try {
      const { evaluator, store } = buildEvaluator(receiver, {}, RULES.replace('for: 20s', 'for: 0s'));
      await run(evaluator, store, { a: [20, 20, null, null] });
      assert.deepEqual(
        receiver.requests.map((r) => [r.body.status, r.body.alerts[0]?.endsAt]),
        [
          ['firing', '0001-01-01T00:00:00Z'],
          ['resolved', iso(20)],
        ],
      );
    } finally {
      await receiver.close();
    }
  });

  test('a group with an interval is evaluated only that often; /api/v1/alerts lists pending and firing alerts', async () => {
    const { evaluator, store } = buildEvaluator(
      null,
      {},
      RULES.replace('- name: checkout', '- name: checkout\n    interval: 30s'),
    );
    const reports = await run(evaluator, store, { a: [20, 20, 20, 20], b: [1, 1, 1, 50] });
    assert.deepEqual(
      reports.map((r) => r.groups),
      [['checkout'], [], [], ['checkout']],
    );

    const server = createServer((req, res) => {
      if (!handleQueryApi(store, req, res, { alerts: evaluator })) res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/alerts`);
      assert.deepEqual(await res.json(), {
        status: 'success',
        data: {
          alerts: [
            {
              labels: {
                alertname: 'HighErrorRate',
                instance: 'a',
                service: 'checkout',
                severity: 'critical',
              },
              annotations: { summary: 'checkout on a fails 20.0% of requests', value: '20' },
              state: 'firing',
              activeAt: iso(0),
              value: '2e+01',
            },
            {
              labels: {
                alertname: 'HighErrorRate',
                instance: 'b',
                service: 'checkout',
                severity: 'critical',
              },
              annotations: { summary: 'checkout on b fails 50.0% of requests', value: '50' },
              state: 'pending',
              activeAt: iso(30),
              value: '5e+01',
            },
          ],
        },
      });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('a rule whose expression fails at run time reports it and keeps its alerts as they were', async () => {
    const rules = `
groups:
  - name: g
    rules:
      - alert: Broken
        expr: service_error_percent * on (service) service_error_percent
`;
    const { evaluator, store } = buildEvaluator(null, {}, rules);
    const [report] = await run(evaluator, store, { a: [1], b: [2] });
    assert.equal(report?.errors.length, 1);
    assert.match(report?.errors[0]?.error ?? '', /many-to-many matching not allowed/);
    assert.deepEqual(evaluator.alerts(), []);
  });
});

describe('the demo rule file', () => {
  test("loads, and its HighErrorRate fires on the sandbox's own metric names", async () => {
    const receiver = await startReceiver();
    try {
      const store = new SeriesStore();
      const evaluator = new AlertRuleEvaluator({
        rules: await loadRuleFile(new URL('../demo/prometheus/alert-rules.yml', import.meta.url).pathname),
        store,
        webhook: { url: receiver.url, token: TOKEN },
      });
      const requests = (service: string, code: string, value: number): MetricSample => ({
        name: 'http_requests_total',
        labels: { service, code, route: '/checkout', version: 'v1' },
        value,
      });
      // 1 s scrapes: payment-service answers 10/s fine, and from t=20 also 2/s with 500; search stays healthy.
      for (let t = 0; t <= 60; t++) {
        store.append(
          [
            requests('payment-service', '200', 10 * t),
            requests('payment-service', '500', 2 * Math.max(0, t - 20)),
            requests('search', '200', 5 * t),
            requests('search', '500', 0),
          ],
          at(t),
        );
        await evaluator.evaluate(at(t));
        if (t === 20) assert.deepEqual(evaluator.alerts(), []);
      }
      const [alert, ...others] = evaluator.alerts();
      assert.deepEqual(others, []);
      assert.equal(alert?.state, 'firing');
      assert.deepEqual(alert?.labels, {
        alertname: 'HighErrorRate',
        service: 'payment-service',
        severity: 'critical',
      });
      // 2/s of 12/s over the last 15 s
      assert.equal(alert?.annotations.summary, 'payment-service answers 16.7% of requests with 5xx');
      assert.equal(receiver.requests.length, 1);
      assert.equal(
        receiver.requests[0]?.body.groupKey,
        '{}:{alertname="HighErrorRate", service="payment-service"}',
      );
    } finally {
      await receiver.close();
    }
  });
});

describe('rule files', () => {
  const problems = (text: string): string => {
    try {
      parseRuleFile(text, 'demo/rules.yml');
    } catch (err) {
      return (err as Error).message;
    }
    assert.fail('the rule file should be refused');
  };

  test('a PromQL error names the file, the rule and the position', () => {
    assert.equal(
      problems(`
groups:
  - name: g
    rules:
      - alert: Fine
        expr: up == 0
      - alert: Typo
        expr: sum(rate(http_requests_total[5m])
`),
      `demo/rules.yml: groups.0.rules.1 (alert "Typo"): expr: 1:34: expected ')' to close the arguments of sum(, got end of input`,
    );
  });

  test('schema problems name the field path and the rule', () => {
    const message = problems(`
groups:
  - name: g
    rules:
      - alert: Slow
        expr: up
        for: 5 minutes
        labels:
          severity: page
        summary: misplaced
  - name: g
    rules:
      - record: job:up:sum
        expr: sum(up)
`);
    assert.deepEqual(message.split('\n'), [
      'demo/rules.yml: groups.0.rules.0.for: expected a Prometheus duration like "30s", "5m" or "1h30m" (in alert "Slow")',
      'demo/rules.yml: groups.0.rules.0: Unrecognized key: "summary" (in alert "Slow")',
      'demo/rules.yml: groups.1.rules.0.record: recording rules are not supported by the sandbox; use alerting rules (in record "job:up:sum")',
      'demo/rules.yml: groups.1.name: groupname "g" is repeated in the same file',
    ]);
  });

  test('templates the sandbox cannot render are refused at load time', () => {
    assert.equal(
      problems(`
groups:
  - name: g
    rules:
      - alert: Fancy
        expr: up == 0
        annotations:
          summary: '{{ if eq $labels.job "api" }}API{{ end }} is down'
`),
      `demo/rules.yml: groups.0.rules.0 (alert "Fancy"): annotations.summary: {{ if }} is not supported by the sandbox's alert templates`,
    );
  });

  test('templates render labels, values, printf, humanize and pipelines like Prometheus', async () => {
    const rules = `
groups:
  - name: g
    rules:
      - alert: Big
        expr: queue_bytes > 0
        labels:
          tier: '{{ $labels.queue }}-tier'
        annotations:
          a: '{{ $value | humanize }}B in {{ .Labels.queue }}{{ $labels.missing }}'
          b: '{{ printf "%.2f" $value }} {{ printf "%d" $value }} {{ humanizePercentage 0.1234 }}'
          c: "{{- \` spaced \` -}}  {{ index $labels \\"queue\\" | toUpper }}"
`;
    const store = new SeriesStore();
    store.append([{ name: 'queue_bytes', labels: { queue: 'orders' }, value: 1234567 }], at(0));
    const evaluator = new AlertRuleEvaluator({ rules: parseRuleFile(rules, 'rules.yml'), store });
    await evaluator.evaluate(at(0));
    const [alert] = evaluator.alerts();
    assert.deepEqual(alert?.labels, { alertname: 'Big', queue: 'orders', tier: 'orders-tier' });
    assert.deepEqual(alert?.annotations, {
      a: '1.235MB in orders',
      b: '1234567.00 %!d(float64=1.234567e+06) 12.34%',
      c: ' spaced ORDERS',
    });
  });
});
