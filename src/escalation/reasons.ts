import type { Incident } from '../incidents/incident.js';
import type { TimelineEvent } from '../incidents/timeline.js';

/**
 * Why an incident was handed to people, named from what its timeline recorded. The escalation flow routes on
 * `route`, the page shows `text` and `decide`, and postmortems count categories.
 */
export const ESCALATION_CATEGORIES = [
  'unknown_type',
  'ambiguous',
  'security',
  'fix_failed',
  'limit_hit',
  'approval_expired',
  'approval_rejected',
  'high_impact',
  'needs_human',
  'shadow',
  'manual',
] as const;
export type EscalationCategory = (typeof ESCALATION_CATEGORIES)[number];

export interface EscalationWhy {
  category: EscalationCategory;
  /** one line naming why a person is needed, from the evidence ("two causes within 20%: A (0.82) and B (0.75)") */
  text: string;
  /** security → the security team, database → the DBA team, default → the service's owner */
  route: 'security' | 'database' | 'default';
  /** a team the runbook named in its escalation target, if any */
  team: string | null;
  /** what the person must decide next, one sentence */
  decide: string;
}

type Event = Pick<TimelineEvent, 'type' | 'data' | 'actor'>;
type Cause = Omit<EscalationWhy, 'decide'>;

const WORDS: Record<EscalationCategory, string> = {
  unknown_type: 'unknown failure type',
  ambiguous: 'ambiguous cause',
  security: 'possible security issue',
  fix_failed: 'automatic fix failed',
  limit_hit: 'safety limit hit',
  approval_expired: 'approval expired',
  approval_rejected: 'fix rejected',
  high_impact: 'high impact',
  needs_human: 'needs a person',
  shadow: 'shadow mode',
  manual: 'escalated by hand',
};

const DECIDE: Record<EscalationCategory, string> = {
  unknown_type:
    'No runbook recognised this failure: work out the cause from the evidence below and decide the first fix.',
  ambiguous:
    'Two causes fit the evidence about equally well: decide which one it is, then apply (or approve) its fix.',
  security:
    'This may be a compromise: decide whether to isolate the affected hosts and rotate credentials before anything else touches them.',
  fix_failed:
    'The automatic fix did not hold: decide whether to roll back what was done or try the next step by hand.',
  limit_hit:
    'A safety limit stopped the automatic fix: decide whether the step is safe to run by hand or something else is needed.',
  approval_expired:
    'Nobody approved the proposed step in time: decide whether to run it now or do something else.',
  approval_rejected: 'The proposed fix was rejected: decide what to do instead.',
  high_impact:
    'The impact is too wide for an automatic fix: decide the remedy and whether to tell customers (status page).',
  needs_human: 'The runbook hands this case to a person: follow its note and decide the fix.',
  shadow: 'Shadow mode only recorded what it would have done: decide whether to run those steps by hand.',
  manual: 'Someone asked for a person: read their reason, take over the incident and decide the next step.',
};

/** The database route gets its own sentence: the DBA decides about the database, not the service. */
const DECIDE_DATABASE =
  'A database problem needs a DBA: decide whether to change the database by hand (queries, connections, failover).';

/** "unknown failure type", "ambiguous cause", … */
export function describeCategory(c: EscalationCategory): string {
  return WORDS[c];
}

export function isEscalationCategory(value: unknown): value is EscalationCategory {
  return typeof value === 'string' && (ESCALATION_CATEGORIES as readonly string[]).includes(value);
}

const SLACK_USER = /^[UW][A-Z0-9]{2,}$/;
/** one line: the reason is shown in a page field and a PagerDuty summary; characters */
const MAX_TEXT = 500;

const str = (v: unknown): string =>
  typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);
const record = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const oneLine = (s: string): string => {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_TEXT ? `${flat.slice(0, MAX_TEXT - 1)}…` : flat;
};

function routeOf(reason: string): EscalationWhy['route'] {
  if (reason === 'security') return 'security';
  if (reason === 'database' || reason === 'dba') return 'database';
  return 'default';
}

/**
 * Why the incident was handed to people, read from its timeline alone (events in id order, up to and including
 * the newest `incident.escalated`). The most recent cause before the newest `incident.escalated` wins; causes are
 * looked for first since the escalation before it, so an incident escalated, taken back and escalated again is named
 * by what happened the second time. An `incident.escalated` by a Slack user with no cause of its own is `manual`.
 */
export function classifyEscalation(
  events: readonly Event[],
  incident: Pick<Incident, 'severity' | 'service'>,
): EscalationWhy {
  let last = -1;
  for (let i = events.length - 1; i >= 0; i--) {
    if (events[i]?.type === 'incident.escalated') {
      last = i;
      break;
    }
  }
  const upTo = last >= 0 ? last : events.length - 1;
  let previous = -1;
  for (let i = upTo - 1; i >= 0; i--) {
    if (events[i]?.type === 'incident.escalated') {
      previous = i;
      break;
    }
  }
  const escalated = last >= 0 ? events[last] : undefined;
  const byPerson = escalated !== undefined && SLACK_USER.test(escalated.actor);

  const cause =
    newestCause(events, previous + 1, upTo) ?? (byPerson ? null : newestCause(events, 0, previous));
  if (cause) return withDecide(cause);
  const reason = oneLine(str(record(escalated?.data).reason));
  if (byPerson && escalated) {
    return withDecide({
      category: 'manual',
      text: `escalated by hand by ${escalated.actor}${reason ? `: ${reason}` : ''}`,
      route: 'default',
      team: null,
    });
  }
  return withDecide({
    category: 'needs_human',
    text: reason || `handed to people with no recorded cause (${incident.severity} on ${incident.service})`,
    route: 'default',
    team: null,
  });
}

function withDecide(cause: Cause): EscalationWhy {
  const decide =
    cause.route === 'database' && cause.category === 'needs_human' ? DECIDE_DATABASE : DECIDE[cause.category];
  return { ...cause, text: oneLine(cause.text), decide };
}

/** The newest cause among events[from..to] (inclusive), or null. */
function newestCause(events: readonly Event[], from: number, to: number): Cause | null {
  for (let i = to; i >= from; i--) {
    const event = events[i];
    if (!event) continue;
    const cause = causeOf(event);
    if (cause) return cause;
  }
  return null;
}

/** What one event says about why people are needed; null for events that are not a cause. */
function causeOf(event: Event): Cause | null {
  const d = record(event.data);
  switch (event.type) {
    case 'decision.made':
      return decisionCause(d);
    case 'runbook.none':
      return {
        category: 'unknown_type',
        text: `no runbook to run: ${str(d.reason)}`,
        route: 'default',
        team: null,
      };
    case 'step.refused':
      return {
        category: 'limit_hit',
        text: `${str(d.step)} (${str(d.action)}) refused: ${str(d.reason)}`,
        route: 'default',
        team: null,
      };
    case 'step.skipped':
      // only the kill switch stops a plan by skipping; a cleared condition or a resolved incident needs nobody
      if (d.kind !== 'automation_off') return null;
      return {
        category: 'limit_hit',
        text: `${str(d.step)} not run: ${str(d.reason)}`,
        route: 'default',
        team: null,
      };
    case 'approval.expired':
      return {
        category: 'approval_expired',
        text: `nobody approved ${str(d.step)} in time${d.expiresAt ? ` (expired at ${str(d.expiresAt)})` : ''}`,
        route: 'default',
        team: null,
      };
    case 'step.rejected':
      return {
        category: 'approval_rejected',
        text: `${str(d.step)} (${str(d.action)} on ${str(d.target)}) was rejected by ${event.actor}`,
        route: 'default',
        team: null,
      };
    case 'step.verification_failed':
      return fixFailed(`${str(d.step)} did not fix it: ${str(d.reason)}`);
    case 'step.failed':
      return fixFailed(`${str(d.step)} failed: ${str(d.summary)}`);
    case 'step.outcome_unknown':
      return fixFailed(`${str(d.step)}: outcome unknown (${str(d.reason)})`);
    case 'remediation.completed':
      return fixFailed(str(d.reason) || 'the plan ran but nothing verified the fix');
    case 'remediation.shadow':
      return { category: 'shadow', text: str(d.reason), route: 'default', team: null };
    case 'step.executed':
      // an `escalate` step of a plan hands over with its own reason and team
      if (d.action !== 'escalate') return null;
      return targetCause(record(d.inputs), str(d.summary));
    default:
      return null;
  }
}

function fixFailed(text: string): Cause {
  return { category: 'fix_failed', text, route: 'default', team: null };
}

function decisionCause(d: Record<string, unknown>): Cause | null {
  if (d.escalate !== true) return null;
  const escalation = record(d.escalation);
  const team = str(escalation.team) || null;
  const route = routeOf(str(escalation.reason));
  const hypothesis = d.hypothesis === null || d.hypothesis === undefined ? null : record(d.hypothesis);
  if (d.noRunbook === true || hypothesis === null) {
    return {
      category: 'unknown_type',
      text: str(d.reason) || str(escalation.why) || 'no hypothesis of the runbook was confirmed',
      route,
      team,
    };
  }
  if (escalation.reason === 'ambiguous') {
    return { category: 'ambiguous', text: ambiguousText(d, hypothesis, escalation), route: 'default', team };
  }
  return targetCause(
    escalation,
    `${str(hypothesis.description)}${escalation.note ? ` (${str(escalation.note)})` : ''}`,
  );
}

/** A runbook's escalation target (a hypothesis's `escalate`, or an `escalate` step's config). */
function targetCause(target: Record<string, unknown>, text: string): Cause {
  const reason = str(target.reason);
  const team = str(target.team) || null;
  if (reason === 'security') return { category: 'security', text, route: 'security', team };
  if (reason === 'high_impact') return { category: 'high_impact', text, route: 'default', team };
  return { category: 'needs_human', text, route: routeOf(reason), team };
}

interface Ranked {
  label: string;
  confidence: number | null;
}

/**
 * "two causes within 20%: Idle sessions hold the pool (0.82) and A slow query holds locks (0.75)" when the decision
 * recorded confidences (a `hypotheses` or `tried` list with `confidence`), else the two hypotheses it named.
 */
function ambiguousText(
  d: Record<string, unknown>,
  hypothesis: Record<string, unknown>,
  escalation: Record<string, unknown>,
): string {
  const listed = (Array.isArray(d.hypotheses) ? d.hypotheses : Array.isArray(d.tried) ? d.tried : [])
    .map(record)
    .filter((h) => h.confirmed !== false);
  const ranked: Ranked[] = listed
    .map((h) => ({
      label: str(h.description) || str(h.id),
      confidence: typeof h.confidence === 'number' ? h.confidence : null,
    }))
    .filter((h) => h.label !== '');
  const scored = ranked
    .filter((h) => h.confidence !== null)
    .sort((a, b) => (b.confidence ?? 0) - (a.confidence ?? 0));
  const [a, b] = scored;
  if (a && b) {
    return `two causes within 20%: ${a.label} (${fmt(a.confidence)}) and ${b.label} (${fmt(b.confidence)})`;
  }
  const others = Array.isArray(d.ambiguousWith) ? d.ambiguousWith.map(str).filter((s) => s !== '') : [];
  const first = str(hypothesis.description) || str(hypothesis.id);
  if (others.length > 0) return `two causes equally likely: ${first} and ${others.join(', ')}`;
  const why = str(escalation.why);
  return why ? `${first}; ${why}` : `two causes equally likely, one of them: ${first}`;
}

function fmt(n: number | null): string {
  return n === null ? '?' : String(Math.round(n * 100) / 100);
}
