import pg from 'pg';
import { z } from 'zod';
import type { ConfigProblem } from '../../diagnostics/collector.js';
import { redactSecrets } from '../../diagnostics/redact.js';
import type { Targets } from '../../diagnostics/targets.js';
import { placeholdersOf, renderTemplate, type TemplateVars } from '../../diagnostics/templating.js';
import {
  AbortedError,
  type ActionExecutor,
  abortGuard,
  ForbiddenActionError,
  refuseProblems,
  reparseConfig,
  strictActionConfig,
} from '../executor.js';

/**
 * What terminate_connections and cancel_query share: the optional filters, the strict config shape, the target
 * check, the one statement that picks backends from pg_stat_activity and signals them, and the executor around it.
 */

/** application_name of the remediation connection; every `ai-sre*` session is excluded from both actions */
export const REMEDIATION_APPLICATION_NAME = 'ai-sre-remediation';
const OWN_APPLICATION_PREFIX = 'ai-sre';
/** milliseconds; the one statement each action runs is a catalogue scan plus signals, never slow */
const STATEMENT_TIMEOUT_MS = 10_000;
/** milliseconds to open the connection; the step's timeout cuts it first when shorter */
const CONNECT_TIMEOUT_MS = 10_000;
/** characters of a backend's query text fetched to redact whole secrets, and kept after redaction */
const QUERY_FETCH_CHARS = 1_000;
const QUERY_KEPT_CHARS = 100;

/** Keys that would carry SQL: never part of a remediation config, refused with a message that says why. */
const SQL_KEYS = new Set([
  'sql',
  'query',
  'queries',
  'statement',
  'statements',
  'script',
  'command',
  'where',
]);

/**
 * The optional filters of both actions, each compared for equality as a bind parameter; placeholders
 * (`application: "{{labels.service}}"`) are filled by render.
 */
export const BACKEND_FILTERS = {
  /** only backends connected to this database (pg_stat_activity.datname) */
  database: z.string().min(1).optional(),
  /** only backends with exactly this application_name */
  application: z.string().min(1).optional(),
  /** only backends of this role (pg_stat_activity.usename) */
  user: z.string().min(1).optional(),
};
export interface BackendFilters {
  database?: string | undefined;
  application?: string | undefined;
  user?: string | undefined;
}

/**
 * A strict config object whose unknown-key error names the key, and says plainly that free SQL is not allowed when
 * the key looks like one (`sql`, `query`, …).
 */
export function strictBackendConfig<S extends z.ZodRawShape>(action: string, shape: S) {
  return strictActionConfig(action, shape, {
    keys: SQL_KEYS,
    why: (key, fields) =>
      `"${key}": free SQL is not allowed in remediation; ${action} builds its own statement from ${fields}`,
  });
}

/** Load-time and pre-execution problems shared by both actions: the target and the filters. */
function checkBackendConfig(config: { target: string } & BackendFilters, targets: Targets): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (!targets.remediation.databases[config.target]) {
    const known = Object.keys(targets.remediation.databases);
    problems.push({
      path: ['target'],
      message: `no database "${config.target}" in the targets file's remediation.databases (known: ${known.length > 0 ? known.join(', ') : 'none'})`,
    });
  }
  if (config.application?.startsWith(OWN_APPLICATION_PREFIX)) {
    problems.push({
      path: ['application'],
      message: `"${config.application}": the bot's own sessions (${OWN_APPLICATION_PREFIX}*) are never touched`,
    });
  }
  for (const key of ['database', 'application', 'user'] as const) {
    for (const p of placeholdersOf(config[key] ?? '')) {
      if (!p.valid) {
        problems.push({
          path: [key],
          message: `placeholder {{${p.name}}} is not one of labels.*, annotations.*, incident.*, service.*`,
        });
      }
    }
  }
  return problems;
}

/** The filters filled from the incident; each value becomes a bind parameter, so no escaping is needed. */
function renderFilters<C extends BackendFilters>(config: C, vars: TemplateVars): C {
  const fill = (text: string | undefined) =>
    text === undefined ? undefined : renderTemplate(text, vars, (value) => value);
  const out = { ...config };
  for (const key of ['database', 'application', 'user'] as const) {
    if (config[key] !== undefined) out[key] = fill(config[key]);
  }
  return out;
}

/** " (database x, application y, user z)" for summaries; empty without filters. */
export function describeFilters(filters: BackendFilters): string {
  const parts = [
    filters.database !== undefined ? `database ${filters.database}` : '',
    filters.application !== undefined ? `application ${filters.application}` : '',
    filters.user !== undefined ? `user ${filters.user}` : '',
  ].filter((p) => p !== '');
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

/** Which backends one run picks. */
export interface BackendSelection extends BackendFilters {
  /** terminate: idle states, aged by state_change; cancel: active, aged by query_start */
  mode: 'terminate' | 'cancel';
  /** pg_stat_activity.state */
  state: string;
  /** only backends in `state` for longer than this; milliseconds */
  olderThanMs: number;
  limit: number;
}

/** One picked backend as reported in the result (no full query text: it may hold secrets). */
export interface PickedBackend {
  pid: number;
  usename: string | null;
  datname: string | null;
  applicationName: string;
  state: string;
  /** seconds since state_change (terminate) or query_start (cancel) */
  ageSeconds: number;
  /** the first 100 characters of the last statement, secrets masked */
  query: string;
  /** false: this role may not signal the backend (superuser-owned, or no pg_signal_backend); never attempted */
  permitted: boolean;
  /** the signal was delivered; absent in a dry run */
  done?: boolean;
}

const AGE_SINCE = { terminate: 'state_change', cancel: 'query_start' } as const;
const SIGNAL_FUNCTION = { terminate: 'pg_terminate_backend', cancel: 'pg_cancel_backend' } as const;

/**
 * The candidates, oldest first, at most $6. Everything a runbook supplies is a bind parameter; the only spliced
 * text is the column and function names above, chosen by the action. `permitted` mirrors the checks of
 * pg_signal_backend() (superuser-owned backends need a superuser; others need membership in the backend's role or
 * in pg_signal_backend) so a backend the role cannot signal is reported instead of failing the whole statement;
 * those sort after the ones it can.
 */
function candidatesSql(mode: BackendSelection['mode']): string {
  const since = `a.${AGE_SINCE[mode]}`;
  return `SELECT a.pid, a.usename::text AS usename, a.datname::text AS datname,
        coalesce(a.application_name, '') AS application_name, a.state,
        extract(epoch FROM now() - ${since})::float8 AS age_seconds,
        left(coalesce(a.query, ''), ${QUERY_FETCH_CHARS}) AS query,
        coalesce(
          current_setting('is_superuser')::bool
            OR (NOT coalesce(r.rolsuper, false)
                AND (pg_has_role(a.usesysid, 'USAGE') OR pg_has_role('pg_signal_backend', 'USAGE'))),
          false) AS permitted
      FROM pg_stat_activity a
      LEFT JOIN pg_roles r ON r.oid = a.usesysid
      WHERE a.backend_type = 'client backend'
        AND a.pid <> pg_backend_pid()
        AND left(coalesce(a.application_name, ''), ${OWN_APPLICATION_PREFIX.length}) <> '${OWN_APPLICATION_PREFIX}'
        AND a.state = $1
        AND ${since} < now() - make_interval(secs => $2::float8)
        AND ($3::text IS NULL OR a.datname = $3::text)
        AND ($4::text IS NULL OR a.application_name = $4::text)
        AND ($5::text IS NULL OR a.usename = $5::text)
      ORDER BY permitted DESC, ${since} ASC
      LIMIT $6`;
}

/**
 * The candidates and the signal in one statement: LIMIT keeps the subquery from being flattened, so the signal
 * function runs once per picked row, and CASE never calls it for a backend the role may not signal.
 */
function signalSql(mode: BackendSelection['mode']): string {
  return `SELECT c.*, CASE WHEN c.permitted THEN ${SIGNAL_FUNCTION[mode]}(c.pid) ELSE false END AS done
    FROM (${candidatesSql(mode)}) c`;
}

interface BackendRow {
  pid: number;
  usename: string | null;
  datname: string | null;
  application_name: string;
  state: string;
  age_seconds: number;
  query: string;
  permitted: boolean;
  done?: boolean;
}

function redactQuery(text: string): string {
  const redacted = redactSecrets(text);
  return redacted.length > QUERY_KEPT_CHARS ? `${redacted.slice(0, QUERY_KEPT_CHARS)}…` : redacted;
}

/**
 * Picks the backends of `selection` and, unless `dryRun`, signals them, on a connection of its own (closed when
 * done or when `signal` aborts). Oldest first.
 */
async function signalBackends(
  url: string,
  selection: BackendSelection,
  opts: { signal: AbortSignal; timeoutMs: number; dryRun: boolean },
): Promise<PickedBackend[]> {
  const { signal, timeoutMs } = opts;
  if (signal.aborted) throw new AbortedError(timeoutMs);
  const client = new pg.Client({
    connectionString: url,
    application_name: REMEDIATION_APPLICATION_NAME,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    connectionTimeoutMillis: Math.max(1, Math.min(timeoutMs, CONNECT_TIMEOUT_MS)),
  });
  // a server-side disconnect must not crash the bot; the pending call rejects on its own
  client.on('error', () => {});
  const { guard, release } = abortGuard(signal, timeoutMs, () => {
    client.end().catch(() => {});
  });
  try {
    await guard(client.connect());
    const params = [
      selection.state,
      selection.olderThanMs / 1000,
      selection.database ?? null,
      selection.application ?? null,
      selection.user ?? null,
      selection.limit,
    ];
    const sql = opts.dryRun ? candidatesSql(selection.mode) : signalSql(selection.mode);
    let rows: BackendRow[];
    try {
      rows = (await guard(client.query<BackendRow>(sql, params))).rows;
    } catch (err) {
      if (opts.dryRun) throw err;
      // the server may have signalled backends before the answer was lost; say so rather than imply nothing happened
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`${message} (after the statement was sent: some backends may have been signalled)`, {
        cause: err,
      });
    }
    return rows
      .map(
        (row): PickedBackend => ({
          pid: row.pid,
          usename: row.usename,
          datname: row.datname,
          applicationName: row.application_name,
          state: row.state,
          ageSeconds: Math.round(row.age_seconds * 10) / 10,
          query: redactQuery(row.query),
          permitted: row.permitted,
          ...(opts.dryRun ? {} : { done: row.done === true }),
        }),
      )
      .sort((a, b) => b.ageSeconds - a.ageSeconds);
  } finally {
    release();
    const closing = client.end().catch(() => {});
    // after an abort the caller must not wait on a socket that may hang
    if (!signal.aborted) await closing;
  }
}

/** Counts of a run for details and summaries. */
function countBackends(picked: PickedBackend[]): {
  matched: number;
  done: number;
  notPermitted: number;
} {
  return {
    matched: picked.length,
    done: picked.filter((b) => b.done === true).length,
    notPermitted: picked.filter((b) => !b.permitted).length,
  };
}

/** `err` as the action's error, naming the action and target. */
function describeFailure(action: string, target: string, err: unknown): Error {
  if (err instanceof ForbiddenActionError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new Error(`${action} "${target}": ${message}`, { cause: err });
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Config fields every backend action has; the rest are the action's own. */
export type BackendConfig = { target: string; limit: number } & BackendFilters;

/** What one backend action signals, in words for summaries. */
const WORDS = {
  terminate: { noun: 'session', verb: 'terminate', past: 'terminated' },
  cancel: { noun: 'statement', verb: 'cancel', past: 'cancelled' },
} as const;

/** What sets one backend action apart; `backendExecutor` does the rest. */
export interface BackendActionSpec<C extends BackendConfig> {
  action: string;
  config: z.ZodType<C>;
  mode: BackendSelection['mode'];
  /** which backends the config picks: their pg_stat_activity.state, and for how long at least (milliseconds) */
  select(config: C): { state: string; olderThanMs: number };
  /** what the picked backends are, after the noun in summaries: "idle for over 5m on main (user app)" */
  phrase(config: C): string;
  blastRadius(config: C): string;
  rollback: string;
  /** the action's own config fields, shown in `details` after `target` */
  settings(config: C): Record<string, unknown>;
}

/**
 * A backend action: the shared check and render, target `postgres:<name>`, and an execute() that re-checks the
 * config, picks and (unless a dry run) signals the backends, and reports them oldest first.
 */
export function backendExecutor<C extends BackendConfig>(spec: BackendActionSpec<C>): ActionExecutor<C> {
  const { action, mode } = spec;
  const { noun, verb, past } = WORDS[mode];
  return {
    action,
    config: spec.config,
    check: checkBackendConfig,
    render: renderFilters,

    describe(config) {
      return {
        target: `postgres:${config.target}`,
        blastRadius: spec.blastRadius(config),
        rollback: spec.rollback,
      };
    },

    async execute(raw, ctx) {
      const config = reparseConfig(action, spec.config, raw);
      refuseProblems(action, checkBackendConfig(config, ctx.targets));
      const target = ctx.targets.remediation.databases[config.target];
      if (!target) throw new Error(`${action}: no database "${config.target}"`);
      let picked: PickedBackend[];
      try {
        picked = await signalBackends(
          target.url,
          {
            mode,
            ...spec.select(config),
            limit: config.limit,
            database: config.database,
            application: config.application,
            user: config.user,
          },
          { signal: ctx.signal, timeoutMs: ctx.timeoutMs, dryRun: ctx.dryRun },
        );
      } catch (err) {
        throw describeFailure(action, config.target, err);
      }
      const { matched, done, notPermitted } = countBackends(picked);
      const phrase = spec.phrase(config);
      const refused = notPermitted > 0 ? ` (${notPermitted} not permitted for this role)` : '';
      let summary: string;
      if (matched === 0) summary = `no ${noun}s ${phrase}`;
      else if (ctx.dryRun) summary = `would ${verb} ${plural(matched, noun)} ${phrase}${refused}`;
      else summary = `${past} ${done} of ${plural(matched, noun)} ${phrase}${refused}`;
      ctx.log.info({ action, target: config.target, matched, done, dryRun: ctx.dryRun }, summary);
      return {
        ok: ctx.dryRun || done === matched,
        dryRun: ctx.dryRun,
        summary,
        details: {
          target: config.target,
          ...spec.settings(config),
          limit: config.limit,
          filters: { database: config.database, application: config.application, user: config.user },
          matched,
          done,
          notPermitted,
          backends: picked,
        },
      };
    },
  };
}
