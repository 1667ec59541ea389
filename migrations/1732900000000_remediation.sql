-- Up Migration

-- One remediation step of an execution's plan: gated, approved, run at most once, verified. A row is written before
-- anything runs; `started` means the side effect may have happened, so recovery verifies or escalates, never re-runs.
CREATE TABLE remediation_steps (
  id              bigserial   PRIMARY KEY,
  execution_id    bigint      NOT NULL REFERENCES runbook_executions (id),
  incident_id     bigint      NOT NULL REFERENCES incidents (id),
  position        integer     NOT NULL,
  step_id         text        NOT NULL,
  action          text        NOT NULL,
  -- the effective tier (catalogue, tightened by runbook and policy) and the service's mode when gated
  tier            text        NOT NULL CHECK (tier IN ('safe', 'guarded', 'forbidden')),
  mode            text        NOT NULL CHECK (mode IN ('shadow', 'supervised', 'autonomous')),
  status          text        NOT NULL CHECK (status IN (
                    'ready', 'awaiting_approval', 'approved', 'started', 'succeeded', 'failed', 'verifying',
                    'verified', 'verification_failed', 'unknown', 'refused', 'rejected', 'expired', 'skipped',
                    'dry_run')),
  -- what it changes ("k8s:prod/payments/deployment/payment-service"), the rendered config (secrets masked)
  target          text,
  config          jsonb       NOT NULL DEFAULT '{}',
  reason          text,
  result          jsonb,
  started_at      timestamptz,
  finished_at     timestamptz,
  duration_ms     integer,
  verify_deadline timestamptz,
  verify_checks   integer     NOT NULL DEFAULT 0,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (execution_id, position)
);
CREATE INDEX remediation_steps_incident ON remediation_steps (incident_id, id);
CREATE INDEX remediation_steps_open ON remediation_steps (updated_at)
  WHERE status IN ('ready', 'approved', 'started', 'verifying', 'awaiting_approval');

-- How an execution's remediation ended (null while it runs or when it has none).
ALTER TABLE runbook_executions
  ADD COLUMN remediation_status text CHECK (remediation_status IN ('running', 'verified', 'completed', 'escalated', 'cleared', 'shadow')),
  ADD COLUMN remediation_finished_at timestamptz;

-- A guarded step waiting for a person: the packet shown, who may decide (snapshot), when it expires.
CREATE TABLE approval_requests (
  id            bigserial   PRIMARY KEY,
  step_row_id   bigint      NOT NULL UNIQUE REFERENCES remediation_steps (id),
  incident_id   bigint      NOT NULL REFERENCES incidents (id),
  execution_id  bigint      NOT NULL REFERENCES runbook_executions (id),
  status        text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
  -- Slack user ids (U…/W…) and user group ids (S…) that may decide
  approvers     jsonb       NOT NULL,
  -- who asked for the run ('ai-sre' for automatic runs); a P1 needs someone else to approve
  requested_by  text        NOT NULL,
  packet        jsonb       NOT NULL,
  requested_at  timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  decided_by    text,
  decided_at    timestamptz,
  -- bumped on every change; the Slack packet is edited when it moved
  revision      integer     NOT NULL DEFAULT 1
);
CREATE INDEX approval_requests_pending ON approval_requests (expires_at) WHERE status = 'pending';

-- The kill switch: scope '*' is every service. Survives restarts (Postgres, not Redis).
CREATE TABLE automation_switches (
  scope       text        PRIMARY KEY,
  enabled     boolean     NOT NULL,
  changed_by  text        NOT NULL,
  reason      text,
  changed_at  timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE automation_switches;
DROP TABLE approval_requests;
ALTER TABLE runbook_executions DROP COLUMN remediation_finished_at, DROP COLUMN remediation_status;
DROP TABLE remediation_steps;
