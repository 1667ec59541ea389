import { Redis } from 'ioredis';
import { z } from 'zod';
import type { ConfigProblem } from '../../diagnostics/collector.js';
import { redactSecrets } from '../../diagnostics/redact.js';
import type { Targets } from '../../diagnostics/targets.js';
import { PLACEHOLDER, placeholdersOf, renderTemplate } from '../../diagnostics/templating.js';
import {
  AbortedError,
  type ActionExecutor,
  abortGuard,
  limitField,
  refuseProblems,
  reparseConfig,
  strictActionConfig,
} from '../executor.js';

const ACTION = 'flush_cache';

/** keys one run may remove at most */
export const MAX_FLUSH_LIMIT = 100_000;
/** literal characters a pattern needs before its first glob metacharacter, so it names one family of keys */
export const MIN_LITERAL_PREFIX = 3;
/** SCAN's COUNT hint, and the most keys per UNLINK */
const SCAN_COUNT = 1_000;
/** key names kept in the result */
const SAMPLE_SIZE = 10;
/** characters of each sampled key name */
const SAMPLE_KEY_CHARS = 200;
/** milliseconds to connect; the step's timeout cuts it first when shorter */
const CONNECT_TIMEOUT_MS = 10_000;

/** Keys that would carry a raw command; refused with a message that says why. */
const COMMAND_KEYS = new Set([
  'command',
  'commands',
  'cmd',
  'flushall',
  'flushdb',
  'keys',
  'eval',
  'script',
  'del',
]);

export const FlushCacheConfig = strictActionConfig(
  ACTION,
  {
    /** a name in the targets file's remediation.redis */
    target: z.string().min(1),
    /**
     * ONE Redis glob (SCAN MATCH), e.g. `session:{{labels.tenant}}:*`; placeholders are filled with glob
     * metacharacters escaped, so a value matches only itself. Needs 3 literal characters before the first
     * `*`, `?`, `[` or `\`.
     */
    pattern: z.string().min(1).max(1_024),
    /** required; at most this many keys per run */
    limit: limitField(MAX_FLUSH_LIMIT, 'keys', 'remove'),
  },
  {
    keys: COMMAND_KEYS,
    why: (key) =>
      `"${key}": raw Redis commands are not allowed in remediation (never FLUSHALL, FLUSHDB or KEYS); ${ACTION} only SCANs and UNLINKs keys matching pattern`,
  },
);
export type FlushCacheConfig = z.infer<typeof FlushCacheConfig>;

const GLOB_META = new Set(['*', '?', '[', '\\']);

/**
 * A value inside a Redis glob: every character the matcher treats specially (also `]`, `^`, `-` of bracket
 * expressions) is backslash-escaped, so `*` in a label matches a literal `*` and can never widen the pattern.
 */
export function escapeGlob(value: string): string {
  return value.replace(/[*?[\]\\^-]/g, '\\$&');
}

/**
 * Literal characters before the first glob metacharacter. A placeholder ends the prefix too: its value is not known
 * at load, and once filled its escapes (`\`) would end it anyway.
 */
function literalPrefixLength(pattern: string): number {
  const firstPlaceholder = pattern.search(PLACEHOLDER);
  const end = firstPlaceholder === -1 ? pattern.length : firstPlaceholder;
  let n = 0;
  for (const c of pattern.slice(0, end)) {
    if (GLOB_META.has(c)) break;
    n++;
  }
  return n;
}

function check(config: FlushCacheConfig, targets: Targets): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (!targets.remediation.redis[config.target]) {
    const known = Object.keys(targets.remediation.redis);
    problems.push({
      path: ['target'],
      message: `no redis "${config.target}" in the targets file's remediation.redis (known: ${known.length > 0 ? known.join(', ') : 'none'})`,
    });
  }
  if (literalPrefixLength(config.pattern) < MIN_LITERAL_PREFIX) {
    problems.push({
      path: ['pattern'],
      message: `pattern "${config.pattern}" is too broad: it needs at least ${MIN_LITERAL_PREFIX} literal characters before the first *, ?, [, \\ or placeholder (e.g. "session:anon:*")`,
    });
  }
  for (const p of placeholdersOf(config.pattern)) {
    if (!p.valid) {
      problems.push({
        path: ['pattern'],
        message: `placeholder {{${p.name}}} is not one of labels.*, annotations.*, incident.*, service.*`,
      });
    }
  }
  return problems;
}

interface FlushOutcome {
  /** distinct matching keys seen, at most `limit` */
  matched: number;
  /** keys UNLINK removed (a key that expired meanwhile is matched but not removed) */
  removed: number;
  sample: string[];
  /** stopped at `limit` with more keys possibly left (their number is not counted) */
  capReached: boolean;
}

/** SCAN … MATCH pattern, UNLINK each page's keys unless `dryRun`, until the keyspace is walked or `limit` is hit. */
async function flushMatching(
  redis: Redis,
  config: FlushCacheConfig,
  dryRun: boolean,
  guard: <T>(p: Promise<T>) => Promise<T>,
  progress: FlushOutcome,
): Promise<void> {
  // SCAN may return a key twice; binary-safe identities keep the count honest
  const seen = new Set<string>();
  let cursor = '0';
  do {
    const [next, page] = await guard(redis.scanBuffer(cursor, 'MATCH', config.pattern, 'COUNT', SCAN_COUNT));
    cursor = next.toString();
    const fresh: Buffer[] = [];
    for (const key of page) {
      const id = key.toString('latin1');
      if (seen.has(id)) continue;
      if (seen.size >= config.limit) {
        progress.capReached = true;
        break;
      }
      seen.add(id);
      fresh.push(key);
    }
    progress.matched = seen.size;
    for (const key of fresh) {
      if (progress.sample.length >= SAMPLE_SIZE) break;
      progress.sample.push(redactSecrets(key.toString('utf8').slice(0, SAMPLE_KEY_CHARS)));
    }
    for (let i = 0; !dryRun && i < fresh.length; i += SCAN_COUNT) {
      progress.removed += await guard(redis.unlink(...fresh.slice(i, i + SCAN_COUNT)));
    }
    if (seen.size >= config.limit && cursor !== '0') progress.capReached = true;
  } while (cursor !== '0' && !progress.capReached);
}

/** Removes the cache keys of one family (SCAN + UNLINK, bounded); never FLUSHALL, FLUSHDB or KEYS. */
export const flushCacheExecutor: ActionExecutor<FlushCacheConfig> = {
  action: ACTION,
  config: FlushCacheConfig,
  check,

  render(config, vars) {
    return { ...config, pattern: renderTemplate(config.pattern, vars, escapeGlob) };
  },

  describe(config) {
    return {
      target: `redis:${config.target}`,
      blastRadius: `up to ${config.limit} keys matching ${config.pattern} on ${config.target} are deleted; the application misses them until it rebuilds them`,
      rollback: 'none: the keys are rebuilt by the application on the next read (cache)',
    };
  },

  async execute(raw, ctx) {
    const config = reparseConfig(ACTION, FlushCacheConfig, raw);
    refuseProblems(ACTION, check(config, ctx.targets));
    const target = ctx.targets.remediation.redis[config.target];
    if (!target) throw new Error(`${ACTION}: no redis "${config.target}"`);
    if (ctx.signal.aborted) throw new AbortedError(ctx.timeoutMs);

    // One connection per run: nothing shared with the queues, nothing left open afterwards.
    const redis = new Redis(target.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      connectTimeout: Math.max(1, Math.min(ctx.timeoutMs, CONNECT_TIMEOUT_MS)),
      enableOfflineQueue: false,
      retryStrategy: () => null,
      disableClientInfo: true,
      // RESP2: no HELLO handshake, so older servers work too
      protocol: 2,
      connectionName: 'ai-sre-remediation',
    });
    // the awaited calls only say "Connection is closed."; the socket's own error says why (ECONNREFUSED, …)
    let socketError: Error | undefined;
    redis.on('error', (err: Error) => {
      socketError ??= err;
    });
    const { guard, release } = abortGuard(ctx.signal, ctx.timeoutMs, () => redis.disconnect());

    const outcome: FlushOutcome = { matched: 0, removed: 0, sample: [], capReached: false };
    try {
      await guard(redis.connect());
      await flushMatching(redis, config, ctx.dryRun, guard, outcome);
    } catch (err) {
      const cause = err instanceof AbortedError ? err : (socketError ?? err);
      const message = cause instanceof Error ? cause.message : String(cause);
      const sofar = ctx.dryRun ? '' : ` (${outcome.removed} keys removed before it stopped)`;
      throw new Error(`${ACTION} "${config.target}": ${message}${sofar}`, { cause });
    } finally {
      release();
      redis.disconnect();
    }

    const where = `matching ${config.pattern} on ${config.target}`;
    const cap = outcome.capReached
      ? `; stopped at the limit of ${config.limit} (more keys may match; how many is not known)`
      : '';
    const summary = ctx.dryRun
      ? `would remove ${outcome.matched} keys ${where}${cap}`
      : `removed ${outcome.removed} keys ${where}${cap}`;
    ctx.log.info(
      { action: ACTION, target: config.target, removed: outcome.removed, dryRun: ctx.dryRun },
      summary,
    );
    return {
      ok: true,
      dryRun: ctx.dryRun,
      summary,
      details: {
        target: config.target,
        pattern: config.pattern,
        limit: config.limit,
        matched: outcome.matched,
        removed: outcome.removed,
        sample: outcome.sample,
        capReached: outcome.capReached,
      },
    };
  },
};
