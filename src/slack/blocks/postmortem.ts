import type { KnownBlock } from '@slack/types';
import { incidentRef } from '../../incidents/incident.js';
import { escapeMrkdwn, fitMessage, type SlackMessage } from './limits.js';

const mrkdwn = (text: string) => ({ type: 'mrkdwn' as const, text });

/** 'deterministic' → written from the timeline alone; 'llm:<model>' → the narrative is the model's, advisory */
function describeGenerator(generator: string): string {
  if (generator.startsWith('llm:')) {
    const model = generator.slice('llm:'.length).trim() || 'an LLM';
    return `narrative written by ${escapeMrkdwn(model)}: machine-written, advisory only`;
  }
  return 'written from the timeline by ai-sre';
}

/**
 * The thread message that goes with an uploaded postmortem draft: a heading, the draft's summary lines (plain text
 * from the draft, escaped here: incident titles and notes are untrusted) and how many follow-ups it lists.
 */
export function buildPostmortemSummaryMessage(p: {
  incidentId: number;
  summary: string;
  followUps: number;
  generator: string;
}): SlackMessage {
  const ref = incidentRef(p.incidentId);
  const heading = `Postmortem draft for ${ref} — full draft attached`;
  const lines = p.summary
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const followUps =
    p.followUps === 0
      ? 'no follow-ups found by the bot'
      : `${p.followUps} follow-up item${p.followUps === 1 ? '' : 's'}`;
  const blocks: KnownBlock[] = [{ type: 'section', text: mrkdwn(`:memo: *${heading}*`) }];
  if (lines.length > 0) {
    blocks.push({ type: 'section', text: mrkdwn(lines.map((l) => escapeMrkdwn(l)).join('\n')) });
  }
  blocks.push({
    type: 'context',
    elements: [mrkdwn(`${followUps} · ${describeGenerator(p.generator)} · edit the draft before sharing it`)],
  });
  return fitMessage({ text: heading, blocks });
}
