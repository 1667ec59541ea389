/**
 * The chaos suite's private cluster: a Redis that can be SIGKILLed and restarted empty, the bot's database reached
 * through a TCP proxy that can be taken down, the Slack stand-in, a health endpoint that fails for the chaos services,
 * and the bot as child processes (`--role web` ×2, `--role worker` ×2) that can be SIGKILLed and restarted.
 * Everything listens on 127.0.0.1 only. See bench/chaos.ts and bench/README.md.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { dropDatabase } from '../src/devtools/demo/environment.js';
import { type SlackStub, startSlackStub } from '../src/devtools/slack-standin/stand-in.js';
import { QUEUE_NAMES } from '../src/queue/jobs.js';
import { startTcpProxy, type TcpProxy } from '../test/helpers/tcp-proxy.js';
import { findFreePort } from './lib/common.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

export type BotRole = 'web' | 'worker';

export interface BotProcess {
  name: string;
  role: BotRole;
  /** web processes only; the same port across restarts */
  port: number;
  child: ChildProcess;
  exited: { code: number | null; signal: NodeJS.Signals | null } | null;
  lastLines: string[];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Polls `fn` every `everyMs` until it is truthy or `timeoutMs` passes; returns the last value. */
export async function pollUntil<T>(fn: () => Promise<T>, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined as T);
    if (value || Date.now() > deadline) return value;
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// private Redis

export interface PrivateRedis {
  port: number;
  url: string;
  /** SIGKILL: no persistence, so whatever it held is gone */
  kill(): Promise<void>;
  /** a fresh, empty server on the same port */
  start(): Promise<void>;
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await findFreePort();
  let child: ChildProcess | null = null;
  const kill = async () => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, 'exit');
    c.kill('SIGKILL');
    await exited;
  };
  const start = async () => {
    child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
      ],
      { stdio: 'ignore' },
    );
    const answered = await pollUntil(async () => {
      const client = new Redis({
        port,
        host: '127.0.0.1',
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      client.on('error', () => {});
      try {
        await client.connect();
        return (await client.ping()) === 'PONG';
      } finally {
        client.disconnect();
      }
    }, 15_000);
    if (!answered) throw new Error(`the private redis-server on port ${port} did not answer`);
  };
  process.once('exit', () => child?.kill('SIGKILL'));
  await start();
  return { port, url: `redis://127.0.0.1:${port}`, kill, start };
}

// ---------------------------------------------------------------------------------------------------------------
// the failing "service": its health check

export interface HealthServer {
  port: number;
  /** health checks received, by service */
  hits: Map<string, number>;
  /** answer this service's checks after this long; milliseconds */
  delays: Map<string, number>;
  close(): Promise<void>;
}

/** `GET /<service>` answers 503 (the default triage runbook's "down" branch: it escalates). */
export async function startHealthServer(): Promise<HealthServer> {
  const hits = new Map<string, number>();
  const delays = new Map<string, number>();
  const server: Server = createHttpServer((req, res) => {
    const service = (req.url ?? '/').slice(1);
    hits.set(service, (hits.get(service) ?? 0) + 1);
    setTimeout(
      () => res.writeHead(503, { 'content-type': 'text/plain' }).end('down'),
      delays.get(service) ?? 0,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    hits,
    delays,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// the bot's processes

const started = new Set<BotProcess>();
process.on('exit', () => {
  for (const bot of started) if (!bot.exited) bot.child.kill('SIGKILL');
});

function spawnBot(name: string, role: BotRole, port: number, env: Record<string, string>, verbose: boolean) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start', '--role', role], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
    // its own process group keeps Ctrl-C from reaching it: the suite stops it and cleans up
    detached: true,
  });
  const bot: BotProcess = { name, role, port, child, exited: null, lastLines: [] };
  started.add(bot);
  for (const stream of [child.stdout, child.stderr]) {
    let buffered = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.trim()) continue;
        bot.lastLines.push(line);
        if (bot.lastLines.length > 30) bot.lastLines.shift();
        if (verbose) process.stderr.write(`[${name}] ${line}\n`);
      }
    });
  }
  child.on('exit', (code, signal) => {
    bot.exited = { code, signal };
    started.delete(bot);
  });
  return bot;
}

function getStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------------------------
// the cluster

export interface ClusterOptions {
  verbose: boolean;
  /** BullMQ lock and stalled-check interval of the workers; milliseconds */
  workerLockMs: number;
  /** every service the scenarios will alert on (the targets and on-call files list them) */
  services: string[];
  /** `--role web` processes; default 2 */
  webs?: number;
  /** `--role worker` processes; default 2 */
  workers?: number;
  /** bot settings on top of the cluster's own (e.g. RUNBOOKS_DIR, DIAGNOSTICS_CONCURRENCY) */
  env?: Record<string, string>;
  /** names the database `ai_sre_<label>_<hex>`, the queue prefix and the temporary directory; default `chaos` */
  label?: string;
}

export interface Cluster {
  database: string;
  prefix: string;
  token: string;
  redis: PrivateRedis;
  proxy: TcpProxy;
  stub: SlackStub;
  health: HealthServer;
  /** direct to Postgres (not through the proxy), for the checks */
  pool: pg.Pool;
  webs: BotProcess[];
  workers: BotProcess[];
  /** SIGKILL, as a crash; resolves once it exited */
  kill(bot: BotProcess): Promise<void>;
  /** starts a killed (or exited) process again in the same slot, and waits until it is ready */
  restart(bot: BotProcess): Promise<BotProcess>;
  /** waiting + active jobs, and delayed ones except escalation timers; null when Redis does not answer */
  busyJobs(): Promise<number | null>;
  close(): Promise<void>;
}

/** One team owns every service; it pages alice (primary) at once, then bob 5 minutes later. */
function oncallYaml(services: string[]): string {
  return [
    'teams:',
    '  sre:',
    '    members:',
    '      - { id: alice, slack: U0CHAOS01 }',
    '      - { id: bob, slack: U0CHAOS02 }',
    '    rotations:',
    '      - { name: primary, type: daily, handoff: "00:00", timezone: UTC, start: 2026-01-01, members: [alice] }',
    '      - { name: secondary, type: daily, handoff: "00:00", timezone: UTC, start: 2026-01-01, members: [bob] }',
    '    policy: chaos',
    'services:',
    ...services.map((s) => `  ${s}: sre`),
    'routing:',
    '  default: sre',
    'policies:',
    '  chaos:',
    '    levels:',
    '      - targets: [{ oncall: sre, rotation: primary }]',
    '        delayMinutes: 5',
    '      - targets: [{ oncall: sre, rotation: secondary }]',
    '        delayMinutes: 5',
    '    repeat: 0',
    '',
  ].join('\n');
}

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const hex = randomBytes(4).toString('hex');
  const label = opts.label ?? 'chaos';
  const database = `ai_sre_${label}_${hex}`;
  const prefix = `ai-sre-${label}-${hex}`;
  const token = randomBytes(24).toString('hex');
  const directUrl = `postgres://postgres@127.0.0.1:5432/${database}`;
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanUp = async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => {});
    cleanups.length = 0;
  };
  try {
    const dir = await mkdtemp(join(tmpdir(), `ai-sre-${label}-`));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const redis = await startPrivateRedis();
    cleanups.push(() => redis.kill());
    const proxy = await startTcpProxy(5432);
    cleanups.push(() => proxy.close());
    const stub = await startSlackStub();
    cleanups.push(() => stub.close());
    const health = await startHealthServer();
    cleanups.push(() => health.close());
    await writeFile(
      join(dir, 'targets.yml'),
      [
        'services:',
        ...opts.services.flatMap((s) => [`  ${s}:`, `    health_url: http://127.0.0.1:${health.port}/${s}`]),
        '',
      ].join('\n'),
    );
    await writeFile(join(dir, 'oncall.yml'), oncallYaml(opts.services));
    await writeFile(join(dir, 'safety.yml'), 'mode: shadow\n');
    cleanups.push(() => dropDatabase(directUrl));
    const env: Record<string, string> = {
      DATABASE_URL: `postgres://postgres@127.0.0.1:${proxy.port}/${database}`,
      REDIS_URL: redis.url,
      QUEUE_PREFIX: prefix,
      HOST: '127.0.0.1',
      WEBHOOK_TOKEN: token,
      LOG_LEVEL: opts.verbose ? 'info' : 'warn',
      NODE_ENV: 'production',
      SLACK_BOT_TOKEN: 'xoxb-chaos-0000',
      SLACK_SIGNING_SECRET: randomBytes(16).toString('hex'),
      SLACK_API_URL: stub.url,
      SLACK_APP_TOKEN: '',
      SLACK_RETRY_BASE_MS: '200',
      SLACK_SYNC_DEBOUNCE_MS: '200',
      RUNBOOKS_DIR: 'test/fixtures/runbooks-e2e',
      TARGETS_FILE: join(dir, 'targets.yml'),
      ONCALL_FILE: join(dir, 'oncall.yml'),
      SAFETY_FILE: join(dir, 'safety.yml'),
      // Slack is the only pager: it must outlast the slack-storm scenario's outage (full jitter, 1 s doubling to
      // 30 s, 10 tries: about a minute) or the level's page is recorded failed until the next level, minutes later
      PAGER_MAX_ATTEMPTS: '10',
      PAGER_BACKOFF_BASE_MS: '1000',
      WORKER_LOCK_MS: String(opts.workerLockMs),
      ...opts.env,
    };
    const webs: BotProcess[] = [];
    const workers: BotProcess[] = [];

    const workerConnections = async (): Promise<number> => {
      const queue = new Queue('diagnostics', {
        prefix,
        connection: { url: redis.url, maxRetriesPerRequest: 1 },
      });
      queue.on('error', () => {});
      try {
        return await queue.getWorkersCount();
      } finally {
        await queue.close().catch(() => {});
      }
    };

    /**
     * A web process is ready when /readyz answers 200; a worker (no HTTP) when Redis shows more BullMQ worker
     * connections than `baseline`, the count before it started (one worker process is started at a time).
     */
    const waitReady = async (bot: BotProcess, baseline = 0) => {
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline) {
        if (bot.exited) throw new Error(`${bot.name} exited while starting:\n${bot.lastLines.join('\n')}`);
        if (bot.role === 'web') {
          if ((await getStatus(bot.port, '/readyz')) === 200) return;
        } else if ((await workerConnections().catch(() => 0)) > baseline) {
          return;
        }
        await sleep(200);
      }
      throw new Error(`${bot.name} was not ready within 120 s:\n${bot.lastLines.join('\n')}`);
    };

    const stopBot = async (bot: BotProcess, signal: NodeJS.Signals) => {
      if (bot.exited) return;
      const exited = once(bot.child, 'exit');
      bot.child.kill(signal);
      const timer = setTimeout(() => bot.child.kill('SIGKILL'), 40_000);
      await exited;
      clearTimeout(timer);
    };
    cleanups.push(async () => {
      await Promise.all([...webs, ...workers].map((b) => stopBot(b, 'SIGTERM')));
    });

    // the first web process creates and migrates the database; the others start on it afterwards
    const firstPort = await findFreePort();
    const first = spawnBot('web-1', 'web', firstPort, { ...env, MIGRATE_ON_START: 'true' }, opts.verbose);
    webs.push(first);
    await waitReady(first);
    for (let n = 2; n <= (opts.webs ?? 2); n++) {
      const web = spawnBot(
        `web-${n}`,
        'web',
        await findFreePort(),
        { ...env, MIGRATE_ON_START: 'false' },
        opts.verbose,
      );
      webs.push(web);
    }
    for (let n = 1; n <= (opts.workers ?? 2); n++) {
      const baseline = await workerConnections();
      const worker = spawnBot(
        `worker-${n}`,
        'worker',
        0,
        { ...env, MIGRATE_ON_START: 'false' },
        opts.verbose,
      );
      workers.push(worker);
      await waitReady(worker, baseline);
    }
    for (const web of webs.slice(1)) await waitReady(web);

    const pool = new pg.Pool({ connectionString: directUrl, max: 3, application_name: `ai-sre-${label}` });
    pool.on('error', () => {});
    cleanups.push(() => pool.end());
    // the suite's own view of the queues; errors while Redis is down are expected and not printed
    const queues = QUEUE_NAMES.map((name) => {
      const queue = new Queue(name, { prefix, connection: { url: redis.url, maxRetriesPerRequest: 1 } });
      queue.on('error', () => {});
      return queue;
    });
    cleanups.push(() => Promise.all(queues.map((q) => q.close())));

    const cluster: Cluster = {
      database,
      prefix,
      token,
      redis,
      proxy,
      stub,
      health,
      pool,
      webs,
      workers,
      kill: (bot) => stopBot(bot, 'SIGKILL'),
      async restart(bot) {
        await stopBot(bot, 'SIGKILL');
        // a SIGKILLed process's sockets are closed by the kernel: Redis forgets its connections at once
        await sleep(300);
        const baseline = bot.role === 'worker' ? await workerConnections() : 0;
        const again = spawnBot(
          bot.name,
          bot.role,
          bot.port,
          { ...env, MIGRATE_ON_START: 'false' },
          opts.verbose,
        );
        const list = bot.role === 'web' ? webs : workers;
        list[list.indexOf(bot)] = again;
        await waitReady(again, baseline);
        return again;
      },
      async busyJobs() {
        const counts = await Promise.race([
          Promise.all(queues.map((q) => q.getJobCounts('waiting', 'active', 'delayed'))).catch(() => null),
          sleep(5_000).then(() => null),
        ]);
        if (!counts) return null;
        // an escalation's delayed step is a timer minutes away (re-page), not work in flight
        return counts.reduce(
          (n, c, i) =>
            n +
            (c.waiting ?? 0) +
            (c.active ?? 0) +
            (QUEUE_NAMES[i] === 'escalations' ? 0 : (c.delayed ?? 0)),
          0,
        );
      },
      close: cleanUp,
    };
    return cluster;
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

export { findFreePort } from './lib/common.js';
