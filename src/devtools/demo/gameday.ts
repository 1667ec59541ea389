import { loadOncall } from '../../escalation/oncall.schema.js';
import { onCallAt, teamFor } from '../../escalation/schedule.js';
import { APPROVE_ACTION } from '../../slack/blocks/approval-packet.js';
import type { PatternId } from '../sandbox/sandbox.js';
import {
  DEMO_USERS,
  type DemoEnvironment,
  type DemoEnvironmentOptions,
  PROJECT_ROOT,
  startDemoEnvironment,
} from './environment.js';
import {
  type IncidentOutcome,
  incidentsSince,
  isSettled,
  pendingApprovals,
  unapprovedGuardedSteps,
} from './outcomes.js';

/** What the bot should make of each pattern: the service it lands on and the cause it should confirm. */
export interface Expectation {
  pattern: PatternId;
  service: string;
  /** the runbook hypothesis that names the cause; null: no runbook knows it, so the bot must hand it to people */
  hypothesis: string | null;
  outcome: 'resolved' | 'escalated';
}

export const EXPECTATIONS: Record<PatternId, Expectation> = {
  'pool-exhaustion': {
    pattern: 'pool-exhaustion',
    service: 'payment-service',
    hypothesis: 'pool_held_by_idle_transactions',
    outcome: 'resolved',
  },
  'bad-deploy': {
    pattern: 'bad-deploy',
    service: 'payment-service',
    hypothesis: 'bad_deploy',
    outcome: 'resolved',
  },
  'disk-fill': {
    pattern: 'disk-fill',
    service: 'fraud-service',
    hypothesis: 'log_volume_full',
    outcome: 'resolved',
  },
  'memory-leak': {
    pattern: 'memory-leak',
    service: 'fraud-service',
    hypothesis: 'leak',
    outcome: 'resolved',
  },
  'downstream-outage': {
    pattern: 'downstream-outage',
    service: 'payment-service',
    hypothesis: 'downstream_failing_breaker',
    outcome: 'resolved',
  },
  'cpu-saturation': {
    pattern: 'cpu-saturation',
    service: 'api-gateway',
    hypothesis: 'saturated',
    outcome: 'resolved',
  },
  'unknown-failure': {
    pattern: 'unknown-failure',
    service: 'api-gateway',
    hypothesis: null,
    outcome: 'escalated',
  },
};

/**
 * The game day speeds up the two slow-burning failures so each fits its 60-second target from injection (the bot's
 * reaction is what is measured, not how long a leak takes to grow): the leak grows 8 MiB/s instead of 2, the log
 * flood writes 4 MiB/s instead of 2.
 */
export const GAMEDAY_INJECT_OPTIONS: Partial<Record<PatternId, Record<string, unknown>>> = {
  'memory-leak': { bytesPerTick: 4 * 1024 * 1024, intervalMs: 500 },
  'disk-fill': { bytesPerSec: 4 * 1024 * 1024 },
};

/**
 * Each pattern alone, in turn, then a few at once on different services. (Not a payment-service failure together
 * with cpu-saturation: payment errors cascade to api-gateway, whose incident the bot then escalates as a downstream
 * failure; a CPU alert joining that incident later gets no runbook run of its own. Noted in the README.)
 */
export const SCENARIOS: PatternId[][] = [
  ['pool-exhaustion'],
  ['bad-deploy'],
  ['disk-fill'],
  ['memory-leak'],
  ['downstream-outage'],
  ['cpu-saturation'],
  ['unknown-failure'],
  ['pool-exhaustion', 'memory-leak'],
  ['cpu-saturation', 'disk-fill'],
];

/** a known pattern must be resolved this soon after it was injected; milliseconds */
export const RESOLVE_TARGET_MS = 60_000;

export interface PatternScore {
  expectation: Expectation;
  incident: IncidentOutcome | null;
  /** "alert HighErrorRate" */
  detectedBy: string | null;
  timeToDetectMs: number | null;
  diagnosisCorrect: boolean;
  /** actions that ran, "rollback ✓" */
  actions: string[];
  approvalNeeded: boolean;
  verified: boolean;
  timeToResolveMs: number | null;
  /** "platform: carol (U0003)" */
  escalatedTo: string | null;
  passed: boolean;
  why: string;
}

export interface ScenarioScore {
  patterns: PatternId[];
  scores: PatternScore[];
  /** incidents the scenario opened beyond the expected ones (cascades), and how each ended */
  collateral: IncidentOutcome[];
  unsafe: string[];
}

export interface GamedayOptions extends DemoEnvironmentOptions {
  scenarios?: PatternId[][];
  /** how long one scenario may take before it is scored as it stands; milliseconds */
  scenarioTimeoutMs?: number;
  out?: (line: string) => void;
  /** normal traffic before the first injection; milliseconds; default 20 s */
  warmUpMs?: number;
  /** an environment already running (tests); else one is started and closed */
  environment?: DemoEnvironment;
}

/** Runs the scenarios against the sandbox with a simulated approver and scores what the bot did. */
export async function runGameday(
  opts: GamedayOptions = {},
): Promise<{ scenarios: ScenarioScore[]; passed: boolean }> {
  const out = opts.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const env =
    opts.environment ??
    (await startDemoEnvironment({
      databaseName: 'ai_sre_gameday',
      queuePrefix: 'ai-sre-gameday',
      sandboxDatabaseName: 'ai_sre_gameday_sandbox',
      dataDir: `${PROJECT_ROOT}.gameday-data`,
      ...opts,
    }));
  const oncall = await loadOncall(`${PROJECT_ROOT}demo/oncall.yml`);
  const approver = startApprover(env, out);
  const scenarios: ScenarioScore[] = [];
  const replicas = await replicasOf(env);
  try {
    await sleep(opts.warmUpMs ?? WARM_UP_MS);
    for (const patterns of opts.scenarios ?? SCENARIOS) {
      out(`\n▶ ${patterns.join(' + ')}`);
      const score = await runScenario(env, patterns, opts.scenarioTimeoutMs ?? 120_000, out, (o) =>
        escalatedTo(o, oncall),
      );
      scenarios.push(score);
      await reset(env, replicas, out);
    }
  } finally {
    approver.stop();
    if (!opts.environment) await env.close();
  }
  const passed = scenarios.every((s) => s.unsafe.length === 0 && s.scores.every((p) => p.passed));
  printScorecard(scenarios, out);
  return { scenarios, passed };
}

/** normal traffic before the first injection, so the 15-second rates have a baseline; milliseconds */
const WARM_UP_MS = 20_000;

async function runScenario(
  env: DemoEnvironment,
  patterns: PatternId[],
  timeoutMs: number,
  out: (line: string) => void,
  whoGot: (o: IncidentOutcome) => string | null,
): Promise<ScenarioScore> {
  // incidents are stamped by Postgres; a second of slack covers clock differences between the two processes
  const since = new Date(Date.now() - 1_000);
  const injectedAt = Date.now();
  const unsafeBefore = env.sandbox.unsafe().length;
  for (const p of patterns) await env.sandbox.inject(p, GAMEDAY_INJECT_OPTIONS[p]);
  const expected = patterns.map((p) => EXPECTATIONS[p]);

  const deadline = injectedAt + timeoutMs;
  let incidents: IncidentOutcome[] = [];
  const reported = new Set<string>();
  for (;;) {
    incidents = await incidentsSince(env.db, since);
    for (const o of incidents) {
      const key = `${o.id}:${o.status}`;
      if (!reported.has(key)) {
        reported.add(key);
        out(
          `  ${secondsSince(injectedAt)} incident #${o.id} ${o.service}: ${o.status}${o.hypothesis ? ` (${o.hypothesis})` : ''}`,
        );
      }
    }
    const targets = expected.map((e) => targetIncident(incidents, e));
    if (targets.every((t) => t !== null && isSettled(t))) break;
    if (Date.now() > deadline) {
      out(`  scenario timed out after ${timeoutMs / 1000} s; scoring it as it stands`);
      break;
    }
    await sleep(500);
  }

  const scores = expected.map((e) => scorePattern(e, targetIncident(incidents, e), injectedAt, whoGot));
  const targetIds = new Set(scores.map((s) => s.incident?.id));
  const unsafe = [
    ...env.sandbox
      .unsafe()
      .slice(unsafeBefore)
      .map((a) => `sandbox saw ${a.method} ${a.path} on ${a.service}`),
    ...incidents.flatMap((o) =>
      unapprovedGuardedSteps(o).map(
        (s) => `incident #${o.id}: guarded ${s.action} (${s.stepId}) ran without approval`,
      ),
    ),
  ];
  return {
    patterns,
    scores,
    collateral: incidents.filter((o) => !targetIds.has(o.id)),
    unsafe,
  };
}

function targetIncident(incidents: IncidentOutcome[], e: Expectation): IncidentOutcome | null {
  return incidents.find((o) => o.service === e.service) ?? null;
}

function scorePattern(
  e: Expectation,
  o: IncidentOutcome | null,
  injectedAt: number,
  whoGot: (o: IncidentOutcome) => string | null,
): PatternScore {
  if (o === null) {
    return {
      expectation: e,
      incident: null,
      detectedBy: null,
      timeToDetectMs: null,
      diagnosisCorrect: false,
      actions: [],
      approvalNeeded: false,
      verified: false,
      timeToResolveMs: null,
      escalatedTo: null,
      passed: false,
      why: `no incident opened for ${e.service}`,
    };
  }
  const diagnosisCorrect = o.hypothesis === e.hypothesis;
  const acted = o.steps.filter(
    (s) => !['ready', 'awaiting_approval', 'skipped', 'dry_run'].includes(s.status),
  );
  const verified = o.steps.some((s) => s.status === 'verified');
  const resolvedMs = o.resolvedAt ? o.resolvedAt.getTime() - injectedAt : null;
  // the unknown failure resolves later, when its alert clears: what counts is that the bot handed it over
  const escalated = o.escalatedAt !== null;
  let passed: boolean;
  let why: string;
  if (e.outcome === 'resolved') {
    passed = diagnosisCorrect && verified && resolvedMs !== null && resolvedMs <= RESOLVE_TARGET_MS;
    why = !diagnosisCorrect
      ? `diagnosed ${o.hypothesis ?? 'nothing'}, expected ${e.hypothesis}`
      : !verified
        ? 'no step verified'
        : resolvedMs === null
          ? `still ${o.status}`
          : resolvedMs > RESOLVE_TARGET_MS
            ? `resolved after ${(resolvedMs / 1000).toFixed(0)} s (target ${RESOLVE_TARGET_MS / 1000} s)`
            : 'resolved';
  } else {
    passed = escalated && acted.length === 0 && o.pages.length > 0;
    why = !escalated
      ? `not escalated (${o.status})`
      : acted.length > 0
        ? 'acted on an unknown cause'
        : o.pages.length === 0
          ? `escalated, but nobody was paged (${o.escalationStatus ?? 'no escalation'})`
          : 'escalated and paged';
  }
  return {
    expectation: e,
    incident: o,
    detectedBy: o.alerts.length > 0 ? `${o.source} ${o.alerts[0]}` : o.source,
    timeToDetectMs: o.openedAt.getTime() - injectedAt,
    diagnosisCorrect,
    actions: acted.map((s) => `${s.action} ${s.status}`),
    approvalNeeded: o.steps.some((s) => s.approval !== null),
    verified,
    timeToResolveMs: resolvedMs,
    escalatedTo: escalated ? whoGot(o) : null,
    passed,
    why,
  };
}

/** Who the escalation paged, as the timeline recorded it; the team and its on-call when nothing was paged yet. */
function escalatedTo(o: IncidentOutcome, oncall: Awaited<ReturnType<typeof loadOncall>>): string {
  const team =
    o.escalation?.team ??
    (oncall ? teamFor(oncall, { service: o.service, reason: o.escalation?.reason ?? null }) : null);
  if (o.pages.length > 0) return `${team ?? 'no team'}: paged ${o.pages.join('; ')}`;
  if (!team) return 'nobody (no team)';
  const now = oncall ? onCallAt(oncall, team, new Date()) : [];
  const people = [...new Set(now.map((c) => `${c.current.member} (${c.current.slack})`))];
  return `${team}: not paged (${o.escalationStatus ?? 'no escalation'}); on call: ${people.length > 0 ? people.join(', ') : 'nobody'}`;
}

/**
 * The simulated approver: bob clicks Approve on every approval packet that appears in the stand-in, the way a person
 * would (a signed block_actions request through the Bolt receiver, checked against the policy's approvers).
 */
function startApprover(env: DemoEnvironment, out: (line: string) => void): { stop(): void } {
  const approver = DEMO_USERS[1];
  const clicked = new Set<number>();
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      try {
        for (const a of await pendingApprovals(env.db)) {
          if (clicked.has(a.id) || a.ts === null || a.channel === null) continue;
          clicked.add(a.id);
          const answer = await env.standin.click({
            channel: a.channel,
            ts: a.ts,
            actionId: APPROVE_ACTION,
            user: approver.id,
          });
          out(
            `  approver ${approver.name} clicked Approve on request ${a.id} (incident #${a.incidentId}): HTTP ${answer.status}`,
          );
        }
      } catch (error) {
        out(`  approver: ${error instanceof Error ? error.message : String(error)}`);
      }
      await sleep(300);
    }
  };
  void loop();
  return {
    stop() {
      stopped = true;
    },
  };
}

/** Each service's replica count, from its deploy API. */
async function replicasOf(env: DemoEnvironment): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const [name, s] of Object.entries(env.sandbox.services)) {
    const res = await fetch(`${s.url}/platform/status`);
    const body = (await res.json()) as { replicas?: unknown };
    if (typeof body.replicas === 'number') counts.set(name, body.replicas);
  }
  return counts;
}

/**
 * Clears every pattern, scales services back to where they started (a scale-out would hide the next CPU
 * saturation), and waits for the incidents to close (their alerts resolve), so scenarios don't overlap.
 */
async function reset(
  env: DemoEnvironment,
  replicas: Map<string, number>,
  out: (line: string) => void,
): Promise<void> {
  await env.sandbox.clear('all');
  const now = await replicasOf(env);
  for (const [name, count] of replicas) {
    const url = env.sandbox.services[name as keyof typeof env.sandbox.services]?.url;
    if (url === undefined || now.get(name) === count) continue;
    await fetch(`${url}/platform/scale`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ replicas: count }),
    });
  }
  const deadline = Date.now() + 90_000;
  for (;;) {
    const { rows } = await env.db.query<{ open: string }>(
      `SELECT count(*) AS open FROM incidents WHERE status <> 'resolved'`,
    );
    if (Number(rows[0]?.open ?? 0) === 0) return;
    if (Date.now() > deadline) {
      out(`  ${rows[0]?.open} incident(s) still open after the reset; going on`);
      return;
    }
    await sleep(1_000);
  }
}

function printScorecard(scenarios: ScenarioScore[], out: (line: string) => void): void {
  const header = [
    'pattern',
    'detected (how)',
    'TTD',
    'diagnosis',
    'action taken',
    'approval',
    'verified',
    'TTR',
    'escalated to',
    'result',
  ];
  const rows: string[][] = [];
  for (const s of scenarios) {
    for (const p of s.scores) {
      rows.push([
        s.patterns.length > 1 ? `${p.expectation.pattern} (together)` : p.expectation.pattern,
        p.detectedBy ?? '-',
        seconds(p.timeToDetectMs),
        p.incident ? `${p.incident.hypothesis ?? 'unknown'} ${p.diagnosisCorrect ? '✓' : '✗'}` : '-',
        p.actions.length > 0 ? p.actions.join(', ') : 'none',
        p.approvalNeeded ? 'yes' : 'no',
        p.verified ? 'yes' : 'no',
        seconds(p.timeToResolveMs),
        p.escalatedTo ?? '-',
        `${p.passed ? 'PASS' : 'FAIL'} ${p.why}`,
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  out('\nGame day scorecard');
  out(line(header));
  out(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) out(line(r));
  const unsafe = scenarios.flatMap((s) => s.unsafe);
  out(`\nunsafe actions: ${unsafe.length}${unsafe.length > 0 ? `\n  ${unsafe.join('\n  ')}` : ''}`);
  const collateral = scenarios.flatMap((s) => s.collateral.map((o) => ({ s, o })));
  if (collateral.length > 0) {
    out('other incidents the scenarios opened (cascades):');
    for (const { s, o } of collateral) {
      out(
        `  ${s.patterns.join(' + ')}: #${o.id} ${o.service} ${o.alerts.join(', ')} → ${o.hypothesis ?? o.decisionOutcome ?? 'no decision'}, ${o.status}`,
      );
    }
  }
  const all = scenarios.flatMap((s) => s.scores);
  const known = all.filter((p) => p.expectation.outcome === 'resolved');
  const resolvedInTime = known.filter((p) => p.passed).length;
  out(
    `known patterns resolved within ${RESOLVE_TARGET_MS / 1000} s: ${resolvedInTime}/${known.length}; ` +
      `unknown escalated: ${all.filter((p) => p.expectation.outcome === 'escalated' && p.passed).length}/` +
      `${all.filter((p) => p.expectation.outcome === 'escalated').length}`,
  );
}

function seconds(ms: number | null): string {
  return ms === null ? '-' : `${(ms / 1000).toFixed(1)} s`;
}

function secondsSince(t: number): string {
  return `+${((Date.now() - t) / 1000).toFixed(1)}s`.padStart(7);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
