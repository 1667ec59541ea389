import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { type Document, isNode, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import type { AnyCollector } from '../diagnostics/collector.js';
import { parseDuration } from '../diagnostics/duration.js';
import type { Targets } from '../diagnostics/targets.js';
import { placeholdersOf } from '../diagnostics/templating.js';
import { type CelScope, checkExpression } from './cel.js';
import { Diagnostic, Hypothesis, Remediation, Runbook, Trigger } from './runbook.schema.js';

/** A runbook as loaded: the definition, where it came from, and the hash stored with every execution. */
export interface LoadedRunbook {
  runbook: Runbook;
  file: string;
  /** sha256 of the file's bytes: an execution records exactly which text it ran */
  hash: string;
}

/** One thing wrong with a runbook file, located: `runbooks/db.yml:12:7 diagnostics[0].config.sql: …`. */
export interface RunbookProblem {
  file: string;
  line: number;
  column: number;
  /** field path inside the document, e.g. `decision[1].when` */
  path: string;
  message: string;
}

export function formatProblem(p: RunbookProblem): string {
  return `${p.file}:${p.line}:${p.column} ${p.path || '(document)'}: ${p.message}`;
}

export interface LoadOptions {
  collectors: ReadonlyMap<string, AnyCollector>;
  targets: Targets;
  /**
   * remediation executors by action: each step's config is checked against its executor's schema and forbidden
   * shapes when the runbook loads (and again before it runs). Omitted: configs are not checked (tools that only read
   * diagnostics).
   */
  executors?: ReadonlyMap<string, ActionConfigChecker>;
}

/** The part of a remediation executor the loader needs (the runbook module does not depend on remediation). */
export interface ActionConfigChecker {
  config: {
    safeParse(
      input: unknown,
    ):
      | { success: true; data: unknown }
      | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } };
  };
  check?(config: never, targets: Targets): { path: (string | number)[]; message: string }[];
}

/** the longest a diagnostic may take; milliseconds (5 minutes) */
export const MAX_DIAGNOSTIC_TIMEOUT_MS = 5 * 60_000;

type Path = (string | number)[];

export function formatPath(path: Path): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${part}` : part;
  return out;
}

/** Validates one runbook document; returns the runbook or every problem found, each with its line. */
export function parseRunbook(
  text: string,
  file: string,
  opts: LoadOptions,
): { runbook: LoadedRunbook | null; problems: RunbookProblem[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problems: RunbookProblem[] = [];
  const at = (path: Path, message: string) => problems.push(locate(doc, lineCounter, file, path, message));
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = lineCounter.linePos(e.pos[0]);
      problems.push({
        file,
        line: pos.line,
        column: pos.col,
        path: '',
        message: e.message.split('\n')[0] ?? e.message,
      });
    }
    return { runbook: null, problems };
  }
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    // an alias to a missing anchor, or an alias bomb past yaml's maxAliasCount
    problems.push({ file, line: 1, column: 1, path: '', message: (err as Error).message });
    return { runbook: null, problems };
  }
  const parsed = Runbook.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) at(issue.path as Path, issue.message);
    // Every problem at once: the entries that are well-formed on their own are still checked (CEL, configs, ids).
    const seen = new Set(problems.map((p) => `${p.path}\0${p.message}`));
    checkSemantics(partialRunbook(raw), opts, (path, message) => {
      if (!seen.has(`${formatPath(path)}\0${message}`)) at(path, message);
    });
    return { runbook: null, problems };
  }
  const runbook = parsed.data;
  checkSemantics(fullRunbook(runbook), opts, at);
  if (problems.length > 0) return { runbook: null, problems };
  const hash = createHash('sha256').update(text).digest('hex');
  return { runbook: { runbook, file, hash }, problems };
}

/**
 * What the semantic checks look at: each section's entries by their index in the file (undefined where the entry
 * itself is malformed, already reported) and the ids the document names, so a malformed entry's id is not also
 * reported as missing.
 */
interface CheckedRunbook {
  triggers: (Trigger | undefined)[];
  diagnostics: (Diagnostic | undefined)[];
  decision: (Hypothesis | undefined)[];
  remediations: (Remediation | undefined)[];
  diagnosticIds: string[];
  remediationIds: string[];
}

function fullRunbook(r: Runbook): CheckedRunbook {
  return {
    triggers: r.triggers,
    diagnostics: r.diagnostics,
    decision: r.decision,
    remediations: r.remediations,
    diagnosticIds: r.diagnostics.map((d) => d.id),
    remediationIds: r.remediations.map((x) => x.id),
  };
}

function partialRunbook(raw: unknown): CheckedRunbook {
  const doc = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  const entries = <T>(value: unknown, schema: z.ZodType<T>): (T | undefined)[] =>
    Array.isArray(value) ? value.map((item) => schema.safeParse(item).data) : [];
  const ids = (value: unknown): string[] =>
    Array.isArray(value)
      ? value.flatMap((item) =>
          typeof item?.id === 'string' && /^[a-z][a-z0-9_]*$/.test(item.id) ? [item.id] : [],
        )
      : [];
  return {
    triggers: entries(doc.triggers, Trigger),
    diagnostics: entries(doc.diagnostics, Diagnostic),
    decision: entries(doc.decision, Hypothesis),
    remediations: entries(doc.remediations, Remediation),
    diagnosticIds: ids(doc.diagnostics),
    remediationIds: ids(doc.remediations),
  };
}

function checkSemantics(
  runbook: CheckedRunbook,
  opts: LoadOptions,
  at: (path: Path, message: string) => void,
): void {
  const unique = (kind: 'diagnostics' | 'decision' | 'remediations', ids: (string | undefined)[]) => {
    const seen = new Set<string>();
    ids.forEach((id, i) => {
      if (id === undefined) return;
      if (seen.has(id)) at([kind, i, 'id'], `duplicate id "${id}"`);
      seen.add(id);
    });
  };
  unique(
    'diagnostics',
    runbook.diagnostics.map((d) => d?.id),
  );
  unique(
    'decision',
    runbook.decision.map((h) => h?.id),
  );
  unique(
    'remediations',
    runbook.remediations.map((r) => r?.id),
  );

  runbook.triggers.forEach((trigger, i) => {
    if (!trigger) return;
    const matchers: [Path, string][] = [];
    if ('alert' in trigger) matchers.push([['triggers', i, 'alert'], trigger.alert]);
    if ('labels' in trigger) {
      for (const [k, v] of Object.entries(trigger.labels)) matchers.push([['triggers', i, 'labels', k], v]);
    }
    for (const [path, m] of matchers) {
      if (!m.startsWith('~')) continue;
      try {
        new RegExp(m.slice(1));
      } catch (err) {
        at(path, `invalid regular expression: ${(err as Error).message}`);
      }
    }
    if ('metric' in trigger && trigger.above === undefined && trigger.below === undefined) {
      at(['triggers', i], 'a metric trigger needs `above` or `below`');
    }
  });

  const diagnosticIds = runbook.diagnosticIds;
  runbook.diagnostics.forEach((step, i) => {
    if (!step) return;
    const timeoutMs = parseDuration(step.timeout) ?? 0;
    if (timeoutMs > MAX_DIAGNOSTIC_TIMEOUT_MS) at(['diagnostics', i, 'timeout'], 'at most 5m');
    const collector = opts.collectors.get(step.type);
    if (!collector) {
      at(
        ['diagnostics', i, 'type'],
        `unknown diagnostic type "${step.type}": expected one of ${[...opts.collectors.keys()].join(', ')}`,
      );
      return;
    }
    const config = collector.config.safeParse(step.config);
    if (!config.success) {
      for (const issue of config.error.issues)
        at(['diagnostics', i, 'config', ...(issue.path as Path)], issue.message);
    } else {
      for (const p of collector.check?.(config.data, opts.targets) ?? [])
        at(['diagnostics', i, 'config', ...p.path], p.message);
    }
    checkPlaceholders(step.config, ['diagnostics', i, 'config'], at);
    const scope: CelScope = {
      kind: 'interpret',
      valueType: step.interpret.value ? 'dyn' : collector.valueType,
    };
    if (step.interpret.value) {
      const problem = checkExpression(
        step.interpret.value,
        { kind: 'interpret', valueType: collector.valueType },
        'any',
      );
      if (problem) at(['diagnostics', i, 'interpret', 'value'], problem);
    }
    for (const level of ['critical', 'warning'] as const) {
      const expression = step.interpret[level];
      if (!expression) continue;
      const problem = checkExpression(expression, scope);
      if (problem) at(['diagnostics', i, 'interpret', level], problem);
    }
  });

  const decisionScope: CelScope = { kind: 'decision', diagnosticIds };
  const remediationIds = new Set(runbook.remediationIds);
  runbook.decision.forEach((h, i) => {
    if (!h) return;
    const problem = checkExpression(h.when, decisionScope);
    if (problem) at(['decision', i, 'when'], problem);
    h.remediate.forEach((id, j) => {
      if (!remediationIds.has(id)) at(['decision', i, 'remediate', j], `no remediation has id "${id}"`);
    });
  });
  runbook.remediations.forEach((r, i) => {
    if (!r) return;
    checkPlaceholders(r.config, ['remediations', i, 'config'], at);
    const executor = opts.executors?.get(r.action);
    if (opts.executors && !executor)
      at(['remediations', i, 'action'], `no executor for ${r.action} in this build`);
    if (executor) {
      const config = executor.config.safeParse(r.config);
      if (!config.success) {
        for (const issue of config.error.issues)
          at(['remediations', i, 'config', ...(issue.path as Path)], issue.message);
      } else {
        for (const p of executor.check?.(config.data as never, opts.targets) ?? [])
          at(['remediations', i, 'config', ...p.path], p.message);
      }
    }
    if (r.verify) {
      r.verify.diagnostics.forEach((id, j) => {
        if (!diagnosticIds.includes(id))
          at(['remediations', i, 'verify', 'diagnostics', j], `no diagnostic has id "${id}"`);
      });
      const problem = checkExpression(r.verify.expect, decisionScope);
      if (problem) at(['remediations', i, 'verify', 'expect'], problem);
    }
    if (r.stopIf) {
      const problem = checkExpression(r.stopIf, decisionScope);
      if (problem) at(['remediations', i, 'stopIf'], problem);
    }
  });
}

function checkPlaceholders(value: unknown, path: Path, at: (path: Path, message: string) => void): void {
  if (typeof value === 'string') {
    for (const p of placeholdersOf(value)) {
      if (!p.valid)
        at(path, `placeholder {{${p.name}}} is not one of labels.*, annotations.*, incident.*, service.*`);
    }
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => {
      checkPlaceholders(v, [...path, i], at);
    });
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) checkPlaceholders(v, [...path, k], at);
  }
}

/** The line of the deepest node of `path` that exists (a missing field points at its parent). */
function locate(doc: Document, lc: LineCounter, file: string, path: Path, message: string): RunbookProblem {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) {
      // for a key's value, point at the key when the value is a collection (its range starts on the next line)
      const pos = lc.linePos(node.range[0]);
      return { file, line: pos.line, column: pos.col, path: formatPath(path), message };
    }
  }
  return { file, line: 1, column: 1, path: formatPath(path), message };
}

/** The runbook files of a directory (`*.yml`, `*.yaml`, recursively), or the given files. */
export async function runbookFiles(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const p of paths) {
    const s = await stat(p);
    if (s.isDirectory()) {
      const entries = await readdir(p, { recursive: true, withFileTypes: true });
      for (const e of entries) {
        if (e.isFile() && /\.ya?ml$/.test(e.name)) files.push(join(e.parentPath, e.name));
      }
    } else {
      files.push(p);
    }
  }
  return files.sort();
}

/**
 * Loads and validates every runbook under `paths`; also checks across files (unique ids, at most one default).
 * Returns what is valid and every problem; the caller decides whether a problem stops it.
 */
export async function loadRunbooks(
  paths: string[],
  opts: LoadOptions,
): Promise<{ runbooks: LoadedRunbook[]; problems: RunbookProblem[] }> {
  const runbooks: LoadedRunbook[] = [];
  const problems: RunbookProblem[] = [];
  for (const file of await runbookFiles(paths)) {
    const shown = relative(process.cwd(), file) || file;
    const result = parseRunbook(await readFile(file, 'utf8'), shown, opts);
    problems.push(...result.problems);
    if (result.runbook) runbooks.push(result.runbook);
  }
  const byId = new Map<string, LoadedRunbook>();
  const valid: LoadedRunbook[] = [];
  for (const loaded of runbooks) {
    const first = byId.get(loaded.runbook.id);
    if (first) {
      problems.push({
        file: loaded.file,
        line: 1,
        column: 1,
        path: 'id',
        message: `duplicate runbook id "${loaded.runbook.id}" (also in ${first.file})`,
      });
      continue;
    }
    byId.set(loaded.runbook.id, loaded);
    valid.push(loaded);
  }
  const defaults = valid.filter((r) => r.runbook.default);
  for (const extra of defaults.slice(1)) {
    problems.push({
      file: extra.file,
      line: 1,
      column: 1,
      path: 'default',
      message: `only one runbook may be the default (already ${defaults[0]?.runbook.id})`,
    });
  }
  return { runbooks: valid.filter((r) => !r.runbook.default || r === defaults[0]), problems };
}
