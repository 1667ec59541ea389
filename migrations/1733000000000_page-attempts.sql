-- Up Migration

-- One try of one pager (slack, pagerduty, webhook) for one page: the escalation's delivery history. A fallback chain
-- writes each pager's tries in order before trying the next, so the rows of an incident read as what happened.
CREATE TABLE page_attempts (
  id           bigserial   PRIMARY KEY,
  incident_id  bigint      NOT NULL REFERENCES incidents (id),
  pager        text        NOT NULL,
  action       text        NOT NULL CHECK (action IN ('trigger', 'acknowledge', 'resolve')),
  dedup_key    text        NOT NULL,
  -- 1-based try number within one pager call
  attempt      integer     NOT NULL CHECK (attempt >= 1),
  -- failed_retryable: a 429/5xx/network failure (retried unless it was the last try); skipped: nothing was sent
  outcome      text        NOT NULL CHECK (outcome IN ('succeeded', 'failed_retryable', 'failed', 'skipped')),
  -- null for network errors, timeouts and Slack API calls
  http_status  integer,
  error        text,
  -- the receiver's id of the page on success (PagerDuty dedup_key, Slack "channel/ts")
  external_ref text,
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX page_attempts_incident ON page_attempts (incident_id, id);

-- Down Migration
DROP TABLE page_attempts;
