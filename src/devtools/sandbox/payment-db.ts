import pg from 'pg';
import type { Logger } from '../../logger.js';

/** A request found no free connection within the wait; the service answers 503 "pool exhausted". */
export class PoolExhaustedError extends Error {
  constructor(waitMs: number) {
    super(`pool exhausted: no connection free within ${waitMs} ms`);
    this.name = 'PoolExhaustedError';
  }
}

/** Numbers of the pool as HikariCP's metrics name them. */
export interface PoolStats {
  max: number;
  /** connections open (active + idle) */
  total: number;
  active: number;
  idle: number;
  /** requests waiting for a connection */
  pending: number;
  /** connections the pool-exhaustion fault holds idle in a transaction */
  held: number;
}

/**
 * payment-service's real pg.Pool. Sessions carry application_name 'payment-service', so the bot's Postgres
 * executors can find (and terminate) them in pg_stat_activity.
 */
export class PaymentDb {
  readonly pool: pg.Pool;
  private readonly held = new Set<pg.PoolClient>();
  private closed = false;

  /** `max`: pool size; `waitMs`: how long a request waits for a free connection */
  constructor(
    databaseUrl: string,
    max: number,
    private readonly waitMs: number,
    private readonly logger: Logger,
  ) {
    this.pool = new pg.Pool({
      connectionString: databaseUrl,
      max,
      application_name: 'payment-service',
      connectionTimeoutMillis: waitMs,
      idleTimeoutMillis: 30_000,
    });
    // An idle connection whose backend is terminated errors here; without a listener that would crash the process.
    this.pool.on('error', (err) =>
      this.logger.debug({ err }, 'sandbox: idle payment-service connection failed'),
    );
  }

  /** One unit of a payment's database work; throws PoolExhaustedError when no connection frees up in time. */
  async charge(amountCents: number): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      if (err instanceof Error && /timeout/i.test(err.message)) throw new PoolExhaustedError(this.waitMs);
      throw err;
    }
    try {
      await client.query('SELECT $1::bigint AS amount_cents', [amountCents]);
      client.release();
    } catch (err) {
      client.release(err instanceof Error ? err : true);
      throw err;
    }
  }

  stats(): PoolStats {
    const { totalCount: total, idleCount: idle, waitingCount: pending } = this.pool;
    return { max: this.max(), total, active: total - idle, idle, pending, held: this.held.size };
  }

  max(): number {
    return this.pool.options.max;
  }

  /** Raises the pool's max by `increaseBy`, never above `ceiling`; returns the new max (pg-pool reads it live). */
  raiseMax(increaseBy: number, ceiling: number): number {
    const next = Math.max(this.max(), Math.min(this.max() + increaseBy, ceiling));
    this.pool.options.max = next;
    return next;
  }

  /**
   * Takes every connection of the pool and leaves each idle in a transaction (BEGIN; SELECT 1; then nothing), the
   * way a code path that forgets to commit does. A held session terminated server-side (pg_terminate_backend) errors
   * on its client: it is released with that error, so the pool discards it and the service recovers by itself.
   * Gives up after `deadlineMs` and returns how many it holds.
   */
  async holdAll(deadlineMs = 10_000): Promise<number> {
    const until = Date.now() + deadlineMs;
    while (!this.closed && this.held.size < this.max() && Date.now() < until) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch {
        // traffic has the free connections right now and returns them within milliseconds; a database that
        // refuses outright is retried at a gentle pace until the deadline
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
      const onError = (err: Error) => {
        if (!this.held.delete(client)) return;
        this.logger.info({ err: err.message }, 'sandbox: a held payment-service session was terminated');
        client.release(err);
      };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        await client.query('SELECT 1');
        this.held.add(client);
      } catch (err) {
        client.off('error', onError);
        client.release(err instanceof Error ? err : true);
      }
    }
    return this.held.size;
  }

  /** Ends the held transactions and returns their connections to the pool. */
  async releaseHeld(): Promise<number> {
    const clients = [...this.held];
    this.held.clear();
    await Promise.all(
      clients.map(async (client) => {
        client.removeAllListeners('error');
        try {
          await client.query('ROLLBACK');
          client.release();
        } catch (err) {
          client.release(err instanceof Error ? err : true);
        }
      }),
    );
    return clients.length;
  }

  /** Closes the held sessions' connections outright, as a process that dies would. */
  dropHeld(): number {
    const clients = [...this.held];
    this.held.clear();
    for (const client of clients) {
      client.removeAllListeners('error');
      // a connection closing under us may still report an error; it must not become an uncaught one
      client.on('error', () => undefined);
      client.release(true);
    }
    return clients.length;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.dropHeld();
    await this.pool.end();
  }
}
