import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI (`ai-sre …` through tsx) with a clean environment apart from PATH. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', ...args],
      { env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'silent', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
      },
    );
  });
}

describe('ai-sre runbooks validate / dry-run', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ai-sre-cli-'));
    await writeFile(
      join(dir, 'broken.yml'),
      [
        'id: broken',
        'name: Broken',
        'diagnostics:',
        '  - id: disk',
        '    type: shell_command',
        '    config:',
        '      argv: [rm, -rf, "/"]',
        '    interpret:',
        '      critical: value >=',
        'decision:',
        '  - id: full',
        '    description: Disk full',
        '    likelihood: 1',
        "    when: diagnostics.disk.status == 'critical'",
        '    remediate: [clean_up]',
      ].join('\n'),
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('the shipped runbooks are valid (exit 0, each named)', async () => {
    const run = await cli(['runbooks', 'validate']);
    assert.equal(run.code, 0, run.stderr);
    for (const id of [
      'default-triage',
      'db-connection-pool-exhausted',
      'disk-full',
      'bad-deploy',
      'high-cpu',
      'memory-leak',
    ]) {
      assert.match(run.stdout, new RegExp(id));
    }
  });

  test('an invalid runbook: every problem with file, line and field path; exit 1', async () => {
    const run = await cli(['runbooks', 'validate', join(dir, 'broken.yml')]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /broken\.yml:7:\d+ diagnostics\[0\]\.config\.argv\[0\]: .*rm/);
    assert.match(run.stderr, /broken\.yml:9:\d+ diagnostics\[0\]\.interpret\.critical: /);
    assert.match(
      run.stderr,
      /broken\.yml:15:\d+ decision\[0\]\.remediate\[0\]: no remediation has id "clean_up"/,
    );
    assert.match(run.stderr, /3 problems in 1 file/);
  });

  test('dry-run renders the diagnostics for an alert and, given results, prints the decision and plan', async () => {
    const run = await cli([
      'runbooks',
      'dry-run',
      'db-connection-pool-exhausted',
      '--alert',
      'test/fixtures/runbooks/db-connection-pool-exhausted-alert.json',
      '--diagnostics',
      'test/fixtures/runbooks/db-connection-pool-exhausted-results.json',
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /sha256 [0-9a-f]{64}/);
    assert.match(
      run.stdout,
      /hikaricp_connections_active\{service=\\"payment-service\\"\}/,
      'the label rendered into PromQL',
    );
    assert.match(run.stdout, /\[1\] idle_sessions_hold_slots: confirmed/);
    assert.match(run.stdout, /Decision: .*→ terminate sessions idle in a transaction/);
    assert.match(
      run.stdout,
      /Plan \(gated by the safety policy\):\n {2}1\. Terminate sessions idle in a transaction.*\[terminate_connections\] guarded · supervised → waits for approval/,
      'the shipped policy is supervised',
    );
    assert.match(run.stdout, /target postgres:main\n.*"state":"idle in transaction"/);
  });

  test('dry-run without results prints the decision tree; an unknown runbook is an error', async () => {
    const tree = await cli([
      'runbooks',
      'dry-run',
      'disk-full',
      '--alert',
      'test/fixtures/runbooks/disk-full-alert.json',
    ]);
    assert.equal(tree.code, 0, tree.stderr);
    assert.match(tree.stdout, /Decision tree \(first confirmed wins; none → escalate\)/);
    const unknown = await cli([
      'runbooks',
      'dry-run',
      'nope',
      '--alert',
      'test/fixtures/runbooks/disk-full-alert.json',
    ]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no valid runbook "nope"/);
    const usage = await cli(['runbooks', 'frobnicate']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /unknown runbooks command "frobnicate"/);
  });
});
