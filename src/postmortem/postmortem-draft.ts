import { redactSecrets } from '../diagnostics/redact.js';
import { describeEvent } from '../incidents/describe-event.js';
import { incidentRef } from '../incidents/incident.js';
import type { TimelineEvent } from '../incidents/timeline.js';
import { deriveFollowUps, type FollowUpEvidence, NO_FOLLOW_UPS } from './follow-ups.js';
import type { PostmortemInput } from './postmortem-repo.js';

/** What the optional LLM summariser wrote: advisory prose, never evidence. */
export interface Narrative {
  text: string;
  suspectedCause: string;
  /** the model's name, shown with the section and recorded as `llm:<model>` */
  model: string;
}

export interface PostmortemDraft {
  markdown: string;
  /** 3–6 plain lines for the incident's Slack thread (not mrkdwn: the Slack builder escapes them) */
  summary: string;
  /** the newest timeline event the draft includes; 0 for an empty timeline */
  throughEventId: number;
  /** 'deterministic', or 'llm:<model>' when a narrative was included */
  generator: string;
  /** the follow-up items in the draft (plain, redacted text); empty when the bot found none */
  followUps: string[];
}

export const DETERMINISTIC_GENERATOR = 'deterministic';

const BOT = 'ai-sre';
const SLACK_USER = /^[UW][A-Z0-9]{2,}$/;

/** detection this fast after the first signal counts as went-well; milliseconds (5 min) */
const QUICK_DETECTION_MS = 5 * 60_000;
/** detection slower than this counts as went-badly; milliseconds (15 min) */
const SLOW_DETECTION_MS = 15 * 60_000;
/** an approval or an acknowledgement slower than this counts as went-badly; milliseconds (5 min) */
const SLOW_RESPONSE_MS = 5 * 60_000;
/** an alert repeating more often than this is noted as noise */
const NOISY_REPEATS = 10;
/** longest line taken from one event or one untrusted text; characters */
const MAX_LINE = 600;
/** longest line of the Slack summary; characters */
const MAX_SUMMARY_LINE = 300;

export type ActorKind = 'human' | 'bot' | 'alert';

/** A Slack user id is a person, `ai-sre` is the bot, anything else is a signal source (alertmanager, anomaly…). */
export function actorKind(actor: string): ActorKind {
  if (SLACK_USER.test(actor)) return 'human';
  return actor === BOT ? 'bot' : 'alert';
}

/**
 * Builds the postmortem of an incident from its timeline alone (plus the incident row for id, service, title,
 * severity and labels). Pure and deterministic: the same input gives the same document; an unresolved incident is
 * measured up to `now`, or up to its newest event when `now` is not given. Every text that came from a monitored
 * system or a person is redacted and escaped, so it cannot add headings, links or HTML to the document.
 */
export function draftPostmortem(
  input: PostmortemInput,
  opts: { narrative?: Narrative | null; now?: Date } = {},
): PostmortemDraft {
  const facts = readFacts(input, opts.now);
  const followUps = deriveFollowUps(followUpEvidence(facts));
  const narrative = usableNarrative(opts.narrative);
  const generator = narrative ? `llm:${oneLine(narrative.model)}` : DETERMINISTIC_GENERATOR;
  const assessment = assessResponse(facts);

  const sections = [
    `# ${md(facts.ref)}: ${md(input.incident.title)}`,
    renderSummary(facts),
    renderImpact(facts),
    renderDetection(facts),
    renderTimeline(facts),
    renderDiagnostics(facts),
    renderActions(facts),
    renderRootCause(facts),
    ...(narrative ? [renderNarrative(narrative)] : []),
    renderList('What went well', assessment.well, 'Nothing stood out.'),
    renderList('What went badly', assessment.badly, 'Nothing stood out.'),
    renderFollowUps(followUps),
    renderFooter(facts, generator),
  ];
  return {
    markdown: `${sections.join('\n\n')}\n`,
    summary: buildSummary(facts, followUps.length),
    throughEventId: facts.events.at(-1)?.id ?? 0,
    generator,
    followUps,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the timeline

type Data = Record<string, unknown>;

const str = (v: unknown): string =>
  typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);
const rec = (v: unknown): Data =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Data) : {};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

interface AlertSeen {
  at: Date;
  source: string;
  name: string;
  severity: string;
  summary: string;
}

interface CheckSeen {
  at: Date;
  id: string;
  status: string;
  summary: string;
  error: string;
}

interface DecisionSeen {
  at: Date;
  runbookId: string;
  runbookName: string;
  outcome: string;
  text: string;
  hypothesis: { id: string; description: string } | null;
  escalate: boolean;
  reason: string;
  noRunbook: boolean;
  planSteps: string[];
  /** diagnostics the decision read: its recorded evidence, or the checks its text names */
  evidenceIds: string[];
}

type StepOutcome =
  | 'waiting for approval'
  | 'approved, not run'
  | 'rejected'
  | 'approval expired'
  | 'started, no result recorded'
  | 'executed, not verified'
  | 'dry run only'
  | 'failed'
  | 'refused by the safety policy'
  | 'skipped'
  | 'verified'
  | 'did not fix it'
  | 'outcome unknown';

interface StepStory {
  executionId: string;
  step: string;
  action: string;
  target: string;
  requested: { at: Date; approvers: string[] } | null;
  decided: { verdict: 'approved' | 'rejected' | 'expired'; by: string; at: Date } | null;
  started: Date | null;
  dryRun: boolean;
  result: string | null;
  outcome: StepOutcome;
  /** why it was refused or skipped, or why the verification failed */
  reason: string | null;
  verification: string | null;
  refusedClicks: { by: string; why: string }[];
  /** person → their latest verdict */
  feedback: Map<string, 'right' | 'wrong'>;
}

interface EscalationSeen {
  at: Date;
  category: string;
  categoryText: string;
  reason: string;
  team: string | null;
}

interface NoteSeen {
  at: Date;
  by: string;
  cause: string;
  fix: string;
  note: string;
}

interface Facts {
  input: PostmortemInput;
  events: TimelineEvent[];
  ref: string;
  firstSignalAt: Date;
  openedAt: Date;
  openedBy: string;
  resolved: { at: Date; by: string; reason: string } | null;
  /** the end of the measured window for an unresolved incident */
  asOf: Date;
  alerts: AlertSeen[];
  repeats: Map<string, number>;
  severityChanges: { at: Date; from: string; to: string }[];
  /** the latest result per check, in the order the checks first reported */
  checks: Map<string, CheckSeen>;
  decisions: DecisionSeen[];
  runbookNone: string | null;
  steps: StepStory[];
  escalations: EscalationSeen[];
  pages: { at: Date; targets: string[] }[];
  pageFailures: { at: Date; target: string; error: string; team: string | null }[];
  acks: { at: Date; by: string }[];
  exhausted: { at: Date; team: string | null }[];
  deferred: boolean;
  notes: NoteSeen[];
  /** a person did something (other than leaving feedback or notes) before the incident resolved */
  humanResponded: boolean;
}

function readFacts(input: PostmortemInput, now: Date | undefined): Facts {
  const { incident, events } = input;
  const lastAt = events.at(-1)?.at ?? incident.updatedAt;
  const facts: Facts = {
    input,
    events,
    ref: incidentRef(incident.id),
    firstSignalAt: incident.firstSignalAt,
    openedAt: incident.openedAt,
    openedBy: events.find((e) => e.type === 'incident.opened')?.actor ?? incident.source,
    resolved: null,
    asOf: now ?? lastAt,
    alerts: [],
    repeats: new Map(),
    severityChanges: [],
    checks: new Map(),
    decisions: [],
    runbookNone: null,
    steps: [],
    escalations: [],
    pages: [],
    pageFailures: [],
    acks: [],
    exhausted: [],
    deferred: false,
    notes: [],
    humanResponded: false,
  };
  const stories = new Map<string, StepStory>();
  const approvalSteps = new Map<string, StepStory>();

  const storyOf = (d: Data): StepStory => {
    const key = `${str(d.executionId)}:${str(d.step)}`;
    let story = stories.get(key);
    if (!story) {
      story = {
        executionId: str(d.executionId),
        step: str(d.step),
        action: str(d.action),
        target: str(d.target),
        requested: null,
        decided: null,
        started: null,
        dryRun: false,
        result: null,
        outcome: 'started, no result recorded',
        reason: null,
        verification: null,
        refusedClicks: [],
        feedback: new Map(),
      };
      stories.set(key, story);
      facts.steps.push(story);
    }
    if (!story.action && d.action) story.action = str(d.action);
    if (!story.target && d.target) story.target = str(d.target);
    return story;
  };

  for (const event of events) {
    const d = rec(event.data);
    if (actorKind(event.actor) === 'human' && !facts.resolved && !isAfterword(event.type)) {
      facts.humanResponded = true;
    }
    switch (event.type) {
      case 'alert.attached':
        facts.alerts.push({
          at: event.at,
          source: event.actor,
          name: str(d.name),
          severity: str(d.severity),
          summary: str(d.summary),
        });
        break;
      case 'alert.repeated':
        facts.repeats.set(str(d.name), (facts.repeats.get(str(d.name)) ?? 0) + 1);
        break;
      case 'incident.severity_changed':
        facts.severityChanges.push({ at: event.at, from: str(d.from), to: str(d.to) });
        break;
      case 'incident.resolved':
        facts.resolved = { at: event.at, by: event.actor, reason: str(d.reason) };
        break;
      case 'diagnostic.completed': {
        const id = str(d.diagnostic);
        // a re-run check keeps its first place in the list and shows its latest result
        facts.checks.delete(id);
        facts.checks.set(id, {
          at: event.at,
          id,
          status: str(d.status),
          summary: str(d.summary),
          error: str(d.error),
        });
        break;
      }
      case 'decision.made':
        facts.decisions.push(readDecision(event, d, [...facts.checks.keys()]));
        break;
      case 'runbook.none':
        facts.runbookNone = str(d.reason) || 'no runbook matched';
        break;
      case 'approval.requested': {
        const story = storyOf(d);
        story.requested = { at: event.at, approvers: list(d.approvers).map(str) };
        story.outcome = 'waiting for approval';
        approvalSteps.set(str(d.approvalId), story);
        break;
      }
      case 'step.approved':
      case 'step.rejected': {
        const story = storyOf(d);
        const verdict = event.type === 'step.approved' ? 'approved' : 'rejected';
        story.decided = { verdict, by: event.actor, at: event.at };
        story.outcome = verdict === 'approved' ? 'approved, not run' : 'rejected';
        break;
      }
      case 'approval.expired': {
        const story = approvalSteps.get(str(d.approvalId)) ?? storyOf(d);
        story.decided = { verdict: 'expired', by: '', at: event.at };
        story.outcome = 'approval expired';
        break;
      }
      case 'approval.refused': {
        const story = approvalSteps.get(str(d.approvalId));
        story?.refusedClicks.push({ by: event.actor, why: str(d.why) });
        break;
      }
      case 'step.started': {
        const story = storyOf(d);
        story.started = event.at;
        story.dryRun = d.dryRun === true;
        story.outcome = 'started, no result recorded';
        break;
      }
      case 'step.executed':
      case 'step.dry_run':
      case 'step.failed': {
        const story = storyOf(d);
        story.result = str(d.summary) || null;
        story.outcome =
          event.type === 'step.executed'
            ? 'executed, not verified'
            : event.type === 'step.dry_run'
              ? 'dry run only'
              : 'failed';
        break;
      }
      case 'step.refused':
      case 'step.skipped': {
        const story = storyOf(d);
        story.reason = str(d.reason) || null;
        story.outcome = event.type === 'step.refused' ? 'refused by the safety policy' : 'skipped';
        break;
      }
      case 'step.verified':
      case 'step.verification_failed': {
        const story = storyOf(d);
        story.verification = describeEvent(event);
        story.outcome = event.type === 'step.verified' ? 'verified' : 'did not fix it';
        if (event.type === 'step.verification_failed') story.reason = str(d.reason) || null;
        break;
      }
      case 'step.outcome_unknown': {
        const story = storyOf(d);
        story.reason = str(d.reason) || null;
        story.outcome = 'outcome unknown';
        break;
      }
      case 'feedback.action': {
        const story = facts.steps.findLast((s) => s.step === str(d.step)) ?? storyOf(d);
        if (d.verdict === 'right' || d.verdict === 'wrong') story.feedback.set(event.actor, d.verdict);
        break;
      }
      case 'escalation.started':
        facts.escalations.push({
          at: event.at,
          category: str(d.category),
          categoryText: str(d.categoryText) || str(d.category).replace(/_/g, ' '),
          reason: str(d.reason),
          team: str(d.team) || null,
        });
        break;
      case 'page.sent':
        facts.pages.push({
          at: event.at,
          targets: list(d.targets)
            .map((t) => str(rec(t).name))
            .filter((n) => n !== ''),
        });
        break;
      case 'page.failed':
        facts.pageFailures.push({
          at: event.at,
          target: str(d.target),
          error: str(d.error),
          team: facts.escalations.at(-1)?.team ?? null,
        });
        break;
      case 'page.deferred':
        facts.deferred = true;
        break;
      case 'page.acknowledged':
        facts.acks.push({ at: event.at, by: str(d.by) || event.actor });
        break;
      case 'escalation.exhausted':
        facts.exhausted.push({ at: event.at, team: facts.escalations.at(-1)?.team ?? null });
        break;
      case 'resolution.noted':
        facts.notes.push({
          at: event.at,
          by: event.actor,
          cause: str(d.cause),
          fix: str(d.fix),
          note: str(d.note),
        });
        break;
      default:
        break;
    }
  }
  return facts;
}

/** events people add after the fact; they do not count as responding to the incident */
function isAfterword(type: string): boolean {
  return type === 'feedback.action' || type === 'resolution.noted';
}

function readDecision(event: TimelineEvent, d: Data, checksSoFar: string[]): DecisionSeen {
  const hypothesis = rec(d.hypothesis);
  const text = str(d.text);
  const recorded = list(d.evidence)
    .map((e) => str(rec(e).diagnostic))
    .filter((id) => id !== '');
  // decide.ts names the diagnostics its winning condition read in the decision text: "(disk_usage 96 % critical)"
  const named = checksSoFar.filter((id) => new RegExp(`(^|[^\\w])${escapeRegExp(id)}([^\\w]|$)`).test(text));
  return {
    at: event.at,
    runbookId: str(d.runbookId),
    runbookName: str(d.runbookName) || str(d.runbookId),
    outcome: str(d.outcome),
    text,
    hypothesis:
      d.hypothesis && typeof d.hypothesis === 'object'
        ? { id: str(hypothesis.id), description: str(hypothesis.description) }
        : null,
    escalate: d.escalate === true,
    reason: str(d.reason),
    noRunbook: d.noRunbook === true,
    planSteps: list(d.plan).map((s) => str(rec(s).id)),
    evidenceIds: recorded.length > 0 ? recorded : named,
  };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function followUpEvidence(f: Facts): FollowUpEvidence {
  const decision = f.decisions.at(-1) ?? null;
  const hypothesis = decision?.hypothesis ?? null;
  const r = (s: string) => redactSecrets(oneLine(s));
  const runbookOf = (step: string) =>
    f.decisions.findLast((d) => d.planSteps.includes(step)) ?? decision ?? null;
  const escalated = f.escalations.length > 0;
  return {
    service: r(f.input.incident.service),
    labels: Object.fromEntries(Object.entries(f.input.incident.labels).map(([k, v]) => [k, r(str(v))])),
    alertNames: [...new Set(f.alerts.map((a) => r(a.name)).filter((n) => n !== ''))],
    signalTexts: [
      ...f.alerts.map((a) => r(a.summary)),
      r(f.input.incident.title),
      ...[...f.checks.values()].map((c) => r(c.summary)),
    ],
    runbook: decision ? { id: r(decision.runbookId), name: r(decision.runbookName) } : null,
    hypothesis: hypothesis ? { id: r(hypothesis.id), description: r(hypothesis.description) } : null,
    noRunbook: f.runbookNone !== null || f.decisions.some((d) => d.noRunbook),
    noteCauses: f.notes.map((n) => r(n.cause)).filter((c) => c !== ''),
    verificationFailed: f.steps.filter((s) => s.outcome === 'did not fix it').map((s) => r(s.step)),
    failedSteps: f.steps
      .filter((s) => s.outcome === 'failed')
      .map((s) => ({ step: r(s.step), action: r(s.action) })),
    expiredApprovals: f.steps
      .filter((s) => s.decided?.verdict === 'expired')
      .map((s) => ({
        step: r(s.step),
        action: r(s.action || s.step),
        requestedAt: s.requested?.at ?? f.openedAt,
      })),
    wrongActions: f.steps
      .filter((s) => [...s.feedback.values()].includes('wrong'))
      .map((s) => ({
        step: r(s.step),
        action: r(s.action || s.step),
        runbook: r(runbookOf(s.step)?.runbookName ?? 'runbook'),
      })),
    pageFailures: f.pageFailures.map((p) => ({ team: p.team ? r(p.team) : null, target: r(p.target) })),
    exhaustedTeams: f.exhausted.map((x) => (x.team ? r(x.team) : null)),
    causeUnknown: escalated && hypothesis === null && f.notes.every((n) => n.cause.trim() === ''),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Plain words

/** "under a second", "45 seconds", "4 minutes 30 seconds", "2 hours 5 minutes", "3 days 4 hours" */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  if (total < 1) return 'under a second';
  const unit = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const pair = (a: number, aWord: string, b: number, bWord: string) =>
    b > 0 ? `${unit(a, aWord)} ${unit(b, bWord)}` : unit(a, aWord);
  if (total < 60) return unit(total, 'second');
  const minutes = Math.floor(total / 60);
  // seconds matter in the first ten minutes only
  if (minutes < 10) return pair(minutes, 'minute', total % 60, 'second');
  if (minutes < 60) return unit(minutes, 'minute');
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return pair(hours, 'hour', minutes % 60, 'minute');
  return pair(Math.floor(hours / 24), 'day', hours % 24, 'hour');
}

const since = (from: Date, to: Date) => to.getTime() - from.getTime();
/** 14:03:07 (UTC) */
const clock = (d: Date) => d.toISOString().slice(11, 19);
/** 2026-11-26 14:03:07 UTC */
const stamp = (d: Date) => `${d.toISOString().slice(0, 10)} ${clock(d)} UTC`;

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  const cut = s.slice(0, max - 1);
  // never leave half a surrogate pair
  return `${/[\ud800-\udbff]$/.test(cut) ? cut.slice(0, -1) : cut}…`;
}

/** An untrusted text as one plain, redacted line (for the Slack summary and follow-up items). */
function plain(s: string, max = MAX_LINE): string {
  return clip(oneLine(redactSecrets(s)), max);
}

/**
 * Escapes what Markdown would read as markup in untrusted text: HTML and autolinks (`<`, `>`), links and images
 * (`[`, `]`), code (backticks), emphasis and strikethrough (`*`, `~`, `_` at word edges), tables (`|`), entities
 * (`&name;`), and block starts at the beginning (`#` headings, `-`/`+`/`=` lists and rules, `1.` lists).
 * `snake_case` identifiers stay readable: an underscore between letters or digits cannot start emphasis.
 */
export function escapeMarkdown(text: string): string {
  const wordChar = (c: string | undefined) => c !== undefined && /[A-Za-z0-9]/.test(c);
  const escaped = text.replace(/[\\`*<>[\]|~_&]/g, (c, offset: number) => {
    if (c === '_' && wordChar(text[offset - 1]) && wordChar(text[offset + 1])) return c;
    if (c === '&' && !/^&#?[A-Za-z0-9]+;/.test(text.slice(offset))) return c;
    return `\\${c}`;
  });
  return escaped.replace(
    /^(\s*)(#|[-+=](?=[\s=-]|$)|\d{1,9}(?=[.)](?:\s|$)))/,
    (_m, space: string, marker: string) =>
      /^\d/.test(marker) ? `${space}${marker}\\` : `${space}\\${marker}`,
  );
}

/** An untrusted text as one redacted, escaped Markdown line. */
function md(s: string, max = MAX_LINE): string {
  return escapeMarkdown(plain(s, max));
}

/** An untrusted multi-line text as a redacted, escaped block quote. */
function mdQuote(s: string): string {
  const lines = redactSecrets(s)
    .split(/\r?\n/)
    .map((l) => escapeMarkdown(clip(l.trim(), MAX_LINE)));
  while (lines.at(-1) === '') lines.pop();
  while (lines[0] === '') lines.shift();
  return lines.map((l) => (l === '' ? '>' : `> ${l}`)).join('\n');
}

/** How an actor is shown: people by their Slack id, sources by name, the bot by nothing (the marker says it). */
function markerOf(actor: string): string {
  const kind = actorKind(actor);
  if (kind === 'bot') return '**[bot]**';
  return `**[${kind}]** ${md(actor, 80)}:`;
}

/** describeEvent, plus the events people add after an incident (which the thread posts itself). */
function describeForPostmortem(event: TimelineEvent): string {
  const d = rec(event.data);
  switch (event.type) {
    case 'feedback.action':
      return `Marked ${str(d.step)} (${str(d.action)}) as ${d.verdict === 'wrong' ? 'the wrong call' : 'the right call'}`;
    case 'resolution.noted': {
      // a note is free text from a modal: one line here, in full under the root cause
      const parts = [
        d.cause ? `cause: ${oneLine(str(d.cause))}` : '',
        d.fix ? `fix: ${oneLine(str(d.fix))}` : '',
        d.note ? `note: ${oneLine(str(d.note))}` : '',
      ].filter((p) => p !== '');
      return `Resolution note${parts.length > 0 ? ` — ${parts.join('; ')}` : ''}`;
    }
    default:
      return describeEvent(event);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sections

function renderSummary(f: Facts): string {
  const { incident } = f.input;
  const names = [...new Set(f.alerts.map((a) => a.name).filter((n) => n !== ''))];
  const alerts =
    names.length === 0
      ? 'no alert attached'
      : `${names.length} alert${names.length === 1 ? '' : 's'} (${names.map((n) => md(n, 120)).join(', ')})`;
  const lines = [
    '## Summary',
    '',
    `- **What happened:** ${md(incident.title)} on **${md(incident.service, 120)}**, severity **${md(incident.severity, 20)}**, ${alerts}.`,
  ];
  if (incident.summary.trim() && oneLine(incident.summary) !== oneLine(incident.title)) {
    lines.push(`- **Alert text:** ${md(incident.summary)}`);
  }
  lines.push(`- **Impact:** ${impactWords(f)}`);
  lines.push(`- **Outcome:** ${outcomeWords(f)}`);
  const cause = causeLine(f);
  if (cause) lines.push(`- **Cause:** ${escapeMarkdown(cause)}`);
  return lines.join('\n');
}

function impactWords(f: Facts): string {
  const end = f.resolved?.at ?? f.asOf;
  const length = formatDuration(since(f.firstSignalAt, end));
  const service = md(f.input.incident.service, 120);
  return f.resolved
    ? `${service} was affected for ${length}, from the first signal to resolution.`
    : `${service} has been affected for ${length} so far (as of ${stamp(f.asOf)}).`;
}

function outcomeWords(f: Facts): string {
  if (!f.resolved) return `not resolved yet: the incident is ${md(f.input.incident.status, 40)}.`;
  const after = formatDuration(since(f.openedAt, f.resolved.at));
  return `resolved ${after} after detection ${resolverWords(f.resolved.by)}${
    f.resolved.reason ? ` (${md(f.resolved.reason, 200)})` : ''
  }.`;
}

function resolverWords(actor: string): string {
  const kind = actorKind(actor);
  if (kind === 'bot') return 'by the bot';
  if (kind === 'human') return `by ${md(actor, 80)}`;
  return `when ${md(actor, 80)} reported the alerts resolved`;
}

/** The cause in one plain line: people's note first, then the bot's hypothesis, then why it escalated. */
function causeLine(f: Facts): string | null {
  const note = f.notes.findLast((n) => n.cause.trim() !== '');
  if (note) return `${plain(note.cause, 240)} (resolution note by ${plain(note.by, 40)})`;
  const hypothesis = f.decisions.at(-1)?.hypothesis;
  if (hypothesis)
    return `${plain(hypothesis.description, 240)} (the bot's hypothesis, not confirmed by a person)`;
  const escalation = f.escalations.at(-1);
  if (escalation) return `not known; escalated because of ${plain(escalation.categoryText, 60)}`;
  return null;
}

function renderImpact(f: Facts): string {
  const { incident } = f.input;
  const lines = [
    '## Impact and duration',
    '',
    `- **Service:** ${md(incident.service, 120)}`,
    `- **Severity:** ${md(incident.severity, 20)}${f.severityChanges
      .map((c) => `; raised from ${md(c.from, 20)} to ${md(c.to, 20)} at ${clock(c.at)}`)
      .join('')}`,
    `- **Started (first signal):** ${stamp(f.firstSignalAt)}`,
    `- **Detected (incident opened):** ${stamp(f.openedAt)}, ${formatDuration(since(f.firstSignalAt, f.openedAt))} after the first signal (time to detect)`,
  ];
  const firstPage = f.pages[0];
  const firstAck = f.acks[0];
  if (firstPage) {
    lines.push(
      `- **First page:** ${stamp(firstPage.at)}, ${formatDuration(since(f.openedAt, firstPage.at))} after detection`,
    );
  }
  if (firstAck) {
    const from = firstPage?.at ?? f.escalations[0]?.at ?? f.openedAt;
    lines.push(
      `- **Acknowledged:** ${stamp(firstAck.at)} by ${md(firstAck.by, 80)}, ${formatDuration(since(from, firstAck.at))} after the page (time to acknowledge)`,
    );
  }
  if (f.resolved) {
    lines.push(
      `- **Resolved:** ${stamp(f.resolved.at)}, ${formatDuration(since(f.openedAt, f.resolved.at))} after detection (time to resolve)`,
    );
    lines.push(
      `- **Total duration:** ${formatDuration(since(f.firstSignalAt, f.resolved.at))} from the first signal`,
    );
  } else {
    lines.push(
      `- **Resolved:** not yet; open for ${formatDuration(since(f.openedAt, f.asOf))} as of ${stamp(f.asOf)}`,
    );
  }
  lines.push('- **Customer impact:** not recorded by the bot; add what users saw.');
  return lines.join('\n');
}

function renderDetection(f: Facts): string {
  const { incident } = f.input;
  const lines = ['## Detection', ''];
  const first = f.alerts[0];
  const openedKind = actorKind(f.openedBy);
  if (incident.source === 'anomaly') {
    lines.push(
      `- **How:** the anomaly detector saw ${first ? md(first.name, 120) : 'a metric'} deviate from its learned normal.`,
    );
  } else if (openedKind === 'human') {
    lines.push(`- **How:** reported by hand in Slack by ${md(f.openedBy, 80)}.`);
  } else {
    lines.push(
      `- **How:** an alert from ${md(incident.source, 60)}${first ? ` (${md(first.name, 120)})` : ''} opened the incident.`,
    );
  }
  lines.push(
    `- **How fast:** the incident opened ${
      f.openedAt.getTime() <= f.firstSignalAt.getTime()
        ? 'at the first signal'
        : `${formatDuration(since(f.firstSignalAt, f.openedAt))} after the first signal (${clock(f.firstSignalAt)} → ${clock(f.openedAt)} UTC)`
    }.`,
  );
  const thresholdAlert = f.alerts.find((a) => a.source !== 'anomaly');
  if (incident.source === 'anomaly' && thresholdAlert) {
    lines.push(
      `- **Ahead of the alerts:** ${formatDuration(since(f.openedAt, thresholdAlert.at))} before the first threshold alert (${md(thresholdAlert.name, 120)} from ${md(thresholdAlert.source, 60)}).`,
    );
  }
  if (f.alerts.length > 0) {
    lines.push('- **Alerts:**');
    for (const a of f.alerts) {
      const repeats = f.repeats.get(a.name) ?? 0;
      lines.push(
        `  - ${clock(a.at)} ${md(a.name, 120)} (${md(a.severity, 20)}, from ${md(a.source, 60)})${
          a.summary ? `: ${md(a.summary)}` : ''
        }${repeats > 0 ? ` — fired again ${repeats} time${repeats === 1 ? '' : 's'}` : ''}`,
      );
    }
  }
  return lines.join('\n');
}

function renderTimeline(f: Facts): string {
  const lines = [
    '## Timeline',
    '',
    'All times UTC. **[human]** a person, **[bot]** ai-sre, **[alert]** a signal source.',
  ];
  let day = '';
  const line = (at: Date, actor: string, text: string) => {
    const date = at.toISOString().slice(0, 10);
    if (date !== day) {
      day = date;
      lines.push('', `### ${date}`, '');
    }
    const [head = '', ...rest] = text.split('\n');
    lines.push(`- \`${clock(at)}\` ${markerOf(actor)} ${md(head)}`);
    for (const more of rest) if (more.trim()) lines.push(`  - ${md(more)}`);
  };
  const events = f.events;
  for (let i = 0; i < events.length; ) {
    const event = events[i] as TimelineEvent;
    if (event.type !== 'alert.repeated') {
      line(event.at, event.actor, describeForPostmortem(event));
      i += 1;
      continue;
    }
    // a flood of repeats becomes one line per alert name with its count
    let end = i;
    while (events[end]?.type === 'alert.repeated') end += 1;
    const run = events.slice(i, end);
    const byName = new Map<string, TimelineEvent[]>();
    for (const e of run) {
      const name = str(rec(e.data).name);
      byName.set(name, [...(byName.get(name) ?? []), e]);
    }
    for (const [name, repeats] of byName) {
      const firstRepeat = repeats[0] as TimelineEvent;
      const lastRepeat = repeats.at(-1) as TimelineEvent;
      line(
        firstRepeat.at,
        firstRepeat.actor,
        repeats.length === 1
          ? describeForPostmortem(firstRepeat)
          : `Alert ${name} fired again ${repeats.length} times (until ${clock(lastRepeat.at)})`,
      );
    }
    i = end;
  }
  if (events.length === 0) lines.push('', '- No events were recorded.');
  return lines.join('\n');
}

function renderDiagnostics(f: Facts): string {
  const lines = ['## Diagnostics that mattered', ''];
  const used = new Set(f.decisions.flatMap((d) => d.evidenceIds));
  const checks = [...f.checks.values()];
  const mattered = checks.filter((c) => c.status === 'warning' || c.status === 'critical' || used.has(c.id));
  for (const c of mattered) {
    const why = used.has(c.id) ? ' *(read by the decision)*' : '';
    lines.push(`- **${md(c.id, 120)}**: ${md(c.status, 20)} — ${md(c.summary) || 'no summary'}${why}`);
  }
  const broken = checks.filter((c) => c.status === 'error' && !used.has(c.id));
  if (broken.length > 0) {
    lines.push(
      `- Did not report: ${broken.map((c) => `${md(c.id, 120)}${c.error ? ` (${md(c.error, 200)})` : ''}`).join(', ')}`,
    );
  }
  const healthy = checks.filter((c) => !mattered.includes(c) && !broken.includes(c));
  if (healthy.length > 0) lines.push(`- Healthy, not shown: ${healthy.map((c) => md(c.id, 120)).join(', ')}`);
  if (checks.length === 0) lines.push('- No checks ran.');
  else if (mattered.length === 0) lines.push('- No check found anything wrong.');
  return lines.join('\n');
}

function renderActions(f: Facts): string {
  const lines = ['## Actions and outcomes', ''];
  for (const s of f.steps) {
    const what = [s.action, s.target].filter((x) => x !== '').map((x) => md(x, 200));
    lines.push(
      `- **${md(s.step, 120)}**${what.length > 0 ? ` (${what.join(' on ')})` : ''}: **${s.outcome}**`,
    );
    if (s.requested) {
      const approvers = s.requested.approvers.filter((a) => a !== '');
      lines.push(
        `  - Approval requested at ${clock(s.requested.at)}${approvers.length > 0 ? ` from ${approvers.map((a) => md(a, 80)).join(', ')}` : ''}`,
      );
    }
    if (s.decided) {
      const waited = s.requested ? ` after ${formatDuration(since(s.requested.at, s.decided.at))}` : '';
      lines.push(
        s.decided.verdict === 'expired'
          ? `  - Nobody approved it: the request expired at ${clock(s.decided.at)}${waited}`
          : `  - ${s.decided.verdict === 'approved' ? 'Approved' : 'Rejected'} by ${md(s.decided.by, 80)} at ${clock(s.decided.at)}${waited}`,
      );
    }
    for (const click of s.refusedClicks) {
      lines.push(`  - A click by ${md(click.by, 80)} was refused: ${md(click.why, 200)}`);
    }
    if (s.started) {
      const how = s.dryRun
        ? 'Dry run (shadow mode)'
        : s.requested
          ? 'Ran'
          : 'Ran automatically (no approval needed)';
      lines.push(`  - ${how} at ${clock(s.started)}`);
    }
    if (s.result) lines.push(`  - Result: ${md(s.result)}`);
    if (s.reason && s.outcome !== 'did not fix it') lines.push(`  - Why: ${md(s.reason)}`);
    if (s.verification) lines.push(`  - Verification: ${md(s.verification)}`);
    const verdicts = [...s.feedback].map(
      ([by, v]) => `${md(by, 80)} said ${v === 'right' ? 'right call' : 'wrong call'}`,
    );
    if (verdicts.length > 0) lines.push(`  - Feedback: ${verdicts.join(', ')}`);
  }
  if (f.steps.length === 0) {
    const decision = f.decisions.at(-1);
    lines.push(
      decision?.escalate
        ? '- No remediation step ran: the decision handed the incident to people.'
        : '- No remediation step ran.',
    );
  }
  return lines.join('\n');
}

function renderRootCause(f: Facts): string {
  const lines = ['## Root-cause hypothesis with evidence'];
  const notes = f.notes.filter((n) => `${n.cause}${n.fix}${n.note}`.trim() !== '');
  if (notes.length > 0) {
    lines.push('', "### The people's conclusion", '');
    for (const n of notes) {
      const parts: [label: string, words: string][] = [
        ['Cause', n.cause],
        ['Fix', n.fix],
        ['Note', n.note],
      ];
      // the labels are ours; only the person's words are escaped
      const quoted = parts
        .filter(([, words]) => words.trim() !== '')
        .map(([label, words]) => `> **${label}:** ${md(words)}`);
      const attribution = `> — ${md(n.by, 80)}, resolution note at ${stamp(n.at)}`;
      // an empty quoted line between parts keeps each on its own line when rendered
      lines.push([...quoted, attribution].join('\n>\n'), '');
    }
    lines.push('Where the bot disagrees below, the resolution note wins.');
  }
  const decision = f.decisions.at(-1);
  if (decision) {
    lines.push('', "### The bot's hypothesis", '');
    lines.push(`- **Runbook:** ${md(decision.runbookName, 200)} (${md(decision.runbookId, 120)})`);
    lines.push(
      decision.hypothesis
        ? `- **Hypothesis:** ${md(decision.hypothesis.description)} (${md(decision.hypothesis.id, 120)})`
        : '- **Hypothesis:** none confirmed',
    );
    if (decision.text) lines.push(`- **Decision:** ${md(decision.text)}`);
    const evidence = decision.evidenceIds
      .map((id) => f.checks.get(id))
      .filter((c): c is CheckSeen => c !== undefined)
      .map((c) => `${md(c.id, 120)} ${md(c.status, 20)} — ${md(c.summary, 300)}`);
    if (evidence.length > 0) lines.push(`- **Evidence:** ${evidence.join('; ')}`);
  } else if (f.runbookNone) {
    lines.push('', "### The bot's hypothesis", '', `- None: ${md(f.runbookNone)}.`);
  }
  const escalation = f.escalations.at(-1);
  if (escalation) {
    lines.push('', '### Why people were needed', '');
    lines.push(
      `- **${md(escalation.categoryText, 80)}:** ${md(escalation.reason)}${escalation.team ? ` (routed to ${md(escalation.team, 80)})` : ''}`,
    );
  }
  if (notes.length === 0 && !decision && !f.runbookNone && !escalation) {
    lines.push('', '- No hypothesis was recorded and nobody left a resolution note.');
  }
  return lines.join('\n');
}

function usableNarrative(n: Narrative | null | undefined): Narrative | null {
  if (!n) return null;
  return n.text.trim() !== '' || n.suspectedCause.trim() !== '' ? n : null;
}

function renderNarrative(n: Narrative): string {
  const model = md(n.model, 120) || 'an unnamed model';
  const lines = [
    `## Narrative (advisory, written by ${model})`,
    '',
    `> **Machine-written and advisory.** ${model} wrote this from the redacted timeline. It is not evidence, it changed nothing and it can approve nothing: check every claim against the timeline above.`,
  ];
  if (n.text.trim()) lines.push('', mdQuote(n.text));
  if (n.suspectedCause.trim())
    lines.push('', '**Suspected cause (advisory):**', '', mdQuote(n.suspectedCause));
  return lines.join('\n');
}

/** Observations about the response, in plain (redacted, unescaped) words. */
function assessResponse(f: Facts): { well: string[]; badly: string[] } {
  const well: string[] = [];
  const badly: string[] = [];
  const p = (s: string) => plain(s, 120);
  const detect = since(f.firstSignalAt, f.openedAt);
  if (f.input.incident.source === 'anomaly') {
    well.push('Detected by the anomaly detector, before a threshold alert fired or customers reported it.');
  } else if (detect <= QUICK_DETECTION_MS) {
    well.push(`Detected ${formatDuration(detect)} after the first signal.`);
  }
  if (detect > SLOW_DETECTION_MS)
    badly.push(`Detection took ${formatDuration(detect)} after the first signal.`);

  const fixed = f.steps.filter((s) => s.outcome === 'verified');
  if (f.resolved && !f.humanResponded) {
    const fixedBy = fixed.length > 0 ? ` (${fixed.map((s) => p(s.step)).join(', ')} fixed it)` : '';
    well.push(
      `Resolved automatically within ${formatDuration(since(f.openedAt, f.resolved.at))} of detection${fixedBy}; nobody had to step in.`,
    );
  } else {
    for (const s of fixed) well.push(`${p(s.step)} was verified: the fix held.`);
  }
  for (const s of f.steps) {
    if (!s.requested || !s.decided) continue;
    const waited = since(s.requested.at, s.decided.at);
    if (s.decided.verdict === 'expired') {
      badly.push(`Nobody approved ${p(s.step)}: the request expired after ${formatDuration(waited)}.`);
    } else if (waited > SLOW_RESPONSE_MS) {
      badly.push(`Approval of ${p(s.step)} waited ${formatDuration(waited)}.`);
    } else {
      well.push(`${p(s.step)} was ${s.decided.verdict} within ${formatDuration(waited)}.`);
    }
    if (s.decided.verdict === 'rejected') {
      badly.push(`${p(s.decided.by)} rejected the proposed ${p(s.step)}.`);
    }
  }
  for (const s of f.steps) {
    if (s.outcome === 'did not fix it') badly.push(`Verification failed: ${p(s.step)} did not fix it.`);
    if (s.outcome === 'failed') badly.push(`${p(s.step)} failed.`);
    if (s.outcome === 'outcome unknown') badly.push(`Nobody knows whether ${p(s.step)} ran.`);
    if (s.outcome === 'refused by the safety policy') badly.push(`The safety policy refused ${p(s.step)}.`);
    const wrong = [...s.feedback].filter(([, v]) => v === 'wrong').map(([by]) => p(by));
    const right = [...s.feedback].filter(([, v]) => v === 'right').map(([by]) => p(by));
    if (wrong.length > 0) badly.push(`${wrong.join(', ')} marked ${p(s.step)} as the wrong call.`);
    if (right.length > 0) well.push(`${right.join(', ')} marked ${p(s.step)} as the right call.`);
  }
  if (f.runbookNone !== null || f.decisions.some((d) => d.noRunbook)) {
    badly.push('No runbook matched: the bot could only gather evidence.');
  }
  const escalation = f.escalations[0];
  if (escalation) {
    const ack = f.acks.find((a) => a.at.getTime() >= escalation.at.getTime());
    if (ack) {
      const waited = since(escalation.at, ack.at);
      (waited > SLOW_RESPONSE_MS ? badly : well).push(
        waited > SLOW_RESPONSE_MS
          ? `Escalated with nobody acknowledging for ${formatDuration(waited)}.`
          : `${p(ack.by)} acknowledged the page within ${formatDuration(waited)}.`,
      );
    } else {
      const end = f.resolved?.at ?? f.asOf;
      badly.push(`Escalated and nobody acknowledged in ${formatDuration(since(escalation.at, end))}.`);
    }
  }
  for (const failure of f.pageFailures)
    badly.push(`A page to ${p(failure.target)} failed: ${p(failure.error)}.`);
  if (f.exhausted.length > 0) badly.push('Nobody acknowledged after every level of the escalation policy.');
  for (const [name, count] of f.repeats) {
    if (count > NOISY_REPEATS) badly.push(`${p(name)} fired again ${count} times (noise in the thread).`);
  }
  if (f.notes.some((n) => n.cause.trim() !== '' || n.fix.trim() !== '')) {
    well.push(
      `${[...new Set(f.notes.map((n) => p(n.by)))].join(', ')} recorded what caused it and what fixed it.`,
    );
  }
  if (!f.resolved) badly.push(`Still not resolved as of ${stamp(f.asOf)}.`);
  return { well, badly };
}

function renderList(title: string, items: string[], none: string): string {
  return [
    `## ${title}`,
    '',
    ...(items.length > 0 ? items.map((i) => `- ${escapeMarkdown(i)}`) : [`- ${none}`]),
  ].join('\n');
}

function renderFollowUps(items: string[]): string {
  const lines = ['## Follow-up items', ''];
  // not a checkbox: counting `- [ ]` lines counts real follow-ups only
  if (items.length === 0) lines.push(`- ${NO_FOLLOW_UPS}.`);
  for (const item of items) lines.push(`- [ ] ${escapeMarkdown(plain(item))}`);
  return lines.join('\n');
}

function renderFooter(f: Facts, generator: string): string {
  const through = f.events.at(-1)?.id ?? 0;
  return `---\n\n_Drafted by ai-sre from the timeline (events up to #${through}; generator: ${escapeMarkdown(generator)}). Edit freely: the timeline stays the record._`;
}

/** The few plain lines posted in the thread with the draft attached. */
function buildSummary(f: Facts, followUps: number): string {
  const { incident } = f.input;
  const lines = [
    `${f.ref} ${plain(incident.title, 150)} (${plain(incident.service, 60)}, ${incident.severity})`,
  ];
  if (f.resolved) {
    lines.push(
      `Status: resolved ${formatDuration(since(f.openedAt, f.resolved.at))} after detection ${plainResolver(f.resolved.by)}; ${formatDuration(since(f.firstSignalAt, f.resolved.at))} from the first signal.`,
    );
  } else {
    lines.push(
      `Status: ${plain(incident.status, 30)}, open for ${formatDuration(since(f.openedAt, f.asOf))} so far.`,
    );
  }
  lines.push(`Cause: ${causeLine(f) ?? 'not known yet'}.`);
  lines.push(`Fixed by: ${fixWords(f)}.`);
  const escalation = f.escalations.at(-1);
  if (escalation) {
    const ack = f.acks[0];
    lines.push(
      `Escalated: ${plain(escalation.categoryText, 60)}${escalation.team ? ` to ${plain(escalation.team, 60)}` : ''}; ${
        ack
          ? `acknowledged by ${plain(ack.by, 40)} after ${formatDuration(since(escalation.at, ack.at))}`
          : 'nobody acknowledged'
      }.`,
    );
  }
  lines.push(`Follow-ups: ${followUps === 0 ? 'none found by the bot' : followUps} (see the draft).`);
  return lines.map((l) => clip(l, MAX_SUMMARY_LINE)).join('\n');
}

function plainResolver(actor: string): string {
  const kind = actorKind(actor);
  if (kind === 'bot') return 'by the bot';
  if (kind === 'human') return `by ${plain(actor, 40)}`;
  return `when ${plain(actor, 40)} reported the alerts resolved`;
}

function fixWords(f: Facts): string {
  const note = f.notes.findLast((n) => n.fix.trim() !== '');
  if (note) return `${plain(note.fix, 200)} (per ${plain(note.by, 40)})`;
  const verified = f.steps.filter((s) => s.outcome === 'verified');
  if (verified.length > 0) {
    return `${verified.map((s) => `${plain(s.step, 60)} (${plain(s.action, 40)})`).join(', ')}, verified`;
  }
  if (f.resolved && actorKind(f.resolved.by) === 'alert' && f.steps.every((s) => !s.started)) {
    return 'nothing recorded; the alerts cleared on their own';
  }
  return 'not recorded';
}
