import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type DemoEnvironment, PROJECT_ROOT, reservePort } from '../src/devtools/demo/environment.js';
import { type IncidentOutcome, incidentsSince, isSettled } from '../src/devtools/demo/outcomes.js';
import { startTestEnvironment } from './helpers/demo-env.js';
import {
  ensureDebianPackages,
  type RunningProcess,
  startAlertmanager,
  startPrometheus,
} from './helpers/prometheus.js';
import { eventually } from './helpers/test-app.js';

/**
 * The real alert path: Debian's Prometheus scrapes the sandbox and evaluates demo/prometheus/alert-rules.yml, Debian's
 * Alertmanager delivers to /webhooks/alertmanager, and the bot's diagnostics query that same Prometheus. A pool held by
 * idle transactions must end as a resolved incident with the sessions terminated.
 */
describe('real Prometheus and Alertmanager → resolved incident', { timeout: 1_800_000 }, () => {
  let env: DemoEnvironment;
  let prometheus: RunningProcess;
  let alertmanager: RunningProcess;

  before(
    async () => {
      ensureDebianPackages([
        { binary: '/usr/bin/prometheus', pkg: 'prometheus' },
        { binary: '/usr/bin/prometheus-alertmanager', pkg: 'prometheus-alertmanager' },
      ]);
      // both held until their servers start, so nothing else in this process takes them meanwhile
      const prometheusPort = await reservePort();
      const alertmanagerPort = await reservePort();
      env = await startTestEnvironment({
        alerts: 'none',
        env: { PROMETHEUS_URL: `http://127.0.0.1:${prometheusPort.port}` },
      });
      await alertmanagerPort.release();
      alertmanager = await startAlertmanager({
        port: alertmanagerPort.port,
        webhookUrl: `${env.botUrl}/webhooks/alertmanager`,
        token: env.webhookToken,
      });
      await prometheusPort.release();
      prometheus = await startPrometheus({
        port: prometheusPort.port,
        targets: Object.values(env.sandbox.services).map((s) => new URL(s.url).host),
        ruleFile: `${PROJECT_ROOT}demo/prometheus/alert-rules.yml`,
        alertmanagerUrl: alertmanager.url,
      });
    },
    { timeout: 900_000 },
  );

  after(
    async () => {
      await prometheus?.stop();
      await alertmanager?.stop();
      await env?.close();
    },
    { timeout: 120_000 },
  );

  it('a pool exhausted by idle transactions fires a real alert and ends resolved', {
    timeout: 600_000,
  }, async () => {
    // enough scrapes for the 15-second rates
    await eventually(
      'Prometheus to have scraped the sandbox',
      async () => {
        const res = await fetch(
          `${prometheus.url}/api/v1/query?query=${encodeURIComponent('count(rate(http_requests_total[15s]))')}`,
        );
        const body = (await res.json()) as { data?: { result?: { value: [number, string] }[] } };
        return Number(body.data?.result?.[0]?.value[1] ?? 0) > 0;
      },
      60_000,
    );
    const since = new Date(Date.now() - 1_000);
    await env.sandbox.inject('pool-exhaustion');

    let incident: IncidentOutcome | undefined;
    try {
      incident = await eventually(
        'the payment-service incident to resolve',
        async () => {
          const all = await incidentsSince(env.db, since);
          // resolved, and the step's verification finished (the alert may clear first)
          return all.find((o) => o.service === 'payment-service' && o.status === 'resolved' && isSettled(o));
        },
        180_000,
      );
    } catch (error) {
      const all = await incidentsSince(env.db, since);
      assert.fail(
        `${(error as Error).message}\nincidents: ${JSON.stringify(all, null, 1)}\nprometheus:\n${prometheus.output().slice(-3000)}\nalertmanager:\n${alertmanager.output().slice(-3000)}`,
      );
    }
    assert.equal(incident.source, 'alertmanager');
    assert.ok(incident.alerts.includes('HighErrorRate'), `alerts: ${incident.alerts.join(', ')}`);
    assert.equal(incident.runbookId, 'sandbox-service-errors');
    assert.equal(incident.hypothesis, 'pool_held_by_idle_transactions');
    assert.deepEqual(
      incident.steps.map((s) => [s.action, s.status]),
      [['terminate_connections', 'verified']],
    );

    // the bot's diagnostics read the real Prometheus, and the sessions it terminated are gone from Postgres
    const { rows } = await env.db.query<{ summary: string; status: string }>(
      `SELECT d.summary, d.status FROM diagnostic_results d JOIN runbook_executions e ON e.id = d.execution_id
        WHERE e.incident_id = $1 AND d.diagnostic_id = 'pool_usage'`,
      [incident.id],
    );
    assert.equal(rows[0]?.status, 'critical', JSON.stringify(rows));
    assert.equal(env.sandbox.unsafe().length, 0);
  });
});
