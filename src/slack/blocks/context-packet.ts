import type {
  ActionsBlock,
  Button,
  ContextBlock,
  KnownBlock,
  SectionBlock,
  StaticSelect,
} from '@slack/types';
import type { ContextPacket } from '../../escalation/context-packet.js';
import { describeCategory } from '../../escalation/reasons.js';
import { formatSlackDate } from './incident-card.js';
import {
  clipText,
  escapeMrkdwn,
  fitMessage,
  MAX_TOTAL_BLOCK_TEXT,
  measureText,
  SLACK_LIMITS,
  type SlackMessage,
  truncateMrkdwn,
  truncateText,
} from './limits.js';

export const PAGE_ACK_ACTION = 'page_acknowledge';
export const PAGE_RESOLVE_ACTION = 'page_resolve';
export const PAGE_REASSIGN_ACTION = 'page_reassign';

export interface PacketEscalationState {
  escalationId: number;
  status:
    | 'paging'
    | 'acknowledged'
    | 'exhausted'
    | 'deferred'
    | 'digested'
    | 'resolved'
    | 'reassigned'
    | 'cancelled';
  /** 1-based level last paged; 0 before the first page */
  level: number;
  /** who was paged last: names, and Slack ids when known (rendered as mentions) */
  paged: { name: string; slackUser: string | null }[];
  ackedBy: string | null;
  ackedAt: Date | null;
  /** when the next level is paged if nobody acknowledges */
  nextAt: Date | null;
  /** the static_select "Reassign to…" options */
  reassignTo: { slackUser: string; label: string }[];
}

/** Slack's static_select: at most 100 options, 75 characters of option text, 150 of value, 150 of placeholder. */
const SELECT_LIMITS = { options: 100, optionText: 75, optionValue: 150 } as const;
/** text the reassign menu may take of the message's total budget, so the buttons are never what gets dropped */
const MAX_SELECT_TEXT = 3_000;
/** kept free under fitMessage's total budget for its own note and rounding; characters */
const BUDGET_MARGIN = 300;
/** the part of a list section's share each line may take at most; characters at scale 1 */
const SHARES = {
  causes: 1_600,
  diagnostics: 1_600,
  actions: 1_200,
  timeline: 1_600,
  similar: 800,
  links: 600,
};
/** how far the body shrinks, step by step, until the whole message fits Slack's total text budget */
const SCALES = [1, 0.7, 0.5, 0.35, 0.25, 0.15, 0.1];
/** the largest section text we build; Slack's limit is 3000 and escaping is done before measuring */
const MAX_SECTION = SLACK_LIMITS.sectionText - 100;

const SLACK_USER = /^[UW][A-Z0-9]{2,}$/;
const mrkdwn = (text: string) => ({ type: 'mrkdwn' as const, text });
/** untrusted text, cut then escaped, on one line */
const e = (s: string, max: number) => escapeMrkdwn(truncateText(s.replace(/\s+/g, ' ').trim(), max));
const who = (name: string, slackUser: string | null) =>
  slackUser && SLACK_USER.test(slackUser) ? `<@${slackUser}>` : e(name, 60);
const utc = (at: Date) => `${at.toISOString().slice(11, 16)} UTC`;

const STATUS_EMOJI: Record<string, string> = {
  healthy: ':large_green_circle:',
  warning: ':large_yellow_circle:',
  critical: ':red_circle:',
  error: ':white_circle:',
};
const STEP_EMOJI: Record<string, string> = {
  verified: ':white_check_mark:',
  succeeded: ':heavy_check_mark:',
  failed: ':x:',
  verification_failed: ':x:',
  refused: ':no_entry:',
  rejected: ':no_entry_sign:',
  expired: ':hourglass:',
  unknown: ':grey_question:',
  dry_run: ':ghost:',
  skipped: ':fast_forward:',
};
const ESCALATION_LABEL: Record<PacketEscalationState['status'], string> = {
  paging: 'Paging',
  acknowledged: 'Acknowledged',
  exhausted: 'Nobody acknowledged',
  deferred: 'Deferred (quiet hours)',
  digested: 'In the morning digest',
  resolved: 'Resolved',
  reassigned: 'Reassigned',
  cancelled: 'Cancelled',
};

/**
 * The page every escalation carries, in the incident thread and the DM: what is broken, why a person is needed and
 * what they must decide, the ranked causes with evidence, diagnostics, what was tried and how it verified, the last
 * timeline lines, similar incidents and links, then Acknowledge / Resolve / Reassign while they mean something.
 * Everything from monitored systems is escaped, and the body shrinks to fit Slack's total text budget so the buttons
 * at the end are never the part that gets cut.
 */
export function buildContextPacketMessage(packet: ContextPacket, state: PacketEscalationState): SlackMessage {
  const words = describeCategory(packet.why.category);
  const head = headBlocks(packet, state, words);
  const tail = tailBlocks(packet, state);
  const budget = MAX_TOTAL_BLOCK_TEXT - BUDGET_MARGIN - measureText(head) - measureText(tail);
  let body: KnownBlock[] = [];
  for (const scale of SCALES) {
    body = bodyBlocks(packet, scale);
    if (measureText(body) <= budget) break;
  }
  while (body.length > 0 && measureText(body) > budget) body.pop();
  const blocks = [...head, ...body, ...tail].slice(0, SLACK_LIMITS.blocksPerMessage);
  const text = `${packet.ref} needs a person (${words}): ${escapeMrkdwn(packet.summary)}`;
  return fitMessage({ text, blocks });
}

function headerText(packet: ContextPacket, state: PacketEscalationState, words: string): string {
  switch (state.status) {
    case 'resolved':
      return `:white_check_mark: ${packet.ref} resolved (was: ${words})`;
    case 'cancelled':
      return `:heavy_minus_sign: ${packet.ref} escalation cancelled (${words})`;
    case 'acknowledged':
      return `:eyes: ${packet.ref} acknowledged: ${words}`;
    default:
      return `:rotating_light: ${packet.ref} needs a person: ${words}`;
  }
}

function headBlocks(packet: ContextPacket, state: PacketEscalationState, words: string): KnownBlock[] {
  const fields = [
    mrkdwn(`*Service*\n${e(packet.service, 100)}`),
    mrkdwn(`*Severity*\n${e(packet.severity, 20)}`),
    mrkdwn(`*Started*\n${formatSlackDate(packet.startedAt)}`),
    mrkdwn(`*Status*\n${e(packet.status.replace(/_/g, ' '), 40)} · ${ESCALATION_LABEL[state.status]}`),
  ];
  if (state.paged.length > 0) {
    const names = state.paged.slice(0, 10).map((p) => who(p.name, p.slackUser));
    const more = state.paged.length > 10 ? ` and ${state.paged.length - 10} more` : '';
    fields.push(
      mrkdwn(`*Paged${state.level > 0 ? ` (level ${state.level})` : ''}*\n${names.join(', ')}${more}`),
    );
  }
  if (state.ackedBy) {
    fields.push(
      mrkdwn(
        `*Acknowledged by*\n${who(state.ackedBy, state.ackedBy)}${state.ackedAt ? ` at ${utc(state.ackedAt)}` : ''}`,
      ),
    );
  }
  if (state.nextAt && (state.status === 'paging' || state.status === 'reassigned')) {
    fields.push(mrkdwn(`*Next level*\n${utc(state.nextAt)} if nobody acknowledges`));
  }
  if (packet.why.team) fields.push(mrkdwn(`*Team*\n${e(packet.why.team, 80)}`));
  return [
    {
      type: 'header',
      text: {
        type: 'plain_text',
        text: truncateText(headerText(packet, state, words), SLACK_LIMITS.headerText),
        emoji: true,
      },
    },
    { type: 'section', text: mrkdwn(e(packet.summary, 600)) },
    { type: 'section', fields: fields.slice(0, SLACK_LIMITS.sectionFields) },
    {
      type: 'section',
      text: mrkdwn(
        `*Why a person is needed*\n${e(packet.why.text, 600)}\n*What you need to decide*\n${e(packet.why.decide, 400)}`,
      ),
    },
  ];
}

/** A titled list in one section: lines cut to `perLine`, whole lines only up to `max`, then "…and N more". */
function listSection(title: string, lines: string[], max: number, perLine: number): SectionBlock | null {
  if (lines.length === 0) return null;
  const limit = Math.min(MAX_SECTION, Math.max(200, Math.floor(max)));
  const lineMax = Math.max(60, Math.min(perLine, limit - title.length - 40));
  let text = `*${title}*`;
  let shown = 0;
  for (const raw of lines) {
    const line = truncateMrkdwn(raw, lineMax);
    const rest = lines.length - shown - 1;
    const reserve = rest > 0 ? 30 : 0;
    if (text.length + 1 + line.length + reserve > limit) break;
    text += `\n${line}`;
    shown++;
  }
  if (shown < lines.length) text += `\n_…and ${lines.length - shown} more_`;
  return { type: 'section', text: mrkdwn(text) };
}

function bodyBlocks(packet: ContextPacket, scale: number): KnownBlock[] {
  const share = (n: number) => n * scale;
  const per = (n: number) => Math.max(60, Math.floor(n * Math.max(scale, 0.3)));
  const sections: (SectionBlock | ContextBlock | null)[] = [];

  sections.push(
    listSection(
      'Suspected causes (most likely first)',
      packet.causes.map((c, i) => {
        const how = `${c.confirmed ? 'confirmed' : 'not confirmed'}${c.confidence === null ? '' : `, ${c.confidence}`}`;
        const evidence = c.evidence.slice(0, 4).map((x) => `\n   • ${e(x, per(200))}`);
        return `${i + 1}. *${e(c.description, per(200))}* (${how})${evidence.join('')}`;
      }),
      share(SHARES.causes),
      per(900),
    ),
  );
  sections.push(
    listSection(
      'Diagnostics',
      packet.diagnostics.map(
        (d) => `${STATUS_EMOJI[d.status] ?? ':white_circle:'} *${e(d.id, 63)}*: ${e(d.summary, per(250))}`,
      ),
      share(SHARES.diagnostics),
      per(330),
    ),
  );
  sections.push(
    listSection(
      'Actions tried',
      packet.actions.map((a) => {
        const summary = a.summary ? ` — ${e(a.summary, per(200))}` : '';
        const verification = a.verification ? `\n   ↳ ${e(a.verification, per(250))}` : '';
        return `${STEP_EMOJI[a.status] ?? '•'} *${e(a.step, 63)}* (\`${e(a.action, 40)}\`): ${e(a.status.replace(/_/g, ' '), 30)}${summary}${verification}`;
      }),
      share(SHARES.actions),
      per(600),
    ),
  );
  const omitted = packet.timelineOmitted > 0 ? ` (${packet.timelineOmitted} earlier events not shown)` : '';
  sections.push(
    listSection(
      `Timeline, newest last${omitted}`,
      packet.timeline.map((t) => `\`${utc(t.at)}\` ${e(t.actor, 40)}: ${e(t.text, per(220))}`),
      share(SHARES.timeline),
      per(300),
    ),
  );
  sections.push(
    listSection(
      'Similar incidents',
      packet.similar.map(
        (s) =>
          `• *INC-${s.id}* ${e(s.title, per(120))} (${e(s.service, 60)}, ${s.openedAt.toISOString().slice(0, 10)}; same ${s.matched.join(', ')}): ${e(s.resolution, per(160))}`,
      ),
      share(SHARES.similar),
      per(400),
    ),
  );
  const links = packet.links.flatMap((l) => {
    const url = linkUrl(l.url);
    return url ? [`<${url}|${e(l.label, 60)}>`] : [];
  });
  if (packet.runbook) {
    const r = packet.runbook;
    links.push(
      `Runbook ${e(r.name, 80)} (\`${e(r.id, 63)}\`${r.version ? ` v${e(r.version, 20)}` : ''}, matched by ${e(r.matchedBy, 20)})`,
    );
  }
  sections.push(listSection('Links', links, share(SHARES.links), 600));
  return sections.filter((b): b is SectionBlock => b !== null);
}

/**
 * An http(s) URL made safe inside `<url|label>`: Slack's control characters and the label separator are
 * percent-encoded (and `&` escaped), so a URL from an alert cannot close the link or open a mention. Null when it is
 * not an http(s) URL or too long to be worth a click.
 */
function linkUrl(url: string): string | null {
  if (!/^https?:\/\/[^\s]+$/i.test(url) || url.length > 1_500) return null;
  return url.replace(/&/g, '&amp;').replace(/</g, '%3C').replace(/>/g, '%3E').replace(/\|/g, '%7C');
}

function stateLine(state: PacketEscalationState): string {
  const paged = state.paged
    .slice(0, 10)
    .map((p) => who(p.name, p.slackUser))
    .join(', ');
  switch (state.status) {
    case 'acknowledged':
      return `:eyes: Acknowledged by ${state.ackedBy ? who(state.ackedBy, state.ackedBy) : 'someone'}${state.ackedAt ? ` at ${utc(state.ackedAt)}` : ''}`;
    case 'paging':
    case 'reassigned':
      return `:bell: ${state.status === 'reassigned' ? 'Reassigned: paging' : 'Paging'}${state.level > 0 ? ` level ${state.level}` : ''}${paged ? `: ${paged}` : ''}${state.nextAt ? ` · next level at ${utc(state.nextAt)} if nobody acknowledges` : ''}`;
    case 'exhausted':
      return `:warning: Nobody acknowledged after every level of the policy${paged ? ` (last paged: ${paged})` : ''}`;
    case 'deferred':
      return ':crescent_moon: Quiet hours: not paging for this severity; it goes into the morning digest';
    case 'digested':
      return ':spiral_note_pad: Listed in the morning digest';
    case 'resolved':
      return ':white_check_mark: Resolved: paging stopped';
    case 'cancelled':
      return ':heavy_minus_sign: Escalation cancelled: paging stopped';
  }
}

function tailBlocks(packet: ContextPacket, state: PacketEscalationState): KnownBlock[] {
  const blocks: KnownBlock[] = [{ type: 'context', elements: [mrkdwn(stateLine(state))] }];
  if (state.status === 'resolved' || state.status === 'cancelled') return blocks;
  const id = String(state.escalationId);
  const elements: ActionsBlock['elements'] = [];
  if (state.status === 'paging' || state.status === 'exhausted' || state.status === 'deferred') {
    const ack: Button = {
      type: 'button',
      action_id: PAGE_ACK_ACTION,
      text: { type: 'plain_text', text: 'Acknowledge' },
      style: 'primary',
      value: id,
    };
    elements.push(ack);
  }
  const resolve: Button = {
    type: 'button',
    action_id: PAGE_RESOLVE_ACTION,
    text: { type: 'plain_text', text: 'Resolve' },
    value: id,
    confirm: {
      title: { type: 'plain_text', text: `Resolve ${packet.ref}?` },
      text: { type: 'mrkdwn', text: 'This marks the incident resolved and stops paging.' },
      confirm: { type: 'plain_text', text: 'Resolve' },
      deny: { type: 'plain_text', text: 'Cancel' },
    },
  };
  elements.push(resolve);
  const select = reassignSelect(state);
  if (select) elements.push(select);
  blocks.push({ type: 'actions', block_id: `page-${id}`, elements });
  return blocks;
}

/** The "Reassign to…" menu: at most 100 options, each within Slack's option limits, within a share of the budget. */
function reassignSelect(state: PacketEscalationState): StaticSelect | null {
  const options: NonNullable<StaticSelect['options']> = [];
  let size = 0;
  for (const o of state.reassignTo.slice(0, SELECT_LIMITS.options)) {
    const option = {
      text: {
        type: 'plain_text' as const,
        text: truncateText(o.label.replace(/\s+/g, ' ').trim() || o.slackUser, SELECT_LIMITS.optionText),
      },
      value: clipText(`${state.escalationId}:${o.slackUser}`, SELECT_LIMITS.optionValue),
    };
    const optionSize = measureText(option);
    if (size + optionSize > MAX_SELECT_TEXT) break;
    size += optionSize;
    options.push(option);
  }
  if (options.length === 0) return null;
  return {
    type: 'static_select',
    action_id: PAGE_REASSIGN_ACTION,
    placeholder: { type: 'plain_text', text: 'Reassign to…' },
    options,
  };
}
