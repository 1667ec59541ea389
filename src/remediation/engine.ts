import { parseDuration } from '../diagnostics/duration.js';
import { redactSecrets } from '../diagnostics/redact.js';
import type { Targets } from '../diagnostics/targets.js';
import type { Incident } from '../incidents/incident.js';
import { getIncident } from '../incidents/lifecycle.js';
import type { Logger } from '../logger.js';
import type { Queues } from '../queue/queues.js';
import { celErrorMessage, evaluateExpression } from '../runbooks/cel.js';
import { decisionContext, type PlanStep, referencedDiagnostics } from '../runbooks/decide.js';
import { appendEvent, type Execution, getExecution, listResults } from '../runbooks/execution-repo.js';
import { markEscalated, moveIncident } from '../runbooks/incident-status.js';
import type { Finding } from '../runbooks/interpret.js';
import type { ViewChange } from '../runbooks/jobs/deps.js';
import { type CheckDeps, runCheck } from '../runbooks/run-check.js';
import { ACTION_CATALOGUE, forbiddenActionReason, isCommunication } from '../safety/action-catalog.js';
import { type ApprovalPacket, createApproval } from '../safety/approvals-repo.js';
import { automationState } from '../safety/automation-repo.js';
import type { Limiter } from '../safety/limits.js';
import { resolveStepPolicy, type SafetyPolicy, type StepPolicy } from '../safety/policy.js';
import { type Db, type Tx, withTransaction } from '../store/db.js';
import {
  type ActionContext,
  type ActionResult,
  type AnyExecutor,
  excerpt,
  ForbiddenActionError,
  LimitError,
} from './executor.js';
import { expireApprovalJob, remediateStepJob, verifyStepJob } from './jobs/remediation-jobs.js';
import {
  countActions,
  countOtherAttempts,
  DONE_OK,
  getStep,
  insertStep,
  listSteps,
  moveStep,
  type StepRow,
} from './step-repo.js';

/** What the remediation jobs run on (wired in context.ts). */
export interface RemediationDeps {
  db: Db;
  queues: Queues;
  policy: SafetyPolicy;
  targets: Targets;
  executors: ReadonlyMap<string, AnyExecutor>;
  limiter: Limiter;
  /** for the pre-check and verification, which re-run diagnostics */
  checks: CheckDeps;
  changed(change: ViewChange): Promise<void>;
  notify?: ActionContext['notify'];
  log: Logger;
  /** per action; milliseconds; default 120000 */
  actionTimeoutMs: number;
  /** counts how steps end, for /metrics */
  observeStep?(action: string, outcome: string): void;
}

/** Verification re-checks: about five per window, at least a second and at most a minute apart; milliseconds */
export function verifyIntervalMs(withinMs: number): number {
  return Math.min(60_000, Math.max(1_000, Math.floor(withinMs / 5)));
}

/** Starts the plan of a decided execution (called after the decision commits). */
export async function startRemediation(
  deps: Pick<RemediationDeps, 'queues'>,
  executionId: number,
): Promise<void> {
  await deps.queues.enqueue(remediateStepJob, { executionId, position: 0, phase: 'gate' });
}

interface Loaded {
  execution: Execution;
  incident: Incident;
  plan: PlanStep[];
}

async function load(db: Db, executionId: number): Promise<Loaded | null> {
  const execution = await getExecution(db, executionId);
  if (!execution?.decision) return null;
  const incident = await getIncident(db, execution.incidentId);
  if (!incident) return null;
  return { execution, incident, plan: execution.decision.plan };
}

async function remediationStatus(db: Db | Tx, executionId: number): Promise<string | null> {
  const { rows } = await db.query<{ remediation_status: string | null }>(
    'SELECT remediation_status FROM runbook_executions WHERE id = $1',
    [executionId],
  );
  return rows[0]?.remediation_status ?? null;
}

/**
 * One visit of one step: gate it (first visit), run it when it may run, recover it when a worker died mid-step, or
 * move on. Safe to re-run at any point: every transition is a guarded UPDATE of the step row, and a row found
 * `started` is never run again.
 */
export async function visitStep(deps: RemediationDeps, executionId: number, position: number): Promise<void> {
  const loaded = await load(deps.db, executionId);
  if (!loaded) return;
  if ((await remediationStatus(deps.db, executionId)) !== 'running') return;
  const { execution, incident, plan } = loaded;
  if (incident.status === 'resolved') {
    await finish(deps, execution, 'cleared', 'the incident was resolved before the plan finished');
    return;
  }
  const step = plan[position];
  if (!step) {
    await completePlan(deps, loaded);
    return;
  }
  let row = await getStep(deps.db, { executionId, position });
  if (!row) {
    row = await gate(deps, loaded, step, position);
    if (!row) return;
  }
  switch (row.status) {
    case 'ready':
    case 'approved':
      await run(deps, loaded, step, row);
      return;
    case 'started':
      await recover(deps, loaded, step, row);
      return;
    case 'succeeded':
    case 'unknown':
      // `unknown` only goes on when the step verifies; without verification it has already escalated
      await afterSuccess(deps, loaded, step, row);
      return;
    default:
      if (DONE_OK.has(row.status)) await next(deps, executionId, position);
  }
}

async function next(deps: RemediationDeps, executionId: number, position: number): Promise<void> {
  await deps.queues.enqueue(remediateStepJob, { executionId, position: position + 1, phase: 'gate' });
}

/** Decides what a step needs (refuse, ask, run) and records it; null when the step was refused. */
async function gate(
  deps: RemediationDeps,
  loaded: Loaded,
  step: PlanStep,
  position: number,
): Promise<StepRow | null> {
  const { execution, incident } = loaded;
  const policy = resolveStepPolicy(deps.policy, {
    action: step.action,
    requiresApproval: step.requiresApproval,
    service: incident.service,
    runbookId: execution.runbookId,
  });
  const base = {
    executionId: execution.id,
    incidentId: incident.id,
    position,
    stepId: step.id,
    action: step.action,
    tier: policy.tier,
    mode: policy.mode,
  };
  const prepared = prepare(deps, step, execution, incident);
  const refuse = (
    reason: string,
    kind: string,
    config: Record<string, unknown> = {},
    target: string | null = null,
  ) => refuseStep(deps, loaded, { ...base, config, target, reason, kind });
  if ('problem' in prepared) return refuse(prepared.problem, prepared.kind);
  const { description, shown } = prepared;
  if (policy.tier === 'forbidden') {
    return refuse(
      `the policy forbids ${step.action} here (${policy.tierSources.join(', ')})`,
      'forbidden',
      shown,
      description.target,
    );
  }
  if (!isCommunication(step.action) && policy.mode !== 'shadow') {
    const others = await countOtherAttempts(deps.db, incident.id, execution.id);
    const mine = (await listSteps(deps.db, execution.id)).some((s) => s.status !== 'skipped');
    if (!mine && others >= policy.limits.attemptsPerIncident) {
      return refuse(
        `limit: this incident already had ${others} remediation attempts (at most ${policy.limits.attemptsPerIncident})`,
        'limit',
        shown,
        description.target,
      );
    }
  }
  const guarded = policy.tier === 'guarded' && policy.mode !== 'shadow';
  if (guarded && policy.approvers.length === 0) {
    return refuse(
      `${step.action} needs an approval and nobody may approve it for ${incident.service} (set approvers in the safety policy)`,
      'no_approvers',
      shown,
      description.target,
    );
  }
  const outcome = await withTransaction(deps.db, async (tx) => {
    const inserted = await insertStep(tx, {
      ...base,
      status: guarded ? 'awaiting_approval' : 'ready',
      target: description.target,
      config: shown,
      reason: guarded ? `needs approval: ${policy.tierSources.join(', ')}` : null,
    });
    if (!inserted) return null;
    if (!guarded) return { row: inserted, eventId: null, approvalId: null };
    const packet = buildPacket(loaded, step, position, policy, shown, description);
    const approval = await createApproval(tx, {
      stepRowId: inserted.id,
      incidentId: incident.id,
      executionId: execution.id,
      approvers: policy.approvers,
      requestedBy: execution.requestedBy,
      packet,
      timeoutMs: policy.approvalTimeoutMs,
    });
    let eventId = await appendEvent(tx, incident.id, 'ai-sre', 'approval.requested', true, {
      executionId: execution.id,
      approvalId: approval.id,
      step: step.id,
      action: step.action,
      target: description.target,
      approvers: policy.approvers,
      expiresAt: approval.expiresAt.toISOString(),
    });
    eventId =
      (await moveIncident(tx, incident.id, 'awaiting_approval', `waiting for approval of ${step.id}`)) ??
      eventId;
    return { row: inserted, eventId, approvalId: approval.id };
  });
  if (!outcome) return getStep(deps.db, { executionId: execution.id, position });
  if (outcome.approvalId !== null && outcome.eventId !== null) {
    await deps.queues.enqueue(
      expireApprovalJob,
      { approvalId: outcome.approvalId, check: 0 },
      { delayMs: policy.approvalTimeoutMs },
    );
    await deps.changed({ incidentId: incident.id, eventId: outcome.eventId, urgent: true });
  }
  return outcome.row;
}

type Prepared =
  | {
      config: unknown;
      /** the config as stored and shown: secrets masked */
      shown: Record<string, unknown>;
      description: { target: string; blastRadius: string; rollback: string };
    }
  | { problem: string; kind: 'forbidden' | 'invalid' };

/**
 * Parses, renders and checks a step's config against the current targets. Runs at the gate and again right before
 * execution: a runbook snapshot or a targets file may not be what it was when the runbook loaded.
 */
function prepare(deps: RemediationDeps, step: PlanStep, execution: Execution, incident: Incident): Prepared {
  const named = forbiddenActionReason(step.action);
  if (named) return { problem: named, kind: 'forbidden' };
  const executor = deps.executors.get(step.action);
  if (!executor) return { problem: `no executor for ${step.action} in this build`, kind: 'invalid' };
  const parsed = executor.config.safeParse(step.config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      problem: `config${issue?.path.length ? `.${issue.path.join('.')}` : ''}: ${issue?.message ?? 'invalid'}`,
      kind: 'forbidden',
    };
  }
  let config: unknown;
  try {
    config = executor.render(parsed.data, execution.vars);
  } catch (err) {
    return { problem: (err as Error).message, kind: 'invalid' };
  }
  const problems = executor.check?.(config, deps.targets) ?? [];
  if (problems.length > 0) {
    return {
      problem: problems
        .map((p) => `config${p.path.length ? `.${p.path.join('.')}` : ''}: ${p.message}`)
        .join('; '),
      kind: 'forbidden',
    };
  }
  const description = executor.describe(config, deps.targets, incidentOf(incident));
  const shown = JSON.parse(redactSecrets(JSON.stringify(config ?? {}))) as Record<string, unknown>;
  return { config, shown, description };
}

function incidentOf(incident: Incident): ActionContext['incident'] {
  return { id: incident.id, service: incident.service, severity: incident.severity, title: incident.title };
}

function buildPacket(
  loaded: Loaded,
  step: PlanStep,
  position: number,
  policy: StepPolicy,
  shown: Record<string, unknown>,
  description: { target: string; blastRadius: string; rollback: string },
): ApprovalPacket {
  const { execution, incident, plan } = loaded;
  const decision = execution.decision;
  const hypothesis = decision?.hypothesis
    ? execution.runbook.decision.find((h) => h.id === decision.hypothesis?.id)
    : undefined;
  return {
    incident: {
      id: incident.id,
      title: incident.title,
      service: incident.service,
      severity: incident.severity,
    },
    runbook: { id: execution.runbookId, name: execution.runbook.name },
    step: { id: step.id, action: step.action, description: step.description, position, of: plan.length },
    hypothesis: decision?.hypothesis?.description ?? null,
    target: description.target,
    config: shown,
    evidence: (decision?.evidence ?? []).map((e) => ({
      diagnostic: e.diagnostic,
      status: e.status,
      summary: e.summary,
    })),
    preconditions: [
      ...(hypothesis ? [`the cause still holds: ${hypothesis.when.replace(/\s+/g, ' ')}`] : []),
      'automation is on for this service (kill switch)',
      `within the hard limits (${limitsText(step.action, policy)})`,
    ],
    tier: policy.tier,
    tierWhy: `${ACTION_CATALOGUE[step.action]?.why ?? ''} (${policy.tierSources.join(', ')})`,
    blastRadius: description.blastRadius,
    rollback: description.rollback,
    verification: step.verify
      ? `${step.verify.expect.replace(/\s+/g, ' ')} within ${step.verify.within} (re-checking ${step.verify.diagnostics.join(', ')})`
      : null,
    secondPersonRequired: policy.p1RequiresSecondPerson && incident.severity === 'critical',
  };
}

function limitsText(action: string, policy: StepPolicy): string {
  const l = policy.limits;
  const parts = [`${l.actionsPerIncident} actions per incident`];
  if (action === 'restart_service')
    parts.push(
      `${l.restartsPerTarget} restarts per target per ${Math.round(l.restartWindowMs / 60_000)} min`,
    );
  if (action === 'scale') parts.push(`+${l.scaleStep} replicas per step, at most ${l.maxReplicas}`);
  if (action === 'rollback')
    parts.push(`only a deploy from the last ${Math.round(l.rollbackWithinMs / 60_000)} min`);
  return parts.join('; ');
}

/** Records a refusal (a step row that never runs) and stops the plan with an escalation. */
async function refuseStep(
  deps: RemediationDeps,
  loaded: Loaded,
  input: Omit<Parameters<typeof insertStep>[1], 'status'> & { kind: string; reason: string },
): Promise<null> {
  const { execution, incident } = loaded;
  const eventId = await withTransaction(deps.db, async (tx) => {
    const row = await insertStep(tx, { ...input, status: 'refused' });
    if (!row) return null;
    await appendEvent(tx, incident.id, 'ai-sre', 'step.refused', true, {
      executionId: execution.id,
      step: input.stepId,
      action: input.action,
      target: input.target,
      kind: input.kind,
      reason: input.reason,
      inputs: input.config,
    });
    return stopAndEscalate(tx, execution, `${input.stepId} refused: ${input.reason}`);
  });
  deps.log.warn(
    { incident: incident.id, step: input.stepId, reason: input.reason },
    'remediation step refused',
  );
  if (eventId !== null) await deps.changed({ incidentId: incident.id, eventId, urgent: true });
  return null;
}

/**
 * Stops an execution's plan and hands the incident to people, naming what was tried. Returns the last event id
 * (null when the plan had already stopped).
 */
export async function stopAndEscalate(tx: Tx, execution: Execution, reason: string): Promise<number | null> {
  const stopped = await tx.query(
    `UPDATE runbook_executions SET remediation_status = 'escalated', remediation_finished_at = now(), revision = revision + 1
      WHERE id = $1 AND remediation_status = 'running'`,
    [execution.id],
  );
  if ((stopped.rowCount ?? 0) === 0) return null;
  const steps = await listSteps(tx, execution.id);
  const eventId = await appendEvent(tx, execution.incidentId, 'ai-sre', 'remediation.escalated', true, {
    executionId: execution.id,
    reason,
    tried: steps.map(triedOf),
  });
  return (await markEscalated(tx, execution.incidentId, reason)) ?? eventId;
}

function triedOf(s: StepRow) {
  return {
    step: s.stepId,
    action: s.action,
    status: s.status,
    reason: s.reason,
    summary: typeof s.result?.summary === 'string' ? s.result.summary : null,
  };
}

async function finish(
  deps: RemediationDeps,
  execution: Execution,
  status: 'cleared' | 'completed' | 'verified' | 'shadow',
  reason: string,
  opts: { resolve?: boolean; escalate?: boolean } = {},
): Promise<void> {
  const eventId = await withTransaction(deps.db, async (tx) => {
    const done = await tx.query(
      `UPDATE runbook_executions SET remediation_status = $2, remediation_finished_at = now(), revision = revision + 1
        WHERE id = $1 AND remediation_status = 'running'`,
      [execution.id, status],
    );
    if ((done.rowCount ?? 0) === 0) return null;
    const steps = await listSteps(tx, execution.id);
    let id = await appendEvent(tx, execution.incidentId, 'ai-sre', `remediation.${status}`, true, {
      executionId: execution.id,
      reason,
      tried: steps.map(triedOf),
    });
    if (opts.resolve) id = (await moveIncident(tx, execution.incidentId, 'resolved', reason)) ?? id;
    if (opts.escalate) id = (await markEscalated(tx, execution.incidentId, reason)) ?? id;
    return id;
  });
  if (eventId !== null) await deps.changed({ incidentId: execution.incidentId, eventId, urgent: true });
}

/** Every step is done: verified fixes resolve the incident; anything less goes to people. */
async function completePlan(deps: RemediationDeps, loaded: Loaded): Promise<void> {
  const steps = await listSteps(deps.db, loaded.execution.id);
  const acted = steps.filter((s) => !isCommunication(s.action));
  if (acted.length > 0 && acted.every((s) => s.status === 'dry_run')) {
    await finish(
      deps,
      loaded.execution,
      'shadow',
      `shadow mode: nothing was executed; ${acted.map((s) => s.stepId).join(', ')} would have run`,
      { escalate: true },
    );
    return;
  }
  const verified = acted.filter((s) => s.status === 'verified');
  if (verified.length > 0 && verified.length === acted.filter((s) => s.status !== 'skipped').length) {
    await finish(
      deps,
      loaded.execution,
      'verified',
      `remediation verified: ${verified.map((s) => s.stepId).join(', ')}`,
      {
        resolve: true,
      },
    );
    return;
  }
  await finish(
    deps,
    loaded.execution,
    'completed',
    'the plan ran but nothing verified the fix: a person should confirm it',
    { escalate: true },
  );
}

/** Re-runs the diagnostics `ids` now, with the run's own timeouts; stored findings fill in the rest. */
async function freshFindings(
  deps: RemediationDeps,
  execution: Execution,
  ids: string[],
): Promise<{ findings: Record<string, Finding>; fresh: Record<string, Finding> }> {
  const stored = await listResults(deps.db, execution.id);
  const findings: Record<string, Finding> = {};
  for (const r of stored) findings[r.diagnosticId] = r;
  const fresh: Record<string, Finding> = {};
  await Promise.all(
    ids.map(async (id) => {
      const diagnostic = execution.runbook.diagnostics.find((d) => d.id === id);
      if (!diagnostic) return;
      const f = await runCheck(execution, diagnostic, deps.checks, new Date());
      const finding = {
        ...f,
        summary: redactSecrets(f.summary),
        error: f.error === null ? null : redactSecrets(f.error),
      };
      fresh[id] = finding;
      findings[id] = finding;
    }),
  );
  return { findings, fresh };
}

function evaluate(
  execution: Execution,
  findings: Record<string, Finding>,
  expression: string,
): boolean | string {
  const { scope, context } = decisionContext(execution.runbook, findings, execution.vars);
  try {
    return evaluateExpression(expression, scope, context) === true;
  } catch (err) {
    return celErrorMessage(err);
  }
}

function summarize(fresh: Record<string, Finding>): Record<string, { status: string; summary: string }> {
  return Object.fromEntries(
    Object.entries(fresh).map(([id, f]) => [id, { status: f.status, summary: f.summary }]),
  );
}

/** The step may run: kill switch, pre-check, limits, then `started` is recorded and the action runs once. */
async function run(deps: RemediationDeps, loaded: Loaded, step: PlanStep, row: StepRow): Promise<void> {
  const { execution, incident } = loaded;
  const communication = isCommunication(step.action);
  const shadow = row.mode === 'shadow';
  const policy = resolveStepPolicy(deps.policy, {
    action: step.action,
    requiresApproval: step.requiresApproval,
    service: incident.service,
    runbookId: execution.runbookId,
  });
  const stop = (kind: string, reason: string, status: 'refused' | 'skipped' = 'refused') =>
    stopStep(deps, loaded, row, status, kind, reason);

  // checked again right before acting: the runbook snapshot, the targets and the policy may have changed
  const prepared = prepare(deps, step, execution, incident);
  if ('problem' in prepared) return stop(prepared.kind, prepared.problem);
  if (policy.tier === 'forbidden') return stop('forbidden', `the policy forbids ${step.action} here`);
  if (policy.tier === 'guarded' && !shadow && row.status !== 'approved') {
    return stop('forbidden', `${step.action} is guarded here and was not approved`);
  }

  let precheck: { holds: boolean; inconclusive: string[]; findings: Record<string, unknown> } | null = null;
  if (!communication && !shadow) {
    const automation = await automationState(deps.db, incident.service);
    if (!automation.enabled) {
      return stop(
        'automation_off',
        `automation is off${automation.scope === '*' ? '' : ` for ${incident.service}`} (by ${automation.changedBy ?? 'unknown'}${automation.reason ? `: ${automation.reason}` : ''}); nothing was executed`,
        'skipped',
      );
    }
    // re-check the cause right before acting: a condition that has cleared needs no fix
    const hypothesis = execution.runbook.decision.find((h) => h.id === execution.decision?.hypothesis?.id);
    if (hypothesis) {
      const { findings, fresh } = await freshFindings(
        deps,
        execution,
        referencedDiagnostics(hypothesis.when),
      );
      const holds = evaluate(execution, findings, hypothesis.when);
      // a check that could not run now says nothing about the cause: act on the evidence the decision had
      const unsure = Object.entries(fresh)
        .filter(([, f]) => f.status === 'error')
        .map(([id]) => id);
      precheck = { holds: holds === true, inconclusive: unsure, findings: summarize(fresh) };
      if (holds === false && unsure.length === 0) {
        await withTransaction(deps.db, async (tx) => {
          const moved = await moveStep(tx, row.id, ['ready', 'approved'], 'skipped', {
            reason: 'the condition has cleared: not needed',
            result: { precheck: summarize(fresh) },
          });
          if (!moved) return null;
          await appendEvent(tx, incident.id, 'ai-sre', 'step.skipped', true, {
            executionId: execution.id,
            step: step.id,
            action: step.action,
            kind: 'condition_cleared',
            reason: `${hypothesis.description}: no longer true, so ${step.id} is not needed`,
            precheck: summarize(fresh),
          });
          return true;
        });
        await finish(
          deps,
          execution,
          'cleared',
          `the cause cleared before ${step.id} ran: nothing was executed`,
        );
        return;
      }
      if (typeof holds === 'string' || unsure.length > 0)
        deps.log.warn(
          { step: step.id, err: typeof holds === 'string' ? holds : null, inconclusive: unsure },
          'pre-check inconclusive; acting on the decision',
        );
    }
    if (step.action === 'rollback') {
      const { rows } = await deps.db.query<{ version: string; deployed_at: Date }>(
        `SELECT version, deployed_at FROM deploy_events
          WHERE service = $1 AND deployed_at > now() - $2::bigint * interval '1 millisecond'
          ORDER BY deployed_at DESC LIMIT 1`,
        [incident.service, policy.limits.rollbackWithinMs],
      );
      if (rows.length === 0) {
        return stop(
          'limit',
          `limit: no deploy of ${incident.service} in the last ${Math.round(policy.limits.rollbackWithinMs / 60_000)} minutes, so there is nothing recent to roll back`,
        );
      }
    }
    if ((await countActions(deps.db, incident.id)) >= policy.limits.actionsPerIncident) {
      return stop('limit', `limit: this incident already had ${policy.limits.actionsPerIncident} actions`);
    }
    const reserved = await deps.limiter.reserve({
      stepKey: String(row.id),
      incidentId: incident.id,
      restartTarget: step.action === 'restart_service' ? prepared.description.target : undefined,
      restartsPerTarget: policy.limits.restartsPerTarget,
      restartWindowMs: policy.limits.restartWindowMs,
      actionsPerIncident: policy.limits.actionsPerIncident,
      inFlight: policy.limits.inFlight,
      inFlightTtlMs: deps.actionTimeoutMs * 2,
    });
    if (!reserved.ok) {
      if (reserved.limit === 'in_flight') {
        deps.log.info({ step: step.id, incident: incident.id }, reserved.message);
        await deps.queues.enqueue(
          remediateStepJob,
          { executionId: execution.id, position: row.position, phase: `wait-${Date.now().toString(36)}` },
          { delayMs: reserved.retryInMs },
        );
        return;
      }
      return stop('limit', `limit: ${reserved.message}`);
    }
  }

  // at most once: `started` is committed before the action runs; a crash from here on leaves it `started`
  const startedEvent = await withTransaction(deps.db, async (tx) => {
    const moved = await moveStep(tx, row.id, ['ready', 'approved'], 'started', { started: true });
    if (!moved) return null;
    const id = await appendEvent(tx, incident.id, 'ai-sre', 'step.started', true, {
      executionId: execution.id,
      step: step.id,
      action: step.action,
      target: prepared.description.target,
      dryRun: shadow,
      inputs: prepared.shown,
      precheck,
    });
    if (!communication && !shadow)
      return (await moveIncident(tx, incident.id, 'mitigating', `running ${step.id}`)) ?? id;
    return id;
  });
  if (startedEvent === null) {
    await deps.limiter.release(String(row.id)).catch(() => {});
    return;
  }
  await deps.changed({ incidentId: incident.id, eventId: startedEvent, urgent: false });

  const started = Date.now();
  let result: ActionResult;
  let refusal: { kind: string; reason: string } | null = null;
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error(`timed out after ${deps.actionTimeoutMs} ms`)),
    deps.actionTimeoutMs,
  );
  try {
    result = await (deps.executors.get(step.action) as AnyExecutor).execute(prepared.config, {
      signal: controller.signal,
      timeoutMs: deps.actionTimeoutMs,
      dryRun: shadow,
      targets: deps.targets,
      db: deps.db,
      incident: incidentOf(incident),
      limits: {
        scaleStep: policy.limits.scaleStep,
        maxReplicas: Math.min(
          policy.limits.maxReplicas,
          // the step's own `max` (scale), when it has one
          typeof (prepared.config as { max?: unknown }).max === 'number'
            ? (prepared.config as { max: number }).max
            : Number.POSITIVE_INFINITY,
        ),
      },
      now: new Date(),
      log: deps.log,
      notify: deps.notify,
    });
  } catch (err) {
    if (err instanceof LimitError) refusal = { kind: 'limit', reason: `limit: ${err.message}` };
    else if (err instanceof ForbiddenActionError) refusal = { kind: 'forbidden', reason: err.message };
    const message = controller.signal.aborted
      ? `timed out after ${deps.actionTimeoutMs} ms`
      : (err as Error).message;
    result = { ok: false, dryRun: shadow, summary: `${step.id} failed: ${message}`, details: {} };
  } finally {
    clearTimeout(timer);
    if (!communication && !shadow) await deps.limiter.release(String(row.id)).catch(() => {});
  }
  const durationMs = Date.now() - started;
  const stored = {
    ok: result.ok,
    dryRun: result.dryRun,
    summary: redactSecrets(result.summary),
    details: JSON.parse(redactSecrets(JSON.stringify(result.details))) as Record<string, unknown>,
    ...(result.output === undefined ? {} : { output: excerpt(redactSecrets(result.output)) }),
  };
  const status = refusal ? 'refused' : shadow ? 'dry_run' : result.ok ? 'succeeded' : 'failed';
  const type = refusal
    ? 'step.refused'
    : shadow
      ? 'step.dry_run'
      : result.ok
        ? 'step.executed'
        : 'step.failed';
  const eventId = await withTransaction(deps.db, async (tx) => {
    const moved = await moveStep(tx, row.id, ['started'], status, {
      result: stored,
      finished: true,
      durationMs,
      reason: refusal?.reason ?? null,
    });
    if (!moved) return null;
    const id = await appendEvent(tx, incident.id, 'ai-sre', type, true, {
      executionId: execution.id,
      step: step.id,
      action: step.action,
      target: prepared.description.target,
      inputs: prepared.shown,
      ok: result.ok,
      summary: stored.summary,
      output: stored.output ?? null,
      durationMs,
      ...(refusal ? { kind: refusal.kind, reason: refusal.reason } : {}),
    });
    if (refusal) return (await stopAndEscalate(tx, execution, `${step.id} refused: ${refusal.reason}`)) ?? id;
    if (!result.ok && !shadow)
      return (await stopAndEscalate(tx, execution, `${step.id} failed: ${stored.summary}`)) ?? id;
    // an escalate step hands over: the plan ends here
    if (step.action === 'escalate' && !shadow)
      return (await stopAndEscalate(tx, execution, stored.summary)) ?? id;
    return id;
  });
  deps.log.info({ incident: incident.id, step: step.id, status, durationMs }, 'remediation step ran');
  deps.observeStep?.(step.action, status);
  if (eventId !== null) await deps.changed({ incidentId: incident.id, eventId, urgent: true });
  if (status === 'succeeded') {
    const after = await getStep(deps.db, { id: row.id });
    if (after) await afterSuccess(deps, loaded, step, after);
  } else if (status === 'dry_run') {
    await next(deps, execution.id, row.position);
  }
}

async function stopStep(
  deps: RemediationDeps,
  loaded: Loaded,
  row: StepRow,
  status: 'refused' | 'skipped',
  kind: string,
  reason: string,
): Promise<void> {
  const { execution, incident } = loaded;
  const eventId = await withTransaction(deps.db, async (tx) => {
    const moved = await moveStep(tx, row.id, ['ready', 'approved'], status, { reason });
    if (!moved) return null;
    const id = await appendEvent(tx, incident.id, 'ai-sre', `step.${status}`, true, {
      executionId: execution.id,
      step: row.stepId,
      action: row.action,
      target: row.target,
      kind,
      reason,
      inputs: row.config,
    });
    return (await stopAndEscalate(tx, execution, `${row.stepId} ${status}: ${reason}`)) ?? id;
  });
  deps.log.warn({ incident: incident.id, step: row.stepId, kind, reason }, `remediation step ${status}`);
  deps.observeStep?.(row.action, status);
  if (eventId !== null) await deps.changed({ incidentId: incident.id, eventId, urgent: true });
}

/** A step that ran: verify it when it says how, else go on. */
async function afterSuccess(
  deps: RemediationDeps,
  loaded: Loaded,
  step: PlanStep,
  row: StepRow,
): Promise<void> {
  if (!step.verify) {
    await next(deps, loaded.execution.id, row.position);
    return;
  }
  const withinMs = parseDuration(step.verify.within) ?? 300_000;
  const moved = await moveStep(deps.db, row.id, ['succeeded', 'unknown'], 'verifying', {
    verifyWithinMs: withinMs,
  });
  if (!moved) return;
  await deps.queues.enqueue(
    verifyStepJob,
    { stepRowId: row.id, check: 1 },
    { delayMs: verifyIntervalMs(withinMs) },
  );
}

/**
 * A step found `started`: the worker running it died (or lost Redis) before recording the outcome. The action may
 * or may not have happened, so it is never run again: verified when the step says how, else escalated.
 */
async function recover(deps: RemediationDeps, loaded: Loaded, step: PlanStep, row: StepRow): Promise<void> {
  const { execution, incident } = loaded;
  const reason = 'the worker running this step stopped before recording its outcome; it is not run again';
  const eventId = await withTransaction(deps.db, async (tx) => {
    const moved = await moveStep(tx, row.id, ['started'], 'unknown', { reason, finished: true });
    if (!moved) return null;
    const id = await appendEvent(tx, incident.id, 'ai-sre', 'step.outcome_unknown', true, {
      executionId: execution.id,
      step: step.id,
      action: step.action,
      target: row.target,
      reason,
      verify: step.verify !== null,
    });
    if (step.verify) return id;
    return (await stopAndEscalate(tx, execution, `${step.id}: outcome unknown (${reason})`)) ?? id;
  });
  await deps.limiter.release(String(row.id)).catch(() => {});
  if (eventId === null) return;
  deps.log.warn(
    { incident: incident.id, step: step.id },
    'step found started after a crash; not re-running it',
  );
  await deps.changed({ incidentId: incident.id, eventId, urgent: true });
  const after = await getStep(deps.db, { id: row.id });
  if (after && step.verify) await afterSuccess(deps, loaded, step, after);
}

/** One verification check: stopIf → stop; expect → verified; else again until the window closes. */
export async function verifyStep(deps: RemediationDeps, stepRowId: number, check: number): Promise<void> {
  const row = await getStep(deps.db, { id: stepRowId });
  if (row?.status !== 'verifying') return;
  const loaded = await load(deps.db, row.executionId);
  if (!loaded) return;
  const step = loaded.plan[row.position];
  if (!step?.verify) return;
  const { execution, incident } = loaded;
  const ids = [
    ...new Set([...step.verify.diagnostics, ...(step.stopIf ? referencedDiagnostics(step.stopIf) : [])]),
  ];
  const { findings, fresh } = await freshFindings(deps, execution, ids);
  const stopHit = step.stopIf ? evaluate(execution, findings, step.stopIf) === true : false;
  const fixed = !stopHit && evaluate(execution, findings, step.verify.expect) === true;
  const { rows } = await deps.db.query<{ open: boolean }>(
    'SELECT verify_deadline > now() AS open FROM remediation_steps WHERE id = $1',
    [row.id],
  );
  const windowOpen = rows[0]?.open === true;
  const checks = summarize(fresh);
  if (!fixed && !stopHit && windowOpen) {
    await moveStep(deps.db, row.id, ['verifying'], 'verifying', { verifyChecks: check });
    const withinMs = parseDuration(step.verify.within) ?? 300_000;
    await deps.queues.enqueue(
      verifyStepJob,
      { stepRowId: row.id, check: check + 1 },
      { delayMs: verifyIntervalMs(withinMs) },
    );
    return;
  }
  const eventId = await withTransaction(deps.db, async (tx) => {
    const verification = {
      checks: check,
      last: checks,
      expect: step.verify?.expect,
      stopIf: stopHit ? step.stopIf : null,
    };
    const result = { ...(row.result ?? {}), verification };
    if (fixed) {
      const moved = await moveStep(tx, row.id, ['verifying'], 'verified', { result, verifyChecks: check });
      if (!moved) return null;
      return appendEvent(tx, incident.id, 'ai-sre', 'step.verified', true, {
        executionId: execution.id,
        step: step.id,
        action: step.action,
        checks: check,
        findings: checks,
      });
    }
    const reason = stopHit
      ? `stop condition hit while verifying: ${step.stopIf}`
      : `not fixed within ${step.verify?.within}: ${step.verify?.expect} is still false after ${check} checks`;
    const moved = await moveStep(tx, row.id, ['verifying'], 'verification_failed', {
      result,
      reason,
      verifyChecks: check,
    });
    if (!moved) return null;
    const id = await appendEvent(tx, incident.id, 'ai-sre', 'step.verification_failed', true, {
      executionId: execution.id,
      step: step.id,
      action: step.action,
      reason,
      checks: check,
      findings: checks,
    });
    return (await stopAndEscalate(tx, execution, `${step.id} did not fix it: ${reason}`)) ?? id;
  });
  if (eventId === null) return;
  deps.observeStep?.(step.action, fixed ? 'verified' : 'verification_failed');
  await deps.changed({ incidentId: incident.id, eventId, urgent: true });
  if (fixed) await next(deps, execution.id, row.position);
}
