import { z } from 'zod';
import type { ConfigProblem } from '../../diagnostics/collector.js';
import type { Targets } from '../../diagnostics/targets.js';
import {
  type ActionContext,
  type ActionExecutor,
  type ActionResult,
  LimitError,
  refuseProblems,
} from '../executor.js';
import { Deployment, parseAnswer } from './kubernetes-client.js';
import {
  checkService,
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

const ACTION = 'restart_service';

/** most pods a restart may take down at once */
const MAX_UNAVAILABLE = 10;
/** the pod-template annotation `kubectl rollout restart` sets; a new value starts a rollout */
const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';

export const RestartServiceConfig = z.strictObject({
  /** a service of the targets file's remediation.platforms; usually "{{incident.service}}" */
  service: ServiceField,
  /** only `rolling`: pods are replaced a few at a time. A stop-everything restart cannot be written. */
  strategy: z
    .literal('rolling', { error: 'only strategy "rolling" is supported (pods are replaced a few at a time)' })
    .default('rolling'),
  /** most pods down at once; default 1, at most 10. A Deployment whose own strategy allows more is refused. */
  maxUnavailable: z.number().int().positive().max(MAX_UNAVAILABLE).default(1),
});
export type RestartServiceConfig = z.infer<typeof RestartServiceConfig>;

function checkRestart(config: RestartServiceConfig, targets: Targets): ConfigProblem[] {
  return checkService(config.service, targets, 'restart');
}

/** "k" from a `k` or `k%` value of a rolling update, as the Deployment controller resolves it */
function resolveIntOrPercent(value: number | string, replicas: number, roundUp: boolean): number {
  if (typeof value === 'number') return value;
  const scaled = (replicas * Number.parseInt(value, 10)) / 100;
  return roundUp ? Math.ceil(scaled) : Math.floor(scaled);
}

/**
 * How many pods the Deployment's own strategy takes down at once: the restart is a rollout, so this, not the step's
 * config, is what happens. Defaults are Kubernetes' (RollingUpdate, 25% unavailable, 25% surge).
 */
export function podsDownAtOnce(deployment: Deployment): { down: number; how: string } {
  const replicas = deployment.spec.replicas ?? 1;
  const strategy = deployment.spec.strategy;
  if (strategy?.type === 'Recreate') {
    return { down: replicas, how: 'its strategy is Recreate (every pod stops before new ones start)' };
  }
  const maxUnavailable = strategy?.rollingUpdate?.maxUnavailable ?? '25%';
  const maxSurge = strategy?.rollingUpdate?.maxSurge ?? '25%';
  let down = resolveIntOrPercent(maxUnavailable, replicas, false);
  // the controller never lets both be 0, or the rollout could not progress
  if (down === 0 && resolveIntOrPercent(maxSurge, replicas, true) === 0) down = 1;
  return { down, how: `its strategy allows maxUnavailable ${maxUnavailable} of ${replicas} replicas` };
}

async function restartDeployment(
  config: RestartServiceConfig,
  ctx: ActionContext,
  platform: KubernetesPlatform,
): Promise<ActionResult> {
  const { conn, path, where, base } = await openDeployment(platform);

  const got = await kubernetesGet(ctx, conn, where, path);
  if (!isSuccess(got.status)) return kubernetesFailure(`restart of ${where}`, got, ctx.dryRun, base);
  const deployment = parseAnswer(Deployment, got, `GET ${where}`);
  if (deployment.spec.paused) {
    return {
      ok: false,
      dryRun: ctx.dryRun,
      summary: `did not restart ${where}: it is paused (a restart would not roll out until it is resumed)`,
      details: { ...base, paused: true },
    };
  }
  const { down, how } = podsDownAtOnce(deployment);
  if (down > config.maxUnavailable) {
    throw new LimitError(
      'max_unavailable',
      `restarting ${where} would take down up to ${down} pods at once (${how}); the step allows ${config.maxUnavailable}`,
    );
  }

  const restartedAt = ctx.now.toISOString();
  const patched = await kubernetesPatch(ctx, conn, where, path, 'application/strategic-merge-patch+json', {
    spec: { template: { metadata: { annotations: { [RESTARTED_AT]: restartedAt } } } },
  });
  if (!isSuccess(patched.status)) return kubernetesFailure(`restart of ${where}`, patched, ctx.dryRun, base);
  return {
    ok: true,
    dryRun: ctx.dryRun,
    summary: ctx.dryRun
      ? `would restart ${where} (rollout restart; the API server accepted it as a dry run)`
      : `restarted ${where} (rollout restart)`,
    details: {
      ...base,
      restartedAt,
      replicas: deployment.spec.replicas ?? 1,
      podsDownAtOnce: down,
      status: patched.status,
    },
  };
}

/**
 * Restarts every pod of a service a few at a time: on Kubernetes, what `kubectl rollout restart` does (a new
 * `restartedAt` annotation on the pod template); elsewhere, one POST to the service's deploy API.
 */
export const restartServiceExecutor: ActionExecutor<RestartServiceConfig> = {
  action: ACTION,
  config: RestartServiceConfig,
  check: checkRestart,
  render: renderServiceConfig,

  describe(config, targets) {
    const view = viewPlatform(config.service, targets);
    const n = config.maxUnavailable;
    const pace = n === 1 ? 'one at a time' : `at most ${n} at a time`;
    const blastRadius =
      view.platform?.kind === 'http'
        ? `every instance of ${config.service} is restarted by its deploy API, ${pace} (maxUnavailable ${n}); ` +
          'requests in flight on a stopping instance may fail'
        : `all pods of ${view.what} are replaced ${pace} (maxUnavailable ${n}); ` +
          'requests in flight on a stopping pod may fail';
    return {
      target: view.target,
      blastRadius,
      rollback: 'none needed: a restart changes no version or configuration',
    };
  },

  async execute(config, ctx) {
    refuseProblems(ACTION, checkRestart(config, ctx.targets));
    const platform = resolvePlatform(config.service, ctx.targets, 'restart');
    if (platform.kind === 'kubernetes') return restartDeployment(config, ctx, platform);

    const url = platform.http.restartUrl as string;
    const request = {
      service: config.service,
      incidentId: ctx.incident.id,
      strategy: config.strategy,
      maxUnavailable: config.maxUnavailable,
    };
    return postToDeployApi(
      ctx,
      platform.http,
      url,
      request,
      { service: config.service },
      {
        wouldDo: `would restart ${config.service} (POST ${displayUrl(url)}, maxUnavailable ${config.maxUnavailable})`,
        done: `restarted ${config.service} via its deploy API`,
        failed: `restart of ${config.service} failed`,
      },
    );
  },
};
