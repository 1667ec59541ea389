import { listTimeline, type TimelineEvent } from '../../incidents/timeline.js';
import { APPROVE_ACTION } from '../../slack/blocks/approval-packet.js';
import { describeEvent } from '../../slack/incident-view.js';
import {
  DEMO_USERS,
  type DemoEnvironment,
  type DemoEnvironmentOptions,
  startDemoEnvironment,
} from './environment.js';
import { incidentsSince, isSettled, pendingApprovals } from './outcomes.js';

export interface DemoOptions {
  botPort?: number;
  standinPort?: number;
  sandboxBasePort?: number;
  /** `wait`: a person clicks Approve in the page (bob approves after `approveAfterMs` if nobody does); `auto`: bob approves at once */
  approve?: 'wait' | 'auto';
  approveAfterMs?: number;
  /** stop once the walkthrough is over instead of running until Ctrl-C */
  exitWhenDone?: boolean;
  warmUpMs?: number;
  /** how long the walkthrough may take; milliseconds */
  timeoutMs?: number;
  out?: (line: string) => void;
  /** more environment options (tests: their own databases and key prefix) */
  environment?: DemoEnvironmentOptions;
}

/**
 * `npm run demo`: the whole loop on this machine. Starts the sandbox, the Slack stand-in and the bot, breaks
 * payment-service with a bad deploy, and narrates from the bot's own record (Postgres) what happens: alert → incident
 * card → diagnostics → decision → approval (clicked in the page) → rollback → verification → resolved → timeline.
 * Returns whether the incident was resolved.
 */
export async function runDemo(opts: DemoOptions = {}): Promise<boolean> {
  const out = opts.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  out(
    'ai-sre demo: starting the sandbox, the Slack stand-in and the bot (Postgres and Redis on this machine)…',
  );
  const env = await startDemoEnvironment({
    botPort: opts.botPort ?? 3000,
    standinPort: opts.standinPort ?? 3100,
    sandboxBasePort: opts.sandboxBasePort ?? 4100,
    ...opts.environment,
  });
  let resolved = false;
  try {
    out('');
    out(`  Slack (stand-in):  ${env.standin.pageUrl}   ← open this in a browser`);
    out(`  the bot:           ${env.botUrl}  (/readyz, /metrics)`);
    out(`  the sandbox:       ${env.sandbox.controlUrl}  (GET /chaos lists the failures it can inject)`);
    for (const [name, s] of Object.entries(env.sandbox.services)) out(`    ${name.padEnd(16)} ${s.url}`);
    out('');
    out(
      `Normal traffic flows through api-gateway → payment-service → fraud-service for ${(opts.warmUpMs ?? 15_000) / 1000} s…`,
    );
    await sleep(opts.warmUpMs ?? 15_000);

    const since = new Date(Date.now() - 1_000);
    const started = Date.now();
    out('');
    out('Chaos: payment-service v2.0.0 is deployed, and it has a bug (35% of requests fail).');
    await env.sandbox.inject('bad-deploy');

    resolved = await narrate(env, since, started, opts, out);
    if (!resolved)
      out(
        '\nThe incident did not resolve within the walkthrough; the page and the timeline above show where it stopped.',
      );

    if (!opts.exitWhenDone) {
      out('');
      out('The demo keeps running. Things to try:');
      out(`  • in the page, type /incident list, /incident help, or @ai-sre status payment-service`);
      out(`  • break something else: curl -X POST ${env.sandbox.controlUrl}/chaos/pool-exhaustion`);
      out(
        `    (also memory-leak, disk-fill, downstream-outage, cpu-saturation, unknown-failure; DELETE to clear)`,
      );
      out(`  • npm run gameday runs every failure in turn and prints a scorecard`);
      out('Ctrl-C stops everything.');
      await untilInterrupted();
    }
  } finally {
    await env.close();
  }
  return resolved;
}

/** Prints every timeline event as it is recorded, handles the approval, and waits for payment-service to resolve. */
async function narrate(
  env: DemoEnvironment,
  since: Date,
  started: number,
  opts: DemoOptions,
  out: (line: string) => void,
): Promise<boolean> {
  const seen = new Map<number, number>();
  const announced = new Set<number>();
  const deadline = Date.now() + (opts.timeoutMs ?? 300_000);
  let approvalSince: number | null = null;
  while (Date.now() < deadline) {
    const incidents = await incidentsSince(env.db, since);
    for (const incident of incidents) {
      const events = await listTimeline(env.db, incident.id, {
        afterId: seen.get(incident.id) ?? 0,
        limit: 100,
      });
      for (const event of events) {
        out(`${clock(started)} #${incident.id} ${incident.service.padEnd(15)} ${line(event)}`);
        seen.set(incident.id, event.id);
      }
    }
    for (const a of await pendingApprovals(env.db)) {
      if (a.ts === null || a.channel === null) continue;
      if (!announced.has(a.id)) {
        announced.add(a.id);
        approvalSince = Date.now();
        out('');
        out(
          `  ▶ The bot asks for approval. Open ${env.standin.pageUrl}, find the incident in #incidents and click Approve`,
        );
        out(
          `    (you are alice, an approver in demo/safety.yml).${opts.approve === 'auto' ? ' bob approves now.' : ''}`,
        );
        out('');
      }
      const waitMs = opts.approve === 'auto' ? 0 : (opts.approveAfterMs ?? 120_000);
      if (approvalSince !== null && Date.now() - approvalSince >= waitMs) {
        approvalSince = null;
        if (waitMs > 0) out(`  Nobody clicked for ${waitMs / 1000} s: bob approves instead.`);
        await env.standin.click({
          channel: a.channel,
          ts: a.ts,
          actionId: APPROVE_ACTION,
          user: DEMO_USERS[1].id,
        });
      }
    }
    const target = incidents.find((o) => o.service === 'payment-service');
    // resolved, and the rollback's verification has finished too (the alert may clear first)
    if (target?.status === 'resolved' && isSettled(target)) {
      await sleep(1_000);
      await printTimeline(env, target.id, out);
      await printPostmortem(env, target.id, out);
      return true;
    }
    await sleep(500);
  }
  return false;
}

async function printTimeline(
  env: DemoEnvironment,
  incidentId: number,
  out: (line: string) => void,
): Promise<void> {
  const events = await listTimeline(env.db, incidentId, { afterId: 0, limit: 500 });
  out('');
  out(`Incident #${incidentId} timeline (UTC), the record a postmortem is written from:`);
  for (const e of events) out(`  ${e.at.toISOString().slice(11, 19)}  ${e.actor.padEnd(10)} ${line(e)}`);
}

/** The postmortem draft the bot wrote on resolution, as Markdown. */
async function printPostmortem(
  env: DemoEnvironment,
  incidentId: number,
  out: (line: string) => void,
): Promise<void> {
  const deadline = Date.now() + 20_000;
  let draft: { markdown: string; summary: string } | undefined;
  while (!draft && Date.now() < deadline) {
    const { rows } = await env.db.query<{ markdown: string; summary: string }>(
      'SELECT markdown, summary FROM postmortems WHERE incident_id = $1',
      [incidentId],
    );
    draft = rows[0];
    if (!draft) await sleep(250);
  }
  out('');
  if (!draft) {
    out(
      `No postmortem draft for incident #${incidentId} yet; \`ai-sre postmortem ${incidentId}\` writes one.`,
    );
    return;
  }
  out(
    `Postmortem draft, written from that timeline (also in the incident's thread as a file; \`ai-sre postmortem ${incidentId}\` exports it):`,
  );
  out('');
  for (const l of draft.markdown.split('\n')) out(`  │ ${l}`);
}

function line(event: Pick<TimelineEvent, 'type' | 'data'>): string {
  return describeEvent(event).replace(/\s+/g, ' ').slice(0, 220);
}

function clock(started: number): string {
  return `+${((Date.now() - started) / 1000).toFixed(1)}s`.padStart(7);
}

function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
