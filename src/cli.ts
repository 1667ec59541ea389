import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { type Role, startApp } from './run.js';
import { ensureDatabase, runMigrations } from './store/migrate.js';

const HELP = `ai-sre — Slack ChatOps first responder for production incidents

Usage:
  ai-sre start [--role web|worker|all]   run the bot (default role: all = HTTP + workers)
  ai-sre migrate                         create the database if missing and apply migrations
  ai-sre --help                          this text

Configuration comes from the environment (and ./.env when present); see .env.example.`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { role: { type: 'string', default: 'all' }, help: { type: 'boolean', short: 'h' } },
  });
  const command = positionals[0] ?? (values.help ? 'help' : 'start');
  if (values.help || command === 'help') {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (!['start', 'migrate'].includes(command)) {
    process.stderr.write(`unknown command "${command}"\n\n${HELP}\n`);
    return 2;
  }
  if (existsSync('.env')) process.loadEnvFile('.env');
  const config = loadConfig();
  const log = createLogger(config.LOG_LEVEL);
  if (command === 'migrate') {
    await ensureDatabase(config.DATABASE_URL, log);
    const applied = await runMigrations(config.DATABASE_URL, log);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
    return 0;
  }
  const role = values.role as Role;
  if (!['web', 'worker', 'all'].includes(role)) {
    process.stderr.write(`--role: expected web, worker or all, got "${role}"\n`);
    return 2;
  }
  const app = await startApp(config, log, role);
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, 'shutting down');
      const force = setTimeout(() => {
        log.error('shutdown took over 30 s; exiting');
        process.exit(1);
      }, 30_000);
      force.unref();
      app.stop().then(resolve, (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`ai-sre: ${err.message}\n`);
      process.exitCode = 78; // EX_CONFIG
      return;
    }
    process.stderr.write(`ai-sre: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
