import { parseDuration } from '../diagnostics/duration.js';
import {
  type OncallConfig,
  type Override,
  type QuietHours,
  ROUTING_REASONS,
  type Rotation,
  teamOf,
  WEEKDAYS,
} from './oncall.schema.js';

/**
 * Who is on call when: pure functions over a parsed OncallConfig. Handoffs are local wall times in the rotation's
 * time zone, converted with Intl (no tz database of our own), so a daily shift across a DST change is 23 or 25 hours
 * long and still starts at the local handoff time.
 */

export interface Shift {
  /** member id */
  member: string;
  start: Date;
  /** exclusive */
  end: Date;
}

const DAY_MS = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Local wall time at `utcMs` in `timeZone`, as milliseconds of a UTC clock showing the same digits. */
function wallClockMs(utcMs: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const p of formatterFor(timeZone).formatToParts(new Date(utcMs))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  const { year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0 } = parts;
  return Date.UTC(year, month - 1, day, hour, minute, second);
}

/** ms to add to UTC to get local time at `utcMs` (e.g. +3_600_000 for CET) */
function offsetAt(utcMs: number, timeZone: string): number {
  const whole = Math.floor(utcMs / 1000) * 1000;
  return wallClockMs(whole, timeZone) - whole;
}

/**
 * The instant a local wall time (given as a UTC-digits ms value) happens in `timeZone`. A time that repeats when
 * clocks go back is its first occurrence; a time skipped when clocks go forward is moved forward by the gap
 * (02:30 on a spring-forward night in Berlin → 03:30 CEST).
 */
function wallToUtc(wallMs: number, timeZone: string): number {
  const before = offsetAt(wallMs - DAY_MS, timeZone);
  const after = offsetAt(wallMs + DAY_MS, timeZone);
  const first = wallMs - before;
  if (wallClockMs(first, timeZone) === wallMs) return first;
  const second = wallMs - after;
  if (wallClockMs(second, timeZone) === wallMs) return second;
  // skipped: read it with the offset from before the jump, which lands after the gap
  return first;
}

/** civil day number (days since 1970-01-01) of "YYYY-MM-DD" */
function dayNumber(date: string): number {
  return Math.floor(Date.parse(`${date}T00:00:00Z`) / DAY_MS);
}

function handoffMinutes(handoff: string): number {
  const [h = 0, m = 0] = handoff.split(':').map(Number);
  return h * 60 + m;
}

/** the instant of the handoff on civil day `day` in the rotation's zone */
function handoffOn(rotation: Rotation, day: number): number {
  return wallToUtc(day * DAY_MS + handoffMinutes(rotation.handoff) * 60_000, rotation.timezone);
}

function memberAt(rotation: Rotation, index: number): string {
  const n = rotation.members.length;
  return rotation.members[((index % n) + n) % n] as string;
}

/**
 * The shift of `rotation` that contains `at`; null before the first shift. Weekly rotations hand off every
 * `handoffDay` (default monday); when `start` is not that weekday, the first shift runs until the first handoffDay.
 * Custom rotations hand off every `length` of elapsed time from the first start.
 */
export function shiftAt(rotation: Rotation, at: Date): Shift | null {
  const t = at.getTime();
  const startDay = dayNumber(rotation.start);
  const first = handoffOn(rotation, startDay);
  if (Number.isNaN(t) || t < first) return null;

  if (rotation.type === 'custom') {
    const length = parseDuration(rotation.length ?? '') ?? DAY_MS;
    const index = Math.floor((t - first) / length);
    const start = first + index * length;
    return { member: memberAt(rotation, index), start: new Date(start), end: new Date(start + length) };
  }

  // the local day of `at`, stepped back one when today's handoff has not happened yet
  let day = Math.floor(wallClockMs(t, rotation.timezone) / DAY_MS);
  if (handoffOn(rotation, day) > t) day -= 1;

  if (rotation.type === 'daily') {
    return {
      member: memberAt(rotation, day - startDay),
      start: new Date(handoffOn(rotation, day)),
      end: new Date(handoffOn(rotation, day + 1)),
    };
  }

  // weekly; day 0 (1970-01-01) was a Thursday, and getUTCDay numbering matches WEEKDAYS
  const weekday = WEEKDAYS.indexOf(rotation.handoffDay ?? 'monday');
  const weekdayOf = (d: number) => new Date(d * DAY_MS).getUTCDay();
  const firstHandoffDay = startDay + ((weekday - weekdayOf(startDay) + 7) % 7);
  const lead = firstHandoffDay === startDay ? 0 : 1;
  if (day < firstHandoffDay) {
    return {
      member: memberAt(rotation, 0),
      start: new Date(first),
      end: new Date(handoffOn(rotation, firstHandoffDay)),
    };
  }
  const lastHandoffDay = day - ((weekdayOf(day) - weekday + 7) % 7);
  return {
    member: memberAt(rotation, (lastHandoffDay - firstHandoffDay) / 7 + lead),
    start: new Date(handoffOn(rotation, lastHandoffDay)),
    end: new Date(handoffOn(rotation, lastHandoffDay + 7)),
  };
}

export interface OnCall {
  rotation: string;
  current: {
    member: string;
    slack: string;
    /** when this person stops being on call: the end of the shift, or an override's start or end */
    until: Date;
    /** set when an override put `member` here instead of the scheduled person */
    override?: { replaces: string; from: Date; to: Date };
  };
  /** who takes over at `until` */
  next: { member: string; slack: string; from: Date };
}

interface Resolved {
  member: string;
  shift: Shift;
  override?: Override;
}

function overridesFor(team: OncallConfig['teams'][string], rotation: Rotation): Override[] {
  return team.overrides.filter((o) => o.rotation === undefined || o.rotation === rotation.name);
}

/** The scheduled member at `t`, replaced by the last listed override active then that covers them. */
function resolveAt(rotation: Rotation, overrides: Override[], t: number): Resolved | null {
  const shift = shiftAt(rotation, new Date(t));
  if (!shift) return null;
  let override: Override | undefined;
  for (const o of overrides) {
    if (Date.parse(o.from) > t || Date.parse(o.to) <= t) continue;
    if (o.replaces === undefined || o.replaces === shift.member) override = o;
  }
  return { member: override?.user ?? shift.member, shift, ...(override ? { override } : {}) };
}

/** The next instant after `t` at which who is on call may change: a shift end or an override boundary. */
function nextBoundary(shiftEnd: number, overrides: Override[], t: number): number {
  let next = shiftEnd;
  for (const o of overrides) {
    for (const edge of [Date.parse(o.from), Date.parse(o.to)]) {
      if (edge > t && edge < next) next = edge;
    }
  }
  return next;
}

/** boundaries to look past for someone other than the current person (a one-member rotation never has one) */
const MAX_LOOKAHEAD = 64;

/**
 * Who is on call for each rotation of `team` at `at`, with overrides applied, and who comes next and when.
 * Rotations that have not started yet, and unknown teams, give no entry.
 */
export function onCallAt(config: OncallConfig, teamName: string, at: Date): OnCall[] {
  const team = teamOf(config, teamName);
  if (!team) return [];
  const slackOf = (id: string) => team.members.find((m) => m.id === id)?.slack ?? '';
  const out: OnCall[] = [];
  for (const rotation of team.rotations) {
    const overrides = overridesFor(team, rotation);
    const now = resolveAt(rotation, overrides, at.getTime());
    if (!now) continue;
    let t = at.getTime();
    let firstChange: { t: number; resolved: Resolved } | undefined;
    let change: { t: number; resolved: Resolved } | undefined;
    let current = now;
    for (let i = 0; i < MAX_LOOKAHEAD && !change; i++) {
      t = nextBoundary(current.shift.end.getTime(), overrides, t);
      const resolved = resolveAt(rotation, overrides, t);
      if (!resolved) break;
      firstChange ??= { t, resolved };
      if (resolved.member !== now.member) change = { t, resolved };
      current = resolved;
    }
    const handover = change ?? firstChange ?? { t: now.shift.end.getTime(), resolved: now };
    out.push({
      rotation: rotation.name,
      current: {
        member: now.member,
        slack: slackOf(now.member),
        until: new Date(handover.t),
        ...(now.override
          ? {
              override: {
                replaces: now.shift.member,
                from: new Date(now.override.from),
                to: new Date(now.override.to),
              },
            }
          : {}),
      },
      next: {
        member: handover.resolved.member,
        slack: slackOf(handover.resolved.member),
        from: new Date(handover.t),
      },
    });
  }
  return out;
}

/**
 * The team an incident goes to: `routing.security`/`routing.database` for those reasons, else the team owning the
 * service, else `routing.default`; null when none applies.
 */
export function teamFor(
  config: OncallConfig,
  input: { service?: string | null; reason?: string | null },
): string | null {
  const reason = ROUTING_REASONS.find((r) => r === input.reason);
  if (reason && config.routing[reason]) return config.routing[reason];
  if (input.service && Object.hasOwn(config.services, input.service))
    return config.services[input.service] ?? null;
  return config.routing.default ?? null;
}

/**
 * Whether `at` falls inside the quiet hours, and when they end (the next local `to` after `at`). A span that crosses
 * midnight ("22:00"–"08:00") is quiet from 22:00 until 08:00 the next morning. Wall times are local to the span's
 * time zone, so the span stays put across DST changes.
 */
export function quietHoursAt(quiet: QuietHours, at: Date): { quiet: boolean; endsAt: Date } {
  const wall = wallClockMs(at.getTime(), quiet.timezone);
  const day = Math.floor(wall / DAY_MS);
  const minute = Math.floor((wall - day * DAY_MS) / 60_000);
  const from = handoffMinutes(quiet.from);
  const to = handoffMinutes(quiet.to);
  const inside = from < to ? minute >= from && minute < to : minute >= from || minute < to;
  // the next `to` on or after now: today when it is still ahead, else tomorrow
  const endDay = minute < to ? day : day + 1;
  return { quiet: inside, endsAt: new Date(wallToUtc(endDay * DAY_MS + to * 60_000, quiet.timezone)) };
}
