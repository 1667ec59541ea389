import { z } from 'zod';
import { formatIssues, readOptionalFile, yamlContent } from '../config-file.js';
import { AppError } from '../errors.js';

const PostgresUrl = z.string().regex(/^postgres(ql)?:\/\//, { error: 'expected a postgres:// URL' });
const RedisTargets = z
  .record(
    z.string(),
    z.strictObject({ url: z.string().regex(/^rediss?:\/\//, { error: 'expected a redis:// URL' }) }),
  )
  .default({});

/** Binaries a runbook may run without a shell (shells and interpreters are refused even when listed), and the cap. */
const ProgramAllowlist = z
  .strictObject({
    /** binary names (looked up in `path`) or absolute paths */
    allow: z.array(z.string().min(1)).default([]),
    /** bytes kept of stdout and of stderr each; default 64 KiB */
    maxOutputBytes: z
      .number()
      .int()
      .positive()
      .max(10 * 1024 * 1024)
      .default(65_536),
    /** the PATH commands run with (the rest of the environment is scrubbed) */
    path: z.string().default('/usr/local/bin:/usr/bin:/bin'),
  })
  .default({ allow: [], maxOutputBytes: 65_536, path: '/usr/local/bin:/usr/bin:/bin' });

/** A Kubernetes API: a kubeconfig file (optionally one context of it), the in-cluster service account, or explicit. */
export const KubernetesCluster = z.union([
  z.strictObject({
    /** path of a kubeconfig file; `~` is the bot's home */
    kubeconfig: z.string().min(1),
    /** context name; default the file's current-context */
    context: z.string().min(1).optional(),
  }),
  /** the service account the bot runs as (token and CA under /var/run/secrets/kubernetes.io/serviceaccount) */
  z.strictObject({ inCluster: z.literal(true) }),
  z.strictObject({
    /** https://host:port (http:// only for loopback test servers) */
    server: z.string().regex(/^https?:\/\//, { error: 'expected an http(s):// URL' }),
    token: z.string().min(1).optional(),
    /** PEM file of the API server's CA */
    caFile: z.string().min(1).optional(),
  }),
]);
export type KubernetesCluster = z.infer<typeof KubernetesCluster>;

/** How restart_service / scale / rollback reach one service: a Kubernetes Deployment, or a generic HTTP endpoint. */
export const ServicePlatform = z.union([
  z.strictObject({
    kubernetes: z.strictObject({
      /** a name under remediation.kubernetes */
      cluster: z.string().min(1),
      namespace: z.string().min(1).default('default'),
      deployment: z.string().min(1),
    }),
  }),
  z.strictObject({
    /** ECS, Nomad, systemd agents, CI/CD rollback APIs: each action is one POST with a JSON body */
    http: z.strictObject({
      restartUrl: z
        .string()
        .regex(/^https?:\/\//)
        .optional(),
      scaleUrl: z
        .string()
        .regex(/^https?:\/\//)
        .optional(),
      rollbackUrl: z
        .string()
        .regex(/^https?:\/\//)
        .optional(),
      /** GET → `{"replicas": n}`; scale reads the current count here (required with scaleUrl) */
      statusUrl: z
        .string()
        .regex(/^https?:\/\//)
        .optional(),
      /** sent with every request (put tokens in the environment: `Bearer ${DEPLOY_TOKEN}`) */
      headers: z.record(z.string(), z.string()).default({}),
      /** per request; milliseconds; default 30000 */
      timeoutMs: z.number().int().positive().max(600_000).default(30_000),
    }),
  }),
]);
export type ServicePlatform = z.infer<typeof ServicePlatform>;

/**
 * Credentials and allowlists of the remediation actions. Kept apart from the diagnostics' read-only targets: a
 * diagnostic's role can never terminate a backend, and nothing here is reachable unless named.
 */
export const RemediationTargets = z.strictObject({
  /** terminate_connections / cancel_query: name → a connection whose role may signal backends (pg_signal_backend) */
  databases: z.record(z.string(), z.strictObject({ url: PostgresUrl })).default({}),
  /** flush_cache: name → connection */
  redis: RedisTargets,
  /** run_script: binaries a remediation may run (not the diagnostics' read-only list) */
  scripts: ProgramAllowlist,
  /** http_request: URL prefixes a request may go to (e.g. `http://payment-admin.internal:9081/admin/`); none → refused */
  http: z
    .strictObject({ allow: z.array(z.string().regex(/^https?:\/\//)).default([]) })
    .default({ allow: [] }),
  /** Kubernetes API servers by name */
  kubernetes: z.record(z.string(), KubernetesCluster).default({}),
  /** service name → where its restart / scale / rollback go */
  platforms: z.record(z.string(), ServicePlatform).default({}),
});
export type RemediationTargets = z.infer<typeof RemediationTargets>;

/**
 * What diagnostics may reach, per deployment (TARGETS_FILE, YAML). Runbooks name targets (`target: main`); the
 * connection details and allowlists live here, so runbooks in git carry no credentials. `${NAME}` in a string is
 * replaced by the environment variable NAME (a missing variable is an error at start-up).
 */
export const Targets = z
  .object({
    /** Postgres targets of `database_query`: name → connection */
    databases: z
      .record(
        z.string(),
        z.strictObject({
          url: PostgresUrl,
          /** per-statement limit inside the READ ONLY transaction; milliseconds; default 5000 */
          statementTimeoutMs: z.number().int().positive().max(600_000).default(5_000),
          /** most rows returned; default 100 */
          maxRows: z.number().int().positive().max(10_000).default(100),
        }),
      )
      .default({}),
    /** Redis targets of `redis_info`: name → connection */
    redis: RedisTargets,
    /** `shell_command`: the only binaries a runbook may run, and the output cap */
    shell: ProgramAllowlist,
    /** `log_search` file sources: name → glob-free list of files (a directory means every file in it) */
    logs: z.record(z.string(), z.strictObject({ paths: z.array(z.string().min(1)).min(1) })).default({}),
    /** per-service values for templates (`{{service.health_url}}`): service name → key → string */
    services: z.record(z.string(), z.record(z.string(), z.string())).default({}),
    /** what remediation actions may change, and with which credentials (separate from the read-only diagnostics) */
    remediation: RemediationTargets.default(RemediationTargets.parse({})),
  })
  .strict();
export type Targets = z.infer<typeof Targets>;

export const EMPTY_TARGETS: Targets = Targets.parse({});

export class TargetsError extends AppError {
  constructor(message: string) {
    super('targets_invalid', message);
    this.name = 'TargetsError';
  }
}

/**
 * `${NAME}` → the variable's value, in every string of the document. `problems` collects unset variables and aliases
 * that contain themselves (`a: &a [*a]` is a cyclic value once converted).
 */
function substituteEnv(
  value: unknown,
  env: NodeJS.ProcessEnv,
  path: string,
  problems: string[],
  ancestors: readonly object[] = [],
): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined) {
        problems.push(`${path}: environment variable ${name} is not set`);
        return '';
      }
      return v;
    });
  }
  if (value && typeof value === 'object' && ancestors.includes(value)) {
    problems.push(`${path || '(root)'}: a YAML alias that contains itself`);
    return null;
  }
  const inside = value && typeof value === 'object' ? [...ancestors, value] : ancestors;
  if (Array.isArray(value))
    return value.map((v, i) => substituteEnv(v, env, `${path}[${i}]`, problems, inside));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        substituteEnv(v, env, path ? `${path}.${k}` : k, problems, inside),
      ]),
    );
  }
  return value;
}

/** Parses a targets document; every problem is reported with its field path. */
export function parseTargets(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Targets {
  const js = yamlContent(text, file, (message) => new TargetsError(message));
  const problems: string[] = [];
  const raw = substituteEnv(js ?? {}, env, '', problems);
  if (problems.length > 0) throw new TargetsError(problems.map((m) => `${file}: ${m}`).join('\n'));
  const parsed = Targets.safeParse(raw);
  if (!parsed.success) {
    throw new TargetsError(formatIssues(file, parsed.error.issues));
  }
  return parsed.data;
}

/** Reads TARGETS_FILE; a missing file means no targets (diagnostics that need one report an error). */
export async function loadTargets(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Targets> {
  const text = await readOptionalFile(file);
  return text === null ? EMPTY_TARGETS : parseTargets(text, file, env);
}
