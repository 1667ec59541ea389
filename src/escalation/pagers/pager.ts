import { redactSecrets } from '../../diagnostics/redact.js';
import type { Logger } from '../../logger.js';

/**
 * The pager layer: one interface over every way of waking a person (Slack DM, PagerDuty, a signed webhook), a
 * fallback chain that tries them in order, and the record of every attempt (table `page_attempts`). The escalation
 * flow decides who and when; this layer only delivers and reports.
 */

export type PageSeverity = 'critical' | 'high' | 'warning' | 'info';
export type PageAction = 'trigger' | 'acknowledge' | 'resolve';

/** Who is paged; each pager uses the part it understands and is skipped when its part is missing. */
export interface PageTarget {
  /** Slack user id (U…/W…) for the DM */
  slackUser?: string;
  /** owning team: picks the PagerDuty routing key from config when `routingKey` is not given */
  team?: string;
  /** PagerDuty Events v2 integration key; overrides the team's key */
  routingKey?: string;
  /** PagerDuty user id; Events v2 cannot address a user, so it only rides along in custom_details */
  pagerdutyUser?: string;
}

export interface PageLink {
  href: string;
  text?: string;
}

/** One page about one incident. Text comes partly from monitored systems: every string is redacted before sending. */
export interface Page {
  incidentId: number;
  /** `ai-sre-incident-<id>` (see {@link dedupKeyFor}); PagerDuty groups trigger/ack/resolve by it */
  dedupKey: string;
  /** one sentence with impact; cut to 1024 characters for PagerDuty */
  summary: string;
  severity: PageSeverity;
  /** the affected system (service or host) */
  source: string;
  component?: string;
  group?: string;
  class?: string;
  /** when the problem started; default now */
  timestamp?: Date;
  target: PageTarget;
  links: PageLink[];
  /** the context packet (already redacted by the caller; redacted again here) */
  details: Record<string, unknown>;
  /**
   * The Slack rendering of the packet with its Acknowledge/Resolve/Reassign buttons (Block Kit, built by src/slack
   * from the redacted packet); the Slack pager sends it instead of its plain DM when given.
   */
  slackMessage?: { text: string; blocks: unknown[] };
}

/** What acknowledge and resolve need: the same incident, dedup key and target as the trigger. */
export type PageRef = Pick<Page, 'incidentId' | 'dedupKey' | 'target'>;

/**
 * How one try went. `failed_retryable` is a failure that would have been retried (429, 5xx, network, timeout); on
 * the last try it is where the pager gave up. `skipped`: the pager could not address the target (no Slack user, no
 * routing key), so nothing was sent.
 */
export type AttemptOutcome = 'succeeded' | 'failed_retryable' | 'failed' | 'skipped';

export interface AttemptRecord {
  /** 1-based */
  attempt: number;
  outcome: AttemptOutcome;
  /** null for network errors, timeouts and non-HTTP pagers' own errors */
  httpStatus: number | null;
  error?: string;
  startedAt: Date;
  finishedAt: Date;
}

/** The result of one pager call, all retries included. */
export interface PagerOutcome {
  ok: boolean;
  /** HTTP status of the last try (null: none, e.g. a timeout or a Slack API call) */
  status: number | null;
  /** every try, in order; `attempts.length` is how many were made */
  attempts: AttemptRecord[];
  /** why the last try failed, naming the status and the receiver's message */
  error?: string;
  /** the receiver's id for the page: PagerDuty's dedup_key, the Slack DM's "channel/ts" */
  externalRef?: string;
  /** Slack only: text for the caller to post in the incident thread (see slack-dm.ts) */
  threadMention?: string;
}

export interface Pager {
  /** stored in page_attempts.pager; the name used in config `order` */
  readonly name: string;
  trigger(page: Page): Promise<PagerOutcome>;
  acknowledge(ref: PageRef): Promise<PagerOutcome>;
  resolve(ref: PageRef): Promise<PagerOutcome>;
}

/** One row of page_attempts: one try of one pager for one page. */
export interface PageAttempt extends AttemptRecord {
  pager: string;
  action: PageAction;
  incidentId: number;
  dedupKey: string;
  externalRef?: string;
}

/** Where attempts go; src/escalation/pagers/attempts-repo.ts stores them in Postgres. */
export interface PageAttemptStore {
  recordAttempts(attempts: PageAttempt[]): Promise<void>;
}

export interface PageChainResult {
  ok: boolean;
  /** the pager that delivered; null when every pager failed */
  deliveredBy: string | null;
  /** the delivering pager's outcome (its externalRef, threadMention) */
  outcome: PagerOutcome | null;
  /** every try of every pager, in the order made */
  records: PageAttempt[];
  /** set when storing attempts failed; the page itself was still sent (a person beats an audit row) */
  storeError?: string;
}

/** The dedup key of an incident's pages: every trigger, ack and resolve for it must use the same one. */
export function dedupKeyFor(incidentId: number): string {
  return `ai-sre-incident-${incidentId}`;
}

/** A skipped call: the pager has no way to reach this target. Recorded so the chain's history says why. */
export function skippedOutcome(reason: string, now: Date = new Date()): PagerOutcome {
  return {
    ok: false,
    status: null,
    attempts: [
      { attempt: 1, outcome: 'skipped', httpStatus: null, error: reason, startedAt: now, finishedAt: now },
    ],
    error: reason,
  };
}

// keys whose values are secrets whatever they look like ("password": "hunter2" has no `password=` for the regexes)
const SECRET_KEY =
  /pass(word|wd)?$|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|authorization|credential/i;

/**
 * Redacts every string in a JSON-like value with {@link redactSecrets}, and masks whole values under keys that name a
 * secret. Belt and braces: the caller redacts the packet already, but a page leaves the bot for good.
 */
export function redactDeep(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (depth > 20 || value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const key = redactSecrets(k);
    out[key] =
      SECRET_KEY.test(k) && (typeof v === 'string' || typeof v === 'number')
        ? '***'
        : redactDeep(v, depth + 1);
  }
  return out;
}

/** The page with every outgoing string redacted (the target is not: routing keys and user ids are what we send to). */
export function redactPage(page: Page): Page {
  const r = (s: string) => redactSecrets(s);
  return {
    ...page,
    summary: r(page.summary),
    source: r(page.source),
    component: page.component === undefined ? undefined : r(page.component),
    group: page.group === undefined ? undefined : r(page.group),
    class: page.class === undefined ? undefined : r(page.class),
    links: page.links.map((l) => ({ href: r(l.href), text: l.text === undefined ? undefined : r(l.text) })),
    details: redactDeep(page.details) as Record<string, unknown>,
  };
}

function toRecords(pager: string, action: PageAction, ref: PageRef, outcome: PagerOutcome): PageAttempt[] {
  return outcome.attempts.map((a) => ({
    ...a,
    pager,
    action,
    incidentId: ref.incidentId,
    dedupKey: ref.dedupKey,
    externalRef: a.outcome === 'succeeded' ? outcome.externalRef : undefined,
  }));
}

async function callPager(pager: Pager, action: PageAction, page: Page | PageRef): Promise<PagerOutcome> {
  try {
    if (action === 'trigger') return await pager.trigger(page as Page);
    return action === 'acknowledge' ? await pager.acknowledge(page) : await pager.resolve(page);
  } catch (err) {
    // a pager bug must not stop the chain: the next pager may still wake someone
    const now = new Date();
    const error = `${pager.name} threw: ${err instanceof Error ? err.message : String(err)}`;
    return {
      ok: false,
      status: null,
      attempts: [{ attempt: 1, outcome: 'failed', httpStatus: null, error, startedAt: now, finishedAt: now }],
      error,
    };
  }
}

async function store(
  attemptStore: PageAttemptStore,
  records: PageAttempt[],
  log: Logger | undefined,
): Promise<string | undefined> {
  try {
    await attemptStore.recordAttempts(records);
    return undefined;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log?.error({ err, incidentId: records[0]?.incidentId }, 'could not store page attempts');
    return message;
  }
}

/**
 * Triggers `page` on each pager in turn until one succeeds. Each pager's tries are stored as soon as that pager
 * returns, before the next is tried, so a crash mid-chain still leaves the history up to it. A store failure is
 * reported in `storeError` and does not stop the chain.
 */
export async function pageWithFallback(
  pagers: readonly Pager[],
  page: Page,
  attemptStore: PageAttemptStore,
  log?: Logger,
): Promise<PageChainResult> {
  const records: PageAttempt[] = [];
  let storeError: string | undefined;
  for (const pager of pagers) {
    const outcome = await callPager(pager, 'trigger', page);
    const rows = toRecords(pager.name, 'trigger', page, outcome);
    records.push(...rows);
    storeError = (await store(attemptStore, rows, log)) ?? storeError;
    if (outcome.ok) return { ok: true, deliveredBy: pager.name, outcome, records, storeError };
    log?.warn(
      { pager: pager.name, incidentId: page.incidentId, error: outcome.error },
      'pager failed; trying next',
    );
  }
  return { ok: false, deliveredBy: null, outcome: null, records, storeError };
}

/**
 * Sends acknowledge or resolve to every given pager (not a fallback: each pager that delivered the trigger must
 * hear of it; see `deliveredPagers` in attempts-repo.ts). `ok` is true when every pager accepted it.
 */
export async function updatePagers(
  pagers: readonly Pager[],
  action: 'acknowledge' | 'resolve',
  ref: PageRef,
  attemptStore: PageAttemptStore,
  log?: Logger,
): Promise<{ ok: boolean; records: PageAttempt[]; storeError?: string }> {
  const records: PageAttempt[] = [];
  let storeError: string | undefined;
  let ok = true;
  for (const pager of pagers) {
    const outcome = await callPager(pager, action, ref);
    const rows = toRecords(pager.name, action, ref, outcome);
    records.push(...rows);
    storeError = (await store(attemptStore, rows, log)) ?? storeError;
    ok &&= outcome.ok;
  }
  return { ok, records, storeError };
}
