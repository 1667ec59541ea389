-- Up Migration

-- The full-text document of each incident that similar-incident search ranks against: title and resolution notes
-- (weight A), service and label values (B), diagnostics summaries and the decision text (C). Rebuilt whole (upsert)
-- when the incident resolves, a note is added or a decision is made; text is redacted before it gets here.
-- An incident without a row yet is still found by service and alert name.
CREATE TABLE incident_search (
  incident_id  bigint      PRIMARY KEY REFERENCES incidents (id),
  document     tsvector    NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incident_search_document ON incident_search USING gin (document);

-- Down Migration
DROP TABLE incident_search;
