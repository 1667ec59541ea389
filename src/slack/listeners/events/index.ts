import type { App } from '@slack/bolt';
import { incidentRef } from '../../../incidents/incident.js';
import { buildIncidentList, buildTimelineMessage } from '../../blocks/incident-card.js';
import { escapeMrkdwn, fitMessage } from '../../blocks/limits.js';
import { buildSimilarMessage } from '../../blocks/similar.js';
import { MENTION_USAGE, parseMention } from '../../commands/incident-command.js';
import { cardViewOf, describeEvent } from '../../incident-view.js';
import type { ListenerDeps } from '../deps.js';

/** `@ai-sre status <service>` and `@ai-sre help`, answered in the thread of the mention. */
export function register(app: App, deps: ListenerDeps): void {
  app.event('app_mention', async ({ event, client }) => {
    const thread_ts = event.thread_ts ?? event.ts;
    const reply = (msg: { text: string; blocks?: unknown[] }) =>
      client.chat.postMessage({ channel: event.channel, thread_ts, unfurl_links: false, ...msg } as never);
    const parsed = parseMention(event.text ?? '');
    if (parsed.kind === 'help') {
      await reply({ text: MENTION_USAGE });
      return;
    }
    if (parsed.kind === 'invalid') {
      await reply({ text: `${escapeMrkdwn(parsed.problem)}\n\n${MENTION_USAGE}` });
      return;
    }
    if (parsed.kind === 'similar') {
      const found = await deps.learning.similar(parsed.id);
      if (!found) {
        await reply({ text: `There is no incident ${incidentRef(parsed.id)}.` });
        return;
      }
      const msg = buildSimilarMessage(incidentRef(parsed.id), found.items);
      await reply({ text: msg.text, blocks: msg.blocks });
      return;
    }
    const incidents = await deps.incidents.listOpen({ service: parsed.service, limit: 20 });
    const automation = await deps.remediation.automationStatus(parsed.service);
    const automationBlock = { type: 'context', elements: [{ type: 'mrkdwn', text: automation }] };
    if (incidents.length === 0) {
      const text = `All quiet: ${escapeMrkdwn(parsed.service)} has no open incidents.`;
      await reply({ text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }, automationBlock] });
      return;
    }
    const list = buildIncidentList(incidents.map(cardViewOf), `Open incidents of ${parsed.service}`);
    // The latest events of the most severe incident, so the answer says what is happening, not only that something is.
    const first = incidents[0];
    const events = first ? await deps.incidents.timeline(first.id, { limit: 3 }) : [];
    const recent = events.flatMap(
      (e) => buildTimelineMessage({ type: e.type, actor: e.actor, at: e.at, text: describeEvent(e) }).blocks,
    );
    const msg = fitMessage({
      text: list.text,
      blocks: [...list.blocks, automationBlock as never, ...recent],
    });
    await reply({ text: msg.text, blocks: msg.blocks });
  });
}
