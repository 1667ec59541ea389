import type { AnyCollector } from '../../diagnostics/collector.js';
import type { Targets } from '../../diagnostics/targets.js';
import type { Logger } from '../../logger.js';
import type { Queues } from '../../queue/queues.js';
import type { Db } from '../../store/db.js';
import type { RunbookCatalog } from '../matcher.js';

/** A change the Slack view must show; `urgent` skips the debounce (a decision is posted at once). */
export interface ViewChange {
  incidentId: number;
  eventId: number;
  urgent: boolean;
}

/** What the runbook jobs run on (wired in context.ts). */
export interface RunbookJobDeps {
  db: Db;
  catalog: RunbookCatalog;
  targets: Targets;
  collectors: ReadonlyMap<string, AnyCollector>;
  queues: Queues;
  prometheusUrl?: string;
  lokiUrl?: string;
  /** tells the Slack view (and later, other watchers) that an incident changed; never throws */
  changed(change: ViewChange): Promise<void>;
  log: Logger;
  /** most diagnostics run at once per process */
  diagnosticsConcurrency: number;
  /** runs of diagnostics, by outcome, for /metrics */
  observeDiagnostic?(type: string, status: string, seconds: number): void;
  observeDecision?(runbook: string, outcome: string): void;
  /** hands a decided plan to the remediation engine (after the decision commits); never throws */
  startRemediation?(executionId: number): Promise<void>;
}
