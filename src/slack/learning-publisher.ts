import type { WebClient } from '@slack/web-api';
import type { Logger } from '../logger.js';
import type { LearningPublisher } from '../postmortem/learning-service.js';
import type { Queryable } from '../store/db.js';
import { resolutionNoteButton } from './blocks/feedback.js';
import { fitMessage } from './blocks/limits.js';
import { buildPostmortemSummaryMessage } from './blocks/postmortem.js';
import { buildSuggestionsMessage } from './blocks/suggestions.js';
import type { ChannelRouter } from './routing.js';

/** Slack errors after which the file is left out and the summary still stands (a workspace without files:write) */
const FILE_REFUSALS = new Set(['missing_scope', 'no_permission', 'not_allowed_token_type', 'invalid_auth']);

/** Where post-incident learning shows in Slack: the postmortem in the incident's thread, suggestions in the default channel. */
export function createLearningPublisher(deps: {
  client: WebClient;
  router: ChannelRouter;
  db: Queryable;
  log: Logger;
}): LearningPublisher {
  return {
    async publishPostmortem(postmortem, followUps) {
      const { rows } = await deps.db.query<{ channel: string; ts: string }>(
        'SELECT channel, ts FROM slack_messages WHERE incident_id = $1',
        [postmortem.incidentId],
      );
      const card = rows[0];
      if (!card) return false;
      const key = `postmortem:${postmortem.revision}`;
      const posted = await deps.db.query(
        'SELECT 1 FROM slack_thread_messages WHERE incident_id = $1 AND key = $2',
        [postmortem.incidentId, key],
      );
      if ((posted.rowCount ?? 0) > 0) return true;
      const summary = buildPostmortemSummaryMessage({
        incidentId: postmortem.incidentId,
        summary: postmortem.summary,
        followUps,
        generator: postmortem.generator,
      });
      const message = fitMessage({
        text: summary.text,
        blocks: [...summary.blocks, resolutionNoteButton(postmortem.incidentId)],
      });
      const res = await deps.client.chat.postMessage({
        channel: card.channel,
        thread_ts: card.ts,
        text: message.text,
        blocks: message.blocks,
        unfurl_links: false,
      });
      try {
        await deps.client.filesUploadV2({
          channel_id: card.channel,
          thread_ts: card.ts,
          content: postmortem.markdown,
          filename: `INC-${postmortem.incidentId}-postmortem-r${postmortem.revision}.md`,
          title: `INC-${postmortem.incidentId} postmortem draft (revision ${postmortem.revision})`,
        });
      } catch (err) {
        const error = (err as { data?: { error?: string } }).data?.error;
        if (!error || !FILE_REFUSALS.has(error)) throw err;
        deps.log.warn(
          { incident: postmortem.incidentId, error },
          'Slack refused the postmortem file; summary only',
        );
      }
      await deps.db.query(
        `INSERT INTO slack_thread_messages (incident_id, key, channel, ts, posted_revision) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (incident_id, key) DO NOTHING`,
        [postmortem.incidentId, key, card.channel, res.ts ?? '', postmortem.revision],
      );
      return true;
    },
    async postSuggestions(suggestions, period) {
      const message = buildSuggestionsMessage(suggestions, period);
      await deps.client.chat.postMessage({
        channel: deps.router.defaultChannel(),
        text: message.text,
        blocks: message.blocks,
        unfurl_links: false,
      });
    },
  };
}
