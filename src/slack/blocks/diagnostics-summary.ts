import type { KnownBlock } from '@slack/types';
import { escapeMrkdwn, fitMessage, type SlackMessage, truncateText } from './limits.js';

export type CheckStatus = 'healthy' | 'warning' | 'critical' | 'error';

/** What the thread's diagnostics message shows; every string may come from a monitored system and is untrusted. */
export interface DiagnosticsSummaryView {
  runbookId: string;
  runbookName: string;
  version: string | null;
  hash: string;
  /** how the runbook was chosen, in words: "alert PostgresConnectionPoolExhausted", "requested by <@U1>" */
  chosenBecause: string;
  noRunbook: boolean;
  checks: {
    id: string;
    type: string;
    unit: string | null;
    /** null while the check runs */
    status: CheckStatus | null;
    value: number | string | boolean | null;
    summary: string;
    durationMs: number | null;
  }[];
}

const STATUS_EMOJI: Record<CheckStatus, string> = {
  healthy: ':large_green_circle:',
  warning: ':large_yellow_circle:',
  critical: ':red_circle:',
  error: ':warning:',
};

const MAX_SUMMARY = 180;
/** checks per section block: each line is at most ~300 chars, a section holds 3000 */
const CHECKS_PER_SECTION = 8;

function formatValue(value: DiagnosticsSummaryView['checks'][number]['value'], unit: string | null): string {
  if (value === null) return '';
  const text =
    typeof value === 'number'
      ? Number.isInteger(value)
        ? String(value)
        : value.toFixed(Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 1 ? 1 : 3)
      : String(value);
  return ` ${escapeMrkdwn(truncateText(text, 40))}${unit ? ` ${escapeMrkdwn(unit)}` : ''}`;
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

/** One line per check: status emoji, id, value with unit, what it saw, how long it took. */
export function formatCheckLine(check: DiagnosticsSummaryView['checks'][number]): string {
  const id = `*${escapeMrkdwn(check.id)}*`;
  if (check.status === null) return `:hourglass_flowing_sand: ${id} running… _(${escapeMrkdwn(check.type)})_`;
  const summary = escapeMrkdwn(truncateText(check.summary.replace(/\s+/g, ' ').trim(), MAX_SUMMARY));
  const value = check.status === 'error' ? ' error' : formatValue(check.value, check.unit);
  const duration = check.durationMs === null ? '' : ` · ${formatMs(check.durationMs)}`;
  return `${STATUS_EMOJI[check.status]} ${id}${value} — ${summary}${duration}`;
}

/**
 * The thread message of one runbook run, posted when it starts (every check pending) and edited as results
 * arrive, so the thread shows what is being checked before anything is known.
 */
export function buildDiagnosticsSummary(view: DiagnosticsSummaryView): SlackMessage {
  const done = view.checks.filter((c) => c.status !== null).length;
  const counts = (['critical', 'warning', 'error', 'healthy'] as const)
    .map((s) => [s, view.checks.filter((c) => c.status === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
  const name = escapeMrkdwn(truncateText(view.runbookName, 120));
  const heading = view.noRunbook
    ? `:mag: No runbook matches; running the default triage *${name}*`
    : `:mag: Running runbook *${name}*`;
  const lines = view.checks.map(formatCheckLine);
  const sections: KnownBlock[] = [];
  for (let i = 0; i < lines.length; i += CHECKS_PER_SECTION) {
    sections.push({
      type: 'section',
      text: { type: 'mrkdwn', text: lines.slice(i, i + CHECKS_PER_SECTION).join('\n') },
    });
  }
  const progress =
    done === view.checks.length ? `all ${done} checks done` : `${done}/${view.checks.length} checks done`;
  return fitMessage({
    text: `Diagnostics (${view.runbookId}): ${progress}${counts ? ` — ${counts}` : ''}`,
    blocks: [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `${heading} (\`${escapeMrkdwn(view.runbookId)}\`${view.version ? ` v${escapeMrkdwn(view.version)}` : ''}) — ${escapeMrkdwn(view.chosenBecause)}`,
        },
      },
      ...sections,
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: `${progress}${counts ? ` · ${counts}` : ''} · runbook sha256 \`${view.hash.slice(0, 12)}\``,
          },
        ],
      },
    ],
  });
}
