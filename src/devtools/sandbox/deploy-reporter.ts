import type { Logger } from '../../logger.js';
import { callJson, createPeerAgent } from './http-io.js';

/** A deploy or rollback as the bot's POST /webhooks/deploy accepts it (src/alerts/sources/deploy.ts). */
export interface DeployReport {
  service: string;
  version: string;
  previous_version: string;
  status: 'succeeded' | 'rolled_back';
  description: string;
}

/** per delivery; milliseconds */
const DELIVERY_TIMEOUT_MS = 3_000;

/**
 * Tells the bot about deploys and rollbacks, as a CI/CD system would. Delivery is best effort: a bot that is down
 * must not break the sandbox, so failures are logged, never thrown.
 */
export class DeployReporter {
  private readonly agent = createPeerAgent();
  private readonly pending = new Set<Promise<void>>();
  private seq = 0;
  /** every report made, delivered or not, oldest first */
  readonly sent: (DeployReport & { id: string; delivered: boolean | null })[] = [];

  constructor(
    private readonly webhook: { url: string; token: string } | undefined,
    private readonly logger: Logger,
  ) {}

  report(event: DeployReport): void {
    this.seq += 1;
    const id = `sandbox-${event.service}-${Date.now()}-${this.seq}`;
    const entry = { ...event, id, delivered: this.webhook ? false : null };
    this.sent.push(entry);
    if (!this.webhook) return;
    const body = { ...event, id, deployed_by: 'sandbox', deployed_at: new Date().toISOString() };
    const delivery = callJson(this.agent, this.webhook.url, body, DELIVERY_TIMEOUT_MS, {
      authorization: `Bearer ${this.webhook.token}`,
    }).then((answer) => {
      entry.delivered = answer.status >= 200 && answer.status <= 299;
      if (!entry.delivered) {
        this.logger.warn(
          { status: answer.status, error: answer.error, service: event.service, version: event.version },
          'sandbox: the deploy webhook refused a deploy event',
        );
      }
    });
    this.pending.add(delivery);
    void delivery.finally(() => this.pending.delete(delivery));
  }

  /** Waits for deliveries still under way (each is bounded by its timeout). */
  async flush(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  close(): void {
    this.agent.destroy();
  }
}
