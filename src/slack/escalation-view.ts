import { buildContextPacket, type ContextPacket } from '../escalation/context-packet.js';
import { type Escalation, getEscalation, totalSteps } from '../escalation/escalation-repo.js';
import type { Queryable } from '../store/db.js';
import { buildContextPacketMessage, type PacketEscalationState } from './blocks/context-packet.js';
import { fitMessage, type SlackMessage } from './blocks/limits.js';

/** Who a page may be handed to, per team (the escalation service answers it from oncall.yml). */
export type ReassignCandidates = (team: string | null) => { slackUser: string; label: string }[];

/** The packet's escalation state as the Slack message shows it. */
export function packetStateOf(escalation: Escalation, candidates: ReassignCandidates): PacketEscalationState {
  const levels = Math.max(1, escalation.policy.levels.length);
  const walked = escalation.status === 'paging' && escalation.step < totalSteps(escalation.policy);
  return {
    escalationId: escalation.id,
    status: escalation.status === 'joined' ? 'paging' : escalation.status,
    // step is the next step to run: the last one paged is the one before it
    level: escalation.step === 0 ? 0 : ((escalation.step - 1) % levels) + 1,
    paged: escalation.paged,
    ackedBy: escalation.ackedBy,
    ackedAt: escalation.ackedAt,
    nextAt: walked ? escalation.nextAt : null,
    reassignTo: candidates(escalation.team),
  };
}

/** The Slack rendering of a page: the context packet with the escalation's buttons. */
export function renderPageMessage(
  escalation: Escalation,
  packet: ContextPacket,
  candidates: ReassignCandidates,
): SlackMessage {
  return fitMessage(buildContextPacketMessage(packet, packetStateOf(escalation, candidates)));
}

/** The thread's packet message of one escalation as Postgres has it now, with the revision it shows. */
export async function escalationMessage(
  db: Queryable,
  escalationId: number,
  candidates: ReassignCandidates,
): Promise<{ message: SlackMessage; revision: number } | null> {
  const escalation = await getEscalation(db, escalationId);
  if (!escalation) return null;
  const packet = await buildContextPacket(db, escalation.incidentId);
  if (!packet) return null;
  return { message: renderPageMessage(escalation, packet, candidates), revision: escalation.revision };
}
