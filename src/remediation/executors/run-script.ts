import { basename } from 'node:path';
import { z } from 'zod';
import type { ConfigProblem } from '../../diagnostics/collector.js';
import { redactSecrets } from '../../diagnostics/redact.js';
import {
  argvProblems,
  describeExit,
  lastOutputLine,
  realBinary,
  renderArgv,
  resolveBinary,
  runArgv,
  TimedOutError,
} from '../../diagnostics/run-argv.js';
import type { Targets } from '../../diagnostics/targets.js';
import { placeholdersOf, TemplateError } from '../../diagnostics/templating.js';
import { type ActionExecutor, excerpt, refuseProblems, reparseConfig } from '../executor.js';

const ACTION = 'run_script';

export const RunScriptConfig = z.strictObject({
  /**
   * the command and its arguments, run without a shell: argv[0] is a binary from the targets file's
   * `remediation.scripts.allow` (a bare name looked up in `remediation.scripts.path`, or an absolute path);
   * placeholders only in later elements, each filling exactly one argument; 1 to 64 elements
   */
  argv: z.array(z.string()).min(1).max(64),
});
export type RunScriptConfig = z.infer<typeof RunScriptConfig>;

/** where the allowlist lives in the targets file, as refusals name it */
const SCRIPTS_ALLOW = 'remediation.scripts.allow';
/** characters of stderr kept in `details.stderr` */
const STDERR_EXCERPT_CHARS = 500;
/** characters of the output line a failed run's summary quotes */
const SUMMARY_LINE_CHARS = 160;

/**
 * Binaries that destroy data or take free-form queries. The allowlist cannot let them through: a remediation that
 * needs one of these effects has a narrow executor of its own (flush_cache, terminate_connections), or is forbidden.
 */
const DESTRUCTIVE_BINARIES: [RegExp, string][] = [
  [/^(?:rm|rmdir|unlink|shred|srm)$/, 'deletes files (data deletion)'],
  [/^dd$/, 'writes raw bytes over files and devices (data deletion)'],
  [/^(?:mkfs(?:\..+)?|mke2fs|mkswap|wipefs)$/, 'formats or wipes filesystems (data deletion)'],
  [/^truncate$/, 'cuts files short (data deletion)'],
  [/^(?:fdisk|sfdisk|cfdisk|gdisk|sgdisk|parted)$/, 'rewrites partition tables (data deletion)'],
  [
    /^(?:redis-cli|valkey-cli|keydb-cli)$/,
    'sends any command to Redis, FLUSHALL included (use the flush_cache action)',
  ],
  [
    /^(?:psql|mysql|mariadb|mongo|mongosh|sqlite3|sqlcmd|cqlsh|clickhouse-client)$/,
    'runs free-form queries, deletes and schema changes included (use terminate_connections / cancel_query)',
  ],
];

/** Redis commands that empty a database, as a whole argument. */
const FLUSH_COMMAND = /^\s*flush(?:all|db)\s*$/i;
/** SQL that deletes data or schema, anywhere in an argument (a script may take a query as a parameter). */
const DESTRUCTIVE_SQL: [RegExp, string][] = [
  [/\bdrop\s+(?:table|database|schema)\b/i, 'drops a table, database or schema'],
  [/\btruncate\b/i, 'truncates a table'],
  [/\bdelete\s+from\b/i, 'deletes rows'],
];

function destructiveBinary(name: string): string | null {
  for (const [pattern, why] of DESTRUCTIVE_BINARIES) {
    if (pattern.test(name)) return `${name} ${why}; refused even when allowlisted`;
  }
  return null;
}

/** Forbidden shapes of the whole command, whatever the allowlist says; each with the argv index it is about. */
function forbiddenShapes(argv: string[], path: string): ConfigProblem[] {
  const [binary = '', ...args] = argv;
  const problems: ConfigProblem[] = [];
  const names = new Set([basename(binary)]);
  const resolved = resolveBinary(binary, path);
  // a harmless name may be a symlink to rm
  if (resolved) names.add(basename(realBinary(resolved)));
  for (const name of names) {
    const why = destructiveBinary(name);
    if (why) {
      const shown =
        name === basename(binary) ? why : `${binary} is ${realBinary(resolved ?? binary)}: ${why}`;
      problems.push({ path: ['argv', 0], message: shown });
    }
  }
  const kubectl = [...names].some((n) => n === 'kubectl' || n === 'oc');
  args.forEach((arg, index) => {
    const i = index + 1;
    if (kubectl && arg.trim().toLowerCase() === 'delete') {
      problems.push({
        path: ['argv', i],
        message: `${basename(binary)} delete removes cluster objects (data deletion); refused even when allowlisted`,
      });
    }
    if (FLUSH_COMMAND.test(arg)) {
      problems.push({
        path: ['argv', i],
        message: `${arg.trim().toUpperCase()} empties a Redis database (unbounded flush); refused even when allowlisted`,
      });
    }
    for (const [pattern, why] of DESTRUCTIVE_SQL) {
      if (pattern.test(arg)) {
        problems.push({
          path: ['argv', i],
          message: `contains SQL that ${why} (data deletion); refused even when allowlisted`,
        });
      }
    }
  });
  return problems;
}

/** The command as one line for people; arguments with spaces or quotes are shown quoted. */
function commandLine(argv: string[]): string {
  return argv.map((a) => (a === '' || /[\s"'\\]/.test(a) ? JSON.stringify(a) : a)).join(' ');
}

function check(config: RunScriptConfig, targets: Targets): ConfigProblem[] {
  const scripts = targets.remediation.scripts;
  const problems = argvProblems(config.argv, scripts, SCRIPTS_ALLOW);
  problems.push(...forbiddenShapes(config.argv, scripts.path));
  return problems;
}

/**
 * Runs one allowlisted binary on the bot's host, without a shell, with only PATH and LANG in its environment. Exit 0
 * is success; any other exit is a failed result with the exit code and the end of stderr. The step's timeout kills
 * the command's whole process group and rejects.
 */
export const runScriptExecutor: ActionExecutor<RunScriptConfig> = {
  action: ACTION,
  config: RunScriptConfig,
  check,

  render(config, vars) {
    return { argv: renderArgv(config.argv, vars) };
  },

  describe(config) {
    const binary = config.argv[0] ?? '';
    return {
      target: `script:${binary}`,
      blastRadius: `whatever ${binary} changes on the bot's host`,
      rollback: 'none automatic',
    };
  },

  async execute(raw, ctx) {
    const config = reparseConfig(ACTION, RunScriptConfig, raw);
    refuseProblems(ACTION, check(config, ctx.targets));
    if (config.argv.some((arg) => placeholdersOf(arg).length > 0)) {
      throw new TemplateError(`${ACTION}: argv still has placeholders; render the config before executing`);
    }
    const [binary = '', ...args] = config.argv;
    const name = basename(binary);
    const scripts = ctx.targets.remediation.scripts;
    const shown = redactSecrets(commandLine(config.argv));
    const file = resolveBinary(binary, scripts.path);
    if (ctx.dryRun) {
      return {
        ok: true,
        dryRun: true,
        summary: `would run: ${shown}`,
        details: { argv: config.argv.map(redactSecrets), file },
      };
    }
    if (!file) throw new Error(`${ACTION}: ${binary} not found in PATH ${scripts.path}`);

    let run: Awaited<ReturnType<typeof runArgv>>;
    try {
      run = await runArgv({
        file,
        argv0: binary,
        args,
        path: scripts.path,
        maxOutputBytes: scripts.maxOutputBytes,
        signal: ctx.signal,
        timeoutMs: ctx.timeoutMs,
        label: ACTION,
      });
    } catch (err) {
      if (err instanceof TimedOutError) {
        throw new Error(`${ACTION}: ${shown} ${err.message}; killed with everything it started`, {
          cause: err,
        });
      }
      throw err;
    }
    const ok = run.exitCode === 0 && run.signal === null;
    const stdout = redactSecrets(run.stdout);
    const stderr = redactSecrets(run.stderr);
    const status = describeExit(name, run, scripts.maxOutputBytes);
    const said = ok
      ? ''
      : lastOutputLine(stderr, SUMMARY_LINE_CHARS) || lastOutputLine(stdout, SUMMARY_LINE_CHARS);
    const summary = ok ? `ran ${shown}: exited 0` : `${status}${said ? `: ${said}` : ''}`;
    ctx.log.info({ action: ACTION, binary, exitCode: run.exitCode, signal: run.signal }, summary);
    return {
      ok,
      dryRun: false,
      summary,
      details: {
        argv: config.argv.map(redactSecrets),
        exitCode: run.exitCode,
        signal: run.signal,
        durationMs: run.durationMs,
        truncated: run.truncated,
        stderr: stderr.length > STDERR_EXCERPT_CHARS ? `${stderr.slice(0, STDERR_EXCERPT_CHARS)}…` : stderr,
      },
      output: excerpt(stdout),
    };
  },
};
