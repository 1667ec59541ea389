import type { KnownBlock } from '@slack/types';
import type { WebClient } from '@slack/web-api';
import type { DigestItem, EscalationNotifier } from '../escalation/escalation-service.js';
import { incidentRef } from '../incidents/incident.js';
import type { Queryable } from '../store/db.js';
import { escapeMrkdwn, fitMessage, truncateText } from './blocks/limits.js';
import type { ChannelRouter } from './routing.js';

const SEVERITY_LABEL: Record<DigestItem['severity'], string> = {
  critical: 'P1',
  high: 'P2',
  warning: 'P3',
  info: 'P4',
};

/** The morning digest: the incidents quiet hours held back overnight, with who is on call now. */
export function buildDigestMessage(
  service: string,
  items: DigestItem[],
): { text: string; blocks: KnownBlock[] } {
  const heading = `:sunrise: Held back overnight for ${escapeMrkdwn(service)}: ${items.length} incident${items.length === 1 ? '' : 's'} (quiet hours)`;
  const oncall = [
    ...new Set(items.flatMap((i) => i.oncall.map((o) => o.slackUser).filter((u) => u !== null))),
  ];
  const lines = items.map(
    (i) =>
      `• *${incidentRef(i.incidentId)}* ${SEVERITY_LABEL[i.severity]} ${escapeMrkdwn(truncateText(i.title, 150))} — ${i.status}; ${escapeMrkdwn(truncateText(i.why, 200))}`,
  );
  const blocks: KnownBlock[] = [{ type: 'section', text: { type: 'mrkdwn', text: `*${heading}*` } }];
  for (let i = 0; i < lines.length; i += 10) {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: lines.slice(i, i + 10).join('\n') } });
  }
  if (oncall.length > 0) {
    blocks.push({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: `On call now: ${oncall.map((u) => `<@${u}>`).join(', ')}` }],
    });
  }
  return fitMessage({ text: heading, blocks });
}

/** Where the escalation flow talks in Slack: the incident's thread (page mentions) and the service's channel (digest). */
export function createEscalationNotifier(deps: {
  client: WebClient;
  router: ChannelRouter;
  db: Queryable;
}): EscalationNotifier {
  return {
    async postInThread(incidentId, text) {
      const { rows } = await deps.db.query<{ channel: string; ts: string }>(
        'SELECT channel, ts FROM slack_messages WHERE incident_id = $1',
        [incidentId],
      );
      const card = rows[0];
      if (!card) return false;
      await deps.client.chat.postMessage({
        channel: card.channel,
        thread_ts: card.ts,
        text,
        unfurl_links: false,
      });
      return true;
    },
    async postDigest(service, items) {
      const message = buildDigestMessage(service, items);
      await deps.client.chat.postMessage({
        channel: deps.router.channelFor(service),
        text: message.text,
        blocks: message.blocks,
        unfurl_links: false,
      });
    },
  };
}
