import type { AnyCollector, CollectorOutput } from '../diagnostics/collector.js';
import { parseDuration } from '../diagnostics/duration.js';
import type { Targets } from '../diagnostics/targets.js';
import type { Logger } from '../logger.js';
import type { Queryable } from '../store/db.js';
import type { Execution } from './execution-repo.js';
import { errorFinding, type Finding, interpretOutput } from './interpret.js';

export interface CheckDeps {
  db: Queryable;
  targets: Targets;
  collectors: ReadonlyMap<string, AnyCollector>;
  prometheusUrl?: string;
  lokiUrl?: string;
  log: Logger;
}

/** extra time a collector gets to notice its abort signal before it is abandoned; milliseconds */
const ABANDON_GRACE_MS = 1_000;

/**
 * Runs one diagnostic of a run with its own timeout and interprets what it found. The collector's failure, a timeout,
 * a missing label or a rule that cannot be evaluated all become an `error` finding; this never throws.
 */
export async function runCheck(
  execution: Pick<Execution, 'id' | 'incidentId' | 'vars' | 'startedAt'>,
  step: Execution['runbook']['diagnostics'][number],
  deps: CheckDeps,
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
