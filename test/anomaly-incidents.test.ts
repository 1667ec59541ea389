import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sendSlashCommand } from '../src/devtools/slack-standin/sign.js';
import { MAX_CHARTS_PER_INCIDENT } from '../src/slack/jobs/sync-incident-slack.job.js';
import { eventually, SIGNING_SECRET, startTestApp, type TestApp } from './helpers/test-app.js';

const START = Date.UTC(2026, 10, 1);
const MINUTE = 60_000;

/** `steady` points around 50, then `shifted` points around `level` (a level shift), one a minute. */
function series(name: string, labels: Record<string, string>, steady: number, shifted: number, level = 400) {
  return Array.from({ length: steady + shifted }, (_, i) => ({
    series: name,
    labels,
    timestamp: START + i * MINUTE,
    value: i < steady ? 50 + Math.sin(i * 1.7) * 2 + Math.cos(i * 0.31) * 1.5 : level + Math.sin(i) * 3,
  }));
}

interface IncidentRow {
  id: number;
  service: string;
  source: string;
  severity: string;
  alert_count: number;
}

describe('anomalies → incidents', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ SLACK_SYNC_DEBOUNCE_MS: '0' });
  });
  after(async () => {
    await t?.close();
  });

  const incidentsOf = (service: string) =>
    t.query<IncidentRow>(
      'SELECT id, service, source, severity, alert_count FROM incidents WHERE service = $1',
      [service],
    );

  test('a persistent level shift opens exactly one incident, carrying the evidence', async () => {
    const res = await t.webhook('/ingest/metrics', series('latency_ms', { service: 'checkout' }, 800, 12));
    assert.equal(res.status, 202);
    assert.equal(res.json.accepted, 812);
    const [incident] = await eventually('the anomaly incident', async () => {
      const rows = await incidentsOf('checkout');
      return rows.length > 0 ? rows : null;
    });
    assert.equal((await incidentsOf('checkout')).length, 1, 'exactly one incident');
    assert.equal(incident?.source, 'anomaly');
    const [alert] = await t.query<{
      name: string;
      labels: Record<string, string>;
      annotations: Record<string, string>;
    }>('SELECT name, labels, annotations FROM incident_alerts WHERE incident_id = $1', [incident?.id]);
    assert.equal(alert?.name, 'Anomaly latency_ms');
    assert.equal(alert?.labels.metric, 'latency_ms');
    assert.ok(Number(alert?.annotations.value) > 300, 'the current value');
    assert.ok(
      Number(alert?.annotations.likelihood) >= 0.5,
      'the likelihood, at or above DETECTION_THRESHOLD',
    );
    assert.equal(
      alert?.annotations.deviating_since,
      new Date(START + 800 * MINUTE).toISOString(),
      'when it began',
    );
    const high = Number(alert?.annotations.expected_high);
    assert.ok(
      high > 45 && high < 100,
      `the expected range is the old level's (${alert?.annotations.expected_low}–${high})`,
    );
    const recent = JSON.parse(alert?.annotations.recent_points ?? '[]') as [number, number][];
    assert.ok(
      recent.length >= 10 && recent.some(([, v]) => v < 60) && recent.some(([, v]) => v > 300),
      'the series around the shift',
    );
    // the thread gets the chart, uploaded with the files API (URL, bytes, completion in the thread)
    await t.stub.waitFor((calls) => calls.some((c) => c.method === 'files.completeUploadExternal'));
    const [complete] = t.stub.callsTo('files.completeUploadExternal');
    assert.ok(complete?.args.thread_ts, 'posted in the incident thread');
    assert.match(
      String(complete?.args.initial_comment),
      /Anomaly latency_ms: value \d+.*expected .* deviating since/,
    );
    const png = [...t.stub.uploads.values()][0];
    assert.ok(
      png?.includes(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
      'a PNG was uploaded',
    );
    assert.equal(t.stub.callsTo('files.getUploadURLExternal').length, 1, 'once');
  });

  test('a single spike opens nothing; two series of one service spiking together agree and open one incident', async () => {
    const single = series('errors', { service: 'solo' }, 800, 1);
    await t.webhook('/ingest/metrics', [...single, ...series('errors', { service: 'solo' }, 0, 0)]);
    const together = [
      ...series('latency_ms', { service: 'search' }, 800, 1),
      ...series('error_rate', { service: 'search' }, 800, 1, 300),
    ];
    await t.webhook('/ingest/metrics', together);
    const rows = await eventually('the agreement incident', async () => {
      const found = await incidentsOf('search');
      return found.length > 0 && found[0] && found[0].alert_count >= 2 ? found : null;
    });
    assert.equal(rows.length, 1, 'the two signals share one incident');
    assert.equal(rows[0]?.severity, 'high');
    assert.equal((await incidentsOf('solo')).length, 0, 'one spike alone is not an incident');
  });

  test('a storm of anomalous series is one incident whose thread gets at most MAX_CHARTS_PER_INCIDENT charts', async () => {
    const names = Array.from({ length: MAX_CHARTS_PER_INCIDENT + 4 }, (_, i) => `queue_depth_${i}`);
    await t.webhook(
      '/ingest/metrics',
      names.flatMap((name) => series(name, { service: 'storm' }, 800, 12)),
    );
    const [incident] = await eventually('the storm incident', async () => {
      const found = await incidentsOf('storm');
      return found[0] && found[0].alert_count >= names.length ? found : null;
    });
    assert.equal((await incidentsOf('storm')).length, 1);
    await t.drained();
    const charts = await t.query<{ key: string }>(
      `SELECT key FROM slack_thread_messages WHERE incident_id = $1 AND key LIKE 'chart:%'`,
      [incident?.id],
    );
    assert.equal(charts.length, MAX_CHARTS_PER_INCIDENT, 'the first series get a chart each, the rest none');
    const thread =
      charts.length > 0
        ? await t.query<{ ts: string }>('SELECT ts FROM slack_messages WHERE incident_id = $1', [
            incident?.id,
          ])
        : [];
    const uploads = t.stub
      .callsTo('files.completeUploadExternal')
      .filter((c) => c.args.thread_ts === thread[0]?.ts);
    assert.equal(uploads.length, MAX_CHARTS_PER_INCIDENT, 'uploaded to Slack in its thread');
  });

  test('a maintenance window suppresses anomaly incidents of its service', async () => {
    const res = await sendSlashCommand(t.baseUrl, SIGNING_SECRET, {
      command: '/incident',
      text: 'maintenance billing 1h schema migration',
      user_id: 'U0OPS',
    });
    assert.equal(res.status, 200);
    assert.match(res.body, /billing is in maintenance until/);
    const [window] = await t.query<{ created_by: string; reason: string }>(
      `SELECT created_by, reason FROM maintenance_windows WHERE service = 'billing' AND ends_at > now()`,
    );
    assert.equal(window?.created_by, 'U0OPS');
    assert.equal(window?.reason, 'schema migration');
    const ingest = await t.webhook('/ingest/metrics', series('latency_ms', { service: 'billing' }, 800, 12));
    assert.ok((ingest.json.anomalies as unknown[]).length >= 3, 'the detector did see the shift');
    await t.drained();
    assert.equal((await incidentsOf('billing')).length, 0, 'no incident during maintenance');
  });
});
