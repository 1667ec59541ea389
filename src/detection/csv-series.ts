import { readFile, writeFile } from 'node:fs/promises';

/**
 * `timestamp,value` series as CSV files, the format of NAB's data and of `ai-sre detect`.
 *
 * Reading: the first line is a header that names a `timestamp` and a `value` column (case-insensitive, any order);
 * other columns are allowed and ignored, so a scored file (`timestamp,value,anomaly_score`) reads back as a series.
 * Fields are split on commas; quoting is not supported (a quoted value is reported as not a number). LF or CRLF line
 * endings, a leading UTF-8 BOM and empty lines at the end are accepted. Timestamps must not go backwards, because the
 * detector reads a series in order. Any other problem is a {@link SeriesCsvError} naming the file and the 1-based line.
 *
 * Writing: `timestamp,value,anomaly_score`, LF line endings, each row's timestamp and value text exactly as read.
 */

/** One data row, with its original text kept so that output reproduces it byte for byte. */
export interface SeriesRow {
  /** 1-based line number in the file */
  line: number;
  timestampText: string;
  valueText: string;
  /** epoch milliseconds, UTC */
  timestampMs: number;
  value: number;
}

/** A malformed file or row; the message reads `<file>:<line>: <what is wrong>`. */
export class SeriesCsvError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly problem: string,
  ) {
    super(`${file}:${line}: ${problem}`);
    this.name = 'SeriesCsvError';
  }
}

/** Reads a whole series file (they are small: NAB's largest is about 1 MB). */
export async function readSeriesCsv(file: string): Promise<SeriesRow[]> {
  return parseSeriesCsv(await readFile(file, 'utf8'), file);
}

/** Parses CSV text; `file` only names the source in error messages. */
export function parseSeriesCsv(text: string, file: string): SeriesRow[] {
  const lines = text.split('\n');
  let last = lines.length;
  while (last > 0 && stripCr(lines[last - 1] ?? '') === '') last--;
  if (last === 0)
    throw new SeriesCsvError(file, 1, 'empty file: expected a header naming timestamp and value');

  const header = stripCr(lines[0] ?? '')
    .replace(/^\uFEFF/, '')
    .split(',')
    .map((name) => name.trim().toLowerCase());
  const timestampColumn = columnOf(header, 'timestamp', file);
  const valueColumn = columnOf(header, 'value', file);

  const rows: SeriesRow[] = [];
  let previousMs = Number.NEGATIVE_INFINITY;
  for (let i = 1; i < last; i++) {
    const line = i + 1;
    const fields = stripCr(lines[i] ?? '').split(',');
    if (fields.length === 1 && fields[0] === '') throw new SeriesCsvError(file, line, 'empty line');
    if (fields.length !== header.length)
      throw new SeriesCsvError(
        file,
        line,
        `expected ${header.length} fields like the header, got ${fields.length}`,
      );
    const timestampText = fields[timestampColumn] ?? '';
    const valueText = fields[valueColumn] ?? '';
    const timestampMs = parseTimestamp(timestampText.trim());
    if (timestampMs === undefined)
      throw new SeriesCsvError(
        file,
        line,
        `timestamp "${timestampText}" is not "YYYY-MM-DD HH:MM:SS" (UTC), ISO-8601 or epoch seconds/milliseconds`,
      );
    if (timestampMs < previousMs)
      throw new SeriesCsvError(file, line, `timestamp "${timestampText}" is earlier than the previous row's`);
    const value = parseValue(valueText.trim());
    if (value === undefined)
      throw new SeriesCsvError(file, line, `value "${valueText}" is not a finite number`);
    rows.push({ line, timestampText, valueText, timestampMs, value });
    previousMs = timestampMs;
  }
  return rows;
}

/** `timestamp,value,anomaly_score` text: one line per row, scores in full precision (shortest exact form). */
export function formatScoredCsv(rows: readonly SeriesRow[], scores: ArrayLike<number>): string {
  if (scores.length !== rows.length)
    throw new Error(`formatScoredCsv: ${rows.length} rows but ${scores.length} scores`);
  const out = ['timestamp,value,anomaly_score'];
  rows.forEach((row, i) => {
    out.push(`${row.timestampText},${row.valueText},${scores[i]}`);
  });
  return `${out.join('\n')}\n`;
}

export async function writeScoredCsv(
  file: string,
  rows: readonly SeriesRow[],
  scores: ArrayLike<number>,
): Promise<void> {
  await writeFile(file, formatScoredCsv(rows, scores));
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

function columnOf(header: string[], name: string, file: string): number {
  const index = header.indexOf(name);
  if (index < 0)
    throw new SeriesCsvError(file, 1, `header has no "${name}" column (got "${header.join(',')}")`);
  if (header.indexOf(name, index + 1) >= 0) throw new SeriesCsvError(file, 1, `header names "${name}" twice`);
  return index;
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A decimal number; unlike Number(), refuses "", "0x1F", "Infinity" and "NaN". */
function parseValue(text: string): number | undefined {
  if (!DECIMAL.test(text)) return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/** date, optional time (`T` or a space; seconds and fraction optional), optional zone (`Z`, `+hh:mm`, `+hhmm`) */
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;
const EPOCH = /^\d+(\.\d+)?$/;
/** epoch numbers at or above this are milliseconds (1e11 s is the year 5138; 1e11 ms is March 1973) */
const EPOCH_MS_FROM = 1e11;

/**
 * Epoch milliseconds of NAB's `2014-04-01 00:00:00` (UTC, optional fraction), ISO-8601 (no zone means UTC), or an
 * epoch number (seconds below 1e11, milliseconds from there). Fractions finer than a millisecond are truncated.
 */
export function parseTimestamp(text: string): number | undefined {
  if (EPOCH.test(text)) {
    const n = Number(text);
    return Math.trunc(n < EPOCH_MS_FROM ? n * 1000 : n);
  }
  const m = DATE_TIME.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour = 0, minute = 0, second = 0] = m.slice(1, 7).map((part) => Number(part ?? 0));
  if (year === undefined || month === undefined || day === undefined) return undefined;
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const millis = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  const zone = m[8];
  let offsetMinutes = 0;
  if (zone && zone.toUpperCase() !== 'Z') {
    const digits = zone.replace(':', '');
    const hours = Number(digits.slice(1, 3));
    const minutes = Number(digits.slice(3, 5));
    if (hours > 23 || minutes > 59) return undefined;
    offsetMinutes = (digits.startsWith('-') ? -1 : 1) * (hours * 60 + minutes);
  }
  return Date.UTC(year, month - 1, day, hour, minute, second, millis) - offsetMinutes * 60_000;
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}
