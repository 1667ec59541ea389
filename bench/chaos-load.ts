/**
 * The chaos suite's alert load: Alertmanager v4 groups (one service and alert name, a few instances each) and a sender
 * that behaves like Alertmanager — it retries a delivery on 5xx, 429 and connection errors with back-off, moving to
 * the next web process each time — and records every answer, so the invariants can be checked against what was
 * accepted.
 */
import { createHash } from 'node:crypto';
import { Agent, request } from 'node:http';
import { sleep } from './chaos-cluster.js';

const NEVER = '0001-01-01T00:00:00Z';

export interface ChaosAlert {
  labels: Record<string, string>;
  /** stable per label set, as Alertmanager's */
  fingerprint: string;
}

export interface AlertGroup {
  service: string;
  alertname: string;
  alerts: ChaosAlert[];
  /** RFC 3339; the current firing's start (a new one each time the group fires again) */
  startsAt: string;
  firing: boolean;
}

export interface Delivery {
  group: AlertGroup;
  status: 'firing' | 'resolved';
  /** RFC 3339 */
  startsAt: string;
  body: string;
}

export interface Ack {
  deliveryId: number;
  service: string;
  status: 'firing' | 'resolved';
  fingerprints: string[];
}

export interface Attempt {
  /** epoch milliseconds, when the answer came */
  at: number;
  web: number;
  /** 0: no answer (connection refused or reset, timeout) */
  status: number;
}

export interface SendStats {
  deliveries: number;
  accepted: number;
  /** non-2xx answers (and no answers) that were retried, by `HTTP 503` / `no answer (ECONNREFUSED)` */
  retried: Map<string, number>;
  /** deliveries refused for good (4xx other than 429), or still failing after the retry budget */
  gaveUp: number;
  acks: Ack[];
  attempts: Attempt[];
}

function fingerprintOf(labels: Record<string, string>): string {
  const hash = createHash('sha256');
  for (const key of Object.keys(labels).sort()) hash.update(`${key}\0${labels[key]}\0`);
  return hash.digest('hex').slice(0, 16);
}

/** `services` × `alertnames` groups of 1–3 alerts (instances). */
export function buildGroups(services: string[], alertnames: string[]): AlertGroup[] {
  const groups: AlertGroup[] = [];
  services.forEach((service, s) => {
    alertnames.forEach((alertname, a) => {
      const size = 1 + ((s + a) % 3);
      const alerts = Array.from({ length: size }, (_, i) => {
        const labels = {
          alertname,
          service,
          severity: a === 0 ? 'critical' : 'high',
          instance: `${service}-${i}:8080`,
          env: 'production',
        };
        return { labels, fingerprint: fingerprintOf(labels) };
      });
      groups.push({ service, alertname, alerts, startsAt: new Date().toISOString(), firing: false });
    });
  });
  return groups;
}

/** One Alertmanager webhook for the group, every alert in `status`. */
export function deliveryOf(
  group: AlertGroup,
  status: 'firing' | 'resolved',
  startsAt = group.startsAt,
): Delivery {
  const groupLabels = { alertname: group.alertname, service: group.service };
  const endsAt = status === 'resolved' ? new Date().toISOString() : NEVER;
  const body = JSON.stringify({
    version: '4',
    groupKey: `{}/{env="production"}:{alertname="${group.alertname}", service="${group.service}"}`,
    truncatedAlerts: 0,
    receiver: 'ai-sre',
    status,
    groupLabels,
    commonLabels: { ...groupLabels, env: 'production' },
    commonAnnotations: {},
    externalURL: 'http://alertmanager.chaos:9093',
    alerts: group.alerts.map((alert) => ({
      status,
      labels: alert.labels,
      annotations: { summary: `${group.service}: ${group.alertname}` },
      startsAt,
      endsAt,
      generatorURL: 'http://prometheus.chaos:9090/graph',
      fingerprint: alert.fingerprint,
    })),
  });
  return { group, status, startsAt, body };
}

/** The group's next delivery as Alertmanager would send it: fire, re-deliver while firing, sometimes resolve. */
export function nextDelivery(group: AlertGroup, random: () => number, resolveShare: number): Delivery {
  if (!group.firing) {
    group.firing = true;
    group.startsAt = new Date().toISOString();
    return deliveryOf(group, 'firing');
  }
  if (random() < resolveShare) {
    group.firing = false;
    return deliveryOf(group, 'resolved');
  }
  return deliveryOf(group, 'firing');
}

export function newSendStats(): SendStats {
  return { deliveries: 0, accepted: 0, retried: new Map(), gaveUp: 0, acks: [], attempts: [] };
}

export interface Sender {
  stats: SendStats;
  /** delivers with retries; resolves true once a web process answered 2xx */
  send(delivery: Delivery): Promise<boolean>;
  close(): void;
}

/**
 * Round-robin over the web processes' ports (read at each attempt, so a restarted process is used again); a failed
 * attempt waits 100 ms doubling to 2 s, then tries the next process, for at most `retryForMs`.
 */
export function createSender(ports: () => number[], token: string, retryForMs: number): Sender {
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const stats = newSendStats();
  let next = 0;
  const post = (port: number, body: string) =>
    new Promise<{ status: number; error?: string; json?: { delivery?: number } }>((resolve) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/webhooks/alertmanager',
          agent,
          timeout: 15_000,
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            let json: { delivery?: number } | undefined;
            try {
              json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { delivery?: number };
            } catch {
              // error pages need not be JSON
            }
            resolve({ status: res.statusCode ?? 0, json });
          });
          res.on('error', (err) => resolve({ status: 0, error: err.message }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, error: err.code ?? err.message }));
      req.end(body);
    });

  return {
    stats,
    async send(delivery) {
      stats.deliveries += 1;
      const deadline = Date.now() + retryForMs;
      let backoff = 100;
      for (;;) {
        const list = ports();
        const web = next++ % list.length;
        const answer = await post(list[web] as number, delivery.body);
        stats.attempts.push({ at: Date.now(), web, status: answer.status });
        if (answer.status >= 200 && answer.status < 300) {
          const deliveryId = Number(answer.json?.delivery);
          stats.accepted += 1;
          stats.acks.push({
            deliveryId,
            service: delivery.group.service,
            status: delivery.status,
            fingerprints: delivery.group.alerts.map((a) => a.fingerprint),
          });
          return true;
        }
        const key = answer.status ? `HTTP ${answer.status}` : `no answer (${answer.error ?? 'unknown'})`;
        const retryable = answer.status === 0 || answer.status === 429 || answer.status >= 500;
        if (!retryable || Date.now() > deadline) {
          stats.gaveUp += 1;
          stats.retried.set(`gave up after ${key}`, (stats.retried.get(`gave up after ${key}`) ?? 0) + 1);
          return false;
        }
        stats.retried.set(key, (stats.retried.get(key) ?? 0) + 1);
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 2_000);
      }
    },
    close: () => agent.destroy(),
  };
}

/**
 * Sends `count` deliveries over `durationMs` at an even pace, at most `concurrency` at once and one per group at a
 * time (as Alertmanager), picking groups at random; `onProgress(i)` runs before the i-th delivery (0-based), so a
 * scenario can inject its fault mid-stream. Resolves when every delivery has been answered or given up.
 */
export async function stream(
  sender: Sender,
  groups: AlertGroup[],
  opts: {
    count: number;
    durationMs: number;
    concurrency: number;
    random: () => number;
    resolveShare: number;
    onProgress?: (i: number) => Promise<void> | void;
  },
): Promise<void> {
  const busy = new Set<AlertGroup>();
  const inFlight = new Set<Promise<unknown>>();
  const interval = opts.durationMs / Math.max(1, opts.count);
  const startedAt = Date.now();
  for (let i = 0; i < opts.count; i++) {
    await opts.onProgress?.(i);
    await sleep(startedAt + i * interval - Date.now());
    while (inFlight.size >= opts.concurrency) await Promise.race(inFlight);
    // the first pass fires every group once, in order; then groups are picked at random
    let group = i < groups.length ? (groups[i] as AlertGroup) : undefined;
    for (let tries = 0; !group || busy.has(group); tries++) {
      group = groups[Math.floor(opts.random() * groups.length)] as AlertGroup;
      if (tries > 50 && busy.has(group)) await Promise.race(inFlight);
    }
    const chosen = group;
    busy.add(chosen);
    const delivery = nextDelivery(chosen, opts.random, opts.resolveShare);
    const p = sender.send(delivery).finally(() => {
      busy.delete(chosen);
      inFlight.delete(p);
    });
    inFlight.add(p);
  }
  await Promise.all(inFlight);
}

export { seededRandom } from './lib/common.js';
