-- Undoes fastapi-pg-sse schema 1.5: back to 1.4's record, which queues nothing, first.
CREATE OR REPLACE FUNCTION fastapi_pg_sse.record(channel text, audience text, targets text[], event_types text[], payloads jsonb[], traceparent text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text := fastapi_pg_sse.traceparent_problem(traceparent);
    label text := CASE audience WHEN 'user' THEN 'target_user_id' ELSE 'target_group' END;
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
    INSERT INTO fastapi_pg_sse.pending_events (channel, target_user_id, target_group, type, payload, traceparent)  -- an unknown audience: NULL, refused
        SELECT record.channel, CASE audience WHEN 'user' THEN given.target WHEN 'group' THEN '' WHEN 'everyone' THEN '' END,
            CASE audience WHEN 'group' THEN given.target ELSE '' END,
            given.event_type, coalesce(given.payload, 'null'::jsonb), record.traceparent
        FROM unnest(targets, event_types, payloads) WITH ORDINALITY AS given (target, event_type, payload, position)
        ORDER BY given.position;
    INSERT INTO fastapi_pg_sse.pending_commits VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
END;
$$;

-- Then the events queued are numbered (sequence_queued), once their transactions commit, as the
-- lock waits for them, and the queue dropped, in one statement: run statement by statement (no
-- single transaction), nothing can be queued between the numbering and the drop, and nothing is
-- queued after the record above.
DO $$
BEGIN
    LOCK TABLE fastapi_pg_sse.queued_events IN ACCESS EXCLUSIVE MODE;
    PERFORM fastapi_pg_sse.sequence_queued();
    DROP TABLE fastapi_pg_sse.queued_events;
    DROP FUNCTION fastapi_pg_sse.sequence_queued();
END;
$$;

DELETE FROM fastapi_pg_sse.migrations WHERE version = '1.5';
