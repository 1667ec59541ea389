import type pg from 'pg';
import { z } from 'zod';
import type { Queryable } from './db.js';

export const DeployStatus = z.enum(['started', 'succeeded', 'failed', 'rolled_back']);
export type DeployStatus = z.infer<typeof DeployStatus>;

/** One deploy, whatever sent it: what every deploy payload is normalised to before it is stored. */
export interface DeployEventRecord {
  service: string;
  /** default 'production' */
  environment: string;
  version: string;
  previousVersion: string | null;
  status: DeployStatus;
  /** when the deploy happened; the receive time when the sender gave none */
  deployedAt: Date;
  deployedBy: string | null;
  commit: string | null;
  url: string | null;
  description: string | null;
  /** the sender's id of the deploy: a re-delivery with the same id (per service) is stored once */
  externalId: string | null;
}

export interface StoredDeployEvent extends DeployEventRecord {
  id: number;
  receivedAt: Date;
}

/**
 * Stores the events of one delivery in one statement, so a delivery is stored whole or not at all. An event whose
 * (service, id) is already stored, or repeated earlier in the same delivery, is skipped: senders retry whole bodies.
 * Events without an id cannot be told apart from a re-delivery and are always stored.
 *
 * `payloadJson` is the body as received: one event, or `{ "deploys": [...] }` whose i-th element is `events[i]`.
 * Each row keeps its own event as sent, not the whole body (a 500-event batch would be stored 500 times).
 * Returns the new rows' ids in input order and how many events were duplicates.
 */
export async function recordDeployEvents(
  db: Queryable,
  payloadJson: string,
  events: DeployEventRecord[],
): Promise<{ ids: number[]; duplicates: number }> {
  if (events.length === 0) return { ids: [], duplicates: 0 };
  const rows = events.map((e, ord) => ({
    ord,
    service: e.service,
    environment: e.environment,
    version: e.version,
    previous_version: e.previousVersion,
    status: e.status,
    deployed_at: e.deployedAt.toISOString(),
    deployed_by: e.deployedBy,
    commit_sha: e.commit,
    url: e.url,
    description: e.description,
    external_id: e.externalId,
  }));
  const { rows: inserted } = await db.query<{ id: number }>(
    `WITH body AS (SELECT $1::jsonb AS doc)
     INSERT INTO deploy_events (service, environment, version, previous_version, status, deployed_at, deployed_by,
                                commit_sha, url, description, external_id, payload)
     SELECT r.service, r.environment, r.version, r.previous_version, r.status, r.deployed_at, r.deployed_by,
            r.commit_sha, r.url, r.description, r.external_id,
            CASE WHEN jsonb_typeof(body.doc -> 'deploys') = 'array' THEN body.doc -> 'deploys' -> r.ord ELSE body.doc END
       FROM body, jsonb_to_recordset($2::jsonb) AS r(ord int, service text, environment text, version text,
            previous_version text, status text, deployed_at timestamptz, deployed_by text, commit_sha text, url text,
            description text, external_id text)
      ORDER BY r.ord
     ON CONFLICT (service, external_id) WHERE external_id IS NOT NULL DO NOTHING
     RETURNING id`,
    [payloadJson, JSON.stringify(rows)],
  );
  // ids come from one sequence in the SELECT's order, so ascending ids are input order
  const ids = inserted.map((r) => r.id).sort((a, b) => a - b);
  return { ids, duplicates: events.length - ids.length };
}

export interface RecentDeploysQuery {
  service: string;
  /** every environment when absent */
  environment?: string;
  /** deploys at or after this instant */
  since: Date;
  /** most rows returned, newest first */
  limit: number;
  /** only these statuses; every status when absent */
  statuses?: DeployStatus[];
}

interface DeployRow {
  id: number;
  service: string;
  environment: string;
  version: string;
  previous_version: string | null;
  status: DeployStatus;
  deployed_at: Date;
  deployed_by: string | null;
  commit_sha: string | null;
  url: string | null;
  description: string | null;
  external_id: string | null;
  received_at: Date;
}

/**
 * Deploys of a service since an instant, newest first. `timeoutMs` bounds the wait for Postgres on the client side
 * (the connection is dropped when it passes), for callers that must not outlive a deadline.
 */
export async function listRecentDeploys(
  db: Queryable,
  query: RecentDeploysQuery,
  opts: { timeoutMs?: number } = {},
): Promise<StoredDeployEvent[]> {
  const config: pg.QueryConfig & { query_timeout?: number } = {
    text: `SELECT id, service, environment, version, previous_version, status, deployed_at, deployed_by, commit_sha,
                  url, description, external_id, received_at
             FROM deploy_events
            WHERE service = $1
              AND ($2::text IS NULL OR environment = $2)
              AND deployed_at >= $3
              AND ($5::text[] IS NULL OR status = ANY ($5))
            ORDER BY deployed_at DESC, id DESC
            LIMIT $4`,
    values: [query.service, query.environment ?? null, query.since, query.limit, query.statuses ?? null],
    ...(opts.timeoutMs !== undefined ? { query_timeout: opts.timeoutMs } : {}),
  };
  const { rows } = await db.query<DeployRow>(config);
  return rows.map((r) => ({
    id: r.id,
    service: r.service,
    environment: r.environment,
    version: r.version,
    previousVersion: r.previous_version,
    status: r.status,
    deployedAt: r.deployed_at,
    deployedBy: r.deployed_by,
    commit: r.commit_sha,
    url: r.url,
    description: r.description,
    externalId: r.external_id,
    receivedAt: r.received_at,
  }));
}
