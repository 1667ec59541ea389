import type {
  AllMiddlewareArgs,
  App,
  BlockButtonAction,
  BlockStaticSelectAction,
  SlackActionMiddlewareArgs,
} from '@slack/bolt';
import type { ActionOutcome } from '../../../escalation/escalation-service.js';
import { PAGE_ACK_ACTION, PAGE_REASSIGN_ACTION, PAGE_RESOLVE_ACTION } from '../../blocks/context-packet.js';
import { escapeMrkdwn } from '../../blocks/limits.js';
import type { ListenerDeps } from '../deps.js';

type PageAction = SlackActionMiddlewareArgs<BlockButtonAction | BlockStaticSelectAction> & AllMiddlewareArgs;

/** Answers the clicker only: in the thread as an ephemeral, or through the response_url (a DM page). */
async function answer(args: PageAction, text: string): Promise<void> {
  const { body, client, respond } = args;
  const channel = body.channel?.id;
  // a page in a DM: answer there through the response_url (postEphemeral needs the bot in the conversation)
  if (channel && !channel.startsWith('D')) {
    const thread_ts = body.message?.thread_ts as string | undefined;
    await client.chat.postEphemeral({
      channel,
      user: body.user.id,
      text,
      ...(thread_ts ? { thread_ts } : {}),
    });
  } else {
    await respond({ response_type: 'ephemeral', replace_original: false, text });
  }
}

/**
 * Acknowledge, Resolve and Reassign on a page (in the incident thread or the on-call person's DM). Acked at once;
 * the escalation service decides (still paging? already acknowledged?) and the clicker hears what happened. The packet
 * in the thread is edited by the Slack sync from Postgres, so everyone sees who took it.
 */
export function registerPageActions(app: App, deps: ListenerDeps): void {
  const handle = async (
    args: PageAction,
    what: string,
    run: (escalationId: number, userId: string) => Promise<ActionOutcome>,
    rawId: string,
  ) => {
    const userId = args.body.user.id;
    const escalationId = Number(rawId);
    if (!Number.isSafeInteger(escalationId) || escalationId <= 0) {
      await answer(args, `This button carries no escalation id (got ${escapeMrkdwn(rawId)}).`);
      return;
    }
    try {
      const outcome = await run(escalationId, userId);
      deps.log.info({ escalation: escalationId, user: userId, what, ok: outcome.ok }, 'page click');
      await answer(args, outcome.message);
    } catch (err) {
      deps.log.error({ err, escalation: escalationId, what }, 'page click failed');
      await answer(
        args,
        'Could not record that (the database is not answering); nothing changed. Try again.',
      );
    }
  };

  app.action<BlockButtonAction>(PAGE_ACK_ACTION, async (args) => {
    await args.ack();
    await handle(
      args,
      'acknowledge',
      (escalationId, userId) => deps.escalations.acknowledge({ escalationId, userId }),
      args.action.value ?? '',
    );
  });
  app.action<BlockButtonAction>(PAGE_RESOLVE_ACTION, async (args) => {
    await args.ack();
    await handle(
      args,
      'resolve',
      (escalationId, userId) => deps.escalations.resolve({ escalationId, userId }),
      args.action.value ?? '',
    );
  });
  app.action<BlockStaticSelectAction>(PAGE_REASSIGN_ACTION, async (args) => {
    await args.ack();
    // the option's value is "<escalationId>:<Slack user id>"
    const [rawId = '', to = ''] = args.action.selected_option.value.split(':');
    await handle(
      args,
      'reassign',
      (escalationId, userId) => deps.escalations.reassign({ escalationId, userId, to }),
      rawId,
    );
  });
}
