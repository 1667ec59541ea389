import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KnownBlock } from '@slack/types';
import { buildContextPacket, type ContextPacket, packetDetails } from '../src/escalation/context-packet.js';
import { classifyEscalation, describeCategory, type EscalationWhy } from '../src/escalation/reasons.js';
import { describeEvent } from '../src/incidents/describe-event.js';
import type { TimelineEvent } from '../src/incidents/timeline.js';
import { stopAndEscalate } from '../src/remediation/engine.js';
import { insertStep, moveStep } from '../src/remediation/step-repo.js';
import { decide } from '../src/runbooks/decide.js';
import {
  appendEvent,
  createExecution,
  getExecution,
  storeDecision,
  storeResult,
} from '../src/runbooks/execution-repo.js';
import { markInvestigating, moveIncident } from '../src/runbooks/incident-status.js';
import type { Finding } from '../src/runbooks/interpret.js';
import { Runbook } from '../src/runbooks/runbook.schema.js';
import {
  buildContextPacketMessage,
  PAGE_ACK_ACTION,
  PAGE_REASSIGN_ACTION,
  PAGE_RESOLVE_ACTION,
  type PacketEscalationState,
} from '../src/slack/blocks/context-packet.js';
import { MAX_TOTAL_BLOCK_TEXT, SLACK_LIMITS } from '../src/slack/blocks/limits.js';
import { describeEvent as describeEventViaSlack } from '../src/slack/incident-view.js';
import { resolveSeededIncident, seedIncident, useSeedDatabase } from './helpers/seed-incidents.js';

type Ev = Pick<TimelineEvent, 'type' | 'data' | 'actor'>;
const ev = (type: string, data: Record<string, unknown> = {}, actor = 'ai-sre'): Ev => ({
  type,
  data,
  actor,
});
const INCIDENT = { severity: 'critical', service: 'payment-service' } as const;
const escalated = (reason: string, actor = 'ai-sre') =>
  ev('incident.escalated', { from: 'mitigating', to: 'escalated', reason }, actor);

/** decision.made as decide.job.ts writes it */
function decisionMade(over: Record<string, unknown>): Ev {
  return ev('decision.made', {
    executionId: 7,
    runbookId: 'db-connection-pool-exhausted',
    runbookName: 'Database connection pool exhausted',
    outcome: 'escalate',
    text: 'decision text',
    hypothesis: null,
    plan: [],
    escalation: null,
    escalate: true,
    reason: null,
    noRunbook: false,
    ...over,
  });
}

/** the head of a real run: opened, runbook started, checks in, a remediate decision, the first step running */
const RUN_START: Ev[] = [
  ev('incident.opened', { service: 'payment-service', severity: 'critical', title: 'DB pool exhausted' }),
  ev('runbook.started', {
    executionId: 7,
    runbookId: 'db-connection-pool-exhausted',
    diagnostics: ['connections'],
  }),
  ev('incident.investigating', { from: 'open', to: 'investigating', reason: 'running runbook' }),
  ev('diagnostic.completed', { diagnostic: 'connections', status: 'critical', summary: '97.9 % used' }),
  decisionMade({
    outcome: 'remediate',
    hypothesis: { id: 'idle_sessions', description: 'Idle sessions hold most slots', likelihood: 1 },
    plan: [
      {
        id: 'terminate_idle',
        action: 'terminate_connections',
        description: 'Terminate idle',
        requiresApproval: false,
      },
    ],
    escalate: false,
  }),
  ev('step.started', {
    executionId: 7,
    step: 'terminate_idle',
    action: 'terminate_connections',
    target: 'db:main',
  }),
];

function classify(events: Ev[]): EscalationWhy {
  return classifyEscalation(events, INCIDENT);
}

describe('classifyEscalation', () => {
  test('no runbook matched: unknown failure type', () => {
    const why = classify([
      ev('incident.opened', { service: 'payment-service' }),
      decisionMade({
        runbookId: 'default-triage',
        escalation: { reason: 'default', users: [], why: 'no hypothesis confirmed' },
        reason: 'no runbook matches this incident; no hypothesis confirmed',
        noRunbook: true,
      }),
      escalated('no runbook matches this incident; no hypothesis confirmed'),
    ]);
    assert.equal(why.category, 'unknown_type');
    assert.equal(why.route, 'default');
    assert.match(why.text, /no runbook matches this incident/);
    assert.match(why.decide, /No runbook recognised/);
  });

  test('a runbook whose hypotheses were all refuted: unknown type, routed by its escalation target', () => {
    const why = classify([
      decisionMade({
        escalation: {
          reason: 'database',
          team: 'dba',
          users: [],
          why: 'no hypothesis confirmed (inconclusive: idle did not report)',
        },
        reason: 'no hypothesis confirmed (inconclusive: idle did not report)',
      }),
      escalated('no hypothesis confirmed'),
    ]);
    assert.equal(why.category, 'unknown_type');
    assert.equal(why.route, 'database');
    assert.equal(why.team, 'dba');
    assert.match(why.text, /inconclusive: idle did not report/);
  });

  test('ambiguous: names both hypotheses, with confidences when the decision has them', () => {
    const why = classify([
      decisionMade({
        hypothesis: { id: 'idle_sessions', description: 'Idle sessions hold most slots', likelihood: 1 },
        escalation: {
          reason: 'ambiguous',
          team: 'dba',
          users: [],
          why: 'ambiguous: idle_sessions and slow_queries are equally likely and call for different actions',
        },
        reason: 'ambiguous: idle_sessions and slow_queries are equally likely and call for different actions',
      }),
      escalated('ambiguous'),
    ]);
    assert.equal(why.category, 'ambiguous');
    assert.match(why.text, /Idle sessions hold most slots/);
    assert.match(why.text, /slow_queries/);
    assert.equal(why.team, 'dba');

    const scored = classify([
      decisionMade({
        hypothesis: { id: 'a', description: 'Idle sessions', likelihood: 1 },
        hypotheses: [
          { id: 'b', description: 'A slow query holds locks', confidence: 0.75, confirmed: true },
          { id: 'a', description: 'Idle sessions', confidence: 0.82, confirmed: true },
          { id: 'c', description: 'Refuted', confidence: 0.9, confirmed: false },
        ],
        escalation: { reason: 'ambiguous', users: [], why: 'ambiguous' },
      }),
      escalated('ambiguous'),
    ]);
    assert.equal(
      scored.text,
      'two causes within 20%: Idle sessions (0.82) and A slow query holds locks (0.75)',
    );
  });

  test('a hypothesis escalating for security, database, high impact or anything else', () => {
    const target = (reason: string, team?: string) =>
      classify([
        decisionMade({
          hypothesis: { id: 'h', description: 'An unexpected process listens on 4444', likelihood: 1 },
          escalation: { reason, ...(team ? { team } : {}), users: [], note: 'do not restart', why: 'h' },
          reason: 'An unexpected process listens on 4444',
        }),
        escalated('An unexpected process listens on 4444'),
      ]);
    const security = target('security', 'secops');
    assert.deepEqual(
      { category: security.category, route: security.route, team: security.team },
      { category: 'security', route: 'security', team: 'secops' },
    );
    assert.equal(security.text, 'An unexpected process listens on 4444 (do not restart)');
    assert.match(security.decide, /isolate/);

    const database = target('database', 'dba');
    assert.deepEqual([database.category, database.route, database.team], ['needs_human', 'database', 'dba']);
    assert.match(database.decide, /DBA/);

    const impact = target('high_impact');
    assert.deepEqual([impact.category, impact.route, impact.team], ['high_impact', 'default', null]);

    const other = target('default', 'payments');
    assert.deepEqual([other.category, other.route, other.team], ['needs_human', 'default', 'payments']);
    assert.match(other.decide, /runbook hands this case/);
  });

  test('an escalate step of the plan hands over with its own reason and team', () => {
    const why = classify([
      ...RUN_START,
      ev('step.executed', {
        step: 'hand_over',
        action: 'escalate',
        inputs: { reason: 'security', team: 'secops' },
        summary: 'handed the incident to secops (security)',
        ok: true,
      }),
      ev('remediation.escalated', { reason: 'handed the incident to secops (security)', tried: [] }),
      escalated('handed the incident to secops (security)'),
    ]);
    assert.deepEqual([why.category, why.route, why.team], ['security', 'security', 'secops']);
  });

  test('a refused step or the kill switch: limit hit', () => {
    const refused = classify([
      ...RUN_START,
      ev('step.refused', {
        step: 'restart_pods',
        action: 'restart_service',
        kind: 'limit',
        reason: 'limit: 2 restarts of k8s:prod/payments in the last 10 min',
      }),
      ev('remediation.escalated', { reason: 'restart_pods refused: limit', tried: [] }),
      escalated('restart_pods refused: limit'),
    ]);
    assert.equal(refused.category, 'limit_hit');
    assert.match(refused.text, /restart_pods \(restart_service\) refused: limit: 2 restarts/);

    const killSwitch = classify([
      ...RUN_START,
      ev('step.skipped', {
        step: 'terminate_idle',
        kind: 'automation_off',
        reason: 'automation is off (by U0ADMIN: change freeze); nothing was executed',
      }),
      ev('remediation.escalated', { reason: 'terminate_idle skipped', tried: [] }),
      escalated('terminate_idle skipped'),
    ]);
    assert.equal(killSwitch.category, 'limit_hit');
    assert.match(killSwitch.text, /automation is off/);
  });

  test('an expired or rejected approval', () => {
    const expired = classify([
      ...RUN_START,
      ev('approval.requested', { approvalId: 3, step: 'raise_pool', action: 'http_request', target: 'svc' }),
      ev('approval.expired', {
        approvalId: 3,
        executionId: 7,
        step: 'raise_pool',
        expiresAt: '2026-03-02T10:30:00.000Z',
      }),
      ev('remediation.escalated', { reason: 'nobody approved raise_pool in time', tried: [] }),
      escalated('nobody approved raise_pool in time'),
    ]);
    assert.equal(expired.category, 'approval_expired');
    assert.equal(expired.text, 'nobody approved raise_pool in time (expired at 2026-03-02T10:30:00.000Z)');

    const rejected = classify([
      ...RUN_START,
      ev(
        'step.rejected',
        { approvalId: 3, step: 'raise_pool', action: 'http_request', target: 'payment-service admin' },
        'U0REJECT',
      ),
      ev('remediation.escalated', { reason: 'raise_pool was rejected by U0REJECT', tried: [] }),
      escalated('raise_pool was rejected by U0REJECT'),
    ]);
    assert.equal(rejected.category, 'approval_rejected');
    assert.match(rejected.text, /rejected by U0REJECT/);
  });

  test('a fix that failed, did not verify, ended unknown or verified nothing', () => {
    const cases: [Ev, RegExp][] = [
      [
        ev('step.verification_failed', {
          step: 'terminate_idle',
          reason:
            'not fixed within 5m: diagnostics.connections.status == "healthy" is still false after 5 checks',
        }),
        /terminate_idle did not fix it: not fixed within 5m/,
      ],
      [
        ev('step.failed', { step: 'terminate_idle', summary: 'terminate_idle failed: permission denied' }),
        /permission denied/,
      ],
      [
        ev('step.outcome_unknown', { step: 'terminate_idle', reason: 'the worker stopped' }),
        /outcome unknown/,
      ],
      [
        ev('remediation.completed', {
          reason: 'the plan ran but nothing verified the fix: a person should confirm it',
        }),
        /nothing verified the fix/,
      ],
    ];
    for (const [cause, text] of cases) {
      const why = classify([
        ...RUN_START,
        cause,
        ev('remediation.escalated', { reason: 'x' }),
        escalated('x'),
      ]);
      assert.equal(why.category, 'fix_failed', cause.type);
      assert.match(why.text, text);
      assert.equal(
        why.decide,
        'The automatic fix did not hold: decide whether to roll back what was done or try the next step by hand.',
      );
    }
  });

  test('shadow mode', () => {
    const why = classify([
      ...RUN_START,
      ev('step.dry_run', { step: 'terminate_idle', summary: 'would terminate 12 sessions' }),
      ev('remediation.shadow', {
        reason: 'shadow mode: nothing was executed; terminate_idle would have run',
      }),
      escalated('shadow mode'),
    ]);
    assert.equal(why.category, 'shadow');
    assert.match(why.text, /terminate_idle would have run/);
  });

  test('a person escalating with no other cause: manual, even after an earlier automatic escalation', () => {
    const first = [
      ev('incident.opened', { service: 'payment-service' }),
      escalated('customers report failed payments', 'U0MANUAL'),
    ];
    const manual = classify(first);
    assert.equal(manual.category, 'manual');
    assert.equal(manual.text, 'escalated by hand by U0MANUAL: customers report failed payments');

    const again = classify([
      ...RUN_START,
      ev('step.failed', { step: 'terminate_idle', summary: 'boom' }),
      escalated('terminate_idle failed'),
      ev(
        'incident.investigating',
        { from: 'escalated', to: 'investigating', reason: 'taking a look' },
        'U0MANUAL',
      ),
      escalated('still broken', 'U0MANUAL'),
    ]);
    assert.equal(again.category, 'manual');
  });

  test('the most recent cause before the newest escalation wins; later events do not count', () => {
    const why = classify([
      ...RUN_START,
      ev('step.verification_failed', { step: 'terminate_idle', reason: 'still critical' }),
      ev('remediation.escalated', { reason: 'x' }),
      escalated('terminate_idle did not fix it'),
      ev('incident.investigating', { from: 'escalated', to: 'investigating', reason: 'manual run' }, 'U0OPS'),
      ev('step.refused', {
        step: 'restart_pods',
        action: 'restart_service',
        kind: 'limit',
        reason: 'limit: 2 restarts',
      }),
      ev('remediation.escalated', { reason: 'restart_pods refused' }),
      escalated('restart_pods refused'),
      ev('escalation.started', { escalationId: 1, category: 'limit_hit' }),
      ev('page.sent', { escalationId: 1, level: 1, targets: [], deliveredBy: ['slack'] }),
    ]);
    assert.equal(why.category, 'limit_hit');

    // an automatic escalation with nothing new since the previous one looks further back
    const back = classify([
      ...RUN_START,
      ev('step.failed', { step: 'terminate_idle', summary: 'boom' }),
      escalated('terminate_idle failed'),
      ev('incident.investigating', { from: 'escalated', to: 'investigating', reason: 'x' }),
      escalated('again'),
    ]);
    assert.equal(back.category, 'fix_failed');
  });

  test('every category has words and a decide sentence', () => {
    assert.equal(describeCategory('unknown_type'), 'unknown failure type');
    assert.equal(describeCategory('ambiguous'), 'ambiguous cause');
    assert.equal(describeCategory('fix_failed'), 'automatic fix failed');
  });
});

describe('describeEvent for escalation events', () => {
  test('each escalation event reads as one plain line, without mentions', () => {
    const lines = [
      describeEvent({
        type: 'escalation.started',
        data: {
          escalationId: 4,
          category: 'fix_failed',
          categoryText: 'automatic fix failed',
          reason: 'terminate_idle did not fix it',
          route: 'default',
          team: 'payments',
          policy: 'default',
          deferredUntil: null,
        },
      }),
      describeEvent({
        type: 'escalation.started',
        data: {
          escalationId: 4,
          category: 'security',
          reason: 'odd process',
          route: 'security',
          team: null,
          policy: null,
          deferredUntil: null,
        },
      }),
      describeEvent({
        type: 'page.sent',
        data: {
          escalationId: 4,
          level: 2,
          cycle: 1,
          targets: [
            { name: 'Ana Lima', slackUser: 'U0ANA' },
            { name: 'Bo Chen', slackUser: null },
          ],
          deliveredBy: ['slack', 'pagerduty'],
        },
      }),
      describeEvent({
        type: 'page.failed',
        data: { escalationId: 4, level: 1, target: 'Ana Lima', error: 'HTTP 400: invalid routing key' },
      }),
      describeEvent({
        type: 'page.deferred',
        data: { escalationId: 4, until: '2026-03-03T08:00:00.000Z', reason: 'quiet hours' },
      }),
      describeEvent({ type: 'page.acknowledged', data: { escalationId: 4, by: 'U0ANA' } }),
      describeEvent({ type: 'page.reassigned', data: { escalationId: 4, from: 'U0ANA', to: 'U0BO' } }),
      describeEvent({ type: 'escalation.exhausted', data: { escalationId: 4, levels: 3, cycles: 2 } }),
      describeEvent({ type: 'escalation.joined', data: { escalationId: 4, reason: 'limit hit' } }),
      describeEvent({ type: 'escalation.resolved', data: { escalationId: 4 } }),
      describeEvent({ type: 'page.digested', data: { escalationId: 4, channel: 'C0DIGEST' } }),
    ];
    assert.deepEqual(lines, [
      'Escalated (automatic fix failed): terminate_idle did not fix it → payments',
      // an event without the words falls back to the category id
      'Escalated (security): odd process → no team',
      'Paged Ana Lima, Bo Chen (level 2, via slack, pagerduty)',
      'Could not page Ana Lima: HTTP 400: invalid routing key',
      'Quiet hours: not paging for this severity; in the morning digest (until 2026-03-03T08:00:00.000Z)',
      'Acknowledged by U0ANA',
      'Reassigned to U0BO',
      'Nobody acknowledged after every level (3 levels, 2 cycles)',
      'Escalated again (limit hit); the existing escalation continues',
      'Escalation closed: the incident is resolved',
      'Listed in the morning digest',
    ]);
    assert.ok(lines.every((l) => !l.includes('<@')));
  });

  test('the Slack view still exports the same describeEvent', () => {
    assert.equal(describeEventViaSlack, describeEvent);
    assert.equal(
      describeEventViaSlack({ type: 'alert.resolved', data: { name: 'HighErrorRate' } }),
      'Alert HighErrorRate resolved',
    );
  });
});

const SECRETS = {
  password: 'password=hunter2',
  slack: 'xoxb-1234567890-abcdefghijkl',
  url: 'postgres://app:sup3rs3cret@db-1.internal:5432/payments',
  bearer: 'Authorization: Bearer abcdef0123456789TOKEN',
  aws: 'AKIAIOSFODNN7EXAMPLE',
};
const LEAKS = ['hunter2', 'xoxb-1234567890', 'sup3rs3cret', 'abcdef0123456789TOKEN', 'AKIAIOSFODNN7EXAMPLE'];

function assertNoSecrets(text: string, what: string): void {
  for (const leak of LEAKS) assert.ok(!text.includes(leak), `${what} leaks ${leak}`);
}

describe('against Postgres', () => {
  const db = useSeedDatabase('packet');

  test('the packet of an escalated incident whose fix did not verify', async () => {
    const runbook = Runbook.parse({
      id: 'db-connection-pool-exhausted',
      name: 'Database connection pool exhausted',
      version: 3,
      diagnostics: [
        { id: 'connections', type: 'database_query', unit: '%', config: { target: 'main', sql: 'SELECT 1' } },
        { id: 'idle', type: 'database_query', config: { target: 'main', sql: 'SELECT 1' } },
        { id: 'long_queries', type: 'database_query', config: { target: 'main', sql: 'SELECT 1' } },
      ],
      decision: [
        {
          id: 'idle_sessions',
          description: 'Idle sessions hold most connection slots',
          likelihood: 1,
          when: 'diagnostics.connections.status == "critical" && diagnostics.idle.status == "critical"',
          remediate: ['terminate_idle'],
        },
        {
          id: 'slow_queries',
          description: 'Long-running queries hold the connections',
          likelihood: 2,
          when: 'diagnostics.long_queries.status == "critical"',
          escalate: { reason: 'database', team: 'dba' },
        },
      ],
      remediations: [
        {
          id: 'terminate_idle',
          action: 'terminate_connections',
          description: 'Terminate sessions idle for more than 10 minutes',
          config: { target: 'main', state: 'idle', idleLongerThan: '10m', limit: 50 },
          verify: {
            diagnostics: ['connections'],
            expect: 'diagnostics.connections.status == "healthy"',
            within: '5m',
          },
        },
      ],
      escalation: { reason: 'database', team: 'dba' },
    });
    const openedAt = new Date(Date.now() - 20 * 60_000);
    const incident = await seedIncident(db, {
      service: 'payment-service',
      title: 'PostgresConnectionPoolExhausted',
      summary: `Connection pool exhausted ${SECRETS.password}`,
      alert: 'PostgresConnectionPoolExhausted',
      alertSummary: `97% of connections used; DSN ${SECRETS.url} <!channel>`,
      openedAt,
      generatorUrl: 'http://prometheus.example:9090/graph?g0.expr=pg_up&token=s3cr3tT0ken',
      annotations: { dashboard_url: 'https://grafana.example/d/pg', runbook_url: 'javascript:alert(1)' },
    });
    await appendEvent(db, incident.id, 'alertmanager', 'alert.attached', true, {
      fingerprint: 'abc',
      name: 'HikariPendingThreads',
      severity: 'warning',
      summary: `pending threads; slack ${SECRETS.slack}`,
    });
    const setup = await db.connect();
    let execution: Awaited<ReturnType<typeof createExecution>>['execution'];
    try {
      execution = (
        await createExecution(setup, {
          incidentId: incident.id,
          requestKey: 'auto',
          match: {
            loaded: { runbook, file: 'runbooks/db.yml', hash: 'sha256:abc' },
            matchedBy: 'trigger',
            detail: { alert: 'PostgresConnectionPoolExhausted' },
          },
          requestedBy: 'ai-sre',
          vars: { labels: {}, annotations: {}, incident: { service: 'payment-service' }, service: {} },
        })
      ).execution;
      await markInvestigating(setup, incident.id, 'running runbook db-connection-pool-exhausted');
    } finally {
      setup.release();
    }
    const findings: Record<string, Finding> = {
      connections: {
        status: 'critical',
        value: 97.9,
        result: {},
        summary: `97.9 % of max_connections used (${SECRETS.bearer})`,
        error: null,
      },
      idle: {
        status: 'critical',
        value: 41,
        result: {},
        summary: `41 idle > 10 min; ${SECRETS.password} key ${SECRETS.aws}`,
        error: null,
      },
      long_queries: {
        status: 'healthy',
        value: 0,
        result: {},
        summary: 'no statement over a minute',
        error: null,
      },
    };
    const now = new Date();
    for (const [position, id] of ['connections', 'idle', 'long_queries'].entries()) {
      const f = findings[id] as Finding;
      await storeResult(db, execution, {
        ...f,
        diagnosticId: id,
        position,
        type: 'database_query',
        durationMs: 40,
        startedAt: now,
        finishedAt: now,
      });
    }
    const decision = decide(runbook, findings, execution.vars);
    assert.equal(decision.outcome, 'remediate');

    const tx = await db.connect();
    try {
      await tx.query('BEGIN');
      await storeDecision(tx, execution, decision, { escalate: false, reason: null });
      await tx.query(`UPDATE runbook_executions SET remediation_status = 'running' WHERE id = $1`, [
        execution.id,
      ]);
      await appendEvent(tx, incident.id, 'ai-sre', 'decision.made', true, {
        executionId: execution.id,
        runbookId: runbook.id,
        runbookName: runbook.name,
        outcome: decision.outcome,
        text: decision.text,
        hypothesis: decision.hypothesis,
        plan: decision.plan.map((s) => ({
          id: s.id,
          action: s.action,
          description: s.description,
          requiresApproval: false,
        })),
        escalation: decision.escalation,
        escalate: false,
        reason: null,
        noRunbook: false,
      });
      const step = await insertStep(tx, {
        executionId: execution.id,
        incidentId: incident.id,
        position: 0,
        stepId: 'terminate_idle',
        action: 'terminate_connections',
        tier: 'safe',
        mode: 'autonomous',
        status: 'ready',
        target: 'postgres:main',
        config: { target: 'main', state: 'idle', idleLongerThan: '10m', limit: 50 },
        reason: null,
      });
      assert.ok(step);
      await moveStep(tx, step.id, ['ready'], 'started', { started: true });
      await appendEvent(tx, incident.id, 'ai-sre', 'step.started', true, {
        executionId: execution.id,
        step: 'terminate_idle',
        action: 'terminate_connections',
        target: 'postgres:main',
        dryRun: false,
      });
      await moveIncident(tx, incident.id, 'mitigating', 'running terminate_idle');
      await moveStep(tx, step.id, ['started'], 'succeeded', {
        result: { ok: true, summary: 'terminated 38 idle sessions' },
        finished: true,
        durationMs: 120,
      });
      await appendEvent(tx, incident.id, 'ai-sre', 'step.executed', true, {
        executionId: execution.id,
        step: 'terminate_idle',
        action: 'terminate_connections',
        summary: 'terminated 38 idle sessions',
        ok: true,
        durationMs: 120,
      });
      const reason =
        'not fixed within 5m: diagnostics.connections.status == "healthy" is still false after 5 checks';
      await moveStep(tx, step.id, ['succeeded'], 'verification_failed', {
        reason,
        verifyChecks: 5,
        result: {
          ok: true,
          summary: 'terminated 38 idle sessions',
          verification: {
            checks: 5,
            last: { connections: { status: 'critical', summary: '96.2 % of max_connections used' } },
            expect: 'diagnostics.connections.status == "healthy"',
          },
        },
      });
      await appendEvent(tx, incident.id, 'ai-sre', 'step.verification_failed', true, {
        executionId: execution.id,
        step: 'terminate_idle',
        action: 'terminate_connections',
        reason,
        checks: 5,
        findings: { connections: { status: 'critical', summary: '96.2 % of max_connections used' } },
      });
      const loaded = await getExecution(tx, execution.id);
      assert.ok(loaded);
      assert.ok((await stopAndEscalate(tx, loaded, `terminate_idle did not fix it: ${reason}`)) !== null);
      await tx.query('COMMIT');
    } catch (err) {
      await tx.query('ROLLBACK');
      throw err;
    } finally {
      tx.release();
    }
    // what the escalation flow writes after the incident escalated: not a cause, but part of the timeline
    await appendEvent(db, incident.id, 'ai-sre', 'escalation.started', true, {
      escalationId: 9,
      category: 'fix_failed',
      reason: 'terminate_idle did not fix it',
      route: 'database',
      team: 'dba',
      policy: 'default',
      deferredUntil: null,
    });
    await appendEvent(db, incident.id, 'ai-sre', 'page.sent', true, {
      escalationId: 9,
      level: 1,
      cycle: 1,
      targets: [{ name: 'Ana Lima', slackUser: 'U0ANA' }],
      deliveredBy: ['slack'],
    });
    // a similar incident from last week
    const earlier = await seedIncident(db, {
      service: 'payment-service',
      title: 'PostgresConnectionPoolExhausted',
      alert: 'PostgresConnectionPoolExhausted',
      openedAt: new Date(openedAt.getTime() - 7 * 86_400_000),
    });
    await resolveSeededIncident(db, earlier, {
      actor: 'U0DBA',
      reason: 'raised max_connections',
      afterMinutes: 25,
    });

    const packet = await buildContextPacket(db, incident.id);
    assert.ok(packet);
    assert.equal(packet.ref, `INC-${incident.id}`);
    assert.equal(packet.status, 'escalated');
    assert.equal(packet.why.category, 'fix_failed');
    assert.match(packet.why.text, /terminate_idle did not fix it: not fixed within 5m/);
    assert.match(
      packet.summary,
      /^payment-service: PostgresConnectionPoolExhausted \(critical\), 1 alert, 97% of connections used/,
    );
    assert.equal(packet.startedAt.getTime(), openedAt.getTime() - 120_000);

    assert.deepEqual(
      packet.causes.map((c) => [c.description, c.confirmed, c.confidence]),
      [
        ['Idle sessions hold most connection slots', true, null],
        ['Long-running queries hold the connections', false, null],
      ],
    );
    assert.deepEqual(
      packet.causes[0]?.evidence.map((x) => x.split(':')[0]),
      ['connections critical', 'idle critical'],
    );
    assert.deepEqual(packet.causes[1]?.evidence, ['long_queries healthy: no statement over a minute']);

    assert.deepEqual(packet.actions, [
      {
        step: 'terminate_idle',
        action: 'terminate_connections',
        status: 'verification_failed',
        summary: 'terminated 38 idle sessions',
        verification:
          'not verified after 5 checks: not fixed within 5m: diagnostics.connections.status == "healthy" is still false after 5 checks; last check: connections critical (96.2 % of max_connections used)',
      },
    ]);
    assert.deepEqual(
      packet.diagnostics.map((d) => [d.id, d.status]),
      [
        ['connections', 'critical'],
        ['idle', 'critical'],
        ['long_queries', 'healthy'],
      ],
    );

    const { rows } = await db.query<{ type: string }>(
      'SELECT type FROM timeline_events WHERE incident_id = $1 ORDER BY id',
      [incident.id],
    );
    assert.ok(rows.length > 15, `seeded ${rows.length} events`);
    assert.equal(packet.timeline.length, 15);
    assert.equal(packet.timelineOmitted, rows.length - 15);
    assert.deepEqual(
      packet.timeline.map((t) => t.type),
      rows.slice(-15).map((r) => r.type),
    );
    assert.equal(packet.timeline.at(-1)?.text, 'Paged Ana Lima (level 1, via slack)');
    assert.equal(packet.timeline.at(-2)?.type, 'escalation.started');

    assert.deepEqual(
      packet.similar.map((s) => [s.id, s.resolution]),
      [[earlier.id, 'resolved by U0DBA after 25 min']],
    );
    assert.deepEqual(packet.runbook, {
      id: 'db-connection-pool-exhausted',
      name: 'Database connection pool exhausted',
      version: '3',
      matchedBy: 'trigger',
    });
    assert.deepEqual(
      packet.links.map((l) => l.label),
      ['Source: PostgresConnectionPoolExhausted', 'Dashboard: PostgresConnectionPoolExhausted'],
      'javascript: URLs are dropped',
    );
    assert.match(packet.links[0]?.url ?? '', /token=\*\*\*/);

    const short = await buildContextPacket(db, incident.id, { timelineLimit: 3, similarLimit: 0 });
    assert.equal(short?.timeline.length, 3);
    assert.equal(short?.similar.length, 0);
    assert.equal(await buildContextPacket(db, 987_654_321), null);

    // secrets from alerts, diagnostics and the timeline never leave the bot
    const json = JSON.stringify(packet);
    assertNoSecrets(json, 'the packet');
    assert.match(json, /password=\*\*\*/);
    const details = packetDetails(packet);
    const detailsJson = JSON.stringify(details);
    assertNoSecrets(detailsJson, 'packetDetails');
    assert.ok(!detailsJson.includes('s3cr3tT0ken'));
    assert.equal(details.escalation_category, 'fix_failed');
    assert.equal(details.incident, `INC-${incident.id}`);
    assert.ok(Array.isArray(details.causes) && Array.isArray(details.timeline));
    assert.match(
      String((details.causes as string[])[0]),
      /^1\. Idle sessions hold most connection slots \(confirmed\)/,
    );
    for (const [key, value] of Object.entries(details)) {
      const flat = Array.isArray(value)
        ? value.every((v) => typeof v === 'string')
        : typeof value !== 'object' || value === null;
      assert.ok(flat, `${key} is a string, a number or a list of strings`);
    }
    const message = buildContextPacketMessage(packet, pagingState());
    assertNoSecrets(JSON.stringify(message), 'the Slack message');
  });
});

function pagingState(over: Partial<PacketEscalationState> = {}): PacketEscalationState {
  return {
    escalationId: 9,
    status: 'paging',
    level: 1,
    paged: [
      { name: 'Ana Lima', slackUser: 'U0ANA' },
      { name: 'Bo <!here> Chen', slackUser: null },
    ],
    ackedBy: null,
    ackedAt: null,
    nextAt: new Date('2026-03-02T10:30:00Z'),
    reassignTo: [
      { slackUser: 'U0BO', label: 'Bo Chen (payments)' },
      { slackUser: 'U0CY', label: 'Cy Diaz (dba)' },
    ],
    ...over,
  };
}

function buildPacket(over: Partial<ContextPacket> = {}): ContextPacket {
  const at = new Date('2026-03-02T10:00:00Z');
  return {
    incidentId: 42,
    ref: 'INC-42',
    service: 'payment-service',
    severity: 'critical',
    status: 'escalated',
    title: 'HighErrorRate',
    summary: 'payment-service: HighErrorRate (critical), 3 alerts, 12% of requests failing',
    startedAt: at,
    openedAt: at,
    why: {
      category: 'fix_failed',
      text: 'rollback did not fix it: error rate still 11%',
      route: 'default',
      team: 'payments',
      decide:
        'The automatic fix did not hold: decide whether to roll back what was done or try the next step by hand.',
    },
    timeline: [
      {
        at,
        actor: 'alertmanager',
        type: 'incident.opened',
        text: 'Incident opened for payment-service: HighErrorRate',
      },
      {
        at: new Date('2026-03-02T10:07:00Z'),
        actor: 'ai-sre',
        type: 'incident.escalated',
        text: 'Status changed',
      },
    ],
    timelineOmitted: 4,
    diagnostics: [
      { id: 'error_rate', status: 'critical', summary: '12% of requests fail' },
      { id: 'recent_deploys', status: 'warning', summary: 'v142 deployed 9 minutes ago' },
    ],
    actions: [
      {
        step: 'rollback',
        action: 'rollback',
        status: 'verification_failed',
        summary: 'rolled back to v141',
        verification: 'not verified after 5 checks; last check: error_rate critical',
      },
    ],
    causes: [
      {
        description: 'The last deploy broke checkout',
        confidence: null,
        confirmed: true,
        evidence: ['recent_deploys warning: v142 9 min ago'],
      },
      { description: 'A dependency is down', confidence: null, confirmed: false, evidence: [] },
    ],
    similar: [
      {
        id: 17,
        title: 'HighErrorRate after deploy',
        service: 'payment-service',
        severity: 'critical',
        openedAt: new Date('2026-02-01T10:00:00Z'),
        resolvedAt: new Date('2026-02-01T10:14:00Z'),
        score: 5.1,
        matched: ['service', 'alert', 'text'],
        resolution: 'resolved by U0ANA after 14 min',
      },
    ],
    links: [
      { label: 'Source', url: 'http://prometheus.example:9090/graph?g0.expr=rate&x=<y>|z' },
      { label: 'Dashboard', url: 'https://grafana.example/d/payments' },
    ],
    runbook: { id: 'bad-deploy', name: 'Bad deploy', version: '2', matchedBy: 'trigger' },
    ...over,
  };
}

const textsOf = (blocks: KnownBlock[]): string[] =>
  blocks.flatMap((b) => {
    if (b.type === 'section') return [b.text?.text ?? '', ...(b.fields ?? []).map((f) => f.text)];
    if (b.type === 'header') return [b.text.text];
    if (b.type === 'context') return b.elements.map((x) => ('text' in x ? x.text : ''));
    return [];
  });

/** Every block checked against Slack's documented limits, one by one. */
function assertWithinLimits(message: { text: string; blocks: KnownBlock[] }): void {
  assert.ok(message.blocks.length <= SLACK_LIMITS.blocksPerMessage, `${message.blocks.length} blocks`);
  let total = 0;
  const count = (v: unknown): number =>
    typeof v === 'string'
      ? v.length
      : Array.isArray(v)
        ? v.reduce((s: number, x) => s + count(x), 0)
        : v && typeof v === 'object'
          ? Object.values(v).reduce((s: number, x) => s + count(x), 0)
          : 0;
  for (const block of message.blocks) {
    total += count(block);
    switch (block.type) {
      case 'header':
        assert.ok(block.text.text.length <= SLACK_LIMITS.headerText, 'header');
        break;
      case 'section':
        assert.ok(
          (block.text?.text.length ?? 0) <= SLACK_LIMITS.sectionText,
          `section ${block.text?.text.length}`,
        );
        assert.ok((block.fields?.length ?? 0) <= SLACK_LIMITS.sectionFields, 'fields');
        for (const f of block.fields ?? [])
          assert.ok(f.text.length <= SLACK_LIMITS.sectionFieldText, 'field');
        break;
      case 'context':
        assert.ok(block.elements.length <= SLACK_LIMITS.contextElements, 'context elements');
        for (const x of block.elements) {
          if ('text' in x) assert.ok(x.text.length <= SLACK_LIMITS.textObject, 'context text');
        }
        break;
      case 'actions':
        assert.ok(block.elements.length <= SLACK_LIMITS.actionsElements, 'actions');
        for (const x of block.elements) {
          if (x.type === 'button') {
            assert.ok(x.text.text.length <= SLACK_LIMITS.buttonText, 'button text');
            assert.ok((x.value ?? '').length <= SLACK_LIMITS.buttonValue, 'button value');
          }
          if (x.type === 'static_select') {
            assert.ok((x.options?.length ?? 0) <= 100, 'options');
            for (const o of x.options ?? []) {
              assert.ok(o.text.text.length <= 75 && o.text.text.length > 0, 'option text');
              assert.ok((o.value ?? '').length <= 150, 'option value');
            }
          }
        }
        break;
      default:
        assert.fail(`unexpected block ${block.type}`);
    }
  }
  assert.ok(total <= MAX_TOTAL_BLOCK_TEXT, `total text ${total}`);
  assert.ok(message.text.length <= 3000);
}

function actionsOf(blocks: KnownBlock[]) {
  const block = blocks.find((b) => b.type === 'actions');
  return block?.type === 'actions' ? block.elements : [];
}

describe('the Slack rendering of the packet', () => {
  test('an ordinary page: every part, buttons carrying the escalation id, reassign options', () => {
    const message = buildContextPacketMessage(buildPacket(), pagingState());
    assertWithinLimits(message);
    const header = message.blocks[0];
    assert.equal(
      header?.type === 'header' ? header.text.text : '',
      ':rotating_light: INC-42 needs a person: automatic fix failed',
    );
    const texts = textsOf(message.blocks).join('\n');
    for (const part of [
      '12% of requests failing',
      '*Why a person is needed*\nrollback did not fix it: error rate still 11%',
      '*What you need to decide*\nThe automatic fix did not hold',
      '1. *The last deploy broke checkout* (confirmed)\n   • recent_deploys warning: v142 9 min ago',
      '2. *A dependency is down* (not confirmed)',
      ':red_circle: *error_rate*: 12% of requests fail',
      ':x: *rollback* (`rollback`): verification failed — rolled back to v141\n   ↳ not verified after 5 checks',
      '`10:07 UTC` ai-sre: Status changed',
      '4 earlier events not shown',
      '*INC-17* HighErrorRate after deploy (payment-service, 2026-02-01; same service, alert, text): resolved by U0ANA after 14 min',
      '<https://grafana.example/d/payments|Dashboard>',
      '<http://prometheus.example:9090/graph?g0.expr=rate&amp;x=%3Cy%3E%7Cz|Source>',
      'Runbook Bad deploy (`bad-deploy` v2, matched by trigger)',
      '*Paged (level 1)*\n<@U0ANA>, Bo &lt;!here&gt; Chen',
      '*Team*\npayments',
      'next level at 10:30 UTC',
    ]) {
      assert.ok(texts.includes(part), `missing: ${part}`);
    }
    const [ack, resolve, reassign] = actionsOf(message.blocks);
    assert.ok(
      ack?.type === 'button' &&
        ack.action_id === PAGE_ACK_ACTION &&
        ack.value === '9' &&
        ack.style === 'primary',
    );
    assert.ok(
      resolve?.type === 'button' && resolve.action_id === PAGE_RESOLVE_ACTION && resolve.value === '9',
    );
    assert.ok(resolve.confirm, 'Resolve asks first');
    assert.ok(reassign?.type === 'static_select' && reassign.action_id === PAGE_REASSIGN_ACTION);
    assert.equal(reassign.placeholder?.text, 'Reassign to…');
    assert.deepEqual(
      reassign.options?.map((o) => [o.text.text, o.value]),
      [
        ['Bo Chen (payments)', '9:U0BO'],
        ['Cy Diaz (dba)', '9:U0CY'],
      ],
    );
    assert.match(message.text, /^INC-42 needs a person \(automatic fix failed\)/);

    const noOptions = buildContextPacketMessage(buildPacket(), pagingState({ reassignTo: [] }));
    assert.deepEqual(
      actionsOf(noOptions.blocks).map((x) => x.type),
      ['button', 'button'],
    );
  });

  test('acknowledged: who and when, no Acknowledge button; resolved and cancelled: no buttons', () => {
    const acked = buildContextPacketMessage(
      buildPacket(),
      pagingState({ status: 'acknowledged', ackedBy: 'U0ANA', ackedAt: new Date('2026-03-02T10:12:00Z') }),
    );
    assertWithinLimits(acked);
    assert.ok(textsOf(acked.blocks).some((t) => t.includes('Acknowledged by <@U0ANA> at 10:12 UTC')));
    const ids = actionsOf(acked.blocks).map((x) => ('action_id' in x ? x.action_id : ''));
    assert.deepEqual(ids, [PAGE_RESOLVE_ACTION, PAGE_REASSIGN_ACTION]);

    for (const status of ['exhausted', 'deferred'] as const) {
      const first = actionsOf(buildContextPacketMessage(buildPacket(), pagingState({ status })).blocks)[0];
      assert.ok(first?.type === 'button' && first.action_id === PAGE_ACK_ACTION, status);
    }
    for (const status of ['resolved', 'cancelled'] as const) {
      const m = buildContextPacketMessage(buildPacket(), pagingState({ status }));
      assertWithinLimits(m);
      assert.equal(
        m.blocks.some((b) => b.type === 'actions'),
        false,
        status,
      );
    }
    const resolved = buildContextPacketMessage(buildPacket(), pagingState({ status: 'resolved' }));
    assert.ok(textsOf(resolved.blocks).some((t) => t.includes('Resolved: paging stopped')));
  });

  test('200 diagnostics of 5,000 characters and a 10,000-character title still fit every limit', () => {
    const long = 'x'.repeat(5_000);
    const packet = buildPacket({
      title: 'T'.repeat(10_000),
      summary: `payment-service: ${'S'.repeat(10_000)}`,
      diagnostics: Array.from({ length: 200 }, (_, i) => ({
        id: `diag_${i}`,
        status: 'critical',
        summary: long,
      })),
      causes: Array.from({ length: 30 }, (_, i) => ({
        description: `cause ${i} ${long}`,
        confidence: 0.5,
        confirmed: false,
        evidence: [long, long, long],
      })),
      actions: Array.from({ length: 50 }, (_, i) => ({
        step: `step_${i}`,
        action: 'restart_service',
        status: 'failed',
        summary: long,
        verification: long,
      })),
      timeline: Array.from({ length: 15 }, () => ({
        at: new Date(),
        actor: 'ai-sre',
        type: 'x.y',
        text: long,
      })),
      similar: Array.from(
        { length: 10 },
        (_, i) => ({ ...buildPacket().similar[0], id: i, title: long }) as ContextPacket['similar'][number],
      ),
      links: Array.from({ length: 10 }, (_, i) => ({
        label: long,
        url: `https://grafana.example/${i}/${'p'.repeat(1_000)}`,
      })),
      why: { ...buildPacket().why, text: long, team: long },
    });
    const state = pagingState({
      paged: Array.from({ length: 30 }, (_, i) => ({ name: long, slackUser: i % 2 ? `U0${i}` : null })),
      reassignTo: Array.from({ length: 150 }, (_, i) => ({
        slackUser: `U${String(i).padStart(8, '0')}`,
        label: long,
      })),
    });
    const message = buildContextPacketMessage(packet, state);
    assertWithinLimits(message);
    const actions = actionsOf(message.blocks);
    assert.deepEqual(
      actions.map((x) => ('action_id' in x ? x.action_id : '')),
      [PAGE_ACK_ACTION, PAGE_RESOLVE_ACTION, PAGE_REASSIGN_ACTION],
      'the buttons survive the trimming',
    );
    const select = actions[2];
    assert.ok(select?.type === 'static_select' && (select.options?.length ?? 0) > 0);
    const texts = textsOf(message.blocks).join('\n');
    assert.match(texts, /\*Diagnostics\*/);
    assert.match(texts, /…and \d+ more/);
    assert.ok(!texts.includes('more blocks not shown'), 'nothing dropped by fitMessage');
  });

  test('alert text cannot inject mentions or links', () => {
    const evil = 'errors <!channel> see <https://evil.example|click> & <@U0BOSS>';
    const packet = buildPacket({
      title: evil,
      summary: `payment-service: ${evil}`,
      service: 'pay<!here>',
      diagnostics: [{ id: 'logs', status: 'critical', summary: evil }],
      timeline: [{ at: new Date(), actor: '<!channel>', type: 'alert.attached', text: evil }],
      causes: [{ description: evil, confidence: null, confirmed: true, evidence: [evil] }],
      similar: [
        { ...buildPacket().similar[0], title: evil, resolution: evil } as ContextPacket['similar'][number],
      ],
      links: [{ label: '<!channel>', url: 'https://ok.example/a>b|<!channel>' }],
      why: { ...buildPacket().why, text: evil },
    });
    const message = buildContextPacketMessage(packet, pagingState());
    assertWithinLimits(message);
    const all = [...textsOf(message.blocks), message.text].join('\n');
    assert.ok(!all.includes('<!channel>'), 'no @channel');
    assert.ok(!all.includes('<!here>'), 'no @here');
    assert.ok(!all.includes('<https://evil'), 'no injected link');
    assert.ok(!all.includes('<@U0BOSS>'), 'no injected mention');
    assert.ok(
      all.includes('errors &lt;!channel&gt; see &lt;https://evil.example|click&gt; &amp; &lt;@U0BOSS&gt;'),
    );
    assert.ok(all.includes('<https://ok.example/a%3Eb%7C%3C!channel%3E|&lt;!channel&gt;>'));
  });
});
