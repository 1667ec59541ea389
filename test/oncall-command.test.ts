import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sendSlashCommand } from '../src/devtools/slack-standin/sign.js';
import { parseOncall } from '../src/escalation/oncall.schema.js';
import { onCallAt } from '../src/escalation/schedule.js';
import { SIGNING_SECRET, startTestApp, type TestApp } from './helpers/test-app.js';

describe('/incident oncall: who is on call now and next, from ONCALL_FILE', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ ONCALL_FILE: 'config/oncall.yml' });
  });
  after(async () => {
    await t?.close();
  });
  const slash = async (text: string) => {
    const res = await sendSlashCommand(t.baseUrl, SIGNING_SECRET, {
      command: '/incident',
      text,
      user_id: 'U0ALICE',
      channel_id: 'C0OPS',
    });
    assert.equal(res.status, 200);
    return JSON.parse(res.body) as { text: string; response_type: string };
  };

  test('one team: each rotation with the person on call, until when, and who is next', async () => {
    const answer = await slash('oncall payments');
    assert.equal(answer.response_type, 'ephemeral');
    assert.match(answer.text, /^\*payments\*/);
    const { readFile } = await import('node:fs/promises');
    const config = parseOncall(await readFile('config/oncall.yml', 'utf8'), 'config/oncall.yml');
    const now = onCallAt(config, 'payments', new Date());
    assert.equal(now.length, 2, 'primary and secondary');
    for (const shift of now) {
      assert.match(
        answer.text,
        new RegExp(`${shift.rotation}: <@${shift.current.slack}>.* until <!date\\^\\d+`),
      );
      assert.match(answer.text, new RegExp(`next <@${shift.next.slack}> from <!date\\^\\d+`));
    }
    assert.doesNotMatch(answer.text, /\*platform\*/);
  });

  test('every team without a name; an unknown team is named with the known ones; bad input says what is wrong', async () => {
    const all = await slash('oncall');
    assert.match(all.text, /\*payments\*/);
    assert.match(all.text, /\*platform\*/);
    const unknown = await slash('oncall nope');
    assert.match(unknown.text, /No team `nope`; teams: `payments`/);
    const bad = await slash('oncall a b');
    assert.match(bad.text, /`oncall` takes at most one team name/);
  });
});

test('a team name that is a built-in object key is an unknown team, not a crash', async () => {
  const { describeOnCall } = await import('../src/slack/oncall-view.js');
  const { parseOncall } = await import('../src/escalation/oncall.schema.js');
  const config = parseOncall(
    'teams:\n  payments:\n    members: [{ id: alice, slack: U0ALICE01 }]\n',
    'oncall.yml',
  );
  for (const name of ['hasOwnProperty', 'constructor', 'toString', '__proto__']) {
    assert.match(describeOnCall(config, name, new Date()), /^No team `/, name);
  }
});
