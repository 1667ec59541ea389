import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CollectContext } from '../src/diagnostics/collector.js';
import {
  type ShellCommandConfig,
  shellCommandCollector,
} from '../src/diagnostics/collectors/shell-command.js';
import { Targets } from '../src/diagnostics/targets.js';
import { TemplateError, type TemplateVars } from '../src/diagnostics/templating.js';

const PATH = '/usr/local/bin:/usr/bin:/bin';
/** `${HOME}` spelled out (not a template placeholder): shell syntax that must reach the command unexpanded */
const SHELL_VARIABLE = '$' + '{HOME}';

function buildVars(labels: Record<string, string> = {}): TemplateVars {
  return { labels, annotations: {}, incident: { id: '1', service: 'payment-service' }, service: {} };
}

function buildTargets(allow: string[], maxOutputBytes = 65_536): Targets {
  return Targets.parse({ shell: { allow, maxOutputBytes, path: PATH } });
}

/** A context whose signal aborts after `timeoutMs`, as the runner's would. */
function buildContext(targets: Targets, timeoutMs = 5_000): CollectContext {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), timeoutMs).unref();
  return {
    signal: controller.signal,
    timeoutMs,
    targets,
    db: { query: () => Promise.reject(new Error('unused')) },
    incident: { id: 1, service: 'payment-service', openedAt: new Date() },
    now: new Date(),
  };
}

const ALLOWED = ['echo', 'printf', 'df', 'sleep', 'ls', 'seq', 'yes', 'printenv'];
const TARGETS = buildTargets(ALLOWED);

function config(argv: string[], extra: Partial<ShellCommandConfig> = {}): ShellCommandConfig {
  return { argv, parse: 'text', ...extra };
}

function run(
  argv: string[],
  opts: { extra?: Partial<ShellCommandConfig>; targets?: Targets; timeoutMs?: number } = {},
) {
  return shellCommandCollector.collect(
    config(argv, opts.extra),
    buildContext(opts.targets ?? TARGETS, opts.timeoutMs),
  );
}

function check(argv: string[], targets = TARGETS) {
  return shellCommandCollector.check?.(config(argv), targets) ?? [];
}

describe('shell_command', () => {
  let dir: string;

  before(async () => {
    for (const binary of ALLOWED) {
      assert.ok(
        PATH.split(':').some((d) => existsSync(join(d, binary))),
        `${binary} must exist on this machine for these tests`,
      );
    }
    dir = await mkdtemp(join(tmpdir(), 'ai-sre-shell-'));
    await writeFile(join(dir, 'canary.txt'), 'still here');
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('runs an allowlisted binary without a shell; the first line of stdout is the value', async () => {
    const out = await run(['echo', 'hello', 'world']);
    assert.equal(out.value, 'hello world');
    assert.equal(out.summary, 'echo exited 0: hello world');
    const { durationMs, ...rest } = out.result;
    assert.deepEqual(rest, {
      exitCode: 0,
      signal: null,
      stdout: 'hello world\n',
      stderr: '',
      truncated: false,
    });
    assert.equal(typeof durationMs, 'number');
  });

  test('a label value full of shell syntax arrives as one literal argument and runs nothing', async () => {
    const hostile = [
      '$(rm -rf /)',
      `$(rm -rf ${dir}); touch ${join(dir, 'pwned')} && echo \`id\` > ${join(dir, 'out')} | cat ${SHELL_VARIABLE}`,
    ];
    for (const value of hostile) {
      const rendered = shellCommandCollector.render(
        config(['printf', '%s', '{{labels.x}}']),
        buildVars({ x: value }),
      );
      assert.deepEqual(rendered.argv, ['printf', '%s', value]);
      const out = await run(rendered.argv, { extra: { cwd: dir } });
      assert.equal(out.result.stdout, value);
      assert.equal(out.result.exitCode, 0);
    }
    assert.equal(await readFile(join(dir, 'canary.txt'), 'utf8'), 'still here');
    assert.deepEqual(await readdir(dir), ['canary.txt']);
  });

  test('a label value that would be read as an option is refused, as is a placeholder in argv[0]', () => {
    assert.throws(
      () => shellCommandCollector.render(config(['ls', '{{labels.path}}']), buildVars({ path: '-rf' })),
      (err: Error) =>
        err instanceof TemplateError &&
        err.message === '{{labels.path}} starts with "-" and would be read as an option',
    );
    assert.throws(
      () => shellCommandCollector.render(config(['{{labels.bin}}', 'x']), buildVars({ bin: 'rm' })),
      (err: Error) =>
        err instanceof TemplateError &&
        /argv\[0\] \(the binary\) may not contain placeholders/.test(err.message),
    );
    assert.throws(
      () => shellCommandCollector.render(config(['ls', '{{labels.path}}']), buildVars({})),
      /the incident has no label "path"/,
    );
    assert.deepEqual(check(['{{labels.bin}}', 'x']), [
      {
        path: ['argv', 0],
        message:
          'argv[0] is the binary and may not contain placeholders: the incident must not choose what runs',
      },
    ]);
  });

  test('shells, interpreters and command runners are refused even when allowlisted, with the reason', async () => {
    const targets = buildTargets(['sh', 'bash', '/bin/sh', 'python3', 'env', 'xargs', 'sudo']);
    assert.deepEqual(check(['sh', '-c', 'df'], targets), [
      {
        path: ['argv', 0],
        message: 'sh is a shell: it would run its arguments as shell code; refused even when allowlisted',
      },
    ]);
    assert.match(check(['bash', '-c', 'df'], targets)[0]?.message ?? '', /^bash is a shell/);
    assert.match(check(['/bin/sh'], targets)[0]?.message ?? '', /^sh is a shell/);
    assert.match(
      check(['python3', '-c', 'print(1)'], targets)[0]?.message ?? '',
      /^python3 is an interpreter: its arguments are code/,
    );
    assert.match(check(['env', 'df'], targets)[0]?.message ?? '', /^env runs another command/);
    assert.match(check(['xargs', 'rm'], targets)[0]?.message ?? '', /^xargs runs another command/);
    assert.match(check(['sudo', 'df'], targets)[0]?.message ?? '', /^sudo runs another command/);
    await assert.rejects(
      run(['bash', '-c', 'echo pwned'], { targets }),
      /^Error: shell_command: bash is a shell/,
    );

    // a harmless-looking name that is a shell underneath
    const disguised = join(dir, 'disk-report');
    await symlink('/bin/bash', disguised);
    try {
      const problems = check([disguised, '-c', 'df'], buildTargets([disguised]));
      assert.equal(problems.length, 1);
      assert.match(problems[0]?.message ?? '', /disk-report is \/(usr\/)?bin\/bash: bash is a shell/);
    } finally {
      await rm(disguised);
    }
  });

  test('a binary that is not allowlisted is refused with its path, by check and by collect', async () => {
    assert.deepEqual(check(['cat', '/etc/hostname'], buildTargets(['echo', 'printf'])), [
      {
        path: ['argv', 0],
        message: `"cat" (${PATH.split(':')
          .map((d) => join(d, 'cat'))
          .find(existsSync)}) is not in the targets file's shell.allow (allowed: echo, printf)`,
      },
    ]);
    await assert.rejects(
      run(['cat', '/etc/hostname'], { targets: buildTargets(['echo']) }),
      /^Error: shell_command: "cat" \(\/.*\/cat\) is not in the targets file's shell.allow \(allowed: echo\)$/,
    );
    // an allowed name only covers that name in PATH, not a file of the same name elsewhere
    assert.match(
      check([join(dir, 'echo')], buildTargets(['echo']))[0]?.message ?? '',
      /is not in the targets file's shell.allow/,
    );
    assert.deepEqual(check(['/usr/bin/echo', 'x'], buildTargets(['echo'])), []);
    assert.deepEqual(check(['printf', 'x'], buildTargets(['/usr/bin/printf'])), []);
    assert.match(
      check(['./echo'], buildTargets(['echo']))[0]?.message ?? '',
      /must be a bare name .* or an absolute path/,
    );
    assert.match(
      check(['/usr/bin/../bin/echo'], buildTargets(['echo']))[0]?.message ?? '',
      /must be a bare name/,
    );
  });

  test('shell syntax in an argument is reported with its index', () => {
    const problems = check([
      'echo',
      'a | b',
      'fine',
      '$(id)',
      SHELL_VARIABLE,
      'x > y',
      'a && b',
      '`id`',
      'a; b',
    ]);
    assert.deepEqual(
      problems.map((p) => p.path),
      [1, 3, 4, 5, 6, 7, 8].map((i) => ['argv', i]),
    );
    assert.match(
      problems[0]?.message ?? '',
      /contains shell syntax \("\|"\), but no shell runs this command/,
    );
    assert.match(problems[5]?.message ?? '', /"`"/);
  });

  test('the environment is scrubbed: only PATH and LANG reach the command', async () => {
    process.env.AI_SRE_TEST_SECRET = 'hunter2-do-not-leak';
    try {
      const out = await run(['printenv']);
      const stdout = out.result.stdout as string;
      assert.ok(!stdout.includes('hunter2-do-not-leak'));
      assert.deepEqual(stdout.trim().split('\n').sort(), ['LANG=C.UTF-8', `PATH=${PATH}`]);
    } finally {
      delete process.env.AI_SRE_TEST_SECRET;
    }
  });

  test('a non-zero exit is a measurement: exit code, stderr and summary, no rejection', async () => {
    const out = await run(['ls', '/definitely/not/here']);
    assert.equal(out.result.exitCode, 2);
    assert.equal(out.result.stdout, '');
    assert.match(out.result.stderr as string, /No such file or directory/);
    assert.equal(out.value, null);
    assert.match(
      out.summary,
      /^ls exited 2: ls: cannot access '\/definitely\/not\/here': No such file or directory$/,
    );
  });

  test('parse number takes the first number of stdout; cwd is where it runs', async () => {
    const out = await run(['df', '--output=pcent', '/'], { extra: { parse: 'number' } });
    assert.equal(typeof out.value, 'number');
    assert.ok((out.value as number) >= 0 && (out.value as number) <= 100);
    assert.equal(out.summary, `df exited 0: value ${out.value}`);
    const listed = await run(['ls'], { extra: { cwd: dir } });
    assert.equal(listed.value, 'canary.txt');
  });

  test('parse json: scalars are the value, objects land in result.json, garbage is a parse error', async () => {
    const object = await run(['printf', '{"free":12,"ok":true}'], { extra: { parse: 'json' } });
    assert.equal(object.value, null);
    assert.deepEqual(object.result.json, { free: 12, ok: true });
    assert.equal(object.summary, 'printf exited 0: value {"free":12,"ok":true}');
    const scalar = await run(['printf', '42'], { extra: { parse: 'json' } });
    assert.equal(scalar.value, 42);
    const garbage = await run(['printf', 'nope'], { extra: { parse: 'json' } });
    assert.equal(garbage.value, null);
    assert.match(garbage.result.parseError as string, /^stdout is not JSON/);
    assert.match(garbage.summary, /^printf exited 0: stdout is not JSON/);
  });

  test('output past the cap is cut; a command that keeps writing past 4x the cap is killed', async () => {
    const cut = await run(['seq', '1', '2000'], { targets: buildTargets(ALLOWED, 4_096) });
    assert.equal(cut.result.exitCode, 0, 'under 4x the cap: it finishes');
    assert.equal(cut.result.truncated, true);
    assert.equal((cut.result.stdout as string).length, 4_096);
    assert.ok((cut.result.stdout as string).startsWith('1\n2\n3\n'));
    assert.match(cut.summary, /\(output truncated\)$/);

    const started = performance.now();
    const endless = await run(['yes'], { targets: buildTargets(ALLOWED, 4_096), timeoutMs: 10_000 });
    assert.ok(performance.now() - started < 2_000, 'killed long before the timeout');
    assert.equal(endless.result.signal, 'SIGKILL');
    assert.equal(endless.result.exitCode, null);
    assert.equal(endless.result.stdout, 'y\n'.repeat(2_048));
    assert.equal(endless.result.truncated, true);
    assert.equal(
      endless.summary,
      'yes killed by SIGKILL (output past 4× the 4096-byte cap): y (output truncated)',
    );
  });

  test('the timeout kills the command (SIGKILL) and rejects within about the timeout', async () => {
    const marker = '29.731';
    const started = performance.now();
    await assert.rejects(run(['sleep', marker], { timeoutMs: 300 }), /timed out after 300 ms$/);
    const ms = performance.now() - started;
    assert.ok(ms >= 250 && ms < 1_000, `took ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
    const alive: string[] = [];
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline === `sleep\0${marker}\0`) alive.push(pid);
    }
    assert.deepEqual(alive, [], 'the sleep is gone');
  });

  test('a binary missing from PATH is an error naming it', async () => {
    await assert.rejects(
      run(['no-such-tool-4f2a'], { targets: buildTargets(['no-such-tool-4f2a']) }),
      /^Error: shell_command: no-such-tool-4f2a not found in PATH \/usr\/local\/bin:\/usr\/bin:\/bin$/,
    );
  });
});
