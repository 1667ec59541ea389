-- Up Migration

-- While a service is in maintenance, anomalies of its metrics open no incident (alerts from monitoring still do).
CREATE TABLE maintenance_windows (
  id          bigserial   PRIMARY KEY,
  service     text        NOT NULL,
  starts_at   timestamptz NOT NULL DEFAULT now(),
  ends_at     timestamptz NOT NULL,
  created_by  text        NOT NULL,
  reason      text        NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now(),
  CHECK (ends_at > starts_at)
);
CREATE INDEX maintenance_windows_service ON maintenance_windows (service, ends_at DESC);

-- Down Migration
DROP TABLE maintenance_windows;
