import type { Incident } from '../incidents/incident.js';
import { incidentRef } from '../incidents/incident.js';
import { getIncident, transitionIncident } from '../incidents/lifecycle.js';
import { appendTimelineEvent, listTimeline } from '../incidents/timeline.js';
import type { Logger } from '../logger.js';
import type { Queues } from '../queue/queues.js';
import { type Db, type Queryable, type Tx, withTransaction } from '../store/db.js';
import { buildContextPacket, type ContextPacket, packetDetails } from './context-packet.js';
import {
  ACTIVE_STATUSES,
  activeEscalation,
  claimPage,
  type Escalation,
  getEscalation,
  insertEscalation,
  msUntil,
  type PagedTarget,
  type PolicySnapshot,
  settlePage,
  totalSteps,
  updateEscalation,
} from './escalation-repo.js';
import { digestJob, pageStepJob, startEscalationJob, updatePagersJob } from './jobs/escalation.jobs.js';
import { type OncallConfig, type PolicyTarget, type QuietHours, teamOf } from './oncall.schema.js';
import { createPageAttemptsRepo, deliveredPagers } from './pagers/attempts-repo.js';
import { dedupKeyFor, type Page, type Pager, pageWithFallback, updatePagers } from './pagers/pager.js';
import { classifyEscalation, describeCategory, type EscalationWhy } from './reasons.js';
import { onCallAt, quietHoursAt, teamFor } from './schedule.js';

/**
 * The escalation flow: when an incident is handed to people (status `escalated`), page the right person with the
 * context packet, walk the escalation policy while nobody acknowledges, stop at an acknowledgement, and tell the
 * pagers when it is acknowledged or resolved. Postgres holds every timer (`escalations.next_at`); BullMQ delayed jobs
 * are only the alarm clocks, and the sweep re-sets any that Redis lost.
 */

/** One item of the morning digest. */
export interface DigestItem {
  incidentId: number;
  title: string;
  severity: Incident['severity'];
  status: Incident['status'];
  /** why a person is needed, in words */
  why: string;
  openedAt: Date;
  /** who is on call for the team now (mentioned in the digest) */
  oncall: PagedTarget[];
}

/** The Slack side the flow needs (src/slack/escalation-notifier.ts); null when Slack is not configured. */
export interface EscalationNotifier {
  /** posts our own text (mentions allowed, nothing untrusted) in the incident's thread; false without a thread */
  postInThread(incidentId: number, text: string): Promise<boolean>;
  /** posts the digest of one service's held-back incidents in its channel */
  postDigest(service: string, items: DigestItem[]): Promise<void>;
}

export interface EscalationDeps {
  db: Db;
  queues: Queues;
  log: Logger;
  oncall: OncallConfig | null;
  /** the fallback chain, first tried first */
  pagers: readonly Pager[];
  notifier: EscalationNotifier | null;
  /** the Slack rendering of a page (packet with buttons) for the Slack DM; without it the DM is the plain page */
  renderPage?(escalation: Escalation, packet: ContextPacket): { text: string; blocks: unknown[] };
  /** tells the Slack view an incident changed; never throws */
  changed(change: { incidentId: number; eventId: number; urgent: boolean }): Promise<void>;
  /** length of one policy minute; milliseconds; 60000 except in tests and the demo */
  minuteMs: number;
}

export interface ActionOutcome {
  ok: boolean;
  /** what to tell the person who clicked, in mrkdwn (our own words and ids only) */
  message: string;
}

export interface EscalationService {
  /** Looks at an incident after a change: starts the escalation it is owed, or closes one it no longer needs. */
  kick(incidentId: number): Promise<void>;
  /** Starts the escalation of an escalated incident (idempotent per incident.escalated event) and pages level 1. */
  start(incidentId: number): Promise<void>;
  /** Runs one step of the policy walk if it is still the due one; `retryInMs` when it fired early. */
  runStep(escalationId: number, step: number): Promise<{ retryInMs?: number }>;
  acknowledge(input: { escalationId: number; userId: string }): Promise<ActionOutcome>;
  resolve(input: { escalationId: number; userId: string }): Promise<ActionOutcome>;
  reassign(input: { escalationId: number; userId: string; to: string }): Promise<ActionOutcome>;
  /** `/incident page`: hands the incident to people now (its owner's on-call, or `team`'s), with the person's note */
  page(input: {
    incidentId: number;
    userId: string;
    team: string | null;
    note: string;
  }): Promise<ActionOutcome>;
  updatePagers(escalationId: number, action: 'acknowledge' | 'resolve'): Promise<void>;
  postDigests(): Promise<number>;
  /** re-enqueues what Postgres says is owed (starts, due steps, digests, closes); returns how many */
  sweep(tag: string): Promise<number>;
  /** the Slack users a page may be reassigned to: the team's members (and everyone in oncall.yml when no team) */
  reassignCandidates(team: string | null): { slackUser: string; label: string }[];
}

/**
 * Events that start an escalation: the incident being handed to people, or a person asking for a page again on an
 * incident that is already escalated (its last escalation ran out)
 */
const TRIGGER_TYPES = ['incident.escalated', 'page.requested'];

/** the built-in policy for a team with none: its on-call, re-paged every 15 minutes, three times in all */
const BUILT_IN_DELAY_MINUTES = 15;

const SLACK_USER = /^[UW][A-Z0-9]{2,}$/;

interface ResolvedTarget extends PagedTarget {
  team: string | null;
  pagerdutyUser?: string;
  usergroup?: string;
  /** why nobody could be found for this target */
  problem?: string;
}

/**
 * A transaction on a connection the caller already holds (a step holds one for its advisory lock): a second
 * connection from the same small pool per running step would starve it under load.
 */
async function inTransaction<T>(client: Tx, fn: (tx: Tx) => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

async function dbNow(db: Queryable): Promise<Date> {
  const { rows } = await db.query<{ now: Date }>('SELECT now() AS now');
  return (rows[0] as { now: Date }).now;
}

export function createEscalationService(deps: EscalationDeps): EscalationService {
  const { db, log } = deps;
  const attempts = createPageAttemptsRepo(db);

  const notifyView = async (incidentId: number, eventId: number | null) => {
    if (eventId !== null) await deps.changed({ incidentId, eventId, urgent: true });
  };

  const enqueueSafely = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      // Postgres holds the timer; the sweep re-enqueues it when Redis is back
      log.warn({ err: (err as Error).message }, `could not enqueue ${what}; the sweep will`);
    }
  };

  const memberBySlack = (slackUser: string): { team: string; id: string; pagerduty?: string } | null => {
    for (const [team, t] of Object.entries(deps.oncall?.teams ?? {})) {
      const m = t.members.find((x) => x.slack === slackUser);
      if (m) return { team, id: m.id, ...(m.pagerduty?.user ? { pagerduty: m.pagerduty.user } : {}) };
    }
    return null;
  };

  const routeTeam = (why: EscalationWhy, incident: Incident): string | null => {
    const config = deps.oncall;
    if (!config) return why.team;
    if (why.team && Object.hasOwn(config.teams, why.team)) return why.team;
    return teamFor(config, { service: incident.service, reason: why.route });
  };

  const quietHoursOf = (team: string | null): QuietHours | undefined =>
    (team && deps.oncall ? teamOf(deps.oncall, team)?.quietHours : undefined) ?? deps.oncall?.quietHours;

  /** The policy the walk follows, frozen now: the team's, else `policies.default`, else its on-call every 15 min. */
  const snapshotPolicy = (team: string | null, users: string[]): PolicySnapshot => {
    const config = deps.oncall;
    const teamPolicy = team && config ? teamOf(config, team)?.policy : undefined;
    const named = teamPolicy ?? (config?.policies.default ? 'default' : undefined);
    const policy = named ? config?.policies[named] : undefined;
    if (policy && named) return { name: named, team, levels: policy.levels, repeat: policy.repeat };
    const levels: PolicySnapshot['levels'] = [];
    if (team && config && teamOf(config, team))
      levels.push({ targets: [{ oncall: team }], delayMinutes: BUILT_IN_DELAY_MINUTES });
    const named_users = users.filter((u) => SLACK_USER.test(u));
    if (named_users.length > 0)
      levels.push({ targets: named_users.map((user) => ({ user })), delayMinutes: BUILT_IN_DELAY_MINUTES });
    return { name: 'built-in', team, levels, repeat: levels.length > 0 ? 2 : 0 };
  };

  const resolveTargets = (targets: PolicyTarget[], at: Date): ResolvedTarget[] =>
    targets.map((target): ResolvedTarget => {
      if ('user' in target) {
        const member = memberBySlack(target.user);
        return {
          name: member?.id ?? target.user,
          slackUser: target.user,
          team: member?.team ?? null,
          ...(member?.pagerduty ? { pagerdutyUser: member.pagerduty } : {}),
        };
      }
      if ('usergroup' in target) {
        return {
          name: `group ${target.usergroup}`,
          slackUser: null,
          team: null,
          usergroup: target.usergroup,
        };
      }
      const config = deps.oncall;
      const oncall = config ? onCallAt(config, target.oncall, at) : [];
      const shift = target.rotation ? oncall.find((o) => o.rotation === target.rotation) : oncall[0];
      if (!shift) {
        return {
          name: `${target.oncall} on-call`,
          slackUser: null,
          team: target.oncall,
          problem: `team ${target.oncall} has nobody on call${target.rotation ? ` in ${target.rotation}` : ''} now`,
        };
      }
      const member = config
        ? teamOf(config, target.oncall)?.members.find((m) => m.id === shift.current.member)
        : undefined;
      return {
        name: shift.current.member,
        slackUser: shift.current.slack || null,
        team: target.oncall,
        ...(member?.pagerduty?.user ? { pagerdutyUser: member.pagerduty.user } : {}),
      };
    });

  const buildPage = (
    incident: Incident,
    escalation: Escalation,
    packet: ContextPacket,
    target: ResolvedTarget,
  ): Page => {
    const page: Page = {
      incidentId: incident.id,
      dedupKey: dedupKeyFor(incident.id),
      summary: `${incidentRef(incident.id)} needs a person (${describeCategory(escalation.category)}): ${packet.summary}`,
      severity: incident.severity,
      source: incident.service,
      group: target.team ?? escalation.team ?? undefined,
      class: escalation.category,
      timestamp: packet.startedAt,
      target: {
        ...(target.slackUser ? { slackUser: target.slackUser } : {}),
        ...((target.team ?? escalation.team) ? { team: (target.team ?? escalation.team) as string } : {}),
        ...(target.pagerdutyUser ? { pagerdutyUser: target.pagerdutyUser } : {}),
      },
      links: packet.links.map((l) => ({ href: l.url, text: l.label })),
      details: packetDetails(packet),
    };
    if (deps.renderPage) page.slackMessage = deps.renderPage(escalation, packet);
    return page;
  };

  /** Marks the incident's active escalations resolved (the incident is); returns them for the pager update. */
  const closeResolved = async (
    tx: Tx,
    incidentId: number,
  ): Promise<{ ids: number[]; eventId: number | null }> => {
    const { rows } = await tx.query<{ id: number }>(
      `SELECT id FROM escalations WHERE incident_id = $1 AND status = ANY($2::text[]) ORDER BY id FOR UPDATE`,
      [incidentId, ACTIVE_STATUSES],
    );
    let eventId: number | null = null;
    for (const { id } of rows) {
      await updateEscalation(tx, id, ACTIVE_STATUSES, { status: 'resolved', dueInSeconds: null });
      eventId = await appendTimelineEvent(tx, incidentId, 'ai-sre', 'escalation.resolved', false, {
        escalationId: id,
      });
    }
    return { ids: rows.map((r) => r.id), eventId };
  };

  const afterClose = async (incidentId: number, closed: { ids: number[]; eventId: number | null }) => {
    for (const id of closed.ids) {
      await enqueueSafely('the pager resolve', () =>
        deps.queues.enqueue(updatePagersJob, { escalationId: id, action: 'resolve' }),
      );
      await enqueueSafely('nothing', () => removeTimers(id));
    }
    await notifyView(incidentId, closed.eventId);
  };

  /** Removes an escalation's pending step job (its id is derived from the step Postgres says is next). */
  const removeTimers = async (escalationId: number) => {
    const row = await getEscalation(db, escalationId);
    // the timer was set with the revision of the schedule, one before the close that bumped it
    if (row)
      await deps.queues.remove(pageStepJob, { escalationId, step: row.step, revision: row.revision - 1 });
  };

  const scheduleStep = async (escalation: Escalation) => {
    if (escalation.status !== 'paging') return;
    const delayMs = await msUntil(db, escalation.nextAt);
    await enqueueSafely('the next escalation step', () =>
      deps.queues.enqueue(
        pageStepJob,
        { escalationId: escalation.id, step: escalation.step, revision: escalation.revision },
        { delayMs },
      ),
    );
  };

  const service: EscalationService = {
    async kick(incidentId) {
      const { rows } = await db.query<{
        status: string;
        trigger: number | null;
        started: boolean;
        active: boolean;
      }>(
        `SELECT i.status,
                (SELECT max(t.id) FROM timeline_events t WHERE t.incident_id = i.id AND t.type = ANY($3::text[])) AS trigger,
                EXISTS (SELECT 1 FROM escalations e WHERE e.incident_id = i.id AND e.trigger_event_id =
                         (SELECT max(t.id) FROM timeline_events t WHERE t.incident_id = i.id AND t.type = ANY($3::text[]))) AS started,
                EXISTS (SELECT 1 FROM escalations e WHERE e.incident_id = i.id AND e.status = ANY($2::text[])) AS active
           FROM incidents i WHERE i.id = $1`,
        [incidentId, ACTIVE_STATUSES, TRIGGER_TYPES],
      );
      const row = rows[0];
      if (!row) return;
      if (row.status === 'escalated' && row.trigger !== null && !row.started) {
        const eventId = row.trigger;
        await enqueueSafely('the escalation start', () =>
          deps.queues.enqueue(startEscalationJob, { incidentId, eventId }),
        );
      } else if (row.status === 'resolved' && row.active) {
        const closed = await withTransaction(db, (tx) => closeResolved(tx, incidentId));
        await afterClose(incidentId, closed);
      }
    },

    async start(incidentId) {
      const started = await withTransaction(db, async (tx) => {
        const { rows: locked } = await tx.query('SELECT 1 FROM incidents WHERE id = $1 FOR UPDATE', [
          incidentId,
        ]);
        if (locked.length === 0) return null;
        const incident = (await getIncident(tx, incidentId)) as Incident;
        if (incident.status !== 'escalated') return null;
        const { rows: triggers } = await tx.query<{ id: number | null }>(
          `SELECT max(id) AS id FROM timeline_events WHERE incident_id = $1 AND type = ANY($2::text[])`,
          [incidentId, TRIGGER_TYPES],
        );
        const triggerEventId = triggers[0]?.id;
        if (!triggerEventId) return null;
        const events = (await listTimeline(tx, incidentId, { limit: 500, newest: true })).filter(
          (e) => e.id <= triggerEventId,
        );
        const trigger = events.find((e) => e.id === triggerEventId);
        const requested = trigger && SLACK_USER.test(trigger.actor) ? trigger : undefined;
        // a person asked for it: their words and their choice of team, whatever the bot concluded before
        const why: EscalationWhy = requested
          ? {
              ...classifyEscalation(events, incident),
              category: 'manual',
              text: `${requested.actor} asked for a person${typeof requested.data.note === 'string' && requested.data.note ? `: ${requested.data.note}` : ''}`,
              team: typeof requested.data.team === 'string' ? requested.data.team : null,
            }
          : classifyEscalation(events, incident);
        const active = await activeEscalation(tx, incidentId, { forUpdate: true });
        if (active && active.status !== 'exhausted') {
          // someone is on it (or about to be): the new reason joins the running escalation instead of paging again
          const joined = await insertEscalation(tx, {
            incidentId,
            triggerEventId,
            category: why.category,
            reason: why.text,
            route: why.route,
            team: active.team,
            policy: active.policy,
            status: 'joined',
            dueInSeconds: null,
          });
          if (!joined) return null;
          const eventId = await appendTimelineEvent(tx, incidentId, 'ai-sre', 'escalation.joined', true, {
            escalationId: active.id,
            category: why.category,
            reason: why.text,
          });
          return { kind: 'joined' as const, escalation: active, eventId };
        }
        const team = routeTeam(why, incident);
        const decision = events.findLast((e) => e.type === 'decision.made');
        const users = (decision?.data.escalation as { users?: unknown } | null | undefined)?.users;
        const policy = snapshotPolicy(
          team,
          Array.isArray(users) ? users.filter((u) => typeof u === 'string') : [],
        );
        const now = await dbNow(tx);
        const quiet = quietHoursOf(team);
        const night = quiet?.severities.includes(incident.severity) ? quietHoursAt(quiet, now) : null;
        const deferredUntil = night?.quiet ? night.endsAt : null;
        const escalation = await insertEscalation(tx, {
          incidentId,
          triggerEventId,
          category: why.category,
          reason: why.text,
          route: why.route,
          team,
          policy,
          status: deferredUntil ? 'deferred' : 'paging',
          dueInSeconds: deferredUntil ? (deferredUntil.getTime() - now.getTime()) / 1000 : 0,
        });
        if (!escalation) return null;
        let eventId = await appendTimelineEvent(tx, incidentId, 'ai-sre', 'escalation.started', true, {
          escalationId: escalation.id,
          category: why.category,
          categoryText: describeCategory(why.category),
          reason: why.text,
          route: why.route,
          team,
          policy: policy.name,
          deferredUntil: deferredUntil?.toISOString() ?? null,
        });
        if (deferredUntil && quiet) {
          eventId = await appendTimelineEvent(tx, incidentId, 'ai-sre', 'page.deferred', true, {
            escalationId: escalation.id,
            until: deferredUntil.toISOString(),
            reason: `${incident.severity} during quiet hours (${quiet.from}–${quiet.to} ${quiet.timezone})`,
          });
        }
        return { kind: 'started' as const, escalation, eventId, deferredUntil };
      });
      if (!started) return;
      await notifyView(incidentId, started.eventId);
      if (started.kind === 'joined') {
        const acked = started.escalation.ackedBy;
        if (acked && deps.notifier) {
          await deps.notifier
            .postInThread(
              incidentId,
              `<@${acked}>: ${incidentRef(incidentId)} was escalated again (see above).`,
            )
            .catch((err: unknown) =>
              log.warn({ err: (err as Error).message }, 'could not post in the thread'),
            );
        }
        return;
      }
      log.info(
        {
          incident: incidentId,
          escalation: started.escalation.id,
          category: started.escalation.category,
          team: started.escalation.team,
          deferred: started.deferredUntil !== null,
        },
        'escalation started',
      );
      if (started.deferredUntil) {
        const minute = Math.floor(started.deferredUntil.getTime() / 60_000);
        const delayMs = await msUntil(db, started.deferredUntil);
        await enqueueSafely('the morning digest', () =>
          deps.queues.enqueue(digestJob, { minute }, { delayMs }),
        );
        return;
      }
      // level 1 at once, here: a job would only add a queue hop between the decision and the page
      await service.runStep(started.escalation.id, 0);
    },

    async runStep(escalationId, step) {
      const client = await db.connect();
      const lockKey = `ai-sre:escalation:${escalationId}`;
      try {
        const { rows: lock } = await client.query<{ locked: boolean }>(
          'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
          [lockKey],
        );
        // another worker runs a step of this escalation right now; it schedules whatever comes next
        if (!lock[0]?.locked) return {};
        try {
          return await runStepLocked(client, escalationId, step);
        } finally {
          await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lockKey]);
        }
      } finally {
        client.release();
      }
    },

    async acknowledge({ escalationId, userId }) {
      const result = await withTransaction(db, async (tx) => {
        const current = await currentFor(tx, escalationId);
        if ('message' in current) return current;
        const { escalation } = current;
        if (escalation.status === 'acknowledged') {
          return {
            ok: escalation.ackedBy === userId,
            message:
              escalation.ackedBy === userId
                ? `You acknowledged ${incidentRef(escalation.incidentId)} already.`
                : `${incidentRef(escalation.incidentId)} was already acknowledged by <@${escalation.ackedBy}>.`,
          };
        }
        const acked = await updateEscalation(tx, escalation.id, ['paging', 'exhausted', 'deferred'], {
          status: 'acknowledged',
          ackedBy: userId,
          dueInSeconds: null,
        });
        if (!acked) return { ok: false, message: 'The escalation moved on meanwhile; nothing changed.' };
        const eventId = await appendTimelineEvent(
          tx,
          escalation.incidentId,
          userId,
          'page.acknowledged',
          true,
          {
            escalationId: escalation.id,
            by: userId,
            level: (escalation.step % Math.max(1, escalation.policy.levels.length)) + 1,
          },
        );
        return {
          ok: true,
          message: `You acknowledged ${incidentRef(escalation.incidentId)}: nobody else will be paged. The thread has the context.`,
          escalation: acked,
          eventId,
          pendingStep: escalation.step,
          pendingRevision: escalation.revision,
        };
      });
      if ('escalation' in result && result.escalation) {
        const { escalation } = result;
        await enqueueSafely('nothing', async () => {
          await deps.queues.remove(pageStepJob, {
            escalationId: escalation.id,
            step: result.pendingStep,
            revision: result.pendingRevision,
          });
        });
        await enqueueSafely('the pager acknowledge', () =>
          deps.queues.enqueue(updatePagersJob, { escalationId: escalation.id, action: 'acknowledge' }),
        );
        await notifyView(escalation.incidentId, result.eventId);
        log.info(
          { escalation: escalation.id, incident: escalation.incidentId, user: userId },
          'page acknowledged',
        );
      }
      return { ok: result.ok, message: result.message };
    },

    async resolve({ escalationId, userId }) {
      const result = await withTransaction(db, async (tx) => {
        const escalation = await getEscalation(tx, escalationId);
        if (!escalation) return { ok: false, message: `There is no escalation ${escalationId}.` };
        const incidentId = escalation.incidentId;
        await tx.query('SELECT 1 FROM incidents WHERE id = $1 FOR UPDATE', [incidentId]);
        const incident = (await getIncident(tx, incidentId)) as Incident;
        if (incident.status === 'resolved') {
          return { ok: false, message: `${incidentRef(incidentId)} is resolved already.` };
        }
        const moved = await transitionIncident(tx, incidentId, 'resolved', {
          actor: userId,
          reason: `resolved by ${userId} from the page`,
        });
        const closed = await closeResolved(tx, incidentId);
        return {
          ok: true,
          message: `You resolved ${incidentRef(incidentId)}.`,
          incidentId,
          closed: { ids: closed.ids, eventId: closed.eventId ?? moved.eventId },
        };
      });
      if ('closed' in result && result.closed) await afterClose(result.incidentId, result.closed);
      return { ok: result.ok, message: result.message };
    },

    async reassign({ escalationId, userId, to }) {
      if (!SLACK_USER.test(to)) return { ok: false, message: `"${to}" is not a Slack user id.` };
      const result = await withTransaction(db, async (tx) => {
        const current = await currentFor(tx, escalationId);
        if ('message' in current) return current;
        const old = current.escalation;
        const member = memberBySlack(to);
        const eventId = await appendTimelineEvent(tx, old.incidentId, userId, 'page.reassigned', true, {
          escalationId: old.id,
          from: old.ackedBy ? [old.ackedBy] : old.paged.map((p) => p.name),
          to: member?.id ?? to,
          toSlackUser: to,
        });
        await updateEscalation(tx, old.id, ACTIVE_STATUSES, { status: 'reassigned', dueInSeconds: null });
        const firstDelay = old.policy.levels[0]?.delayMinutes ?? BUILT_IN_DELAY_MINUTES;
        const fresh = await insertEscalation(tx, {
          incidentId: old.incidentId,
          triggerEventId: eventId,
          category: old.category,
          reason: old.reason,
          route: old.route,
          team: old.team,
          // the chosen person first; if they do not acknowledge either, the original policy takes over again
          policy: {
            name: 'reassigned',
            team: old.team,
            levels: [{ targets: [{ user: to }], delayMinutes: firstDelay }, ...old.policy.levels],
            repeat: old.policy.repeat,
          },
          status: 'paging',
          dueInSeconds: 0,
        });
        return {
          ok: true,
          message: `Reassigned ${incidentRef(old.incidentId)} to <@${to}>; they are being paged.`,
          old,
          fresh,
          eventId,
        };
      });
      if ('fresh' in result && result.fresh) {
        const { old, fresh } = result;
        await enqueueSafely('nothing', () =>
          deps.queues
            .remove(pageStepJob, { escalationId: old.id, step: old.step, revision: old.revision })
            .then(() => {}),
        );
        await notifyView(old.incidentId, result.eventId);
        await service.runStep(fresh.id, 0);
      }
      return { ok: result.ok, message: result.message };
    },

    async page({ incidentId, userId, team, note }) {
      const ref = incidentRef(incidentId);
      if (team !== null && !(deps.oncall && teamOf(deps.oncall, team))) {
        const known = Object.keys(deps.oncall?.teams ?? {});
        return {
          ok: false,
          message: `There is no team \`${team}\` in the on-call file (teams: ${known.length > 0 ? known.join(', ') : 'none'}).`,
        };
      }
      const result = await withTransaction(db, async (tx) => {
        const { rows } = await tx.query('SELECT 1 FROM incidents WHERE id = $1 FOR UPDATE', [incidentId]);
        if (rows.length === 0) return { ok: false, message: `There is no incident ${ref}.` };
        const incident = (await getIncident(tx, incidentId)) as Incident;
        if (incident.status === 'resolved') return { ok: false, message: `${ref} is resolved.` };
        const active = await activeEscalation(tx, incidentId);
        if (active && active.status !== 'exhausted') {
          const who =
            active.status === 'acknowledged'
              ? `<@${active.ackedBy}> acknowledged it`
              : active.status === 'deferred'
                ? 'it waits for the morning digest (quiet hours)'
                : `paging ${active.paged.map((p) => (p.slackUser ? `<@${p.slackUser}>` : p.name)).join(', ') || 'the on-call'}`;
          return {
            ok: false,
            message: `${ref} is already escalated: ${who}. To hand it to someone else, use Reassign on the page in the thread.`,
          };
        }
        const data = { team, note: note || null };
        if (incident.status === 'escalated') {
          await appendTimelineEvent(tx, incidentId, userId, 'page.requested', true, data);
        } else {
          await transitionIncident(tx, incidentId, 'escalated', {
            actor: userId,
            reason: note ? `paged by hand: ${note}` : 'paged by hand',
            data,
          });
        }
        return {
          ok: true,
          message: `Paging for ${ref}${team ? ` (team ${team})` : ''}; the thread shows who.`,
        };
      });
      if (result.ok) await service.start(incidentId);
      return result;
    },

    async updatePagers(escalationId, action) {
      const escalation = await getEscalation(db, escalationId);
      if (!escalation) return;
      const delivered = new Set(await deliveredPagers(db, escalation.incidentId));
      const pagers = deps.pagers.filter((p) => delivered.has(p.name));
      if (pagers.length === 0) return;
      const slackUser = escalation.paged.find((p) => p.slackUser)?.slackUser ?? undefined;
      const outcome = await updatePagers(
        pagers,
        action,
        {
          incidentId: escalation.incidentId,
          dedupKey: dedupKeyFor(escalation.incidentId),
          target: {
            ...(slackUser ? { slackUser } : {}),
            ...(escalation.team ? { team: escalation.team } : {}),
          },
        },
        attempts,
        log,
      );
      if (!outcome.ok) throw new Error(`a pager did not take the ${action}; retrying`);
    },

    async postDigests() {
      const { rows } = await db.query<{
        id: number;
        incident_id: number;
        team: string | null;
        reason: string;
        category: string;
      }>(
        `SELECT e.id, e.incident_id, e.team, e.reason, e.category FROM escalations e
          WHERE e.status = 'deferred' AND e.next_at <= now() ORDER BY e.id LIMIT 500`,
      );
      if (rows.length === 0) return 0;
      const now = await dbNow(db);
      const byService = new Map<string, { escalationId: number; item: DigestItem }[]>();
      for (const row of rows) {
        const incident = await getIncident(db, row.incident_id);
        if (!incident) continue;
        const oncall: PagedTarget[] =
          row.team && deps.oncall
            ? onCallAt(deps.oncall, row.team, now)
                .slice(0, 1)
                .map((o) => ({ name: o.current.member, slackUser: o.current.slack || null }))
            : [];
        const list = byService.get(incident.service) ?? [];
        list.push({
          escalationId: row.id,
          item: {
            incidentId: incident.id,
            title: incident.title,
            severity: incident.severity,
            status: incident.status,
            why: `${describeCategory(row.category as Escalation['category'])}: ${row.reason}`,
            openedAt: incident.openedAt,
            oncall,
          },
        });
        byService.set(incident.service, list);
      }
      let posted = 0;
      for (const [serviceName, entries] of byService) {
        if (deps.notifier)
          await deps.notifier.postDigest(
            serviceName,
            entries.map((e) => e.item),
          );
        for (const { escalationId, item } of entries) {
          const eventId = await withTransaction(db, async (tx) => {
            const moved = await updateEscalation(tx, escalationId, ['deferred'], {
              status: 'digested',
              dueInSeconds: null,
            });
            if (!moved) return null;
            return appendTimelineEvent(tx, item.incidentId, 'ai-sre', 'page.digested', true, {
              escalationId,
              service: serviceName,
            });
          });
          await notifyView(item.incidentId, eventId);
          posted += 1;
        }
      }
      log.info({ incidents: posted }, 'morning digest posted');
      return posted;
    },

    async sweep(tag) {
      let n = 0;
      const { rows: unstarted } = await db.query<{ incident_id: number; event_id: number }>(
        `SELECT i.id AS incident_id, t.id AS event_id FROM incidents i
           JOIN LATERAL (SELECT max(id) AS id FROM timeline_events
                          WHERE incident_id = i.id AND type = ANY($1::text[])) t ON t.id IS NOT NULL
          WHERE i.status = 'escalated' AND i.updated_at > now() - interval '7 days'
            AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.incident_id = i.id AND e.trigger_event_id = t.id)
            AND (SELECT at FROM timeline_events WHERE id = t.id) < now() - interval '10 seconds'
          LIMIT 500`,
        [TRIGGER_TYPES],
      );
      for (const r of unstarted) {
        await deps.queues.enqueue(startEscalationJob, {
          incidentId: r.incident_id,
          eventId: r.event_id,
          sweep: tag,
        });
        n += 1;
      }
      const { rows: due } = await db.query<{ id: number; step: number; revision: number }>(
        `SELECT id, step, revision FROM escalations
          WHERE status = 'paging' AND next_at < now() - interval '30 seconds' LIMIT 500`,
      );
      // the lost timer's own id (the row's revision is the schedule's): a no-op while Redis still has it
      for (const r of due)
        await deps.queues.enqueue(pageStepJob, { escalationId: r.id, step: r.step, revision: r.revision });
      n += due.length;
      const { rows: digests } = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM escalations WHERE status = 'deferred' AND next_at <= now()`,
      );
      if ((digests[0]?.n ?? 0) > 0) {
        await deps.queues.enqueue(digestJob, { minute: Math.floor(Date.now() / 60_000), sweep: tag });
        n += 1;
      }
      const { rows: stale } = await db.query<{ incident_id: number }>(
        `SELECT DISTINCT e.incident_id FROM escalations e JOIN incidents i ON i.id = e.incident_id
          WHERE i.status = 'resolved' AND e.status = ANY($1::text[]) LIMIT 500`,
        [ACTIVE_STATUSES],
      );
      for (const r of stale) await service.kick(r.incident_id);
      return n + stale.length;
    },

    reassignCandidates(team) {
      const config = deps.oncall;
      if (!config) return [];
      const teams = team && teamOf(config, team) ? [team] : Object.keys(config.teams);
      const seen = new Set<string>();
      const out: { slackUser: string; label: string }[] = [];
      for (const name of teams) {
        for (const m of teamOf(config, name)?.members ?? []) {
          if (seen.has(m.slack)) continue;
          seen.add(m.slack);
          out.push({ slackUser: m.slack, label: `${m.id} (${name})` });
        }
      }
      return out.slice(0, 100);
    },
  };

  /** The escalation a button acts on: itself while active, else the incident's active one (an older packet). */
  async function currentFor(
    tx: Tx,
    escalationId: number,
  ): Promise<{ escalation: Escalation } | { ok: false; message: string }> {
    const clicked = await getEscalation(tx, escalationId, { forUpdate: true });
    if (!clicked) return { ok: false, message: `There is no escalation ${escalationId}.` };
    if (ACTIVE_STATUSES.includes(clicked.status)) return { escalation: clicked };
    const active = await activeEscalation(tx, clicked.incidentId, { forUpdate: true });
    if (active) return { escalation: active };
    const ref = incidentRef(clicked.incidentId);
    return {
      ok: false,
      message:
        clicked.status === 'resolved'
          ? `${ref} is resolved; there is nothing to page any more.`
          : `${ref} has no escalation running any more (${clicked.status}).`,
    };
  }

  async function runStepLocked(
    client: Tx,
    escalationId: number,
    step: number,
  ): Promise<{ retryInMs?: number }> {
    const escalation = await getEscalation(client, escalationId);
    if (escalation?.status !== 'paging' || escalation.step !== step) return {};
    const incident = (await getIncident(client, escalation.incidentId)) as Incident;
    if (incident.status === 'resolved') {
      const closed = await inTransaction(client, (tx) => closeResolved(tx, incident.id));
      await afterClose(incident.id, closed);
      return {};
    }
    const early = await msUntil(client, escalation.nextAt);
    if (early > 1_000) return { retryInMs: early };
    const total = totalSteps(escalation.policy);
    const levels = escalation.policy.levels.length;
    if (step >= total) {
      const eventId = await inTransaction(client, async (tx) => {
        const moved = await updateEscalation(tx, escalation.id, ['paging'], {
          status: 'exhausted',
          dueInSeconds: null,
        });
        if (!moved) return null;
        return appendTimelineEvent(tx, incident.id, 'ai-sre', 'escalation.exhausted', true, {
          escalationId: escalation.id,
          levels,
          cycles: escalation.policy.repeat + 1,
        });
      });
      if (eventId === null) return {};
      log.warn({ incident: incident.id, escalation: escalation.id }, 'nobody acknowledged the escalation');
      await deps.notifier
        ?.postInThread(
          incident.id,
          levels === 0
            ? `<!here> ${incidentRef(incident.id)} needs a person, but there is nobody to page: no on-call team or policy covers ${incident.service} (see ONCALL_FILE).`
            : `<!here> Nobody acknowledged ${incidentRef(incident.id)} after every level of the ${escalation.policy.name} policy. Can someone take it?`,
        )
        .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'could not post in the thread'));
      await notifyView(incident.id, eventId);
      return {};
    }
    const level = escalation.policy.levels[step % levels] as PolicySnapshot['levels'][number];
    const now = await dbNow(client);
    const targets = resolveTargets(level.targets, now);
    const packet = await buildContextPacket(client, incident.id);
    if (!packet) return {};
    const view: Escalation = {
      ...escalation,
      paged: targets.map((t) => ({ name: t.name, slackUser: t.slackUser })),
    };
    const reached: ResolvedTarget[] = [];
    const deliveredBy = new Set<string>();
    /** `retryable`: a pager failed (it may work in a minute); otherwise nobody can be paged for this target */
    const failures: { target: string; error: string; retryable: boolean }[] = [];
    for (const target of targets) {
      if (target.problem) {
        failures.push({ target: target.name, error: target.problem, retryable: false });
        continue;
      }
      // claimed in Postgres before anything is sent: a retried step never pages the same person twice
      const key = target.usergroup
        ? `group:${target.usergroup}`
        : (target.slackUser ?? `name:${target.name}`);
      if (!(await claimPage(client, escalation.id, step, key))) {
        reached.push(target);
        continue;
      }
      if (target.usergroup) {
        const posted = await deps.notifier
          ?.postInThread(
            incident.id,
            `:pager: <!subteam^${target.usergroup}> ${incidentRef(incident.id)} needs a person (level ${(step % levels) + 1}).`,
          )
          .catch(() => false);
        const error = 'the group can only be paged in the Slack thread, which is not there yet';
        await settlePage(client, escalation.id, step, key, {
          sent: posted === true,
          pager: 'slack',
          error: posted ? null : error,
        });
        if (posted) reached.push(target);
        else failures.push({ target: target.name, error, retryable: true });
        continue;
      }
      const chain = await pageWithFallback(
        deps.pagers,
        buildPage(incident, view, packet, target),
        attempts,
        log,
      );
      const error = chain.ok
        ? null
        : deps.pagers.length === 0
          ? 'no pager is configured'
          : (chain.records.at(-1)?.error ?? 'every pager failed');
      await settlePage(client, escalation.id, step, key, { sent: chain.ok, pager: chain.deliveredBy, error });
      if (chain.ok && chain.deliveredBy) {
        reached.push(target);
        deliveredBy.add(chain.deliveredBy);
        const mention = chain.outcome?.threadMention;
        if (mention) {
          await deps.notifier
            ?.postInThread(incident.id, mention)
            .catch((err: unknown) =>
              log.warn({ err: (err as Error).message }, 'could not post the page mention'),
            );
        }
      } else {
        failures.push({
          target: target.name,
          error: error ?? 'every pager failed',
          retryable: deps.pagers.length > 0,
        });
      }
    }
    const levelDelaySeconds = (level.delayMinutes * deps.minuteMs) / 1000;
    // Every pager failed for everyone at this level (a Slack or PagerDuty outage): the same level is tried again,
    // every half policy-minute, until its delay has passed; only then does the walk go on. Nobody on call at all:
    // go on at once.
    const startedAt = escalation.stepStartedAt;
    const firstTry = startedAt === null;
    const triedForSeconds = startedAt === null ? 0 : (now.getTime() - startedAt.getTime()) / 1000;
    const retrySame =
      reached.length === 0 && failures.some((f) => f.retryable) && triedForSeconds < levelDelaySeconds;
    const advanced = await inTransaction(client, async (tx) => {
      const { rows } = await tx.query(
        'SELECT 1 FROM escalations WHERE id = $1 AND step = $2 AND status = $3 FOR UPDATE',
        [escalation.id, step, 'paging'],
      );
      if (rows.length === 0) return null;
      const moved = retrySame
        ? await updateEscalation(tx, escalation.id, ['paging'], {
            dueInSeconds: deps.minuteMs / 2 / 1000,
            stepStartedAt: 'now',
          })
        : await updateEscalation(tx, escalation.id, ['paging'], {
            step: step + 1,
            dueInSeconds: reached.length > 0 ? levelDelaySeconds : 0,
            paged: reached.map((t) => ({ name: t.name, slackUser: t.slackUser })),
            stepStartedAt: null,
          });
      let eventId: number | null = null;
      if (reached.length > 0) {
        eventId = await appendTimelineEvent(tx, incident.id, 'ai-sre', 'page.sent', true, {
          escalationId: escalation.id,
          level: (step % levels) + 1,
          cycle: Math.floor(step / levels) + 1,
          targets: reached.map((t) => ({ name: t.name, slackUser: t.slackUser })),
          deliveredBy: [...deliveredBy],
        });
      }
      // a failure is recorded once per step, not on every retry of an outage
      if (firstTry || !retrySame) {
        for (const f of failures) {
          eventId = await appendTimelineEvent(tx, incident.id, 'ai-sre', 'page.failed', true, {
            escalationId: escalation.id,
            level: (step % levels) + 1,
            target: f.target,
            error: f.error,
            ...(retrySame ? { retrying: true } : {}),
          });
        }
      }
      return { moved, eventId };
    });
    if (!advanced?.moved) return {};
    log.info(
      {
        incident: incident.id,
        escalation: escalation.id,
        step,
        reached: reached.map((t) => t.name),
        failures: failures.length,
      },
      'escalation step paged',
    );
    await notifyView(incident.id, advanced.eventId);
    await scheduleStep(advanced.moved);
    return {};
  }

  return service;
}
