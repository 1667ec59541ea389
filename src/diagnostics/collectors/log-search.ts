import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { z } from 'zod';
import type { CollectContext, Collector, ConfigProblem } from '../collector.js';
import { durationField, parseDuration } from '../duration.js';
import { readBodyCapped } from '../read-body.js';
import { redactSecrets } from '../redact.js';
import type { Targets } from '../targets.js';
import { escapeQueryString, escapeRegExp, regExpTemplateProblem, renderTemplate } from '../templating.js';

/** 7 days; the furthest back a search may look */
const MAX_WINDOW_MS = 7 * 86_400_000;
/** bytes read from the end of each file; 8 MiB */
const MAX_TAIL_BYTES = 8 * 1024 * 1024;
/** files searched per step, the most recently modified */
const MAX_FILES = 50;
/** characters of a line the patterns see; a longer line is matched on its start (bounds regex time) */
const MAX_MATCH_CHARS = 64 * 1024;
/** characters kept of a sample line */
const MAX_SAMPLE_CHARS = 500;
/** lines Loki returns per pattern; a pattern that hits it has a count that is a lower bound */
const LOKI_LIMIT = 5_000;
/** bytes of a Loki answer read before giving up; 32 MiB */
const MAX_LOKI_BODY_BYTES = 32 * 1024 * 1024;
const READ_CHUNK_BYTES = 64 * 1024;

const Duration = durationField({ minMs: 1_000, maxMs: MAX_WINDOW_MS, example: '"15m", "1h" or "1h30m"' });

export const LogSearchConfig = z
  .strictObject({
    /** where the lines come from; default file */
    source: z.enum(['file', 'loki']).default('file'),
    /** file source: the name of a `logs` entry of the targets file */
    logs: z.string().min(1).optional(),
    /** loki source: a LogQL stream selector, e.g. `{service="{{labels.service}}"}`; placeholders escaped for a quoted string */
    query: z.string().min(1).max(5_000).optional(),
    /**
     * name → regular expression; 1 to 20. A line counts for every pattern it matches. Placeholders match their value
     * literally. The Loki source runs them as RE2 line filters, so keep to syntax both engines share.
     */
    patterns: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, { error: 'expected a name like oom or http_5xx' }),
        z.string().min(1).max(1_000),
      )
      .superRefine((patterns, ctx) => {
        const count = Object.keys(patterns).length;
        if (count < 1 || count > 20) ctx.addIssue({ code: 'custom', message: 'expected 1 to 20 patterns' });
        for (const [name, source] of Object.entries(patterns)) {
          const problem = regExpTemplateProblem(source);
          if (problem)
            ctx.addIssue({
              code: 'custom',
              path: [name],
              message: `not a valid regular expression: ${problem}`,
            });
        }
      }),
    /** how far back from now lines count; default "15m", at most "7d" */
    window: Duration.default('15m'),
    /** sample lines kept per pattern, the most recent; default 3, at most 20 */
    samples: z.number().int().min(0).max(20).default(3),
  })
  .superRefine((c, ctx) => {
    if (c.source === 'file' && c.logs === undefined) {
      ctx.addIssue({ code: 'custom', path: ['logs'], message: 'a file search names a logs target' });
    }
    if (c.source === 'file' && c.query !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['query'],
        message: 'query is for source: loki; a file search uses logs',
      });
    }
    if (c.source === 'loki' && c.query === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['query'],
        message: 'a loki search needs a LogQL selector in query',
      });
    }
    if (c.source === 'loki' && c.logs !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['logs'],
        message: 'logs is for source: file; a loki search uses query',
      });
    }
  });
export type LogSearchConfig = z.infer<typeof LogSearchConfig>;

/** Masks obvious secrets of a log line, then clips it; exported for tests of the redaction itself. */
export function redactLine(line: string): string {
  const text = redactSecrets(line);
  return text.length > MAX_SAMPLE_CHARS ? `${text.slice(0, MAX_SAMPLE_CHARS - 1)}…` : text;
}

// --- timestamps -------------------------------------------------------------------------------------------------

const ISO_AT_START =
  /^\[?(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9}))?\s?(Z|[+-]\d{2}(?::?\d{2})?)?(?![\d:])/;
// A regex, not JSON.parse: it is run on every line of up to 8 MiB per file.
const JSON_TIME = /"(?:time|timestamp|ts)"\s*:\s*(?:"([^"]{1,64})"|(-?\d+(?:\.\d+)?))/;

/** An ISO-8601 date-time → epoch ms; without an offset it is local time (the host that wrote the file). */
function parseIso(text: string): number | null {
  const m = ISO_AT_START.exec(text);
  if (!m) return null;
  const [, date, time, fraction, zone] = m;
  let offset = zone ?? '';
  if (/^[+-]\d{2}$/.test(offset)) offset += ':00';
  else if (/^[+-]\d{4}$/.test(offset)) offset = `${offset.slice(0, 3)}:${offset.slice(3)}`;
  const ms = Date.parse(
    `${date}T${time}${fraction ? `.${fraction.slice(0, 3).padEnd(3, '0')}` : ''}${offset}`,
  );
  return Number.isNaN(ms) ? null : ms;
}

/** Epoch seconds, milliseconds, microseconds or nanoseconds → ms, told apart by magnitude. */
function epochMs(n: number): number {
  const abs = Math.abs(n);
  if (abs >= 1e17) return n / 1e6;
  if (abs >= 1e14) return n / 1e3;
  if (abs >= 1e11) return n;
  return n * 1_000;
}

/** The time a line carries: an ISO-8601 date-time at its start, or a JSON `time`/`timestamp`/`ts` field. */
function lineTime(line: string): number | null {
  if (line.startsWith('{')) {
    const m = JSON_TIME.exec(line);
    if (m) {
      if (m[1] !== undefined)
        return parseIso(m[1]) ?? (/^\d+(\.\d+)?$/.test(m[1]) ? epochMs(Number(m[1])) : null);
      if (m[2] !== undefined) return epochMs(Number(m[2]));
    }
  }
  return parseIso(line);
}

// --- shared -----------------------------------------------------------------------------------------------------

interface Tally {
  counts: Record<string, number>;
  /** per pattern, the most recent lines, oldest first, not yet redacted */
  samples: Record<string, string[]>;
  /** lines matching at least one pattern */
  matched: number;
  scannedLines: number;
}

function newTally(names: string[]): Tally {
  return {
    counts: Object.fromEntries(names.map((n) => [n, 0])),
    samples: Object.fromEntries(names.map((n) => [n, []])),
    matched: 0,
    scannedLines: 0,
  };
}

function keepSample(list: string[], line: string, max: number): void {
  if (max === 0) return;
  list.push(line.length > MAX_MATCH_CHARS ? line.slice(0, MAX_MATCH_CHARS) : line);
  if (list.length > max) list.shift();
}

function timedOutError(ctx: CollectContext, what: string): Error {
  return new Error(`timed out after ${ctx.timeoutMs} ms ${what}`);
}

/** Rejects as soon as `signal` aborts; `work` checks the signal itself and stops at its next step. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal, timedOut: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      reject(timedOut());
      return;
    }
    const onAbort = () => reject(timedOut());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(signal.aborted ? timedOut() : err);
      },
    );
  });
}

// --- file source ------------------------------------------------------------------------------------------------

interface LogFile {
  path: string;
  mtimeMs: number;
}

/** A file as `result.files` shows it. */
interface FileView {
  path: string;
  scannedLines: number;
  /** only the last 8 MiB were read */
  truncated: boolean;
  /** false: not written during the window, so not read */
  modifiedInWindow: boolean;
}

function fsProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EACCES' || code === 'EPERM') return 'is not readable (permission denied)';
  return (err as Error).message;
}

/** The regular files of the target's paths; a directory contributes its regular files (not recursively). */
async function listLogFiles(paths: string[]): Promise<LogFile[]> {
  const files: LogFile[] = [];
  for (const path of paths) {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(path);
    } catch (err) {
      throw new Error(`log path ${path} ${fsProblem(err)}`);
    }
    if (info.isFile()) {
      files.push({ path, mtimeMs: info.mtimeMs });
    } else if (info.isDirectory()) {
      let names: string[];
      try {
        names = await readdir(path);
      } catch (err) {
        throw new Error(`log directory ${path} ${fsProblem(err)}`);
      }
      for (const name of names) {
        const full = join(path, name);
        // stat, not the dirent: /var/log/containers/* are symlinks to the files. Entries may vanish (rotation).
        const entry = await stat(full).catch(() => null);
        if (entry?.isFile()) files.push({ path: full, mtimeMs: entry.mtimeMs });
      }
    } else {
      // A FIFO or device would block the read forever.
      throw new Error(`log path ${path} is neither a regular file nor a directory`);
    }
  }
  return files;
}

/**
 * Calls `onLine` for each line of the file's last `maxBytes` (a line cut by the start is dropped). Returns whether
 * the file was longer than that.
 */
async function readTailLines(
  path: string,
  maxBytes: number,
  signal: AbortSignal,
  onLine: (line: string) => void,
): Promise<boolean> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new Error(`log file ${path} ${fsProblem(err)}`);
  }
  try {
    const { size } = await handle.stat();
    const start = Math.max(0, size - maxBytes);
    // From one byte before the tail: the first segment then ends at the first newline at or after `start`, and is
    // empty when a line begins exactly there.
    let position = start > 0 ? start - 1 : 0;
    let skipFirst = start > 0;
    const decoder = new StringDecoder('utf8');
    const buffer = Buffer.alloc(READ_CHUNK_BYTES);
    let carry = '';
    while (position < size) {
      if (signal.aborted) return start > 0;
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, size - position), position);
      if (bytesRead === 0) break;
      position += bytesRead;
      const lines = (carry + decoder.write(buffer.subarray(0, bytesRead))).split('\n');
      carry = lines.pop() ?? '';
      for (const line of lines) {
        if (skipFirst) {
          skipFirst = false;
          continue;
        }
        onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
      }
    }
    carry += decoder.end();
    if (carry !== '' && !skipFirst) onLine(carry);
    return start > 0;
  } finally {
    await handle.close();
  }
}

async function searchFiles(
  paths: string[],
  patterns: [string, RegExp][],
  config: LogSearchConfig,
  ctx: CollectContext,
  signal: AbortSignal,
): Promise<{ tally: Tally; files: FileView[]; fileCount: number }> {
  const end = ctx.now.getTime();
  const start = end - (parseDuration(config.window) as number);
  const found = await listLogFiles(paths);
  // Oldest first, so the samples kept last are the most recent.
  const files = found
    .sort((a, b) => b.mtimeMs - a.mtimeMs)
    .slice(0, MAX_FILES)
    .reverse();
  const tally = newTally(patterns.map(([name]) => name));
  const views: FileView[] = [];
  for (const file of files) {
    if (signal.aborted) break;
    const view: FileView = {
      path: file.path,
      scannedLines: 0,
      truncated: false,
      modifiedInWindow: file.mtimeMs >= start,
    };
    views.push(view);
    // Nothing written before the window can carry a time inside it.
    if (!view.modifiedInWindow) continue;
    // A line without a time (a stack trace's continuation) belongs to the timed line above it; before any, the
    // file's mtime (inside the window, see above) decides.
    let current: number | null = null;
    view.truncated = await readTailLines(file.path, MAX_TAIL_BYTES, signal, (line) => {
      view.scannedLines++;
      const time = lineTime(line);
      if (time !== null) current = time;
      if (current !== null && (current < start || current > end)) return;
      const text = line.length > MAX_MATCH_CHARS ? line.slice(0, MAX_MATCH_CHARS) : line;
      let matched = false;
      for (const [name, pattern] of patterns) {
        if (!pattern.test(text)) continue;
        matched = true;
        tally.counts[name] = (tally.counts[name] ?? 0) + 1;
        const list = tally.samples[name];
        if (list) keepSample(list, line, config.samples);
      }
      if (matched) tally.matched++;
    });
    tally.scannedLines += view.scannedLines;
  }
  return { tally, files: views, fileCount: found.length };
}

// --- loki source ------------------------------------------------------------------------------------------------

const LokiAnswer = z.object({
  status: z.string(),
  data: z.object({
    resultType: z.string(),
    result: z.array(z.unknown()),
  }),
});
const LokiStream = z.object({
  stream: z.record(z.string(), z.string()).default({}),
  // [ns as text, line], plus structured metadata on newer Lokis
  values: z.array(z.tuple([z.string(), z.string()]).rest(z.unknown())),
});

/** A Go double-quoted string literal (LogQL strings are unquoted with Go's rules). */
function goString(text: string): string {
  return `"${text.replace(/[\\"\n\r\t]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\\t' : `\\${c}`))}"`;
}

function firstLine(text: string): string {
  const line = text.trim().split('\n', 1)[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
}

/** Epoch ms → Loki nanoseconds as text (beyond Number's exact range). */
function toNs(ms: number): string {
  return (BigInt(Math.floor(ms)) * 1_000_000n).toString();
}

function compareNs(a: string, b: string): number {
  return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
}

/** Lines of the selector matching one pattern, newest first (at most LOKI_LIMIT). */
async function queryLoki(
  base: string,
  selector: string,
  name: string,
  pattern: string,
  range: { start: number; end: number },
  ctx: CollectContext,
  signal: AbortSignal,
): Promise<{ key: string; ns: string; line: string }[]> {
  const url = new URL('loki/api/v1/query_range', base.endsWith('/') ? base : `${base}/`);
  url.searchParams.set('query', `${selector} |~ ${goString(pattern)}`);
  url.searchParams.set('start', toNs(range.start));
  url.searchParams.set('end', toNs(range.end));
  url.searchParams.set('limit', String(LOKI_LIMIT));
  url.searchParams.set('direction', 'backward');
  const what = `pattern ${name}`;
  let status: number;
  let text: string;
  try {
    const res = await fetch(url, { signal, headers: { accept: 'application/json' } });
    status = res.status;
    text = await readBodyCapped(res.body, MAX_LOKI_BODY_BYTES, 'refuse');
  } catch (err) {
    if (signal.aborted) throw timedOutError(ctx, `querying Loki at ${url.host}`);
    const cause =
      err instanceof Error && err.cause instanceof Error ? err.cause.message : (err as Error).message;
    throw new Error(`could not query Loki at ${url.host} for ${what}: ${cause}`);
  }
  // Loki answers errors as text/plain ("parse error at line 1, col 5: ...").
  if (status < 200 || status > 299) {
    throw new Error(
      `Loki rejected the query for ${what} (HTTP ${status}): ${firstLine(text) || 'no reason given'}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(
      `Loki answered the query for ${what} with a body that is not JSON: ${firstLine(text) || '(empty)'}`,
    );
  }
  const answer = LokiAnswer.safeParse(json);
  if (!answer.success)
    throw new Error(`Loki answered the query for ${what} with JSON that is not a query result`);
  if (answer.data.status !== 'success')
    throw new Error(`Loki answered status "${answer.data.status}" for ${what}`);
  if (answer.data.data.resultType !== 'streams') {
    throw new Error(
      `Loki returned ${answer.data.data.resultType}, not log lines; query must be a log selector`,
    );
  }
  const lines: { key: string; ns: string; line: string }[] = [];
  for (const raw of answer.data.data.result) {
    const stream = LokiStream.safeParse(raw);
    if (!stream.success) throw new Error(`Loki answered the query for ${what} with a malformed stream`);
    const streamKey = JSON.stringify(Object.entries(stream.data.stream).sort(([a], [b]) => (a < b ? -1 : 1)));
    for (const [ns, line] of stream.data.values)
      lines.push({ key: `${ns}\u0000${streamKey}\u0000${line}`, ns, line });
  }
  return lines.sort((a, b) => compareNs(b.ns, a.ns));
}

async function searchLoki(
  selector: string,
  patterns: [string, string][],
  config: LogSearchConfig,
  ctx: CollectContext,
  signal: AbortSignal,
): Promise<{ tally: Tally; limitReached: string[] }> {
  if (!ctx.lokiUrl) throw new Error('LOKI_URL is not configured');
  const base = ctx.lokiUrl;
  const end = ctx.now.getTime();
  const range = { start: end - (parseDuration(config.window) as number), end };
  // One query per pattern, filtered by Loki (|~): only matching lines travel, and each count is exact up to the limit.
  const answers = await Promise.all(
    patterns.map(([name, pattern]) => queryLoki(base, selector, name, pattern, range, ctx, signal)),
  );
  const tally = newTally(patterns.map(([name]) => name));
  const distinct = new Set<string>();
  const limitReached: string[] = [];
  patterns.forEach(([name], i) => {
    const lines = answers[i] ?? [];
    tally.counts[name] = lines.length;
    tally.samples[name] = lines
      .slice(0, config.samples)
      .reverse()
      .map((l) => l.line);
    if (lines.length >= LOKI_LIMIT) limitReached.push(name);
    for (const l of lines) distinct.add(l.key);
  });
  tally.matched = distinct.size;
  tally.scannedLines = distinct.size;
  return { tally, limitReached };
}

// --- collector --------------------------------------------------------------------------------------------------

function summarize(config: LogSearchConfig, tally: Tally, where: string, limitReached: string[]): string {
  const counts = Object.entries(tally.counts)
    .map(([name, n]) => `${name} ${limitReached.includes(name) ? '≥' : ''}${n}`)
    .join(', ');
  return `${tally.matched} matching lines in the last ${config.window} (${counts}); ${where}`;
}

/**
 * Counts log lines matching each pattern over the last `window`, from files of the targets' `logs` or from Loki.
 * `value` is the number of lines matching at least one pattern; `result.counts` has each pattern's count and
 * `result.samples` the most recent lines (secrets masked).
 */
export const logSearchCollector: Collector<LogSearchConfig> = {
  type: 'log_search',
  config: LogSearchConfig,
  valueType: 'double',
  check(config, targets: Targets): ConfigProblem[] {
    if (config.source !== 'file' || config.logs === undefined || config.logs in targets.logs) return [];
    const known = Object.keys(targets.logs);
    return [
      {
        path: ['logs'],
        message: `no logs target "${config.logs}" in the targets file (${known.length ? `known: ${known.join(', ')}` : 'it has none'})`,
      },
    ];
  },
  render(config, vars) {
    return {
      ...config,
      ...(config.query !== undefined ? { query: renderTemplate(config.query, vars, escapeQueryString) } : {}),
      patterns: Object.fromEntries(
        Object.entries(config.patterns).map(([name, source]) => [
          name,
          renderTemplate(source, vars, escapeRegExp),
        ]),
      ),
    };
  },
  async collect(config, ctx) {
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.timeoutMs)]);
    const sources = Object.entries(config.patterns);
    let tally: Tally;
    let where: string;
    const extra: Record<string, unknown> = {};
    let limitReached: string[] = [];
    if (config.source === 'loki') {
      if (config.query === undefined) throw new Error('log_search with source loki needs a query');
      const timedOut = () => timedOutError(ctx, 'querying Loki');
      ({ tally, limitReached } = await untilAborted(
        searchLoki(config.query, sources, config, ctx, signal),
        signal,
        timedOut,
      ));
      where = limitReached.length > 0 ? `Loki, ${LOKI_LIMIT}-line limit reached` : 'Loki';
      extra.limitReached = limitReached;
    } else {
      const target = config.logs !== undefined ? ctx.targets.logs[config.logs] : undefined;
      if (!target) throw new Error(`no logs target "${config.logs ?? ''}" in the targets file`);
      const patterns = sources.map(([name, source]): [string, RegExp] => {
        try {
          return [name, new RegExp(source)];
        } catch (err) {
          throw new Error(
            `log_search pattern ${name} is not a valid regular expression: ${(err as Error).message}`,
          );
        }
      });
      const timedOut = () => timedOutError(ctx, `searching logs "${config.logs}"`);
      const found = await untilAborted(
        searchFiles(target.paths, patterns, config, ctx, signal),
        signal,
        timedOut,
      );
      if (signal.aborted) throw timedOut();
      tally = found.tally;
      extra.files = found.files;
      const read = found.files.filter((f) => f.modifiedInWindow).length;
      where =
        found.fileCount === 0
          ? `no files in logs "${config.logs}"`
          : `${tally.scannedLines} lines scanned in ${read} of ${found.fileCount} files`;
    }
    const samples = Object.fromEntries(
      Object.entries(tally.samples).map(([name, lines]) => [name, lines.map(redactLine)]),
    );
    return {
      value: tally.matched,
      result: { counts: tally.counts, samples, scannedLines: tally.scannedLines, ...extra },
      summary: summarize(config, tally, where, limitReached),
    };
  },
};
