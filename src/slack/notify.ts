import type { WebClient } from '@slack/web-api';
import type { NotifyInput } from '../remediation/executor.js';
import type { Queryable } from '../store/db.js';
import { escapeMrkdwn } from './blocks/limits.js';
import type { ChannelRouter } from './routing.js';

/**
 * The `notify` action's poster: a named channel, a service's incident channel, or the incident's own thread. The text
 * holds runbook wording and incident values (untrusted), so Slack markup in it is shown literally: no `<!channel>`.
 */
export function createNotifier(deps: { client: WebClient; router: ChannelRouter; db: Queryable }) {
  return async (input: NotifyInput): Promise<{ channel: string; ts: string }> => {
    const text = escapeMrkdwn(input.text);
    let channel = input.channel ?? (input.service ? deps.router.channelFor(input.service) : undefined);
    let thread_ts: string | undefined;
    if (!channel) {
      const { rows } = await deps.db.query<{ channel: string; ts: string }>(
        'SELECT channel, ts FROM slack_messages WHERE incident_id = $1',
        [input.incidentId],
      );
      const card = rows[0];
      if (!card) throw new Error(`INC-${input.incidentId} has no Slack thread yet`);
      channel = card.channel;
      thread_ts = card.ts;
    }
    const res = await deps.client.chat.postMessage({ channel, text, thread_ts, unfurl_links: false });
    return { channel: res.channel ?? channel, ts: res.ts ?? '' };
  };
}
