import type { Queryable } from '../store/db.js';

/** Whether automated actions may run for a service: the kill switch, global ('*') or per service. */
export interface AutomationState {
  enabled: boolean;
  /** the switch that decided ('*' or the service); null when nobody ever touched one (on by default) */
  scope: string | null;
  changedBy: string | null;
  changedAt: Date | null;
  reason: string | null;
}

interface SwitchRow {
  scope: string;
  enabled: boolean;
  changed_by: string;
  changed_at: Date;
  reason: string | null;
}

/** The global switch wins when it is off; else the service's own; else on. Read from Postgres every time. */
export async function automationState(db: Queryable, service: string | null): Promise<AutomationState> {
  const { rows } = await db.query<SwitchRow>(
    `SELECT scope, enabled, changed_by, changed_at, reason FROM automation_switches WHERE scope = '*' OR scope = $1`,
    [service ?? '*'],
  );
  const global = rows.find((r) => r.scope === '*');
  const own = rows.find((r) => r.scope !== '*');
  const deciding = global && !global.enabled ? global : (own ?? global);
  if (!deciding) return { enabled: true, scope: null, changedBy: null, changedAt: null, reason: null };
  return {
    enabled: deciding.enabled,
    scope: deciding.scope,
    changedBy: deciding.changed_by,
    changedAt: deciding.changed_at,
    reason: deciding.reason,
  };
}

/** Every switch that is off, for `@ai-sre status`. */
export async function listDisabledSwitches(db: Queryable): Promise<SwitchRow[]> {
  const { rows } = await db.query<SwitchRow>(
    `SELECT scope, enabled, changed_by, changed_at, reason FROM automation_switches WHERE NOT enabled ORDER BY scope`,
  );
  return rows;
}

/** Flips a switch and records who did it (the caller writes the timeline/audit). */
export async function setAutomation(
  db: Queryable,
  input: { scope: string; enabled: boolean; actor: string; reason: string | null },
): Promise<void> {
  await db.query(
    `INSERT INTO automation_switches (scope, enabled, changed_by, reason, changed_at) VALUES ($1, $2, $3, $4, now())
     ON CONFLICT (scope) DO UPDATE SET enabled = EXCLUDED.enabled, changed_by = EXCLUDED.changed_by,
       reason = EXCLUDED.reason, changed_at = now()`,
    [input.scope, input.enabled, input.actor, input.reason],
  );
}
