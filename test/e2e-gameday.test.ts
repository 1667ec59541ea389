import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runDemo } from '../src/devtools/demo/demo.js';
import type { DemoEnvironment } from '../src/devtools/demo/environment.js';
import { EXPECTATIONS, runGameday, SCENARIOS } from '../src/devtools/demo/gameday.js';
import { startTestEnvironment, testEnvironmentOptions } from './helpers/demo-env.js';

/**
 * The game day as CI runs it: every sandbox failure in turn and two pairs at once, a simulated approver, and the
 * issue's targets: each known pattern diagnosed right and resolved (verified) within 60 s of injection, the unknown
 * one escalated without any action, zero unsafe actions.
 */
describe('game day: every failure pattern against the real bot', { timeout: 2_700_000 }, () => {
  let env: DemoEnvironment;

  before(
    async () => {
      env = await startTestEnvironment();
    },
    { timeout: 900_000 },
  );

  after(
    async () => {
      await env?.close();
    },
    { timeout: 120_000 },
  );

  it('resolves every known pattern in time, escalates the unknown one, acts unsafely never', {
    timeout: 1_500_000,
  }, async (t) => {
    const lines: string[] = [];
    const { scenarios, passed } = await runGameday({ environment: env, out: (l) => lines.push(l) });
    const report = lines.join('\n');
    // the scorecard goes into the test report (CI's log) whether or not the targets are met
    for (const line of report.slice(report.indexOf('Game day scorecard')).split('\n')) t.diagnostic(line);
    assert.equal(scenarios.length, SCENARIOS.length);
    assert.deepEqual(
      scenarios.flatMap((s) => s.unsafe),
      [],
      report,
    );
    for (const s of scenarios) {
      for (const p of s.scores) {
        assert.ok(p.passed, `${s.patterns.join(' + ')} / ${p.expectation.pattern}: ${p.why}\n${report}`);
        assert.equal(p.incident?.hypothesis ?? null, EXPECTATIONS[p.expectation.pattern].hypothesis);
      }
    }
    const unknown = scenarios
      .flatMap((s) => s.scores)
      .find((p) => p.expectation.pattern === 'unknown-failure');
    assert.equal(unknown?.incident?.steps.length, 0, 'no action on an unknown cause');
    // the platform team's own policy pages its on-call first, by a DM in the stand-in
    assert.match(unknown?.escalatedTo ?? '', /^platform: paged carol via slack \(level 1\)/);
    const dm = env.standin.callsTo('chat.postMessage').find((c) => c.args.channel === 'D0003');
    assert.ok(dm, 'carol got the page as a DM');
    assert.match(JSON.stringify(dm.args.blocks), /page_acknowledge/);
    assert.ok(passed, report);
    // guarded steps were approved by the simulated approver through the Bolt receiver, recorded in Postgres
    const { rows } = await env.db.query<{ decided_by: string; status: string }>(
      'SELECT decided_by, status FROM approval_requests',
    );
    assert.ok(rows.length >= 3, `approvals: ${JSON.stringify(rows)}`);
    assert.ok(
      rows.every((r) => r.status === 'approved' && r.decided_by === 'U0002'),
      JSON.stringify(rows),
    );
  });
});

describe('npm run demo, non-interactive', { timeout: 600_000 }, () => {
  it('walks a bad deploy through to a resolved incident and prints its timeline', {
    timeout: 600_000,
  }, async () => {
    const lines: string[] = [];
    const resolved = await runDemo({
      botPort: 0,
      standinPort: 0,
      sandboxBasePort: 0,
      approve: 'auto',
      exitWhenDone: true,
      warmUpMs: 12_000,
      out: (l) => lines.push(l),
      environment: testEnvironmentOptions(),
    });
    const text = lines.join('\n');
    assert.ok(resolved, text);
    assert.match(text, /Slack \(stand-in\): +http:\/\/127\.0\.0\.1:\d+\//);
    assert.match(text, /approval/i);
    assert.match(text, /Incident #\d+ timeline/);
    assert.match(text, /rolled back|rollback/i);
    assert.match(text, /Postmortem draft, written from that timeline/);
    assert.match(text, /│ # INC-\d+: /);
  });
});
