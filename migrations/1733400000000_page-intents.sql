-- Up Migration

-- A timeline event's time is when its row is written, not when its transaction began: concurrent writers to one
-- incident (intake and a transition) otherwise record a later event with an earlier time.
ALTER TABLE timeline_events ALTER COLUMN at SET DEFAULT clock_timestamp();

-- One page of one target at one step of an escalation, written BEFORE the page is sent. A retried step (its worker
-- died, or Postgres went away before the step was recorded) finds the row and does not page that person again:
-- `sending` with no outcome is treated as sent (a page is never doubled; the walk still reaches the next level).
CREATE TABLE escalation_pages (
  escalation_id  bigint      NOT NULL REFERENCES escalations (id),
  step           integer     NOT NULL,
  -- the target's identity: a Slack user id, `group:<id>`, or the target's name
  target_key     text        NOT NULL,
  status         text        NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
  pager          text,
  error          text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (escalation_id, step, target_key)
);

-- When the current step was first tried: while every pager fails, the step is retried until its level's delay has
-- passed, instead of running through every level in seconds during a pager outage.
ALTER TABLE escalations ADD COLUMN step_started_at timestamptz;

-- Down Migration
ALTER TABLE escalations DROP COLUMN step_started_at;
DROP TABLE escalation_pages;
ALTER TABLE timeline_events ALTER COLUMN at SET DEFAULT now();
