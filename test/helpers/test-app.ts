import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import { deleteKeys, dropDatabase } from '../../src/devtools/demo/environment.js';
import { type SlackStub, startSlackStub } from '../../src/devtools/slack-standin/stand-in.js';
import { createLogger } from '../../src/logger.js';
import { type Role, type RunningApp, startApp } from '../../src/run.js';

export { deleteKeys, dropDatabase };

export const WEBHOOK_TOKEN = 'test-webhook-token-0123456789';
export const SIGNING_SECRET = 'test-signing-secret-0123456789';

export interface TestApp {
  app: RunningApp;
  baseUrl: string;
  stub: SlackStub;
  databaseUrl: string;
  /** the environment the app was configured with (for a second process of the same app) */
  env: Record<string, string>;
  /** run SQL against the test's own database */
  query<T extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** POST a JSON (or raw string) body to a webhook route with the bearer token unless told otherwise */
  webhook(
    path: string,
    body: unknown,
    opts?: { token?: string | null; contentType?: string },
  ): Promise<{ status: number; json: Record<string, unknown> }>;
  /** resolves when the Slack queue has nothing waiting, delayed or active */
  drained(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Boots the whole app (HTTP via Bolt's receiver, workers) against its own Postgres database and BullMQ prefix, and
 * a Slack Web API stand-in on loopback. `close()` drops the database and the Redis keys.
 */
export async function startTestApp(
  env: Record<string, string> = {},
  opts: { viaPort?: number; prepareStub?: (stub: SlackStub) => void; role?: Role } = {},
): Promise<TestApp> {
  const id = randomBytes(5).toString('hex');
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/ai_sre_test_${id}`;
  // the app may reach Postgres through a test's proxy; the test's own queries and clean-up go direct
  const appDatabaseUrl = databaseUrl.replace(':5432/', `:${opts.viaPort ?? 5432}/`);
  const prefix = `ai-sre-test-${id}`;
  const stub = await startSlackStub();
  opts.prepareStub?.(stub);
  const appEnv: Record<string, string> = {
    DATABASE_URL: appDatabaseUrl,
    REDIS_URL: 'redis://127.0.0.1:6379',
    QUEUE_PREFIX: prefix,
    HOST: '127.0.0.1',
    PORT: '0',
    WEBHOOK_TOKEN,
    SLACK_BOT_TOKEN: 'xoxb-test-token',
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_API_URL: stub.url,
    SLACK_RETRY_BASE_MS: '100',
    SLACK_SYNC_DEBOUNCE_MS: '100',
    ROUTING_FILE: 'config/routing.yml',
    // no runbooks unless a test brings its own: the foundation tests see incidents without diagnostics
    RUNBOOKS_DIR: 'test/fixtures/runbooks-none',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...env,
  };
  const config = loadConfig(appEnv);
  const app = await startApp(config, createLogger(config.LOG_LEVEL), opts.role ?? 'all');
  const baseUrl = `http://127.0.0.1:${app.server?.port}`;
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  pool.on('error', () => {});
  return {
    app,
    baseUrl,
    stub,
    databaseUrl,
    env: appEnv,
    async query(sql, params) {
      return (await pool.query(sql, params)).rows;
    },
    async webhook(path, body, opts = {}) {
      const headers: Record<string, string> = { 'content-type': opts.contentType ?? 'application/json' };
      const token = opts.token === undefined ? WEBHOOK_TOKEN : opts.token;
      if (token !== null) headers.authorization = `Bearer ${token}`;
      const res = await fetch(`${baseUrl}${path}`, {
        method: 'POST',
        headers,
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
    },
    async drained(timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const depths = await app.ctx.queues.depths();
        // an escalation's delayed step is a timer minutes away (re-page if nobody acknowledges), not work in flight
        const busy = Object.entries(depths).some(
          ([queue, d]) => d.waiting + d.active + (queue === 'escalations' ? 0 : d.delayed) > 0,
        );
        if (!busy) return;
        if (Date.now() > deadline) throw new Error(`queues not drained: ${JSON.stringify(depths)}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async close() {
      await app.stop();
      await pool.end();
      await stub.close();
      await dropDatabase(databaseUrl);
      await deleteKeys(`${prefix}:*`);
    },
  };
}

/** Polls `fn` until it returns a truthy value; fails with `what` after the timeout. */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
