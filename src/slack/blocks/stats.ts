import type { KnownBlock } from '@slack/types';
import type { SliFigures, SliReport } from '../../postmortem/slis.js';
import { escapeMrkdwn, fitMessage, type SlackMessage, truncateText } from './limits.js';

/** rows of the table per kind; more are summed up in a "+ N more" line */
export const MAX_SERVICE_ROWS = 8;
export const MAX_RUNBOOK_ROWS = 6;
/** characters of the name column (Slack's code blocks wrap past ~80 columns on a laptop) */
const NAME_WIDTH = 20;
const EMPTY = '–';
const DAY_MS = 86_400_000;

const COLUMNS: { title: string; width: number; value: (f: SliFigures) => string }[] = [
  { title: 'inc', width: 5, value: (f) => String(f.incidents) },
  { title: 'MTTD', width: 8, value: (f) => formatSliDuration(f.mttd) },
  { title: 'MTTA', width: 8, value: (f) => formatSliDuration(f.mtta) },
  { title: 'MTTR', width: 8, value: (f) => formatSliDuration(f.mttr) },
  { title: 'auto', width: 6, value: (f) => formatPercent(f.autoResolveRate) },
  { title: 'esc', width: 6, value: (f) => formatPercent(f.escalationRate) },
  { title: 'false', width: 6, value: (f) => formatPercent(f.falseActionRate) },
];

/**
 * Seconds as people say them: "45s", "4m 10s", "1h 2m", "2d 3h" (the two largest units, rounded to the
 * second); "–" for null.
 */
export function formatSliDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return EMPTY;
  const total = Math.max(0, Math.round(seconds));
  const days = Math.floor(total / 86_400);
  const hours = Math.floor((total % 86_400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  const pair = (a: number, unitA: string, b: number, unitB: string) =>
    b > 0 ? `${a}${unitA} ${b}${unitB}` : `${a}${unitA}`;
  if (days > 0) return pair(days, 'd', hours, 'h');
  if (hours > 0) return pair(hours, 'h', minutes, 'm');
  if (minutes > 0) return pair(minutes, 'm', secs, 's');
  return `${secs}s`;
}

/** A 0–1 rate as a whole percentage, "–" for null. */
export function formatPercent(rate: number | null): string {
  return rate === null || !Number.isFinite(rate) ? EMPTY : `${Math.round(rate * 100)}%`;
}

/** "last 7 days" for a whole number of days, else the bounds in UTC. */
export function describePeriod(from: Date, to: Date): string {
  const span = to.getTime() - from.getTime();
  if (span > 0 && span % DAY_MS === 0) {
    const days = span / DAY_MS;
    return days === 1 ? 'last 24 hours' : `last ${days} days`;
  }
  const utc = (d: Date) => `${d.toISOString().slice(0, 16).replace('T', ' ')}`;
  return `${utc(from)} to ${utc(to)} UTC`;
}

/**
 * The answer to `/incident stats`: a compact monospace table (overall, the busiest services, then runbooks;
 * incidents, MTTD, MTTA, MTTR, auto-resolved %, escalated %, false-action %), the counts behind the rates, and
 * what each column means. Service and runbook names are untrusted and escaped.
 */
export function buildStatsMessage(report: SliReport): SlackMessage {
  const period = describePeriod(report.from, report.to);
  const scope = report.service === null ? '' : ` for ${escapeMrkdwn(truncateText(report.service, 80))}`;
  const o = report.overall;
  const text =
    o.incidents === 0
      ? `No incidents opened in the ${period}${scope}.`
      : `SLIs, ${period}${scope}: ${o.incidents} incident${o.incidents === 1 ? '' : 's'}, MTTR ${formatSliDuration(o.mttr)}, auto-resolved ${formatPercent(o.autoResolveRate)}, escalated ${formatPercent(o.escalationRate)}`;
  const heading: KnownBlock = {
    type: 'section',
    text: { type: 'mrkdwn', text: `:bar_chart: *Incident SLIs — ${period}*${scope}` },
  };
  const bounds: KnownBlock = {
    type: 'context',
    elements: [
      {
        type: 'mrkdwn',
        text: `Incidents opened ${report.from.toISOString().slice(0, 16).replace('T', ' ')} to ${report.to.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
      },
    ],
  };
  if (o.incidents === 0) {
    return fitMessage({
      text,
      blocks: [heading, { type: 'section', text: { type: 'mrkdwn', text: 'No incidents opened.' } }, bounds],
    });
  }

  const rows: string[] = [formatHeaderRow(), formatRow('overall', o)];
  const services = busiest(report.byService);
  // A report of one service would repeat the overall row.
  if (report.service === null && services.length > 0) {
    rows.push('by service');
    for (const [name, figures] of services.slice(0, MAX_SERVICE_ROWS))
      rows.push(formatRow(` ${name}`, figures));
    if (services.length > MAX_SERVICE_ROWS)
      rows.push(` + ${services.length - MAX_SERVICE_ROWS} more services`);
  }
  const runbooks = busiest(report.byRunbook);
  if (runbooks.length > 0) {
    rows.push('by runbook');
    for (const [name, figures] of runbooks.slice(0, MAX_RUNBOOK_ROWS))
      rows.push(formatRow(` ${name}`, figures));
    if (runbooks.length > MAX_RUNBOOK_ROWS)
      rows.push(` + ${runbooks.length - MAX_RUNBOOK_ROWS} more runbooks`);
  }

  const counts = [
    `${o.resolved} resolved`,
    `median MTTR ${formatSliDuration(o.mttrMedian)}`,
    `${o.paged} paged, ${o.acknowledged} acknowledged`,
    `${o.actions} automated action${o.actions === 1 ? '' : 's'}, ${o.wrongActions} marked wrong`,
  ].join(' · ');
  return fitMessage({
    text,
    blocks: [
      heading,
      // Escaped after padding: the entities (&amp;…) are wider in the source than on screen.
      { type: 'section', text: { type: 'mrkdwn', text: `\`\`\`\n${escapeMrkdwn(rows.join('\n'))}\n\`\`\`` } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: counts }] },
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: 'MTTD first signal → incident · MTTA page → ack · MTTR open → resolved · auto: resolved with no person involved · esc: escalated to people · false: automated actions a person marked wrong',
          },
        ],
      },
      bounds,
    ],
  });
}

/** Most incidents first, then by name. */
function busiest(groups: Record<string, SliFigures>): [string, SliFigures][] {
  return Object.entries(groups).sort(
    ([a, fa], [b, fb]) => fb.incidents - fa.incidents || (a < b ? -1 : a > b ? 1 : 0),
  );
}

function formatHeaderRow(): string {
  return `${''.padEnd(NAME_WIDTH)}${COLUMNS.map((c) => c.title.padStart(c.width)).join('')}`;
}

/** One table row; the name is cut to its column and cleaned of backticks, which would end the code block. */
function formatRow(name: string, figures: SliFigures): string {
  const clean = truncateText(name.replace(/[`\r\n\t]/g, ' '), NAME_WIDTH - 1).padEnd(NAME_WIDTH);
  return `${clean}${COLUMNS.map((c) => c.value(figures).padStart(c.width)).join('')}`;
}
