import { z } from 'zod';
import type { ConfigProblem } from '../../diagnostics/collector.js';
import { readBodyCapped } from '../../diagnostics/read-body.js';
import type { KubernetesCluster, ServicePlatform, Targets } from '../../diagnostics/targets.js';
import {
  placeholdersOf,
  renderTemplate,
  TemplateError,
  type TemplateVars,
} from '../../diagnostics/templating.js';
import { AppError } from '../../errors.js';
import {
  type ActionContext,
  type ActionResult,
  describeIoError,
  excerpt,
  ForbiddenActionError,
} from '../executor.js';
import {
  connectKubernetes,
  type KubernetesAnswer,
  type KubernetesConnection,
  type KubernetesRequest,
  kubernetesRequest,
  statusMessage,
} from './kubernetes-client.js';

/** a service name as it may appear in the targets file and in a Kubernetes or HTTP call once rendered */
export const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
/** bytes of a deploy API's answer kept for `output` (which keeps less again) */
const MAX_DEPLOY_ANSWER_BYTES = 64 * 1024;

/**
 * `service` of restart_service / scale / rollback: a key of the targets file's `remediation.platforms`, literally or
 * through placeholders (`{{incident.service}}`); the rendered value must be a plain service name.
 */
export const ServiceField = z
  .string()
  .min(1)
  .max(200)
  .superRefine((value, ctx) => {
    const placeholders = placeholdersOf(value);
    for (const p of placeholders) {
      if (!p.valid) {
        ctx.addIssue({
          code: 'custom',
          message: `placeholder {{${p.name}}} is not one of labels.*, annotations.*, incident.*, service.*`,
        });
      }
    }
    if (placeholders.length === 0 && !SERVICE_NAME.test(value)) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a service name (letters, digits, . _ -)` });
    }
  });

/** The three platform actions, and the key of an HTTP platform each needs. */
export type PlatformAction = 'restart' | 'scale' | 'rollback';
const HTTP_URL_KEYS: Record<PlatformAction, ('restartUrl' | 'scaleUrl' | 'rollbackUrl' | 'statusUrl')[]> = {
  restart: ['restartUrl'],
  scale: ['statusUrl', 'scaleUrl'],
  rollback: ['rollbackUrl'],
};

export type HttpPlatform = Extract<ServicePlatform, { http: unknown }>['http'];

/** Where one service's action goes, resolved from the targets file. */
export type ResolvedPlatform =
  | {
      kind: 'kubernetes';
      clusterName: string;
      cluster: KubernetesCluster;
      namespace: string;
      deployment: string;
    }
  | { kind: 'http'; service: string; http: HttpPlatform };
export type KubernetesPlatform = Extract<ResolvedPlatform, { kind: 'kubernetes' }>;
export type DeployApiPlatform = Extract<ResolvedPlatform, { kind: 'http' }>;

/** Fills `service`; a value that is not a plain service name once filled is refused, whatever it came from. */
function renderService(service: string, vars: TemplateVars): string {
  const rendered = renderTemplate(service, vars, (value) => value);
  if (!SERVICE_NAME.test(rendered)) {
    throw new TemplateError(
      `service: "${rendered.slice(0, 120)}" is not a service name once rendered (letters, digits, . _ -; at most 100)`,
    );
  }
  return rendered;
}

/** render() of the platform actions: only `service` holds placeholders. */
export function renderServiceConfig<C extends { service: string }>(config: C, vars: TemplateVars): C {
  return { ...config, service: renderService(config.service, vars) };
}

function isLiteral(service: string): boolean {
  return placeholdersOf(service).length === 0;
}

function platformProblemsOf(service: string, targets: Targets, action: PlatformAction): string[] {
  const { platforms, kubernetes } = targets.remediation;
  const platform = platforms[service];
  if (!platform) {
    const known = Object.keys(platforms);
    return [
      `no platform for service "${service}" in the targets file (remediation.platforms.${service}; ` +
        `known: ${known.length > 0 ? known.join(', ') : 'none'})`,
    ];
  }
  if ('kubernetes' in platform) {
    const { cluster } = platform.kubernetes;
    if (kubernetes[cluster]) return [];
    return [
      `service "${service}" runs on cluster "${cluster}", which is not in the targets file ` +
        `(remediation.kubernetes.${cluster})`,
    ];
  }
  return HTTP_URL_KEYS[action]
    .filter((key) => platform.http[key] === undefined)
    .map(
      (key) =>
        `service "${service}" has no ${key} in the targets file (remediation.platforms.${service}.http.${key})`,
    );
}

/**
 * Load-time problems of `service` against the targets file. A placeholder cannot be judged before the incident
 * exists; execution checks the rendered name again (`resolvePlatform`).
 */
export function checkService(service: string, targets: Targets, action: PlatformAction): ConfigProblem[] {
  if (!isLiteral(service)) return [];
  if (!SERVICE_NAME.test(service))
    return [{ path: ['service'], message: `"${service}" is not a service name` }];
  return platformProblemsOf(service, targets, action).map((message) => ({ path: ['service'], message }));
}

/** The rendered service's platform; throws ForbiddenActionError when it is not a name the targets file gives one. */
export function resolvePlatform(service: string, targets: Targets, action: PlatformAction): ResolvedPlatform {
  if (!SERVICE_NAME.test(service)) {
    throw new ForbiddenActionError(`service "${service.slice(0, 120)}" is not a rendered service name`);
  }
  const problems = platformProblemsOf(service, targets, action);
  if (problems.length > 0) throw new ForbiddenActionError(problems.join('; '));
  const platform = targets.remediation.platforms[service] as ServicePlatform;
  if ('http' in platform) return { kind: 'http', service, http: platform.http };
  const { cluster: clusterName, namespace, deployment } = platform.kubernetes;
  return {
    kind: 'kubernetes',
    clusterName,
    cluster: targets.remediation.kubernetes[clusterName] as KubernetesCluster,
    namespace,
    deployment,
  };
}

/** What describe() names: the rate-window key and the words for people; `null` platform when it cannot resolve. */
export interface PlatformView {
  target: string;
  /** "deployment payments/payment-service" or "payment-service (via deploy.internal)" */
  what: string;
  platform: ResolvedPlatform | null;
}

/** Describes without I/O and without throwing: an unresolvable service still gets a stable target key. */
export function viewPlatform(service: string, targets: Targets): PlatformView {
  const platform = targets.remediation.platforms[service];
  if (platform && 'kubernetes' in platform) {
    const { cluster, namespace, deployment } = platform.kubernetes;
    const cfg = targets.remediation.kubernetes[cluster];
    return {
      target: `k8s:${cluster}/${namespace}/deployment/${deployment}`,
      what: `deployment ${namespace}/${deployment}`,
      platform: cfg
        ? { kind: 'kubernetes', clusterName: cluster, cluster: cfg, namespace, deployment }
        : null,
    };
  }
  if (platform && 'http' in platform) {
    return {
      target: `http:${service}`,
      what: service,
      platform: { kind: 'http', service, http: platform.http },
    };
  }
  return {
    target: `service:${service}`,
    what: `${service} (no platform in the targets file)`,
    platform: null,
  };
}

/** API path of a Deployment (or its `scale` subresource); names come from the targets file but are encoded anyway. */
function deploymentPath(namespace: string, deployment: string, subresource?: 'scale'): string {
  const base = `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments/${encodeURIComponent(deployment)}`;
  return subresource ? `${base}/${subresource}` : base;
}

/** A non-2xx answer of the API server as a failed result, carrying its status and the Kubernetes Status message. */
export function kubernetesFailure(
  what: string,
  answer: KubernetesAnswer,
  dryRun: boolean,
  details: Record<string, unknown> = {},
): ActionResult {
  const { reason, message } = statusMessage(answer);
  return {
    ok: false,
    dryRun,
    summary: `${what} failed: HTTP ${answer.status} ${message}`,
    details: { ...details, status: answer.status, reason, message },
    output: excerpt(answer.text),
  };
}

/** A URL as shown in results: scheme, host and path, never a query string or credentials (tokens hide there). */
export function displayUrl(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

/**
 * Runs one request under the step's signal and a per-request deadline (milliseconds), so every I/O stops when the
 * step times out; failures are rethrown naming the request (`what`) and why.
 */
async function withDeadline<T>(
  ctx: ActionContext,
  timeoutMs: number,
  what: string,
  io: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const stepTimedOut = () => new Error(`${what}: the step timed out after ${ctx.timeoutMs} ms`);
  if (ctx.signal.aborted) throw stepTimedOut();
  const deadline = AbortSignal.timeout(timeoutMs);
  try {
    return await io(AbortSignal.any([ctx.signal, deadline]));
  } catch (err) {
    if (ctx.signal.aborted) throw stepTimedOut();
    if (deadline.aborted) throw new Error(`${what}: no answer within ${timeoutMs} ms`, { cause: err });
    // coded errors (a bad kubeconfig, a refusal) already say what went wrong
    if (err instanceof AppError) throw err;
    throw new Error(`${what}: ${describeIoError(err)}`, { cause: err });
  }
}

/** One Deployment an action changes: the connection to its cluster, its API path and its names. */
export interface OpenDeployment {
  conn: KubernetesConnection;
  /** the Deployment's API path, or its `scale` subresource's */
  path: string;
  /** "deployment payments/payment-service", for messages */
  where: string;
  /** cluster, namespace and deployment, the start of every result's `details` */
  base: { cluster: string; namespace: string; deployment: string };
}

/** Connects to the cluster of `platform` and names its Deployment (or that Deployment's `scale` subresource). */
export async function openDeployment(
  platform: KubernetesPlatform,
  subresource?: 'scale',
): Promise<OpenDeployment> {
  const { clusterName, namespace, deployment } = platform;
  return {
    conn: await connectKubernetes(clusterName, platform.cluster),
    path: deploymentPath(namespace, deployment, subresource),
    where: `deployment ${namespace}/${deployment}`,
    base: { cluster: clusterName, namespace, deployment },
  };
}

/** A GET to the API server under the step's deadline; `what` names the object in errors ("deployment ns/name"). */
export function kubernetesGet(
  ctx: ActionContext,
  conn: KubernetesConnection,
  what: string,
  path: string,
  query?: KubernetesRequest['query'],
): Promise<KubernetesAnswer> {
  return withDeadline(ctx, ctx.timeoutMs, `GET ${what}`, (signal) =>
    kubernetesRequest(conn, { method: 'GET', path, ...(query !== undefined ? { query } : {}), signal }),
  );
}

/**
 * A PATCH to the API server under the step's deadline. In a dry run it carries `dryRun=All`: the API server
 * validates and admits the change but persists nothing.
 */
export function kubernetesPatch(
  ctx: ActionContext,
  conn: KubernetesConnection,
  what: string,
  path: string,
  contentType: string,
  body: unknown,
): Promise<KubernetesAnswer> {
  return withDeadline(ctx, ctx.timeoutMs, `PATCH ${what}`, (signal) =>
    kubernetesRequest(conn, {
      method: 'PATCH',
      path,
      ...(ctx.dryRun ? { query: { dryRun: 'All' } } : {}),
      contentType,
      body,
      signal,
    }),
  );
}

/**
 * One call to a service's deploy API: the configured headers (credentials) are sent and never returned. Redirects
 * are not followed, so a POST cannot be bounced to a host the targets file does not name.
 */
export async function callDeployApi(
  ctx: ActionContext,
  http: HttpPlatform,
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  return withDeadline(ctx, http.timeoutMs, `${method} ${displayUrl(url)}`, async (signal) => {
    const headers = new Headers(http.headers);
    headers.set('accept', 'application/json');
    if (body !== undefined) headers.set('content-type', 'application/json');
    const res = await fetch(url, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal,
      redirect: 'manual',
    });
    return { status: res.status, text: await readBodyCapped(res.body, MAX_DEPLOY_ANSWER_BYTES, 'truncate') };
  });
}

export function isSuccess(status: number): boolean {
  return status >= 200 && status <= 299;
}

/** A deploy API's answer as a result: ok on 2xx, its body's start in `output`, never the request's headers. */
function deployApiResult(
  answer: { status: number; text: string },
  done: string,
  failed: string,
  details: Record<string, unknown>,
): ActionResult {
  const ok = isSuccess(answer.status);
  return {
    ok,
    dryRun: false,
    summary: ok ? `${done} (HTTP ${answer.status})` : `${failed}: HTTP ${answer.status}`,
    details: { ...details, status: answer.status },
    output: excerpt(answer.text),
  };
}

/**
 * The deploy-API side of an action: POSTs `request` to `url` and returns the answer as the result; a dry run sends
 * nothing and says what would be sent. `details` gets the URL (without query or credentials) and the request.
 */
export async function postToDeployApi(
  ctx: ActionContext,
  http: HttpPlatform,
  url: string,
  request: Record<string, unknown>,
  facts: Record<string, unknown>,
  summary: { wouldDo: string; done: string; failed: string },
): Promise<ActionResult> {
  const details = { ...facts, url: displayUrl(url), request };
  if (ctx.dryRun) return { ok: true, dryRun: true, summary: summary.wouldDo, details };
  const answer = await callDeployApi(ctx, http, 'POST', url, request);
  return deployApiResult(answer, summary.done, summary.failed, details);
}
