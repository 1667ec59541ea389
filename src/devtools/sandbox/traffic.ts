import { randomUUID } from 'node:crypto';
import { callJson, createPeerAgent } from './http-io.js';

/** how often the generator sends its share of requests; milliseconds */
const TICK_MS = 100;
/** a checkout gets this long before the generator gives up on it; milliseconds */
const REQUEST_TIMEOUT_MS = 5_000;
/** more requests than this in flight and the generator skips a beat, so an outage cannot pile up sockets */
const MAX_IN_FLIGHT = 200;

/** Outcomes the generator saw, by HTTP status ("0": no answer). */
export interface TrafficStats {
  sent: number;
  byStatus: Record<string, number>;
}

/**
 * Real HTTP checkouts against api-gateway at a steady rate; each flows gateway → payment → fraud. Light by design:
 * one timer, keep-alive sockets, a cap on requests in flight.
 */
export class TrafficGenerator {
  private readonly agent = createPeerAgent();
  private timer: NodeJS.Timeout | null = null;
  private due = 0;
  private inFlight = 0;
  private seq = 0;
  readonly stats: TrafficStats = { sent: 0, byStatus: {} };

  /** `rps`: checkouts per second (0: none) */
  constructor(
    private readonly checkoutUrl: string,
    private rps: number,
  ) {}

  start(): void {
    if (this.timer || this.rps <= 0) return;
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  setRate(rps: number): void {
    this.rps = rps;
    if (rps <= 0) this.stop();
    else this.start();
  }

  private tick(): void {
    this.due += (this.rps * TICK_MS) / 1000;
    while (this.due >= 1) {
      this.due -= 1;
      if (this.inFlight >= MAX_IN_FLIGHT) continue;
      this.send();
    }
  }

  private send(): void {
    this.seq += 1;
    this.inFlight += 1;
    this.stats.sent += 1;
    const body = {
      orderId: randomUUID(),
      customerId: `cus-${(this.seq * 7919) % 5_000}`,
      amountCents: 500 + ((this.seq * 104_729) % 20_000),
      currency: 'EUR',
    };
    void callJson(this.agent, this.checkoutUrl, body, REQUEST_TIMEOUT_MS).then((answer) => {
      this.inFlight -= 1;
      const key = String(answer.status);
      this.stats.byStatus[key] = (this.stats.byStatus[key] ?? 0) + 1;
    });
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  close(): void {
    this.stop();
    this.agent.destroy();
  }
}
