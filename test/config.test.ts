import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.js';

test('defaults fill in everything but the webhook token', () => {
  const config = loadConfig({ WEBHOOK_TOKEN: 'a-long-enough-token' });
  assert.equal(config.DATABASE_URL, 'postgres://postgres@127.0.0.1:5432/ai_sre');
  assert.equal(config.REDIS_URL, 'redis://127.0.0.1:6379');
  assert.equal(config.PORT, 3000);
  assert.equal(config.RUNBOOKS_DIR, './runbooks');
  assert.equal(config.SLACK_API_URL, 'https://slack.com/api/');
  assert.equal(config.MIGRATE_ON_START, true);
});

test('every bad value is reported, one line each, naming the variable', () => {
  assert.throws(
    () =>
      loadConfig({
        PORT: 'eighty',
        DATABASE_URL: 'mysql://localhost/x',
        SLACK_BOT_TOKEN: 'xoxp-user-token',
        MIGRATE_ON_START: 'maybe',
      }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems, [
        'DATABASE_URL: expected a URL (postgres: or postgresql:)',
        'PORT: expected an integer',
        'SLACK_BOT_TOKEN: expected a bot token starting with xoxb-',
        'WEBHOOK_TOKEN: expected the bearer token senders use for /webhooks/* (not set)',
        'MIGRATE_ON_START: expected true or false',
      ]);
      return true;
    },
  );
});

test('Slack token and signing secret go together', () => {
  assert.throws(
    () => loadConfig({ WEBHOOK_TOKEN: 'a-long-enough-token', SLACK_BOT_TOKEN: 'xoxb-1' }),
    /SLACK_SIGNING_SECRET: expected SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET to be set together/,
  );
  const config = loadConfig({
    WEBHOOK_TOKEN: 'a-long-enough-token',
    SLACK_API_URL: 'http://127.0.0.1:9999/api',
  });
  assert.equal(config.SLACK_API_URL, 'http://127.0.0.1:9999/api/', 'base URL gets its trailing slash');
});

test('the CLI stops the boot with the problems and exit code 78', () => {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start'], {
    env: { PATH: process.env.PATH, PORT: '-1' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(res.status, 78, res.stderr);
  assert.match(res.stderr, /invalid configuration/);
  assert.match(res.stderr, /PORT: expected an integer >= 0/);
  assert.match(res.stderr, /WEBHOOK_TOKEN: .*\(not set\)/);
});
