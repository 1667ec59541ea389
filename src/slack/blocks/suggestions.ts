import type { KnownBlock, SectionBlock } from '@slack/types';
import type { Suggestion, SuggestionKind } from '../../postmortem/suggestions.js';
import {
  escapeMrkdwn,
  fitMessage,
  MAX_TOTAL_BLOCK_TEXT,
  measureText,
  SLACK_LIMITS,
  type SlackMessage,
  truncateMrkdwn,
  truncateText,
} from './limits.js';

/** suggestions shown in one message; each takes a block (and one more for its draft) of Slack's 50 */
const MAX_SHOWN = 12;
/** incident ids listed per suggestion; the rest is counted */
const MAX_IDS = 12;
/** characters of one suggestion's section before its draft */
const MAX_ITEM = 900;
/** characters of a draft's code block, and the least worth showing at all */
const MAX_DRAFT = 2_600;
const MIN_DRAFT = 400;
/** kept free under fitMessage's total budget for its own note and rounding; characters */
const BUDGET_MARGIN = 300;
/** characters of the footer note, at most */
const FOOTER_RESERVE = 200;
/** characters measureText counts for a block besides its text ("section", "mrkdwn") */
const BLOCK_OVERHEAD = 30;

const KIND_EMOJI: Record<SuggestionKind, string> = {
  alert_without_runbook: ':memo:',
  remediation_fails_verification: ':x:',
  remediation_rejected: ':no_entry_sign:',
  diagnostic_times_out: ':hourglass:',
  diagnostic_never_decides: ':zzz:',
  noisy_alert: ':loud_sound:',
};

const mrkdwn = (text: string) => ({ type: 'mrkdwn' as const, text });
/** untrusted text, cut then escaped, on one line */
const e = (s: string, max: number) => escapeMrkdwn(truncateText(s.replace(/\s+/g, ' ').trim(), max));

/**
 * The runbook suggestions for `period` ("the last 7 days"), posted weekly and on `/incident suggestions`: each with
 * its evidence (incident ids, counts) and, for an alert no runbook matched, the DRAFT runbook YAML in a code block, cut
 * at a whole line when long. Everything is escaped; drafts share what is left of Slack's text budget.
 */
export function buildSuggestionsMessage(items: Suggestion[], period: string): SlackMessage {
  const when = e(period, 60);
  const header: KnownBlock = {
    type: 'header',
    text: {
      type: 'plain_text',
      text: truncateText(`Runbook suggestions for ${period}`, SLACK_LIMITS.headerText),
    },
  };
  if (items.length === 0) {
    const text = `Nothing to suggest for ${when}.`;
    return fitMessage({
      text,
      blocks: [
        header,
        {
          type: 'section',
          text: mrkdwn(
            `:white_check_mark: ${text} No diagnostic, remediation step or alert stood out in the history.`,
          ),
        },
      ],
    });
  }
  const shown = items.slice(0, MAX_SHOWN);
  const drafts = shown.filter((s) => s.draftRunbookYaml);
  // the sections take at most half of the budget when there are drafts to show, all of it otherwise
  const budget = MAX_TOTAL_BLOCK_TEXT - BUDGET_MARGIN - measureText(header) - FOOTER_RESERVE;
  const perItem = Math.min(
    MAX_ITEM,
    Math.floor((drafts.length > 0 ? budget / 2 : budget) / shown.length) - BLOCK_OVERHEAD,
  );
  const sections = shown.map((s) => itemSection(s, perItem));
  const omitted = items.length - shown.length;
  const footer: KnownBlock = {
    type: 'context',
    elements: [
      mrkdwn(
        `${omitted > 0 ? `${omitted} more not shown. ` : ''}Drafts are starting points: review them before adding them to runbooks/.`,
      ),
    ],
  };
  const room = budget - measureText(sections);
  const perDraft =
    drafts.length > 0 ? Math.min(MAX_DRAFT, Math.floor(room / drafts.length) - BLOCK_OVERHEAD) : 0;
  const blocks: KnownBlock[] = [header];
  shown.forEach((item, i) => {
    blocks.push(sections[i] as SectionBlock);
    if (!item.draftRunbookYaml) return;
    blocks.push(
      perDraft >= MIN_DRAFT
        ? { type: 'section', text: mrkdwn(codeBlock(item.draftRunbookYaml, perDraft)) }
        : { type: 'context', elements: [mrkdwn('_The draft runbook is too long to show here._')] },
    );
  });
  blocks.push(footer);
  const titles = shown
    .slice(0, 3)
    .map((s) => s.title)
    .join('; ');
  const text = `${items.length} runbook suggestion${items.length === 1 ? '' : 's'} for ${period}: ${titles}${items.length > 3 ? '; …' : ''}`;
  return fitMessage({ text: escapeMrkdwn(truncateText(text, 600)), blocks });
}

function itemSection(s: Suggestion, max: number): SectionBlock {
  const listed = s.evidence.incidentIds.slice(0, MAX_IDS).map((id) => `INC-${id}`);
  const more = s.evidence.incidentIds.length - listed.length;
  const counts = Object.entries(s.evidence.counts)
    .slice(0, 8)
    .map(([k, v]) => `${e(k, 30)} ${v}`)
    .join(', ');
  const lines = [
    `${KIND_EMOJI[s.kind]} *${e(s.title, 200)}*`,
    e(s.detail, Math.max(80, Math.min(500, max - 300))),
    `_Evidence:_ ${listed.join(', ') || 'none listed'}${more > 0 ? ` and ${more} more` : ''}${counts ? ` (${counts})` : ''}${s.runbookId ? ` · runbook \`${e(s.runbookId, 63)}\`` : ''}`,
  ];
  return { type: 'section', text: mrkdwn(truncateMrkdwn(lines.join('\n'), Math.max(200, max))) };
}

/**
 * The YAML in a code block of at most `max` characters once escaped, cut after a whole line (a half line of YAML
 * reads as a different document) with a comment saying how much is left out.
 */
function codeBlock(yaml: string, max: number): string {
  const lines = yaml.replace(/`{3,}/g, "'''").split('\n');
  const kept: string[] = [];
  // the fences, the newlines around them and the "cut" comment
  let used = 60;
  for (const line of lines) {
    const escaped = escapeMrkdwn(line.length > 300 ? `${line.slice(0, 299)}…` : line);
    if (used + escaped.length + 1 > max) break;
    kept.push(escaped);
    used += escaped.length + 1;
  }
  const left = lines.length - kept.length;
  if (left > 0) kept.push(`# … ${left} more line${left === 1 ? '' : 's'} not shown`);
  return `\`\`\`\n${kept.join('\n')}\n\`\`\``;
}
