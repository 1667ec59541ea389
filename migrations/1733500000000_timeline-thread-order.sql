-- Up Migration

-- The Slack thread posts an incident's notify events in id order and remembers the last id it posted. An id is
-- drawn when a row is written, not when its transaction commits, so an event drawn earlier but committed later
-- (the intake's alert.repeated while a worker recorded decision.made and incident.escalated) used to fall below
-- the mark and never reach the thread. Every notify event now draws its id while holding its incident's timeline
-- lock in shared mode (writers never wait for each other); the Slack sync takes the same lock exclusively for the
-- one statement that reads how far the timeline goes, so every notify event at or below that point has committed,
-- and any drawn later gets a higher id. The id drawn by the column default before this trigger is left unused.
-- The time the column default stamped (during this statement) is stamped again after the id, so times follow ids;
-- an explicit earlier time (an import) is kept.
CREATE FUNCTION timeline_events_notify_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared(hashtextextended('ai-sre:timeline:' || NEW.incident_id, 0));
  NEW.id := nextval(pg_get_serial_sequence('timeline_events', 'id'));
  IF NEW.at >= statement_timestamp() THEN
    NEW.at := clock_timestamp();
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER timeline_events_notify_order
  BEFORE INSERT ON timeline_events
  FOR EACH ROW WHEN (NEW.notify) EXECUTE FUNCTION timeline_events_notify_order();

-- Down Migration
DROP TRIGGER timeline_events_notify_order ON timeline_events;
DROP FUNCTION timeline_events_notify_order();
