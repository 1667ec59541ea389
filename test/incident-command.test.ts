import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canTransition, TRANSITIONS } from '../src/incidents/lifecycle.js';
import { parseIncidentCommand, parseMention } from '../src/slack/commands/incident-command.js';

test('/incident trigger keeps the summary as typed and reads an optional severity', () => {
  assert.deepEqual(parseIncidentCommand('trigger payment-service sev=critical Pool exhausted\nsince 03:00'), {
    kind: 'trigger',
    service: 'payment-service',
    severity: 'critical',
    summary: 'Pool exhausted\nsince 03:00',
  });
  assert.deepEqual(parseIncidentCommand('  TRIGGER api-gateway  5xx   spike '), {
    kind: 'trigger',
    service: 'api-gateway',
    severity: 'high',
    summary: '5xx   spike',
  });
});

test('/incident subcommands and their errors', () => {
  assert.deepEqual(parseIncidentCommand(''), { kind: 'help' });
  assert.deepEqual(parseIncidentCommand('list'), { kind: 'list' });
  assert.deepEqual(parseIncidentCommand('show INC-12'), { kind: 'show', id: 12 });
  assert.deepEqual(parseIncidentCommand('show #7'), { kind: 'show', id: 7 });
  assert.equal(parseIncidentCommand('list all').kind, 'invalid');
  assert.equal(parseIncidentCommand('show 0').kind, 'invalid');
  assert.equal(parseIncidentCommand('trigger svc').kind, 'invalid');
  assert.equal(parseIncidentCommand('trigger svc sev=critical').kind, 'invalid');
  assert.deepEqual(parseIncidentCommand('reboot prod'), {
    kind: 'invalid',
    problem: 'unknown subcommand `reboot`',
  });
});

test('mentions: status <service> and help', () => {
  assert.deepEqual(parseMention('<@U0BOT> status payment-service'), {
    kind: 'status',
    service: 'payment-service',
  });
  assert.deepEqual(parseMention('<@U0BOT|ai-sre>   help'), { kind: 'help' });
  assert.equal(parseMention('<@U0BOT> status').kind, 'invalid');
  assert.equal(parseMention('<@U0BOT> status a b').kind, 'invalid');
});

test('the state machine: resolved is final, every other status can resolve or escalate', () => {
  assert.deepEqual(TRANSITIONS.resolved, []);
  for (const from of ['open', 'investigating', 'mitigating', 'awaiting_approval'] as const) {
    assert.ok(canTransition(from, 'resolved'));
    assert.ok(canTransition(from, 'escalated'));
  }
  assert.ok(!canTransition('investigating', 'open'));
  assert.ok(!canTransition('resolved', 'investigating'));
});

describe('/incident run parsing', () => {
  test('a runbook id alone, with a service, or with an incident id', () => {
    assert.deepEqual(parseIncidentCommand('run disk-full'), { kind: 'run', runbookId: 'disk-full' });
    assert.deepEqual(parseIncidentCommand('run disk-full payment-service'), {
      kind: 'run',
      runbookId: 'disk-full',
      target: 'payment-service',
    });
    assert.deepEqual(parseIncidentCommand('run disk-full INC-42'), {
      kind: 'run',
      runbookId: 'disk-full',
      target: 'INC-42',
    });
  });

  test('bad input says what is wrong', () => {
    assert.match((parseIncidentCommand('run') as { problem: string }).problem, /takes a runbook id/);
    assert.match((parseIncidentCommand('run Disk_Full') as { problem: string }).problem, /not a runbook id/);
    assert.match(
      (parseIncidentCommand('run disk-full a b') as { problem: string }).problem,
      /takes a runbook id/,
    );
    assert.match((parseIncidentCommand('run disk-full $(x)') as { problem: string }).problem, /service/);
  });
});

describe('/incident maintenance parsing', () => {
  test('a service and a duration (or off), with an optional reason', () => {
    assert.deepEqual(parseIncidentCommand('maintenance payment-service 2h DB upgrade'), {
      kind: 'maintenance',
      service: 'payment-service',
      durationMs: 7_200_000,
      reason: 'DB upgrade',
    });
    assert.deepEqual(parseIncidentCommand('maintenance payment-service off'), {
      kind: 'maintenance',
      service: 'payment-service',
      durationMs: 0,
      reason: '',
    });
  });

  test('bad input says what is wrong', () => {
    assert.match(
      (parseIncidentCommand('maintenance payment-service') as { problem: string }).problem,
      /takes a service and a duration/,
    );
    assert.match(
      (parseIncidentCommand('maintenance payment-service soon') as { problem: string }).problem,
      /duration `soon`/,
    );
    assert.match(
      (parseIncidentCommand('maintenance payment-service 30d') as { problem: string }).problem,
      /at most 7d/,
    );
  });
});

describe('/incident page parsing', () => {
  test('an incident id, optionally a team and a note', () => {
    assert.deepEqual(parseIncidentCommand('page 42'), { kind: 'page', id: 42, team: null, note: '' });
    assert.deepEqual(parseIncidentCommand('page INC-7 team=dba the disk is full'), {
      kind: 'page',
      id: 7,
      team: 'dba',
      note: 'the disk is full',
    });
    assert.deepEqual(parseIncidentCommand('page #3 team is asleep'), {
      kind: 'page',
      id: 3,
      team: null,
      note: 'team is asleep',
    });
  });

  test('bad input says what is wrong', () => {
    assert.match((parseIncidentCommand('page') as { problem: string }).problem, /takes an incident id/);
    assert.match(
      (parseIncidentCommand('page payments') as { problem: string }).problem,
      /not an incident id/,
    );
    assert.match(
      (parseIncidentCommand('page 4 team=<!channel>') as { problem: string }).problem,
      /not a team name/,
    );
    assert.match(
      (parseIncidentCommand(`page 4 ${'x'.repeat(501)}`) as { problem: string }).problem,
      /longer than 500/,
    );
  });
});

describe('/incident postmortem, stats, suggestions and @ai-sre similar parsing', () => {
  test('valid forms', () => {
    assert.deepEqual(parseIncidentCommand('postmortem INC-9'), { kind: 'postmortem', id: 9 });
    assert.deepEqual(parseIncidentCommand('stats'), { kind: 'stats', days: 7, service: null });
    assert.deepEqual(parseIncidentCommand('stats 30d checkout'), {
      kind: 'stats',
      days: 30,
      service: 'checkout',
    });
    assert.deepEqual(parseIncidentCommand('stats checkout 2w'), {
      kind: 'stats',
      days: 14,
      service: 'checkout',
    });
    assert.deepEqual(parseIncidentCommand('suggestions'), { kind: 'suggestions', days: 30 });
    assert.deepEqual(parseIncidentCommand('suggestions 90d'), { kind: 'suggestions', days: 90 });
    assert.deepEqual(parseMention('<@U0BOT> similar INC-4'), { kind: 'similar', id: 4 });
  });

  test('bad input says what is wrong', () => {
    const problem = (text: string) => (parseIncidentCommand(text) as { problem?: string }).problem ?? '';
    assert.match(problem('postmortem'), /takes one incident id/);
    assert.match(problem('postmortem checkout'), /not an incident id/);
    assert.match(problem('stats 400d'), /expected 1d to 366d/);
    assert.match(problem('stats a b'), /neither/);
    assert.match(problem('stats <!channel>'), /neither/);
    assert.match(problem('suggestions soon'), /not a period/);
    assert.match(problem('suggestions 7d 30d'), /at most a period/);
    assert.match((parseMention('<@U0BOT> similar') as { problem: string }).problem, /takes one incident id/);
  });
});
