import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createDetector, restoreDetector } from './create-detector.js';
import type { DetectorSnapshot, StreamingDetector } from './detector.js';
import { type MetricSample, seriesKeyOf } from './metric-sample.js';
import { advanceRun, confirmRun, EMPTY_RUN, type PersistenceRule, type RunState } from './persistence.js';

function signalOf(
  kind: AnomalySignal['kind'],
  seriesKey: string,
  sample: MetricSample,
  likelihood: number,
  since: number,
  reason: AnomalySignal['reason'],
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
}

/** What is kept per series in Redis: its identity, the last timestamp fed, and the detector's state. */
interface StoredSeries {
  k: string;
  t: number;
  d: DetectorSnapshot;
  /** the anomaly run (see persistence.ts) */
  r?: RunState;
}

/**
 * Streams samples through per-series detectors whose state lives in Redis (one key per series, expiring when the
 * series has been silent for `ttlSeconds`), so a restart of the bot loses nothing. Each batch reads every series it
 * touches with one MGET and writes them back with one pipeline. Within this process a series is updated by one batch
 * at a time (keyed locks); several web processes feeding the same series at once would race (last write wins), so
 * senders should keep a series on one connection.
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
}): DetectionService {
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
    const before = keys.map((k) => locks.get(k) ?? Promise.resolve());
    for (const k of keys) locks.set(k, mine);
    await Promise.all(before);
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
      const series = new Map<string, StoredSeries>();
      const pendingAgreement: { key: string; sample: MetricSample; likelihood: number }[] = [];
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
            const stored = series.get(p.key);
            if (!stored) continue;
            const step = confirmRun(stored.r ?? EMPTY_RUN, p.sample.timestamp);
            if (!step.change) continue;
            stored.r = step.state;
            const signal = signalOf(
              'confirmed',
              p.key,
              p.sample,
              p.likelihood,
              step.state.since ?? p.sample.timestamp,
              'agreement',
            );
            signal.agreeing = members.filter((m) => m !== p.key);
            signals.push(signal);
          }
        }
      };
      await withSeriesLocks(keys, async () => {
        const stored = keys.length > 0 ? await deps.redis.mget(...keys.map(redisKey)) : [];
        const writes = deps.redis.pipeline();
        keys.forEach((key, i) => {
          const raw = stored[i];
          let state: StoredSeries | null = null;
          if (raw) {
            try {
              state = JSON.parse(raw) as StoredSeries;
            } catch {
              state = null;
            }
          }
          let detector: StreamingDetector;
          try {
            detector = state && state.k === key ? restoreDetector(state.d) : createDetector();
          } catch {
            // a layout from another build: start the series afresh rather than refuse its points
            detector = createDetector();
            state = null;
          }
          let last = state && state.k === key ? state.t : Number.NEGATIVE_INFINITY;
          let run: RunState = state && state.k === key ? (state.r ?? EMPTY_RUN) : EMPTY_RUN;
          const points = (bySeries.get(key) ?? []).sort((a, b) => a.sample.timestamp - b.sample.timestamp);
          let fed = 0;
          for (const { index, sample } of points) {
            if (sample.timestamp <= last) {
              rejected.push({
                index,
                reason: `timestamp ${new Date(sample.timestamp).toISOString()} is not after the series' last point (${new Date(last).toISOString()})`,
              });
              continue;
            }
            const likelihood = detector.update(sample.timestamp, sample.value);
            last = sample.timestamp;
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
            const step = advanceRun(run, anomalous, sample.timestamp, rule);
            run = step.state;
            if (step.change) {
              signals.push(
                signalOf(
                  step.change,
                  key,
                  sample,
                  likelihood,
                  run.since ?? sample.timestamp,
                  step.change === 'confirmed' ? 'persisted' : 'recovered',
                ),
              );
            } else if (anomalous && !run.reported && sample.labels.service) {
              pendingAgreement.push({ key, sample, likelihood });
            }
          }
          accepted += fed;
          if (fed > 0) series.set(key, { k: key, t: last, d: detector.toJSON(), r: run });
        });
        await confirmByAgreement();
        for (const [key, value] of series)
          writes.set(redisKey(key), JSON.stringify(value), 'EX', deps.ttlSeconds);
        if (writes.length > 0) {
          const results = await writes.exec();
          const failed = results?.find(([err]) => err);
          if (failed) throw failed[0];
        }
      });
      anomalies.sort((a, b) => a.index - b.index);
      rejected.sort((a, b) => a.index - b.index);
      return { accepted, rejected, anomalies: anomalies.map(({ index: _, ...a }) => a), signals };
    },
  };
}
