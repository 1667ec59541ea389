import { z } from 'zod';
import { formatIssues, readOptionalFile, yamlContent } from '../config-file.js';
import { durationField, parseDuration } from '../diagnostics/duration.js';
import { AppError } from '../errors.js';
import { ACTION_CATALOGUE, catalogueTier, loosens, strictest, TIERS, type Tier } from './action-catalog.js';

/**
 * The safety policy (SAFETY_FILE, YAML): modes, approvers, tier tightening and hard limits, per deployment.
 * Nothing here can loosen the catalogue: a tier override that would is a load error, and the gate takes the
 * strictest tier anyway.
 */
export const MODES = ['shadow', 'supervised', 'autonomous'] as const;
export const Mode = z.enum(MODES);
export type Mode = z.infer<typeof Mode>;

/** Slack user ids (U…, W…) or user group ids (S…) */
const Approver = z.string().regex(/^[UWS][A-Z0-9]{2,}$/, {
  error: 'expected a Slack user id (U…/W…) or user group id (S…)',
});

const TierOverrides = z.record(z.string(), z.enum(TIERS)).default({});

const Limits = z.strictObject({
  /** most restarts of one target inside `restartWindow`; default 2 */
  restartsPerTarget: z.number().int().min(0).max(20).optional(),
  /** default 10m */
  restartWindow: durationField({ minMs: 60_000, maxMs: 86_400_000 }).optional(),
  /** most replicas one scale step adds; default 3 */
  scaleStep: z.number().int().min(1).max(50).optional(),
  /** absolute most replicas of a service; default 20 */
  maxReplicas: z.number().int().min(1).max(1000).optional(),
  /** a rollback is allowed only of a deploy newer than this; default 60m */
  rollbackWithin: durationField({ minMs: 60_000, maxMs: 7 * 86_400_000 }).optional(),
  /** most actions executed for one incident; default 5 */
  actionsPerIncident: z.number().int().min(0).max(50).optional(),
  /** most remediation attempts (runs that act) per incident; default 2 */
  attemptsPerIncident: z.number().int().min(0).max(10).optional(),
  /** most automated actions running at once across the fleet; more wait their turn; default 5 */
  inFlight: z.number().int().min(1).max(100).optional(),
});
type Limits = z.infer<typeof Limits>;

const Scope = z.strictObject({
  mode: Mode.optional(),
  approvers: z.array(Approver).optional(),
  tiers: TierOverrides,
  limits: Limits.default({}),
});

export const SafetyPolicy = z.strictObject({
  /** mode of services not listed; default supervised (every action needs approval until a team opts in) */
  mode: Mode.default('supervised'),
  /** who may approve guarded steps when neither the runbook nor the service names anyone */
  approvers: z.array(Approver).default([]),
  /** who may turn automation off and on (`/incident automation`); approvers may too */
  admins: z.array(Approver).default([]),
  /** how long an approval request waits; default 15m, then the incident escalates */
  approvalTimeout: durationField({ minMs: 1_000, maxMs: 86_400_000 }).default('15m'),
  /** a critical (P1) incident's step must be approved by someone other than who asked for the run; default true */
  p1RequiresSecondPerson: z.boolean().default(true),
  tiers: TierOverrides,
  limits: Limits.default({}),
  services: z.record(z.string(), Scope).default({}),
  runbooks: z.record(z.string(), Scope.omit({ mode: true })).default({}),
});
export type SafetyPolicy = z.infer<typeof SafetyPolicy>;

export const DEFAULT_LIMITS = {
  restartsPerTarget: 2,
  restartWindowMs: 10 * 60_000,
  scaleStep: 3,
  maxReplicas: 20,
  rollbackWithinMs: 60 * 60_000,
  actionsPerIncident: 5,
  attemptsPerIncident: 2,
  inFlight: 5,
};
export type EffectiveLimits = typeof DEFAULT_LIMITS;

export class PolicyError extends AppError {
  constructor(message: string) {
    super('policy_invalid', message);
    this.name = 'PolicyError';
  }
}

/** Problems a parsed policy has beyond its shape: unknown actions, and tiers that would loosen the catalogue. */
export function policyProblems(policy: SafetyPolicy): string[] {
  const problems: string[] = [];
  const checkTiers = (path: string, tiers: Record<string, Tier>) => {
    for (const [action, tier] of Object.entries(tiers)) {
      if (!ACTION_CATALOGUE[action]) {
        problems.push(
          `${path}.${action}: unknown action (catalogue: ${Object.keys(ACTION_CATALOGUE).join(', ')})`,
        );
      } else if (loosens(catalogueTier(action), tier)) {
        problems.push(
          `${path}.${action}: ${tier} would loosen the catalogue's ${catalogueTier(action)}; tiers may only be tightened`,
        );
      }
    }
  };
  checkTiers('tiers', policy.tiers);
  for (const [name, scope] of Object.entries(policy.services))
    checkTiers(`services.${name}.tiers`, scope.tiers);
  for (const [name, scope] of Object.entries(policy.runbooks))
    checkTiers(`runbooks.${name}.tiers`, scope.tiers);
  return problems;
}

export function parsePolicy(text: string, file: string): SafetyPolicy {
  const raw = yamlContent(text, file, (message) => new PolicyError(message));
  const parsed = SafetyPolicy.safeParse(raw ?? {});
  if (!parsed.success) {
    throw new PolicyError(formatIssues(file, parsed.error.issues));
  }
  const problems = policyProblems(parsed.data);
  if (problems.length > 0) throw new PolicyError(problems.map((p) => `${file}: ${p}`).join('\n'));
  return parsed.data;
}

export const DEFAULT_POLICY: SafetyPolicy = SafetyPolicy.parse({});

/** Reads SAFETY_FILE; a missing file is the default policy (supervised, nobody may approve). */
export async function loadPolicy(file: string): Promise<SafetyPolicy> {
  const text = await readOptionalFile(file);
  return text === null ? DEFAULT_POLICY : parsePolicy(text, file);
}

/** What the policy says about one step of one runbook on one service. */
export interface StepPolicy {
  tier: Tier;
  /** which rule made it that strict, for the record */
  tierSources: string[];
  mode: Mode;
  approvers: string[];
  limits: EffectiveLimits;
  approvalTimeoutMs: number;
  p1RequiresSecondPerson: boolean;
}

/**
 * The strictest tier from the catalogue, the runbook step, the policy (global, service, runbook), and the mode;
 * the most specific approvers (runbook, then service, then global); the tightest limits.
 */
export function resolveStepPolicy(
  policy: SafetyPolicy,
  input: { action: string; requiresApproval: boolean; service: string; runbookId: string },
): StepPolicy {
  const service = policy.services[input.service];
  const runbook = policy.runbooks[input.runbookId];
  const candidates: [string, Tier | undefined][] = [
    ['catalogue', catalogueTier(input.action)],
    ['runbook requiresApproval', input.requiresApproval ? 'guarded' : undefined],
    ['policy tiers', policy.tiers[input.action]],
    [`policy services.${input.service}.tiers`, service?.tiers[input.action]],
    [`policy runbooks.${input.runbookId}.tiers`, runbook?.tiers[input.action]],
  ];
  const mode = service?.mode ?? policy.mode;
  let tier = strictest(...candidates.map(([, t]) => t));
  if (mode === 'supervised' && tier === 'safe' && ACTION_CATALOGUE[input.action]?.communication !== true) {
    candidates.push(['supervised mode', 'guarded']);
    tier = 'guarded';
  }
  const tierSources = candidates.filter(([, t]) => t === tier).map(([s]) => s);
  return {
    tier,
    tierSources,
    mode,
    approvers: runbook?.approvers ?? service?.approvers ?? policy.approvers,
    limits: tightestLimits([policy.limits, service?.limits, runbook?.limits]),
    approvalTimeoutMs: parseDuration(policy.approvalTimeout) ?? 15 * 60_000,
    p1RequiresSecondPerson: policy.p1RequiresSecondPerson,
  };
}

function tightestLimits(scopes: (Limits | undefined)[]): EffectiveLimits {
  const out = { ...DEFAULT_LIMITS };
  // a scope may tighten a limit (a longer restart window, lower counts); only the global level may also loosen the
  // defaults, which is the deployment's own choice
  const tighter = (key: keyof EffectiveLimits, a: number, b: number) =>
    key === 'restartWindowMs' ? Math.max(a, b) : Math.min(a, b);
  for (const [i, l] of scopes.entries()) {
    if (!l) continue;
    const set = <K extends keyof EffectiveLimits>(key: K, value: number | undefined) => {
      if (value === undefined) return;
      out[key] = i === 0 ? value : tighter(key, out[key], value);
    };
    set('restartsPerTarget', l.restartsPerTarget);
    set(
      'restartWindowMs',
      l.restartWindow === undefined ? undefined : (parseDuration(l.restartWindow) ?? undefined),
    );
    set('scaleStep', l.scaleStep);
    set('maxReplicas', l.maxReplicas);
    set(
      'rollbackWithinMs',
      l.rollbackWithin === undefined ? undefined : (parseDuration(l.rollbackWithin) ?? undefined),
    );
    set('actionsPerIncident', l.actionsPerIncident);
    set('attemptsPerIncident', l.attemptsPerIncident);
    set('inFlight', l.inFlight);
  }
  return out;
}

/** Whether `user` (with the user groups they belong to) is one of `approvers`. */
export function isApprover(approvers: string[], user: string, groups: string[]): boolean {
  return approvers.includes(user) || groups.some((g) => approvers.includes(g));
}
