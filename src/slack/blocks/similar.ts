import type { KnownBlock, SectionBlock } from '@slack/types';
import type { SimilarIncident } from '../../incidents/similar-incidents.js';
import {
  escapeMrkdwn,
  fitMessage,
  MAX_TOTAL_BLOCK_TEXT,
  SLACK_LIMITS,
  type SlackMessage,
  truncateText,
} from './limits.js';

/** characters of block text the incident lines may take together, under fitMessage's total budget so nothing is
 *  dropped by it: with many results each line gets a smaller share */
const MAX_LINES_TEXT = MAX_TOTAL_BLOCK_TEXT - 1_500;
/** the most characters one incident's line gets, however few results there are */
const MAX_LINE = 700;
/** characters measureText counts for a section block besides its text ("section", "mrkdwn") */
const BLOCK_OVERHEAD = 20;
/** one block for the heading, one per incident, one for the footer */
const MAX_ITEMS = SLACK_LIMITS.blocksPerMessage - 2;

const mrkdwn = (text: string) => ({ type: 'mrkdwn' as const, text });
/** untrusted text, cut then escaped, on one line */
const e = (s: string, max: number) => escapeMrkdwn(truncateText(s.replace(/\s+/g, ' ').trim(), max));

/**
 * The answer to `@ai-sre similar <id>`: past incidents like `ref`, best first, each with how it ended (who resolved
 * it and what fixed it, from the resolution note when there is one), why it matched and its score. Titles and
 * resolutions come from alerts and people and are escaped; lines shrink with the count so the message fits Slack.
 */
export function buildSimilarMessage(ref: string, items: SimilarIncident[]): SlackMessage {
  const name = e(ref, 40);
  if (items.length === 0) {
    const text = `No similar incidents found for ${name}.`;
    return fitMessage({
      text,
      blocks: [
        {
          type: 'section',
          text: mrkdwn(`:mag: ${text} No earlier incident shares its service, an alert name or its words.`),
        },
      ],
    });
  }
  const shown = items.slice(0, MAX_ITEMS);
  const perLine = Math.max(120, Math.min(MAX_LINE, Math.floor(MAX_LINES_TEXT / shown.length)));
  const blocks: KnownBlock[] = [
    {
      type: 'section',
      text: mrkdwn(`:mag: *Incidents like ${name}*, most similar first`),
    },
    ...shown.map((item) => itemBlock(item, perLine)),
  ];
  const omitted = items.length - shown.length;
  blocks.push({
    type: 'context',
    elements: [
      mrkdwn(
        `Scored by same service (3), a shared alert name (2) and shared words (up to 2), resolution notes included.${omitted > 0 ? ` ${omitted} more not shown.` : ''}`,
      ),
    ],
  });
  const text = `${items.length} incident${items.length === 1 ? '' : 's'} like ${name}: ${shown
    .slice(0, 5)
    .map((s) => `INC-${s.id}`)
    .join(', ')}${items.length > 5 ? ', …' : ''}`;
  return fitMessage({ text, blocks });
}

function itemBlock(item: SimilarIncident, max: number): SectionBlock {
  const matched = item.matched.length > 0 ? `same ${item.matched.join(', ')}` : 'weak match';
  const line = (title: string, resolution: string) =>
    `*INC-${item.id}* ${title}\n${e(item.service, 40)} · ${item.severity} · opened ${item.openedAt.toISOString().slice(0, 10)} · ${matched} · score ${item.score}\n↳ ${resolution}`;
  // the title and the resolution share what the fixed parts (id, service, date, scores) leave of this line's share
  const room = Math.max(40, max - line('', '').length - BLOCK_OVERHEAD);
  return {
    type: 'section',
    text: mrkdwn(line(e(item.title, Math.floor(room * 0.4)), e(item.resolution, Math.floor(room * 0.6)))),
  };
}
