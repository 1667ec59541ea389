-- Up Migration

-- The postmortem draft of an incident, generated from its timeline alone (regenerated on request; the newest wins).
CREATE TABLE postmortems (
  incident_id       bigint      PRIMARY KEY REFERENCES incidents (id),
  markdown          text        NOT NULL,
  -- the few lines posted in the thread
  summary           text        NOT NULL,
  -- 'deterministic', or 'llm:<model>' when the optional summariser wrote the narrative
  generator         text        NOT NULL,
  -- the newest timeline event the draft includes
  through_event_id  bigint      NOT NULL,
  revision          integer     NOT NULL DEFAULT 1,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);

-- "Was this the right call?" on an automated action: one verdict per person per step (a second click changes it).
CREATE TABLE action_feedback (
  id           bigserial   PRIMARY KEY,
  incident_id  bigint      NOT NULL REFERENCES incidents (id),
  step_row_id  bigint      NOT NULL REFERENCES remediation_steps (id),
  user_id      text        NOT NULL,
  verdict      text        NOT NULL CHECK (verdict IN ('right', 'wrong')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (step_row_id, user_id)
);
CREATE INDEX action_feedback_incident ON action_feedback (incident_id);

-- A person's resolution note (the "Resolution note" modal): what the cause was and what fixed it, in their words.
CREATE TABLE resolution_notes (
  id           bigserial   PRIMARY KEY,
  incident_id  bigint      NOT NULL REFERENCES incidents (id),
  user_id      text        NOT NULL,
  cause        text        NOT NULL DEFAULT '',
  fix          text        NOT NULL DEFAULT '',
  note         text        NOT NULL DEFAULT '',
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX resolution_notes_incident ON resolution_notes (incident_id, id);

-- Recurring posts (the weekly runbook suggestions): when each was last posted, so several processes post it once.
CREATE TABLE scheduled_posts (
  name     text        PRIMARY KEY,
  last_at  timestamptz NOT NULL
);

-- Down Migration
DROP TABLE scheduled_posts;
DROP TABLE resolution_notes;
DROP TABLE action_feedback;
DROP TABLE postmortems;
