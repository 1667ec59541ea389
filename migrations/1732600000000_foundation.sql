-- Up Migration

-- Every webhook body accepted, exactly as received (after JSON parsing), before any processing.
CREATE TABLE alert_deliveries (
  id           bigserial PRIMARY KEY,
  source       text        NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now(),
  payload      jsonb       NOT NULL,
  alert_count  integer     NOT NULL
);

CREATE TABLE incidents (
  id             bigserial PRIMARY KEY,
  service        text        NOT NULL,
  title          text        NOT NULL,
  summary        text        NOT NULL DEFAULT '',
  severity       text        NOT NULL CHECK (severity IN ('critical', 'high', 'warning', 'info')),
  status         text        NOT NULL CHECK (status IN ('open', 'investigating', 'mitigating', 'awaiting_approval', 'escalated', 'resolved')),
  source         text        NOT NULL,
  -- alerts attached, counting repeats (an alert that fires again after recovering counts again)
  alert_count    integer     NOT NULL DEFAULT 0,
  labels         jsonb       NOT NULL DEFAULT '{}'::jsonb,
  links          jsonb       NOT NULL DEFAULT '[]'::jsonb,
  -- bumped on every change that the Slack card shows; card jobs are keyed by it
  revision       integer     NOT NULL DEFAULT 1,
  opened_at      timestamptz NOT NULL DEFAULT now(),
  first_signal_at timestamptz NOT NULL DEFAULT now(),
  last_alert_at  timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  resolved_at    timestamptz
) WITH (fillfactor = 80); -- room on the page for HOT updates: an incident row is updated on every alert
CREATE INDEX incidents_open_by_service ON incidents (service, last_alert_at DESC) WHERE status <> 'resolved';
CREATE INDEX incidents_opened_at ON incidents (opened_at DESC);

-- One row per alert identity (fingerprint) and incident. A re-delivery updates last_received_at only.
CREATE TABLE incident_alerts (
  id               bigserial PRIMARY KEY,
  incident_id      bigint      NOT NULL REFERENCES incidents (id),
  fingerprint      text        NOT NULL,
  source           text        NOT NULL,
  name             text        NOT NULL,
  status           text        NOT NULL CHECK (status IN ('firing', 'resolved')),
  severity         text        NOT NULL,
  summary          text        NOT NULL DEFAULT '',
  labels           jsonb       NOT NULL,
  annotations      jsonb       NOT NULL,
  starts_at        timestamptz NOT NULL,
  ends_at          timestamptz,
  generator_url    text,
  first_delivery_id bigint     REFERENCES alert_deliveries (id),
  last_delivery_id bigint      REFERENCES alert_deliveries (id),
  receive_count    integer     NOT NULL DEFAULT 1,
  first_received_at timestamptz NOT NULL DEFAULT now(),
  last_received_at timestamptz NOT NULL DEFAULT now(),
  -- true while the incident is not resolved: dedup looks only at these, so history never slows intake down
  open             boolean     NOT NULL DEFAULT true,
  UNIQUE (incident_id, fingerprint)
) WITH (fillfactor = 80); -- every re-delivery updates the row: keep those updates HOT
CREATE INDEX incident_alerts_open_fingerprint ON incident_alerts (fingerprint) WHERE open;

-- The append-only timeline; it is the audit log, and postmortems read only from it.
CREATE TABLE timeline_events (
  id           bigserial PRIMARY KEY,
  incident_id  bigint      NOT NULL REFERENCES incidents (id),
  at           timestamptz NOT NULL DEFAULT now(),
  actor        text        NOT NULL,
  type         text        NOT NULL CHECK (type ~ '^[a-z_]+(\.[a-z_]+)+$'),
  data         jsonb       NOT NULL DEFAULT '{}'::jsonb,
  -- whether the event is posted in the incident's Slack thread
  notify       boolean     NOT NULL DEFAULT false
);
CREATE INDEX timeline_events_incident ON timeline_events (incident_id, id);

CREATE FUNCTION timeline_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'timeline_events is append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER timeline_events_append_only
  BEFORE UPDATE OR DELETE ON timeline_events
  FOR EACH ROW EXECUTE FUNCTION timeline_events_append_only();

-- The Slack messages that show an incident: the card (kind 'card') that is edited in place,
-- and its thread. posted_revision and posted_event_id say how far Slack has been brought.
CREATE TABLE slack_messages (
  incident_id      bigint      PRIMARY KEY REFERENCES incidents (id),
  channel          text        NOT NULL,
  ts               text        NOT NULL,
  posted_revision  integer     NOT NULL,
  posted_event_id  bigint      NOT NULL DEFAULT 0,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE slack_messages;
DROP TRIGGER timeline_events_append_only ON timeline_events;
DROP FUNCTION timeline_events_append_only();
DROP TABLE timeline_events;
DROP TABLE incident_alerts;
DROP TABLE incidents;
DROP TABLE alert_deliveries;
