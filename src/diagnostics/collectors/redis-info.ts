import { Redis } from 'ioredis';
import { z } from 'zod';
import type { Collector, ConfigProblem } from '../collector.js';
import type { Targets } from '../targets.js';

export const RedisInfoConfig = z.strictObject({
  /** a name in the targets file's `redis` */
  target: z.string().min(1),
});
export type RedisInfoConfig = z.infer<typeof RedisInfoConfig>;

/** databases listed in `result.keyspace`; Redis has 16 by default, a misconfigured one thousands */
const MAX_KEYSPACE_DBS = 64;

export interface KeyspaceDb {
  keys: number;
  expires: number;
  /** milliseconds */
  avgTtl: number;
}

/** INFO as fields (`used_memory` → "964176") and the keyspace section as numbers per database. */
export interface RedisInfo {
  fields: Record<string, string>;
  keyspace: Record<string, KeyspaceDb>;
}

/** Parses the text of INFO: `# Section` headers, `key:value` lines, `db0:keys=1,expires=0,avg_ttl=0`. */
export function parseRedisInfo(text: string): RedisInfo {
  const fields: Record<string, string> = {};
  const keyspace: Record<string, KeyspaceDb> = {};
  for (const line of text.split(/\r?\n/)) {
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon);
    const value = line.slice(colon + 1);
    if (/^db\d+$/.test(key)) {
      if (Object.keys(keyspace).length >= MAX_KEYSPACE_DBS) continue;
      const parts = Object.fromEntries(value.split(',').map((kv) => kv.split('=') as [string, string]));
      keyspace[key] = {
        keys: Number(parts.keys ?? 0),
        expires: Number(parts.expires ?? 0),
        avgTtl: Number(parts.avg_ttl ?? 0),
      };
    } else {
      fields[key] = value;
    }
  }
  return { fields, keyspace };
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let n = bytes;
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  return `${unit === 0 ? n : Number(n.toFixed(1))} ${units[unit]}`;
}

/** The collector's `result` from parsed INFO; a field an older Redis does not report is null. */
export function summarizeRedisInfo(info: RedisInfo): {
  value: number | null;
  result: Record<string, unknown>;
  summary: string;
} {
  const { fields } = info;
  const num = (key: string): number | null => {
    const raw = fields[key];
    if (raw === undefined || raw === '') return null;
    const n = Number(raw);
    return Number.isFinite(n) ? n : null;
  };
  const usedMemoryBytes = num('used_memory');
  const maxMemoryBytes = num('maxmemory') ?? 0;
  const memoryPercent =
    usedMemoryBytes !== null && maxMemoryBytes > 0
      ? Math.round((usedMemoryBytes / maxMemoryBytes) * 1000) / 10
      : null;
  const keyspaceHits = num('keyspace_hits');
  const keyspaceMisses = num('keyspace_misses');
  const lookups = (keyspaceHits ?? 0) + (keyspaceMisses ?? 0);
  const hitRate = lookups > 0 ? Math.round(((keyspaceHits ?? 0) / lookups) * 10_000) / 10_000 : null;
  const connectedClients = num('connected_clients');
  const evictedKeys = num('evicted_keys');
  const maxClients = num('maxclients');
  const result: Record<string, unknown> = {
    usedMemoryBytes,
    maxMemoryBytes,
    memoryPercent,
    memFragmentationRatio: num('mem_fragmentation_ratio'),
    connectedClients,
    blockedClients: num('blocked_clients'),
    ...(maxClients !== null ? { maxClients } : {}),
    rejectedConnections: num('rejected_connections'),
    evictedKeys,
    expiredKeys: num('expired_keys'),
    keyspaceHits,
    keyspaceMisses,
    hitRate,
    opsPerSec: num('instantaneous_ops_per_sec'),
    keyspace: info.keyspace,
    role: fields.role ?? null,
    uptimeSeconds: num('uptime_in_seconds'),
    version: fields.redis_version ?? null,
  };
  const used = usedMemoryBytes === null ? 'unknown' : formatBytes(usedMemoryBytes);
  const memory =
    memoryPercent === null
      ? `memory ${used} (no maxmemory)`
      : `memory ${used} of ${formatBytes(maxMemoryBytes)} (${memoryPercent}%)`;
  const clients = `${connectedClients ?? '?'} client${connectedClients === 1 ? '' : 's'}`;
  const summary = `${memory}, ${clients}, ${evictedKeys ?? '?'} evicted`;
  return { value: memoryPercent, result, summary };
}

class TimedOutError extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms} ms`);
    this.name = 'TimedOutError';
  }
}

/** Settles with `promise`, or rejects with TimedOutError as soon as `signal` aborts. */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal, ms: number): Promise<T> {
  promise.catch(() => {});
  if (signal.aborted) return Promise.reject(new TimedOutError(ms));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new TimedOutError(ms));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export const redisInfoCollector: Collector<RedisInfoConfig> = {
  type: 'redis_info',
  config: RedisInfoConfig,
  valueType: 'dyn',

  check(config: RedisInfoConfig, targets: Targets): ConfigProblem[] {
    if (targets.redis[config.target]) return [];
    const known = Object.keys(targets.redis);
    return [
      {
        path: ['target'],
        message: `no redis "${config.target}" in the targets file (known: ${known.length > 0 ? known.join(', ') : 'none'})`,
      },
    ];
  },

  // the target is a name from the targets file; nothing in this config is filled from the incident
  render: (config) => config,

  async collect(config, ctx) {
    const target = ctx.targets.redis[config.target];
    if (!target) throw new Error(`redis_info: no redis "${config.target}" in the targets file`);
    // the step's signal, and our own bound in case the caller's timer is late
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.timeoutMs)]);
    if (signal.aborted) throw new TimedOutError(ctx.timeoutMs);

    // One short-lived connection per run: no retries, no queueing behind a dead socket, nothing left open.
    const redis = new Redis(target.url, {
      lazyConnect: true,
      connectTimeout: ctx.timeoutMs,
      commandTimeout: ctx.timeoutMs,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      enableReadyCheck: false,
      disableClientInfo: true,
      // RESP2: no HELLO handshake before INFO, and INFO is a plain bulk string on every Redis version
      protocol: 2,
      retryStrategy: () => null,
      reconnectOnError: () => false,
    });
    // the awaited calls only say "Connection is closed."; the socket's own error says why (ECONNREFUSED, …)
    let socketError: Error | undefined;
    redis.on('error', (err: Error) => {
      socketError ??= err;
    });
    try {
      await unlessAborted(redis.connect(), signal, ctx.timeoutMs);
      const text = await unlessAborted(redis.info(), signal, ctx.timeoutMs);
      return summarizeRedisInfo(parseRedisInfo(text));
    } catch (err) {
      if (err instanceof TimedOutError || signal.aborted) throw new TimedOutError(ctx.timeoutMs);
      const cause = socketError ?? err;
      const message = cause instanceof Error ? cause.message : String(cause);
      if (/timed? ?out/i.test(message)) throw new TimedOutError(ctx.timeoutMs);
      throw new Error(`redis_info "${config.target}": ${message}`, { cause });
    } finally {
      redis.disconnect();
    }
  },
};
