/**
 * The chaos suite's invariants, checked against Postgres and the Slack stand-in once the system has settled. Each
 * check looks only at the scenario's own services, so one scenario's failure is not blamed on another.
 */
import type pg from 'pg';
import type { SlackStub, StoredMessage } from '../src/devtools/slack-standin/stand-in.js';
import type { Ack } from './chaos-load.js';

export interface Check {
  name: string;
  pass: boolean;
  /** what was counted, and on failure what broke (the first few cases) */
  detail: string;
}

/** incident statuses an incident may end in once the system settles */
const FINAL_STATUSES = ['resolved', 'escalated'];
/** the events transition_incident() writes, `incident.<new status>` */
const STATUS_EVENTS = new Set(
  ['investigating', 'mitigating', 'awaiting_approval', 'escalated', 'resolved'].map((s) => `incident.${s}`),
);
/** remediation step statuses that mean the action ran (or may have run) */
const RAN_STATUSES = [
  'started',
  'succeeded',
  'failed',
  'verifying',
  'verified',
  'verification_failed',
  'unknown',
];
/** thread records: the first event of a run, a guarded step, an escalation becomes a message edited in place */
const RECORD_EVENTS: Record<string, { kind: string; idField: string }> = {
  'runbook.started': { kind: 'execution', idField: 'executionId' },
  'approval.requested': { kind: 'approval', idField: 'approvalId' },
  'escalation.started': { kind: 'escalation', idField: 'escalationId' },
};

interface IncidentRow {
  id: number;
  service: string;
  status: string;
}

interface EventRow {
  id: number;
  incident_id: number;
  at: Date;
  type: string;
  notify: boolean;
  data: Record<string, unknown>;
}

const ref = (id: number) => `INC-${id}`;
const sample = (items: string[], n = 5) =>
  items.length > n ? `${items.slice(0, n).join('; ')}; … ${items.length - n} more` : items.join('; ');

/** Whether the scenario's incidents are all in a final state, paged when escalated, and shown in Slack up to date. */
export async function settled(
  pool: pg.Pool,
  services: string[],
): Promise<{ done: boolean; pending: string }> {
  const { rows } = await pool.query<{ id: number; why: string }>(
    `SELECT i.id,
            CASE WHEN i.status NOT IN ('resolved', 'escalated') THEN 'status ' || i.status
                 WHEN i.status = 'escalated' AND NOT EXISTS (
                   SELECT 1 FROM timeline_events t WHERE t.incident_id = i.id AND t.type = 'page.sent') THEN 'not paged'
                 WHEN m.incident_id IS NULL THEN 'no card'
                 WHEN m.posted_event_id < (SELECT max(t.id) FROM timeline_events t WHERE t.incident_id = i.id AND t.notify)
                   THEN 'thread behind'
                 ELSE NULL END AS why
       FROM incidents i LEFT JOIN slack_messages m ON m.incident_id = i.id
      WHERE i.service = ANY($1)`,
    [services],
  );
  const pending = rows.filter((r) => r.why !== null);
  return {
    done: pending.length === 0 && rows.length > 0,
    pending:
      rows.length === 0
        ? 'no incidents yet'
        : sample(
            pending.map((r) => `${ref(r.id)} ${r.why}`),
            4,
          ),
  };
}

export async function checkInvariants(
  pool: pg.Pool,
  stub: SlackStub,
  services: string[],
  acks: Ack[],
): Promise<Check[]> {
  const checks: Check[] = [];
  const incidents = (
    await pool.query<IncidentRow>(
      'SELECT id::int, service, status FROM incidents WHERE service = ANY($1) ORDER BY id',
      [services],
    )
  ).rows;
  const ids = incidents.map((i) => i.id);
  const events = (
    await pool.query<EventRow>(
      `SELECT id::int, incident_id::int, at, type, notify, data FROM timeline_events
        WHERE incident_id = ANY($1::bigint[]) ORDER BY incident_id, id`,
      [ids],
    )
  ).rows;
  const eventsOf = new Map<number, EventRow[]>();
  for (const e of events) eventsOf.set(e.incident_id, [...(eventsOf.get(e.incident_id) ?? []), e]);

  // ---- no accepted alert lost
  {
    const deliveryIds = acks.map((a) => a.deliveryId);
    const stored = new Set(
      (
        await pool.query<{ id: number }>(
          'SELECT id::int FROM alert_deliveries WHERE id = ANY($1::bigint[])',
          [deliveryIds],
        )
      ).rows.map((r) => r.id),
    );
    const firing = new Set(acks.filter((a) => a.status === 'firing').flatMap((a) => a.fingerprints));
    const attached = new Set(
      (
        await pool.query<{ fingerprint: string }>(
          'SELECT DISTINCT fingerprint FROM incident_alerts WHERE fingerprint = ANY($1)',
          [[...firing]],
        )
      ).rows.map((r) => r.fingerprint),
    );
    const missingDeliveries = deliveryIds.filter((id) => !Number.isInteger(id) || !stored.has(id));
    const missingAlerts = [...firing].filter((f) => !attached.has(f));
    checks.push({
      name: 'no accepted alert lost',
      pass: missingDeliveries.length === 0 && missingAlerts.length === 0 && acks.length > 0,
      detail:
        `${stored.size}/${deliveryIds.length} answered deliveries in alert_deliveries, ` +
        `${attached.size}/${firing.size} firing fingerprints in incident_alerts` +
        (missingDeliveries.length ? `; missing deliveries ${sample(missingDeliveries.map(String))}` : '') +
        (missingAlerts.length ? `; missing alerts ${sample(missingAlerts)}` : ''),
    });
  }

  // ---- no incident duplicated: per service, an incident opens only after the previous one resolved (by event id:
  // the intake serialises a service's deliveries, so its event ids are the order in which they were applied)
  {
    const spans = incidents.map((i) => {
      const list = eventsOf.get(i.id) ?? [];
      const opened = list.find((e) => e.type === 'incident.opened')?.id ?? 0;
      const resolved = list.find((e) => e.type === 'incident.resolved')?.id ?? Number.POSITIVE_INFINITY;
      return { ...i, opened, resolved };
    });
    const overlaps: string[] = [];
    for (const a of spans) {
      for (const b of spans) {
        if (a.service === b.service && a.id < b.id && b.opened < a.resolved) {
          overlaps.push(`${a.service}: ${ref(b.id)} opened while ${ref(a.id)} was open`);
        }
      }
    }
    const openTwice = (
      await pool.query<{ fingerprint: string; n: number }>(
        `SELECT a.fingerprint, count(*)::int AS n FROM incident_alerts a JOIN incidents i ON i.id = a.incident_id
          WHERE a.open AND i.service = ANY($1) GROUP BY a.fingerprint HAVING count(*) > 1`,
        [services],
      )
    ).rows;
    checks.push({
      name: 'no incident duplicated',
      pass: overlaps.length === 0 && openTwice.length === 0,
      detail:
        `${incidents.length} incidents over ${new Set(incidents.map((i) => i.service)).size} services; ` +
        `${overlaps.length} overlapping, ${openTwice.length} alerts open in two incidents` +
        (overlaps.length ? `: ${sample(overlaps)}` : '') +
        (openTwice.length ? `: ${sample(openTwice.map((r) => `${r.fingerprint} ×${r.n}`))}` : ''),
    });
  }

  // ---- no action repeated: remediation steps ran at most once per (execution, step); each person was paged at most
  // once per escalation level and cycle (page.sent), and got at most one DM per incident and level in Slack
  {
    const steps = (
      await pool.query<{ execution_id: number; step_id: string; n: number }>(
        `SELECT execution_id::int, step_id, count(*)::int AS n FROM remediation_steps
          WHERE incident_id = ANY($1::bigint[]) AND status = ANY($2) GROUP BY 1, 2 HAVING count(*) > 1`,
        [ids, RAN_STATUSES],
      )
    ).rows;
    const pageKeys = new Map<string, number>();
    let pages = 0;
    for (const e of events) {
      if (e.type !== 'page.sent') continue;
      pages += 1;
      const targets = Array.isArray(e.data.targets) ? (e.data.targets as { name?: string }[]) : [];
      for (const t of targets) {
        const key = `${ref(e.incident_id)} escalation ${String(e.data.escalationId)} level ${String(e.data.level)} cycle ${String(e.data.cycle)} ${t.name}`;
        pageKeys.set(key, (pageKeys.get(key) ?? 0) + 1);
      }
    }
    const repeatedPages = [...pageKeys].filter(([, n]) => n > 1).map(([k, n]) => `${k} ×${n}`);
    // the pager's DMs, as the stand-in received them: one per person and incident (one level is reached in a run)
    const dms = new Map<string, number>();
    const incidentIds = new Set(ids);
    for (const m of stub.conversations.messages()) {
      if (!m.channel.startsWith('D') || m.threadTs) continue;
      // a page carries the packet's Acknowledge button; "INC-2 was resolved." follow-ups are not pages
      if (!JSON.stringify(m.blocks ?? []).includes('page_acknowledge')) continue;
      const id = incidentIdIn(m.text);
      if (id === null || !incidentIds.has(id)) continue;
      const key = `${ref(id)} DM ${m.channel}`;
      dms.set(key, (dms.get(key) ?? 0) + 1);
    }
    const repeatedDms = [...dms].filter(([, n]) => n > 1).map(([k, n]) => `${k} ×${n}`);
    checks.push({
      name: 'no action repeated',
      pass: steps.length === 0 && repeatedPages.length === 0 && repeatedDms.length === 0,
      detail:
        `${pages} page.sent events, ${[...dms.values()].reduce((a, b) => a + b, 0)} page DMs in the stand-in, ` +
        `${steps.length} remediation steps run twice` +
        (repeatedPages.length ? `; repeated pages ${sample(repeatedPages)}` : '') +
        (repeatedDms.length ? `; repeated DMs ${sample(repeatedDms)}` : '') +
        (steps.length
          ? `; ${sample(steps.map((s) => `execution ${s.execution_id} ${s.step_id} ×${s.n}`))}`
          : ''),
    });
  }

  // ---- every incident ends resolved or escalated; escalated ones have an escalation that paged someone
  {
    const escalated = new Set(
      (
        await pool.query<{ incident_id: number }>(
          'SELECT DISTINCT incident_id::int FROM escalations WHERE incident_id = ANY($1::bigint[])',
          [ids],
        )
      ).rows.map((r) => r.incident_id),
    );
    const bad: string[] = [];
    const byStatus = new Map<string, number>();
    for (const i of incidents) {
      byStatus.set(i.status, (byStatus.get(i.status) ?? 0) + 1);
      if (!FINAL_STATUSES.includes(i.status)) bad.push(`${ref(i.id)} ${i.status}`);
      else if (i.status === 'escalated') {
        const paged = (eventsOf.get(i.id) ?? []).some((e) => e.type === 'page.sent');
        if (!escalated.has(i.id)) bad.push(`${ref(i.id)} escalated without an escalation row`);
        else if (!paged) bad.push(`${ref(i.id)} escalated, nobody paged`);
      }
    }
    checks.push({
      name: 'every incident resolved or escalated (and paged)',
      pass: bad.length === 0 && incidents.length > 0,
      detail: `${[...byStatus].map(([s, n]) => `${n} ${s}`).join(', ') || 'no incidents'}${bad.length ? `; ${sample(bad)}` : ''}`,
    });
  }

  // ---- the timeline is complete and in order
  {
    const bad: string[] = [];
    for (const i of incidents) {
      const list = eventsOf.get(i.id) ?? [];
      if (list[0]?.type !== 'incident.opened') {
        bad.push(`${ref(i.id)} starts with ${list[0]?.type ?? 'nothing'}`);
        continue;
      }
      for (let k = 1; k < list.length; k++) {
        const prev = list[k - 1] as EventRow;
        const cur = list[k] as EventRow;
        if (cur.at.getTime() < prev.at.getTime()) {
          bad.push(
            `${ref(i.id)} event ${cur.id} ${cur.type} at ${cur.at.toISOString()} before event ${prev.id} ${prev.type} at ${prev.at.toISOString()}`,
          );
          break;
        }
      }
      // status changes: each starts where the previous ended, from 'open', and the last one is the current status
      let status = 'open';
      for (const e of list) {
        const to = e.data.to;
        const from = e.data.from;
        // incident.severity_changed also carries from/to: only the statuses' events are transitions
        if (!STATUS_EVENTS.has(e.type) || typeof to !== 'string' || typeof from !== 'string') continue;
        if (from !== status || e.type !== `incident.${to}`) {
          bad.push(`${ref(i.id)} ${e.type} from ${from} while ${status}`);
          break;
        }
        status = to;
      }
      if (status !== i.status) bad.push(`${ref(i.id)} is ${i.status}, its timeline says ${status}`);
    }
    checks.push({
      name: 'timeline complete and in order',
      pass: bad.length === 0 && incidents.length > 0,
      detail: `${events.length} events of ${incidents.length} incidents${bad.length ? `; ${sample(bad)}` : ''}`,
    });
  }

  // ---- one Slack card per incident, and its thread delivered in timeline order
  {
    const cards = new Map(
      (
        await pool.query<{ incident_id: number; channel: string; ts: string; posted_event_id: number }>(
          `SELECT incident_id::int, channel, ts, posted_event_id::int FROM slack_messages
            WHERE incident_id = ANY($1::bigint[])`,
          [ids],
        )
      ).rows.map((r) => [r.incident_id, r]),
    );
    const records = new Map(
      (
        await pool.query<{ incident_id: number; key: string; ts: string }>(
          'SELECT incident_id::int, key, ts FROM slack_thread_messages WHERE incident_id = ANY($1::bigint[])',
          [ids],
        )
      ).rows.map((r) => [`${r.incident_id}/${r.ts}`, r.key]),
    );
    const topLevel = new Map<number, StoredMessage[]>();
    for (const m of stub.conversations.messages()) {
      if (m.threadTs || m.channel.startsWith('D')) continue;
      const id = incidentIdIn(headerOf(m));
      if (id !== null) topLevel.set(id, [...(topLevel.get(id) ?? []), m]);
    }
    const bad: string[] = [];
    let threadPosts = 0;
    for (const i of incidents) {
      const card = cards.get(i.id);
      const posted = topLevel.get(i.id) ?? [];
      if (!card) {
        bad.push(`${ref(i.id)} has no slack_messages row`);
        continue;
      }
      if (posted.length !== 1 || posted[0]?.ts !== card.ts) {
        bad.push(`${ref(i.id)} has ${posted.length} cards in Slack (${posted.map((m) => m.ts).join(', ')})`);
        continue;
      }
      const list = eventsOf.get(i.id) ?? [];
      const newestNotify = list.filter((e) => e.notify).at(-1)?.id ?? 0;
      if (card.posted_event_id < newestNotify) {
        bad.push(`${ref(i.id)} thread posted up to event ${card.posted_event_id} of ${newestNotify}`);
        continue;
      }
      // what the thread should read, event by event (records stand for their event), and what it reads
      const expected = list
        .filter((e) => e.notify)
        .map((e) => {
          const record = RECORD_EVENTS[e.type];
          const recordId = record ? e.data[record.idField] : undefined;
          return record && typeof recordId === 'number' ? `${record.kind}:${recordId}` : e.type;
        });
      const actual: string[] = [];
      // by the root's ts alone: the stand-in's ts values are unique across channels
      for (const m of stub.conversations.messages().filter((r) => r.threadTs === card.ts)) {
        threadPosts += 1;
        const key = records.get(`${i.id}/${m.ts}`);
        if (key) {
          if (/^(execution|approval|escalation):/.test(key)) actual.push(key);
          continue;
        }
        for (const line of m.text.split('\n')) {
          const type = /^([a-z_]+(?:\.[a-z_]+)+): /.exec(line)?.[1];
          if (type) actual.push(type);
        }
      }
      // the card itself shows the events before the first record; the thread must be exactly the rest, in order
      const shown = expected.slice(expected.length - actual.length);
      const coveredByCard = expected.slice(0, expected.length - actual.length);
      if (
        actual.length > expected.length ||
        shown.join(' ') !== actual.join(' ') ||
        coveredByCard.some((t) => t.includes(':'))
      ) {
        bad.push(`${ref(i.id)} thread reads [${actual.join(', ')}], timeline says [${expected.join(', ')}]`);
      }
    }
    checks.push({
      name: 'one Slack card each, thread complete and in order',
      pass: bad.length === 0 && incidents.length > 0,
      detail: `${cards.size} cards for ${incidents.length} incidents, ${threadPosts} thread posts${bad.length ? `; ${sample(bad, 3)}` : ''}`,
    });
  }
  return checks;
}

function headerOf(m: StoredMessage): string {
  const header = m.blocks?.find((b) => b.type === 'header') as { text?: { text?: string } } | undefined;
  return header?.text?.text ?? '';
}

function incidentIdIn(text: string): number | null {
  const match = /\bINC-(\d+)\b/.exec(text);
  return match ? Number(match[1]) : null;
}
