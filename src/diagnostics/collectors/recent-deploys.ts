import { z } from 'zod';
import { listRecentDeploys, type StoredDeployEvent } from '../../store/deploy-events-repo.js';
import type { Collector } from '../collector.js';
import { durationField, parseDuration } from '../duration.js';
import { renderTemplate, TemplateError } from '../templating.js';

/** 30 days; the deploy history a diagnostic may look back over */
const MAX_WINDOW_MS = 30 * 86_400_000;

const Duration = durationField({ minMs: 1_000, maxMs: MAX_WINDOW_MS, example: '"30m", "2h" or "1h30m"' });

export const RecentDeploysConfig = z.strictObject({
  /** the service whose deploys are listed; default the incident's service. A SQL bind parameter: no escaping. */
  service: z.string().min(1).max(200).default('{{incident.service}}'),
  /** only deploys to this environment; every environment when absent */
  environment: z.string().min(1).max(100).optional(),
  /** how far back from now deploys count; default "2h", at most "30d" */
  window: Duration.default('2h'),
  /** most deploys listed in `result.deploys`, newest first; default 10, at most 50 */
  limit: z.number().int().min(1).max(50).default(10),
});
export type RecentDeploysConfig = z.infer<typeof RecentDeploysConfig>;

/** One deploy as `result` shows it. */
interface DeployView {
  service: string;
  environment: string;
  version: string;
  previousVersion: string | null;
  status: string;
  /** ISO-8601 */
  deployedAt: string;
  deployedBy: string | null;
  commit: string | null;
  url: string | null;
  /** minutes before the diagnosis, one decimal; 0 for a deploy stamped slightly in the future (clock skew) */
  minutesAgo: number;
}

function clip(value: string, max: number): string;
function clip(value: string | null, max: number): string | null;
function clip(value: string | null, max: number): string | null {
  return value !== null && value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

function viewOf(d: StoredDeployEvent, now: Date): DeployView {
  return {
    service: clip(d.service, 200),
    environment: clip(d.environment, 100),
    version: clip(d.version, 200),
    previousVersion: clip(d.previousVersion, 200),
    status: d.status,
    deployedAt: d.deployedAt.toISOString(),
    deployedBy: clip(d.deployedBy, 200),
    commit: clip(d.commit, 100),
    url: clip(d.url, 500),
    minutesAgo: Math.max(0, Math.round((now.getTime() - d.deployedAt.getTime()) / 6_000) / 10),
  };
}

/** Template values land in a SQL bind parameter, so they need no escaping; Postgres text cannot hold NUL. */
function asBindParameter(value: string, name: string): string {
  if (value.includes('\0')) throw new TemplateError(`{{${name}}} contains a NUL byte`);
  return value;
}

/**
 * Runs one read of the bot's database, rejecting with a "timed out" Error as soon as `signal` aborts; `query_timeout`
 * (the time left) drops the connection should the signal never come.
 */
async function readDeploys<T>(
  what: string,
  signal: AbortSignal,
  timeoutMs: number,
  deadline: number,
  read: (timeoutMs: number) => Promise<T>,
): Promise<T> {
  const timedOut = () => new Error(`timed out after ${timeoutMs} ms reading ${what}`);
  if (signal.aborted) throw timedOut();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(timedOut());
    signal.addEventListener('abort', onAbort, { once: true });
    read(Math.max(1, deadline - Date.now()))
      .then(resolve, (err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        reject(
          message === 'Query read timeout' ? timedOut() : new Error(`could not read ${what}: ${message}`),
        );
      })
      .finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function versionLabel(version: string): string {
  return /^\d/.test(version) ? `v${version}` : version;
}

function agoLabel(minutes: number): string {
  if (minutes < 1) return 'under 1 min ago';
  if (minutes < 120) return `${Math.round(minutes)} min ago`;
  return `${(minutes / 60).toFixed(1)} h ago`;
}

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

function windowLabel(ms: number): string {
  if (ms % UNIT_MS.d === 0) return `${ms / UNIT_MS.d} d`;
  if (ms % UNIT_MS.h === 0) return `${ms / UNIT_MS.h} h`;
  if (ms % UNIT_MS.m === 0) return `${ms / UNIT_MS.m} min`;
  return `${ms / UNIT_MS.s} s`;
}

function summarize(
  config: RecentDeploysConfig,
  windowMs: number,
  deploys: DeployView[],
  latest: DeployView | null,
): string {
  const service = config.environment ? `${config.service} (${config.environment})` : config.service;
  const window = `the last ${windowLabel(windowMs)}`;
  const listed = `${deploys.length}${deploys.length === config.limit ? '+' : ''}`;
  const failed = deploys.filter((d) => d.status === 'failed' || d.status === 'rolled_back').length;
  if (latest) {
    const where = latest.environment !== 'production' ? ` to ${latest.environment}` : '';
    const by = latest.deployedBy ? ` by ${latest.deployedBy}` : '';
    const prev = latest.previousVersion ? ` (prev ${versionLabel(latest.previousVersion)})` : '';
    const others =
      deploys.length > 1
        ? `; ${listed} deploys in ${window}${failed ? `, ${failed} failed or rolled back` : ''}`
        : '';
    return `${latest.service} ${versionLabel(latest.version)} deployed${where} ${agoLabel(latest.minutesAgo)}${by}${prev}${others}`;
  }
  const newest = deploys[0];
  if (newest) {
    const deploysLabel = `${listed} deploy${deploys.length === 1 ? '' : 's'}`;
    return `no successful deploy of ${service} in ${window} (${deploysLabel}); newest ${versionLabel(newest.version)} ${newest.status.replace('_', ' ')} ${agoLabel(newest.minutesAgo)}`;
  }
  return `no deploys of ${service} in ${window}`;
}

/**
 * Deploys of the incident's service from the bot's own `deploy_events` (POST /webhooks/deploy). `value` is the
 * minutes since the newest succeeded deploy in the window (null when none), so `value < 30.0` reads "deployed in
 * the last 30 min".
 */
export const recentDeploysCollector: Collector<RecentDeploysConfig> = {
  type: 'recent_deploys',
  config: RecentDeploysConfig,
  // null when nothing was deployed in the window, so rules can guard with `value != null`
  valueType: 'dyn',
  render(config, vars) {
    return {
      ...config,
      service: renderTemplate(config.service, vars, asBindParameter),
      ...(config.environment !== undefined
        ? { environment: renderTemplate(config.environment, vars, asBindParameter) }
        : {}),
    };
  },
  async collect(config, ctx) {
    const windowMs = parseDuration(config.window) as number;
    const deadline = Date.now() + ctx.timeoutMs;
    const what = `deploys of ${config.service} from the bot's database`;
    const query = {
      service: config.service,
      since: new Date(ctx.now.getTime() - windowMs),
      limit: config.limit,
      ...(config.environment !== undefined ? { environment: config.environment } : {}),
    };
    const stored = await readDeploys(what, ctx.signal, ctx.timeoutMs, deadline, (timeoutMs) =>
      listRecentDeploys(ctx.db, query, { timeoutMs }),
    );
    let newestSuccess = stored.find((d) => d.status === 'succeeded');
    if (!newestSuccess && stored.length === config.limit) {
      // The list is full of newer started/failed deploys: the newest success may lie beyond it.
      [newestSuccess] = await readDeploys(what, ctx.signal, ctx.timeoutMs, deadline, (timeoutMs) =>
        listRecentDeploys(ctx.db, { ...query, limit: 1, statuses: ['succeeded'] }, { timeoutMs }),
      );
    }
    const deploys = stored.map((d) => viewOf(d, ctx.now));
    const latest = newestSuccess ? viewOf(newestSuccess, ctx.now) : null;
    const minutesSinceLatest = latest?.minutesAgo ?? null;
    return {
      value: minutesSinceLatest,
      result: { deploys, count: deploys.length, latest, minutesSinceLatest },
      summary: summarize(config, windowMs, deploys, latest),
    };
  },
};
