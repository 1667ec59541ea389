import type { LoadedRunbook } from './loader.js';
import type { Runbook, Trigger } from './runbook.schema.js';

/** An alert of the incident, as matching sees it. */
export interface MatchableAlert {
  name: string;
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface RunbookMatch {
  loaded: LoadedRunbook;
  /**
   * label: the alert named its runbook (`runbook_id` label/annotation); trigger; manual: a person asked for it
   * (`/incident run`); default: nothing matched, the default triage playbook runs
   */
  matchedBy: 'label' | 'trigger' | 'manual' | 'default';
  detail: { alert?: string; trigger?: number; alternatives?: string[]; requested?: string; by?: string };
}

/** The runbooks a deployment has, by id, with the default triage playbook. */
export interface RunbookCatalog {
  list(): LoadedRunbook[];
  get(id: string): LoadedRunbook | undefined;
  defaultRunbook(): LoadedRunbook | undefined;
}

export function createCatalog(runbooks: LoadedRunbook[]): RunbookCatalog {
  const byId = new Map(runbooks.map((r) => [r.runbook.id, r]));
  const fallback = runbooks.find((r) => r.runbook.default);
  return {
    list: () => [...byId.values()],
    get: (id) => byId.get(id),
    defaultRunbook: () => fallback,
  };
}

function matches(matcher: string, value: string | undefined): boolean {
  if (value === undefined) return false;
  if (matcher.startsWith('~')) return new RegExp(`^(?:${matcher.slice(1)})$`).test(value);
  return matcher === value;
}

function labelsMatch(wanted: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(wanted).every(([k, m]) => matches(m, labels[k]));
}

export function servesService(runbook: Runbook, service: string): boolean {
  const services = Array.isArray(runbook.service) ? runbook.service : [runbook.service];
  return services.some((s) => s === '*' || matches(s, service));
}

/** A metric alert's number: the `value` annotation or label (detection and generic senders set it). */
function alertValue(alert: MatchableAlert): number | null {
  const raw = alert.annotations.value ?? alert.labels.value;
  if (raw === undefined) return null;
  const n = Number(raw);
  return Number.isFinite(n) ? n : null;
}

/** How specific a trigger is: more label matchers and an exact alert name beat a regex. */
function triggerMatches(trigger: Trigger, alert: MatchableAlert): number | null {
  if ('manual' in trigger) return null;
  if ('alert' in trigger) {
    if (!matches(trigger.alert, alert.name) || !labelsMatch(trigger.labels, alert.labels)) return null;
    return 10 + (trigger.alert.startsWith('~') ? 0 : 5) + Object.keys(trigger.labels).length;
  }
  const metric = alert.labels.__name__ ?? alert.labels.metric;
  if (metric !== trigger.metric || !labelsMatch(trigger.labels, alert.labels)) return null;
  const value = alertValue(alert);
  if (value === null) return null;
  if (trigger.above !== undefined && !(value > trigger.above)) return null;
  if (trigger.below !== undefined && !(value < trigger.below)) return null;
  return 10 + Object.keys(trigger.labels).length;
}

/**
 * Picks the runbook for an incident: a runbook the alert names (`runbook_id` label or annotation) wins; else the most
 * specific trigger matching one of its alerts (firing alerts first, a runbook for this service before a wildcard one,
 * then the id for a stable order); else the default triage playbook. Null only when there is no default either.
 */
export function matchRunbook(
  catalog: RunbookCatalog,
  incident: { service: string; labels: Record<string, string> },
  alerts: MatchableAlert[],
): RunbookMatch | null {
  const ordered = [...alerts].sort((a, b) => (a.status === b.status ? 0 : a.status === 'firing' ? -1 : 1));
  for (const alert of [
    ...ordered,
    { name: '', status: 'firing' as const, labels: incident.labels, annotations: {} },
  ]) {
    const requested = alert.labels.runbook_id ?? alert.annotations.runbook_id;
    const loaded = requested ? catalog.get(requested) : undefined;
    if (loaded) return { loaded, matchedBy: 'label', detail: { alert: alert.name || undefined, requested } };
  }
  const candidates: { loaded: LoadedRunbook; score: number; alert: string; trigger: number }[] = [];
  for (const loaded of catalog.list()) {
    if (loaded.runbook.default || !servesService(loaded.runbook, incident.service)) continue;
    let best: { score: number; alert: string; trigger: number } | null = null;
    ordered.forEach((alert, alertIndex) => {
      loaded.runbook.triggers.forEach((trigger, i) => {
        const s = triggerMatches(trigger, alert);
        if (s === null) return;
        const specific = Array.isArray(loaded.runbook.service) || loaded.runbook.service !== '*' ? 100 : 0;
        const firing = alert.status === 'firing' ? 1000 : 0;
        const score = firing + specific + s - alertIndex * 0.001;
        if (!best || score > best.score) best = { score, alert: alert.name, trigger: i };
      });
    });
    if (best) candidates.push({ loaded, ...(best as { score: number; alert: string; trigger: number }) });
  }
  candidates.sort((a, b) => b.score - a.score || a.loaded.runbook.id.localeCompare(b.loaded.runbook.id));
  const top = candidates[0];
  if (top) {
    return {
      loaded: top.loaded,
      matchedBy: 'trigger',
      detail: {
        alert: top.alert,
        trigger: top.trigger,
        alternatives: candidates.slice(1).map((c) => c.loaded.runbook.id),
      },
    };
  }
  const fallback = catalog.defaultRunbook();
  return fallback ? { loaded: fallback, matchedBy: 'default', detail: {} } : null;
}
