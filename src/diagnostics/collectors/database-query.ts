import pg from 'pg';
import { z } from 'zod';
import type { Collector, ConfigProblem } from '../collector.js';
import type { Targets } from '../targets.js';
import { lookupVar, PLACEHOLDER, placeholdersOf, TemplateError } from '../templating.js';

export const DatabaseQueryConfig = z.strictObject({
  /** a name in the targets file's `databases` */
  target: z.string().min(1),
  /**
   * one read-only statement; `{{labels.x}}` placeholders become bind parameters ($1, $2, …), never SQL text, so each
   * must stand alone outside quotes: `WHERE datname = {{labels.datname}}`
   */
  sql: z.string().min(1),
  /** the column of the first row that becomes `value`; default the first column */
  valueColumn: z.string().min(1).optional(),
  /** filled by render with the placeholders' values, in $n order; runbooks never write it */
  params: z.array(z.string()).optional(),
});
export type DatabaseQueryConfig = z.infer<typeof DatabaseQueryConfig>;

/** A cell as plain JSON; strings and nested values are cut so one wide row cannot bloat the stored result. */
type Cell = number | string | boolean | null | Cell[] | { [key: string]: Cell };

const MAX_CELL_CHARS = 1_000;
/** pool size per target URL: diagnostics are a few short queries, never a workload */
const POOL_MAX = 2;
/** milliseconds an unused connection stays open */
const POOL_IDLE_MS = 30_000;
/** milliseconds to open a connection; the step's timeout usually cuts it first */
const CONNECT_TIMEOUT_MS = 10_000;

// ---------------------------------------------------------------------------------------------------------------
// SQL lexing: just enough of PostgreSQL's lexical rules to know whether a character is code, or inside a string,
// quoted identifier or comment, so placeholders and `;` are judged where they really are.

type SegmentKind = 'code' | 'string' | 'identifier' | 'comment';
interface Segment {
  kind: SegmentKind;
  start: number;
  end: number;
}

const IDENT_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;

function segmentSql(sql: string): Segment[] {
  const segments: Segment[] = [];
  let codeStart = 0;
  let i = 0;
  const push = (kind: SegmentKind, start: number, end: number) => {
    if (codeStart < start) segments.push({ kind: 'code', start: codeStart, end: start });
    segments.push({ kind, start, end });
    codeStart = end;
  };
  while (i < sql.length) {
    const c = sql[i];
    const next = sql[i + 1];
    const prev = sql[i - 1] ?? '';
    if (c === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      const end = eol === -1 ? sql.length : eol + 1;
      push('comment', i, end);
      i = end;
    } else if (c === '/' && next === '*') {
      // block comments nest in PostgreSQL
      let depth = 1;
      let j = i + 2;
      while (j < sql.length && depth > 0) {
        if (sql[j] === '/' && sql[j + 1] === '*') {
          depth++;
          j += 2;
        } else if (sql[j] === '*' && sql[j + 1] === '/') {
          depth--;
          j += 2;
        } else j++;
      }
      push('comment', i, j);
      i = j;
    } else if (c === "'") {
      // E'…' strings take backslash escapes; standard strings only double the quote
      const backslashes = (prev === 'E' || prev === 'e') && !IDENT_CHAR.test(sql[i - 2] ?? '');
      let j = i + 1;
      while (j < sql.length) {
        if (backslashes && sql[j] === '\\') j += 2;
        else if (sql[j] === "'" && sql[j + 1] === "'") j += 2;
        else if (sql[j] === "'") break;
        else j++;
      }
      push('string', i, Math.min(j + 1, sql.length));
      i = j + 1;
    } else if (c === '"') {
      let j = i + 1;
      while (j < sql.length && !(sql[j] === '"' && sql[j + 1] !== '"')) j += sql[j] === '"' ? 2 : 1;
      push('identifier', i, Math.min(j + 1, sql.length));
      i = j + 1;
    } else if (c === '$' && !IDENT_CHAR.test(prev)) {
      const tag = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        const end = close === -1 ? sql.length : close + tag[0].length;
        push('string', i, end);
        i = end;
      } else i++;
    } else i++;
  }
  if (codeStart < sql.length) segments.push({ kind: 'code', start: codeStart, end: sql.length });
  return segments;
}

function kindAt(segments: Segment[], index: number): SegmentKind {
  return segments.find((s) => index >= s.start && index < s.end)?.kind ?? 'code';
}

/** The SQL with strings, quoted identifiers and comments blanked, for keyword and function checks. */
function codeOnly(sql: string, segments: Segment[]): string {
  return segments.map((s) => (s.kind === 'code' ? sql.slice(s.start, s.end) : ' ')).join('');
}

/** columns of the first row shown in the summary, the value's first: "used_pct 97.9, used 95, usable 97" */
const SUMMARY_COLUMNS = 4;

function describeRow(columns: string[], row: unknown[], valueIndex: number): string {
  const order = [valueIndex, ...columns.map((_, i) => i).filter((i) => i !== valueIndex)].slice(
    0,
    SUMMARY_COLUMNS,
  );
  const parts = order.map((i) => `${columns[i]} ${formatValue(toValue(toCell(row[i])))}`);
  return columns.length > SUMMARY_COLUMNS ? `${parts.join(', ')}, …` : parts.join(', ');
}

const WHERE: Record<Exclude<SegmentKind, 'code'>, string> = {
  string: 'a quoted SQL literal',
  identifier: 'a quoted identifier',
  comment: 'a comment',
};

/** Why a placeholder at `index` (of length `length`) cannot become a bind parameter; null when it can. */
function placeholderProblem(sql: string, segments: Segment[], index: number, length: number): string | null {
  const kind = kindAt(segments, index);
  if (kind !== 'code') {
    return `is inside ${WHERE[kind]}: it becomes a bind parameter, which must stand alone (write {{…}} without quotes; Postgres supplies the value as a literal)`;
  }
  const before = sql[index - 1] ?? '';
  const after = sql[index + length] ?? '';
  if (IDENT_CHAR.test(before) || IDENT_CHAR.test(after)) {
    return 'is joined to other text: it becomes a bind parameter ($n), which must stand alone';
  }
  return null;
}

/** Statements that only read. EXPLAIN ANALYZE of a write is still refused by the READ ONLY transaction. */
const READ_KEYWORDS = new Set(['select', 'with', 'values', 'table', 'show', 'explain']);

/**
 * Functions with effects a READ ONLY transaction does not stop (they act on other sessions, the server, or hold
 * session-level locks past ROLLBACK on a pooled connection).
 */
const FORBIDDEN_FUNCTIONS =
  /\b(pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile|pg_promote|pg_switch_wal|pg_create_restore_point|pg_stat_reset\w*|pg_advisory_(?:unlock\w*|lock\w*)|pg_try_advisory_lock(?:_shared)?|pg_notify|pg_logical_emit_message|pg_(?:create|drop)_\w*replication_slot|pg_replication_origin_\w+|pg_file_write|pg_file_unlink|pg_file_rename|lo_import|lo_export|lo_unlink|dblink\w*)\s*\(/i;

/** Load-time problems of the SQL text alone (also used by render, so an unchecked config is refused too). */
function sqlProblems(sql: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const at = (message: string) => problems.push({ path: ['sql'], message });
  const segments = segmentSql(sql);
  const code = codeOnly(sql, segments);
  if (code.trim() === '' || /^[\s;]*$/.test(code)) {
    at('expected one SQL statement');
    return problems;
  }
  const lastSemicolon = code.search(/;[\s;]*$/);
  const body = lastSemicolon === -1 ? code : code.slice(0, lastSemicolon);
  if (body.includes(';')) {
    at('expected one statement: a ";" may only end the statement (split the queries into separate steps)');
  }
  const keyword = /[A-Za-z_]+/.exec(code)?.[0].toLowerCase() ?? '';
  if (!READ_KEYWORDS.has(keyword)) {
    at(
      `"${keyword.toUpperCase()}" is not a read: expected a statement starting with SELECT, WITH, VALUES, TABLE, SHOW or EXPLAIN`,
    );
  }
  const forbidden = FORBIDDEN_FUNCTIONS.exec(code);
  if (forbidden) {
    at(`calls ${forbidden[1]}(), which acts on the server even inside a READ ONLY transaction`);
  }
  const positional = /(^|[^A-Za-z0-9_$\u0080-\uffff])\$\d/.exec(code);
  if (positional) {
    at('uses a positional parameter ($1…): write a placeholder like {{labels.datname}}, render numbers them');
  }
  for (const m of sql.matchAll(PLACEHOLDER)) {
    const name = (m[1] ?? '').trim();
    const problem = placeholderProblem(sql, segments, m.index, m[0].length);
    if (problem) at(`placeholder {{${name}}} ${problem}`);
  }
  for (const p of placeholdersOf(sql)) {
    if (!p.valid)
      at(`placeholder {{${p.name}}} is not one of labels.*, annotations.*, incident.*, service.*`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Connections: one small pool per target URL, shared by every incident's diagnostics in this process.

const pools = new Map<string, pg.Pool>();

function poolFor(url: string): pg.Pool {
  let pool = pools.get(url);
  if (!pool) {
    pool = new pg.Pool({
      connectionString: url,
      max: POOL_MAX,
      idleTimeoutMillis: POOL_IDLE_MS,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      allowExitOnIdle: true,
      application_name: 'ai-sre-diagnostics',
    });
    // A target restarting must not crash the bot: an idle client's error only drops it from the pool.
    pool.on('error', () => {});
    pool.on('connect', (client) => client.on('error', () => {}));
    pools.set(url, pool);
  }
  return pool;
}

/** Closes every target connection (shutdown, tests). */
export async function closeDatabaseTargets(): Promise<void> {
  const open = [...pools.values()];
  pools.clear();
  await Promise.all(open.map((p) => p.end().catch(() => {})));
}

// int8 and numeric come back as strings by default; per query (not globally) they become JS numbers. A value a
// double cannot hold at all (NaN, Infinity) stays a string so the result remains JSON.
const NUMBER_TYPES = new Set<number>([pg.types.builtins.INT8, pg.types.builtins.NUMERIC]);
function parseNumber(text: string): number | string {
  const n = Number(text);
  return Number.isFinite(n) ? n : text;
}
const QUERY_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    NUMBER_TYPES.has(oid) && format !== 'binary'
      ? parseNumber
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * Fetches at most `limit` rows: Postgres is asked for `limit` rows of the portal, and instead of asking for the
 * next page (pg's default when a portal suspends) the query ends there, so a huge result never crosses the wire.
 * With a row limit pg flushes instead of syncing, so after an error from Postgres the query must sync itself (as
 * pg-cursor does) or the connection would wait forever for ReadyForQuery.
 */
class CappedQuery extends pg.Query {
  handlePortalSuspended(connection: { sync(): void }): void {
    connection.sync();
  }

  handleError(err: Error, connection: { sync(): void }): void {
    // only an ErrorResponse leaves the backend waiting for Sync; pg syncs itself for its client-side errors
    if (err instanceof pg.DatabaseError) connection.sync();
    (pg.Query.prototype as unknown as { handleError: (e: Error, c: unknown) => void }).handleError.call(
      this,
      err,
      connection,
    );
  }
}

interface QueryOutcome {
  rows: unknown[][];
  columns: string[];
}

function runCapped(
  client: pg.PoolClient,
  sql: string,
  params: string[],
  limit: number,
): Promise<QueryOutcome> {
  return new Promise((resolve, reject) => {
    const config = { text: sql, values: params, types: QUERY_TYPES, rowMode: 'array', rows: limit };
    const query = new CappedQuery(config, (err: Error | undefined, result: pg.ResultBuilder) => {
      if (err) reject(err);
      else resolve({ rows: result.rows as unknown[][], columns: result.fields.map((f) => f.name) });
    });
    client.query(query);
  });
}

function cut(text: string): string {
  return text.length > MAX_CELL_CHARS ? `${text.slice(0, MAX_CELL_CHARS)}…` : text;
}

function toCell(value: unknown): Cell {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') return cut(value);
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? String(value) : value.toISOString();
  if (Buffer.isBuffer(value)) return cut(`\\x${value.toString('hex')}`);
  if (Array.isArray(value)) return value.slice(0, 100).map(toCell);
  if (typeof value === 'object') {
    // intervals, points, jsonb objects: whatever JSON makes of them, bounded
    const json = JSON.stringify(value);
    return json.length > MAX_CELL_CHARS ? cut(json) : (JSON.parse(json) as Cell);
  }
  return cut(String(value));
}

function toValue(cell: Cell): number | string | boolean | null {
  if (cell === null || typeof cell !== 'object') return cell;
  return cut(JSON.stringify(cell));
}

class TimedOutError extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms} ms`);
    this.name = 'TimedOutError';
  }
}

/** Settles with `promise`, or rejects with TimedOutError as soon as `signal` aborts; `late` gets a value that came too late. */
function unlessAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  ms: number,
  late?: (value: T) => void,
): Promise<T> {
  if (signal.aborted) {
    promise.then(late, () => {});
    return Promise.reject(new TimedOutError(ms));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.then(late, () => {});
      reject(new TimedOutError(ms));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function describeError(target: string, err: unknown, statementTimeoutMs: number): Error {
  if (err instanceof TimedOutError) return err;
  // 57014 query_canceled: here only statement_timeout cancels (an abort destroys the connection instead)
  const message =
    (err as { code?: unknown }).code === '57014'
      ? `timed out after ${statementTimeoutMs} ms (statement_timeout)`
      : err instanceof Error
        ? err.message
        : String(err);
  return new Error(`database_query "${target}": ${message}`, { cause: err });
}

function formatValue(value: number | string | boolean | null): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  return String(value);
}

export const databaseQueryCollector: Collector<DatabaseQueryConfig> = {
  type: 'database_query',
  config: DatabaseQueryConfig,
  valueType: 'dyn',

  check(config: DatabaseQueryConfig, targets: Targets): ConfigProblem[] {
    const problems: ConfigProblem[] = [];
    if (!targets.databases[config.target]) {
      const known = Object.keys(targets.databases);
      problems.push({
        path: ['target'],
        message: `no database "${config.target}" in the targets file (known: ${known.length > 0 ? known.join(', ') : 'none'})`,
      });
    }
    if (config.params !== undefined) {
      problems.push({
        path: ['params'],
        message: 'params is filled from the placeholders in sql; do not write it',
      });
    }
    problems.push(...sqlProblems(config.sql));
    return problems;
  },

  render(config, vars) {
    const segments = segmentSql(config.sql);
    const numbers = new Map<string, number>();
    const params: string[] = [];
    const sql = config.sql.replace(PLACEHOLDER, (whole: string, raw: string, index: number) => {
      const name = raw.trim();
      const problem = placeholderProblem(config.sql, segments, index, whole.length);
      if (problem) throw new TemplateError(`{{${name}}} ${problem}`);
      let n = numbers.get(name);
      if (n === undefined) {
        params.push(lookupVar(vars, name));
        n = params.length;
        numbers.set(name, n);
      }
      return `$${n}`;
    });
    return { ...config, sql, params };
  },

  async collect(config, ctx) {
    const target = ctx.targets.databases[config.target];
    if (!target) throw new Error(`database_query: no database "${config.target}" in the targets file`);
    if (placeholdersOf(config.sql).length > 0) {
      throw new Error(`database_query "${config.target}": sql still has placeholders (render it first)`);
    }
    const statementTimeoutMs = Math.max(1, Math.floor(Math.min(target.statementTimeoutMs, ctx.timeoutMs)));
    // the step's signal, and our own bound in case the caller's timer is late
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.timeoutMs)]);
    const guard = <T>(p: Promise<T>, late?: (v: T) => void) => unlessAborted(p, signal, ctx.timeoutMs, late);

    let client: pg.PoolClient;
    try {
      client = await guard(poolFor(target.url).connect(), (c) => c.release());
    } catch (err) {
      if (err instanceof TimedOutError) throw err;
      throw new Error(
        `database_query "${config.target}": cannot connect: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }

    let outcome: QueryOutcome;
    try {
      await guard(client.query('BEGIN READ ONLY'));
      await guard(client.query(`SET LOCAL statement_timeout = ${statementTimeoutMs}`));
      outcome = await guard(runCapped(client, config.sql, config.params ?? [], target.maxRows + 1));
      await guard(client.query('ROLLBACK'));
      client.release();
    } catch (err) {
      if (err instanceof TimedOutError) {
        // the connection is mid-statement: destroy it rather than hand it to the next diagnostic
        client.release(err);
        throw err;
      }
      try {
        await guard(client.query('ROLLBACK'));
        client.release();
      } catch (rollbackErr) {
        client.release(rollbackErr instanceof Error ? rollbackErr : true);
        if (rollbackErr instanceof TimedOutError) throw rollbackErr;
      }
      throw describeError(config.target, err, statementTimeoutMs);
    }

    const truncated = outcome.rows.length > target.maxRows;
    const kept = outcome.rows.slice(0, target.maxRows);
    const { columns } = outcome;
    let valueIndex = 0;
    if (config.valueColumn !== undefined) {
      valueIndex = columns.indexOf(config.valueColumn);
      if (valueIndex === -1) {
        throw new Error(
          `database_query "${config.target}": column "${config.valueColumn}" is not in the result (columns: ${columns.join(', ') || 'none'})`,
        );
      }
    }
    const rows = kept.map((row) => {
      const object: Record<string, Cell> = {};
      // with duplicate column names (`SELECT 1, 1`) the first one wins, as it does for `value`
      columns.forEach((name, i) => {
        if (!(name in object)) object[name] = toCell(row[i]);
      });
      return object;
    });
    const first = kept[0];
    const value = first === undefined ? null : toValue(toCell(first[valueIndex]));
    const count = truncated
      ? `first ${kept.length} rows, more not fetched`
      : `${kept.length} row${kept.length === 1 ? '' : 's'}`;
    return {
      value,
      result: { rows, rowCount: kept.length, columns, truncated },
      summary: first === undefined ? 'no rows' : `${describeRow(columns, first, valueIndex)} (${count})`,
    };
  },
};
