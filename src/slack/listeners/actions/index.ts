import type { App, BlockButtonAction } from '@slack/bolt';
import { APPROVE_ACTION, REJECT_ACTION } from '../../blocks/approval-packet.js';
import { escapeMrkdwn } from '../../blocks/limits.js';
import { groupsOf } from '../../usergroups.js';
import type { ListenerDeps } from '../deps.js';
import { registerFeedbackActions } from './feedback-actions.js';
import { registerPageActions } from './page-actions.js';

/**
 * Approve / Reject on a decision packet: acked at once; the domain decides (authorised? still pending? expired?) and
 * the clicker gets an ephemeral answer saying what happened and why. The packet itself is edited by the Slack sync
 * from Postgres, so every viewer sees who decided and when.
 */
export function register(app: App, deps: ListenerDeps): void {
  registerPageActions(app, deps);
  registerFeedbackActions(app, deps);
  for (const [actionId, decision] of [
    [APPROVE_ACTION, 'approve'],
    [REJECT_ACTION, 'reject'],
  ] as const) {
    app.action<BlockButtonAction>(actionId, async ({ ack, body, action, client, respond }) => {
      await ack();
      const userId = body.user.id;
      const approvalId = Number(action.value);
      // in the packet's thread, seen only by the clicker; the response_url when the channel is unknown
      const answer = async (text: string) => {
        const channel = body.channel?.id;
        if (channel) {
          const thread_ts = body.message?.thread_ts as string | undefined;
          await client.chat.postEphemeral({
            channel,
            user: userId,
            text,
            ...(thread_ts ? { thread_ts } : {}),
          });
        } else {
          await respond({ response_type: 'ephemeral', replace_original: false, text });
        }
      };
      if (!Number.isSafeInteger(approvalId) || approvalId <= 0) {
        await answer(`This button carries no approval id (got ${escapeMrkdwn(String(action.value))}).`);
        return;
      }
      try {
        const approvers = (await deps.remediation.approversOf(approvalId)) ?? [];
        const groups = await groupsOf(client, userId, approvers);
        const outcome = await deps.remediation.decide({ approvalId, userId, groups, decision });
        deps.log.info(
          { approval: approvalId, user: userId, decision, outcome: outcome.outcome },
          'approval click',
        );
        await answer(outcome.message);
      } catch (err) {
        deps.log.error({ err, approval: approvalId }, 'approval click failed');
        await answer(
          'Could not record your decision (the database is not answering); nothing changed. Try again.',
        );
      }
    });
  }
}
