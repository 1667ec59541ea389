import { basename } from 'node:path';
import { z } from 'zod';
import type { Collector, ConfigProblem } from '../collector.js';
import {
  argvProblems,
  binaryProblems,
  describeExit,
  lastOutputLine,
  renderArgv,
  resolveBinary,
  runArgv,
} from '../run-argv.js';
import type { Targets } from '../targets.js';
import { placeholdersOf, TemplateError } from '../templating.js';

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
/** where the allowlist lives in the targets file, as refusals name it */
const SHELL_ALLOW = 'shell.allow';

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
  return lastOutputLine(text, 120);
}

export const shellCommandCollector: Collector<ShellCommandConfig> = {
  type: 'shell_command',
  config: ShellCommandConfig,
  valueType: 'dyn',

  check(config: ShellCommandConfig, targets: Targets): ConfigProblem[] {
    const problems = argvProblems(config.argv, targets.shell, SHELL_ALLOW);
    if (config.cwd !== undefined && placeholdersOf(config.cwd).length > 0) {
      problems.push({ path: ['cwd'], message: 'cwd may not contain placeholders' });
    }
    return problems;
  },

  render(config, vars) {
    if (config.cwd !== undefined && placeholdersOf(config.cwd).length > 0) {
      throw new TemplateError('cwd may not contain placeholders');
    }
    return { ...config, argv: renderArgv(config.argv, vars) };
  },

  async collect(config, ctx) {
    const [binary = '', ...args] = config.argv;
    const name = basename(binary);
    const shell = ctx.targets.shell;
    const refused = binaryProblems(binary, shell, SHELL_ALLOW);
    if (refused.length > 0) throw new Error(`shell_command: ${refused.join('; ')}`);
    const file = resolveBinary(binary, shell.path);
    if (!file) throw new Error(`shell_command: ${binary} not found in PATH ${shell.path}`);
    const cap = shell.maxOutputBytes;
    const run = await runArgv({
      file,
      argv0: binary,
      args,
      path: shell.path,
      maxOutputBytes: cap,
      ...(config.cwd !== undefined ? { cwd: config.cwd } : {}),
      signal: ctx.signal,
      timeoutMs: ctx.timeoutMs,
      label: 'shell_command',
    });
    const out = run.stdout;
    const err = run.stderr;
    const parsed = parseStdout(out, config.parse);
    const status = describeExit(name, run, cap);
    const shown =
      config.parse === 'text'
        ? lastLine(out) || lastLine(err) || '(no output)'
        : parsed.parseError
          ? `${parsed.parseError}${lastLine(err) ? `; stderr: ${lastLine(err)}` : ''}`
          : `value ${cut(JSON.stringify(parsed.json ?? parsed.value) ?? 'null', 120)}`;
    return {
      value: parsed.value,
      result: {
        exitCode: run.exitCode,
        signal: run.signal,
        stdout: out,
        stderr: err,
        truncated: run.truncated,
        durationMs: run.durationMs,
        ...(parsed.json !== undefined ? { json: parsed.json } : {}),
        ...(parsed.parseError !== undefined ? { parseError: parsed.parseError } : {}),
      },
      summary: `${status}: ${shown}${run.truncated ? ' (output truncated)' : ''}`,
    };
  },
};
