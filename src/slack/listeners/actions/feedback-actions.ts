import type { App, BlockButtonAction } from '@slack/bolt';
import { incidentRef } from '../../../incidents/incident.js';
import {
  buildResolutionNoteModal,
  FEEDBACK_RIGHT_ACTION,
  FEEDBACK_WRONG_ACTION,
  RESOLUTION_NOTE_ACTION,
  RESOLUTION_NOTE_VIEW,
} from '../../blocks/feedback.js';
import { escapeMrkdwn } from '../../blocks/limits.js';
import type { ListenerDeps } from '../deps.js';

/** the modal's inputs, by block id (= action id) */
const NOTE_FIELDS = ['cause', 'fix', 'note'] as const;

/**
 * "Was this the right call?" (Right / Wrong on each automated step), the "Resolution note" button that opens the
 * modal, and the modal's submission. The domain validates and stores; a bad note keeps the modal open with the error
 * on the field.
 */
export function registerFeedbackActions(app: App, deps: ListenerDeps): void {
  for (const [actionId, verdict] of [
    [FEEDBACK_RIGHT_ACTION, 'right'],
    [FEEDBACK_WRONG_ACTION, 'wrong'],
  ] as const) {
    app.action<BlockButtonAction>(actionId, async ({ ack, body, action, client, respond }) => {
      await ack();
      const userId = body.user.id;
      const answer = async (text: string) => {
        const channel = body.channel?.id;
        if (channel && !channel.startsWith('D')) {
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
      const stepRowId = Number(action.value);
      if (!Number.isSafeInteger(stepRowId) || stepRowId <= 0) {
        await answer(`This button carries no step id (got ${escapeMrkdwn(String(action.value))}).`);
        return;
      }
      try {
        const outcome = await deps.feedback.judgeAction({ stepRowId, userId, verdict });
        deps.log.info({ step: stepRowId, user: userId, verdict, ok: outcome.ok }, 'action feedback');
        await answer(outcome.message);
      } catch (err) {
        deps.log.error({ err, step: stepRowId }, 'action feedback failed');
        await answer('Could not record that (the database is not answering); nothing changed. Try again.');
      }
    });
  }

  app.action<BlockButtonAction>(RESOLUTION_NOTE_ACTION, async ({ ack, body, action, client }) => {
    await ack();
    const incidentId = Number(action.value);
    if (!Number.isSafeInteger(incidentId) || incidentId <= 0) return;
    try {
      await client.views.open({
        trigger_id: body.trigger_id,
        view: buildResolutionNoteModal(incidentId, incidentRef(incidentId)),
      });
    } catch (err) {
      deps.log.warn({ err, incident: incidentId }, 'could not open the resolution note modal');
    }
  });

  app.view(RESOLUTION_NOTE_VIEW, async ({ ack, body, view }) => {
    const incidentId = Number(view.private_metadata);
    const values: Record<string, string> = {};
    for (const field of NOTE_FIELDS) values[field] = view.state.values[field]?.[field]?.value ?? '';
    if (!Number.isSafeInteger(incidentId) || incidentId <= 0) {
      await ack({
        response_action: 'errors',
        errors: { cause: 'This form lost its incident id; open it again.' },
      });
      return;
    }
    try {
      const outcome = await deps.feedback.addResolutionNote({
        incidentId,
        userId: body.user.id,
        note: values,
      });
      if (!outcome.ok) {
        await ack({ response_action: 'errors', errors: outcome.errors });
        return;
      }
      await ack();
      deps.log.info({ incident: incidentId, user: body.user.id }, 'resolution note saved');
    } catch (err) {
      deps.log.error({ err, incident: incidentId }, 'resolution note failed');
      await ack({
        response_action: 'errors',
        errors: { cause: 'Could not save the note (the database is not answering). Try again.' },
      });
    }
  });
}
