-- fastapi-pg-sse schema 1.5: emitting without the notify lock. A session whose setting
-- fastapi_pg_sse.delivery is 'poll' (ALTER ROLE ... SET, ALTER DATABASE ... SET, or SET) queues its
-- events: no deferred trigger, no turn at commit, no NOTIFY, so that its commits run side by side.
-- A listener in poll mode numbers them (sequence_queued) and reads them, every poll interval.

-- Events of committed (or running) poll-delivery transactions, not yet numbered. Logged: a commit
-- that returned is delivered, whatever crashes after it.
CREATE TABLE fastapi_pg_sse.queued_events (
    xact_id xid8 NOT NULL DEFAULT pg_current_xact_id(), position bigint GENERATED ALWAYS AS IDENTITY,
    channel text NOT NULL, target_user_id text NOT NULL, type text NOT NULL, payload jsonb NOT NULL,
    traceparent text, target_group text NOT NULL DEFAULT ''
);

-- record, queueing the events of a session whose fastapi_pg_sse.delivery is 'poll'.
CREATE OR REPLACE FUNCTION fastapi_pg_sse.record(channel text, audience text, targets text[], event_types text[], payloads jsonb[], traceparent text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text := fastapi_pg_sse.traceparent_problem(traceparent);
    label text := CASE audience WHEN 'user' THEN 'target_user_id' ELSE 'target_group' END;
    queue boolean := coalesce(current_setting('fastapi_pg_sse.delivery', true) = 'poll', false);
BEGIN
    IF audience = 'everyone' THEN
        targets := array_fill('everyone'::text, ARRAY[coalesce(cardinality(event_types), 0)]);
    END IF;
    IF coalesce(cardinality(targets), 0) <> coalesce(cardinality(event_types), 0)
        OR coalesce(cardinality(event_types), 0) <> coalesce(cardinality(payloads), 0) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = CASE audience WHEN 'everyone'
            THEN format('event_types and payloads must be as long, got %s and %s', coalesce(cardinality(event_types), 0), coalesce(cardinality(payloads), 0))
            ELSE format('%ss, event_types and payloads must be as long, got %s, %s and %s', label, coalesce(cardinality(targets), 0), coalesce(cardinality(event_types), 0), coalesce(cardinality(payloads), 0)) END;
    END IF;
    SELECT coalesce(problem, replace(fastapi_pg_sse.event_problem(record.channel, given.target, given.event_type), 'target_user_id', label))
        INTO problem
        FROM unnest(targets, event_types) AS given (target, event_type)
        WHERE coalesce(problem, fastapi_pg_sse.event_problem(record.channel, given.target, given.event_type)) IS NOT NULL
        LIMIT 1;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE = problem, ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(cardinality(targets), 0) = 0 THEN RETURN; END IF;
    WITH addressed AS MATERIALIZED (  -- an unknown audience: NULL, refused
        SELECT CASE audience WHEN 'user' THEN given.target WHEN 'group' THEN '' WHEN 'everyone' THEN '' END AS to_user,
            CASE audience WHEN 'group' THEN given.target ELSE '' END AS to_group,
            given.event_type AS of_type, coalesce(given.payload, 'null'::jsonb) AS body, given.position
        FROM unnest(targets, event_types, payloads) WITH ORDINALITY AS given (target, event_type, payload, position)
    ), queued AS (  -- numbered by sequence_queued, after the commit
        INSERT INTO fastapi_pg_sse.queued_events (channel, target_user_id, target_group, type, payload, traceparent)
            SELECT record.channel, to_user, to_group, of_type, body, record.traceparent FROM addressed WHERE queue ORDER BY addressed.position
    )
    INSERT INTO fastapi_pg_sse.pending_events (channel, target_user_id, target_group, type, payload, traceparent)
        SELECT record.channel, to_user, to_group, of_type, body, record.traceparent FROM addressed WHERE NOT queue ORDER BY addressed.position;
    IF NOT queue THEN INSERT INTO fastapi_pg_sse.pending_commits VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING; END IF;
END;
$$;

-- Numbers every queued event it sees, after every id committed before, in the turn commit_events
-- takes (commit_order), so that ids follow commit order for every reader; returns how many.
CREATE FUNCTION fastapi_pg_sse.sequence_queued()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sequenced bigint;
    committed_at timestamptz;
BEGIN
    IF NOT EXISTS (SELECT FROM fastapi_pg_sse.queued_events) THEN RETURN 0; END IF;  -- no turn taken for nothing
    LOCK TABLE fastapi_pg_sse.commit_order IN EXCLUSIVE MODE;
    committed_at := clock_timestamp();
    WITH moved AS (DELETE FROM fastapi_pg_sse.queued_events RETURNING *)
    INSERT INTO fastapi_pg_sse.events (id, channel, target_user_id, target_group, type, payload, created_at, xact_id, traceparent)
        SELECT nextval('fastapi_pg_sse.event_ids'), channel, target_user_id, target_group, type, payload, committed_at, xact_id, traceparent
        FROM moved ORDER BY xact_id, position;
    GET DIAGNOSTICS sequenced = ROW_COUNT;
    RETURN sequenced;
END;
$$;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA fastapi_pg_sse FROM PUBLIC;

-- The roles that read events (the app's processes) may sequence them.
DO $$
DECLARE
    reader regrole;
BEGIN
    FOR reader IN
        SELECT DISTINCT acl.grantee::regrole
        FROM pg_class AS events CROSS JOIN LATERAL aclexplode(events.relacl) AS acl
        WHERE events.oid = 'fastapi_pg_sse.events'::regclass AND acl.privilege_type = 'SELECT'
            AND acl.grantee <> 0 AND acl.grantee <> events.relowner
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION fastapi_pg_sse.sequence_queued() TO %s', reader);
    END LOOP;
END;
$$;

INSERT INTO fastapi_pg_sse.migrations (version) VALUES ('1.5');
