import { spawn } from 'node:child_process';
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { Collector, ConfigProblem } from '../collector.js';
import type { Targets } from '../targets.js';
import { checkArgument, placeholdersOf, renderTemplate, TemplateError } from '../templating.js';

export const ShellCommandConfig = z.strictObject({
  /**
   * the command and its arguments, run without a shell: argv[0] is a binary from the targets file's `shell.allow`
   * (a bare name looked up in `shell.path`, or an absolute path); 1 to 64 elements
   */
  argv: z.array(z.string()).min(1).max(64),
  /** how stdout becomes `value`: text = its first line (trimmed), number = the first number in it, json = parsed; default text */
  parse: z.enum(['text', 'json', 'number']).default('text'),
  /** absolute working directory; default the bot's own */
  cwd: z.string().regex(/^\//, { error: 'expected an absolute path' }).optional(),
});
export type ShellCommandConfig = z.infer<typeof ShellCommandConfig>;

/** characters of `value` and of the summary's output excerpt */
const MAX_LINE_CHARS = 200;
/** past this multiple of the output cap the command is killed: it is not going to finish on its own */
const OVERFLOW_KILL_FACTOR = 4;

/** A bare name (`df`, `pg_isready`) or an absolute path without `..` segments. */
const BINARY = /^(?:[A-Za-z0-9_][A-Za-z0-9._+-]*|(?!.*\/\.\.?(?:\/|$))\/[^\0]+)$/;

// Allowlisting one of these would allow anything: each runs code or another command given in its arguments.
const SHELLS = /^(?:sh|bash|rbash|zsh|dash|ksh|mksh|ash|csh|tcsh|fish|busybox|toybox)$/;
const INTERPRETERS =
  /^(?:(?:python|pypy|perl|ruby|php|lua|luajit)[0-9.]*|node|nodejs|deno|bun|awk|gawk|mawk|nawk|tclsh|wish|expect|osascript)$/;
const RUNNERS =
  /^(?:env|sudo|su|doas|runuser|pkexec|xargs|nohup|nice|ionice|timeout|stdbuf|setsid|chroot|unshare|nsenter|taskset|chrt|flock|watch|script|eval|exec|command|builtin|time|strace|ltrace|gdb|parallel|ssh|rsh|find)$/;

/** Why a binary name may never run, whatever the allowlist says; null when it may. */
function forbiddenBinary(name: string): string | null {
  if (SHELLS.test(name)) return `${name} is a shell: it would run its arguments as shell code`;
  if (INTERPRETERS.test(name)) return `${name} is an interpreter: its arguments are code`;
  if (RUNNERS.test(name)) {
    return `${name} runs another command (or as another user, or on another host), which would bypass the allowlist`;
  }
  return null;
}

// Shell syntax in an argument means the author expects a shell; none runs, so it would be passed literally.
const SHELL_SYNTAX = ['$(', '`', '${', '&&', '||', ';', '|', '>', '<'];

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The file `name` runs: itself when absolute, else the first executable of that name in `path`. */
function resolveBinary(name: string, path: string): string | null {
  if (name.startsWith('/')) return isExecutableFile(name) ? name : null;
  for (const dir of path.split(':')) {
    if (!dir.startsWith('/')) continue;
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}

/**
 * Whether `binary` is allowlisted: the same name or path; an absolute path whose name is allowed and whose
 * directory is in PATH (what the name would find); a name whose PATH lookup finds an allowed absolute path.
 */
function isAllowed(binary: string, shell: Targets['shell']): boolean {
  const dirs = shell.path.split(':');
  return shell.allow.some((entry) => {
    if (entry === binary) return true;
    if (binary.startsWith('/') && !entry.includes('/')) {
      return basename(binary) === entry && dirs.includes(dirname(binary));
    }
    if (!binary.includes('/') && entry.startsWith('/')) {
      return basename(entry) === binary && resolveBinary(binary, shell.path) === entry;
    }
    return false;
  });
}

/** Problems of argv[0] alone: shape, allowlist, forbidden binaries (also of what a symlink points to). */
function binaryProblems(binary: string, shell: Targets['shell']): string[] {
  if (placeholdersOf(binary).length > 0) {
    return ['argv[0] is the binary and may not contain placeholders: the incident must not choose what runs'];
  }
  if (!BINARY.test(binary)) {
    return [`argv[0] "${binary}" must be a bare name (looked up in PATH) or an absolute path`];
  }
  const problems: string[] = [];
  const forbidden = forbiddenBinary(basename(binary));
  if (forbidden) problems.push(`${forbidden}; refused even when allowlisted`);
  const resolved = resolveBinary(binary, shell.path);
  if (!forbidden && resolved) {
    let real = resolved;
    try {
      real = realpathSync(resolved);
    } catch {}
    const behind = forbiddenBinary(basename(real));
    if (behind) problems.push(`${binary} is ${real}: ${behind}; refused even when allowlisted`);
  }
  if (!isAllowed(binary, shell)) {
    const where = resolved && resolved !== binary ? ` (${resolved})` : '';
    const allowed = shell.allow.length > 0 ? shell.allow.join(', ') : 'nothing';
    problems.push(`"${binary}"${where} is not in the targets file's shell.allow (allowed: ${allowed})`);
  }
  return problems;
}

class TimedOutError extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms} ms`);
    this.name = 'TimedOutError';
  }
}

interface Captured {
  text(): string;
  truncated(): boolean;
}

/** Keeps the first `cap` bytes of a stream and keeps draining it, so the writer never blocks on a full pipe. */
function capture(stream: Readable, cap: number, onOverflow: () => void): Captured {
  const chunks: Buffer[] = [];
  let kept = 0;
  let seen = 0;
  stream.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (kept < cap) {
      const part = chunk.subarray(0, cap - kept);
      chunks.push(part);
      kept += part.length;
    }
    if (seen > cap * OVERFLOW_KILL_FACTOR) onOverflow();
  });
  return { text: () => Buffer.concat(chunks).toString('utf8'), truncated: () => seen > kept };
}

function cut(text: string, max = MAX_LINE_CHARS): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function parseStdout(
  stdout: string,
  parse: ShellCommandConfig['parse'],
): { value: number | string | boolean | null; json?: unknown; parseError?: string } {
  if (parse === 'number') {
    const match = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(stdout);
    return match ? { value: Number(match[0]) } : { value: null, parseError: 'no number in stdout' };
  }
  if (parse === 'json') {
    let json: unknown;
    try {
      json = JSON.parse(stdout);
    } catch (err) {
      return {
        value: null,
        parseError: `stdout is not JSON: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
    // objects and arrays stay in `result.json`; `value` is only ever a scalar
    const scalar = json === null || ['number', 'string', 'boolean'].includes(typeof json);
    return { value: scalar ? (json as number | string | boolean | null) : null, json };
  }
  const first = stdout.trim().split('\n')[0]?.trim() ?? '';
  return { value: first === '' ? null : cut(first) };
}

function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return cut((lines[lines.length - 1] ?? '').trim(), 120);
}

export const shellCommandCollector: Collector<ShellCommandConfig> = {
  type: 'shell_command',
  config: ShellCommandConfig,
  valueType: 'dyn',

  check(config: ShellCommandConfig, targets: Targets): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    const binary = config.argv[0] ?? '';
    for (const message of binaryProblems(binary, targets.shell))
      problems.push({ path: ['argv', 0], message });
    config.argv.forEach((arg, i) => {
      const found = SHELL_SYNTAX.filter((token) => arg.includes(token));
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
    if (config.cwd !== undefined && placeholdersOf(config.cwd).length > 0) {
      problems.push({ path: ['cwd'], message: 'cwd may not contain placeholders' });
    }
    return problems;
  },

  render(config, vars) {
    const [binary = '', ...args] = config.argv;
    if (placeholdersOf(binary).length > 0)
      throw new TemplateError('argv[0] (the binary) may not contain placeholders');
    if (config.cwd !== undefined && placeholdersOf(config.cwd).length > 0) {
      throw new TemplateError('cwd may not contain placeholders');
    }
    // each element is exactly one argument (no shell splits or expands it); only option-like values are refused
    return { ...config, argv: [binary, ...args.map((arg) => renderTemplate(arg, vars, checkArgument))] };
  },

  collect(config, ctx) {
    const [binary = '', ...args] = config.argv;
    const name = basename(binary);
    const shell = ctx.targets.shell;
    const refused = binaryProblems(binary, shell);
    if (refused.length > 0) return Promise.reject(new Error(`shell_command: ${refused.join('; ')}`));
    const file = resolveBinary(binary, shell.path);
    if (!file) return Promise.reject(new Error(`shell_command: ${binary} not found in PATH ${shell.path}`));
    // the step's signal, and our own bound in case the caller's timer is late
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.timeoutMs)]);
    if (signal.aborted) return Promise.reject(new TimedOutError(ctx.timeoutMs));

    return new Promise((resolve, reject) => {
      const started = performance.now();
      const child = spawn(file, args, {
        argv0: binary,
        shell: false,
        cwd: config.cwd,
        // nothing of the bot's environment (tokens, DATABASE_URL) reaches the command
        env: { PATH: shell.path, LANG: 'C.UTF-8' },
        stdio: ['ignore', 'pipe', 'pipe'],
        // its own process group, so a kill also reaches whatever it started
        detached: true,
      });
      let overflowed = false;
      const kill = () => {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      };
      const overflow = () => {
        if (overflowed) return;
        overflowed = true;
        kill();
      };
      const cap = shell.maxOutputBytes;
      const stdout = capture(child.stdout, cap, overflow);
      const stderr = capture(child.stderr, cap, overflow);
      const onAbort = () => {
        kill();
        reject(new TimedOutError(ctx.timeoutMs));
      };
      signal.addEventListener('abort', onAbort, { once: true });

      child.once('error', (err) => {
        signal.removeEventListener('abort', onAbort);
        kill();
        reject(new Error(`shell_command: cannot run ${binary}: ${err.message}`, { cause: err }));
      });
      child.once('close', (exitCode: number | null, exitSignal: NodeJS.Signals | null) => {
        signal.removeEventListener('abort', onAbort);
        const out = stdout.text();
        const err = stderr.text();
        const truncated = stdout.truncated() || stderr.truncated();
        const parsed = parseStdout(out, config.parse);
        const status =
          exitSignal !== null
            ? `${name} killed by ${exitSignal}${overflowed ? ` (output past ${OVERFLOW_KILL_FACTOR}× the ${cap}-byte cap)` : ''}`
            : `${name} exited ${exitCode}`;
        const shown =
          config.parse === 'text'
            ? lastLine(out) || lastLine(err) || '(no output)'
            : parsed.parseError
              ? `${parsed.parseError}${lastLine(err) ? `; stderr: ${lastLine(err)}` : ''}`
              : `value ${cut(JSON.stringify(parsed.json ?? parsed.value) ?? 'null', 120)}`;
        resolve({
          value: parsed.value,
          result: {
            exitCode,
            signal: exitSignal,
            stdout: out,
            stderr: err,
            truncated,
            durationMs: Math.round(performance.now() - started),
            ...(parsed.json !== undefined ? { json: parsed.json } : {}),
            ...(parsed.parseError !== undefined ? { parseError: parsed.parseError } : {}),
          },
          summary: `${status}: ${shown}${truncated ? ' (output truncated)' : ''}`,
        });
      });
    });
  },
};
