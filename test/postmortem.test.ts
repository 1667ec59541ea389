import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SectionBlock } from '@slack/types';
import type { Incident } from '../src/incidents/incident.js';
import type { TimelineEvent } from '../src/incidents/timeline.js';
import { deriveFollowUps, type FollowUpEvidence } from '../src/postmortem/follow-ups.js';
import {
  actorKind,
  draftPostmortem,
  escapeMarkdown,
  formatDuration,
  type PostmortemDraft,
} from '../src/postmortem/postmortem-draft.js';
import {
  getPostmortem,
  loadPostmortemInput,
  type PostmortemInput,
  savePostmortem,
} from '../src/postmortem/postmortem-repo.js';
import { buildPostmortemSummaryMessage } from '../src/slack/blocks/postmortem.js';
import { useSeedDatabase } from './helpers/seed-incidents.js';

/** every timeline below is measured from here: 03:00:00 UTC */
const T0 = Date.parse('2026-11-26T03:00:00Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000);

type Recorded =
  | { s: number; actor: string; type: string; data?: Record<string, unknown> }
  /** `count` repeats of one alert, 100 ms apart, starting at `s` */
  | { s: number; flood: number; name: string; actor: string };

interface RecordedIncident {
  service: string;
  title: string;
  summary: string;
  severity: 'critical' | 'high' | 'warning' | 'info';
  source: string;
  labels?: Record<string, string>;
  /** seconds from T0 (negative: before the incident opened at T0) */
  firstSignal: number;
  /** seconds from T0; absent: still open */
  resolved?: number;
  status: string;
}

/** Section `## title` of a draft, up to the next `## ` heading. */
function section(markdown: string, title: string): string {
  const start = markdown.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `section "${title}" missing`);
  const next = markdown.indexOf('\n## ', start + 4);
  return markdown.slice(start, next < 0 ? undefined : next);
}

const checkboxes = (markdown: string) =>
  (section(markdown, 'Follow-up items').match(/^- \[ \] .*$/gm) ?? []).map((l) => l.slice(6));

describe('postmortem drafts from recorded timelines (real Postgres)', () => {
  const db = useSeedDatabase('postmortem');

  /** Writes the incident row and its timeline exactly as recorded (times included); returns the incident id. */
  async function recordIncident(inc: RecordedIncident, events: Recorded[]): Promise<number> {
    const { rows } = await db.query<{ id: number }>(
      `INSERT INTO incidents (service, title, summary, severity, status, source, alert_count, labels,
                              opened_at, first_signal_at, last_alert_at, updated_at, resolved_at)
       VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, $8, $8, $10) RETURNING id`,
      [
        inc.service,
        inc.title,
        inc.summary,
        inc.severity,
        inc.status,
        inc.source,
        JSON.stringify(inc.labels ?? {}),
        at(0),
        at(inc.firstSignal),
        inc.resolved === undefined ? null : at(inc.resolved),
      ],
    );
    const id = (rows[0] as { id: number }).id;
    for (const e of events) {
      if ('flood' in e) {
        await db.query(
          `INSERT INTO timeline_events (incident_id, at, actor, type, data, notify)
           SELECT $1, $2::timestamptz + g * interval '100 milliseconds', $3, 'alert.repeated',
                  jsonb_build_object('fingerprint', 'f1', 'name', $4::text), true
             FROM generate_series(0, $5 - 1) AS g ORDER BY g`,
          [id, at(e.s), e.actor, e.name, e.flood],
        );
      } else {
        await db.query(
          'INSERT INTO timeline_events (incident_id, at, actor, type, data, notify) VALUES ($1, $2, $3, $4, $5, true)',
          [id, at(e.s), e.actor, e.type, JSON.stringify(e.data ?? {})],
        );
      }
    }
    return id;
  }

  async function draftOf(id: number): Promise<{ input: PostmortemInput; draft: PostmortemDraft }> {
    const input = await loadPostmortemInput(db, id);
    assert.ok(input, `incident ${id} loads`);
    return { input, draft: draftPostmortem(input) };
  }

  test('auto-resolved: alert → runbook → decision → safe step verified → resolved', async () => {
    const secret = 'token=sk_live_9f8e7d6c5b4a';
    const id = await recordIncident(
      {
        service: 'checkout-api',
        title: 'NodeFilesystemAlmostOutOfSpace',
        summary: `Disk /var/log on db-1 is 96% full (threshold 90%) ${secret}`,
        severity: 'high',
        source: 'alertmanager',
        firstSignal: -90,
        resolved: 152,
        status: 'resolved',
      },
      [
        {
          s: 0,
          actor: 'alertmanager',
          type: 'incident.opened',
          data: { service: 'checkout-api', severity: 'high', title: 'NodeFilesystemAlmostOutOfSpace' },
        },
        {
          s: 0,
          actor: 'alertmanager',
          type: 'alert.attached',
          data: {
            name: 'NodeFilesystemAlmostOutOfSpace',
            severity: 'high',
            summary: `Disk /var/log on db-1 is 96% full (threshold 90%) ${secret}`,
          },
        },
        {
          s: 5,
          actor: 'ai-sre',
          type: 'runbook.started',
          data: {
            executionId: 11,
            runbookId: 'disk-full',
            name: 'Disk almost full',
            diagnostics: ['disk_usage', 'hours_to_full', 'log_dir', 'tmp_dir'],
          },
        },
        {
          s: 6,
          actor: 'ai-sre',
          type: 'incident.investigating',
          data: { from: 'open', to: 'investigating', reason: 'running runbook disk-full' },
        },
        check(20, 'disk_usage', 'critical', '96 % used'),
        check(21, 'hours_to_full', 'healthy', '400 h at the current rate'),
        check(22, 'log_dir', 'warning', '12.5 GiB'),
        check(23, 'tmp_dir', 'healthy', '0.4 GiB'),
        {
          s: 25,
          actor: 'ai-sre',
          type: 'decision.made',
          data: {
            executionId: 11,
            runbookId: 'disk-full',
            runbookName: 'Disk almost full',
            outcome: 'remediate',
            text: 'Logs fill the disk (disk_usage 96 % critical; log_dir 12.5 GiB warning; tmp_dir 0.4 GiB healthy) → force log rotation',
            hypothesis: { id: 'logs_fill_disk', description: 'Logs fill the disk', likelihood: 1 },
            plan: [
              {
                id: 'rotate_logs',
                action: 'run_script',
                description: 'Force log rotation',
                requiresApproval: false,
              },
            ],
            escalation: null,
            escalate: false,
            reason: null,
            noRunbook: false,
          },
        },
        {
          s: 26,
          actor: 'ai-sre',
          type: 'incident.mitigating',
          data: { from: 'investigating', to: 'mitigating', reason: 'running rotate_logs' },
        },
        {
          s: 27,
          actor: 'ai-sre',
          type: 'step.started',
          data: { executionId: 11, step: 'rotate_logs', action: 'run_script', target: 'db-1', dryRun: false },
        },
        {
          s: 30,
          actor: 'ai-sre',
          type: 'step.executed',
          data: {
            executionId: 11,
            step: 'rotate_logs',
            action: 'run_script',
            target: 'db-1',
            ok: true,
            summary: 'logrotate --force exited 0',
            durationMs: 2900,
          },
        },
        // a flood longer than one page of the loader (1000 events)
        { s: 31, flood: 1200, name: 'NodeFilesystemAlmostOutOfSpace', actor: 'alertmanager' },
        {
          s: 150,
          actor: 'ai-sre',
          type: 'step.verified',
          data: {
            executionId: 11,
            step: 'rotate_logs',
            action: 'run_script',
            findings: { disk_usage: { status: 'healthy' }, log_dir: { status: 'healthy' } },
          },
        },
        {
          s: 152,
          actor: 'ai-sre',
          type: 'incident.resolved',
          data: { from: 'mitigating', to: 'resolved', reason: 'rotate_logs verified' },
        },
      ],
    );
    const { input, draft } = await draftOf(id);
    assert.equal(input.events.length, 1214, 'the loader reads past its first page');
    assert.equal(draft.throughEventId, input.events.at(-1)?.id);
    assert.equal(draft.generator, 'deterministic');
    const md = draft.markdown;

    assert.ok(md.startsWith(`# INC-${id}: NodeFilesystemAlmostOutOfSpace\n`));
    for (const title of [
      'Summary',
      'Impact and duration',
      'Detection',
      'Timeline',
      'Diagnostics that mattered',
      'Actions and outcomes',
      'Root-cause hypothesis with evidence',
      'What went well',
      'What went badly',
      'Follow-up items',
    ]) {
      section(md, title);
    }
    assert.doesNotMatch(md, /## Narrative/);

    // durations: first signal 02:58:30, opened 03:00:00, resolved 03:02:32
    const impact = section(md, 'Impact and duration');
    assert.match(impact, /Started \(first signal\):\*\* 2026-11-26 02:58:30 UTC/);
    assert.match(impact, /03:00:00 UTC, 1 minute 30 seconds after the first signal \(time to detect\)/);
    assert.match(impact, /03:02:32 UTC, 2 minutes 32 seconds after detection \(time to resolve\)/);
    assert.match(impact, /Total duration:\*\* 4 minutes 2 seconds from the first signal/);
    assert.match(section(md, 'Detection'), /an alert from alertmanager \(NodeFilesystemAlmostOutOfSpace\)/);
    assert.match(section(md, 'Detection'), /fired again 1200 times/);

    const timeline = section(md, 'Timeline');
    assert.match(timeline, /^- `03:00:00` \*\*\[alert\]\*\* alertmanager: Incident opened for checkout-api/m);
    assert.match(
      timeline,
      /^- `03:00:25` \*\*\[bot\]\*\* Decision \(Disk almost full\): Logs fill the disk/m,
    );
    assert.match(timeline, /^- `03:02:30` \*\*\[bot\]\*\* Verified rotate_logs: the fix holds/m);
    // the flood is one line, not 1200
    assert.match(
      timeline,
      /^- `03:00:31` \*\*\[alert\]\*\* alertmanager: Alert NodeFilesystemAlmostOutOfSpace fired again 1200 times \(until 03:02:30\)$/m,
    );
    assert.equal((timeline.match(/is firing again/g) ?? []).length, 0);
    assert.doesNotMatch(timeline, /^- .*\[human\]/m);

    const diagnostics = section(md, 'Diagnostics that mattered');
    assert.match(diagnostics, /\*\*disk_usage\*\*: critical — 96 % used \*\(read by the decision\)\*/);
    assert.match(diagnostics, /\*\*tmp_dir\*\*: healthy — 0.4 GiB \*\(read by the decision\)\*/);
    assert.match(diagnostics, /Healthy, not shown: hours_to_full/);

    const actions = section(md, 'Actions and outcomes');
    assert.match(actions, /- \*\*rotate_logs\*\* \(run_script on db-1\): \*\*verified\*\*/);
    assert.match(actions, /Ran automatically \(no approval needed\) at 03:00:27/);
    assert.match(actions, /Result: logrotate --force exited 0/);

    const cause = section(md, 'Root-cause hypothesis with evidence');
    assert.match(cause, /\*\*Hypothesis:\*\* Logs fill the disk \(logs_fill_disk\)/);
    assert.match(cause, /\*\*Evidence:\*\* disk_usage critical — 96 % used/);
    assert.match(
      section(md, 'What went well'),
      /Resolved automatically within 2 minutes 32 seconds of detection/,
    );
    assert.match(section(md, 'What went badly'), /fired again 1200 times \(noise/);
    assert.deepEqual(checkboxes(md), ['Alert earlier: at 75% on /var/log instead of 90%']);
    assert.deepEqual(draft.followUps, ['Alert earlier: at 75% on /var/log instead of 90%']);

    // the secret in the alert summary never reaches the document or the thread
    assert.ok(!md.includes('sk_live_9f8e7d6c5b4a'));
    assert.match(md, /token=\*\*\*|token=\\\*\\\*\\\*/);
    assert.ok(!draft.summary.includes('sk_live'));

    const summaryLines = draft.summary.split('\n');
    assert.ok(summaryLines.length >= 3 && summaryLines.length <= 6, draft.summary);
    assert.match(draft.summary, /Status: resolved 2 minutes 32 seconds after detection by the bot/);
    assert.match(draft.summary, /Cause: Logs fill the disk \(the bot's hypothesis/);
    assert.match(draft.summary, /Fixed by: rotate_logs \(run_script\), verified/);
    assert.match(draft.summary, /Follow-ups: 1 /);

    // the same input drafts the same document
    assert.equal(draftPostmortem(input).markdown, md);
  });

  test('escalated: no runbook → escalation → page → acknowledged by a person → resolved with a note', async () => {
    const id = await recordIncident(
      {
        service: 'reports-api',
        title: 'ReportsLatencyHigh',
        summary: 'p99 latency of /api/v1/reports above 4 s',
        severity: 'critical',
        source: 'grafana',
        labels: { endpoint: '/api/v1/reports' },
        firstSignal: -45,
        resolved: 2400,
        status: 'resolved',
      },
      [
        {
          s: 0,
          actor: 'grafana',
          type: 'incident.opened',
          data: { service: 'reports-api', severity: 'critical', title: 'ReportsLatencyHigh' },
        },
        {
          s: 0,
          actor: 'grafana',
          type: 'alert.attached',
          data: { name: 'ReportsLatencyHigh', severity: 'critical', summary: 'p99 latency above 4 s' },
        },
        {
          s: 4,
          actor: 'ai-sre',
          type: 'runbook.none',
          data: { reason: 'no runbook matches and no default triage playbook is installed' },
        },
        {
          s: 5,
          actor: 'ai-sre',
          type: 'incident.escalated',
          data: { from: 'open', to: 'escalated', reason: 'no runbook' },
        },
        {
          s: 6,
          actor: 'ai-sre',
          type: 'escalation.started',
          data: {
            escalationId: 3,
            category: 'unknown_type',
            categoryText: 'unknown failure type',
            reason: 'no runbook to run: no runbook matches',
            route: 'default',
            team: 'reports',
          },
        },
        {
          s: 7,
          actor: 'ai-sre',
          type: 'page.sent',
          data: {
            escalationId: 3,
            level: 1,
            cycle: 1,
            targets: [{ name: 'Ana Lima', slackUser: 'U0ANA1' }],
            deliveredBy: ['slack'],
          },
        },
        {
          s: 7,
          actor: 'ai-sre',
          type: 'page.failed',
          data: { escalationId: 3, level: 1, target: 'pagerduty:reports', error: 'HTTP 503' },
        },
        {
          s: 606,
          actor: 'U0ANA1',
          type: 'page.acknowledged',
          data: { escalationId: 3, by: 'U0ANA1' },
        },
        {
          s: 2400,
          actor: 'U0ANA1',
          type: 'incident.resolved',
          data: { from: 'escalated', to: 'resolved', reason: 'restarted the pods' },
        },
        {
          s: 2460,
          actor: 'U0ANA1',
          type: 'resolution.noted',
          data: {
            noteId: 1,
            cause: 'Memory leak in the PDF renderer behind /api/v1/reports',
            fix: 'Restarted the pods and pinned pdfkit to 3.1',
            note: '',
          },
        },
      ],
    );
    const { draft } = await draftOf(id);
    const md = draft.markdown;

    const timeline = section(md, 'Timeline');
    assert.match(timeline, /^- `03:10:06` \*\*\[human\]\*\* U0ANA1: Acknowledged by U0ANA1$/m);
    assert.match(timeline, /^- `03:40:00` \*\*\[human\]\*\* U0ANA1: Incident resolved: restarted the pods$/m);
    assert.match(timeline, /^- `03:41:00` \*\*\[human\]\*\* U0ANA1: Resolution note — cause: Memory leak/m);
    assert.match(timeline, /^- `03:00:06` \*\*\[bot\]\*\* Escalated \(unknown failure type\)/m);
    assert.match(timeline, /^- `03:00:00` \*\*\[alert\]\*\* grafana: New alert ReportsLatencyHigh/m);

    const impact = section(md, 'Impact and duration');
    assert.match(
      impact,
      /Acknowledged:\*\* 2026-11-26 03:10:06 UTC by U0ANA1, 9 minutes 59 seconds after the page/,
    );
    assert.match(impact, /40 minutes after detection \(time to resolve\)/);

    const cause = section(md, 'Root-cause hypothesis with evidence');
    assert.match(cause, /### The people's conclusion/);
    assert.match(cause, /^> \*\*Cause:\*\* Memory leak in the PDF renderer behind \/api\/v1\/reports$/m);
    assert.match(cause, /^> \*\*Fix:\*\* Restarted the pods and pinned pdfkit to 3\.1$/m);
    assert.match(cause, /^> — U0ANA1, resolution note at 2026-11-26 03:41:00 UTC$/m);
    assert.match(
      cause,
      /\*\*unknown failure type:\*\* no runbook to run: no runbook matches \(routed to reports\)/,
    );
    // the people's conclusion comes before anything the bot concluded
    assert.ok(cause.indexOf("people's conclusion") < cause.indexOf('Why people were needed'));

    const badly = section(md, 'What went badly');
    assert.match(badly, /Escalated with nobody acknowledging for 10 minutes/);
    assert.match(badly, /A page to pagerduty:reports failed: HTTP 503/);
    assert.match(badly, /No runbook matched/);
    assert.doesNotMatch(section(md, 'What went well'), /Resolved automatically/);

    assert.deepEqual(checkboxes(md), [
      'Fix the memory leak in /api/v1/reports on reports-api',
      'Write a runbook for ReportsLatencyHigh on reports-api',
      'Fix paging for reports',
    ]);
    assert.match(draft.summary, /Status: resolved 40 minutes after detection by U0ANA1/);
    assert.match(
      draft.summary,
      /Cause: Memory leak in the PDF renderer behind \/api\/v1\/reports \(resolution note by U0ANA1\)/,
    );
    assert.match(draft.summary, /Fixed by: Restarted the pods and pinned pdfkit to 3\.1 \(per U0ANA1\)/);
    assert.match(
      draft.summary,
      /Escalated: unknown failure type to reports; acknowledged by U0ANA1 after 10 minutes/,
    );
    assert.match(draft.summary, /Follow-ups: 3 /);
  });

  test('approval-gated: approval.requested → approved by a person → executed → verified → resolved', async () => {
    const id = await recordIncident(
      {
        service: 'payments',
        title: 'ContainerMemoryUsageHigh',
        summary: 'payments pods at 93% of their memory limit',
        severity: 'high',
        source: 'alertmanager',
        firstSignal: -600,
        resolved: 1200,
        status: 'resolved',
      },
      [
        {
          s: 0,
          actor: 'alertmanager',
          type: 'incident.opened',
          data: { service: 'payments', severity: 'high', title: 'ContainerMemoryUsageHigh' },
        },
        {
          s: 0,
          actor: 'alertmanager',
          type: 'alert.attached',
          data: { name: 'ContainerMemoryUsageHigh', severity: 'high', summary: 'pods at 93% of the limit' },
        },
        check(30, 'memory_growth', 'warning', '3.2 % of limit/h'),
        check(31, 'deploys', 'warning', 'payments v2.14.0 deployed 95 min ago'),
        check(32, 'oom_kills', 'healthy', '0 restarts'),
        check(33, 'oom_logs', 'error', 'did not report', 'LOKI_URL is not set'),
        {
          s: 40,
          actor: 'ai-sre',
          type: 'decision.made',
          data: {
            executionId: 21,
            runbookId: 'memory-leak',
            runbookName: 'Memory leak',
            outcome: 'remediate',
            text: 'Memory has grown steadily since a deploy in the last 24 hours (memory_growth 3.2 % of limit/h warning; deploys 95 min since deploy warning) → tell the owners, then roll back',
            hypothesis: {
              id: 'leak_since_deploy',
              description: 'Memory has grown steadily since a deploy in the last 24 hours',
              likelihood: 1,
            },
            plan: [
              {
                id: 'notify_owners_deploy',
                action: 'notify',
                description: 'Tell the owners',
                requiresApproval: false,
              },
              { id: 'rollback_deploy', action: 'rollback', description: 'Roll back', requiresApproval: true },
            ],
            escalation: null,
            escalate: false,
            reason: null,
            noRunbook: false,
          },
        },
        {
          s: 41,
          actor: 'ai-sre',
          type: 'step.started',
          data: {
            executionId: 21,
            step: 'notify_owners_deploy',
            action: 'notify',
            target: 'payments owners',
          },
        },
        {
          s: 42,
          actor: 'ai-sre',
          type: 'step.executed',
          data: {
            executionId: 21,
            step: 'notify_owners_deploy',
            action: 'notify',
            summary: 'told #payments-dev',
          },
        },
        {
          s: 120,
          actor: 'ai-sre',
          type: 'approval.requested',
          data: {
            executionId: 21,
            approvalId: 5,
            step: 'rollback_deploy',
            action: 'rollback',
            target: 'payments',
            approvers: ['@payments-oncall'],
            expiresAt: at(1920).toISOString(),
          },
        },
        {
          s: 121,
          actor: 'ai-sre',
          type: 'incident.awaiting_approval',
          data: { from: 'mitigating', to: 'awaiting_approval', reason: 'rollback_deploy needs approval' },
        },
        {
          s: 570,
          actor: 'U0BOB22',
          type: 'step.approved',
          data: {
            executionId: 21,
            approvalId: 5,
            step: 'rollback_deploy',
            action: 'rollback',
            target: 'payments',
          },
        },
        {
          s: 571,
          actor: 'ai-sre',
          type: 'step.started',
          data: {
            executionId: 21,
            step: 'rollback_deploy',
            action: 'rollback',
            target: 'payments',
            dryRun: false,
          },
        },
        {
          s: 600,
          actor: 'ai-sre',
          type: 'step.executed',
          data: {
            executionId: 21,
            step: 'rollback_deploy',
            action: 'rollback',
            target: 'payments',
            summary: 'rolled back payments to v2.13.2',
          },
        },
        {
          s: 1150,
          actor: 'ai-sre',
          type: 'step.verified',
          data: {
            executionId: 21,
            step: 'rollback_deploy',
            action: 'rollback',
            findings: { memory_usage: { status: 'healthy' }, health: { status: 'healthy' } },
          },
        },
        {
          s: 1200,
          actor: 'ai-sre',
          type: 'incident.resolved',
          data: { from: 'mitigating', to: 'resolved', reason: 'rollback_deploy verified' },
        },
        {
          s: 1300,
          actor: 'U0CAROL',
          type: 'feedback.action',
          data: { stepRowId: 9, step: 'notify_owners_deploy', action: 'notify', verdict: 'wrong' },
        },
        {
          s: 1310,
          actor: 'U0BOB22',
          type: 'feedback.action',
          data: { stepRowId: 10, step: 'rollback_deploy', action: 'rollback', verdict: 'right' },
        },
      ],
    );
    const { draft } = await draftOf(id);
    const md = draft.markdown;

    const timeline = section(md, 'Timeline');
    assert.match(
      timeline,
      /^- `03:02:00` \*\*\[bot\]\*\* Approval requested for rollback_deploy \(rollback on payments\)$/m,
    );
    assert.match(
      timeline,
      /^- `03:09:30` \*\*\[human\]\*\* U0BOB22: rollback_deploy approved \(rollback on payments\)$/m,
    );
    assert.match(
      timeline,
      /^- `03:21:40` \*\*\[human\]\*\* U0CAROL: Marked notify_owners_deploy \(notify\) as the wrong call$/m,
    );
    // the decision's plan is listed under its line
    assert.match(timeline, /^ {2}- 2\\\. Roll back \(rollback, needs approval\)$/m);

    const actions = section(md, 'Actions and outcomes');
    assert.match(actions, /- \*\*rollback_deploy\*\* \(rollback on payments\): \*\*verified\*\*/);
    assert.match(actions, /Approval requested at 03:02:00 from @payments-oncall/);
    assert.match(actions, /Approved by U0BOB22 at 03:09:30 after 7 minutes 30 seconds/);
    assert.match(
      actions,
      /Verification: Verified rollback_deploy: the fix holds \(health healthy, memory_usage healthy\)/,
    );
    assert.match(actions, /Feedback: U0CAROL said wrong call/);
    assert.match(
      actions,
      /- \*\*notify_owners_deploy\*\* \(notify on payments owners\): \*\*executed, not verified\*\*/,
    );

    const diagnostics = section(md, 'Diagnostics that mattered');
    assert.match(
      diagnostics,
      /\*\*memory_growth\*\*: warning — 3.2 % of limit\/h \*\(read by the decision\)\*/,
    );
    assert.match(diagnostics, /Did not report: oom_logs \(LOKI_URL is not set\)/);

    const cause = section(md, 'Root-cause hypothesis with evidence');
    assert.match(cause, /\*\*Hypothesis:\*\* Memory has grown steadily since a deploy in the last 24 hours/);
    assert.match(cause, /\*\*Runbook:\*\* Memory leak \(memory-leak\)/);
    assert.doesNotMatch(cause, /people's conclusion/);

    assert.match(section(md, 'What went badly'), /Approval of rollback_deploy waited 7 minutes 30 seconds/);
    assert.match(section(md, 'What went badly'), /U0CAROL marked notify_owners_deploy as the wrong call/);
    assert.match(section(md, 'What went well'), /rollback_deploy was verified: the fix held/);
    assert.match(section(md, 'What went well'), /U0BOB22 marked rollback_deploy as the right call/);
    // a person approved, so it was not resolved without one
    assert.doesNotMatch(section(md, 'What went well'), /Resolved automatically/);

    assert.deepEqual(checkboxes(md), [
      'Fix the memory leak in payments',
      'Review the Memory leak decision that chose notify',
    ]);
    assert.match(draft.summary, /Fixed by: rollback_deploy \(rollback\), verified/);
  });

  test('save/get round-trip: first save is revision 1, each regeneration bumps it', async () => {
    const id = await recordIncident(
      {
        service: 'search',
        title: 'SearchDown',
        summary: '',
        severity: 'warning',
        source: 'generic',
        firstSignal: 0,
        status: 'open',
      },
      [{ s: 0, actor: 'generic', type: 'incident.opened', data: { service: 'search', title: 'SearchDown' } }],
    );
    assert.equal(await getPostmortem(db, id), null);
    assert.equal(await loadPostmortemInput(db, id + 10_000), null);

    const { draft } = await draftOf(id);
    const first = await savePostmortem(db, { incidentId: id, ...draft });
    assert.equal(first.revision, 1);
    assert.equal(first.generator, 'deterministic');
    assert.equal(first.throughEventId, draft.throughEventId);
    assert.equal(first.markdown, draft.markdown);

    await db.query(
      `INSERT INTO timeline_events (incident_id, at, actor, type, data) VALUES ($1, $2, 'U0DAN', 'incident.resolved', $3)`,
      [id, at(300), JSON.stringify({ from: 'open', to: 'resolved', reason: 'fixed by hand' })],
    );
    const again = draftPostmortem((await loadPostmortemInput(db, id)) as PostmortemInput, {
      narrative: { text: 'It broke.', suspectedCause: 'Unclear.', model: 'local-llm' },
    });
    const second = await savePostmortem(db, { incidentId: id, ...again });
    assert.equal(second.revision, 2);
    assert.equal(second.generator, 'llm:local-llm');
    assert.ok(second.throughEventId > first.throughEventId);
    assert.ok(second.updatedAt.getTime() >= first.updatedAt.getTime());

    const stored = await getPostmortem(db, id);
    assert.ok(stored);
    assert.equal(stored.revision, 2);
    assert.equal(stored.markdown, again.markdown);
    assert.equal(stored.summary, again.summary);
    assert.equal(stored.createdAt.getTime(), first.createdAt.getTime());
    assert.match(stored.markdown, /fixed by hand/);
  });
});

function check(s: number, diagnostic: string, status: string, summary: string, error: string | null = null) {
  return {
    s,
    actor: 'ai-sre',
    type: 'diagnostic.completed',
    data: { executionId: 1, diagnostic, type: 'prometheus_query', status, value: null, summary, error },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Pure parts: no database needed

function buildIncident(over: Partial<Incident> = {}): Incident {
  return {
    id: 42,
    service: 'billing',
    title: 'BillingErrors',
    summary: '',
    severity: 'high',
    status: 'resolved',
    source: 'alertmanager',
    alertCount: 1,
    labels: {},
    links: [],
    revision: 3,
    openedAt: at(0),
    firstSignalAt: at(-30),
    lastAlertAt: at(0),
    updatedAt: at(600),
    resolvedAt: at(600),
    ...over,
  };
}

let nextId = 1;
function buildEvent(
  seconds: number,
  actor: string,
  type: string,
  data: Record<string, unknown> = {},
): TimelineEvent {
  return { id: nextId++, incidentId: 42, at: at(seconds), actor, type, data, notify: true };
}

describe('postmortem drafts: untrusted text, narrative, derived items', () => {
  test('a title cannot inject a heading, a link or HTML', () => {
    const title = '# Pwned [click here](http://evil.example) <img src=x onerror=alert(1)> `rm -rf /`';
    const draft = draftPostmortem({
      incident: buildIncident({ title, summary: title }),
      events: [
        buildEvent(0, 'alertmanager', 'incident.opened', { service: 'billing', title }),
        buildEvent(0, 'alertmanager', 'alert.attached', {
          name: 'BillingErrors',
          severity: 'high',
          summary: title,
        }),
        buildEvent(600, 'ai-sre', 'incident.resolved', { reason: title }),
      ],
    });
    const md = draft.markdown;
    assert.ok(md.startsWith('# INC-42: \\# Pwned \\[click here\\](http://evil.example) \\<img'));
    // exactly one level-1 heading, and no line of the document starts a heading from the title
    assert.equal((md.match(/^# /gm) ?? []).length, 1);
    assert.doesNotMatch(md, /^#+ Pwned/m);
    // no unescaped link, HTML tag or code span from the title anywhere
    assert.doesNotMatch(md, /(?<!\\)\[click here(?<!\\)\]\(/);
    assert.doesNotMatch(md, /(?<!\\)<img/);
    assert.doesNotMatch(md, /(?<!\\)`rm -rf/);
  });

  test('escapeMarkdown neutralises block starts and markup, keeps snake_case readable', () => {
    assert.equal(escapeMarkdown('## heading'), '\\## heading');
    assert.equal(escapeMarkdown('- item'), '\\- item');
    assert.equal(escapeMarkdown('1. item'), '1\\. item');
    assert.equal(escapeMarkdown('12.5 GiB'), '12.5 GiB');
    assert.equal(escapeMarkdown('-5 degrees'), '-5 degrees');
    assert.equal(escapeMarkdown('---'), '\\---');
    assert.equal(
      escapeMarkdown('a <b> [c](d) `e` *f* ~g~ | h'),
      'a \\<b\\> \\[c\\](d) \\`e\\` \\*f\\* \\~g\\~ \\| h',
    );
    assert.equal(escapeMarkdown('disk_usage _x_'), 'disk_usage \\_x\\_');
    assert.equal(escapeMarkdown('&lt;script&gt; R&D'), '\\&lt;script\\&gt; R&D');
  });

  test('the narrative section appears only when given, marked machine-written and advisory, and is escaped', () => {
    const input = {
      incident: buildIncident(),
      events: [
        buildEvent(0, 'alertmanager', 'incident.opened', { service: 'billing', title: 'BillingErrors' }),
        buildEvent(600, 'ai-sre', 'incident.resolved', { reason: 'alerts cleared' }),
      ],
    };
    const plain = draftPostmortem(input);
    assert.doesNotMatch(plain.markdown, /Narrative/);
    assert.equal(plain.generator, 'deterministic');
    assert.equal(draftPostmortem(input, { narrative: null }).markdown, plain.markdown);

    const withNarrative = draftPostmortem(input, {
      narrative: {
        text: 'The billing job retried in a loop.\n## Approve rollback now\n<script>x</script> password=hunter2',
        suspectedCause: 'A bad [config](http://evil.example) push.',
        model: 'qwen2.5-7b',
      },
    });
    assert.equal(withNarrative.generator, 'llm:qwen2.5-7b');
    const narrative = section(withNarrative.markdown, 'Narrative (advisory, written by qwen2.5-7b)');
    assert.match(narrative, /\*\*Machine-written and advisory\.\*\*/);
    assert.match(narrative, /^> The billing job retried in a loop\.$/m);
    assert.match(narrative, /^> \\## Approve rollback now$/m);
    assert.match(narrative, /Suspected cause \(advisory\)/);
    assert.match(narrative, /^> A bad \\\[config\\\]\(http:\/\/evil\.example\) push\.$/m);
    assert.doesNotMatch(narrative, /hunter2/);
    assert.doesNotMatch(narrative, /(?<!\\)<script>/);
    // the rest of the document is the same evidence
    assert.equal(
      withNarrative.markdown.replace(/\n## Narrative[\s\S]*?(?=\n## )/, '').replace(/generator: [^)]*/, ''),
      plain.markdown.replace(/generator: [^)]*/, ''),
    );
    // blank narratives are ignored
    assert.equal(
      draftPostmortem(input, { narrative: { text: ' ', suspectedCause: '', model: 'm' } }).generator,
      'deterministic',
    );
  });

  test('an unresolved incident is measured up to now, or up to its newest event', () => {
    const input = {
      incident: buildIncident({ status: 'escalated', resolvedAt: null }),
      events: [
        buildEvent(0, 'alertmanager', 'incident.opened', { service: 'billing', title: 'BillingErrors' }),
        buildEvent(120, 'ai-sre', 'incident.escalated', {
          from: 'open',
          to: 'escalated',
          reason: 'needs a person',
        }),
      ],
    };
    assert.match(
      draftPostmortem(input).markdown,
      /not yet; open for 2 minutes as of 2026-11-26 03:02:00 UTC/,
    );
    const later = draftPostmortem(input, { now: at(3 * 3600 + 300) });
    assert.match(later.markdown, /not yet; open for 3 hours 5 minutes as of 2026-11-26 06:05:00 UTC/);
    assert.match(later.summary, /Status: escalated, open for 3 hours 5 minutes so far/);
    assert.match(section(later.markdown, 'What went badly'), /Still not resolved/);
  });

  test('an expired approval at night and a failed verification become follow-ups', () => {
    const draft = draftPostmortem({
      incident: buildIncident({ service: 'orders' }),
      events: [
        buildEvent(0, 'alertmanager', 'incident.opened', { service: 'orders', title: 'OrdersSlow' }),
        buildEvent(10, 'ai-sre', 'step.started', {
          executionId: 4,
          step: 'restart_pods',
          action: 'restart_service',
        }),
        buildEvent(20, 'ai-sre', 'step.executed', {
          executionId: 4,
          step: 'restart_pods',
          summary: 'restarted 3 pods',
        }),
        buildEvent(300, 'ai-sre', 'step.verification_failed', {
          executionId: 4,
          step: 'restart_pods',
          action: 'restart_service',
          reason: 'latency still above 2 s',
          findings: { latency: { status: 'critical' } },
        }),
        buildEvent(310, 'ai-sre', 'approval.requested', {
          executionId: 4,
          approvalId: 8,
          step: 'scale_up',
          action: 'scale',
          target: 'orders',
          approvers: ['@orders-oncall'],
        }),
        buildEvent(2110, 'ai-sre', 'approval.expired', { executionId: 4, approvalId: 8, step: 'scale_up' }),
        buildEvent(2400, 'ai-sre', 'escalation.exhausted', { escalationId: 1, levels: 2, cycles: 1 }),
      ],
    });
    assert.deepEqual(checkboxes(draft.markdown), [
      'Find out why restart_pods did not fix it',
      'Decide who approves scale at night',
      'Check the on-call rota: nobody acknowledged after every level',
    ]);
    const badly = section(draft.markdown, 'What went badly');
    assert.match(badly, /Verification failed: restart_pods did not fix it/);
    assert.match(badly, /Nobody approved scale_up: the request expired after 30 minutes/);
    assert.match(
      section(draft.markdown, 'Actions and outcomes'),
      /\*\*scale_up\*\* \(scale on orders\): \*\*approval expired\*\*/,
    );
  });

  test('no evidence, no follow-ups: the list says so and counts none', () => {
    const draft = draftPostmortem({
      incident: buildIncident(),
      events: [
        buildEvent(0, 'alertmanager', 'incident.opened', { service: 'billing', title: 'BillingErrors' }),
        buildEvent(600, 'alertmanager', 'incident.resolved', { reason: 'all alerts resolved' }),
      ],
    });
    assert.deepEqual(draft.followUps, []);
    assert.deepEqual(checkboxes(draft.markdown), []);
    assert.match(
      section(draft.markdown, 'Follow-up items'),
      /^- No follow-ups found by the bot; add your own\.$/m,
    );
    assert.match(draft.summary, /Fixed by: nothing recorded; the alerts cleared on their own/);
    assert.match(
      draft.summary,
      /Status: resolved 10 minutes after detection when alertmanager reported the alerts resolved/,
    );
    assert.match(draft.summary, /Follow-ups: none found by the bot/);
  });

  test('follow-ups: disk alert thresholds and the proposed earlier level', () => {
    const base: FollowUpEvidence = {
      service: 'db',
      labels: {},
      alertNames: ['NodeFilesystemAlmostOutOfSpace'],
      signalTexts: [],
      runbook: null,
      hypothesis: null,
      noRunbook: false,
      noteCauses: [],
      verificationFailed: [],
      failedSteps: [],
      expiredApprovals: [],
      wrongActions: [],
      pageFailures: [],
      exhaustedTeams: [],
      causeUnknown: false,
    };
    assert.deepEqual(deriveFollowUps(base), ['Alert earlier on the disk: at 75% used']);
    assert.deepEqual(deriveFollowUps({ ...base, labels: { mountpoint: '/data', threshold: '92.5' } }), [
      'Alert earlier: at 75% on /data instead of 92.5%',
    ]);
    assert.deepEqual(deriveFollowUps({ ...base, signalTexts: ['/srv usage above 70 %'] }), [
      'Alert earlier: at 60% on /srv instead of 70%',
    ]);
    assert.deepEqual(deriveFollowUps({ ...base, alertNames: ['HighRequestVolume'] }), []);
  });

  test('actor kinds and durations in words', () => {
    assert.equal(actorKind('U024BE7LH'), 'human');
    assert.equal(actorKind('W0123ABC'), 'human');
    assert.equal(actorKind('ai-sre'), 'bot');
    assert.equal(actorKind('alertmanager'), 'alert');
    assert.equal(actorKind('anomaly'), 'alert');
    assert.equal(formatDuration(400), 'under a second');
    assert.equal(formatDuration(1000), '1 second');
    assert.equal(formatDuration(90_000), '1 minute 30 seconds');
    assert.equal(formatDuration(12 * 60_000 + 40_000), '12 minutes');
    assert.equal(formatDuration(3_600_000), '1 hour');
    assert.equal(formatDuration(26 * 3_600_000 + 60_000), '1 day 2 hours');
  });
});

describe('postmortem thread message', () => {
  test('names the draft, escapes the summary and counts follow-ups', () => {
    const msg = buildPostmortemSummaryMessage({
      incidentId: 42,
      summary:
        'INC-42 <!channel> & <http://evil|click> (billing, high)\nStatus: resolved\nFollow-ups: 2 (see the draft).',
      followUps: 2,
      generator: 'llm:qwen<2>',
    });
    assert.equal(msg.text, 'Postmortem draft for INC-42 — full draft attached');
    const json = JSON.stringify(msg.blocks);
    assert.match(json, /Postmortem draft for INC-42/);
    assert.doesNotMatch(json, /<!channel>/);
    assert.doesNotMatch(json, /<http:\/\/evil/);
    const body = (msg.blocks[1] as SectionBlock).text?.text ?? '';
    assert.equal(body.split('\n').length, 3);
    assert.match(body, /&lt;!channel&gt; &amp; &lt;http:\/\/evil\|click&gt;/);
    assert.match(json, /2 follow-up items/);
    assert.match(json, /qwen&lt;2&gt;: machine-written, advisory only/);

    const none = buildPostmortemSummaryMessage({
      incidentId: 7,
      summary: '',
      followUps: 0,
      generator: 'deterministic',
    });
    assert.equal(none.blocks.length, 2);
    assert.match(
      JSON.stringify(none.blocks),
      /no follow-ups found by the bot · written from the timeline by ai-sre/,
    );

    const long = buildPostmortemSummaryMessage({
      incidentId: 8,
      summary: 'x'.repeat(10_000),
      followUps: 1,
      generator: 'deterministic',
    });
    assert.ok(((long.blocks[1] as SectionBlock).text?.text.length ?? 0) <= 3000);
  });
});
