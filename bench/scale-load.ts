/**
 * The scale bench's alert load: a steady stream of NEW incidents (a fresh service starts firing every 1/rate s) and,
 * on top, Alertmanager-like re-deliveries of the services that fire already (their main group re-delivered unchanged,
 * their second group firing and resolving). Open-loop: the pace never waits for the bot, so a saturated worker shows
 * as a growing queue, not as a slower sender. One delivery per group at a time, as Alertmanager.
 */

import { sleep } from './chaos-cluster.js';
import {
  type AlertGroup,
  buildGroups,
  createSender,
  type Delivery,
  deliveryOf,
  nextDelivery,
  type Sender,
} from './chaos-load.js';

/** the main group opens the incident and keeps firing; the second one flaps (fires, resolves) */
export const SCALE_ALERTNAMES = ['ScaleErrorRate', 'ScaleLatency'];

export interface LoadOptions {
  /** every service the load may open, in order (the cluster's targets file lists them) */
  services: string[];
  /** new services (incidents) per second */
  newPerSecond: number;
  /** re-deliveries of firing services per second */
  redeliveriesPerSecond: number;
  /** a service is re-delivered for this long after it opened; milliseconds */
  activeForMs: number;
  /** deliveries in flight at most; a slot due while this many are out is skipped (and counted) */
  concurrency: number;
  random: () => number;
  /** the web processes' ports, read at each attempt */
  ports: () => number[];
  token: string;
  /** a delivery is retried (Alertmanager-like, failing over) for at most this long; milliseconds */
  retryForMs: number;
}

export interface AcceptedDelivery {
  /** epoch milliseconds: when the 2xx arrived */
  at: number;
  alerts: number;
}

export interface Load {
  sender: Sender;
  /** every delivery answered 2xx, in the order the answers came */
  accepted: AcceptedDelivery[];
  /** service → epoch milliseconds of the 2xx that carried its first alert (the incident's first accept) */
  firstAcceptedAt: Map<string, number>;
  /** services opened so far */
  opened(): number;
  /** slots skipped because `concurrency` deliveries were out */
  skipped(): number;
  /** stops sending new deliveries and waits for those in flight (retries included) */
  stop(): Promise<void>;
}

interface ServiceGroups {
  service: string;
  main: AlertGroup;
  flapping: AlertGroup;
  openedAt: number;
}

export function startLoad(opts: LoadOptions): Load {
  const sender = createSender(opts.ports, opts.token, opts.retryForMs);
  const accepted: AcceptedDelivery[] = [];
  const firstAcceptedAt = new Map<string, number>();
  const busy = new Set<AlertGroup>();
  const inFlight = new Set<Promise<unknown>>();
  const active: ServiceGroups[] = [];
  let [opened, skipped, stopped] = [0, 0, false];

  const send = (group: AlertGroup, delivery: Delivery, service: string) => {
    if (inFlight.size >= opts.concurrency) {
      skipped += 1;
      return;
    }
    busy.add(group);
    const p = sender
      .send(delivery)
      .then((ok) => {
        if (!ok) return;
        const at = Date.now();
        accepted.push({ at, alerts: group.alerts.length });
        if (delivery.status === 'firing' && !firstAcceptedAt.has(service)) firstAcceptedAt.set(service, at);
      })
      .finally(() => {
        busy.delete(group);
        inFlight.delete(p);
      });
    inFlight.add(p);
  };

  /** runs `tick` every 1/perSecond s on a fixed schedule (no drift) until stopped */
  const schedule = async (perSecond: number, tick: () => void) => {
    if (perSecond <= 0) return;
    const startedAt = Date.now();
    for (let i = 0; !stopped; i++) {
      await sleep(startedAt + (i * 1000) / perSecond - Date.now());
      if (!stopped) tick();
    }
  };

  const openers = schedule(opts.newPerSecond, () => {
    const service = opts.services[opened];
    if (!service) return;
    opened += 1;
    const [main, flapping] = buildGroups([service], SCALE_ALERTNAMES) as [AlertGroup, AlertGroup];
    active.push({ service, main, flapping, openedAt: Date.now() });
    send(main, nextDelivery(main, opts.random, 0), service);
  });
  const redeliveries = schedule(opts.redeliveriesPerSecond, () => {
    while (active.length > 0 && Date.now() - (active[0] as ServiceGroups).openedAt > opts.activeForMs)
      active.shift();
    // only services whose incident exists: the first alert of a service is its main group's
    const firing = active.filter((s) => firstAcceptedAt.has(s.service));
    const pick = firing[Math.floor(opts.random() * firing.length)];
    if (!pick) return;
    const group = opts.random() < 0.5 ? pick.main : pick.flapping;
    if (busy.has(group)) return;
    const delivery =
      group === pick.main ? deliveryOf(group, 'firing') : nextDelivery(group, opts.random, 0.5);
    send(group, delivery, pick.service);
  });

  return {
    sender,
    accepted,
    firstAcceptedAt,
    opened: () => opened,
    skipped: () => skipped,
    async stop() {
      stopped = true;
      await Promise.all([openers, redeliveries]);
      await Promise.all(inFlight);
      sender.close();
    },
  };
}
