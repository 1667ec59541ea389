import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import pg from 'pg';
import type { Incident } from '../../src/incidents/incident.js';
import { openIncident, transitionIncident } from '../../src/incidents/lifecycle.js';
import type { Queryable } from '../../src/store/db.js';
import { ensureDatabase, runMigrations } from '../../src/store/migrate.js';
import { dropDatabase } from './test-app.js';

/**
 * Gives the enclosing `describe` its own migrated database, `ai_sre_test_<tag>_<random>`, dropped after the suite.
 * Call it inside `describe`, ahead of the suite's own hooks: it registers a `before` and an `after`. The pool is
 * made at once but connects on its first query, so use it only in later hooks and in tests. `pool` makes another
 * pool (the app's `createDb`, whose int8 parsing is what production sees); default: a plain `pg.Pool` of 4.
 */
export function useSeedDatabase(
  tag: string,
  opts: { pool?: (databaseUrl: string) => pg.Pool } = {},
): pg.Pool {
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/ai_sre_test_${tag}_${randomBytes(5).toString('hex')}`;
  const db = opts.pool?.(databaseUrl) ?? new pg.Pool({ connectionString: databaseUrl, max: 4 });
  db.on('error', () => {});
  before(async () => {
    await ensureDatabase(databaseUrl);
    await runMigrations(databaseUrl);
  });
  after(async () => {
    await db.end();
    await dropDatabase(databaseUrl);
  });
  return db;
}

export interface SeededIncident {
  service: string;
  title: string;
  summary?: string;
  /** the one alert's name (and the incident's `alertname` label) */
  alert: string;
  /** the first signal is two minutes before */
  openedAt: Date;
  /** the alert's summary; default: the incident's */
  alertSummary?: string;
  generatorUrl?: string | null;
  annotations?: Record<string, string>;
}

/**
 * A critical alertmanager incident opened through `openIncident`, with one firing alert (instance `db-1:9187`,
 * as `buildAlert` has it), then moved back in time to `openedAt`.
 */
export async function seedIncident(db: Queryable, spec: SeededIncident): Promise<Incident> {
  const firstSignalAt = new Date(spec.openedAt.getTime() - 120_000);
  const { incident } = await openIncident(
    db,
    {
      service: spec.service,
      title: spec.title,
      summary: spec.summary ?? '',
      severity: 'critical',
      source: 'alertmanager',
      labels: { alertname: spec.alert, service: spec.service },
      links: [],
      firstSignalAt,
    },
    'alertmanager',
  );
  await db.query(
    `INSERT INTO incident_alerts (incident_id, fingerprint, source, name, status, severity, summary, labels, annotations,
                                  starts_at, generator_url)
     VALUES ($1, $2, 'alertmanager', $3, 'firing', 'critical', $4, $5, $6, $7, $8)`,
    [
      incident.id,
      randomBytes(8).toString('hex'),
      spec.alert,
      spec.alertSummary ?? spec.summary ?? '',
      JSON.stringify({ alertname: spec.alert, service: spec.service, instance: 'db-1:9187' }),
      JSON.stringify(spec.annotations ?? {}),
      spec.openedAt,
      spec.generatorUrl ?? null,
    ],
  );
  await db.query('UPDATE incidents SET opened_at = $2, alert_count = 1 WHERE id = $1', [
    incident.id,
    spec.openedAt,
  ]);
  return { ...incident, openedAt: spec.openedAt, firstSignalAt };
}

/** Resolves a seeded incident (writing `incident.resolved`), then dates the resolution `afterMinutes` past its opening. */
export async function resolveSeededIncident(
  db: Queryable,
  incident: Pick<Incident, 'id' | 'openedAt'>,
  change: { actor: string; reason: string; afterMinutes: number },
): Promise<void> {
  await transitionIncident(db, incident.id, 'resolved', { actor: change.actor, reason: change.reason });
  await db.query('UPDATE incidents SET resolved_at = $2 WHERE id = $1', [
    incident.id,
    new Date(incident.openedAt.getTime() + change.afterMinutes * 60_000),
  ]);
}
