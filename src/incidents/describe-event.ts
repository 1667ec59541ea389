import { redactSecrets } from '../diagnostics/redact.js';
import type { TimelineEvent } from './timeline.js';

const str = (v: unknown): string =>
  typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);

/** One line of plain words for a thread post about a timeline event; secrets from alert text are masked. */
export function describeEvent(event: Pick<TimelineEvent, 'type' | 'data'>): string {
  return redactSecrets(describeEventWords(event));
}

function describeEventWords(event: Pick<TimelineEvent, 'type' | 'data'>): string {
  const d = event.data;
  switch (event.type) {
    case 'incident.opened':
      return `Incident opened for ${str(d.service)}: ${str(d.title)}`;
    case 'alert.attached':
      return `New alert ${str(d.name)} (${str(d.severity)})${d.summary ? `: ${str(d.summary)}` : ''}`;
    case 'alert.repeated':
      return `Alert ${str(d.name)} is firing again`;
    case 'alert.resolved':
      return `Alert ${str(d.name)} resolved`;
    case 'incident.severity_changed':
      return `Severity changed from ${str(d.from)} to ${str(d.to)}`;
    case 'runbook.started':
      return `Running runbook ${str(d.name)} (${str(d.runbookId)}): ${Array.isArray(d.diagnostics) ? d.diagnostics.length : 0} checks`;
    case 'runbook.none':
      return `No runbook to run: ${str(d.reason)}`;
    case 'diagnostic.completed':
      return `Check ${str(d.diagnostic)}: ${str(d.status)} — ${str(d.summary)}`;
    case 'decision.made':
      return describeDecision(d);
    case 'incident.resolved':
      return `Incident resolved${d.reason ? `: ${str(d.reason)}` : ''}`;
    case 'approval.requested':
      return `Approval requested for ${str(d.step)} (${str(d.action)} on ${str(d.target)})`;
    case 'step.approved':
      return `${str(d.step)} approved (${str(d.action)} on ${str(d.target)})`;
    case 'step.rejected':
      return `${str(d.step)} rejected: it will not run`;
    case 'approval.expired':
      return `Nobody approved ${str(d.step)} in time: the request expired`;
    case 'approval.refused':
      return `Click on ${str(d.step)} refused: ${str(d.why)}`;
    case 'step.started':
      return `${d.dryRun === true ? 'Dry run of' : 'Running'} ${str(d.step)} (${str(d.action)} on ${str(d.target)})`;
    case 'step.executed':
      return `Done: ${str(d.summary)}${typeof d.durationMs === 'number' ? ` (${d.durationMs} ms)` : ''}`;
    case 'step.dry_run':
      return `Shadow mode, nothing changed: ${str(d.summary)}`;
    case 'step.failed':
      return `${str(d.step)} failed: ${str(d.summary)}`;
    case 'step.refused':
      return `Refused ${str(d.step)} (${str(d.action)}): ${str(d.reason)}`;
    case 'step.skipped':
      return `Skipped ${str(d.step)}: ${str(d.reason)}`;
    case 'step.verified':
      return `Verified ${str(d.step)}: the fix holds (${describeChecks(d.findings)})`;
    case 'step.verification_failed':
      return `${str(d.step)} did not fix it: ${str(d.reason)} (${describeChecks(d.findings)})`;
    case 'step.outcome_unknown':
      return `${str(d.step)}: outcome unknown — ${str(d.reason)}`;
    case 'remediation.escalated':
      return `Remediation stopped, handing over to people: ${str(d.reason)}${describeTried(d.tried)}`;
    case 'remediation.verified':
    case 'remediation.completed':
    case 'remediation.cleared':
    case 'remediation.shadow':
      return `Remediation ${event.type.slice('remediation.'.length)}: ${str(d.reason)}${describeTried(d.tried)}`;
    case 'escalation.started':
      return `Escalated (${categoryWords(d.category, d.categoryText)}): ${str(d.reason)} → ${str(d.team) || 'no team'}`;
    case 'page.sent':
      return describePageSent(d);
    case 'page.failed':
      return `Could not page ${str(d.target)}: ${str(d.error)}`;
    case 'page.deferred':
      return `Quiet hours: not paging for this severity; in the morning digest${d.until ? ` (until ${str(d.until)})` : ''}`;
    case 'page.acknowledged':
      return `Acknowledged by ${str(d.by)}`;
    case 'page.reassigned':
      return `Reassigned to ${str(d.to)}`;
    case 'escalation.exhausted':
      return `Nobody acknowledged after every level (${plural(d.levels, 'level')}, ${plural(d.cycles, 'cycle')})`;
    case 'escalation.joined':
      return `Escalated again (${str(d.reason)}); the existing escalation continues`;
    case 'escalation.resolved':
      return 'Escalation closed: the incident is resolved';
    case 'page.digested':
      return 'Listed in the morning digest';
    case 'feedback.action':
      return `${str(d.step)} (${str(d.action)}) marked as the ${d.verdict === 'wrong' ? 'wrong' : 'right'} call`;
    case 'resolution.noted': {
      const parts = [
        d.cause ? `cause: ${str(d.cause)}` : '',
        d.fix ? `fix: ${str(d.fix)}` : '',
        d.note ? str(d.note) : '',
      ].filter(Boolean);
      return `Resolution note — ${parts.join('; ')}`;
    }
    case 'postmortem.drafted':
      return `Postmortem draft written (revision ${str(d.revision)}${d.generator && d.generator !== 'deterministic' ? `, narrative by ${str(d.generator)}` : ''})`;
    case 'page.requested':
      return `Page requested by hand${d.team ? ` for team ${str(d.team)}` : ''}${d.note ? `: ${str(d.note)}` : ''}`;
    default:
      if (event.type.startsWith('incident.') && d.to) {
        return `Status changed from ${str(d.from)} to ${str(d.to)}${d.reason ? `: ${str(d.reason)}` : ''}`;
      }
      return event.type;
  }
}

function describeChecks(findings: unknown): string {
  if (!findings || typeof findings !== 'object') return 'no checks';
  return Object.entries(findings as Record<string, { status?: unknown }>)
    .map(([id, f]) => `${id} ${str(f?.status)}`)
    .join(', ');
}

/** "\nTried: 1. terminate_idle (terminate_connections) verified …" */
function describeTried(tried: unknown): string {
  if (!Array.isArray(tried) || tried.length === 0) return '';
  const lines = (tried as Record<string, unknown>[]).map(
    (t, i) =>
      `${i + 1}. ${str(t.step)} (${str(t.action)}): ${str(t.status)}${t.summary ? ` — ${str(t.summary)}` : t.reason ? ` — ${str(t.reason)}` : ''}`,
  );
  return `\nTried:\n${lines.join('\n')}`;
}

interface PlannedStep {
  description?: unknown;
  action?: unknown;
  requiresApproval?: unknown;
}

/**
 * The decision in plain words and the planned steps, e.g. "Decision: DB connection pool at 95% of max (critical) →
 * kill idle connections, then raise the pool" followed by the numbered plan.
 */
function describeDecision(d: Record<string, unknown>): string {
  const lines = [`Decision (${str(d.runbookName) || str(d.runbookId)}): ${str(d.text)}`];
  const plan = Array.isArray(d.plan) ? (d.plan as PlannedStep[]) : [];
  if (plan.length > 0) {
    // the safety gate decides per step (tier, mode, kill switch); the plan shows what the runbook asked
    lines.push('Plan (each step is gated by the safety policy before it runs):');
    plan.forEach((step, i) => {
      const gate = step.requiresApproval === true ? 'needs approval' : 'automatic if the policy allows';
      lines.push(`${i + 1}. ${str(step.description)} (${str(step.action)}, ${gate})`);
    });
  }
  if (d.escalate === true) lines.push(`Escalating: ${str(d.reason)}`);
  return lines.join('\n');
}

/** the flow writes the category in words (`categoryText`); older events only have the id ("fix_failed") */
function categoryWords(category: unknown, words?: unknown): string {
  if (typeof words === 'string' && words) return words;
  return str(category).replace(/_/g, ' ') || 'unknown reason';
}

function plural(n: unknown, unit: string): string {
  const count = typeof n === 'number' ? n : Number(n);
  if (!Number.isFinite(count)) return `? ${unit}s`;
  return `${count} ${unit}${count === 1 ? '' : 's'}`;
}

/**
 * "Paged Ana Lima, Bo Chen (level 2, via slack, pagerduty)". Names only: a timeline line is plain text, and a mention
 * here would notify people again every time the timeline is shown.
 */
function describePageSent(d: Record<string, unknown>): string {
  const targets = Array.isArray(d.targets) ? (d.targets as { name?: unknown }[]) : [];
  const names = targets.map((t) => str(t?.name)).filter((n) => n !== '');
  const via = Array.isArray(d.deliveredBy) ? d.deliveredBy.map(str).filter((p) => p !== '') : [];
  const cycle = typeof d.cycle === 'number' && d.cycle > 1 ? `, round ${d.cycle}` : '';
  const how = `level ${str(d.level)}${cycle}${via.length > 0 ? `, via ${via.join(', ')}` : ''}`;
  return `Paged ${names.length > 0 ? names.join(', ') : 'nobody'} (${how})`;
}
