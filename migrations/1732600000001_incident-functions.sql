-- Up Migration

-- The incident state machine: which status may follow which. transition_incident() is the only writer of
-- incidents.status after opening; src/incidents/lifecycle.ts mirrors this table (a test keeps them equal).
CREATE TABLE incident_transitions (
  from_status text NOT NULL,
  to_status   text NOT NULL,
  PRIMARY KEY (from_status, to_status)
);
INSERT INTO incident_transitions (from_status, to_status) VALUES
  ('open', 'investigating'), ('open', 'mitigating'), ('open', 'awaiting_approval'), ('open', 'escalated'), ('open', 'resolved'),
  ('investigating', 'mitigating'), ('investigating', 'awaiting_approval'), ('investigating', 'escalated'), ('investigating', 'resolved'),
  ('mitigating', 'investigating'), ('mitigating', 'awaiting_approval'), ('mitigating', 'escalated'), ('mitigating', 'resolved'),
  ('awaiting_approval', 'investigating'), ('awaiting_approval', 'mitigating'), ('awaiting_approval', 'escalated'), ('awaiting_approval', 'resolved'),
  ('escalated', 'investigating'), ('escalated', 'mitigating'), ('escalated', 'awaiting_approval'), ('escalated', 'resolved');

-- Most severe first.
CREATE FUNCTION severity_rank(p_severity text) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT COALESCE(array_position(ARRAY['critical', 'high', 'warning', 'info'], p_severity), 5)
$$;

-- Links of an incident: the old ones, then new URLs, at most 6.
CREATE FUNCTION merge_links(p_old jsonb, p_new jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT COALESCE(jsonb_agg(l ORDER BY ord), '[]'::jsonb)
    FROM (SELECT l, ord
            FROM (SELECT DISTINCT ON (e.l ->> 'url') e.l, e.ord
                    FROM jsonb_array_elements(p_old || p_new) WITH ORDINALITY AS e(l, ord)
                   ORDER BY e.l ->> 'url', e.ord) AS d
           ORDER BY ord LIMIT 6) AS kept
$$;

-- Moves an incident to p_to and writes `incident.<p_to>` in the same transaction; the row lock serialises
-- concurrent transitions. SQLSTATE AS001: not allowed from the current status; P0002: no such incident.
CREATE FUNCTION transition_incident(p_incident bigint, p_to text, p_actor text, p_reason text, p_data jsonb DEFAULT '{}'::jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_from  text;
  v_event bigint;
BEGIN
  SELECT status INTO v_from FROM incidents WHERE id = p_incident FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'P0002', MESSAGE = format('incident %s does not exist', p_incident);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM incident_transitions WHERE from_status = v_from AND to_status = p_to) THEN
    RAISE EXCEPTION USING ERRCODE = 'AS001', MESSAGE = format('incident %s cannot go from %s to %s', p_incident, v_from, p_to);
  END IF;
  UPDATE incidents
     SET status = p_to, revision = revision + 1, updated_at = now(),
         resolved_at = CASE WHEN p_to = 'resolved' THEN now() ELSE resolved_at END
   WHERE id = p_incident;
  IF p_to = 'resolved' THEN
    UPDATE incident_alerts SET open = false WHERE incident_id = p_incident AND open;
  END IF;
  INSERT INTO timeline_events (incident_id, actor, type, data, notify)
  VALUES (p_incident, p_actor, 'incident.' || p_to, jsonb_build_object('from', v_from, 'to', p_to, 'reason', p_reason) || p_data, true)
  RETURNING id INTO v_event;
  RETURN v_event;
END;
$$;

-- Opens an incident and writes `incident.opened`. Returns the incident id.
CREATE FUNCTION open_incident(p_service text, p_title text, p_summary text, p_severity text, p_source text,
                              p_labels jsonb, p_links jsonb, p_first_signal_at timestamptz, p_actor text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_incident bigint;
BEGIN
  INSERT INTO incidents (service, title, summary, severity, status, source, alert_count, labels, links, first_signal_at)
  VALUES (p_service, p_title, p_summary, p_severity, 'open', p_source, 0, p_labels, p_links, LEAST(COALESCE(p_first_signal_at, now()), now()))
  RETURNING id INTO v_incident;
  INSERT INTO timeline_events (incident_id, actor, type, data)
  VALUES (v_incident, p_actor, 'incident.opened',
          jsonb_build_object('service', p_service, 'severity', p_severity, 'title', p_title, 'source', p_source));
  RETURN v_incident;
END;
$$;

-- More alerts (new or repeated) on an incident: count, severity (the most severe wins), links, revision.
CREATE FUNCTION grow_incident(p_incident bigint, p_added integer, p_severity text, p_links jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_old text;
BEGIN
  SELECT severity INTO v_old FROM incidents WHERE id = p_incident;
  UPDATE incidents
     SET alert_count = alert_count + p_added, last_alert_at = now(), updated_at = now(), revision = revision + 1,
         severity = CASE WHEN severity_rank(p_severity) < severity_rank(severity) THEN p_severity ELSE severity END,
         links = CASE WHEN jsonb_array_length(p_links) = 0 THEN links ELSE merge_links(links, p_links) END
   WHERE id = p_incident;
  IF severity_rank(p_severity) < severity_rank(v_old) THEN
    INSERT INTO timeline_events (incident_id, actor, type, data, notify)
    VALUES (p_incident, 'ai-sre', 'incident.severity_changed', jsonb_build_object('from', v_old, 'to', p_severity), true);
  END IF;
END;
$$;

-- Stores one accepted webhook delivery and folds its alerts into incidents, as one statement (so one round trip and
-- one transaction: an answered delivery is never lost and never half-applied). See src/incidents/record-alerts.ts
-- for the rules. p_alerts: [{fingerprint, source, name, service, severity, status, summary, labels, annotations,
-- starts_at, starts_at_given, ends_at, generator_url, links}], in delivery order.
CREATE FUNCTION record_alert_delivery(p_source text, p_payload jsonb, p_alerts jsonb, p_window_seconds integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_delivery   bigint;
  a            record;
  att          record;
  v_incident   bigint;
  v_opened     bigint[] := '{}';
  v_touched    bigint[] := '{}';
  -- growth per incident, applied once per incident at the end: one row update instead of one per alert
  g            record;
  g_ids        bigint[] := '{}';
  g_sev        text[] := '{}';
  g_links      jsonb[] := '{}';
  v_resolve    bigint[] := '{}';
  v_resolved   bigint[] := '{}';
  v_seen       integer := 0;
  v_attached   integer := 0;
  v_repeated   integer := 0;
  v_duplicates integer := 0;
  v_res_alerts integer := 0;
  v_ignored    integer := 0;
  v_changed    jsonb;
BEGIN
  INSERT INTO alert_deliveries (source, payload, alert_count)
  VALUES (p_source, p_payload, jsonb_array_length(p_alerts))
  RETURNING id INTO v_delivery;

  -- One lock per service, taken in sorted order: deliveries for one service serialise (no two incidents opened
  -- for it), and two deliveries can never deadlock.
  PERFORM pg_advisory_xact_lock(k)
     FROM (SELECT DISTINCT hashtextextended('ai-sre:incident-group:' || (x ->> 'service'), 0) AS k
             FROM jsonb_array_elements(p_alerts) AS x ORDER BY 1) AS locks;

  -- The latest alert per fingerprint wins when a delivery carries the same alert twice.
  FOR a IN
    SELECT * FROM (
      SELECT DISTINCT ON (r.fingerprint) r.*, o.ord
        FROM jsonb_array_elements(p_alerts) WITH ORDINALITY AS o(doc, ord),
             jsonb_to_record(o.doc) AS r(fingerprint text, source text, name text, service text, severity text,
                                         status text, summary text, labels jsonb, annotations jsonb,
                                         starts_at timestamptz, starts_at_given boolean, ends_at timestamptz,
                                         generator_url text, links jsonb)
       ORDER BY r.fingerprint, o.ord DESC) AS latest
     ORDER BY ord
  LOOP
    v_seen := v_seen + 1;
    SELECT id, incident_id, status, starts_at INTO att
      FROM incident_alerts WHERE fingerprint = a.fingerprint AND open
     ORDER BY id DESC LIMIT 1;

    IF a.status = 'resolved' THEN
      IF FOUND AND att.status = 'firing' THEN
        UPDATE incident_alerts
           SET status = 'resolved', ends_at = COALESCE(a.ends_at, now()), receive_count = receive_count + 1,
               last_received_at = now(), last_delivery_id = v_delivery
         WHERE id = att.id;
        INSERT INTO timeline_events (incident_id, actor, type, data, notify)
        VALUES (att.incident_id, a.source, 'alert.resolved',
                jsonb_build_object('fingerprint', a.fingerprint, 'name', a.name, 'endsAt', a.ends_at), true);
        v_res_alerts := v_res_alerts + 1;
        v_touched := v_touched || att.incident_id;
        v_resolve := v_resolve || att.incident_id;
      ELSIF FOUND THEN
        UPDATE incident_alerts SET receive_count = receive_count + 1, last_received_at = now(), last_delivery_id = v_delivery
         WHERE id = att.id;
        v_duplicates := v_duplicates + 1;
      ELSE
        v_ignored := v_ignored + 1;
      END IF;
      CONTINUE;
    END IF;

    IF FOUND THEN
      IF att.status = 'firing' AND (NOT a.starts_at_given OR att.starts_at = a.starts_at) THEN
        UPDATE incident_alerts SET receive_count = receive_count + 1, last_received_at = now(), last_delivery_id = v_delivery
         WHERE id = att.id;
        v_duplicates := v_duplicates + 1;
      ELSE
        UPDATE incident_alerts
           SET status = 'firing', starts_at = a.starts_at, ends_at = NULL, severity = a.severity, summary = a.summary,
               labels = a.labels, annotations = a.annotations, receive_count = receive_count + 1,
               last_received_at = now(), last_delivery_id = v_delivery
         WHERE id = att.id;
        INSERT INTO timeline_events (incident_id, actor, type, data, notify)
        VALUES (att.incident_id, a.source, 'alert.repeated',
                jsonb_build_object('fingerprint', a.fingerprint, 'name', a.name, 'startsAt', a.starts_at), true);
        g_ids := g_ids || att.incident_id;
        g_sev := g_sev || a.severity;
        g_links := g_links || a.links;
        v_repeated := v_repeated + 1;
        v_touched := v_touched || att.incident_id;
      END IF;
      CONTINUE;
    END IF;

    SELECT id INTO v_incident FROM incidents
     WHERE service = a.service AND status <> 'resolved'
       AND last_alert_at >= now() - make_interval(secs => p_window_seconds)
     ORDER BY last_alert_at DESC LIMIT 1;
    IF NOT FOUND THEN
      v_incident := open_incident(a.service, a.name, a.summary, a.severity, a.source, a.labels, a.links, a.starts_at, a.source);
      v_opened := v_opened || v_incident;
    ELSE
      INSERT INTO timeline_events (incident_id, actor, type, data, notify)
      VALUES (v_incident, a.source, 'alert.attached',
              jsonb_build_object('fingerprint', a.fingerprint, 'name', a.name, 'severity', a.severity, 'summary', left(a.summary, 500)),
              NOT (v_incident = ANY (v_opened)));
      v_attached := v_attached + 1;
    END IF;
    INSERT INTO incident_alerts (incident_id, fingerprint, source, name, status, severity, summary, labels, annotations,
                                 starts_at, ends_at, generator_url, first_delivery_id, last_delivery_id)
    VALUES (v_incident, a.fingerprint, a.source, a.name, 'firing', a.severity, a.summary, a.labels, a.annotations,
            a.starts_at, NULL, a.generator_url, v_delivery, v_delivery);
    g_ids := g_ids || v_incident;
    g_sev := g_sev || a.severity;
    g_links := g_links || a.links;
    v_touched := v_touched || v_incident;
  END LOOP;

  FOR g IN SELECT gi AS id, count(*)::integer AS added, min(severity_rank(gs)) AS rank
             FROM unnest(g_ids, g_sev) AS u(gi, gs) GROUP BY gi ORDER BY gi LOOP
    PERFORM grow_incident(
      g.id, g.added, (ARRAY['critical', 'high', 'warning', 'info'])[g.rank],
      (SELECT COALESCE(jsonb_agg(x.e ORDER BY u.o, x.o), '[]'::jsonb)
         FROM unnest(g_ids, g_links) WITH ORDINALITY AS u(gi, gl, o), jsonb_array_elements(u.gl) WITH ORDINALITY AS x(e, o)
        WHERE u.gi = g.id));
  END LOOP;

  -- An incident resolves when none of its alerts still fires.
  FOR v_incident IN SELECT DISTINCT r FROM unnest(v_resolve) AS r ORDER BY r LOOP
    IF NOT EXISTS (SELECT 1 FROM incident_alerts WHERE incident_id = v_incident AND status = 'firing')
       AND EXISTS (SELECT 1 FROM incidents WHERE id = v_incident AND status <> 'resolved') THEN
      PERFORM transition_incident(v_incident, 'resolved', p_source, 'all alerts resolved');
      v_resolved := v_resolved || v_incident;
    END IF;
  END LOOP;

  SELECT COALESCE(jsonb_agg(jsonb_build_object('incidentId', t.incident_id, 'eventId', t.max_id,
                                               'opened', t.incident_id = ANY (v_opened)) ORDER BY t.incident_id), '[]'::jsonb)
    INTO v_changed
    FROM (SELECT incident_id, max(id) AS max_id FROM timeline_events
           WHERE incident_id = ANY (v_touched) GROUP BY incident_id) AS t;

  RETURN jsonb_build_object(
    'deliveryId', v_delivery, 'opened', to_jsonb(v_opened), 'attached', v_attached, 'repeated', v_repeated,
    'duplicates', v_duplicates + jsonb_array_length(p_alerts) - v_seen, 'resolvedAlerts', v_res_alerts,
    'resolvedIncidents', to_jsonb(v_resolved), 'ignored', v_ignored, 'changed', v_changed);
END;
$$;

-- Group commit: several deliveries in one transaction, in order, so one WAL flush serves them all. The locks of every
-- service involved are taken first, in sorted order, so concurrent batches cannot deadlock. p_deliveries:
-- [{source, payload, alerts}]; returns the results of record_alert_delivery in the same order.
CREATE FUNCTION record_alert_deliveries(p_deliveries jsonb, p_window_seconds integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  d       jsonb;
  results jsonb := '[]'::jsonb;
BEGIN
  PERFORM pg_advisory_xact_lock(k)
     FROM (SELECT DISTINCT hashtextextended('ai-sre:incident-group:' || (x ->> 'service'), 0) AS k
             FROM jsonb_array_elements(p_deliveries) AS del, jsonb_array_elements(del -> 'alerts') AS x
            ORDER BY 1) AS locks;
  FOR d IN SELECT value FROM jsonb_array_elements(p_deliveries) LOOP
    results := results || jsonb_build_array(
      record_alert_delivery(d ->> 'source', d -> 'payload', d -> 'alerts', p_window_seconds));
  END LOOP;
  RETURN results;
END;
$$;

-- Down Migration
DROP FUNCTION record_alert_deliveries(jsonb, integer);
DROP FUNCTION record_alert_delivery(text, jsonb, jsonb, integer);
DROP FUNCTION grow_incident(bigint, integer, text, jsonb);
DROP FUNCTION open_incident(text, text, text, text, text, jsonb, jsonb, timestamptz, text);
DROP FUNCTION transition_incident(bigint, text, text, text, jsonb);
DROP FUNCTION merge_links(jsonb, jsonb);
DROP FUNCTION severity_rank(text);
DROP TABLE incident_transitions;
