import type { KnownBlock, View } from '@slack/types';
import type { JudgedStep } from '../../postmortem/feedback.js';
import { escapeMrkdwn, fitMessage, type SlackMessage, truncateText } from './limits.js';

export const FEEDBACK_RIGHT_ACTION = 'feedback_right';
export const FEEDBACK_WRONG_ACTION = 'feedback_wrong';
export const RESOLUTION_NOTE_ACTION = 'resolution_note_open';
export const RESOLUTION_NOTE_VIEW = 'resolution_note';

/** steps shown (two blocks each) inside Slack's 50 blocks */
const MAX_STEPS = 20;

const STATUS_WORDS: Record<string, string> = {
  verified: 'verified',
  verification_failed: 'did not fix it',
  failed: 'failed',
  succeeded: 'ran, not verified',
  verifying: 'verifying',
  unknown: 'outcome unknown',
};

/** "Was this the right call?" under a run's automated actions, with each step's verdict counts so far. */
export function buildActionFeedbackMessage(ref: string, steps: JudgedStep[]): SlackMessage {
  const heading = `*Was this the right call?* ai-sre acted on ${ref}; your answer counts towards the false-action rate and the runbook suggestions.`;
  const blocks: KnownBlock[] = [{ type: 'section', text: { type: 'mrkdwn', text: heading } }];
  for (const step of steps.slice(0, MAX_STEPS)) {
    const counts = step.right + step.wrong > 0 ? ` · :+1: ${step.right} · :-1: ${step.wrong}` : '';
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `\`${escapeMrkdwn(truncateText(step.step, 80))}\` (${escapeMrkdwn(step.action)}) — ${STATUS_WORDS[step.status] ?? escapeMrkdwn(step.status)}${counts}`,
      },
    });
    blocks.push({
      type: 'actions',
      block_id: `feedback:${step.stepRowId}`,
      elements: [
        {
          type: 'button',
          action_id: FEEDBACK_RIGHT_ACTION,
          text: { type: 'plain_text', text: 'Right call' },
          value: String(step.stepRowId),
        },
        {
          type: 'button',
          action_id: FEEDBACK_WRONG_ACTION,
          text: { type: 'plain_text', text: 'Wrong call' },
          value: String(step.stepRowId),
        },
      ],
    });
  }
  return fitMessage({ text: `Was this the right call? (${ref})`, blocks });
}

/** The button that opens the resolution-note modal (with the postmortem summary). */
export function resolutionNoteButton(incidentId: number): KnownBlock {
  return {
    type: 'actions',
    elements: [
      {
        type: 'button',
        action_id: RESOLUTION_NOTE_ACTION,
        text: { type: 'plain_text', text: 'Resolution note' },
        value: String(incidentId),
      },
    ],
  };
}

/** The modal: cause and fix in the person's words, and anything else worth keeping. */
export function buildResolutionNoteModal(incidentId: number, ref: string): View {
  const input = (id: string, label: string, hint: string, multiline: boolean, max: number): KnownBlock => ({
    type: 'input',
    block_id: id,
    optional: true,
    label: { type: 'plain_text', text: label },
    hint: { type: 'plain_text', text: hint },
    element: { type: 'plain_text_input', action_id: id, multiline, max_length: max },
  });
  return {
    type: 'modal',
    callback_id: RESOLUTION_NOTE_VIEW,
    private_metadata: String(incidentId),
    title: { type: 'plain_text', text: `Resolution of ${ref}`.slice(0, 24) },
    submit: { type: 'plain_text', text: 'Save' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      input('cause', 'What caused it', 'e.g. a connection leak in the report export', false, 1000),
      input('fix', 'What fixed it', 'e.g. restarted pgbouncer, then rolled back v142', false, 1000),
      input('note', 'Anything else', 'what the next person should know', true, 3000),
    ],
  };
}
