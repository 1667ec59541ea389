/**
 * Follow-up items of a postmortem, each derived from one piece of recorded evidence so a reader can see why it is
 * there. Plain text (redacted by the caller): the Markdown renderer escapes it, the Slack summary counts it.
 */
export interface FollowUpEvidence {
  service: string;
  /** the incident's labels: mountpoint, endpoint… name the volume or the code path */
  labels: Record<string, string>;
  /** names of the alerts attached, first seen first */
  alertNames: string[];
  /** alert summaries and diagnostic summaries, where a threshold ("threshold 90%") may be written */
  signalTexts: string[];
  /** the newest decision's runbook and winning hypothesis */
  runbook: { id: string; name: string } | null;
  hypothesis: { id: string; description: string } | null;
  /** no runbook matched (`runbook.none`, or the default triage playbook ran) */
  noRunbook: boolean;
  /** the causes people wrote in resolution notes */
  noteCauses: string[];
  verificationFailed: string[];
  failedSteps: { step: string; action: string }[];
  expiredApprovals: { step: string; action: string; requestedAt: Date }[];
  /** steps somebody marked as the wrong call, with the runbook whose decision chose them */
  wrongActions: { step: string; action: string; runbook: string }[];
  pageFailures: { team: string | null; target: string }[];
  /** nobody acknowledged after every level of the policy */
  exhaustedTeams: (string | null)[];
  /** handed to people with neither a confirmed hypothesis nor a resolution note: the cause is still unknown */
  causeUnknown: boolean;
}

/** "No follow-ups found…": shown as the only item when the evidence suggests none; not counted as a follow-up. */
export const NO_FOLLOW_UPS = 'No follow-ups found by the bot; add your own';

/** used space (%) the "alert earlier" item proposes when the alert that fired sat higher */
const EARLIER_DISK_ALERT_PERCENT = 75;
/** UTC hours counted as night for an approval nobody answered: 22:00–06:59 */
const NIGHT_FROM_HOUR = 22;
const NIGHT_UNTIL_HOUR = 7;

const LEAK = /memory[\s_-]*leak|leaks?[\s_-]+memory|(^|[^a-z])leak/i;
const DISK =
  /disk|filesystem|file system|out of space|outofspace|no space left|space[\s_-]*low|(?:log|data|storage|persistent)[\s_-]*volume|volume[\s_-]*(?:full|usage|space)/i;
/** "threshold 90%", "above 90 %", "> 90%", "90% threshold" */
const THRESHOLD = [
  /(?:threshold|above|over|exceeds?|exceeded|>=?|≥)\s*(?:of\s*|is\s*|:\s*)?(\d{1,3}(?:\.\d+)?)\s*%/i,
  /(\d{1,3}(?:\.\d+)?)\s*%\s*threshold/i,
];
const PATH = /(?:^|[\s(])(\/(?:[\w.-]+\/?)+)/;

/** The follow-up items, most fundamental first (the cause, then the response), without duplicates. */
export function deriveFollowUps(e: FollowUpEvidence): string[] {
  const items: string[] = [];
  const add = (item: string) => {
    if (!items.includes(item)) items.push(item);
  };
  const causeTexts = [e.hypothesis?.id ?? '', e.hypothesis?.description ?? '', ...e.noteCauses];

  if (causeTexts.some((t) => LEAK.test(t)) || e.alertNames.some((n) => /memoryleak/i.test(n))) {
    const where = e.labels.endpoint ?? e.labels.path ?? e.labels.route ?? e.labels.handler;
    add(`Fix the memory leak in ${where ? `${where} on ` : ''}${e.service}`);
  }
  const diskTexts = [...causeTexts, e.runbook?.id ?? '', ...e.alertNames];
  if (diskTexts.some((t) => DISK.test(t))) add(alertEarlierItem(e));
  if (e.noRunbook) {
    const alert = e.alertNames[0];
    add(
      alert
        ? `Write a runbook for ${alert} on ${e.service}`
        : `Write a runbook for incidents like this one on ${e.service}`,
    );
  }
  if (e.causeUnknown)
    add('Find and record the root cause: no hypothesis was confirmed and nobody left a note');
  for (const step of e.verificationFailed) add(`Find out why ${step} did not fix it`);
  for (const f of e.failedSteps) add(`Find out why ${f.step} (${f.action}) failed`);
  for (const a of e.expiredApprovals) {
    const hour = a.requestedAt.getUTCHours();
    const night = hour >= NIGHT_FROM_HOUR || hour < NIGHT_UNTIL_HOUR;
    add(
      night
        ? `Decide who approves ${a.action} at night`
        : `Decide who approves ${a.action} when the listed approvers do not answer`,
    );
  }
  for (const w of e.wrongActions) add(`Review the ${w.runbook} decision that chose ${w.action}`);
  for (const p of e.pageFailures) add(`Fix paging for ${p.team ?? p.target}`);
  for (const team of e.exhaustedTeams) {
    add(`Check the on-call rota${team ? ` of ${team}` : ''}: nobody acknowledged after every level`);
  }
  return items;
}

/** "Alert earlier: at 75% on /var/log instead of 90%" when a threshold was written in the alert or a check. */
function alertEarlierItem(e: FollowUpEvidence): string {
  const volume =
    e.labels.mountpoint ??
    e.labels.volume ??
    e.labels.persistentvolumeclaim ??
    e.labels.device ??
    firstMatch(e.signalTexts, PATH) ??
    'the disk';
  const threshold = thresholdSeen(e);
  if (threshold === null) return `Alert earlier on ${volume}: at ${EARLIER_DISK_ALERT_PERCENT}% used`;
  // an alert already at or below 75% gets one 10 points lower, never below 5%
  const earlier =
    threshold > EARLIER_DISK_ALERT_PERCENT
      ? EARLIER_DISK_ALERT_PERCENT
      : Math.max(5, Math.round(threshold) - 10);
  return `Alert earlier: at ${earlier}% on ${volume} instead of ${formatPercent(threshold)}%`;
}

function thresholdSeen(e: FollowUpEvidence): number | null {
  const label = Number.parseFloat(e.labels.threshold ?? '');
  if (Number.isFinite(label) && label > 0 && label <= 100) return label;
  for (const text of e.signalTexts) {
    for (const pattern of THRESHOLD) {
      const value = Number.parseFloat(pattern.exec(text)?.[1] ?? '');
      if (Number.isFinite(value) && value > 0 && value <= 100) return value;
    }
  }
  return null;
}

function firstMatch(texts: string[], pattern: RegExp): string | undefined {
  for (const text of texts) {
    const found = pattern.exec(text)?.[1];
    if (found) return found.replace(/[.,;:]+$/, '');
  }
  return undefined;
}

function formatPercent(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}
