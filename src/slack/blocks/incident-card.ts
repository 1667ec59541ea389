import type { ContextBlock, KnownBlock, MrkdwnElement, SectionBlock } from '@slack/types';
import { escapeMrkdwn, fitMessage, type SlackMessage, truncateText } from './limits.js';

export type IncidentSeverity = 'critical' | 'high' | 'warning' | 'info';
export type IncidentStatus =
  | 'open'
  | 'investigating'
  | 'mitigating'
  | 'awaiting_approval'
  | 'escalated'
  | 'resolved';

/** What the Slack layer needs to draw an incident; every string may come from an alert and is untrusted. */
export interface IncidentCardView {
  /** e.g. "42", displayed as "INC-42" */
  id: string;
  title: string;
  service: string;
  severity: IncidentSeverity;
  status: IncidentStatus;
  /** untrusted alert text, escaped before display */
  summary: string;
  alertCount: number;
  openedAt: Date;
  resolvedAt: Date | null;
  /** e.g. Alertmanager generatorURL, runbook, dashboard; anything but http(s) is dropped */
  links: { label: string; url: string }[];
  labels: Record<string, string>;
}

const SEVERITY_EMOJI: Record<IncidentSeverity, string> = {
  critical: '🔴',
  high: '🟠',
  warning: '🟡',
  info: '🔵',
};

const SEVERITY_LABEL: Record<IncidentSeverity, string> = {
  critical: 'Critical',
  high: 'High',
  warning: 'Warning',
  info: 'Info',
};

const STATUS_LABEL: Record<IncidentStatus, string> = {
  open: 'Open',
  investigating: 'Investigating',
  mitigating: 'Mitigating',
  awaiting_approval: 'Awaiting approval',
  escalated: 'Escalated',
  resolved: 'Resolved',
};

/** Labels responders look for first; the rest follow alphabetically until the cap. */
const KEY_LABELS = [
  'alertname',
  'cluster',
  'namespace',
  'env',
  'environment',
  'region',
  'job',
  'instance',
  'pod',
];
const MAX_LABELS = 8;
const MAX_LABEL_KEY = 40;
const MAX_LABEL_VALUE = 80;
/** a context block holds 10 elements; one is kept for the "+N more" note */
const MAX_LINKS = 9;
/** Alertmanager generator URLs run long; past this they are more likely junk than a link worth a click */
const MAX_LINK_URL = 2000;
const MAX_LINK_LABEL = 60;

const MAX_LIST_TITLE = 80;
const MAX_LIST_SERVICE = 40;
/** header + incident lines + "and N more" note must fit Slack's 50 blocks */
const MAX_LIST_LINES = 48;
/** chars of incident lines per list, under fitMessage's total-text budget so the note is ours, not its */
const MAX_LIST_TEXT = 8000;

export function formatIncidentRef(id: string): string {
  return `INC-${id}`;
}

/** Slack renders this in each reader's time zone; the ISO text is the fallback for old clients. */
export function formatSlackDate(at: Date): string {
  const ms = at.getTime();
  if (Number.isNaN(ms)) return 'unknown';
  const unix = Math.floor(ms / 1000);
  return `<!date^${unix}^{date_short_pretty} {time}|${at.toISOString()}>`;
}

/** e.g. "45s", "12m", "1h 5m", "2d 3h"; the two largest units are enough to judge an incident. */
export function formatDuration(ms: number): string {
  const totalSeconds = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(totalSeconds / 86_400);
  const hours = Math.floor((totalSeconds % 86_400) / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  if (days > 0) return hours > 0 ? `${days}d ${hours}h` : `${days}d`;
  if (hours > 0) return minutes > 0 ? `${hours}h ${minutes}m` : `${hours}h`;
  if (minutes > 0) return `${minutes}m`;
  return `${seconds}s`;
}

/** Collapses newlines so untrusted text stays on the one line it was given. */
function toOneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/**
 * An http(s) link as mrkdwn, or null for any other scheme (javascript:, data:, slack:…) or an unparseable
 * URL. The href is re-serialised, `|` is percent-encoded so it cannot end the URL early, and control
 * characters are escaped as Slack expects inside links.
 */
export function formatMrkdwnLink(label: string, url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    return null;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return null;
  const href = parsed.href.replace(/\|/g, '%7C');
  if (href.length > MAX_LINK_URL) return null;
  const text = truncateText(toOneLine(label), MAX_LINK_LABEL) || parsed.hostname;
  return `<${escapeMrkdwn(href)}|${escapeMrkdwn(text)}>`;
}

function mrkdwn(text: string): MrkdwnElement {
  return { type: 'mrkdwn', text };
}

function buildField(name: string, value: string): MrkdwnElement {
  return mrkdwn(`*${name}*\n${value}`);
}

function buildFieldsSection(view: IncidentCardView): SectionBlock {
  const fields = [
    buildField('Severity', `${SEVERITY_EMOJI[view.severity]} ${SEVERITY_LABEL[view.severity]}`),
    buildField('Service', escapeMrkdwn(toOneLine(view.service)) || '—'),
    buildField('Status', STATUS_LABEL[view.status]),
    buildField('Alerts', String(view.alertCount)),
    buildField('Started', formatSlackDate(view.openedAt)),
  ];
  if (view.resolvedAt !== null) {
    fields.push(
      buildField('Resolved', formatSlackDate(view.resolvedAt)),
      buildField('Duration', formatDuration(view.resolvedAt.getTime() - view.openedAt.getTime())),
    );
  }
  return { type: 'section', fields };
}

function buildLinksContext(links: IncidentCardView['links']): ContextBlock | null {
  const formatted = links.flatMap((link) => formatMrkdwnLink(link.label, link.url) ?? []);
  if (formatted.length === 0) return null;
  const shown = formatted.slice(0, MAX_LINKS).map(mrkdwn);
  const hidden = formatted.length - shown.length;
  if (hidden > 0) shown.push(mrkdwn(`+${hidden} more`));
  return { type: 'context', elements: shown };
}

function orderLabelKeys(labels: Record<string, string>): string[] {
  const keys = Object.keys(labels);
  const first = KEY_LABELS.filter((key) => key in labels);
  const rest = keys.filter((key) => !KEY_LABELS.includes(key)).sort();
  return [...first, ...rest];
}

function buildLabelsContext(labels: Record<string, string>): ContextBlock | null {
  const keys = orderLabelKeys(labels);
  if (keys.length === 0) return null;
  const shown = keys.slice(0, MAX_LABELS).map((key) => {
    const name = truncateText(toOneLine(key), MAX_LABEL_KEY);
    const value = truncateText(toOneLine(labels[key] ?? ''), MAX_LABEL_VALUE);
    return mrkdwn(`${escapeMrkdwn(name)}=${escapeMrkdwn(value)}`);
  });
  const hidden = keys.length - shown.length;
  if (hidden > 0) shown.push(mrkdwn(`+${hidden} more labels`));
  return { type: 'context', elements: shown };
}

function buildFallbackLine(view: IncidentCardView): string {
  const title = escapeMrkdwn(toOneLine(view.title));
  const service = escapeMrkdwn(toOneLine(view.service));
  return `${SEVERITY_EMOJI[view.severity]} ${formatIncidentRef(view.id)} [${SEVERITY_LABEL[view.severity]}] ${title} — ${service} (${STATUS_LABEL[view.status]})`;
}

/**
 * The incident's main card: header, key fields, the escaped alert summary, links and key labels.
 * Posted once and updated in place as the incident moves.
 */
export function buildIncidentCard(view: IncidentCardView): SlackMessage {
  const blocks: KnownBlock[] = [
    {
      type: 'header',
      text: {
        type: 'plain_text',
        text: `${SEVERITY_EMOJI[view.severity]} ${formatIncidentRef(view.id)} · ${toOneLine(view.title)}`,
        emoji: true,
      },
    },
    buildFieldsSection(view),
  ];
  const summary = view.summary.trim();
  if (summary.length > 0) blocks.push({ type: 'section', text: mrkdwn(escapeMrkdwn(summary)) });
  const links = buildLinksContext(view.links);
  if (links) blocks.push(links);
  const labels = buildLabelsContext(view.labels);
  if (labels) blocks.push(labels);
  return fitMessage({ text: buildFallbackLine(view), blocks });
}

/** Slack user ids become mentions so the thread shows a name; anything else (bots, systems) is shown as text. */
function formatActor(actor: string): string {
  return /^[UW](?=[A-Z0-9]*\d)[A-Z0-9]{8,}$/.test(actor) ? `<@${actor}>` : escapeMrkdwn(actor);
}

/**
 * A thread post for one timeline event (`incident.opened`, `step.approved`…). The event text is escaped,
 * so callers pass plain words, not mrkdwn.
 */
export function buildTimelineMessage(event: {
  type: string;
  actor: string;
  at: Date;
  text: string;
}): SlackMessage {
  // Slack rejects an empty section, so an event without words still shows its type.
  const type = escapeMrkdwn(toOneLine(event.type)) || 'event';
  const text = escapeMrkdwn(event.text.trim()) || type;
  return fitMessage({
    text: `${type}: ${escapeMrkdwn(toOneLine(event.text))}`,
    blocks: [
      { type: 'section', text: mrkdwn(text) },
      {
        type: 'context',
        elements: [mrkdwn(`\`${type}\` · ${formatActor(event.actor)} · ${formatSlackDate(event.at)}`)],
      },
    ],
  });
}

function buildListLine(view: IncidentCardView): string {
  const title = escapeMrkdwn(truncateText(toOneLine(view.title), MAX_LIST_TITLE));
  const service = escapeMrkdwn(truncateText(toOneLine(view.service), MAX_LIST_SERVICE));
  const alerts = `${view.alertCount} alert${view.alertCount === 1 ? '' : 's'}`;
  return `${SEVERITY_EMOJI[view.severity]} *${formatIncidentRef(view.id)}* ${title} — ${service} · ${STATUS_LABEL[view.status]} · ${alerts} · since ${formatSlackDate(view.openedAt)}`;
}

/**
 * The answer to `/incident list` and `@bot status <svc>`: one line per incident in the given order, as
 * many as fit in one message, then "… and N more".
 */
export function buildIncidentList(incidents: IncidentCardView[], heading: string): SlackMessage {
  // Slack rejects an empty header.
  const title = toOneLine(heading) || 'Incidents';
  const header: KnownBlock = { type: 'header', text: { type: 'plain_text', text: title, emoji: true } };
  const escapedHeading = escapeMrkdwn(title);
  if (incidents.length === 0) {
    return fitMessage({
      text: `${escapedHeading}: All quiet: no open incidents`,
      blocks: [header, { type: 'section', text: mrkdwn(':white_check_mark: All quiet: no open incidents') }],
    });
  }

  // Without a note to make room for, the note's slot can hold one more line.
  const maxLines = incidents.length <= MAX_LIST_LINES + 1 ? incidents.length : MAX_LIST_LINES;
  const lines: KnownBlock[] = [];
  let used = 0;
  for (const incident of incidents.slice(0, maxLines)) {
    const line = buildListLine(incident);
    if (used + line.length > MAX_LIST_TEXT) break;
    used += line.length;
    lines.push({ type: 'section', text: mrkdwn(line) });
  }
  const hidden = incidents.length - lines.length;
  const blocks: KnownBlock[] = [header, ...lines];
  if (hidden > 0) blocks.push({ type: 'context', elements: [mrkdwn(`… and ${hidden} more`)] });

  const count = `${incidents.length} incident${incidents.length === 1 ? '' : 's'}`;
  return fitMessage({ text: `${escapedHeading}: ${count}`, blocks });
}
