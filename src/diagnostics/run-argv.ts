import { spawn } from 'node:child_process';
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ConfigProblem } from './collector.js';
import {
  checkArgument,
  placeholdersOf,
  renderTemplate,
  TemplateError,
  type TemplateVars,
} from './templating.js';

/**
 * Running one allowlisted binary without a shell, shared by the `shell_command` diagnostic and the `run_script`
 * remediation: which binaries may never run, how a name is found and allowlisted, and a spawn with a scrubbed
 * environment, capped output and a process-group kill.
 */

/** An allowlist section of the targets file (`shell`, `remediation.scripts`). */
export interface BinaryAllowlist {
  /** binary names (looked up in `path`) or absolute paths */
  allow: string[];
  /** the PATH commands run with */
  path: string;
}

/** past this multiple of the output cap the command is killed: it is not going to finish on its own */
export const OVERFLOW_KILL_FACTOR = 4;

/** A bare name (`df`, `pg_isready`) or an absolute path without `..` segments. */
const BINARY = /^(?:[A-Za-z0-9_][A-Za-z0-9._+-]*|(?!.*\/\.\.?(?:\/|$))\/[^\0]+)$/;

// Allowlisting one of these would allow anything: each runs code or another command given in its arguments.
const SHELLS = /^(?:sh|bash|rbash|zsh|dash|ksh|mksh|ash|csh|tcsh|fish|busybox|toybox)$/;
const INTERPRETERS =
  /^(?:(?:python|pypy|perl|ruby|php|lua|luajit)[0-9.]*|node|nodejs|deno|bun|awk|gawk|mawk|nawk|tclsh|wish|expect|osascript)$/;
const RUNNERS =
  /^(?:env|sudo|su|doas|runuser|pkexec|xargs|nohup|nice|ionice|timeout|stdbuf|setsid|chroot|unshare|nsenter|taskset|chrt|flock|watch|script|eval|exec|command|builtin|time|strace|ltrace|gdb|parallel|ssh|rsh|find)$/;

/** Why a binary name may never run, whatever the allowlist says; null when it may. */
export function forbiddenBinary(name: string): string | null {
  if (SHELLS.test(name)) return `${name} is a shell: it would run its arguments as shell code`;
  if (INTERPRETERS.test(name)) return `${name} is an interpreter: its arguments are code`;
  if (RUNNERS.test(name)) {
    return `${name} runs another command (or as another user, or on another host), which would bypass the allowlist`;
  }
  return null;
}

// Shell syntax in an argument means the author expects a shell; none runs, so it would be passed literally.
const SHELL_SYNTAX = ['$(', '`', '${', '&&', '||', ';', '|', '>', '<'];

/** The shell syntax tokens found in one argument (empty when there are none). */
export function shellSyntaxIn(arg: string): string[] {
  return SHELL_SYNTAX.filter((token) => arg.includes(token));
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The file `name` runs: itself when absolute, else the first executable of that name in `path`. */
export function resolveBinary(name: string, path: string): string | null {
  if (name.startsWith('/')) return isExecutableFile(name) ? name : null;
  for (const dir of path.split(':')) {
    if (!dir.startsWith('/')) continue;
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}

/** What a resolved binary really is once symlinks are followed (the path itself when that fails). */
export function realBinary(resolved: string): string {
  try {
    return realpathSync(resolved);
  } catch {
    return resolved;
  }
}

/**
 * Whether `binary` is allowlisted: the same name or path; an absolute path whose name is allowed and whose
 * directory is in PATH (what the name would find); a name whose PATH lookup finds an allowed absolute path.
 */
function isAllowed(binary: string, list: BinaryAllowlist): boolean {
  const dirs = list.path.split(':');
  return list.allow.some((entry) => {
    if (entry === binary) return true;
    if (binary.startsWith('/') && !entry.includes('/')) {
      return basename(binary) === entry && dirs.includes(dirname(binary));
    }
    if (!binary.includes('/') && entry.startsWith('/')) {
      return basename(entry) === binary && resolveBinary(binary, list.path) === entry;
    }
    return false;
  });
}

/**
 * Problems of argv[0] alone: shape, allowlist, forbidden binaries (also of what a symlink points to).
 * `listName` is the allowlist's place in the targets file, as messages name it (`shell.allow`).
 */
export function binaryProblems(binary: string, list: BinaryAllowlist, listName: string): string[] {
  if (placeholdersOf(binary).length > 0) {
    return ['argv[0] is the binary and may not contain placeholders: the incident must not choose what runs'];
  }
  if (!BINARY.test(binary)) {
    return [`argv[0] "${binary}" must be a bare name (looked up in PATH) or an absolute path`];
  }
  const problems: string[] = [];
  const forbidden = forbiddenBinary(basename(binary));
  if (forbidden) problems.push(`${forbidden}; refused even when allowlisted`);
  const resolved = resolveBinary(binary, list.path);
  if (!forbidden && resolved) {
    const real = realBinary(resolved);
    const behind = forbiddenBinary(basename(real));
    if (behind) problems.push(`${binary} is ${real}: ${behind}; refused even when allowlisted`);
  }
  if (!isAllowed(binary, list)) {
    const where = resolved && resolved !== binary ? ` (${resolved})` : '';
    const allowed = list.allow.length > 0 ? list.allow.join(', ') : 'nothing';
    problems.push(`"${binary}"${where} is not in the targets file's ${listName} (allowed: ${allowed})`);
  }
  return problems;
}

/**
 * Load-time problems of a whole argv, with the index each is about: argv[0] against the allowlist (`binaryProblems`),
 * then every element's shell syntax and unknown placeholders.
 */
export function argvProblems(argv: string[], list: BinaryAllowlist, listName: string): ConfigProblem[] {
  const binary = argv[0] ?? '';
  const problems: ConfigProblem[] = binaryProblems(binary, list, listName).map((message) => ({
    path: ['argv', 0],
    message,
  }));
  argv.forEach((arg, i) => {
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
  return problems;
}

/**
 * Fills the placeholders of argv[1..]: each element is exactly one argument (no shell splits or expands it), and a
 * value that would be read as an option is refused. argv[0] may hold none: the incident must not choose what runs.
 */
export function renderArgv(argv: string[], vars: TemplateVars): string[] {
  const [binary = '', ...args] = argv;
  if (placeholdersOf(binary).length > 0)
    throw new TemplateError('argv[0] (the binary) may not contain placeholders');
  return [binary, ...args.map((arg) => renderTemplate(arg, vars, checkArgument))];
}

/** How a run ended, for summaries: "df exited 0", "yes killed by SIGKILL (output past 4× the 4096-byte cap)". */
export function describeExit(name: string, run: ArgvRun, maxOutputBytes: number): string {
  if (run.signal === null) return `${name} exited ${run.exitCode}`;
  const overflow = run.overflowed
    ? ` (output past ${OVERFLOW_KILL_FACTOR}× the ${maxOutputBytes}-byte cap)`
    : '';
  return `${name} killed by ${run.signal}${overflow}`;
}

/** The last non-blank line of some output, trimmed and cut to `maxChars` (with …). */
export function lastOutputLine(text: string, maxChars: number): string {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const line = (lines[lines.length - 1] ?? '').trim();
  return line.length > maxChars ? `${line.slice(0, maxChars)}…` : line;
}

export class TimedOutError extends Error {
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

export interface RunArgvOptions {
  /** the resolved executable file */
  file: string;
  /** argv[0] as written (what the process sees as its name) */
  argv0: string;
  args: string[];
  /** the only environment the command gets besides LANG */
  path: string;
  /** bytes kept of stdout and of stderr each; past OVERFLOW_KILL_FACTOR times this the command is killed */
  maxOutputBytes: number;
  /** absolute working directory; default the bot's own */
  cwd?: string;
  /** the step's signal; aborting it kills the command's process group */
  signal: AbortSignal;
  /** our own bound in case the caller's timer is late; milliseconds */
  timeoutMs: number;
  /** names the caller in a spawn error ("shell_command: cannot run …") */
  label: string;
}

/** How a command ended. A non-zero exit resolves; only a spawn failure or the timeout rejects. */
export interface ArgvRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** more output came than was kept */
  truncated: boolean;
  /** killed because it wrote past OVERFLOW_KILL_FACTOR times the cap */
  overflowed: boolean;
  durationMs: number;
}

/**
 * Runs a binary without a shell, in its own process group, with only PATH and LANG in its environment. Rejects with
 * TimedOutError when the signal aborts or `timeoutMs` passes, after SIGKILLing the whole group.
 */
export function runArgv(opts: RunArgvOptions): Promise<ArgvRun> {
  const signal = AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)]);
  if (signal.aborted) return Promise.reject(new TimedOutError(opts.timeoutMs));

  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(opts.file, opts.args, {
      argv0: opts.argv0,
      shell: false,
      cwd: opts.cwd,
      // nothing of the bot's environment (tokens, DATABASE_URL, HOME) reaches the command
      env: { PATH: opts.path, LANG: 'C.UTF-8' },
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
    const stdout = capture(child.stdout, opts.maxOutputBytes, overflow);
    const stderr = capture(child.stderr, opts.maxOutputBytes, overflow);
    const onAbort = () => {
      kill();
      reject(new TimedOutError(opts.timeoutMs));
    };
    signal.addEventListener('abort', onAbort, { once: true });

    child.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      kill();
      reject(new Error(`${opts.label}: cannot run ${opts.argv0}: ${err.message}`, { cause: err }));
    });
    child.once('close', (exitCode: number | null, exitSignal: NodeJS.Signals | null) => {
      signal.removeEventListener('abort', onAbort);
      resolve({
        exitCode,
        signal: exitSignal,
        stdout: stdout.text(),
        stderr: stderr.text(),
        truncated: stdout.truncated() || stderr.truncated(),
        overflowed,
        durationMs: Math.round(performance.now() - started),
      });
    });
  });
}
