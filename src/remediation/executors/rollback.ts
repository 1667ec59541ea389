import { z } from 'zod';
import type { ConfigProblem } from '../../diagnostics/collector.js';
import type { Targets } from '../../diagnostics/targets.js';
import { type ActionContext, type ActionExecutor, type ActionResult, refuseProblems } from '../executor.js';
import { Deployment, imagesOf, parseAnswer, ReplicaSetList, revisionOf } from './kubernetes-client.js';
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

const ACTION = 'rollback';

/** the label the Deployment controller adds to each ReplicaSet's template; it must not be copied back */
const POD_TEMPLATE_HASH = 'pod-template-hash';

export const RollbackConfig = z.strictObject({
  /** a service of the targets file's remediation.platforms; usually "{{incident.service}}" */
  service: ServiceField,
  /**
   * only `previous`: the revision before the current one. A named version is not allowed: it is not bounded by the
   * deploy history, so it could roll back months.
   */
  to: z
    .literal('previous', {
      error:
        'only `to: previous` is supported (the revision before the current one; a named version is unbounded)',
    })
    .default('previous'),
});
export type RollbackConfig = z.infer<typeof RollbackConfig>;

function checkRollback(config: RollbackConfig, targets: Targets): ConfigProblem[] {
  return checkService(config.service, targets, 'rollback');
}

function withoutPodTemplateHash(template: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(template);
  const metadata = copy.metadata as { labels?: Record<string, unknown> | null } | undefined;
  if (metadata?.labels) {
    const { [POD_TEMPLATE_HASH]: _hash, ...labels } = metadata.labels;
    metadata.labels = labels;
  }
  return copy;
}

/**
 * What `kubectl rollout undo` does: find the deployment's own ReplicaSet with the highest revision below the current
 * one and put its pod template back on the Deployment. The JSON patch first tests the resourceVersion read, so a
 * deploy landing in between makes the patch fail instead of being overwritten.
 */
async function rollbackDeployment(ctx: ActionContext, platform: KubernetesPlatform): Promise<ActionResult> {
  const { conn, path, where, base } = await openDeployment(platform);
  const { namespace } = platform;
  const failed = (summary: string, details: Record<string, unknown> = {}): ActionResult => ({
    ok: false,
    dryRun: ctx.dryRun,
    summary,
    details: { ...base, ...details },
  });

  const got = await kubernetesGet(ctx, conn, where, path);
  if (!isSuccess(got.status)) return kubernetesFailure(`rollback of ${where}`, got, ctx.dryRun, base);
  const deployment = parseAnswer(Deployment, got, `GET ${where}`);
  if (deployment.spec.paused) return failed(`did not roll back ${where}: it is paused; resume it first`);
  const current = revisionOf(deployment.metadata);
  if (current === null)
    return failed(`did not roll back ${where}: it has no revision yet (never rolled out)`);

  const selector = Object.entries(deployment.spec.selector?.matchLabels ?? {})
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
  const rsPath = `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/replicasets`;
  const listed = await kubernetesGet(
    ctx,
    conn,
    `replicasets of ${where}`,
    rsPath,
    selector !== '' ? { labelSelector: selector } : undefined,
  );
  if (!isSuccess(listed.status)) return kubernetesFailure(`rollback of ${where}`, listed, ctx.dryRun, base);
  // the selector can match ReplicaSets of other Deployments with overlapping labels; only owned ones are history
  const history = parseAnswer(ReplicaSetList, listed, `GET replicasets of ${where}`)
    .items.filter((rs) => rs.metadata.ownerReferences?.some((o) => o.uid === deployment.metadata.uid))
    .map((rs) => ({ rs, revision: revisionOf(rs.metadata) }))
    .filter((h): h is { rs: typeof h.rs; revision: number } => h.revision !== null && h.revision < current)
    .sort((a, b) => b.revision - a.revision);
  const previous = history[0];
  if (!previous) {
    return failed(`no previous revision of ${where} to roll back to (current revision ${current})`, {
      fromRevision: current,
    });
  }

  const template = withoutPodTemplateHash(previous.rs.spec.template);
  const patch = [
    ...(deployment.metadata.resourceVersion !== undefined
      ? [{ op: 'test', path: '/metadata/resourceVersion', value: deployment.metadata.resourceVersion }]
      : []),
    { op: 'replace', path: '/spec/template', value: template },
  ];
  const patched = await kubernetesPatch(ctx, conn, where, path, 'application/json-patch+json', patch);
  const details = {
    ...base,
    fromRevision: current,
    toRevision: previous.revision,
    replicaSet: previous.rs.metadata.name,
    images: { from: imagesOf(deployment.spec.template), to: imagesOf(template) },
  };
  if (!isSuccess(patched.status))
    return kubernetesFailure(`rollback of ${where}`, patched, ctx.dryRun, details);
  const change = `from revision ${current} to revision ${previous.revision}`;
  return {
    ok: true,
    dryRun: ctx.dryRun,
    summary: ctx.dryRun
      ? `would roll back ${where} ${change} (rollout undo; the API server accepted it as a dry run)`
      : `rolled back ${where} ${change} (rollout undo)`,
    details: { ...details, status: patched.status },
  };
}

/** Returns a service to the revision before the current one: `kubectl rollout undo`, or a deploy API's rollback. */
export const rollbackExecutor: ActionExecutor<RollbackConfig> = {
  action: ACTION,
  config: RollbackConfig,
  check: checkRollback,
  render: renderServiceConfig,

  describe(config, targets) {
    const view = viewPlatform(config.service, targets);
    const kubernetes = view.platform?.kind !== 'http';
    return {
      target: view.target,
      blastRadius: kubernetes
        ? `every pod of ${view.what} is replaced by the previous revision's; whatever the current revision ` +
          'shipped (code, configuration) is withdrawn'
        : `${config.service} is redeployed at its previous version by its deploy API; whatever the current ` +
          'version shipped is withdrawn',
      rollback: kubernetes
        ? 'roll forward to the current revision (recorded as `fromRevision` in the result)'
        : `roll forward: redeploy the version ${config.service} runs now`,
    };
  },

  async execute(config, ctx) {
    refuseProblems(ACTION, checkRollback(config, ctx.targets));
    const platform = resolvePlatform(config.service, ctx.targets, 'rollback');
    if (platform.kind === 'kubernetes') return rollbackDeployment(ctx, platform);

    const url = platform.http.rollbackUrl as string;
    const request = { service: config.service, incidentId: ctx.incident.id, to: config.to };
    return postToDeployApi(
      ctx,
      platform.http,
      url,
      request,
      { service: config.service },
      {
        wouldDo: `would roll back ${config.service} to its previous version (POST ${displayUrl(url)})`,
        done: `rolled back ${config.service} to its previous version via its deploy API`,
        failed: `rollback of ${config.service} failed`,
      },
    );
  },
};
