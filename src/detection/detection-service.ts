import { createHash, randomInt } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createDetector, restoreDetector, restoreDetectorBytes } from './create-detector.js';
import type { DetectorSnapshot, StreamingDetector } from './detector.js';
import { type MetricSample, seriesKeyOf } from './metric-sample.js';
import { advanceRun, confirmRun, EMPTY_RUN, type PersistenceRule, type RunState } from './persistence.js';

/**
 * What is kept per series in Redis, one binary value: a 56-byte header, the series key (UTF-8, so a hash collision is
 * noticed), and the detector's toBytes(). Writing one costs a copy of about 3 KB; the JSON it replaced cost about ten
 * times as much CPU and half as much again in bytes, which made the state writes the largest part of ingestion.
 * Header: magic "S1" (u16 BE), 2 spare bytes, the key's length in bytes (u32 LE), the id of the process that wrote it
 * (u32 LE), 4 spare bytes, then as Float64 LE the last timestamp fed and the anomaly run: bits, since (NaN for none),
 * reported (0/1), quiet.
 */
const STORED_MAGIC = 0x5331;
const STORED_HEADER = 56;
const AT = { keyLength: 4, writer: 8, last: 16, bits: 24, since: 32, reported: 40, quiet: 48 } as const;

function encodedLength(e: LiveSeries): number {
  return STORED_HEADER + Buffer.byteLength(e.key) + e.detector.byteLength;
}

/** Writes e's stored value, as written by `writer`, into `out` at `at` (encodedLength(e) bytes). */
function encodeSeriesInto(e: LiveSeries, writer: number, out: Buffer, at: number): void {
  const keyBytes = out.write(e.key, at + STORED_HEADER, 'utf8');
  out.writeUInt16BE(STORED_MAGIC, at);
  out.writeUInt16BE(0, at + 2);
  out.writeUInt32LE(keyBytes, at + AT.keyLength);
  out.writeUInt32LE(writer, at + AT.writer);
  out.writeUInt32LE(0, at + AT.writer + 4);
  out.writeDoubleLE(e.last, at + AT.last);
  out.writeDoubleLE(e.run.bits, at + AT.bits);
  out.writeDoubleLE(e.run.since ?? Number.NaN, at + AT.since);
  out.writeDoubleLE(e.run.reported ? 1 : 0, at + AT.reported);
  out.writeDoubleLE(e.run.quiet ?? 0, at + AT.quiet);
  e.detector.writeBytes(out, at + STORED_HEADER + keyBytes);
}

/** Several series' stored values, encoded into one allocation. */
function encodeSeries(entries: readonly LiveSeries[], writer: number): Buffer[] {
  const lengths = entries.map(encodedLength);
  const out = Buffer.allocUnsafe(lengths.reduce((a, b) => a + b, 0));
  let at = 0;
  return entries.map((e, i) => {
    const length = lengths[i] as number;
    encodeSeriesInto(e, writer, out, at);
    at += length;
    return out.subarray(at - length, at);
  });
}

/** The writer id in the first bytes of a stored value (GETRANGE 0..11), or null when it holds none. */
function writerOf(head: Buffer | null | undefined): number | null {
  if (!head || head.length < AT.writer + 4 || head.readUInt16BE(0) !== STORED_MAGIC) return null;
  return head.readUInt32LE(AT.writer);
}

/** A series' live detector from its stored state; a missing, foreign or unreadable state starts it afresh. */
function restoreSeries(key: string, raw: Buffer | null): LiveSeries {
  if (raw && raw.length > 0) {
    try {
      const restored = decodeStoredSeries(raw);
      // another series' state under this key's hash: start this one afresh
      if (restored.key === key) return { ...restored, dirty: false };
    } catch {
      // a layout from another build: start the series afresh rather than refuse its points
    }
  }
  return {
    key,
    detector: createDetector(),
    last: Number.NEGATIVE_INFINITY,
    run: EMPTY_RUN,
    recent: new RecentRing(),
    writer: 0,
    dirty: false,
  };
}

/**
 * A stored series state: the binary value encodeSeries wrote, or the JSON value of earlier builds (read so an upgrade
 * keeps every series' model). Throws on anything else.
 */
export function decodeStoredSeries(raw: Buffer): Omit<LiveSeries, 'dirty'> {
  if (raw[0] === 0x7b) return decodeJsonSeries(raw);
  if (raw.length < STORED_HEADER || raw.readUInt16BE(0) !== STORED_MAGIC)
    throw new Error('not a series state');
  const keyEnd = STORED_HEADER + raw.readUInt32LE(AT.keyLength);
  if (keyEnd > raw.length) throw new Error('series state: truncated key');
  const since = raw.readDoubleLE(AT.since);
  return {
    key: raw.toString('utf8', STORED_HEADER, keyEnd),
    detector: restoreDetectorBytes(raw.subarray(keyEnd)),
    last: raw.readDoubleLE(AT.last),
    run: {
      bits: raw.readDoubleLE(AT.bits),
      since: Number.isNaN(since) ? null : since,
      reported: raw.readDoubleLE(AT.reported) === 1,
      quiet: raw.readDoubleLE(AT.quiet),
    },
    recent: new RecentRing(),
    writer: raw.readUInt32LE(AT.writer),
  };
}

function decodeJsonSeries(raw: Buffer): Omit<LiveSeries, 'dirty'> {
  const state = JSON.parse(raw.toString('utf8')) as JsonStoredSeries;
  if (typeof state.k !== 'string') throw new Error('series state: no key');
  return {
    key: state.k,
    detector: restoreDetector(state.d),
    last: state.t,
    run: state.r ?? EMPTY_RUN,
    recent: RecentRing.of(Array.isArray(state.p) ? state.p : []),
    writer: 0,
  };
}

function signalOf(
  kind: AnomalySignal['kind'],
  seriesKey: string,
  sample: MetricSample,
  likelihood: number,
  since: number,
  reason: AnomalySignal['reason'],
  evidence: Pick<AnomalySignal, 'expected' | 'recent'>,
): AnomalySignal {
  return {
    kind,
    series: sample.series,
    labels: sample.labels,
    seriesKey,
    since,
    timestamp: sample.timestamp,
    value: sample.value,
    likelihood,
    reason,
    agreeing: [],
    ...evidence,
  };
}

/** A point the detector found unlikely enough to report. */
export interface Anomaly {
  series: string;
  labels: Record<string, string>;
  timestamp: number;
  value: number;
  likelihood: number;
}

/** An anomaly that lasted (k of the last n points) or that other signals of its service agree with — or its end. */
export interface AnomalySignal {
  kind: 'confirmed' | 'ended';
  series: string;
  labels: Record<string, string>;
  seriesKey: string;
  /** when the series started deviating (its run's first anomalous point); epoch ms */
  since: number;
  timestamp: number;
  value: number;
  likelihood: number;
  /** why it was confirmed: `persisted` (k of n) or `agreement` (other series of the service too) */
  reason: 'persisted' | 'agreement' | 'recovered';
  /** the other anomalous series of the same service at the time (agreement) */
  agreeing: string[];
  /** where the model expected this point, for people (null while it warms up) */
  expected: { low: number; high: number } | null;
  /** the series' latest points up to this one, oldest first (at most RECENT_POINTS) */
  recent: [number, number][];
}

export interface IngestResult {
  accepted: number;
  rejected: { index: number; reason: string }[];
  /** points of this batch at or above the reporting threshold, in input order */
  anomalies: Anomaly[];
  /** runs confirmed or ended by this batch */
  signals: AnomalySignal[];
}

export interface DetectionService {
  /** feeds validated samples (with their index in the request) to their series' detectors */
  ingest(samples: { index: number; sample: MetricSample }[]): Promise<IngestResult>;
  /** writes every changed series' state to Redis now */
  flush(): Promise<void>;
  /** stops the background writes and flushes */
  close(): Promise<void>;
}

/** What earlier builds kept per series in Redis, as JSON: its identity, the last timestamp fed, the detector's state. */
interface JsonStoredSeries {
  k: string;
  t: number;
  d: DetectorSnapshot;
  /** the anomaly run (see persistence.ts) */
  r?: RunState;
  /** the latest points, oldest first (older builds stored them; the evidence ring now lives in memory only) */
  p?: [number, number][];
}

/** points of each series kept as evidence (a sparkline's worth) */
export const RECENT_POINTS = 48;

/** The latest RECENT_POINTS points of a series in two fixed arrays: no allocation per point. */
class RecentRing {
  private readonly t = new Float64Array(RECENT_POINTS);
  private readonly v = new Float64Array(RECENT_POINTS);
  private next = 0;
  private size = 0;

  static of(pairs: readonly (readonly [number, number])[]): RecentRing {
    const ring = new RecentRing();
    for (const [t, v] of pairs.slice(-RECENT_POINTS)) ring.push(t, v);
    return ring;
  }

  push(t: number, v: number): void {
    this.t[this.next] = t;
    this.v[this.next] = v;
    this.next = (this.next + 1) % RECENT_POINTS;
    if (this.size < RECENT_POINTS) this.size++;
  }

  /** oldest first */
  toPairs(): [number, number][] {
    const out: [number, number][] = [];
    const start = (this.next - this.size + RECENT_POINTS) % RECENT_POINTS;
    for (let i = 0; i < this.size; i++) {
      const j = (start + i) % RECENT_POINTS;
      out.push([this.t[j] as number, this.v[j] as number]);
    }
    return out;
  }
}

/** A series' detector as this process holds it. */
interface LiveSeries {
  key: string;
  detector: StreamingDetector;
  /** timestamp of the last point fed; epoch ms */
  last: number;
  run: RunState;
  /**
   * the latest points, oldest first (at most RECENT_POINTS): evidence for people, kept in memory only — after a
   * restart it refills, while the model itself continues from Redis
   */
  recent: RecentRing;
  /** the process whose write of this series' state this process last read or made (0: none) */
  writer: number;
  /** fed since the last eviction walk passed it (see ensureLive) */
  fed?: boolean;
  /** changed since its state was last written to Redis */
  dirty: boolean;
}

/**
 * Streams samples through per-series detectors. Live detectors stay in memory (at most `maxLiveSeries`, least
 * recently fed evicted first); their state is written to Redis in the background every `flushIntervalMs` and at
 * close (one key per series, expiring when the series has been silent for `ttlSeconds`), and read back with one MGET
 * for series this process does not hold — so a restart loses at most the last interval's updates, and a busy batch
 * costs no (de)serialisation. Within this process a series is updated by one batch at a time (keyed locks). Several
 * processes feeding one series would each keep their own model and overwrite each other's state, so a series must be
 * sent to one process: each write is stamped with this process's id, and a flush that finds another process's stamp
 * where its own (or the one it loaded) should be reports the series through `onSplitSeries`.
 */
export function createDetectionService(deps: {
  redis: Redis;
  prefix: string;
  /** a series silent this long is dropped; seconds */
  ttlSeconds: number;
  /** likelihood from which a point is reported as an anomaly */
  threshold: number;
  /** an anomaly becomes a signal when k of the last n points were anomalous; default 3 of 5 */
  persistence?: PersistenceRule;
  /** …or when this many series of one service (label `service`) are anomalous within `agreementWindowMs`; default 2 */
  agreement?: number;
  /** default 5 minutes */
  agreementWindowMs?: number;
  /** detectors kept in memory; default 100,000 (a few KB each) */
  maxLiveSeries?: number;
  /** how often changed states are written to Redis; milliseconds; default 1000 */
  flushIntervalMs?: number;
  /** a background write failed (it is retried at the next interval) */
  onFlushError?(err: Error): void;
  /** series another process wrote to since this one last did: they are fed to more than one process */
  onSplitSeries?(seriesKeys: string[]): void;
}): DetectionService {
  /** this instance's stamp on the states it writes */
  const writer = randomInt(1, 2 ** 32);
  const live = new Map<string, LiveSeries>();
  const maxLive = deps.maxLiveSeries ?? 100_000;
  /** states of evicted dirty series (series key → stored value), written with the next flush */
  let evicted = new Map<string, Buffer>();

  /**
   * The live detectors of `keys` (in their order): restores the ones this process does not hold (one MGET). Which
   * detectors stay in memory is decided by the CLOCK algorithm, an approximation of least-recently-used that costs a
   * flag per series fed instead of moving it in the map: when there are too many, the map is walked from its oldest
   * insertion, and a series fed since the last walk (or held by a batch in flight) is moved to the back with its flag
   * cleared, the first one that was not is evicted.
   */
  async function ensureLive(keys: string[]): Promise<LiveSeries[]> {
    const entries: LiveSeries[] = new Array(keys.length);
    const missing: number[] = [];
    keys.forEach((key, i) => {
      let entry = live.get(key);
      if (!entry) {
        // evicted but not written yet: its newest state is here, not in Redis
        const pending = evicted.get(key);
        if (pending === undefined) {
          missing.push(i);
          return;
        }
        evicted.delete(key);
        entry = { ...restoreSeries(key, pending), dirty: true };
        live.set(key, entry);
      }
      entry.fed = true;
      entries[i] = entry;
    });
    if (missing.length > 0) {
      const stored = await deps.redis.mgetBuffer(...missing.map((i) => redisKey(keys[i] as string)));
      missing.forEach((i, j) => {
        const key = keys[i] as string;
        const entry = restoreSeries(key, stored[j] ?? null);
        entry.fed = true;
        live.set(key, entry);
        entries[i] = entry;
      });
    }
    // a bounded walk: if everything was fed or is in use, the map may stay over its size until the next batch
    for (let steps = 2 * live.size; live.size > maxLive && steps > 0; steps--) {
      const [oldestKey, oldest] = live.entries().next().value as [string, LiveSeries];
      live.delete(oldestKey);
      if (oldest.fed || locks.has(oldestKey)) {
        oldest.fed = false;
        live.set(oldestKey, oldest);
      } else if (oldest.dirty) evicted.set(oldestKey, encodeSeries([oldest], writer)[0] as Buffer);
    }
    return entries;
  }

  /** series written per Redis pipeline; between chunks the event loop serves requests */
  const FLUSH_CHUNK = 500;

  async function flush(): Promise<void> {
    const pending = evicted;
    evicted = new Map();
    const writes: [string, Buffer][] = [...pending];
    const dirty = [...live.values()].filter((e) => e.dirty);
    try {
      for (let i = 0; i < Math.max(writes.length, dirty.length); i += FLUSH_CHUNK) {
        const chunk: [string, Buffer][] = writes.slice(i, i + FLUSH_CHUNK);
        const flushed = dirty.slice(i, i + FLUSH_CHUNK);
        const values = encodeSeries(flushed, writer);
        flushed.forEach((entry, j) => {
          chunk.push([entry.key, values[j] as Buffer]);
          entry.dirty = false;
        });
        const pipe = deps.redis.pipeline();
        // the live series' current stamps first (12 bytes each): another writer's there means a split series
        for (const entry of flushed) pipe.getrangeBuffer(redisKey(entry.key), 0, AT.writer + 3);
        for (const [key, value] of chunk) pipe.set(redisKey(key), value, 'EX', deps.ttlSeconds);
        try {
          const results = await pipe.exec();
          const failed = results?.find(([err]) => err);
          if (failed) throw failed[0];
          const split: string[] = [];
          flushed.forEach((entry, j) => {
            const found = writerOf(results?.[j]?.[1] as Buffer | undefined);
            if (found !== null && found !== entry.writer) split.push(entry.key);
            entry.writer = writer;
          });
          if (split.length > 0) deps.onSplitSeries?.(split);
        } catch (err) {
          // keep them dirty (or pending) for the next flush
          for (const entry of flushed) entry.dirty = true;
          for (const e of dirty.slice(i + FLUSH_CHUNK)) e.dirty = true;
          throw err;
        }
      }
    } catch (err) {
      for (const [key, value] of pending) if (!live.has(key) && !evicted.has(key)) evicted.set(key, value);
      throw err;
    }
  }

  const timer = setInterval(() => {
    flush().catch((err: unknown) => deps.onFlushError?.(err as Error));
  }, deps.flushIntervalMs ?? 1000);
  timer.unref();

  const rule = deps.persistence ?? { k: 3, n: 5 };
  const agreement = deps.agreement ?? 2;
  const agreementWindowMs = deps.agreementWindowMs ?? 5 * 60_000;
  const locks = new Map<string, Promise<void>>();
  const redisKey = (seriesKey: string) =>
    `${deps.prefix}:detector:${createHash('sha1').update(seriesKey).digest('hex').slice(0, 24)}`;

  /** Runs `fn` once no other batch of this process holds any of `keys`. */
  async function withSeriesLocks<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const before: Promise<void>[] = [];
    for (const k of keys) {
      const held = locks.get(k);
      if (held) before.push(held);
      locks.set(k, mine);
    }
    // the common case, no other batch on these series, costs no extra tick
    if (before.length > 0) await Promise.all(before);
    try {
      return await fn();
    } finally {
      release();
      for (const k of keys) if (locks.get(k) === mine) locks.delete(k);
    }
  }

  return {
    async ingest(samples) {
      const rejected: IngestResult['rejected'] = [];
      const bySeries = new Map<string, { index: number; sample: MetricSample }[]>();
      for (const item of samples) {
        const key = seriesKeyOf(item.sample);
        const list = bySeries.get(key);
        if (list) list.push(item);
        else bySeries.set(key, [item]);
      }
      const keys = [...bySeries.keys()];
      const anomalies: (Anomaly & { index: number })[] = [];
      const signals: AnomalySignal[] = [];
      const pendingAgreement: {
        key: string;
        sample: MetricSample;
        likelihood: number;
        evidence: Pick<AnomalySignal, 'expected' | 'recent'>;
      }[] = [];
      let accepted = 0;

      /**
       * Several series of one service anomalous at once (latency and errors together) confirm each other at once,
       * without waiting for persistence: one sorted set per service of its recently anomalous series.
       */
      const confirmByAgreement = async () => {
        if (pendingAgreement.length === 0 || agreement < 2) return;
        const byService = new Map<string, typeof pendingAgreement>();
        for (const p of pendingAgreement) {
          const svc = p.sample.labels.service as string;
          byService.set(svc, [...(byService.get(svc) ?? []), p]);
        }
        const pipe = deps.redis.pipeline();
        const services = [...byService.keys()];
        for (const svc of services) {
          const zkey = `${deps.prefix}:detector-agreement:${svc}`;
          const items = byService.get(svc) ?? [];
          const newest = Math.max(...items.map((p) => p.sample.timestamp));
          for (const p of items) pipe.zadd(zkey, p.sample.timestamp, p.key);
          pipe.zremrangebyscore(zkey, '-inf', newest - agreementWindowMs);
          pipe.zrange(zkey, '0', '-1');
          pipe.pexpire(zkey, agreementWindowMs * 2);
        }
        const results = (await pipe.exec()) ?? [];
        let cursor = 0;
        for (const svc of services) {
          const items = byService.get(svc) ?? [];
          cursor += items.length + 1;
          const members = (results[cursor]?.[1] as string[] | undefined) ?? [];
          cursor += 2;
          if (members.length < agreement) continue;
          for (const p of items) {
            const entry = live.get(p.key);
            if (!entry) continue;
            const step = confirmRun(entry.run, p.sample.timestamp);
            if (!step.change) continue;
            entry.run = step.state;
            entry.dirty = true;
            const signal = signalOf(
              'confirmed',
              p.key,
              p.sample,
              p.likelihood,
              step.state.since ?? p.sample.timestamp,
              'agreement',
              p.evidence,
            );
            signal.agreeing = members.filter((m) => m !== p.key);
            signals.push(signal);
          }
        }
      };
      await withSeriesLocks(keys, async () => {
        const entries = await ensureLive(keys);
        for (let k = 0; k < keys.length; k++) {
          const key = keys[k] as string;
          const entry = entries[k] as LiveSeries;
          const points = (bySeries.get(key) ?? []).sort((a, b) => a.sample.timestamp - b.sample.timestamp);
          let fed = 0;
          for (const { index, sample } of points) {
            if (sample.timestamp <= entry.last) {
              rejected.push({
                index,
                reason: `timestamp ${new Date(sample.timestamp).toISOString()} is not after the series' last point (${new Date(entry.last).toISOString()})`,
              });
              continue;
            }
            const expected = entry.detector.expectedRange();
            const likelihood = entry.detector.update(sample.timestamp, sample.value);
            entry.last = sample.timestamp;
            entry.recent.push(sample.timestamp, sample.value);
            fed++;
            const anomalous = likelihood >= deps.threshold;
            if (anomalous) {
              anomalies.push({
                index,
                series: sample.series,
                labels: sample.labels,
                timestamp: sample.timestamp,
                value: sample.value,
                likelihood,
              });
            }
            // the common point: quiet, and no run under way (advanceRun would answer exactly this)
            if (!anomalous && entry.run.bits === 0 && !entry.run.reported) {
              entry.run = EMPTY_RUN;
              continue;
            }
            const step = advanceRun(entry.run, anomalous, sample.timestamp, rule);
            entry.run = step.state;
            if (step.change) {
              signals.push(
                signalOf(
                  step.change,
                  key,
                  sample,
                  likelihood,
                  entry.run.since ?? sample.timestamp,
                  step.change === 'confirmed' ? 'persisted' : 'recovered',
                  { expected, recent: entry.recent.toPairs() },
                ),
              );
            } else if (anomalous && !entry.run.reported && sample.labels.service) {
              pendingAgreement.push({
                key,
                sample,
                likelihood,
                evidence: { expected, recent: entry.recent.toPairs() },
              });
            }
          }
          accepted += fed;
          if (fed > 0) entry.dirty = true;
        }
        await confirmByAgreement();
      });
      anomalies.sort((a, b) => a.index - b.index);
      rejected.sort((a, b) => a.index - b.index);
      return { accepted, rejected, anomalies: anomalies.map(({ index: _, ...a }) => a), signals };
    },
    flush,
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}
