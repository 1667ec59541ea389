-- Up Migration

-- One hand-over of an incident to people: why (read from the timeline), which team, the escalation policy as it was
-- when the escalation started (a snapshot: editing oncall.yml mid-incident changes nothing), and how far the walk
-- through its levels has got. Postgres holds the timer (`next_at`); the BullMQ delayed job is only its alarm clock,
-- so a lost job is re-enqueued by the sweep and a clock-skewed process still pages at the right time.
CREATE TABLE escalations (
  id               bigserial   PRIMARY KEY,
  incident_id      bigint      NOT NULL REFERENCES incidents (id),
  -- the event that started it: the incident's `incident.escalated`, or a `page.reassigned`
  trigger_event_id bigint      NOT NULL,
  category         text        NOT NULL,
  reason           text        NOT NULL,
  route            text        NOT NULL,
  team             text,
  -- {name, team, levels: [{targets, delayMinutes}], repeat}
  policy           jsonb       NOT NULL,
  -- paging: walking the levels; acknowledged: a person took it; exhausted: every level paged, nobody acknowledged;
  -- deferred: quiet hours, waiting for the morning digest; digested: listed in it; resolved: the incident resolved;
  -- reassigned: handed to another person (a newer escalation row continues); joined: the incident escalated again
  -- while another escalation was active, which carries on
  status           text        NOT NULL CHECK (status IN ('paging', 'acknowledged', 'exhausted', 'deferred', 'digested',
                                                          'resolved', 'reassigned', 'joined')),
  -- the next step to run: level = step mod levels, cycle = step div levels
  step             integer     NOT NULL DEFAULT 0 CHECK (step >= 0),
  -- when that step is due; null when nothing is
  next_at          timestamptz,
  -- who the newest step paged: [{name, slackUser}]
  paged            jsonb       NOT NULL DEFAULT '[]'::jsonb,
  acked_by         text,
  acked_at         timestamptz,
  -- bumped on every change, so the Slack view knows to edit the packet
  revision         integer     NOT NULL DEFAULT 1,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (incident_id, trigger_event_id)
);
CREATE INDEX escalations_due ON escalations (next_at) WHERE status IN ('paging', 'deferred');
CREATE INDEX escalations_active ON escalations (incident_id) WHERE status IN ('paging', 'acknowledged', 'exhausted', 'deferred');

-- Down Migration
DROP TABLE escalations;
