import { z } from 'zod';
import { Severity } from '../../alerts/normalized-alert.js';
import { parseDuration } from '../../diagnostics/duration.js';
import { parseIncidentRef } from '../../incidents/incident.js';

export const ServiceName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, {
  error: 'expected a service name (letters, digits, . _ -; up to 100)',
});

export type IncidentCommand =
  | { kind: 'trigger'; service: string; severity: Severity; summary: string }
  | { kind: 'list' }
  | { kind: 'show'; id: number }
  | { kind: 'run'; runbookId: string; target?: string }
  | { kind: 'maintenance'; service: string; durationMs: number; reason: string }
  | { kind: 'automation'; enabled: boolean | null; service: string | null; reason: string }
  | { kind: 'oncall'; team: string | null }
  | { kind: 'page'; id: number; team: string | null; note: string }
  | { kind: 'postmortem'; id: number }
  | { kind: 'stats'; days: number; service: string | null }
  | { kind: 'suggestions'; days: number }
  | { kind: 'help' }
  | { kind: 'invalid'; problem: string };

export const INCIDENT_USAGE = [
  '*Usage:*',
  '`/incident trigger <service> [sev=critical|high|warning|info] <summary…>` — open an incident by hand',
  '`/incident list` — open incidents',
  '`/incident show <id>` — one incident with its latest events (`42` or `INC-42`)',
  '`/incident run <runbook> [service|INC-id]` — run a runbook by hand (on the open incident, or a new one)',
  '`/incident maintenance <service> <duration|off> [reason…]` — no incidents from anomalies of the service for a while (e.g. `2h`)',
  '`/incident automation off|on [service] [reason…]` — stop (or resume) automated remediation everywhere or for one service; `/incident automation` shows the state',
  '`/incident oncall [team]` — who is on call now and next',
  "`/incident page <id> [team=<team>] [note…]` — hand the incident to people now: page its team's on-call (or `team`)",
  '`/incident postmortem <id>` — write (again) the postmortem draft of an incident from its timeline, with the file in the thread',
  '`/incident stats [7d|30d] [service]` — MTTD, MTTA, MTTR, auto-resolve, escalation and false-action rates, with a trend chart',
  '`/incident suggestions [30d]` — runbook improvements found in the history',
  '`/incident help` — this message',
].join('\n');

/** "7d", "30d", "2w" → days (1–366); null when not a period */
function parsePeriod(word: string): number | null {
  const m = /^(\d{1,3})([dw])$/i.exec(word);
  if (!m) return null;
  const days = Number(m[1]) * (m[2]?.toLowerCase() === 'w' ? 7 : 1);
  return days >= 1 && days <= 366 ? days : null;
}

/** Parses the text after `/incident`; every wrong input says what is wrong, never throws. */
export function parseIncidentCommand(text: string): IncidentCommand {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const [sub, ...rest] = words;
  switch (sub?.toLowerCase()) {
    case undefined:
    case 'help':
      return { kind: 'help' };
    case 'list':
      return rest.length === 0 ? { kind: 'list' } : { kind: 'invalid', problem: '`list` takes no arguments' };
    case 'show': {
      if (rest.length !== 1)
        return { kind: 'invalid', problem: '`show` takes one incident id, e.g. `/incident show 42`' };
      const id = parseIncidentRef(rest[0] as string);
      return id === null
        ? { kind: 'invalid', problem: `\`${rest[0]}\` is not an incident id` }
        : { kind: 'show', id };
    }
    case 'run': {
      const [runbookId, target, ...extra] = rest;
      if (!runbookId || extra.length > 0)
        return {
          kind: 'invalid',
          problem: '`run` takes a runbook id and optionally a service or incident id',
        };
      if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(runbookId))
        return {
          kind: 'invalid',
          problem: `\`${runbookId}\` is not a runbook id (lower-case letters, digits, -)`,
        };
      if (target === undefined) return { kind: 'run', runbookId };
      if (parseIncidentRef(target) !== null) return { kind: 'run', runbookId, target };
      const name = ServiceName.safeParse(target);
      return name.success
        ? { kind: 'run', runbookId, target: name.data }
        : { kind: 'invalid', problem: `service \`${target}\`: ${name.error.issues[0]?.message}` };
    }
    case 'maintenance': {
      const [service, duration, ...reasonWords] = rest;
      if (!service || !duration)
        return {
          kind: 'invalid',
          problem: '`maintenance` takes a service and a duration (`30m`, `2h`) or `off`',
        };
      const name = ServiceName.safeParse(service);
      if (!name.success)
        return { kind: 'invalid', problem: `service \`${service}\`: ${name.error.issues[0]?.message}` };
      const ms = duration.toLowerCase() === 'off' ? 0 : parseDuration(duration);
      if (ms === null || ms > 7 * 86_400_000)
        return {
          kind: 'invalid',
          problem: `duration \`${duration}\`: expected e.g. \`30m\`, \`2h\` (at most 7d) or \`off\``,
        };
      return {
        kind: 'maintenance',
        service: name.data,
        durationMs: ms,
        reason: reasonWords.join(' ').slice(0, 500),
      };
    }
    case 'oncall': {
      if (rest.length > 1) return { kind: 'invalid', problem: '`oncall` takes at most one team name' };
      const team = rest[0];
      if (team !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(team))
        return { kind: 'invalid', problem: `\`${team}\` is not a team name (letters, digits, . _ -)` };
      return { kind: 'oncall', team: team ?? null };
    }
    case 'page': {
      const [ref, ...more] = rest;
      if (ref === undefined)
        return {
          kind: 'invalid',
          problem: '`page` takes an incident id, e.g. `/incident page 42 team=dba disk is full`',
        };
      const id = parseIncidentRef(ref);
      if (id === null) return { kind: 'invalid', problem: `\`${ref}\` is not an incident id` };
      let team: string | null = null;
      const teamWord = more[0]?.match(/^team=(.*)$/i);
      if (teamWord) {
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(teamWord[1] ?? ''))
          return {
            kind: 'invalid',
            problem: `\`${teamWord[1]}\` is not a team name (letters, digits, . _ -)`,
          };
        team = teamWord[1] as string;
        more.shift();
      }
      const note = more.join(' ');
      if (note.length > 500) return { kind: 'invalid', problem: 'the note is longer than 500 characters' };
      return { kind: 'page', id, team, note };
    }
    case 'postmortem': {
      if (rest.length !== 1)
        return {
          kind: 'invalid',
          problem: '`postmortem` takes one incident id, e.g. `/incident postmortem 42`',
        };
      const id = parseIncidentRef(rest[0] as string);
      return id === null
        ? { kind: 'invalid', problem: `\`${rest[0]}\` is not an incident id` }
        : { kind: 'postmortem', id };
    }
    case 'stats': {
      let days = 7;
      let service: string | null = null;
      for (const word of rest) {
        const period = parsePeriod(word);
        if (period !== null) {
          days = period;
          continue;
        }
        if (/^\d+[dw]$/i.test(word))
          return {
            kind: 'invalid',
            problem: `period \`${word}\`: expected 1d to 366d (or weeks, e.g. \`2w\`)`,
          };
        const name = ServiceName.safeParse(word);
        if (!name.success || service !== null)
          return {
            kind: 'invalid',
            problem: `\`stats\` takes a period (\`7d\`, \`30d\`, up to 366d) and a service; \`${word}\` is neither`,
          };
        service = name.data;
      }
      return { kind: 'stats', days, service };
    }
    case 'suggestions': {
      if (rest.length > 1)
        return { kind: 'invalid', problem: '`suggestions` takes at most a period, e.g. `30d`' };
      const days = rest[0] === undefined ? 30 : parsePeriod(rest[0]);
      return days === null
        ? { kind: 'invalid', problem: `\`${rest[0]}\` is not a period (e.g. \`30d\`, up to 366d)` }
        : { kind: 'suggestions', days };
    }
    case 'automation': {
      const [state, ...more] = rest;
      if (state === undefined) return { kind: 'automation', enabled: null, service: null, reason: '' };
      const lower = state.toLowerCase();
      if (lower !== 'on' && lower !== 'off')
        return { kind: 'invalid', problem: `\`automation\` takes \`on\` or \`off\`, not \`${state}\`` };
      const [service, ...reasonWords] = more;
      let name: string | null = null;
      if (service !== undefined && service !== 'all' && service !== '*') {
        const parsed = ServiceName.safeParse(service);
        if (!parsed.success)
          return { kind: 'invalid', problem: `service \`${service}\`: ${parsed.error.issues[0]?.message}` };
        name = parsed.data;
      }
      return {
        kind: 'automation',
        enabled: lower === 'on',
        service: name,
        reason: reasonWords.join(' ').slice(0, 500),
      };
    }
    case 'trigger': {
      const [service, ...summaryWords] = rest;
      if (!service) return { kind: 'invalid', problem: '`trigger` needs a service and a summary' };
      const name = ServiceName.safeParse(service);
      if (!name.success)
        return { kind: 'invalid', problem: `service \`${service}\`: ${name.error.issues[0]?.message}` };
      let severity: Severity = 'high';
      const sevWord = summaryWords[0]?.match(/^sev(?:erity)?=(.*)$/i);
      if (sevWord) {
        const parsed = Severity.safeParse(sevWord[1]?.toLowerCase());
        if (!parsed.success)
          return {
            kind: 'invalid',
            problem: `severity \`${sevWord[1]}\`: expected critical, high, warning or info`,
          };
        severity = parsed.data;
        summaryWords.shift();
      }
      // Keep the summary as typed (line breaks included), minus the words already consumed.
      const summary = text
        .trim()
        .replace(/^\S+\s+\S+/, '')
        .trim()
        .replace(sevWord ? /^\S+/ : /^/, '')
        .trim();
      if (!summary) return { kind: 'invalid', problem: '`trigger` needs a summary after the service' };
      if (summary.length > 3000)
        return { kind: 'invalid', problem: 'the summary is longer than 3000 characters' };
      return { kind: 'trigger', service: name.data, severity, summary };
    }
    default:
      return { kind: 'invalid', problem: `unknown subcommand \`${sub}\`` };
  }
}

export type MentionCommand =
  | { kind: 'status'; service: string }
  | { kind: 'similar'; id: number }
  | { kind: 'help' }
  | { kind: 'invalid'; problem: string };

export const MENTION_USAGE = [
  '*Usage:*',
  '`@ai-sre status <service>` — open incidents of a service and their latest events',
  '`@ai-sre similar <id>` — past incidents like this one, and how they ended',
  '`@ai-sre help` — this message',
].join('\n');

/** Parses a mention's text (`<@U0BOT> status payment-service`). */
export function parseMention(text: string): MentionCommand {
  const words = text
    .replace(/<@[A-Z0-9]+(\|[^>]*)?>/g, ' ')
    .trim()
    .split(/\s+/)
    .filter(Boolean);
  const [sub, ...rest] = words;
  switch (sub?.toLowerCase()) {
    case undefined:
    case 'help':
      return { kind: 'help' };
    case 'status': {
      if (rest.length !== 1) return { kind: 'invalid', problem: '`status` takes one service name' };
      const name = ServiceName.safeParse(rest[0]);
      return name.success
        ? { kind: 'status', service: name.data }
        : { kind: 'invalid', problem: `service \`${rest[0]}\`: ${name.error.issues[0]?.message}` };
    }
    case 'similar': {
      if (rest.length !== 1) return { kind: 'invalid', problem: '`similar` takes one incident id' };
      const id = parseIncidentRef(rest[0] as string);
      return id === null
        ? { kind: 'invalid', problem: `\`${rest[0]}\` is not an incident id` }
        : { kind: 'similar', id };
    }
    default:
      return { kind: 'invalid', problem: `unknown request \`${sub}\`` };
  }
}
