import { z } from 'zod';
import { formatIssues, readOptionalFile, yamlContent } from '../config-file.js';
import { parseDuration } from '../diagnostics/duration.js';
import { AppError } from '../errors.js';

/**
 * Ownership and on-call schedules (YAML): teams with their members, rotations and overrides; which team owns which
 * service; which team a security or database incident goes to; and escalation policies. Schedules are computed by
 * src/escalation/schedule.ts.
 */

/** Whether the runtime knows `tz` as an IANA time zone ("Europe/Berlin", "UTC"). */
export function isTimeZone(tz: string): boolean {
  try {
    Intl.DateTimeFormat(undefined, { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const TimeZone = z.string().refine(isTimeZone, { error: 'expected an IANA time zone like "Europe/Berlin"' });

const SlackUser = z.string().regex(/^[UW][A-Z0-9]{2,}$/, { error: 'expected a Slack user id (U…/W…)' });
const SlackUsergroup = z.string().regex(/^S[A-Z0-9]{2,}$/, { error: 'expected a Slack user group id (S…)' });

export const WEEKDAYS = [
  'sunday',
  'monday',
  'tuesday',
  'wednesday',
  'thursday',
  'friday',
  'saturday',
] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export const Member = z.strictObject({
  /** the key rotations and overrides use */
  id: z.string().min(1),
  slack: SlackUser,
  pagerduty: z
    .strictObject({ user: z.string().min(1).optional(), service: z.string().min(1).optional() })
    .optional(),
  timezone: TimeZone.optional(),
});
export type Member = z.infer<typeof Member>;

export const Rotation = z
  .strictObject({
    name: z.string().min(1),
    /** daily: every local day at `handoff`; weekly: every `handoffDay` at `handoff`; custom: every `length` */
    type: z.enum(['daily', 'weekly', 'custom']),
    /** shift length of a custom rotation ("12h", "3d"); elapsed time, so DST changes do not stretch it */
    length: z.string().optional(),
    /** local wall time ("HH:MM", 24h) in `timezone` at which shifts change */
    handoff: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, { error: 'expected a local time "HH:MM" (24h)' }),
    /** weekly only; default monday */
    handoffDay: z.enum(WEEKDAYS).optional(),
    timezone: TimeZone,
    /** "YYYY-MM-DD"; the first shift starts on this day at `handoff` and belongs to members[0] */
    start: z.iso.date({ error: 'expected a date "YYYY-MM-DD"' }),
    /** member ids in shift order */
    members: z.array(z.string().min(1)).min(1),
  })
  .superRefine((r, ctx) => {
    if (r.type === 'custom') {
      if (r.length === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['length'],
          message: 'required for a custom rotation (e.g. "12h")',
        });
      } else {
        const ms = parseDuration(r.length);
        if (ms === null || ms < 60_000) {
          ctx.addIssue({
            code: 'custom',
            path: ['length'],
            message: 'expected a duration of at least 1m like "12h"',
          });
        }
      }
    } else if (r.length !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['length'],
        message: `only a custom rotation has a length, not ${r.type}`,
      });
    }
    if (r.handoffDay !== undefined && r.type !== 'weekly') {
      ctx.addIssue({
        code: 'custom',
        path: ['handoffDay'],
        message: `only a weekly rotation has one, not ${r.type}`,
      });
    }
  });
export type Rotation = z.infer<typeof Rotation>;

const OffsetDateTime = z.iso.datetime({
  offset: true,
  error: 'expected a date-time with an offset like "2026-03-30T09:00:00+02:00"',
});

export const Override = z
  .strictObject({
    /** the rotation it applies to; omitted: every rotation of the team */
    rotation: z.string().min(1).optional(),
    /** member id of who covers */
    user: z.string().min(1),
    /** member id of who is covered; omitted: whoever is scheduled */
    replaces: z.string().min(1).optional(),
    from: OffsetDateTime,
    /** exclusive */
    to: OffsetDateTime,
  })
  .refine((o) => Date.parse(o.to) > Date.parse(o.from), { path: ['to'], error: 'must be after from' });
export type Override = z.infer<typeof Override>;

const LocalTime = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, { error: 'expected a local time "HH:MM" (24h)' });

const SEVERITY_ALIASES = {
  critical: 'critical',
  high: 'high',
  warning: 'warning',
  info: 'info',
  P1: 'critical',
  P2: 'high',
  P3: 'warning',
  P4: 'info',
} as const;

/**
 * At night, incidents of these severities are posted in the channel and listed in a morning digest instead of paging
 * anyone. `from`–`to` is a local wall-time span in `timezone` and may cross midnight ("22:00"–"08:00").
 */
export const QuietHours = z
  .strictObject({
    from: LocalTime,
    to: LocalTime,
    timezone: TimeZone,
    /** P1–P4 or critical/high/warning/info; default P3 and P4 */
    severities: z
      .array(
        z.enum(Object.keys(SEVERITY_ALIASES) as [keyof typeof SEVERITY_ALIASES], {
          error: 'expected P1-P4 or critical, high, warning, info',
        }),
      )
      .default(['P3', 'P4'])
      .transform((list) => [...new Set(list.map((s) => SEVERITY_ALIASES[s]))]),
  })
  .refine((q) => q.from !== q.to, { path: ['to'], error: 'must differ from `from`' });
export type QuietHours = z.infer<typeof QuietHours>;

export const Team = z.strictObject({
  members: z.array(Member).min(1),
  rotations: z.array(Rotation).default([]),
  /** later entries win when two apply at once */
  overrides: z.array(Override).default([]),
  /** name of an escalation policy under `policies` */
  policy: z.string().min(1).optional(),
  /** overrides the top-level `quietHours` for this team */
  quietHours: QuietHours.optional(),
});
export type Team = z.infer<typeof Team>;

export const PolicyTarget = z.union([
  /** whoever is on call in `rotation` of the team (default: its first rotation) */
  z.strictObject({ oncall: z.string().min(1), rotation: z.string().min(1).optional() }),
  z.strictObject({ user: SlackUser }),
  z.strictObject({ usergroup: SlackUsergroup }),
]);
export type PolicyTarget = z.infer<typeof PolicyTarget>;

export const EscalationPolicy = z.strictObject({
  levels: z
    .array(
      z.strictObject({
        targets: z.array(PolicyTarget).min(1),
        /** minutes to wait for an acknowledgement before the next level */
        delayMinutes: z.number().int().min(1),
      }),
    )
    .min(1),
  /** how many times the whole policy runs again after its last level; default 0 */
  repeat: z.number().int().min(0).max(5).default(0),
});
export type EscalationPolicy = z.infer<typeof EscalationPolicy>;

export const ROUTING_REASONS = ['security', 'database'] as const;
export type RoutingReason = (typeof ROUTING_REASONS)[number];

export const OncallConfig = z
  .strictObject({
    teams: z.record(z.string(), Team).default({}),
    /** service → owning team */
    services: z.record(z.string(), z.string()).default({}),
    /** reason → team; `default` takes services nobody owns */
    routing: z
      .strictObject({
        security: z.string().optional(),
        database: z.string().optional(),
        default: z.string().optional(),
      })
      .default({}),
    policies: z.record(z.string(), EscalationPolicy).default({}),
    /** default quiet hours of every team; none: every severity pages at any hour */
    quietHours: QuietHours.optional(),
  })
  .superRefine((c, ctx) => {
    const problem = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: 'custom', path, message });
    const teamNames = Object.keys(c.teams);
    const knownTeam = (name: string) => Object.hasOwn(c.teams, name);
    const unknownTeam = (name: string) =>
      `unknown team "${name}" (teams: ${teamNames.length > 0 ? teamNames.join(', ') : 'none'})`;

    for (const [teamName, team] of Object.entries(c.teams)) {
      const ids = team.members.map((m) => m.id);
      const known = new Set(ids);
      const unknownMember = (id: string) =>
        `"${id}" is not a member of team ${teamName} (members: ${ids.join(', ')})`;
      const seen = new Set<string>();
      for (const [i, id] of ids.entries()) {
        if (seen.has(id)) problem(['teams', teamName, 'members', i, 'id'], `duplicate member id "${id}"`);
        seen.add(id);
      }
      const rotationNames = new Set<string>();
      for (const [i, rotation] of team.rotations.entries()) {
        if (rotationNames.has(rotation.name)) {
          problem(['teams', teamName, 'rotations', i, 'name'], `duplicate rotation name "${rotation.name}"`);
        }
        rotationNames.add(rotation.name);
        for (const [j, id] of rotation.members.entries()) {
          if (!known.has(id)) problem(['teams', teamName, 'rotations', i, 'members', j], unknownMember(id));
        }
      }
      for (const [i, o] of team.overrides.entries()) {
        const path = ['teams', teamName, 'overrides', i];
        if (!known.has(o.user)) problem([...path, 'user'], unknownMember(o.user));
        if (o.replaces !== undefined && !known.has(o.replaces))
          problem([...path, 'replaces'], unknownMember(o.replaces));
        if (o.rotation !== undefined && !rotationNames.has(o.rotation)) {
          problem([...path, 'rotation'], `team ${teamName} has no rotation "${o.rotation}"`);
        }
      }
      if (team.policy !== undefined && !Object.hasOwn(c.policies, team.policy)) {
        problem(['teams', teamName, 'policy'], `unknown policy "${team.policy}"`);
      }
    }
    for (const [service, team] of Object.entries(c.services)) {
      if (!knownTeam(team)) problem(['services', service], unknownTeam(team));
    }
    for (const [reason, team] of Object.entries(c.routing)) {
      if (team !== undefined && !knownTeam(team)) problem(['routing', reason], unknownTeam(team));
    }
    for (const [name, policy] of Object.entries(c.policies)) {
      for (const [i, level] of policy.levels.entries()) {
        for (const [j, target] of level.targets.entries()) {
          if ('oncall' in target && !knownTeam(target.oncall)) {
            problem(['policies', name, 'levels', i, 'targets', j, 'oncall'], unknownTeam(target.oncall));
          } else if ('oncall' in target && target.rotation !== undefined) {
            const rotations = c.teams[target.oncall]?.rotations.map((r) => r.name) ?? [];
            if (!rotations.includes(target.rotation)) {
              problem(
                ['policies', name, 'levels', i, 'targets', j, 'rotation'],
                `team ${target.oncall} has no rotation "${target.rotation}" (rotations: ${rotations.join(', ') || 'none'})`,
              );
            }
          }
        }
      }
    }
  });
export type OncallConfig = z.infer<typeof OncallConfig>;

/**
 * The team named `name`, or undefined. Own keys only: a name typed by a person (`/incident oncall hasOwnProperty`)
 * must not find Object.prototype's members.
 */
export function teamOf(config: OncallConfig, name: string): Team | undefined {
  return Object.hasOwn(config.teams, name) ? config.teams[name] : undefined;
}

export class OncallError extends AppError {
  constructor(message: string) {
    super('oncall_invalid', message);
    this.name = 'OncallError';
  }
}

/** Parses and checks an on-call file; every problem is one `file: path: message` line of the OncallError. */
export function parseOncall(text: string, file: string): OncallConfig {
  const raw = yamlContent(text, file, (message) => new OncallError(message));
  const parsed = OncallConfig.safeParse(raw ?? {});
  if (!parsed.success) {
    throw new OncallError(formatIssues(file, parsed.error.issues));
  }
  return parsed.data;
}

/** Reads an on-call file; a missing file is null (no schedules: pages go to the policy's fixed targets only). */
export async function loadOncall(file: string): Promise<OncallConfig | null> {
  const text = await readOptionalFile(file);
  return text === null ? null : parseOncall(text, file);
}
