import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { Targets } from '../src/diagnostics/targets.js';
import { TemplateError, type TemplateVars } from '../src/diagnostics/templating.js';
import { type ActionContext, ForbiddenActionError, LimitError } from '../src/remediation/executor.js';
import { KubernetesConfigError } from '../src/remediation/executors/kubernetes-client.js';
import {
  RestartServiceConfig,
  restartServiceExecutor,
} from '../src/remediation/executors/restart-service.js';
import { RollbackConfig, rollbackExecutor } from '../src/remediation/executors/rollback.js';
import { ScaleConfig, scaleExecutor } from '../src/remediation/executors/scale.js';
import type { Queryable } from '../src/store/db.js';

const NOW = new Date('2026-11-26T03:04:05.000Z');
const SA_TOKEN = 'sa-token-0123456789';
const DEPLOY_SECRET = 'deploy-secret-abcdef';
const QUERY_SECRET = 'q-secret-987';

interface Recorded {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | undefined;
  authorization: string | undefined;
  headers: IncomingMessage['headers'];
  body: unknown;
}

interface Stub {
  url: string;
  requests: Recorded[];
  close(): Promise<void>;
}

type Handler = (req: Recorded, res: ServerResponse) => void;

function recorder(requests: Recorded[], handle: Handler): RequestListener {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://stub');
      const text = Buffer.concat(chunks).toString('utf8');
      const recorded: Recorded = {
        method: req.method ?? '',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        contentType: req.headers['content-type'],
        authorization: req.headers.authorization,
        headers: req.headers,
        body: text === '' ? undefined : JSON.parse(text),
      };
      requests.push(recorded);
      handle(recorded, res);
    });
  };
}

/** A loopback HTTP (or, with a key and certificate, HTTPS) server on port 0 that records every request. */
async function startStub(handle: Handler, tls?: { key: string; cert: string }): Promise<Stub> {
  const requests: Recorded[] = [];
  const listener = recorder(requests, handle);
  const server = tls ? createHttpsServer(tls, listener) : createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

// ---------------------------------------------------------------------------------------------------------------
// The Kubernetes API stand-in: one Deployment at revision 3 with its three ReplicaSets, plus a ReplicaSet of another
// Deployment whose labels overlap (it must never be picked).

const DEPLOY_PATH = '/apis/apps/v1/namespaces/payments/deployments/payment-service';
const RS_PATH = '/apis/apps/v1/namespaces/payments/replicasets';
const DEPLOYMENT_UID = 'uid-payment-service';
const FORBIDDEN_MESSAGE =
  'deployments.apps "payment-service" is forbidden: User "system:serviceaccount:ops:ai-sre" cannot patch ' +
  'resource "deployments" in API group "apps" in the namespace "payments"';

function podTemplate(revision: number, hash: string | null, image: string) {
  return {
    metadata: {
      labels: { app: 'payment-service', tier: 'api', ...(hash ? { 'pod-template-hash': hash } : {}) },
      annotations: { 'prometheus.io/scrape': 'true' },
    },
    spec: {
      containers: [
        {
          name: 'app',
          image,
          env: [{ name: 'REVISION', value: String(revision) }],
          ports: [{ containerPort: 8080 }],
        },
      ],
    },
  };
}

function replicaSet(name: string, revision: number, ownerUid: string, image: string) {
  return {
    metadata: {
      name,
      namespace: 'payments',
      annotations: { 'deployment.kubernetes.io/revision': String(revision) },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'Deployment', name: 'x', uid: ownerUid, controller: true },
      ],
    },
    spec: { replicas: 0, template: podTemplate(revision, `hash${revision}`, image) },
  };
}

interface KubeState {
  replicas: number;
  strategy: unknown;
  /** answer every PATCH with a 403 Status */
  forbidPatch: boolean;
  /** revisions of the Deployment's own ReplicaSets */
  revisions: number[];
}

async function startKubernetes(initial: Partial<KubeState> = {}): Promise<Stub & { state: KubeState }> {
  const state: KubeState = {
    replicas: 4,
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 1 } },
    forbidPatch: false,
    revisions: [1, 2, 3],
    ...initial,
  };
  const deployment = () => ({
    kind: 'Deployment',
    metadata: {
      name: 'payment-service',
      namespace: 'payments',
      uid: DEPLOYMENT_UID,
      resourceVersion: '4711',
      annotations: { 'deployment.kubernetes.io/revision': '3' },
    },
    spec: {
      replicas: state.replicas,
      selector: { matchLabels: { app: 'payment-service', tier: 'api' } },
      strategy: state.strategy,
      template: podTemplate(3, null, 'registry.local/payments:3.0'),
    },
  });
  const stub = await startStub((req, res) => {
    if (req.method === 'PATCH' && state.forbidPatch) {
      sendJson(res, 403, {
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        message: FORBIDDEN_MESSAGE,
        reason: 'Forbidden',
        code: 403,
      });
      return;
    }
    const dryRun = req.query.dryRun === 'All';
    if (req.path === DEPLOY_PATH && (req.method === 'GET' || req.method === 'PATCH')) {
      sendJson(res, 200, deployment());
    } else if (req.path === `${DEPLOY_PATH}/scale` && req.method === 'GET') {
      sendJson(res, 200, {
        kind: 'Scale',
        spec: { replicas: state.replicas },
        status: { replicas: state.replicas },
      });
    } else if (req.path === `${DEPLOY_PATH}/scale` && req.method === 'PATCH') {
      const replicas = (req.body as { spec: { replicas: number } }).spec.replicas;
      if (!dryRun) state.replicas = replicas;
      sendJson(res, 200, { kind: 'Scale', spec: { replicas } });
    } else if (req.path === RS_PATH && req.method === 'GET') {
      const own = state.revisions.map((r) =>
        replicaSet(`payment-service-${r}`, r, DEPLOYMENT_UID, `registry.local/payments:${r}.0`),
      );
      // listed first and at revision 2 too: without the owner filter it would win the tie
      const foreign = replicaSet('payment-canary-1', 2, 'uid-someone-else', 'registry.local/evil:1');
      sendJson(res, 200, { kind: 'ReplicaSetList', items: [foreign, ...own] });
    } else {
      sendJson(res, 404, { kind: 'Status', status: 'Failure', message: `no route ${req.path}`, code: 404 });
    }
  });
  return Object.assign(stub, { state });
}

/** The deploy API stand-in: GET /status answers the replica count; POSTs answer 202 with a small body. */
async function startDeployApi(options: { fail?: boolean } = {}): Promise<Stub> {
  return startStub((req, res) => {
    if (req.method === 'GET' && req.path === '/status') sendJson(res, 200, { replicas: 4 });
    else if (req.method === 'POST' && options.fail) sendJson(res, 500, { error: 'deployer is down' });
    else if (req.method === 'POST') sendJson(res, 202, { accepted: true, job: `job-${req.path.slice(1)}` });
    else sendJson(res, 404, { error: 'no route' });
  });
}

function buildTargets(kubeUrl: string, deployUrl: string, cluster?: Record<string, unknown>): Targets {
  return Targets.parse({
    remediation: {
      kubernetes: { prod: cluster ?? { server: kubeUrl, token: SA_TOKEN } },
      platforms: {
        'payment-service': {
          kubernetes: { cluster: 'prod', namespace: 'payments', deployment: 'payment-service' },
        },
        checkout: {
          http: {
            restartUrl: `${deployUrl}/restart?key=${QUERY_SECRET}`,
            scaleUrl: `${deployUrl}/scale`,
            statusUrl: `${deployUrl}/status`,
            rollbackUrl: `${deployUrl}/rollback`,
            headers: { authorization: `Bearer ${DEPLOY_SECRET}` },
          },
        },
        ledger: { http: { restartUrl: `${deployUrl}/restart` } },
        orphan: { kubernetes: { cluster: 'staging', deployment: 'orphan' } },
      },
    },
  });
}

function buildContext(targets: Targets, overrides: Partial<ActionContext> = {}): ActionContext {
  const db = {
    query: () => {
      throw new Error('the platform executors never query the database');
    },
  } as unknown as Queryable;
  return {
    signal: new AbortController().signal,
    timeoutMs: 5_000,
    dryRun: false,
    targets,
    db,
    incident: { id: 42, service: 'payment-service', severity: 'critical', title: 'payment-service is slow' },
    limits: { scaleStep: 3, maxReplicas: 20 },
    now: NOW,
    log: pino({ level: 'silent' }),
    ...overrides,
  };
}

function buildVars(service: string): TemplateVars {
  return { labels: {}, annotations: {}, incident: { id: '42', service }, service: {} };
}

const restartConfig = (service = 'payment-service') =>
  RestartServiceConfig.parse({ service, strategy: 'rolling', maxUnavailable: 1 });
const scaleConfig = (by = 2, max = 20, service = 'payment-service') =>
  ScaleConfig.parse({ service, by, max });
const rollbackConfig = (service = 'payment-service') => RollbackConfig.parse({ service, to: 'previous' });

const stubs: Stub[] = [];
after(async () => {
  await Promise.all(stubs.map((s) => s.close()));
});

async function kube(initial: Partial<KubeState> = {}) {
  const k = await startKubernetes(initial);
  stubs.push(k);
  return { k, targets: buildTargets(k.url, 'http://127.0.0.1:9') };
}

function calls(stub: Stub): string[] {
  return stub.requests.map((r) => `${r.method} ${r.path}`);
}

describe('config schemas', () => {
  test('the runbooks’ shapes parse, with defaults for what they leave out', () => {
    assert.deepEqual(
      RestartServiceConfig.parse({ service: '{{incident.service}}', strategy: 'rolling', maxUnavailable: 1 }),
      { service: '{{incident.service}}', strategy: 'rolling', maxUnavailable: 1 },
    );
    assert.deepEqual(RestartServiceConfig.parse({ service: 'x' }), {
      service: 'x',
      strategy: 'rolling',
      maxUnavailable: 1,
    });
    assert.deepEqual(ScaleConfig.parse({ service: '{{incident.service}}', by: 2, max: 20 }), {
      service: '{{incident.service}}',
      by: 2,
      max: 20,
    });
    assert.deepEqual(RollbackConfig.parse({ service: '{{incident.service}}', to: 'previous' }), {
      service: '{{incident.service}}',
      to: 'previous',
    });
  });

  test('unbounded or destructive shapes are refused with a reason', () => {
    const to = ScaleConfig.safeParse({ service: 'x', by: 2, max: 20, to: 10 });
    assert.equal(to.success, false);
    assert.deepEqual(to.error?.issues[0]?.path, ['to']);
    assert.match(to.error?.issues[0]?.message ?? '', /unbounded/);

    assert.match(
      RestartServiceConfig.safeParse({ service: 'x', strategy: 'recreate' }).error?.issues[0]?.message ?? '',
      /only strategy "rolling"/,
    );
    assert.equal(RestartServiceConfig.safeParse({ service: 'x', maxUnavailable: 0 }).success, false);
    assert.equal(RestartServiceConfig.safeParse({ service: 'x', maxUnavailable: 11 }).success, false);
    assert.match(
      RollbackConfig.safeParse({ service: 'x', to: 'v1.4.2' }).error?.issues[0]?.message ?? '',
      /only `to: previous`/,
    );
    assert.equal(ScaleConfig.safeParse({ service: 'x', by: 0, max: 20 }).success, false);
    assert.equal(ScaleConfig.safeParse({ service: 'x', by: -2, max: 20 }).success, false);
    assert.equal(ScaleConfig.safeParse({ service: 'x', by: 2, max: 1001 }).success, false);
    assert.equal(ScaleConfig.safeParse({ service: 'x', by: 2, max: 20, extra: 1 }).success, false);
    assert.equal(RollbackConfig.safeParse({ service: 'a b' }).success, false);
    assert.equal(RollbackConfig.safeParse({ service: '{{nope.x}}' }).success, false);
  });
});

describe('check, render, describe', () => {
  const targets = buildTargets('http://127.0.0.1:9', 'http://127.0.0.1:9');

  test('a placeholder service passes at load; a literal one must have a platform', () => {
    assert.deepEqual(scaleExecutor.check?.(scaleConfig(2, 20, '{{incident.service}}'), targets), []);
    assert.deepEqual(restartServiceExecutor.check?.(restartConfig('payment-service'), targets), []);
    const unknown = rollbackExecutor.check?.(rollbackConfig('nope'), targets) ?? [];
    assert.equal(unknown.length, 1);
    assert.deepEqual(unknown[0]?.path, ['service']);
    assert.match(unknown[0]?.message ?? '', /"nope".*remediation\.platforms\.nope/);
    const cluster = restartServiceExecutor.check?.(restartConfig('orphan'), targets) ?? [];
    assert.match(cluster[0]?.message ?? '', /remediation\.kubernetes\.staging/);
    const url = scaleExecutor.check?.(scaleConfig(2, 20, 'ledger'), targets) ?? [];
    assert.deepEqual(
      url.map((p) => p.message.match(/remediation\.platforms\.ledger\.http\.(\w+)/)?.[1]),
      ['statusUrl', 'scaleUrl'],
    );
  });

  test('scale: by above 10 or max above 200 is a load-time problem', () => {
    const problems = scaleExecutor.check?.(scaleConfig(11, 300), targets) ?? [];
    assert.deepEqual(
      problems.map((p) => p.path),
      [['by'], ['max']],
    );
    assert.deepEqual(scaleExecutor.check?.(scaleConfig(10, 200), targets), []);
  });

  test('render fills the service and refuses a value that is not a service name', () => {
    const config = RestartServiceConfig.parse({ service: '{{incident.service}}' });
    assert.equal(
      restartServiceExecutor.render(config, buildVars('payment-service')).service,
      'payment-service',
    );
    for (const hostile of ['../../etc/passwd', 'a b', 'x/y', '-rf', 'a?dryRun=None', '']) {
      assert.throws(
        () => scaleExecutor.render(scaleConfig(2, 20, '{{incident.service}}'), buildVars(hostile)),
        {
          name: 'TemplateError',
        },
      );
    }
    assert.throws(
      () => rollbackExecutor.render(RollbackConfig.parse({ service: '{{labels.app}}' }), buildVars('x')),
      TemplateError,
    );
  });

  test('describe names the target key and the blast radius in words', () => {
    const restart = restartServiceExecutor.describe(restartConfig(), targets, buildContext(targets).incident);
    assert.equal(restart.target, 'k8s:prod/payments/deployment/payment-service');
    assert.match(
      restart.blastRadius,
      /all pods of deployment payments\/payment-service are replaced one at a time/,
    );
    assert.match(restart.rollback, /none needed/);
    const http = restartServiceExecutor.describe(
      restartConfig('checkout'),
      targets,
      buildContext(targets).incident,
    );
    assert.equal(http.target, 'http:checkout');
    assert.doesNotMatch(JSON.stringify(http), new RegExp(DEPLOY_SECRET));
    const scale = scaleExecutor.describe(scaleConfig(2, 12), targets, buildContext(targets).incident);
    assert.match(scale.blastRadius, /adds up to 2 replicas .*never beyond 12/);
    assert.match(scale.rollback, /scale back to the previous replica count/);
    const rollback = rollbackExecutor.describe(rollbackConfig(), targets, buildContext(targets).incident);
    assert.match(rollback.rollback, /roll forward to the current revision/);
    assert.equal(
      rollbackExecutor.describe(rollbackConfig('nope'), targets, buildContext(targets).incident).target,
      'service:nope',
    );
  });
});

describe('kubernetes', () => {
  test('restart: reads the deployment, then a strategic merge patch of restartedAt (rollout restart)', async () => {
    const { k, targets } = await kube();
    const result = await restartServiceExecutor.execute(restartConfig(), buildContext(targets));
    assert.deepEqual(calls(k), [`GET ${DEPLOY_PATH}`, `PATCH ${DEPLOY_PATH}`]);
    const patch = k.requests[1];
    assert.equal(patch?.contentType, 'application/strategic-merge-patch+json');
    assert.deepEqual(patch?.query, {});
    assert.deepEqual(patch?.body, {
      spec: {
        template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': NOW.toISOString() } } },
      },
    });
    assert.ok(k.requests.every((r) => r.authorization === `Bearer ${SA_TOKEN}`));
    assert.equal(result.ok, true);
    assert.equal(result.dryRun, false);
    assert.equal(result.summary, 'restarted deployment payments/payment-service (rollout restart)');
    assert.equal(result.details.podsDownAtOnce, 1);
  });

  test('restart: a deployment whose own strategy takes more pods down than allowed is refused', async () => {
    const { k, targets } = await kube({
      replicas: 8,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
    });
    await assert.rejects(restartServiceExecutor.execute(restartConfig(), buildContext(targets)), (err) => {
      assert.ok(err instanceof LimitError);
      assert.equal(err.limit, 'max_unavailable');
      assert.match(err.message, /up to 2 pods at once/);
      return true;
    });
    const { k: recreate, targets: t2 } = await kube({ strategy: { type: 'Recreate' } });
    await assert.rejects(restartServiceExecutor.execute(restartConfig(), buildContext(t2)), /Recreate/);
    assert.deepEqual([...calls(k), ...calls(recreate)], [`GET ${DEPLOY_PATH}`, `GET ${DEPLOY_PATH}`]);
  });

  test('restart dry run: the same PATCH with dryRun=All', async () => {
    const { k, targets } = await kube();
    const result = await restartServiceExecutor.execute(
      restartConfig(),
      buildContext(targets, { dryRun: true }),
    );
    assert.deepEqual(calls(k), [`GET ${DEPLOY_PATH}`, `PATCH ${DEPLOY_PATH}`]);
    assert.deepEqual(k.requests[1]?.query, { dryRun: 'All' });
    assert.equal(result.ok, true);
    assert.equal(result.dryRun, true);
    assert.match(result.summary, /^would restart deployment payments\/payment-service/);
  });

  test('scale: GET the scale subresource, then a merge patch of current + by', async () => {
    const { k, targets } = await kube({ replicas: 4 });
    const result = await scaleExecutor.execute(scaleConfig(2, 20), buildContext(targets));
    assert.deepEqual(calls(k), [`GET ${DEPLOY_PATH}/scale`, `PATCH ${DEPLOY_PATH}/scale`]);
    assert.equal(k.requests[1]?.contentType, 'application/merge-patch+json');
    assert.deepEqual(k.requests[1]?.body, { spec: { replicas: 6 } });
    assert.equal(k.state.replicas, 6);
    assert.equal(result.ok, true);
    assert.equal(result.summary, 'scaled payments/payment-service 4 → 6 replicas');
    assert.equal(result.details.from, 4);
    assert.equal(result.details.to, 6);
  });

  test('scale: stops at the lower of the step’s max and the policy’s maxReplicas', async () => {
    const { k, targets } = await kube({ replicas: 11 });
    const result = await scaleExecutor.execute(
      scaleConfig(3, 20),
      buildContext(targets, { limits: { scaleStep: 3, maxReplicas: 12 } }),
    );
    assert.deepEqual(k.requests[1]?.body, { spec: { replicas: 12 } });
    assert.equal(result.summary, 'scaled payments/payment-service 11 → 12 replicas');
  });

  test('scale at or beyond the maximum: LimitError and no PATCH', async () => {
    const { k, targets } = await kube({ replicas: 20 });
    await assert.rejects(scaleExecutor.execute(scaleConfig(2, 20), buildContext(targets)), (err) => {
      assert.ok(err instanceof LimitError);
      assert.equal(err.limit, 'max_replicas');
      return true;
    });
    assert.deepEqual(calls(k), [`GET ${DEPLOY_PATH}/scale`]);
    assert.equal(k.state.replicas, 20);
  });

  test('scale by more than the policy’s step: LimitError before any request', async () => {
    const { k, targets } = await kube();
    await assert.rejects(scaleExecutor.execute(scaleConfig(5, 20), buildContext(targets)), (err) => {
      assert.ok(err instanceof LimitError);
      assert.equal(err.limit, 'scale_step');
      return true;
    });
    assert.deepEqual(k.requests, []);
  });

  test('scale with a config changed after load (by 11) is forbidden at execution', async () => {
    const { k, targets } = await kube();
    await assert.rejects(
      scaleExecutor.execute(
        scaleConfig(11, 20),
        buildContext(targets, { limits: { scaleStep: 20, maxReplicas: 50 } }),
      ),
      ForbiddenActionError,
    );
    assert.deepEqual(k.requests, []);
  });

  test('scale dry run: PATCH with dryRun=All, replicas unchanged', async () => {
    const { k, targets } = await kube({ replicas: 4 });
    const result = await scaleExecutor.execute(scaleConfig(2, 20), buildContext(targets, { dryRun: true }));
    assert.deepEqual(k.requests[1]?.query, { dryRun: 'All' });
    assert.deepEqual(k.requests[1]?.body, { spec: { replicas: 6 } });
    assert.equal(k.state.replicas, 4);
    assert.equal(result.dryRun, true);
    assert.match(result.summary, /^would scale payments\/payment-service 4 → 6 replicas/);
  });

  test('rollback: the owned ReplicaSet of revision 2, its template back without pod-template-hash', async () => {
    const { k, targets } = await kube();
    const result = await rollbackExecutor.execute(rollbackConfig(), buildContext(targets));
    assert.deepEqual(calls(k), [`GET ${DEPLOY_PATH}`, `GET ${RS_PATH}`, `PATCH ${DEPLOY_PATH}`]);
    assert.deepEqual(k.requests[1]?.query, { labelSelector: 'app=payment-service,tier=api' });
    const patch = k.requests[2];
    assert.equal(patch?.contentType, 'application/json-patch+json');
    assert.deepEqual(patch?.query, {});
    const expected = podTemplate(2, null, 'registry.local/payments:2.0');
    assert.deepEqual(patch?.body, [
      { op: 'test', path: '/metadata/resourceVersion', value: '4711' },
      { op: 'replace', path: '/spec/template', value: expected },
    ]);
    assert.equal(result.ok, true);
    assert.equal(
      result.summary,
      'rolled back deployment payments/payment-service from revision 3 to revision 2 (rollout undo)',
    );
    assert.deepEqual(result.details.images, {
      from: ['registry.local/payments:3.0'],
      to: ['registry.local/payments:2.0'],
    });
    assert.equal(result.details.replicaSet, 'payment-service-2');
  });

  test('rollback with no earlier revision: a failed result and no PATCH', async () => {
    const { k, targets } = await kube({ revisions: [3] });
    const result = await rollbackExecutor.execute(rollbackConfig(), buildContext(targets));
    assert.equal(result.ok, false);
    assert.match(result.summary, /no previous revision .* \(current revision 3\)/);
    assert.deepEqual(calls(k), [`GET ${DEPLOY_PATH}`, `GET ${RS_PATH}`]);
  });

  test('rollback dry run: the PATCH carries dryRun=All', async () => {
    const { k, targets } = await kube();
    const result = await rollbackExecutor.execute(rollbackConfig(), buildContext(targets, { dryRun: true }));
    assert.deepEqual(k.requests[2]?.query, { dryRun: 'All' });
    assert.equal(result.dryRun, true);
    assert.match(
      result.summary,
      /^would roll back deployment payments\/payment-service from revision 3 to revision 2/,
    );
  });

  test('a 403 from the API server is a failed result with the Kubernetes message', async () => {
    const { k, targets } = await kube({ forbidPatch: true });
    const result = await restartServiceExecutor.execute(restartConfig(), buildContext(targets));
    assert.equal(result.ok, false);
    assert.equal(result.details.status, 403);
    assert.equal(result.details.reason, 'Forbidden');
    assert.equal(result.details.message, FORBIDDEN_MESSAGE);
    assert.ok(result.summary.includes(`HTTP 403 ${FORBIDDEN_MESSAGE}`));
    assert.equal(calls(k).at(-1), `PATCH ${DEPLOY_PATH}`);
    const scale = await scaleExecutor.execute(scaleConfig(2, 20), buildContext(targets));
    assert.equal(scale.ok, false);
    assert.equal(k.state.replicas, 4);
  });

  test('an unknown service is refused, naming the targets key, before any request', async () => {
    const { k, targets } = await kube();
    for (const run of [
      () => restartServiceExecutor.execute(restartConfig('nope'), buildContext(targets)),
      () => scaleExecutor.execute(scaleConfig(2, 20, 'nope'), buildContext(targets)),
      () => rollbackExecutor.execute(rollbackConfig('nope'), buildContext(targets)),
    ]) {
      await assert.rejects(run(), (err) => {
        assert.ok(err instanceof ForbiddenActionError);
        assert.match(err.message, /"nope".*remediation\.platforms\.nope/);
        return true;
      });
    }
    // an unrendered placeholder never reaches the API either
    await assert.rejects(
      restartServiceExecutor.execute(
        RestartServiceConfig.parse({ service: '{{incident.service}}' }),
        buildContext(targets),
      ),
      ForbiddenActionError,
    );
    assert.deepEqual(k.requests, []);
  });

  test('the step’s signal stops a request that hangs', async () => {
    const hanging = await startStub(() => {});
    stubs.push(hanging);
    const targets = buildTargets(hanging.url, 'http://127.0.0.1:9');
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    await assert.rejects(
      rollbackExecutor.execute(rollbackConfig(), buildContext(targets, { signal: controller.signal })),
      /timed out/,
    );
    assert.ok(Date.now() - started < 2_000);
    assert.equal(hanging.requests.length, 1);
  });
});

describe('kubeconfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ai-sre-kubeconfig-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function writeKubeconfig(name: string, server: string, user: Record<string, unknown>, extra = {}): string {
    const file = join(dir, name);
    const doc = {
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'staging',
      clusters: [
        { name: 'prod-cluster', cluster: { server, ...extra } },
        { name: 'staging-cluster', cluster: { server: 'http://127.0.0.1:9' } },
      ],
      contexts: [
        { name: 'prod', context: { cluster: 'prod-cluster', user: 'bot', namespace: 'payments' } },
        { name: 'staging', context: { cluster: 'staging-cluster', user: 'bot' } },
      ],
      users: [{ name: 'bot', user }],
    };
    // JSON is YAML; the yaml package reads it like any kubeconfig
    writeFileSync(file, JSON.stringify(doc, null, 2));
    return file;
  }

  test('the named context’s server and user token are used', async () => {
    const k = await startKubernetes();
    stubs.push(k);
    const file = writeKubeconfig('token.yaml', k.url, { token: 'kubeconfig-token-xyz' });
    const targets = buildTargets(k.url, 'http://127.0.0.1:9', { kubeconfig: file, context: 'prod' });
    const result = await scaleExecutor.execute(scaleConfig(1, 20), buildContext(targets));
    assert.equal(result.ok, true);
    assert.deepEqual(
      k.requests.map((r) => r.authorization),
      ['Bearer kubeconfig-token-xyz', 'Bearer kubeconfig-token-xyz'],
    );
  });

  test('tokenFile is read relative to the kubeconfig', async () => {
    const k = await startKubernetes();
    stubs.push(k);
    writeFileSync(join(dir, 'token.txt'), 'file-token-123\n');
    const file = writeKubeconfig('tokenfile.yaml', k.url, { tokenFile: 'token.txt' });
    const targets = buildTargets(k.url, 'http://127.0.0.1:9', { kubeconfig: file, context: 'prod' });
    await restartServiceExecutor.execute(restartConfig(), buildContext(targets));
    assert.equal(k.requests[0]?.authorization, 'Bearer file-token-123');
  });

  test('auth other than a token is refused, saying only token auth is supported', async () => {
    const file = writeKubeconfig('cert.yaml', 'http://127.0.0.1:9', {
      'client-certificate-data': 'AAAA',
      'client-key-data': 'BBBB',
    });
    const targets = buildTargets('', 'http://127.0.0.1:9', { kubeconfig: file, context: 'prod' });
    await assert.rejects(restartServiceExecutor.execute(restartConfig(), buildContext(targets)), (err) => {
      assert.ok(err instanceof KubernetesConfigError);
      assert.match(err.message, /client certificate; only token auth is supported/);
      return true;
    });
    const exec = writeKubeconfig('exec.yaml', 'http://127.0.0.1:9', { exec: { command: 'aws' } });
    await assert.rejects(
      restartServiceExecutor.execute(
        restartConfig(),
        buildContext(buildTargets('', 'http://127.0.0.1:9', { kubeconfig: exec, context: 'prod' })),
      ),
      /exec credential plugin; only token auth/,
    );
  });

  test('an unknown context is an error naming it', async () => {
    const file = writeKubeconfig('ctx.yaml', 'http://127.0.0.1:9', { token: 't' });
    const targets = buildTargets('', 'http://127.0.0.1:9', { kubeconfig: file, context: 'nope' });
    await assert.rejects(
      restartServiceExecutor.execute(restartConfig(), buildContext(targets)),
      /no context "nope"/,
    );
  });

  test('https: the kubeconfig’s certificate-authority-data is the only trusted CA', async (t) => {
    let key: string;
    let cert: string;
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
          '-days',
          '1',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
        ],
        { stdio: 'ignore' },
      );
      key = readFileSync(join(dir, 'key.pem'), 'utf8');
      cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    } catch {
      t.skip('openssl is not available to make a test certificate');
      return;
    }
    const k = await startStub(
      (_req, res) => {
        sendJson(res, 200, { kind: 'Scale', spec: { replicas: 3 } });
      },
      { key, cert },
    );
    stubs.push(k);
    const trusted = writeKubeconfig(
      'tls.yaml',
      k.url,
      { token: 'tls-token' },
      { 'certificate-authority-data': Buffer.from(cert).toString('base64') },
    );
    const result = await scaleExecutor.execute(
      scaleConfig(1, 20),
      buildContext(buildTargets('', 'http://127.0.0.1:9', { kubeconfig: trusted, context: 'prod' })),
    );
    assert.equal(result.ok, true);
    assert.equal(result.summary, 'scaled payments/payment-service 3 → 4 replicas');
    assert.deepEqual(
      k.requests.map((r) => `${r.method} ${r.path} ${r.authorization}`),
      [`GET ${DEPLOY_PATH}/scale Bearer tls-token`, `PATCH ${DEPLOY_PATH}/scale Bearer tls-token`],
    );

    const untrusted = writeKubeconfig('no-ca.yaml', k.url, { token: 'tls-token' });
    await assert.rejects(
      scaleExecutor.execute(
        scaleConfig(1, 20),
        buildContext(buildTargets('', 'http://127.0.0.1:9', { kubeconfig: untrusted, context: 'prod' })),
      ),
      /certificate/,
    );
    assert.equal(k.requests.length, 2);
  });
});

describe('generic HTTP deploy API', () => {
  async function deployApi(options: { fail?: boolean } = {}) {
    const d = await startDeployApi(options);
    stubs.push(d);
    return { d, targets: buildTargets('http://127.0.0.1:9', d.url) };
  }

  function assertNoSecrets(result: unknown): void {
    const text = JSON.stringify(result);
    assert.ok(!text.includes(DEPLOY_SECRET), 'configured headers never appear in results');
    assert.ok(!text.includes(QUERY_SECRET), 'query strings never appear in results');
  }

  test('restart: one POST with the JSON body and the configured headers', async () => {
    const { d, targets } = await deployApi();
    const result = await restartServiceExecutor.execute(restartConfig('checkout'), buildContext(targets));
    assert.deepEqual(calls(d), ['POST /restart']);
    const req = d.requests[0];
    assert.deepEqual(req?.query, { key: QUERY_SECRET });
    assert.equal(req?.contentType, 'application/json');
    assert.equal(req?.authorization, `Bearer ${DEPLOY_SECRET}`);
    assert.deepEqual(req?.body, {
      service: 'checkout',
      incidentId: 42,
      strategy: 'rolling',
      maxUnavailable: 1,
    });
    assert.equal(result.ok, true);
    assert.equal(result.details.status, 202);
    assert.equal(result.output, '{"accepted":true,"job":"job-restart"}');
    assertNoSecrets(result);
  });

  test('scale: GET statusUrl, then POST the new and previous counts', async () => {
    const { d, targets } = await deployApi();
    const result = await scaleExecutor.execute(scaleConfig(2, 20, 'checkout'), buildContext(targets));
    assert.deepEqual(calls(d), ['GET /status', 'POST /scale']);
    assert.equal(d.requests[0]?.authorization, `Bearer ${DEPLOY_SECRET}`);
    assert.deepEqual(d.requests[1]?.body, { service: 'checkout', incidentId: 42, replicas: 6, previous: 4 });
    assert.equal(result.ok, true);
    assert.match(result.summary, /^scaled checkout 4 → 6 replicas/);
    assertNoSecrets(result);
  });

  test('scale at the maximum: LimitError after the GET, no POST', async () => {
    const { d, targets } = await deployApi();
    await assert.rejects(
      scaleExecutor.execute(scaleConfig(2, 4, 'checkout'), buildContext(targets)),
      (err) => err instanceof LimitError && err.limit === 'max_replicas',
    );
    assert.deepEqual(calls(d), ['GET /status']);
  });

  test('rollback: POST {service, incidentId, to: previous}', async () => {
    const { d, targets } = await deployApi();
    const result = await rollbackExecutor.execute(rollbackConfig('checkout'), buildContext(targets));
    assert.deepEqual(calls(d), ['POST /rollback']);
    assert.deepEqual(d.requests[0]?.body, { service: 'checkout', incidentId: 42, to: 'previous' });
    assert.equal(result.ok, true);
    assertNoSecrets(result);
  });

  test('dry runs send no POST; scale still reads the current count', async () => {
    const { d, targets } = await deployApi();
    const ctx = buildContext(targets, { dryRun: true });
    const restart = await restartServiceExecutor.execute(restartConfig('checkout'), ctx);
    const rollback = await rollbackExecutor.execute(rollbackConfig('checkout'), ctx);
    const scale = await scaleExecutor.execute(scaleConfig(2, 20, 'checkout'), ctx);
    assert.deepEqual(calls(d), ['GET /status']);
    for (const r of [restart, rollback, scale]) {
      assert.equal(r.ok, true);
      assert.equal(r.dryRun, true);
      assertNoSecrets(r);
    }
    assert.match(scale.summary, /^would scale checkout 4 → 6 replicas/);
    assert.deepEqual(scale.details.request, {
      service: 'checkout',
      incidentId: 42,
      replicas: 6,
      previous: 4,
    });
  });

  test('a non-2xx answer is a failed result with the body in output', async () => {
    const { targets } = await deployApi({ fail: true });
    const result = await rollbackExecutor.execute(rollbackConfig('checkout'), buildContext(targets));
    assert.equal(result.ok, false);
    assert.equal(result.details.status, 500);
    assert.match(result.summary, /rollback of checkout failed: HTTP 500/);
    assert.match(result.output ?? '', /deployer is down/);
    assertNoSecrets(result);
  });

  test('a missing URL for the action is refused, naming the key', async () => {
    const { d, targets } = await deployApi();
    await assert.rejects(
      scaleExecutor.execute(scaleConfig(2, 20, 'ledger'), buildContext(targets)),
      (err) => {
        assert.ok(err instanceof ForbiddenActionError);
        assert.match(err.message, /remediation\.platforms\.ledger\.http\.statusUrl/);
        assert.match(err.message, /remediation\.platforms\.ledger\.http\.scaleUrl/);
        return true;
      },
    );
    await assert.rejects(
      rollbackExecutor.execute(rollbackConfig('ledger'), buildContext(targets)),
      /remediation\.platforms\.ledger\.http\.rollbackUrl/,
    );
    assert.deepEqual(d.requests, []);
  });
});
