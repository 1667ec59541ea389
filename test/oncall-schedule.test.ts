import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  loadOncall,
  type OncallConfig,
  OncallError,
  parseOncall,
  type Rotation,
} from '../src/escalation/oncall.schema.js';
import { onCallAt, quietHoursAt, shiftAt, teamFor } from '../src/escalation/schedule.js';

const HOUR = 3_600_000;

/** A valid config as plain data; tests change one thing and parse it (JSON is YAML). */
function baseConfig() {
  return {
    teams: {
      payments: {
        members: [
          { id: 'alice', slack: 'U0ALICE01', timezone: 'Europe/Berlin' },
          { id: 'bob', slack: 'U0BOB0001' },
          { id: 'carol', slack: 'W0CAROL01', pagerduty: { user: 'PCAROL1' } },
        ],
        rotations: [
          {
            name: 'primary',
            type: 'daily',
            handoff: '09:00',
            timezone: 'UTC',
            start: '2026-02-01',
            members: ['alice', 'bob'],
          },
        ] as Record<string, unknown>[],
        overrides: [] as Record<string, unknown>[],
        policy: 'default',
      },
      dba: { members: [{ id: 'dan', slack: 'U0DAN0001' }] },
      security: { members: [{ id: 'sam', slack: 'U0SAM0001' }] },
    },
    services: { checkout: 'payments' } as Record<string, string>,
    routing: { security: 'security', database: 'dba', default: 'dba' } as Record<string, string>,
    policies: {
      default: {
        levels: [
          { targets: [{ oncall: 'payments' }], delayMinutes: 5 },
          { targets: [{ user: 'U0LEAD001' }, { usergroup: 'S0SRE0001' }], delayMinutes: 10 },
        ],
      },
    },
  };
}

const parse = (data: unknown) => parseOncall(JSON.stringify(data), 'oncall.yml');

function problemsOf(data: unknown): string[] {
  try {
    parse(data);
  } catch (err) {
    assert.ok(err instanceof OncallError, `an OncallError, got ${String(err)}`);
    assert.equal(err.code, 'oncall_invalid');
    return err.message.split('\n');
  }
  assert.fail('expected the config to be rejected');
}

function rotation(
  r: Partial<Rotation> & Pick<Rotation, 'type' | 'handoff' | 'timezone' | 'start'>,
): Rotation {
  return { name: 'r', members: ['a', 'b', 'c'], ...r };
}

const iso = (d: Date | undefined) => d?.toISOString();

describe('oncall schema', () => {
  test('a valid config parses with defaults', () => {
    const c = parse(baseConfig());
    assert.equal(c.policies.default?.repeat, 0);
    assert.deepEqual(c.teams.dba?.rotations, []);
    assert.equal(c.teams.payments?.members[2]?.pagerduty?.user, 'PCAROL1');
  });

  test('an unknown rotation member is named by path', () => {
    const data = baseConfig();
    data.teams.payments.rotations[0] = { ...data.teams.payments.rotations[0], members: ['alice', 'zed'] };
    const problems = problemsOf(data);
    assert.equal(problems.length, 1);
    assert.match(
      problems[0] ?? '',
      /^oncall\.yml: teams\.payments\.rotations\.0\.members\.1: "zed" is not a member/,
    );
  });

  test('a custom rotation needs a length; daily forbids one', () => {
    const data = baseConfig();
    data.teams.payments.rotations = [
      {
        name: 'c',
        type: 'custom',
        handoff: '09:00',
        timezone: 'UTC',
        start: '2026-02-01',
        members: ['alice'],
      },
      {
        name: 'd',
        type: 'daily',
        length: '12h',
        handoff: '09:00',
        timezone: 'UTC',
        start: '2026-02-01',
        members: ['alice'],
      },
      {
        name: 'e',
        type: 'custom',
        length: 'soon',
        handoff: '09:00',
        timezone: 'UTC',
        start: '2026-02-01',
        members: ['alice'],
      },
    ];
    const problems = problemsOf(data);
    assert.deepEqual(
      problems.map((p) => p.split(': ').slice(0, 2).join(': ')),
      [
        'oncall.yml: teams.payments.rotations.0.length',
        'oncall.yml: teams.payments.rotations.1.length',
        'oncall.yml: teams.payments.rotations.2.length',
      ],
    );
    assert.match(problems[0] ?? '', /required for a custom rotation/);
  });

  test('bad time zones, handoff and start are named by path', () => {
    const data = baseConfig();
    data.teams.payments.rotations[0] = {
      ...data.teams.payments.rotations[0],
      timezone: 'Mars/Olympus',
      handoff: '9am',
      start: '2026-02-30',
    };
    data.teams.payments.members[0] = { id: 'alice', slack: 'alice', timezone: 'Europe/Nowhere' };
    const problems = problemsOf(data).join('\n');
    assert.match(problems, /oncall\.yml: teams\.payments\.members\.0\.slack: expected a Slack user id/);
    assert.match(problems, /oncall\.yml: teams\.payments\.members\.0\.timezone: expected an IANA time zone/);
    assert.match(
      problems,
      /oncall\.yml: teams\.payments\.rotations\.0\.timezone: expected an IANA time zone/,
    );
    assert.match(
      problems,
      /oncall\.yml: teams\.payments\.rotations\.0\.handoff: expected a local time "HH:MM"/,
    );
    assert.match(problems, /oncall\.yml: teams\.payments\.rotations\.0\.start: expected a date/);
  });

  test('an override must end after it starts, and name members and rotations of its team', () => {
    const data = baseConfig();
    data.teams.payments.overrides = [
      { user: 'bob', from: '2026-02-02T10:00:00+01:00', to: '2026-02-02T09:00:00Z' },
      { user: 'bob', from: '2026-02-02T10:00:00Z', to: '2026-02-02 12:00' },
    ];
    let problems = problemsOf(data);
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(problems[0] ?? '', /^oncall\.yml: teams\.payments\.overrides\.0\.to: must be after from$/);
    assert.match(problems[1] ?? '', /^oncall\.yml: teams\.payments\.overrides\.1\.to: expected a date-time/);

    data.teams.payments.overrides = [
      {
        rotation: 'nope',
        user: 'zed',
        replaces: 'dan',
        from: '2026-02-02T10:00:00Z',
        to: '2026-02-02T12:00:00Z',
      },
    ];
    problems = problemsOf(data);
    assert.deepEqual(
      problems.map((p) => p.split(': ').slice(0, 2).join(': ')),
      [
        'oncall.yml: teams.payments.overrides.0.user',
        'oncall.yml: teams.payments.overrides.0.replaces',
        'oncall.yml: teams.payments.overrides.0.rotation',
      ],
    );
  });

  test('services, routing, policies and team.policy must name what exists', () => {
    const data = baseConfig();
    data.services.ledger = 'ledger-team';
    data.routing.default = 'nobody';
    data.teams.payments.policy = 'missing';
    data.policies.default.levels[0] = { targets: [{ oncall: 'ghosts' }], delayMinutes: 5 };
    const problems = problemsOf(data);
    assert.deepEqual(problems.sort(), [
      'oncall.yml: policies.default.levels.0.targets.0.oncall: unknown team "ghosts" (teams: payments, dba, security)',
      'oncall.yml: routing.default: unknown team "nobody" (teams: payments, dba, security)',
      'oncall.yml: services.ledger: unknown team "ledger-team" (teams: payments, dba, security)',
      'oncall.yml: teams.payments.policy: unknown policy "missing"',
    ]);
  });

  test('policy levels need a delay of at least a minute and repeat stays within 0..5', () => {
    const data = baseConfig() as ReturnType<typeof baseConfig> & {
      policies: { default: { repeat?: number } };
    };
    data.policies.default.levels[1] = { targets: [{ usergroup: 'U0NOTAGROUP' }], delayMinutes: 0 };
    data.policies.default.repeat = 6;
    const problems = problemsOf(data).join('\n');
    assert.match(
      problems,
      /policies\.default\.levels\.1\.targets\.0\.usergroup: expected a Slack user group id/,
    );
    assert.match(problems, /policies\.default\.levels\.1\.delayMinutes: /);
    assert.match(problems, /policies\.default\.repeat: /);
  });

  test('YAML syntax errors name the file; a missing file loads as null', async () => {
    assert.throws(
      () => parseOncall('teams: [', 'x.yml'),
      (err: unknown) => {
        return err instanceof OncallError && err.message.startsWith('x.yml: ');
      },
    );
    const dir = await mkdtemp(join(tmpdir(), 'oncall-'));
    try {
      assert.equal(await loadOncall(join(dir, 'absent.yml')), null);
      await writeFile(join(dir, 'oncall.yml'), 'services: { a: ghosts }\n');
      await assert.rejects(
        loadOncall(join(dir, 'oncall.yml')),
        /oncall\.yml: services\.a: unknown team "ghosts"/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('the example config/oncall.yml is valid', async () => {
    const c = await loadOncall(new URL('../config/oncall.yml', import.meta.url).pathname);
    assert.ok(c);
    assert.deepEqual(Object.keys(c.teams), ['payments', 'platform']);
    assert.equal(c.teams.payments?.rotations.length, 2);
    assert.equal(teamFor(c, { service: 'checkout' }), 'payments');
    // the example override: carol covers alice's primary shift on 2026-02-16 (alice's turn: 42 days after start)
    const [primary] = onCallAt(c, 'payments', new Date('2026-02-16T12:00:00Z'));
    assert.equal(primary?.current.member, 'carol');
    assert.equal(primary?.current.override?.replaces, 'alice');
  });
});

describe('shiftAt', () => {
  test('daily 09:00 Europe/Berlin across the 2026-03-29 spring-forward: 23h shift, handoff stays 09:00 local', () => {
    const r = rotation({ type: 'daily', handoff: '09:00', timezone: 'Europe/Berlin', start: '2026-03-27' });
    const before = shiftAt(r, new Date('2026-03-28T07:59:59Z'));
    assert.deepEqual(
      [before?.member, iso(before?.start), iso(before?.end)],
      ['a', '2026-03-27T08:00:00.000Z', '2026-03-28T08:00:00.000Z'],
    );
    const across = shiftAt(r, new Date('2026-03-28T12:00:00Z'));
    assert.deepEqual(
      [across?.member, iso(across?.start), iso(across?.end)],
      ['b', '2026-03-28T08:00:00.000Z', '2026-03-29T07:00:00.000Z'],
    );
    assert.equal((across?.end.getTime() ?? 0) - (across?.start.getTime() ?? 0), 23 * HOUR);
    // 08:59 CEST is still b's shift; 09:00 CEST = 07:00Z is c's
    assert.equal(shiftAt(r, new Date('2026-03-29T06:59:59Z'))?.member, 'b');
    const after = shiftAt(r, new Date('2026-03-29T07:00:00Z'));
    assert.deepEqual(
      [after?.member, iso(after?.start), iso(after?.end)],
      ['c', '2026-03-29T07:00:00.000Z', '2026-03-30T07:00:00.000Z'],
    );
    assert.equal(shiftAt(r, new Date('2026-03-30T07:00:00Z'))?.member, 'a');
  });

  test('daily across the autumn change is 25h long', () => {
    const r = rotation({ type: 'daily', handoff: '09:00', timezone: 'Europe/Berlin', start: '2026-10-01' });
    const s = shiftAt(r, new Date('2026-10-25T03:00:00Z'));
    assert.deepEqual([iso(s?.start), iso(s?.end)], ['2026-10-24T07:00:00.000Z', '2026-10-25T08:00:00.000Z']);
  });

  test('a handoff in the skipped hour moves past the gap', () => {
    const r = rotation({ type: 'daily', handoff: '02:30', timezone: 'Europe/Berlin', start: '2026-03-28' });
    const s = shiftAt(r, new Date('2026-03-29T12:00:00Z'));
    // 02:30 does not exist on 2026-03-29 in Berlin; the shift starts at 03:30 CEST = 01:30Z
    assert.deepEqual([s?.member, iso(s?.start)], ['b', '2026-03-29T01:30:00.000Z']);
  });

  test('before start there is no shift', () => {
    const r = rotation({ type: 'daily', handoff: '09:00', timezone: 'Europe/Berlin', start: '2026-03-27' });
    assert.equal(shiftAt(r, new Date('2026-03-27T07:59:59Z')), null);
    assert.equal(shiftAt(r, new Date('2026-03-27T08:00:00Z'))?.member, 'a');
  });

  test('weekly hands off on handoffDay at the local handoff time', () => {
    // 2026-01-07 is a Wednesday; 10:00 CET = 09:00Z
    const r = rotation({
      type: 'weekly',
      handoffDay: 'wednesday',
      handoff: '10:00',
      timezone: 'Europe/Berlin',
      start: '2026-01-07',
      members: ['x', 'y'],
    });
    const first = shiftAt(r, new Date('2026-01-14T08:59:59Z'));
    assert.deepEqual(
      [first?.member, iso(first?.start), iso(first?.end)],
      ['x', '2026-01-07T09:00:00.000Z', '2026-01-14T09:00:00.000Z'],
    );
    assert.equal(shiftAt(r, new Date('2026-01-14T09:00:00Z'))?.member, 'y');
    const tuesday = shiftAt(r, new Date('2026-01-20T20:00:00Z'));
    assert.deepEqual([tuesday?.member, iso(tuesday?.end)], ['y', '2026-01-21T09:00:00.000Z']);
    assert.equal(shiftAt(r, new Date('2026-01-21T09:00:00Z'))?.member, 'x');
    // across spring-forward the handoff stays 10:00 local: 08:00Z from April on
    const april = shiftAt(r, new Date('2026-04-02T12:00:00Z'));
    assert.equal(iso(april?.start), '2026-04-01T08:00:00.000Z');
  });

  test('weekly starting on another weekday: the first shift runs to the first handoffDay', () => {
    const r = rotation({
      type: 'weekly',
      handoff: '10:00',
      timezone: 'Europe/Berlin',
      start: '2026-01-07', // Wednesday; handoffDay defaults to monday
      members: ['x', 'y'],
    });
    const first = shiftAt(r, new Date('2026-01-10T00:00:00Z'));
    assert.deepEqual(
      [first?.member, iso(first?.start), iso(first?.end)],
      ['x', '2026-01-07T09:00:00.000Z', '2026-01-12T09:00:00.000Z'],
    );
    const second = shiftAt(r, new Date('2026-01-12T09:00:00Z'));
    assert.deepEqual([second?.member, iso(second?.end)], ['y', '2026-01-19T09:00:00.000Z']);
    assert.equal(shiftAt(r, new Date('2026-01-19T09:00:00Z'))?.member, 'x');
  });

  test('custom 12h counts elapsed time from the first start, DST or not', () => {
    const r = rotation({
      type: 'custom',
      length: '12h',
      handoff: '09:00',
      timezone: 'Europe/Berlin',
      start: '2026-03-28',
      members: ['d', 'e'],
    });
    const s1 = shiftAt(r, new Date('2026-03-28T19:59:59Z'));
    assert.deepEqual(
      [s1?.member, iso(s1?.start), iso(s1?.end)],
      ['d', '2026-03-28T08:00:00.000Z', '2026-03-28T20:00:00.000Z'],
    );
    assert.equal(shiftAt(r, new Date('2026-03-28T20:00:00Z'))?.member, 'e');
    const s3 = shiftAt(r, new Date('2026-03-29T09:00:00Z'));
    assert.deepEqual(
      [s3?.member, iso(s3?.start), iso(s3?.end)],
      ['d', '2026-03-29T08:00:00.000Z', '2026-03-29T20:00:00.000Z'],
    );
  });
});

describe('onCallAt', () => {
  function withOverrides(overrides: Record<string, unknown>[]): OncallConfig {
    const data = baseConfig();
    data.teams.payments.overrides = overrides;
    return parse(data);
  }

  test('without overrides: the scheduled member, and the next one at the handoff', () => {
    const c = withOverrides([]);
    assert.deepEqual(onCallAt(c, 'payments', new Date('2026-02-01T13:00:00Z')), [
      {
        rotation: 'primary',
        current: { member: 'alice', slack: 'U0ALICE01', until: new Date('2026-02-02T09:00:00Z') },
        next: { member: 'bob', slack: 'U0BOB0001', from: new Date('2026-02-02T09:00:00Z') },
      },
    ]);
    assert.deepEqual(onCallAt(c, 'payments', new Date('2026-01-31T13:00:00Z')), []);
    assert.deepEqual(onCallAt(c, 'dba', new Date('2026-02-01T13:00:00Z')), []);
    assert.deepEqual(onCallAt(c, 'nobody', new Date('2026-02-01T13:00:00Z')), []);
  });

  test('an override replacing someone mid-shift', () => {
    const c = withOverrides([
      // bob is not on shift on 2026-02-01, so this one never applies
      { user: 'carol', replaces: 'bob', from: '2026-02-01T10:00:00Z', to: '2026-02-01T22:00:00Z' },
      {
        rotation: 'primary',
        user: 'carol',
        replaces: 'alice',
        from: '2026-02-01T15:00:00+01:00',
        to: '2026-02-01T20:00:00Z',
      },
    ]);
    const [before] = onCallAt(c, 'payments', new Date('2026-02-01T13:00:00Z'));
    assert.deepEqual(before?.current, {
      member: 'alice',
      slack: 'U0ALICE01',
      until: new Date('2026-02-01T14:00:00Z'),
    });
    assert.deepEqual(before?.next, {
      member: 'carol',
      slack: 'W0CAROL01',
      from: new Date('2026-02-01T14:00:00Z'),
    });

    const [during] = onCallAt(c, 'payments', new Date('2026-02-01T16:00:00Z'));
    assert.deepEqual(during?.current, {
      member: 'carol',
      slack: 'W0CAROL01',
      until: new Date('2026-02-01T20:00:00Z'),
      override: {
        replaces: 'alice',
        from: new Date('2026-02-01T14:00:00Z'),
        to: new Date('2026-02-01T20:00:00Z'),
      },
    });
    assert.deepEqual(during?.next, {
      member: 'alice',
      slack: 'U0ALICE01',
      from: new Date('2026-02-01T20:00:00Z'),
    });

    const [afterwards] = onCallAt(c, 'payments', new Date('2026-02-01T21:00:00Z'));
    assert.equal(afterwards?.current.member, 'alice');
    assert.equal(afterwards?.current.override, undefined);
    assert.deepEqual(afterwards?.next, {
      member: 'bob',
      slack: 'U0BOB0001',
      from: new Date('2026-02-02T09:00:00Z'),
    });
  });

  test('next is override-aware: an override starting at the handoff takes the next shift', () => {
    const c = withOverrides([{ user: 'carol', from: '2026-02-02T09:00:00Z', to: '2026-02-03T09:00:00Z' }]);
    const [now] = onCallAt(c, 'payments', new Date('2026-02-01T13:00:00Z'));
    assert.deepEqual(now?.next, {
      member: 'carol',
      slack: 'W0CAROL01',
      from: new Date('2026-02-02T09:00:00Z'),
    });
    // carol covers bob's whole shift, then alice is scheduled again
    const [covered] = onCallAt(c, 'payments', new Date('2026-02-02T12:00:00Z'));
    assert.deepEqual(
      [covered?.current.member, covered?.current.override?.replaces, iso(covered?.current.until)],
      ['carol', 'bob', '2026-02-03T09:00:00.000Z'],
    );
    assert.equal(covered?.next.member, 'alice');
  });

  test('when the override user is also next on the schedule, until runs to when they really hand over', () => {
    const c = withOverrides([{ user: 'bob', from: '2026-02-01T20:00:00Z', to: '2026-02-02T09:00:00Z' }]);
    const [now] = onCallAt(c, 'payments', new Date('2026-02-01T21:00:00Z'));
    assert.deepEqual(
      [now?.current.member, iso(now?.current.until), now?.next.member, iso(now?.next.from)],
      ['bob', '2026-02-03T09:00:00.000Z', 'alice', '2026-02-03T09:00:00.000Z'],
    );
  });
});

describe('teamFor', () => {
  const c = parse(baseConfig());

  test('reason first, then the owning team, then the default', () => {
    assert.equal(teamFor(c, { service: 'checkout', reason: 'security' }), 'security');
    assert.equal(teamFor(c, { service: 'checkout', reason: 'database' }), 'dba');
    assert.equal(teamFor(c, { service: 'checkout', reason: 'latency' }), 'payments');
    assert.equal(teamFor(c, { service: 'checkout' }), 'payments');
    assert.equal(teamFor(c, { service: 'unknown' }), 'dba');
  });

  test('a reason without a route falls back to the service; nothing matching is null', () => {
    const data = baseConfig();
    data.routing = {};
    const bare = parse(data);
    assert.equal(teamFor(bare, { service: 'checkout', reason: 'security' }), 'payments');
    assert.equal(teamFor(bare, { service: 'unknown', reason: 'database' }), null);
    assert.equal(teamFor(bare, {}), null);
  });
});

describe('quiet hours', () => {
  const quiet = (q: Record<string, unknown>) => {
    const config = parse({ ...baseConfig(), quietHours: q });
    assert.ok(config.quietHours);
    return config.quietHours;
  };

  test('a span across midnight is quiet until the next local morning, P3/P4 by default', () => {
    const q = quiet({ from: '22:00', to: '08:00', timezone: 'Europe/Berlin' });
    assert.deepEqual(q.severities, ['warning', 'info']);
    // 23:30 Berlin (CET, UTC+1) on 10 Feb → quiet until 08:00 Berlin on 11 Feb = 07:00Z
    assert.deepEqual(quietHoursAt(q, new Date('2026-02-10T22:30:00Z')), {
      quiet: true,
      endsAt: new Date('2026-02-11T07:00:00Z'),
    });
    // 03:00 Berlin: still quiet, ends the same morning
    assert.deepEqual(quietHoursAt(q, new Date('2026-02-11T02:00:00Z')), {
      quiet: true,
      endsAt: new Date('2026-02-11T07:00:00Z'),
    });
    // 12:00 Berlin: not quiet
    assert.equal(quietHoursAt(q, new Date('2026-02-11T11:00:00Z')).quiet, false);
    // the edges: 22:00 is quiet, 08:00 is not
    assert.equal(quietHoursAt(q, new Date('2026-02-11T21:00:00Z')).quiet, true);
    assert.equal(quietHoursAt(q, new Date('2026-02-11T07:00:00Z')).quiet, false);
  });

  test('the night clocks go forward ends at local 08:00 summer time', () => {
    const q = quiet({ from: '22:00', to: '08:00', timezone: 'Europe/Berlin', severities: ['P4'] });
    assert.deepEqual(q.severities, ['info']);
    // 29 March 2026: 02:00 CET → 03:00 CEST; 08:00 CEST = 06:00Z
    assert.deepEqual(quietHoursAt(q, new Date('2026-03-28T22:30:00Z')), {
      quiet: true,
      endsAt: new Date('2026-03-29T06:00:00Z'),
    });
  });

  test('a daytime span, and bad quiet hours are named by path', () => {
    const q = quiet({ from: '12:00', to: '14:00', timezone: 'UTC', severities: ['warning', 'P3'] });
    assert.deepEqual(q.severities, ['warning'], 'aliases of one severity collapse');
    assert.equal(quietHoursAt(q, new Date('2026-02-11T13:00:00Z')).quiet, true);
    assert.equal(quietHoursAt(q, new Date('2026-02-11T15:00:00Z')).quiet, false);
    assert.throws(
      () => parse({ ...baseConfig(), quietHours: { from: '25:00', to: '08:00', timezone: 'UTC' } }),
      /oncall\.yml: quietHours\.from: expected a local time/,
    );
    assert.throws(
      () =>
        parse({
          ...baseConfig(),
          quietHours: { from: '22:00', to: '08:00', timezone: 'UTC', severities: ['P5'] },
        }),
      /quietHours\.severities\.0: expected P1-P4/,
    );
    assert.throws(
      () => parse({ ...baseConfig(), quietHours: { from: '22:00', to: '22:00', timezone: 'UTC' } }),
      /quietHours\.to: must differ/,
    );
  });

  test('a policy target naming a rotation the team does not have is an error naming the path', () => {
    const data = baseConfig();
    data.policies.default.levels[0] = {
      targets: [{ oncall: 'payments', rotation: 'nights' } as never],
      delayMinutes: 5,
    };
    assert.throws(
      () => parse(data),
      /policies\.default\.levels\.0\.targets\.0\.rotation: team payments has no rotation "nights" \(rotations: primary\)/,
    );
  });
});
