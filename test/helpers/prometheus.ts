import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Installs Debian packages whose binaries are missing (apt-get, as root, from Debian's mirror, the only registry
 * besides npm this machine reaches). Throws naming the package when it cannot.
 */
export function ensureDebianPackages(packages: { binary: string; pkg: string }[]): void {
  const missing = packages.filter((p) => !existsSync(p.binary));
  if (missing.length === 0) return;
  const names = missing.map((p) => p.pkg);
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', timeout: 300_000 });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...names], {
      stdio: 'ignore',
      timeout: 600_000,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } catch (error) {
    throw new Error(`could not install ${names.join(', ')} with apt-get: ${(error as Error).message}`);
  }
  const still = missing.filter((p) => !existsSync(p.binary));
  if (still.length > 0)
    throw new Error(`apt-get ran but ${still.map((p) => p.binary).join(', ')} is still missing`);
}

export interface RunningProcess {
  url: string;
  /** what the process printed, for a failure message */
  output(): string;
  stop(): Promise<void>;
}

/** Starts a server process and waits until `readyPath` answers 200; kills it and throws with its output otherwise. */
export async function startServer(
  binary: string,
  args: string[],
  url: string,
  readyPath: string,
  cleanup: () => Promise<void>,
): Promise<RunningProcess> {
  const child: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
    await cleanup();
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      await cleanup();
      throw new Error(`${binary} exited with ${child.exitCode}:\n${output}`);
    }
    const ok = await fetch(`${url}${readyPath}`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${binary} did not answer ${readyPath} within 30 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, output: () => output, stop };
}

/** A real Prometheus scraping `targets` every second and evaluating `ruleFile`, sending alerts to `alertmanagerUrl`. */
export async function startPrometheus(opts: {
  port: number;
  targets: string[];
  ruleFile: string;
  alertmanagerUrl: string;
}): Promise<RunningProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'ai-sre-prometheus-'));
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
    rule_files: [opts.ruleFile],
    alerting: { alertmanagers: [{ static_configs: [{ targets: [new URL(opts.alertmanagerUrl).host] }] }] },
    // honor_labels: the sandbox's own `instance` labels (its log volumes) stay as written
    scrape_configs: [
      { job_name: 'sandbox', honor_labels: true, static_configs: [{ targets: opts.targets }] },
    ],
  };
  await writeFile(join(dir, 'prometheus.yml'), JSON.stringify(config));
  const url = `http://127.0.0.1:${opts.port}`;
  return startServer(
    '/usr/bin/prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${opts.port}`,
      '--rules.alert.resend-delay=1s',
      '--web.enable-lifecycle',
    ],
    url,
    '/-/ready',
    () => rm(dir, { recursive: true, force: true }),
  );
}

/** A real Alertmanager forwarding every alert to `webhookUrl` with a bearer token, grouping by alertname and service. */
export async function startAlertmanager(opts: {
  port: number;
  webhookUrl: string;
  token: string;
}): Promise<RunningProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'ai-sre-alertmanager-'));
  const config = {
    route: {
      receiver: 'ai-sre',
      group_by: ['alertname', 'service'],
      group_wait: '1s',
      group_interval: '1s',
      repeat_interval: '1h',
    },
    receivers: [
      {
        name: 'ai-sre',
        webhook_configs: [
          {
            url: opts.webhookUrl,
            send_resolved: true,
            http_config: { authorization: { type: 'Bearer', credentials: opts.token } },
          },
        ],
      },
    ],
  };
  await writeFile(join(dir, 'alertmanager.yml'), JSON.stringify(config));
  const url = `http://127.0.0.1:${opts.port}`;
  return startServer(
    '/usr/bin/prometheus-alertmanager',
    [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${opts.port}`,
      '--cluster.listen-address=',
    ],
    url,
    '/-/ready',
    () => rm(dir, { recursive: true, force: true }),
  );
}
