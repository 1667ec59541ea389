import { z } from 'zod';
import type { AnyCollector, CollectorOutput } from '../../diagnostics/collector.js';
import { parseDuration } from '../../diagnostics/duration.js';
import { redactSecrets } from '../../diagnostics/redact.js';
import type { JobDefinition } from '../../queue/jobs.js';
import type { JobHandler } from '../../queue/queues.js';
import { type Execution, getExecution, hasResult, storeResult } from '../execution-repo.js';
import { errorFinding, type Finding, interpretOutput } from '../interpret.js';
import type { RunbookJobDeps } from './deps.js';

export const RunDiagnosticPayload = z.object({
  executionId: z.number().int().positive(),
  diagnosticId: z.string().min(1),
});
export type RunDiagnosticPayload = z.infer<typeof RunDiagnosticPayload>;

/** One diagnostic of an execution; a child of the execution's decide job. */
export const runDiagnosticJob: JobDefinition<RunDiagnosticPayload> = {
  queue: 'diagnostics',
  name: 'diagnostic.run',
  payload: RunDiagnosticPayload,
  jobId: (d) => `diag-${d.executionId}-${d.diagnosticId}`,
  // retries only cover failing to store the result (Postgres away); a failing check is a result, not a retry
  attempts: 5,
  backoffMs: 500,
};

/** extra time a collector gets to notice its abort signal before it is abandoned; milliseconds */
const ABANDON_GRACE_MS = 1_000;

/**
 * Runs one check with its own timeout and stores what it found. The collector's failure, a timeout, a missing label
 * or a rule that cannot be evaluated all become a stored `error` finding: a diagnostic never blocks the decision.
 * Re-running is harmless: a stored result is never recomputed.
 */
export function runDiagnosticHandler(deps: RunbookJobDeps): JobHandler<RunDiagnosticPayload> {
  return {
    definition: runDiagnosticJob,
    concurrency: deps.diagnosticsConcurrency,
    async handle(data) {
      if (await hasResult(deps.db, data.executionId, data.diagnosticId)) return;
      const execution = await getExecution(deps.db, data.executionId);
      if (!execution || execution.status === 'decided') return;
      const position = execution.runbook.diagnostics.findIndex((d) => d.id === data.diagnosticId);
      const step = execution.runbook.diagnostics[position];
      if (!step) return;
      const startedAt = new Date();
      // monitored systems' text is untrusted: secrets are masked before it is stored and shown in Slack
      const raw = await runStep(execution, step, deps, startedAt);
      const finding = {
        ...raw,
        summary: redactSecrets(raw.summary),
        error: raw.error === null ? null : redactSecrets(raw.error),
      };
      const finishedAt = new Date();
      const durationMs = finishedAt.getTime() - startedAt.getTime();
      deps.observeDiagnostic?.(step.type, finding.status, durationMs / 1000);
      const eventId = await storeResult(deps.db, execution, {
        ...finding,
        diagnosticId: step.id,
        position,
        type: step.type,
        durationMs,
        startedAt,
        finishedAt,
      });
      if (eventId !== null) await deps.changed({ incidentId: execution.incidentId, eventId, urgent: false });
    },
  };
}

async function runStep(
  execution: Execution,
  step: Execution['runbook']['diagnostics'][number],
  deps: RunbookJobDeps,
  startedAt: Date,
): Promise<Finding> {
  const collector: AnyCollector | undefined = deps.collectors.get(step.type);
  if (!collector) return errorFinding(`unknown diagnostic type "${step.type}" in this build`);
  const timeoutMs = parseDuration(step.timeout) ?? 10_000;
  let rendered: unknown;
  try {
    rendered = collector.render(collector.config.parse(step.config), execution.vars);
  } catch (err) {
    return errorFinding((err as Error).message);
  }
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const abandoned = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort(new Error(`timed out after ${timeoutMs} ms`));
      // a collector that ignores its signal is abandoned a moment later, so the decision is never held up by it
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), ABANDON_GRACE_MS);
    }, timeoutMs);
  });
  let output: CollectorOutput;
  try {
    output = await Promise.race([
      collector.collect(rendered, {
        signal: controller.signal,
        timeoutMs,
        targets: deps.targets,
        db: deps.db,
        prometheusUrl: deps.prometheusUrl,
        lokiUrl: deps.lokiUrl,
        incident: {
          id: execution.incidentId,
          service: execution.vars.incident.service ?? '',
          openedAt: execution.startedAt,
        },
        now: startedAt,
      }),
      abandoned,
    ]);
  } catch (err) {
    const message = controller.signal.aborted ? `timed out after ${timeoutMs} ms` : (err as Error).message;
    deps.log.debug({ execution: execution.id, diagnostic: step.id, err: message }, 'diagnostic failed');
    return errorFinding(message);
  } finally {
    clearTimeout(timer);
  }
  return interpretOutput(step, collector.valueType, output, execution.vars);
}
