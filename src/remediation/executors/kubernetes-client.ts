import { readFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { homedir } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { readBodyCapped } from '../../diagnostics/read-body.js';
import type { KubernetesCluster } from '../../diagnostics/targets.js';
import { AppError } from '../../errors.js';

/** where a pod's service account token and CA are mounted */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** bytes of an API answer read before it is refused (a ReplicaSet list of a long history is the largest); 16 MiB */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/** The Kubernetes API connection of a cluster cannot be built (bad kubeconfig, unsupported auth, missing files). */
export class KubernetesConfigError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('kubernetes_config', message, options);
    this.name = 'KubernetesConfigError';
  }
}

/** How to reach one API server; built per execution, so rotated tokens and kubeconfig edits are picked up. */
export interface KubernetesConnection {
  server: URL;
  /** bearer token; none means anonymous (only useful against test servers) */
  token?: string;
  /** PEM of the API server's CA; undefined means the system's roots */
  ca?: string;
  /** a kubeconfig's `insecure-skip-tls-verify: true` */
  insecureSkipTlsVerify: boolean;
  /** a kubeconfig's `tls-server-name`: the name the certificate is checked against instead of the host */
  tlsServerName?: string;
  /** for messages: `kubeconfig /home/bot/.kube/config (context prod)` */
  source: string;
}

export interface ConnectOptions {
  /** KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT for `inCluster`; default process.env */
  env?: NodeJS.ProcessEnv;
  /** directory of `token` and `ca.crt` for `inCluster`; default SERVICE_ACCOUNT_DIR */
  serviceAccountDir?: string;
}

const Kubeconfig = z.object({
  'current-context': z.string().nullish(),
  clusters: z
    .array(
      z.object({
        name: z.string(),
        cluster: z.object({
          server: z.string(),
          'certificate-authority': z.string().nullish(),
          'certificate-authority-data': z.string().nullish(),
          'insecure-skip-tls-verify': z.boolean().nullish(),
          'tls-server-name': z.string().nullish(),
        }),
      }),
    )
    .nullish(),
  contexts: z
    .array(
      z.object({ name: z.string(), context: z.object({ cluster: z.string(), user: z.string().nullish() }) }),
    )
    .nullish(),
  users: z.array(z.object({ name: z.string(), user: z.record(z.string(), z.unknown()).nullish() })).nullish(),
});

/** kubeconfig user fields of the auth kinds this client does not implement, and what to call them in errors */
const UNSUPPORTED_AUTH: [string, string][] = [
  ['client-certificate', 'a client certificate'],
  ['client-certificate-data', 'a client certificate'],
  ['exec', 'an exec credential plugin'],
  ['auth-provider', 'an auth provider'],
  ['username', 'basic auth'],
  ['password', 'basic auth'],
];

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? `${homedir()}${path.slice(1)}` : path;
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new KubernetesConfigError(`cannot read ${what} ${path}: ${(err as Error).message}`, { cause: err });
  }
}

async function fromKubeconfig(file: string, contextName: string | undefined): Promise<KubernetesConnection> {
  const path = expandHome(file);
  let doc: unknown;
  try {
    doc = parseYaml(await readText(path, 'kubeconfig'));
  } catch (err) {
    if (err instanceof KubernetesConfigError) throw err;
    throw new KubernetesConfigError(`kubeconfig ${path} is not valid YAML: ${(err as Error).message}`);
  }
  const parsed = Kubeconfig.safeParse(doc ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new KubernetesConfigError(
      `kubeconfig ${path}: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`,
    );
  }
  const config = parsed.data;
  const name = contextName ?? config['current-context'] ?? undefined;
  if (!name) throw new KubernetesConfigError(`kubeconfig ${path} has no current-context; name a context`);
  const source = `kubeconfig ${path} (context ${name})`;
  const context = config.contexts?.find((c) => c.name === name)?.context;
  if (!context) throw new KubernetesConfigError(`kubeconfig ${path} has no context "${name}"`);
  const cluster = config.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster) throw new KubernetesConfigError(`${source}: no cluster "${context.cluster}" in clusters[]`);

  let server: URL;
  try {
    server = new URL(cluster.server);
  } catch {
    throw new KubernetesConfigError(`${source}: cluster server "${cluster.server}" is not a URL`);
  }
  let ca: string | undefined;
  if (cluster['certificate-authority-data']) {
    ca = Buffer.from(cluster['certificate-authority-data'], 'base64').toString('utf8');
  } else if (cluster['certificate-authority']) {
    // relative paths in a kubeconfig are relative to the file, as kubectl reads them
    ca = await readText(resolve(dirname(path), expandHome(cluster['certificate-authority'])), 'CA file');
  }

  let token: string | undefined;
  const userName = context.user ?? undefined;
  if (userName !== undefined) {
    const entry = config.users?.find((u) => u.name === userName);
    if (!entry) throw new KubernetesConfigError(`${source}: no user "${userName}" in users[]`);
    const user = entry.user ?? {};
    if (typeof user.token === 'string' && user.token !== '') token = user.token;
    else if (typeof user.tokenFile === 'string' && user.tokenFile !== '') {
      token = (await readText(resolve(dirname(path), expandHome(user.tokenFile)), 'token file')).trim();
    } else {
      const kind = UNSUPPORTED_AUTH.find(([field]) => user[field] !== undefined)?.[1];
      if (kind) {
        throw new KubernetesConfigError(
          `${source}: user "${userName}" authenticates with ${kind}; only token auth is supported ` +
            '(users[].user.token or tokenFile, e.g. a service account token)',
        );
      }
    }
  }
  return {
    server,
    ...(token !== undefined ? { token } : {}),
    ...(ca !== undefined ? { ca } : {}),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    ...(cluster['tls-server-name'] ? { tlsServerName: cluster['tls-server-name'] } : {}),
    source,
  };
}

async function fromServiceAccount(options: ConnectOptions): Promise<KubernetesConnection> {
  const env = options.env ?? process.env;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new KubernetesConfigError(
      'inCluster: KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT are not set (is the bot running in a pod?)',
    );
  }
  const dir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const token = (await readText(`${dir}/token`, 'service account token')).trim();
  const ca = await readText(`${dir}/ca.crt`, 'service account CA');
  return {
    server: new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`),
    token,
    ca,
    insecureSkipTlsVerify: false,
    source: 'the in-cluster service account',
  };
}

/** Builds the connection of one entry of the targets file's remediation.kubernetes (`name` is its key, for errors). */
export async function connectKubernetes(
  name: string,
  cluster: KubernetesCluster,
  options: ConnectOptions = {},
): Promise<KubernetesConnection> {
  if ('kubeconfig' in cluster) return fromKubeconfig(cluster.kubeconfig, cluster.context);
  if ('inCluster' in cluster) return fromServiceAccount(options);
  const server = new URL(cluster.server);
  return {
    server,
    ...(cluster.token !== undefined ? { token: cluster.token } : {}),
    ...(cluster.caFile !== undefined ? { ca: await readText(expandHome(cluster.caFile), 'CA file') } : {}),
    insecureSkipTlsVerify: false,
    source: `remediation.kubernetes.${name}`,
  };
}

export interface KubernetesRequest {
  method: 'GET' | 'PATCH';
  /** from the API root, e.g. /apis/apps/v1/namespaces/payments/deployments/payment-service */
  path: string;
  query?: Record<string, string>;
  /** the patch type of a PATCH (application/strategic-merge-patch+json, merge-patch, json-patch) */
  contentType?: string;
  body?: unknown;
  signal: AbortSignal;
}

export interface KubernetesAnswer {
  status: number;
  text: string;
  /** the parsed body; undefined when it is not JSON */
  json: unknown;
}

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

async function requestHttps(
  conn: KubernetesConnection,
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  signal: AbortSignal,
): Promise<{ status: number; text: string }> {
  return new Promise((resolvePromise, reject) => {
    const req = httpsRequest(
      {
        protocol: 'https:',
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || 443,
        path: `${url.pathname}${url.search}`,
        method,
        headers:
          body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        ...(conn.ca !== undefined ? { ca: conn.ca } : {}),
        ...(conn.tlsServerName !== undefined ? { servername: conn.tlsServerName } : {}),
        rejectUnauthorized: !conn.insecureSkipTlsVerify,
        signal,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > MAX_ANSWER_BYTES) {
            res.destroy(new Error(`the answer exceeds ${MAX_ANSWER_BYTES / 1024 / 1024} MiB`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () =>
          resolvePromise({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * One call to the API server. https goes through node:https with the cluster's CA; plain http is accepted only for a
 * loopback address (test stand-ins), so a token is never sent in clear over a network. Non-2xx answers are returned,
 * not thrown: the caller turns the Kubernetes Status into a failed result.
 */
export async function kubernetesRequest(
  conn: KubernetesConnection,
  req: KubernetesRequest,
): Promise<KubernetesAnswer> {
  const url = new URL(conn.server.href.replace(/\/+$/, '') + req.path);
  for (const [key, value] of Object.entries(req.query ?? {})) url.searchParams.set(key, value);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (conn.token !== undefined) headers.authorization = `Bearer ${conn.token}`;
  const body = req.body === undefined ? undefined : JSON.stringify(req.body);
  if (body !== undefined) headers['content-type'] = req.contentType ?? 'application/json';

  let answer: { status: number; text: string };
  if (url.protocol === 'https:') {
    answer = await requestHttps(conn, url, req.method, headers, body, req.signal);
  } else if (url.protocol === 'http:' && isLoopback(url.hostname)) {
    const res = await fetch(url, {
      method: req.method,
      headers,
      body,
      signal: req.signal,
      redirect: 'manual',
    });
    answer = { status: res.status, text: await readBodyCapped(res.body, MAX_ANSWER_BYTES, 'refuse') };
  } else {
    throw new KubernetesConfigError(
      `${conn.source}: server ${conn.server.origin} is not https (plain http is only accepted on loopback)`,
    );
  }
  let json: unknown;
  try {
    json = answer.text === '' ? undefined : JSON.parse(answer.text);
  } catch {
    json = undefined;
  }
  return { ...answer, json };
}

/** The message of a Kubernetes Status answer (`deployments.apps "x" is forbidden: …`), else the start of the body. */
export function statusMessage(answer: KubernetesAnswer): { reason: string | null; message: string } {
  const status = answer.json as { kind?: unknown; reason?: unknown; message?: unknown } | undefined;
  if (status && typeof status === 'object' && typeof status.message === 'string') {
    return { reason: typeof status.reason === 'string' ? status.reason : null, message: status.message };
  }
  const text = answer.text.trim();
  return { reason: null, message: text.length > 200 ? `${text.slice(0, 200)}…` : text || '(empty answer)' };
}

/** `metadata.annotations` key where the Deployment controller numbers rollouts (Deployment and ReplicaSets) */
export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';

const IntOrPercent = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+%$/)]);

/** The parts of an apps/v1 Deployment the executors read; everything else is ignored. */
export const Deployment = z.object({
  metadata: z.object({
    name: z.string(),
    uid: z.string(),
    resourceVersion: z.string().optional(),
    annotations: z.record(z.string(), z.string()).nullish(),
  }),
  spec: z.object({
    replicas: z.number().int().nonnegative().optional(),
    paused: z.boolean().optional(),
    selector: z.object({ matchLabels: z.record(z.string(), z.string()).nullish() }).optional(),
    strategy: z
      .object({
        type: z.string().optional(),
        rollingUpdate: z
          .object({ maxUnavailable: IntOrPercent.optional(), maxSurge: IntOrPercent.optional() })
          .nullish(),
      })
      .nullish(),
    template: z.record(z.string(), z.unknown()),
  }),
});
export type Deployment = z.infer<typeof Deployment>;

/** The parts of an apps/v1 ReplicaSet rollback reads; `spec.template` is kept whole (it is written back). */
export const ReplicaSet = z.object({
  metadata: z.object({
    name: z.string(),
    annotations: z.record(z.string(), z.string()).nullish(),
    ownerReferences: z.array(z.object({ uid: z.string() })).nullish(),
  }),
  spec: z.object({ template: z.record(z.string(), z.unknown()) }),
});
export type ReplicaSet = z.infer<typeof ReplicaSet>;

export const ReplicaSetList = z.object({ items: z.array(ReplicaSet) });

/** autoscaling/v1 Scale; `spec.replicas` is omitted by the API server when it is 0 */
export const Scale = z.object({ spec: z.object({ replicas: z.number().int().nonnegative().optional() }) });

/** The revision number of a Deployment or ReplicaSet; null when it has none (never rolled out, or not a number). */
export function revisionOf(metadata: { annotations?: Record<string, string> | null }): number | null {
  const raw = metadata.annotations?.[REVISION_ANNOTATION];
  if (raw === undefined || !/^\d+$/.test(raw)) return null;
  return Number.parseInt(raw, 10);
}

/** Container images of a pod template, for people: ["payments:1.4.3"] */
export function imagesOf(template: Record<string, unknown>): string[] {
  const spec = template.spec as { containers?: { image?: unknown }[] } | undefined;
  return (spec?.containers ?? []).map((c) => (typeof c.image === 'string' ? c.image : '?'));
}

/** A 2xx answer read as `schema`; an answer of another shape throws naming the request and the first bad field. */
export function parseAnswer<T>(schema: z.ZodType<T>, answer: KubernetesAnswer, what: string): T {
  const parsed = schema.safeParse(answer.json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new Error(
    `${what}: unexpected answer${issue ? ` (${issue.path.join('.') || 'body'}: ${issue.message})` : ''}`,
  );
}
