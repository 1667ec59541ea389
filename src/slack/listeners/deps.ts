import type { EscalationService } from '../../escalation/escalation-service.js';
import type { OncallConfig } from '../../escalation/oncall.schema.js';
import type { IncidentService } from '../../incidents/incident-service.js';
import type { Logger } from '../../logger.js';
import type { LearningService } from '../../postmortem/learning-service.js';
import type { RemediationService } from '../../remediation/approval-service.js';
import type { RunbookService } from '../../runbooks/runbook-service.js';

/** What the Slack listeners may use: domain services only, never the store directly. */
export interface ListenerDeps {
  incidents: IncidentService;
  runbooks: RunbookService;
  /** who is on call now and next, per team (`/incident oncall`); null when no on-call file is configured */
  oncall: OncallConfig | null;
  /** Acknowledge / Resolve / Reassign on a page, and `/incident page` */
  escalations: Pick<EscalationService, 'acknowledge' | 'resolve' | 'reassign' | 'page'>;
  /** "Was this the right call?" and resolution notes */
  feedback: {
    judgeAction(input: { stepRowId: number; userId: string; verdict: 'right' | 'wrong' }): Promise<{
      ok: boolean;
      message: string;
    }>;
    /** `note` is the modal's raw fields; errors are by field (block id) for the modal */
    addResolutionNote(input: {
      incidentId: number;
      userId: string;
      note: Record<string, string>;
    }): Promise<{ ok: true } | { ok: false; errors: Record<string, string> }>;
  };
  /** postmortems, SLIs, suggestions and similar incidents */
  learning: Pick<LearningService, 'draft' | 'stats' | 'suggestions' | 'similar'>;
  /** approvals of guarded steps and the kill switch */
  remediation: RemediationService;
  /** opens (or with 0 ends) a maintenance window of a service: its anomalies open no incident meanwhile */
  maintenance(input: {
    service: string;
    durationMs: number;
    actor: string;
    reason: string;
  }): Promise<{ endsAt: Date | null }>;
  log: Logger;
}
