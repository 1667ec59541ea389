import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { pino } from 'pino';
import { Targets } from '../src/diagnostics/targets.js';
import { TemplateError, type TemplateVars } from '../src/diagnostics/templating.js';
import { type ActionContext, ForbiddenActionError } from '../src/remediation/executor.js';
import { HttpRequestConfig, httpRequestExecutor } from '../src/remediation/executors/http-request.js';
import { RunScriptConfig, runScriptExecutor } from '../src/remediation/executors/run-script.js';

function buildVars(
  opts: { labels?: Record<string, string>; service?: Record<string, string> } = {},
): TemplateVars {
  return {
    labels: opts.labels ?? {},
    annotations: {},
    incident: { id: '42', service: 'payment-service' },
    service: opts.service ?? {},
  };
}

/** A context whose signal aborts after `timeoutMs`, as the runner's would. */
function buildContext(targets: Targets, opts: { dryRun?: boolean; timeoutMs?: number } = {}): ActionContext {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const controller = new AbortController();
  setTimeout(() => controller.abort(), timeoutMs).unref();
  return {
    signal: controller.signal,
    timeoutMs,
    dryRun: opts.dryRun ?? false,
    targets,
    db: { query: () => Promise.reject(new Error('unused')) } as unknown as ActionContext['db'],
    incident: { id: 42, service: 'payment-service', severity: 'critical', title: 'db pool exhausted' },
    limits: { scaleStep: 3, maxReplicas: 10 },
    now: new Date(),
    log: pino({ level: 'silent' }),
  };
}

function isForbidden(pattern: RegExp) {
  return (err: unknown) => err instanceof ForbiddenActionError && pattern.test(err.message);
}

interface Received {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describe('http_request', () => {
  let server: Server;
  let base: string;
  const received: Received[] = [];
  let targets: Targets;

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        if (req.url === '/admin/fail') {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('pool resize failed: max_connections reached');
        } else if (req.url === '/admin/move') {
          res.writeHead(302, { location: '/admin/elsewhere' });
          res.end();
        } else if (req.url === '/admin/leaky') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"status":"ok","token":"tok-9f8e7d6c5b","dsn":"postgres://app:pw-4417@db:5432/pay"}');
        } else if (req.url === '/admin/slow') {
          // never answers: the step's timeout must end the request
        } else {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"ok":true}');
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    targets = Targets.parse({ remediation: { http: { allow: [`${base}/admin/`] } } });
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    received.length = 0;
  });

  const vars = () => buildVars({ service: { admin_url: base, downstream: 'ledger' } });

  function render(config: unknown, v = vars()) {
    return httpRequestExecutor.render(HttpRequestConfig.parse(config), v);
  }

  test('the runbook configs parse; GET, DELETE, method overrides and 3xx expectations are refused by the schema', () => {
    const pool = HttpRequestConfig.parse({
      method: 'POST',
      url: '{{service.admin_url}}/admin/db-pool',
      body: { increaseBy: 10, max: 50 },
    });
    assert.deepEqual(httpRequestExecutor.check?.(pool, targets), []);
    const breaker = HttpRequestConfig.parse({
      method: 'POST',
      url: '{{service.admin_url}}/admin/circuit-breakers/{{service.downstream}}/open',
      body: { ttl: '15m' },
    });
    assert.deepEqual(httpRequestExecutor.check?.(breaker, targets), []);

    const messages = (config: unknown) =>
      HttpRequestConfig.safeParse(config).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    assert.deepEqual(messages({ method: 'GET', url: `${base}/admin/x` }), [
      'method: GET changes nothing: use the http_check diagnostic',
    ]);
    assert.deepEqual(messages({ method: 'DELETE', url: `${base}/admin/x` }), [
      'method: DELETE is forbidden: a remediation never deletes (use POST, PUT or PATCH)',
    ]);
    assert.match(
      messages({
        method: 'POST',
        url: `${base}/admin/x`,
        headers: { 'X-HTTP-Method-Override': 'DELETE' },
      })?.[0] ?? '',
      /^headers: these headers may not be set: .*x-http-method-override/,
    );
    assert.deepEqual(messages({ method: 'POST', url: `${base}/admin/x`, expectStatus: [200, 302] }), [
      'expectStatus.1: redirects are not followed: a 3xx is never a success',
    ]);
    assert.deepEqual(messages({ method: 'POST', url: `${base}/admin/x`, extra: 1 })?.length, 1);
  });

  test('sends exactly the rendered request: method, path, JSON body and headers; headers never echoed', async () => {
    const vars = buildVars({ labels: { alertname: 'Pool"Exhausted' }, service: { admin_url: base } });
    const rendered = render(
      {
        method: 'POST',
        url: '{{service.admin_url}}/admin/db-pool',
        body: { increaseBy: 10, max: 50, reason: 'incident {{incident.id}}: "{{labels.alertname}}"' },
        headers: { Authorization: 'Bearer tok-header-5566778899', 'X-Team': 'team-header-value-77' },
      },
      vars,
    );
    assert.equal(rendered.url, `${base}/admin/db-pool`);
    const result = await httpRequestExecutor.execute(rendered, buildContext(targets));

    assert.equal(received.length, 1);
    const req = received[0] as Received;
    assert.equal(req.method, 'POST');
    assert.equal(req.url, '/admin/db-pool');
    assert.deepEqual(JSON.parse(req.body), {
      increaseBy: 10,
      max: 50,
      reason: 'incident 42: "Pool"Exhausted"',
    });
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers.authorization, 'Bearer tok-header-5566778899');
    assert.equal(req.headers['x-team'], 'team-header-value-77');

    assert.equal(result.ok, true);
    assert.equal(result.dryRun, false);
    assert.equal(result.summary, `POST 127.0.0.1:${new URL(base).port}/admin/db-pool → 200`);
    assert.equal(result.details.status, 200);
    assert.equal(result.output, '{"ok":true}');
    const shown = JSON.stringify(result);
    assert.ok(!shown.includes('tok-header-5566778899'), 'the authorization header is not in the result');
    assert.ok(!shown.includes('team-header-value-77'), 'no header value is in the result');
  });

  test('a label value with /../ or ? stays inside its path segment; "..", a label host and a label base are refused', async () => {
    const config = {
      method: 'POST',
      url: '{{service.admin_url}}/admin/circuit-breakers/{{labels.downstream}}/open',
      body: { ttl: '15m' },
    };
    const rendered = render(
      config,
      buildVars({ labels: { downstream: '../../secret?x=1#y' }, service: { admin_url: base } }),
    );
    assert.equal(rendered.url, `${base}/admin/circuit-breakers/..%2F..%2Fsecret%3Fx%3D1%23y/open`);
    const result = await httpRequestExecutor.execute(rendered, buildContext(targets));
    assert.equal(result.ok, true);
    assert.deepEqual(
      received.map((r) => [r.method, r.url]),
      [['POST', '/admin/circuit-breakers/..%2F..%2Fsecret%3Fx%3D1%23y/open']],
    );

    assert.throws(
      () => render(config, buildVars({ labels: { downstream: '..' }, service: { admin_url: base } })),
      (err: Error) =>
        err instanceof TemplateError &&
        /\{\{labels.downstream\}\} is "..", which would move the URL up/.test(err.message),
    );
    assert.throws(
      () => render({ method: 'POST', url: '{{labels.base}}/admin/x' }, buildVars({ labels: { base } })),
      /only a \{\{service\.\*\}\} value may begin the URL, not \{\{labels.base\}\}/,
    );
    assert.throws(
      () =>
        render(
          { method: 'POST', url: '{{service.admin_url}}/admin/x' },
          buildVars({ service: { admin_url: 'ftp://x' } }),
        ),
      /\{\{service.admin_url\}\} is "ftp:\/\/x" is not an http or https URL/,
    );
    const check = (url: string) =>
      httpRequestExecutor.check?.(HttpRequestConfig.parse({ method: 'POST', url }), targets) ?? [];
    assert.deepEqual(check('{{labels.base}}/admin/x'), [
      {
        path: ['url'],
        message:
          'only a {{service.*}} value (from the targets file) may begin the URL, not {{labels.base}}: alert values must not choose the host',
      },
    ]);
    assert.match(
      check('http://{{labels.host}}/admin/x')[0]?.message ?? '',
      /placeholders may only follow the host/,
    );
    assert.equal(received.length, 1, 'nothing else was sent');
  });

  test('a URL outside remediation.http.allow, or escaping a prefix with .., is refused and never sent', async () => {
    const check = (url: string, t = targets) =>
      httpRequestExecutor.check?.(HttpRequestConfig.parse({ method: 'POST', url }), t) ?? [];
    assert.deepEqual(check(`${base}/internal/reset`), [
      {
        path: ['url'],
        message: `${base}/internal/reset is not under a prefix of the targets file's remediation.http.allow (allowed: ${base}/admin/)`,
      },
    ]);
    assert.match(
      check(`${base}/admin/../internal/reset`)[0]?.message ?? '',
      /^http:\/\/127\.0\.0\.1:\d+\/internal\/reset is not under/,
    );
    assert.match(check(`${base}/admin/%2e%2e/internal`)[0]?.message ?? '', /is not under a prefix/);
    assert.match(check(`${base}/administrator/x`)[0]?.message ?? '', /is not under a prefix/);
    assert.deepEqual(check(`${base}/admin/./pools/../db-pool`), [], 'normalised, it stays under the prefix');
    assert.deepEqual(check('{{service.admin_url}}/admin/x', Targets.parse({})), [
      { path: ['url'], message: "the targets file's remediation.http.allow is empty: no URL may be called" },
    ]);

    for (const url of [
      `${base}/internal/reset`,
      `${base}/admin/../internal/reset`,
      `${base}/admin/%2E%2E/internal`,
    ]) {
      await assert.rejects(
        httpRequestExecutor.execute(
          HttpRequestConfig.parse({ method: 'POST', url, body: { go: true } }),
          buildContext(targets),
        ),
        isForbidden(
          /^http_request refused: url: .* is not under a prefix of the targets file's remediation\.http\.allow/,
        ),
      );
    }
    // a rendered leading value pointing elsewhere is caught at execution, where the URL is known
    const elsewhere = render(
      { method: 'POST', url: '{{service.admin_url}}/admin/db-pool' },
      buildVars({ service: { admin_url: `${base}/other` } }),
    );
    await assert.rejects(
      httpRequestExecutor.execute(elsewhere, buildContext(targets)),
      isForbidden(/remediation\.http\.allow/),
    );
    // a config that never went through the schema is re-parsed at execution
    await assert.rejects(
      httpRequestExecutor.execute(
        { method: 'DELETE', url: `${base}/admin/db-pool` } as unknown as HttpRequestConfig,
        buildContext(targets),
      ),
      isForbidden(/^http_request refused: method: DELETE is forbidden/),
    );
    assert.deepEqual(received, [], 'no request reached the server');
  });

  test('a 500 is a failed result with the body excerpt; a 302 is not followed and fails', async () => {
    const failed = await httpRequestExecutor.execute(
      HttpRequestConfig.parse({ method: 'PUT', url: `${base}/admin/fail`, body: { max: 50 } }),
      buildContext(targets),
    );
    assert.equal(failed.ok, false);
    assert.equal(failed.details.status, 500);
    assert.equal(failed.output, 'pool resize failed: max_connections reached');
    assert.match(failed.summary, /^PUT 127\.0\.0\.1:\d+\/admin\/fail answered 500, expected 2xx$/);

    received.length = 0;
    const moved = await httpRequestExecutor.execute(
      HttpRequestConfig.parse({ method: 'POST', url: `${base}/admin/move` }),
      buildContext(targets),
    );
    assert.equal(moved.ok, false);
    assert.equal(moved.details.status, 302);
    assert.equal(moved.details.location, '/admin/elsewhere');
    assert.match(
      moved.summary,
      /answered 302 \(redirect to \/admin\/elsewhere not followed\), expected 2xx$/,
    );
    assert.deepEqual(
      received.map((r) => r.url),
      ['/admin/move'],
      'the redirect target was never requested',
    );

    received.length = 0;
    const accepted = await httpRequestExecutor.execute(
      HttpRequestConfig.parse({ method: 'PATCH', url: `${base}/admin/fail`, expectStatus: [500] }),
      buildContext(targets),
    );
    assert.equal(accepted.ok, true, 'expectStatus decides what counts');
    assert.equal(received[0]?.method, 'PATCH');
  });

  test('secrets in the response body are masked in the output', async () => {
    const result = await httpRequestExecutor.execute(
      HttpRequestConfig.parse({ method: 'POST', url: `${base}/admin/leaky` }),
      buildContext(targets),
    );
    assert.equal(result.ok, true);
    assert.equal(result.output, '{"status":"ok","token":"***","dsn":"postgres://app:***@db:5432/pay"}');
    assert.ok(!JSON.stringify(result).includes('tok-9f8e7d6c5b'));
    assert.ok(!JSON.stringify(result).includes('pw-4417'));
  });

  test('a dry run sends nothing and says what would be sent', async () => {
    const rendered = render({
      method: 'POST',
      url: '{{service.admin_url}}/admin/db-pool',
      body: { increaseBy: 10, max: 50 },
      headers: { Authorization: 'Bearer tok-dry-1234567890' },
    });
    const result = await httpRequestExecutor.execute(rendered, buildContext(targets, { dryRun: true }));
    assert.deepEqual(received, []);
    assert.equal(result.ok, true);
    assert.equal(result.dryRun, true);
    assert.equal(result.summary, `would POST ${base}/admin/db-pool with {"increaseBy":10,"max":50}`);
    assert.ok(!JSON.stringify(result).includes('tok-dry-1234567890'));
    // a dry run is still refused when the real run would be
    await assert.rejects(
      httpRequestExecutor.execute(
        HttpRequestConfig.parse({ method: 'POST', url: `${base}/internal` }),
        buildContext(targets, { dryRun: true }),
      ),
      isForbidden(/remediation\.http\.allow/),
    );
  });

  test('the step timeout ends a request that gets no answer', async () => {
    const started = performance.now();
    await assert.rejects(
      httpRequestExecutor.execute(
        HttpRequestConfig.parse({ method: 'POST', url: `${base}/admin/slow` }),
        buildContext(targets, { timeoutMs: 300 }),
      ),
      /^Error: http_request: POST 127\.0\.0\.1:\d+\/admin\/slow timed out after 300 ms; the service may still have acted$/,
    );
    const ms = performance.now() - started;
    assert.ok(ms >= 250 && ms < 2_000, `took ${ms} ms`);
    assert.equal(received.length, 1);
  });

  test('describe names the origin and path, the service behind it and a manual rollback', () => {
    const description = httpRequestExecutor.describe(
      render({
        method: 'POST',
        url: '{{service.admin_url}}/admin/circuit-breakers/{{service.downstream}}/open?ttl=15m',
      }),
      targets,
      { id: 42, service: 'payment-service', severity: 'critical', title: 't' },
    );
    assert.deepEqual(description, {
      target: `http:${base}/admin/circuit-breakers/ledger/open`,
      blastRadius: `the service behind ${base}`,
      rollback: 'call the opposite endpoint by hand (e.g. close the breaker)',
    });
  });
});

describe('run_script', () => {
  let dir: string;
  let fakebin: string;
  let script: string;
  let marker: string;
  let targets: Targets;
  const PATH_TAIL = '/usr/bin:/bin';
  /** a unique sleep argument, to find the script's child in /proc */
  const SLEEP_MARK = '31.4159';

  /** A script that records its environment and arguments in the marker file, so a test can tell it ran. */
  function recorder(markerFile: string): string {
    return [
      '#!/bin/sh',
      `{ echo "HOME=\${HOME-unset}"; echo "PATH=$PATH"; echo "SECRET=\${AI_SRE_TEST_SECRET-unset}"; for a in "$@"; do echo "arg=$a"; done; } > '${markerFile}'`,
      'case "$1" in',
      '  fail) echo "rotation failed: disk full" >&2; exit 3 ;;',
      `  hang) sleep ${SLEEP_MARK} ;;`,
      'esac',
      'echo "rotated 3 files"',
      '',
    ].join('\n');
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ai-sre-run-script-'));
    fakebin = join(dir, 'bin');
    await mkdir(fakebin);
    marker = join(dir, 'marker');
    script = join(dir, 'rotate-logs');
    await writeFile(script, recorder(marker));
    await chmod(script, 0o755);
    // stand-ins for destructive tools: if a refusal ever failed, the marker would show they ran
    for (const name of ['rm', 'dd', 'psql', 'redis-cli', 'kubectl', 'bash']) {
      await writeFile(join(fakebin, name), recorder(marker));
      await chmod(join(fakebin, name), 0o755);
    }
    await symlink(join(fakebin, 'rm'), join(fakebin, 'tidy-up'));
    targets = Targets.parse({
      // the diagnostics allowlist does not count for remediations
      shell: { allow: ['touch'] },
      remediation: {
        scripts: {
          allow: [script, 'rm', 'dd', 'psql', 'redis-cli', 'kubectl', 'bash', 'tidy-up'],
          path: `${fakebin}:${PATH_TAIL}`,
          maxOutputBytes: 4_096,
        },
      },
    });
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await rm(marker, { force: true });
  });

  const check = (argv: string[], t?: Targets) =>
    runScriptExecutor.check?.(RunScriptConfig.parse({ argv }), t ?? targets) ?? [];

  test('the runbook configs are valid against a deployment that allows their binaries', () => {
    const t = Targets.parse({ remediation: { scripts: { allow: ['logrotate', 'systemd-tmpfiles'] } } });
    assert.deepEqual(check(['logrotate', '--force', '/etc/logrotate.conf'], t), []);
    assert.deepEqual(check(['systemd-tmpfiles', '--clean'], t), []);
    assert.match(
      check(['logrotate', '--force'], Targets.parse({ shell: { allow: ['logrotate'] } }))[0]?.message ?? '',
      /^"logrotate".* is not in the targets file's remediation\.scripts\.allow \(allowed: nothing\)$/,
    );
  });

  test('runs the script with only PATH and LANG, its arguments one by one; exit 0 is ok', async () => {
    const rendered = runScriptExecutor.render(
      RunScriptConfig.parse({ argv: [script, '--force', '{{labels.conf}}'] }),
      buildVars({ labels: { conf: '/etc/logrotate.d/pay ments' } }),
    );
    process.env.AI_SRE_TEST_SECRET = 'hunter2-do-not-leak';
    let result: Awaited<ReturnType<typeof runScriptExecutor.execute>>;
    try {
      result = await runScriptExecutor.execute(rendered, buildContext(targets));
    } finally {
      delete process.env.AI_SRE_TEST_SECRET;
    }
    assert.equal(
      await readFile(marker, 'utf8'),
      [
        'HOME=unset',
        `PATH=${fakebin}:${PATH_TAIL}`,
        'SECRET=unset',
        'arg=--force',
        'arg=/etc/logrotate.d/pay ments',
        '',
      ].join('\n'),
    );
    assert.equal(result.ok, true);
    assert.equal(result.summary, `ran ${script} --force "/etc/logrotate.d/pay ments": exited 0`);
    assert.equal(result.output, 'rotated 3 files\n');
    assert.equal(result.details.exitCode, 0);
  });

  test('a non-zero exit is a failed result with the exit code and stderr', async () => {
    const result = await runScriptExecutor.execute(
      RunScriptConfig.parse({ argv: [script, 'fail'] }),
      buildContext(targets),
    );
    assert.ok(existsSync(marker), 'it ran');
    assert.equal(result.ok, false);
    assert.equal(result.details.exitCode, 3);
    assert.equal(result.details.stderr, 'rotation failed: disk full\n');
    assert.equal(result.summary, 'rotate-logs exited 3: rotation failed: disk full');
  });

  test('the timeout kills the script and what it started', async () => {
    const started = performance.now();
    await assert.rejects(
      runScriptExecutor.execute(
        RunScriptConfig.parse({ argv: [script, 'hang'] }),
        buildContext(targets, { timeoutMs: 300 }),
      ),
      /^Error: run_script: .*rotate-logs hang timed out after 300 ms; killed with everything it started$/,
    );
    const ms = performance.now() - started;
    assert.ok(ms >= 250 && ms < 1_500, `took ${ms} ms`);
    assert.ok(existsSync(marker), 'it had started');
    await new Promise((r) => setTimeout(r, 200));
    const alive: string[] = [];
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.includes(SLEEP_MARK) || cmdline.includes(`${script}\0hang`)) alive.push(pid);
    }
    assert.deepEqual(alive, [], 'the script and its sleep are gone');
  });

  test('a binary outside remediation.scripts.allow is refused, even when the diagnostics allow it', async () => {
    assert.deepEqual(check(['touch', marker]), [
      {
        path: ['argv', 0],
        message: `"touch" (${['/usr/bin/touch', '/bin/touch'].find(existsSync)}) is not in the targets file's remediation.scripts.allow (allowed: ${[script, 'rm', 'dd', 'psql', 'redis-cli', 'kubectl', 'bash', 'tidy-up'].join(', ')})`,
      },
    ]);
    await assert.rejects(
      runScriptExecutor.execute(RunScriptConfig.parse({ argv: ['touch', marker] }), buildContext(targets)),
      isForbidden(
        /^run_script refused: argv\.0: "touch" .* is not in the targets file's remediation\.scripts\.allow/,
      ),
    );
    assert.equal(existsSync(marker), false);
  });

  test('destructive shapes are refused at check and at execution whatever the allowlist says; nothing runs', async () => {
    const cases: [string[], RegExp][] = [
      [['rm', '-rf', '/'], /^rm deletes files \(data deletion\); refused even when allowlisted$/],
      [['tidy-up', '-rf', '/'], /^tidy-up is .*\/bin\/rm: rm deletes files \(data deletion\)/],
      [['dd', 'if=/dev/zero', 'of=/dev/sda'], /^dd writes raw bytes over files and devices/],
      [['psql', '-c', 'DROP TABLE x'], /^psql runs free-form queries/],
      [['redis-cli', 'FLUSHALL'], /^redis-cli sends any command to Redis, FLUSHALL included/],
      [['kubectl', 'delete', 'pod', 'x'], /^kubectl delete removes cluster objects \(data deletion\)/],
      [['bash', '-c', 'logrotate'], /^bash is a shell: it would run its arguments as shell code/],
      [[script, ' flushdb '], /^FLUSHDB empties a Redis database \(unbounded flush\)/],
      [[script, '--query=drop \n  table users'], /^contains SQL that drops a table, database or schema/],
      [[script, 'TRUNCATE sessions'], /^contains SQL that truncates a table/],
      [[script, 'Delete   From users'], /^contains SQL that deletes rows/],
    ];
    for (const [argv, reason] of cases) {
      const problems = check(argv);
      assert.ok(
        problems.some((p) => reason.test(p.message)),
        `${argv.join(' ')}: ${JSON.stringify(problems)}`,
      );
      await assert.rejects(
        runScriptExecutor.execute(RunScriptConfig.parse({ argv }), buildContext(targets)),
        (err: unknown) =>
          err instanceof ForbiddenActionError &&
          err.message.startsWith('run_script refused: ') &&
          problems.every((p) => err.message.includes(p.message)),
      );
      await assert.rejects(
        runScriptExecutor.execute(RunScriptConfig.parse({ argv }), buildContext(targets, { dryRun: true })),
        ForbiddenActionError,
      );
      assert.equal(existsSync(marker), false, `${argv.join(' ')} ran`);
    }
    // the SQL and FLUSH checks reach values the incident filled in
    const rendered = runScriptExecutor.render(
      RunScriptConfig.parse({ argv: [script, '{{labels.cmd}}'] }),
      buildVars({ labels: { cmd: 'FLUSHALL' } }),
    );
    await assert.rejects(
      runScriptExecutor.execute(rendered, buildContext(targets)),
      isForbidden(/FLUSHALL empties/),
    );
    assert.equal(existsSync(marker), false);
  });

  test('placeholders: never in argv[0], option-like values refused; shell syntax is reported', () => {
    assert.throws(
      () =>
        runScriptExecutor.render(
          RunScriptConfig.parse({ argv: ['{{labels.bin}}'] }),
          buildVars({ labels: { bin: 'rm' } }),
        ),
      (err: Error) =>
        err instanceof TemplateError &&
        /argv\[0\] \(the binary\) may not contain placeholders/.test(err.message),
    );
    assert.throws(
      () =>
        runScriptExecutor.render(
          RunScriptConfig.parse({ argv: [script, '{{labels.path}}'] }),
          buildVars({ labels: { path: '-rf' } }),
        ),
      /\{\{labels.path\}\} starts with "-" and would be read as an option/,
    );
    assert.deepEqual(check(['{{labels.bin}}']), [
      {
        path: ['argv', 0],
        message:
          'argv[0] is the binary and may not contain placeholders: the incident must not choose what runs',
      },
    ]);
    assert.deepEqual(
      check([script, 'a && b', 'ok', '$(id)']).map((p) => p.path),
      [
        ['argv', 1],
        ['argv', 3],
      ],
    );
  });

  test('a dry run runs nothing and says what would run; describe names the binary', async () => {
    const result = await runScriptExecutor.execute(
      RunScriptConfig.parse({ argv: [script, '--force', '/etc/logrotate.conf'] }),
      buildContext(targets, { dryRun: true }),
    );
    assert.equal(existsSync(marker), false);
    assert.equal(result.ok, true);
    assert.equal(result.dryRun, true);
    assert.equal(result.summary, `would run: ${script} --force /etc/logrotate.conf`);
    assert.deepEqual(
      runScriptExecutor.describe(RunScriptConfig.parse({ argv: ['logrotate', '--force'] }), targets, {
        id: 42,
        service: 'payment-service',
        severity: 'critical',
        title: 't',
      }),
      {
        target: 'script:logrotate',
        blastRadius: "whatever logrotate changes on the bot's host",
        rollback: 'none automatic',
      },
    );
  });
});
