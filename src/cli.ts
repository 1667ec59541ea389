import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, loadToolConfig } from './config.js';
import { createDetector } from './detection/create-detector.js';
import { detectCommand } from './detection/detect-cli.js';
import { createLogger } from './logger.js';
import { type Role, startApp } from './run.js';
import { dryRunRunbook, validateRunbooks } from './runbooks/runbooks-cli.js';
import { ensureDatabase, runMigrations } from './store/migrate.js';

const HELP = `ai-sre — Slack ChatOps first responder for production incidents

Usage:
  ai-sre start [--role web|worker|all]   run the bot (default role: all = HTTP + workers)
  ai-sre migrate                         create the database if missing and apply migrations
  ai-sre runbooks validate [paths…]      check runbooks (default: RUNBOOKS_DIR); exit 1 on any problem
  ai-sre runbooks dry-run <id> --alert alert.json [--diagnostics results.json]
                                         print what a runbook would check and decide; touches nothing
  ai-sre detect --input <csv|dir> --output <csv|dir>
                                         score timestamp,value CSVs with the anomaly detector, writing
                                         timestamp,value,anomaly_score (a directory recursively); needs no config
  ai-sre demo [--approve wait|auto] [--exit] [--port N] [--standin-port N] [--sandbox-port N]
                                         the whole loop on this machine: sandbox, Slack stand-in (a web page)
                                         and the bot; breaks a service and narrates what the bot does
  ai-sre gameday [--only p1,p2…]         inject every sandbox failure in turn (and a few at once) and print a
                                         scorecard; exit 1 when a target is missed
  ai-sre postmortem <id> [--fresh]       print an incident's postmortem draft (Markdown): the stored one, or
                                         with --fresh (or when none is stored) one written now from its timeline
  ai-sre --help                          this text

Configuration comes from the environment (and ./.env when present); see .env.example.`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      role: { type: 'string', default: 'all' },
      help: { type: 'boolean', short: 'h' },
      alert: { type: 'string' },
      diagnostics: { type: 'string' },
      input: { type: 'string' },
      output: { type: 'string' },
      approve: { type: 'string', default: 'wait' },
      exit: { type: 'boolean', default: false },
      only: { type: 'string' },
      port: { type: 'string' },
      'standin-port': { type: 'string' },
      'sandbox-port': { type: 'string' },
      fresh: { type: 'boolean', default: false },
    },
  });
  const command = positionals[0] ?? (values.help ? 'help' : 'start');
  if (values.help || command === 'help') {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (command === 'runbooks') return runbooksCommand(positionals.slice(1), values);
  if (command === 'detect') {
    if (!values.input || !values.output) {
      process.stderr.write('usage: ai-sre detect --input <csv|dir> --output <csv|dir>\n');
      return 2;
    }
    return detectCommand(
      { input: values.input, output: values.output, createDetector },
      { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) },
    );
  }
  if (command === 'demo' || command === 'gameday') return devtoolsCommand(command, values);
  if (command === 'postmortem') return postmortemCommand(positionals[1], values.fresh === true);
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

/** The demo and the game day live in src/devtools and load only when asked for. */
async function devtoolsCommand(
  command: 'demo' | 'gameday',
  values: {
    approve?: string;
    exit?: boolean;
    only?: string;
    port?: string;
    'standin-port'?: string;
    'sandbox-port'?: string;
  },
): Promise<number> {
  if (command === 'demo') {
    if (values.approve !== 'wait' && values.approve !== 'auto') {
      process.stderr.write(`--approve: expected wait or auto, got "${values.approve}"\n`);
      return 2;
    }
    const ports: Record<string, number | undefined> = {};
    for (const flag of ['port', 'standin-port', 'sandbox-port'] as const) {
      const text = values[flag];
      if (text === undefined) continue;
      const port = Number(text);
      if (!Number.isInteger(port) || port < 1 || port > 65_535) {
        process.stderr.write(`--${flag}: expected a port number (1-65535), got "${text}"\n`);
        return 2;
      }
      ports[flag] = port;
    }
    const { runDemo } = await import('./devtools/demo/demo.js');
    try {
      const resolved = await runDemo({
        approve: values.approve,
        exitWhenDone: values.exit === true,
        botPort: ports.port,
        standinPort: ports['standin-port'],
        sandboxBasePort: ports['sandbox-port'],
      });
      return resolved ? 0 : 1;
    } catch (error) {
      const e = error as NodeJS.ErrnoException & { port?: number };
      if (e.code !== 'EADDRINUSE') throw error;
      process.stderr.write(
        `ai-sre demo: port ${e.port ?? ''} is in use; pick others with --port (bot, 3000), --standin-port (3100) ` +
          'or --sandbox-port (4100, and the three after it)\n',
      );
      return 1;
    }
  }
  const { runGameday, SCENARIOS, EXPECTATIONS } = await import('./devtools/demo/gameday.js');
  let scenarios = SCENARIOS;
  if (values.only) {
    const wanted = values.only.split(',').map((p) => p.trim());
    const unknown = wanted.filter((p) => !(p in EXPECTATIONS));
    if (unknown.length > 0) {
      process.stderr.write(
        `--only: unknown pattern ${unknown.join(', ')} (known: ${Object.keys(EXPECTATIONS).join(', ')})\n`,
      );
      return 2;
    }
    scenarios = scenarios.filter((s) => s.every((p) => wanted.includes(p)));
  }
  const { passed } = await runGameday({ scenarios });
  return passed ? 0 : 1;
}

async function runbooksCommand(
  args: string[],
  values: { alert?: string; diagnostics?: string },
): Promise<number> {
  if (existsSync('.env')) process.loadEnvFile('.env');
  const config = loadToolConfig();
  const io = { out: (t: string) => process.stdout.write(t), err: (t: string) => process.stderr.write(t) };
  const [sub, ...rest] = args;
  if (sub === 'validate') {
    return validateRunbooks(rest.length > 0 ? rest : [config.RUNBOOKS_DIR], config.TARGETS_FILE, io);
  }
  if (sub === 'dry-run') {
    const id = rest[0];
    if (!id || !values.alert) {
      process.stderr.write(
        'usage: ai-sre runbooks dry-run <id> --alert alert.json [--diagnostics results.json]\n',
      );
      return 2;
    }
    return dryRunRunbook(
      {
        id,
        alertFile: values.alert,
        diagnosticsFile: values.diagnostics,
        runbooksDir: config.RUNBOOKS_DIR,
        targetsFile: config.TARGETS_FILE,
        safetyFile: config.SAFETY_FILE,
      },
      io,
    );
  }
  process.stderr.write(`unknown runbooks command "${sub ?? ''}": expected validate or dry-run\n\n${HELP}\n`);
  return 2;
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

/** `ai-sre postmortem <id>`: the draft as Markdown on stdout (so `> file.md` exports it); reads DATABASE_URL only. */
async function postmortemCommand(ref: string | undefined, fresh: boolean): Promise<number> {
  const { parseIncidentRef } = await import('./incidents/incident.js');
  const id = ref === undefined ? null : parseIncidentRef(ref);
  if (id === null) {
    process.stderr.write(
      `usage: ai-sre postmortem <id> [--fresh]  (an incident id like 42 or INC-42${ref ? `, not "${ref}"` : ''})\n`,
    );
    return 2;
  }
  if (existsSync('.env')) process.loadEnvFile('.env');
  const config = loadToolConfig();
  const { createDb } = await import('./store/db.js');
  const { getPostmortem, loadPostmortemInput } = await import('./postmortem/postmortem-repo.js');
  const { draftPostmortem } = await import('./postmortem/postmortem-draft.js');
  const db = createDb(config.DATABASE_URL, 2);
  try {
    const stored = fresh ? null : await getPostmortem(db, id);
    if (stored) {
      process.stdout.write(stored.markdown.endsWith('\n') ? stored.markdown : `${stored.markdown}\n`);
      return 0;
    }
    const input = await loadPostmortemInput(db, id);
    if (!input) {
      process.stderr.write(`no incident INC-${id} in ${new URL(config.DATABASE_URL).pathname.slice(1)}\n`);
      return 1;
    }
    const { markdown } = draftPostmortem(input);
    process.stdout.write(markdown.endsWith('\n') ? markdown : `${markdown}\n`);
    return 0;
  } finally {
    await db.end();
  }
}
