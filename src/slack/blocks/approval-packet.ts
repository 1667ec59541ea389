import type { KnownBlock } from '@slack/types';
import type { ApprovalPacket, ApprovalStatus } from '../../safety/approvals-repo.js';
import { formatSlackDate } from './incident-card.js';
import { escapeMrkdwn, fitMessage, type SlackMessage, truncateText } from './limits.js';

export const APPROVE_ACTION = 'remediation_approve';
export const REJECT_ACTION = 'remediation_reject';

export interface ApprovalPacketView {
  id: number;
  status: ApprovalStatus;
  packet: ApprovalPacket;
  approvers: string[];
  expiresAt: Date;
  decidedBy: string | null;
  decidedAt: Date | null;
}

const mrkdwn = (text: string) => ({ type: 'mrkdwn' as const, text });
const who = (id: string) => (id.startsWith('S') ? `<!subteam^${id}>` : `<@${id}>`);
const EVIDENCE_EMOJI: Record<string, string> = {
  healthy: ':large_green_circle:',
  warning: ':large_yellow_circle:',
  critical: ':red_circle:',
  error: ':white_circle:',
};

/**
 * The decision packet of a guarded step: what would run and where, why (evidence), what is re-checked first, the
 * risk and blast radius, how to undo it and how success is judged, with Approve / Reject while it is pending and who
 * decided (and when) after. Values come from monitoring and runbooks, so every one is escaped.
 */
export function buildApprovalPacket(view: ApprovalPacketView): SlackMessage {
  const p = view.packet;
  const e = (s: string, max = 500) => escapeMrkdwn(truncateText(s, max));
  const title = `Approval needed: ${p.step.description}`;
  const blocks: KnownBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: truncateText(title, 150), emoji: true } },
    {
      type: 'section',
      fields: [
        mrkdwn(`*Action*\n\`${e(p.step.action, 60)}\` (step ${p.step.position + 1} of ${p.step.of})`),
        mrkdwn(`*Target*\n\`${e(p.target, 200)}\``),
        mrkdwn(
          `*Incident*\nINC-${p.incident.id} · ${e(p.incident.service, 100)} · ${e(p.incident.severity, 20)}`,
        ),
        mrkdwn(`*Runbook*\n${e(p.runbook.name, 150)} (\`${e(p.runbook.id, 63)}\`)`),
      ],
    },
  ];
  if (p.hypothesis) blocks.push({ type: 'section', text: mrkdwn(`*Likely cause*\n${e(p.hypothesis)}`) });
  if (p.evidence.length > 0) {
    const lines = p.evidence
      .slice(0, 6)
      .map((x) => `${EVIDENCE_EMOJI[x.status] ?? ''} *${e(x.diagnostic, 63)}*: ${e(x.summary, 250)}`);
    blocks.push({ type: 'section', text: mrkdwn(`*Evidence*\n${lines.join('\n')}`) });
  }
  blocks.push(
    {
      type: 'section',
      text: mrkdwn(
        `*Checked again right before it runs*\n${p.preconditions.map((c) => `• ${e(c, 300)}`).join('\n')}`,
      ),
    },
    {
      type: 'section',
      fields: [
        mrkdwn(`*Risk*\n${e(p.tier, 20)}: ${e(p.tierWhy, 300)}`),
        mrkdwn(`*Blast radius*\n${e(p.blastRadius, 400)}`),
        mrkdwn(`*Rollback plan*\n${e(p.rollback, 400)}`),
        mrkdwn(
          `*Verification*\n${p.verification ? e(p.verification, 400) : 'none: a person confirms the fix'}`,
        ),
      ],
    },
    {
      type: 'context',
      elements: [mrkdwn(`Config: \`${e(JSON.stringify(p.config), 600)}\``)],
    },
  );
  if (view.status === 'pending') {
    blocks.push(
      {
        type: 'context',
        elements: [
          mrkdwn(
            `Approvers: ${view.approvers.map(who).join(', ')}${p.secondPersonRequired ? ' (P1: not the person who asked for the run)' : ''} · expires ${formatSlackDate(view.expiresAt)}`,
          ),
        ],
      },
      {
        type: 'actions',
        block_id: `approval-${view.id}`,
        elements: [
          {
            type: 'button',
            action_id: APPROVE_ACTION,
            text: { type: 'plain_text', text: 'Approve' },
            style: 'primary',
            value: String(view.id),
            confirm: {
              title: { type: 'plain_text', text: 'Run this step?' },
              text: { type: 'mrkdwn', text: e(`${p.step.description} on ${p.target}`, 280) },
              confirm: { type: 'plain_text', text: 'Approve' },
              deny: { type: 'plain_text', text: 'Cancel' },
            },
          },
          {
            type: 'button',
            action_id: REJECT_ACTION,
            text: { type: 'plain_text', text: 'Reject' },
            style: 'danger',
            value: String(view.id),
          },
        ],
      },
    );
  } else {
    blocks.push({ type: 'context', elements: [mrkdwn(decidedLine(view))] });
  }
  return fitMessage({ text: `${title} (INC-${p.incident.id}, ${view.status})`, blocks });
}

function decidedLine(view: ApprovalPacketView): string {
  const at = view.decidedAt ? ` at ${formatSlackDate(view.decidedAt)}` : '';
  switch (view.status) {
    case 'approved':
      return `:white_check_mark: Approved by ${who(view.decidedBy ?? 'unknown')}${at}`;
    case 'rejected':
      return `:x: Rejected by ${who(view.decidedBy ?? 'unknown')}${at}`;
    case 'expired':
      return `:hourglass: Expired${at}: nobody approved it in time; the incident was escalated`;
    default:
      return `Cancelled${at}`;
  }
}
