-- Up Migration

-- Deploy events posted to /webhooks/deploy; `recent_deploys` diagnostics and rollback decisions read them.
CREATE TABLE deploy_events (
  id               bigserial   PRIMARY KEY,
  service          text        NOT NULL,
  environment      text        NOT NULL DEFAULT 'production',
  version          text        NOT NULL,
  previous_version text,
  status           text        NOT NULL DEFAULT 'succeeded',
  deployed_at      timestamptz NOT NULL,
  deployed_by      text,
  commit_sha       text,
  url              text,
  description      text,
  -- the sender's id of the deploy, so a re-delivery is stored once
  external_id      text,
  payload          jsonb       NOT NULL,
  received_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deploy_events_service_at ON deploy_events (service, deployed_at DESC);
CREATE UNIQUE INDEX deploy_events_external ON deploy_events (service, external_id) WHERE external_id IS NOT NULL;

-- One run of a runbook against an incident: which runbook (its content hash and a snapshot of the definition, so
-- edits mid-incident change nothing), its diagnostics' results, the decision and the plan.
CREATE TABLE runbook_executions (
  id               bigserial   PRIMARY KEY,
  incident_id      bigint      NOT NULL REFERENCES incidents (id),
  -- what asked for the run: the automatic run on open ('auto') or a person (`manual:<request>`); one row per key
  request_key      text        NOT NULL,
  runbook_id       text        NOT NULL,
  runbook_version  text,
  runbook_hash     text        NOT NULL,
  runbook          jsonb       NOT NULL,
  -- how the runbook was chosen: label, trigger, manual, default
  matched_by       text        NOT NULL,
  match_detail     jsonb       NOT NULL DEFAULT '{}',
  requested_by     text        NOT NULL,
  -- template values the diagnostics were rendered with
  vars             jsonb       NOT NULL,
  status           text        NOT NULL DEFAULT 'diagnosing' CHECK (status IN ('diagnosing', 'decided')),
  -- bumped by every result and by the decision; the Slack summary is edited when it moved
  revision         integer     NOT NULL DEFAULT 1,
  decision         jsonb,
  plan             jsonb,
  escalate         boolean     NOT NULL DEFAULT false,
  escalate_reason  text,
  started_at       timestamptz NOT NULL DEFAULT now(),
  decided_at       timestamptz,
  UNIQUE (incident_id, request_key)
);
CREATE INDEX runbook_executions_incident ON runbook_executions (incident_id, id);
CREATE INDEX runbook_executions_pending ON runbook_executions (started_at) WHERE status = 'diagnosing';

CREATE TABLE diagnostic_results (
  execution_id  bigint      NOT NULL REFERENCES runbook_executions (id),
  diagnostic_id text        NOT NULL,
  position      integer     NOT NULL,
  type          text        NOT NULL,
  status        text        NOT NULL CHECK (status IN ('healthy', 'warning', 'critical', 'error')),
  value         jsonb,
  result        jsonb       NOT NULL DEFAULT '{}',
  summary       text        NOT NULL,
  error         text,
  duration_ms   integer     NOT NULL,
  started_at    timestamptz NOT NULL,
  finished_at   timestamptz NOT NULL,
  PRIMARY KEY (execution_id, diagnostic_id)
);

-- Thread messages the bot edits in place (the diagnostics summary of each execution).
CREATE TABLE slack_thread_messages (
  incident_id     bigint      NOT NULL REFERENCES incidents (id),
  key             text        NOT NULL,
  channel         text        NOT NULL,
  ts              text        NOT NULL,
  posted_revision integer     NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (incident_id, key)
);

-- Down Migration
DROP TABLE slack_thread_messages;
DROP TABLE diagnostic_results;
DROP TABLE runbook_executions;
DROP TABLE deploy_events;
