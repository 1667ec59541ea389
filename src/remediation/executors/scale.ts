import { z } from 'zod';
import type { ConfigProblem } from '../../diagnostics/collector.js';
import type { Targets } from '../../diagnostics/targets.js';
import {
  type ActionContext,
  type ActionExecutor,
  type ActionResult,
  excerpt,
  LimitError,
  refuseProblems,
} from '../executor.js';
import { parseAnswer, Scale } from './kubernetes-client.js';
import {
  callDeployApi,
  checkService,
  type DeployApiPlatform,
  displayUrl,
  isSuccess,
  type KubernetesPlatform,
  kubernetesFailure,
  kubernetesGet,
  kubernetesPatch,
  openDeployment,
  postToDeployApi,
  renderServiceConfig,
  resolvePlatform,
  ServiceField,
  viewPlatform,
} from './platform.js';

const ACTION = 'scale';

/** replicas one step may add as written in a runbook; the policy's scaleStep (default 3) bounds it further at run time */
export const SCALE_BY_CEILING = 10;
/** the largest `max` a runbook may write; the policy's maxReplicas bounds it further at run time */
export const SCALE_MAX_CEILING = 200;

export const ScaleConfig = z.strictObject({
  /** a service of the targets file's remediation.platforms; usually "{{incident.service}}" */
  service: ServiceField,
  /** replicas added (never removed); at most 10, and at most the policy's scaleStep when it runs */
  by: z.number().int().positive().max(1_000),
  /** the most replicas this step may leave; at most 200, and at most the policy's maxReplicas when it runs */
  max: z.number().int().positive().max(1_000),
  to: z
    .never({
      error:
        'an absolute `to` is not allowed: it is unbounded (it could set any count, or scale down); ' +
        'write `by` (replicas added) and `max`',
    })
    .optional(),
});
export type ScaleConfig = z.infer<typeof ScaleConfig>;

function checkScale(config: ScaleConfig, targets: Targets): ConfigProblem[] {
  const problems = checkService(config.service, targets, 'scale');
  if (config.by > SCALE_BY_CEILING) {
    problems.push({
      path: ['by'],
      message: `scaling by ${config.by} replicas in one step is not allowed (at most ${SCALE_BY_CEILING})`,
    });
  }
  if (config.max > SCALE_MAX_CEILING) {
    problems.push({
      path: ['max'],
      message: `max ${config.max} replicas is not allowed (at most ${SCALE_MAX_CEILING})`,
    });
  }
  return problems;
}

/** The count after the step, or a LimitError: never down, never beyond the ceiling, never more than the step. */
function planScale(config: ScaleConfig, ctx: ActionContext, where: string, current: number): number {
  const ceiling = Math.min(config.max, ctx.limits.maxReplicas);
  if (current >= ceiling) {
    throw new LimitError(
      'max_replicas',
      `${where} already has ${current} replicas, at or above the maximum of ${ceiling}; not scaling further`,
    );
  }
  return Math.min(current + config.by, ceiling);
}

async function scaleDeployment(
  config: ScaleConfig,
  ctx: ActionContext,
  platform: KubernetesPlatform,
): Promise<ActionResult> {
  const { conn, path, where, base } = await openDeployment(platform, 'scale');
  const scaleOf = `${where} scale`;
  // summaries name it without the word: "scaled payments/payment-service 4 → 6 replicas"
  const name = `${platform.namespace}/${platform.deployment}`;

  const got = await kubernetesGet(ctx, conn, scaleOf, path);
  if (!isSuccess(got.status)) return kubernetesFailure(`scale of ${name}`, got, ctx.dryRun, base);
  const current = parseAnswer(Scale, got, `GET ${scaleOf}`).spec.replicas ?? 0;
  const next = planScale(config, ctx, where, current);

  const patched = await kubernetesPatch(ctx, conn, scaleOf, path, 'application/merge-patch+json', {
    spec: { replicas: next },
  });
  const details = { ...base, from: current, to: next };
  if (!isSuccess(patched.status)) return kubernetesFailure(`scale of ${name}`, patched, ctx.dryRun, details);
  return {
    ok: true,
    dryRun: ctx.dryRun,
    summary: ctx.dryRun
      ? `would scale ${name} ${current} → ${next} replicas (the API server accepted it as a dry run)`
      : `scaled ${name} ${current} → ${next} replicas`,
    details: { ...details, status: patched.status },
  };
}

/** `{"replicas": n}` from a deploy API's statusUrl */
const DeployStatus = z.object({ replicas: z.number().int().nonnegative() });

async function scaleViaDeployApi(
  config: ScaleConfig,
  ctx: ActionContext,
  platform: DeployApiPlatform,
): Promise<ActionResult> {
  const { http, service } = platform;
  const statusUrl = http.statusUrl as string;
  const scaleUrl = http.scaleUrl as string;
  const status = await callDeployApi(ctx, http, 'GET', statusUrl);
  let current: number | undefined;
  if (isSuccess(status.status)) {
    try {
      current = DeployStatus.parse(JSON.parse(status.text)).replicas;
    } catch {
      current = undefined;
    }
  }
  if (current === undefined) {
    return {
      ok: false,
      dryRun: ctx.dryRun,
      summary: isSuccess(status.status)
        ? `scale of ${service} failed: ${displayUrl(statusUrl)} did not answer {"replicas": n}`
        : `scale of ${service} failed: reading replicas got HTTP ${status.status}`,
      details: { service, statusUrl: displayUrl(statusUrl), status: status.status },
      output: excerpt(status.text),
    };
  }
  const next = planScale(config, ctx, service, current);
  const request = { service, incidentId: ctx.incident.id, replicas: next, previous: current };
  return postToDeployApi(
    ctx,
    http,
    scaleUrl,
    request,
    { service, from: current, to: next },
    {
      wouldDo: `would scale ${service} ${current} → ${next} replicas (POST ${displayUrl(scaleUrl)})`,
      done: `scaled ${service} ${current} → ${next} replicas`,
      failed: `scale of ${service} ${current} → ${next} replicas failed`,
    },
  );
}

/**
 * Adds replicas, never removes them: reads the current count, then sets min(current + by, max). The policy's
 * limits (ctx.limits) are enforced here because only here is the current count known; a dry run throws the same
 * LimitError, so shadow mode records the limit it would hit.
 */
export const scaleExecutor: ActionExecutor<ScaleConfig> = {
  action: ACTION,
  config: ScaleConfig,
  check: checkScale,
  render: renderServiceConfig,

  describe(config, targets) {
    const view = viewPlatform(config.service, targets);
    return {
      target: view.target,
      blastRadius:
        `adds up to ${config.by} replicas to ${view.what} (never beyond ${config.max} in total); running ` +
        'instances are untouched, new ones add load on shared dependencies (database connections)',
      rollback: 'scale back to the previous replica count (recorded as `from` in the result)',
    };
  },

  async execute(config, ctx) {
    refuseProblems(ACTION, checkScale(config, ctx.targets));
    const platform = resolvePlatform(config.service, ctx.targets, 'scale');
    if (config.by > ctx.limits.scaleStep) {
      throw new LimitError(
        'scale_step',
        `scaling ${config.service} by ${config.by} replicas exceeds the policy's step of ${ctx.limits.scaleStep}`,
      );
    }
    return platform.kind === 'kubernetes'
      ? scaleDeployment(config, ctx, platform)
      : scaleViaDeployApi(config, ctx, platform);
  },
};
