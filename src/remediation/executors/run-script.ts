import { basename } from 'node:path';
import { z } from 'zod';
import type { ConfigProblem } from '../../diagnostics/collector.js';
import { redactSecrets } from '../../diagnostics/redact.js';
import {
  binaryProblems,
  OVERFLOW_KILL_FACTOR,
  realBinary,
  resolveBinary,
  runArgv,
  shellSyntaxIn,
  TimedOutError,
} from '../../diagnostics/run-argv.js';
import type { Targets } from '../../diagnostics/targets.js';
import {
  checkArgument,
  placeholdersOf,
  renderTemplate,
  TemplateError,
} from '../../diagnostics/templating.js';
import { type ActionExecutor, excerpt, ForbiddenActionError } from '../executor.js';

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

function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const line = (lines[lines.length - 1] ?? '').trim();
  return line.length > 160 ? `${line.slice(0, 160)}…` : line;
}

/** Throws ForbiddenActionError naming every problem; the message format matches the other executors'. */
function refuse(problems: ConfigProblem[]): void {
  if (problems.length === 0) return;
  const text = problems.map((p) => `${p.path.join('.') || '(config)'}: ${p.message}`).join('; ');
  throw new ForbiddenActionError(`run_script refused: ${text}`);
}

/** The config re-parsed with its strict schema at execution: it may not have come through the loader. */
function reparse(raw: unknown): RunScriptConfig {
  const parsed = RunScriptConfig.safeParse(raw);
  if (!parsed.success) {
    refuse(parsed.error.issues.map((i) => ({ path: i.path as (string | number)[], message: i.message })));
  }
  return parsed.data as RunScriptConfig;
}

function check(config: RunScriptConfig, targets: Targets): ConfigProblem[] {
  const scripts = targets.remediation.scripts;
  const binary = config.argv[0] ?? '';
  const problems: ConfigProblem[] = binaryProblems(binary, scripts, SCRIPTS_ALLOW).map((message) => ({
    path: ['argv', 0],
    message,
  }));
  config.argv.forEach((arg, i) => {
    const found = shellSyntaxIn(arg);
    if (found.length > 0) {
      problems.push({
        path: ['argv', i],
        message: `contains shell syntax (${found.map((t) => JSON.stringify(t)).join(', ')}), but no shell runs this command: it would reach ${basename(binary)} literally`,
      });
    }
    for (const p of placeholdersOf(arg)) {
      if (!p.valid) {
        problems.push({
          path: ['argv', i],
          message: `placeholder {{${p.name}}} is not one of labels.*, annotations.*, incident.*, service.*`,
        });
      }
    }
  });
  problems.push(...forbiddenShapes(config.argv, scripts.path));
  return problems;
}

/**
 * Runs one allowlisted binary on the bot's host, without a shell, with only PATH and LANG in its environment. Exit 0
 * is success; any other exit is a failed result with the exit code and the end of stderr. The step's timeout kills
 * the command's whole process group and rejects.
 */
export const runScriptExecutor: ActionExecutor<RunScriptConfig> = {
  action: 'run_script',
  config: RunScriptConfig,
  check,

  render(config, vars) {
    const [binary = '', ...args] = config.argv;
    if (placeholdersOf(binary).length > 0)
      throw new TemplateError('argv[0] (the binary) may not contain placeholders');
    // each element is exactly one argument (no shell splits or expands it); option-like values are refused
    return { argv: [binary, ...args.map((arg) => renderTemplate(arg, vars, checkArgument))] };
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
    const config = reparse(raw);
    refuse(check(config, ctx.targets));
    if (config.argv.some((arg) => placeholdersOf(arg).length > 0)) {
      throw new TemplateError('run_script: argv still has placeholders; render the config before executing');
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
    if (!file) throw new Error(`run_script: ${binary} not found in PATH ${scripts.path}`);

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
        label: 'run_script',
      });
    } catch (err) {
      if (err instanceof TimedOutError) {
        throw new Error(`run_script: ${shown} ${err.message}; killed with everything it started`, {
          cause: err,
        });
      }
      throw err;
    }
    const ok = run.exitCode === 0 && run.signal === null;
    const stdout = redactSecrets(run.stdout);
    const stderr = redactSecrets(run.stderr);
    const status =
      run.signal !== null
        ? `${name} killed by ${run.signal}${run.overflowed ? ` (output past ${OVERFLOW_KILL_FACTOR}× the ${scripts.maxOutputBytes}-byte cap)` : ''}`
        : `${name} exited ${run.exitCode}`;
    const said = ok ? '' : lastLine(stderr) || lastLine(stdout);
    const summary = ok ? `ran ${shown}: exited 0` : `${status}${said ? `: ${said}` : ''}`;
    ctx.log.info({ action: 'run_script', binary, exitCode: run.exitCode, signal: run.signal }, summary);
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
