import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { loadConfig } from '../../config.js';
import { createLogger } from '../../logger.js';
import { type RunningApp, startApp } from '../../run.js';
import { ensureDatabase } from '../../store/migrate.js';
import { AlertRuleEvaluator, loadRuleFile } from '../sandbox/alert-rules.js';
import { handleQueryApi } from '../sandbox/query-api.js';
import { type Sandbox, startSandbox } from '../sandbox/sandbox.js';
import { SeriesStore } from '../sandbox/tsdb.js';
import { type SlackStub, startSlackStub } from '../slack-standin/stand-in.js';

/** The project's root, where `demo/` lives, whatever the working directory. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const demoPath = (p: string) => `${PROJECT_ROOT}demo/${p}`;

/** The stand-in's people: alice is the person at the page; bob is a second approver (the game day's). */
export const DEMO_USERS = [
  { id: 'U0001', name: 'alice' },
  { id: 'U0002', name: 'bob' },
  { id: 'U0003', name: 'carol' },
] as const;
export const INCIDENT_CHANNEL = { id: 'C0001', name: 'incidents' } as const;

/** between two scrapes of the sandbox and two evaluations of its alert rules; milliseconds */
const SCRAPE_INTERVAL_MS = 1_000;

export interface DemoEnvironmentOptions {
  /** the bot's HTTP port; 0 picks a free one */
  botPort?: number;
  /** the Slack stand-in's port (its page is on `/`); 0 picks a free one */
  standinPort?: number;
  /** the sandbox's control port (services on the next ports); 0 picks free ones */
  sandboxBasePort?: number;
  /** the bot's database; dropped and created again at start, so a run starts clean */
  databaseName?: string;
  /** the database the sandbox's payment-service pool connects to (created when missing) */
  sandboxDatabaseName?: string;
  /** BullMQ key prefix; its keys are deleted at start and on close */
  queuePrefix?: string;
  /** where the sandbox keeps its capped log volumes */
  dataDir?: string;
  /** `builtin`: the sandbox evaluates demo/prometheus/alert-rules.yml itself; `none`: a real Prometheus does */
  alerts?: 'builtin' | 'none';
  /** traffic the sandbox sends through its services; requests per second */
  trafficRps?: number;
  /** pino level of the bot's own log (the demo narrates from Postgres instead); default silent */
  logLevel?: string;
  /** the Postgres server, without a database name; default the local one */
  postgresUrl?: string;
  redisUrl?: string;
  /** more bot environment (e.g. SLACK_SYNC_DEBOUNCE_MS) */
  env?: Record<string, string>;
  /** drop both databases and remove the data directory on close (tests); the demo keeps them for a look afterwards */
  dropOnClose?: boolean;
}

export interface DemoEnvironment {
  bot: RunningApp;
  botUrl: string;
  standin: SlackStub;
  sandbox: Sandbox;
  /** what the sandbox's query API answers from (scraped every second) */
  store: SeriesStore;
  rules: AlertRuleEvaluator | null;
  /** the bot's database */
  db: pg.Pool;
  databaseUrl: string;
  webhookToken: string;
  signingSecret: string;
  close(): Promise<void>;
}

/**
 * Starts everything the demo, the game day and the end-to-end tests need, on loopback: the sandbox (and its mini
 * Prometheus), the Slack stand-in, and the bot wired to both with the sandbox's runbooks, targets, policy and on-call.
 */
export async function startDemoEnvironment(opts: DemoEnvironmentOptions = {}): Promise<DemoEnvironment> {
  const postgresUrl = opts.postgresUrl ?? 'postgres://postgres@127.0.0.1:5432';
  const redisUrl = opts.redisUrl ?? 'redis://127.0.0.1:6379';
  const databaseUrl = `${postgresUrl}/${opts.databaseName ?? 'ai_sre_demo'}`;
  const sandboxDatabaseUrl = `${postgresUrl}/${opts.sandboxDatabaseName ?? 'ai_sre_sandbox'}`;
  const queuePrefix = opts.queuePrefix ?? 'ai-sre-demo';
  const dataDir = opts.dataDir ?? `${PROJECT_ROOT}.demo-data`;
  const webhookToken = randomBytes(16).toString('hex');
  const signingSecret = randomBytes(16).toString('hex');

  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
  };
  if (opts.dropOnClose) {
    closers.push(() => rm(dataDir, { recursive: true, force: true }));
    closers.push(() => dropDatabase(sandboxDatabaseUrl));
    closers.push(() => dropDatabase(databaseUrl));
  }
  try {
    await recreateDatabase(databaseUrl);
    await ensureDatabase(sandboxDatabaseUrl);
    await deleteKeys(`${queuePrefix}:*`, redisUrl);
    await mkdir(dataDir, { recursive: true });

    // held until the bot binds it: the sandbox must know the bot's address first, and a port merely found free could
    // meanwhile go to one of the sandbox's listeners or to an outgoing connection (they share the ephemeral range)
    const reserved = await reservePort(opts.botPort ?? 0);
    closers.push(() => reserved.release());
    const botPort = reserved.port;
    const botUrl = `http://127.0.0.1:${botPort}`;

    const standin = await startSlackStub({
      port: opts.standinPort ?? 0,
      channels: [INCIDENT_CHANNEL],
      users: [...DEMO_USERS],
    });
    closers.push(() => standin.close());

    const store = new SeriesStore();
    let rules: AlertRuleEvaluator | null = null;
    const sandbox = await startSandbox({
      basePort: opts.sandboxBasePort ?? 0,
      databaseUrl: sandboxDatabaseUrl,
      dataDir,
      deployWebhook: { url: `${botUrl}/webhooks/deploy`, token: webhookToken },
      ...(opts.trafficRps !== undefined ? { trafficRps: opts.trafficRps } : {}),
      extraRoutes: (req, res) => handleQueryApi(store, req, res, rules ? { alerts: rules } : {}),
    });
    closers.push(() => sandbox.close());

    // the targets file reads the sandbox's addresses from the environment (`${SANDBOX_…}`)
    process.env.SANDBOX_DATABASE_URL = sandboxDatabaseUrl;
    for (const [name, service] of Object.entries(sandbox.services)) {
      process.env[`SANDBOX_${name.toUpperCase().replaceAll('-', '_')}_URL`] = service.url;
    }

    const scrape = () => store.append(sandbox.collect(), Date.now());
    scrape();
    if ((opts.alerts ?? 'builtin') === 'builtin') {
      rules = new AlertRuleEvaluator({
        rules: await loadRuleFile(demoPath('prometheus/alert-rules.yml')),
        store,
        webhook: { url: `${botUrl}/webhooks/alertmanager`, token: webhookToken },
        externalUrl: sandbox.controlUrl,
      });
    }
    const evaluator = rules;
    const timer = setInterval(() => {
      scrape();
      void evaluator?.evaluate(Date.now());
    }, SCRAPE_INTERVAL_MS);
    closers.push(async () => clearInterval(timer));

    const env: Record<string, string> = {
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      QUEUE_PREFIX: queuePrefix,
      HOST: '127.0.0.1',
      PORT: String(botPort),
      WEBHOOK_TOKEN: webhookToken,
      SLACK_BOT_TOKEN: 'xoxb-demo-token',
      SLACK_SIGNING_SECRET: signingSecret,
      SLACK_API_URL: standin.url,
      SLACK_SYNC_DEBOUNCE_MS: '300',
      SLACK_RETRY_BASE_MS: '200',
      RUNBOOKS_DIR: demoPath('runbooks'),
      TARGETS_FILE: demoPath('targets.yml'),
      SAFETY_FILE: demoPath('safety.yml'),
      ROUTING_FILE: demoPath('routing.yml'),
      ONCALL_FILE: demoPath('oncall.yml'),
      PROMETHEUS_URL: sandbox.controlUrl,
      ACTION_TIMEOUT_MS: '15000',
      LOG_LEVEL: opts.logLevel ?? 'silent',
      ...opts.env,
    };
    const config = loadConfig(env);
    await reserved.release();
    const bot = await startApp(config, createLogger(config.LOG_LEVEL), 'all');
    closers.push(() => bot.stop());
    standin.connectBot({ url: botUrl, signingSecret });

    const db = new pg.Pool({ connectionString: databaseUrl, max: 3 });
    db.on('error', () => {});
    closers.push(() => db.end());
    closers.push(() => deleteKeys(`${queuePrefix}:*`, redisUrl).then(() => {}));

    return {
      bot,
      botUrl,
      standin,
      sandbox,
      store,
      rules,
      db,
      databaseUrl,
      webhookToken,
      signingSecret,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * Listens on `port` of loopback (0: any free one) and keeps it until `release()`, so the port stays ours while other
 * things bind and connect. A taken fixed port fails here, before anything else started.
 */
export function reservePort(port = 0): Promise<{ port: number; release(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      let released: Promise<void> | null = null;
      resolve({
        port: typeof address === 'object' && address !== null ? address.port : port,
        release() {
          released ??= new Promise((done) => server.close(() => done()));
          return released;
        },
      });
    });
  });
}

/** Drops `databaseUrl`'s database (whoever is connected) and creates it empty. */
export async function recreateDatabase(databaseUrl: string): Promise<void> {
  await dropDatabase(databaseUrl);
  await ensureDatabase(databaseUrl);
}

/** Drops the database of `databaseUrl` (connecting to `postgres` on the same server), whoever is connected. */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** Deletes the Redis keys matching `pattern`; returns how many. */
export async function deleteKeys(pattern: string, redisUrl = 'redis://127.0.0.1:6379'): Promise<number> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
  let deleted = 0;
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}
