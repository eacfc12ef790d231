-- Undoes fastapi-pg-sse schema 1.3: back to 1.2's emit, emit_many and commit_events. Drops the
-- traceparent of every event, and the revocations (their rows on fastapi_pg_sse.revoked).
CREATE OR REPLACE FUNCTION fastapi_pg_sse.emit(channel text, target_user_id text, event_type text, payload jsonb)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text := fastapi_pg_sse.event_problem(channel, target_user_id, event_type);
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE = problem, ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO fastapi_pg_sse.pending_events (channel, target_user_id, type, payload)
        VALUES (channel, target_user_id, event_type, coalesce(payload, 'null'::jsonb));
    INSERT INTO fastapi_pg_sse.pending_commits VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
END;
$$;

CREATE OR REPLACE FUNCTION fastapi_pg_sse.emit_many(channel text, target_user_ids text[], event_types text[], payloads jsonb[])
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text;
BEGIN
    IF coalesce(cardinality(target_user_ids), 0) <> coalesce(cardinality(event_types), 0)
        OR coalesce(cardinality(target_user_ids), 0) <> coalesce(cardinality(payloads), 0) THEN
        RAISE EXCEPTION 'target_user_ids, event_types and payloads must be as long, got %, % and %',
            cardinality(target_user_ids), cardinality(event_types), cardinality(payloads)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(cardinality(target_user_ids), 0) = 0 THEN
        RETURN;
    END IF;
    SELECT fastapi_pg_sse.event_problem(emit_many.channel, given.target_user_id, given.event_type) INTO problem
        FROM unnest(target_user_ids, event_types) AS given (target_user_id, event_type)
        WHERE fastapi_pg_sse.event_problem(emit_many.channel, given.target_user_id, given.event_type) IS NOT NULL
        LIMIT 1;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE = problem, ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO fastapi_pg_sse.pending_events (channel, target_user_id, type, payload)
        SELECT emit_many.channel, given.target_user_id, given.event_type, coalesce(given.payload, 'null'::jsonb)
        FROM unnest(target_user_ids, event_types, payloads) WITH ORDINALITY
            AS given (target_user_id, event_type, payload, position)
        ORDER BY given.position;
    INSERT INTO fastapi_pg_sse.pending_commits VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
END;
$$;

CREATE OR REPLACE FUNCTION fastapi_pg_sse.commit_events()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    announced bigint;
    committed_at timestamptz;
BEGIN
    DELETE FROM fastapi_pg_sse.pending_commits WHERE xact_id = NEW.xact_id;
    LOCK TABLE fastapi_pg_sse.commit_order IN EXCLUSIVE MODE;
    committed_at := clock_timestamp();
    WITH moved AS (
        DELETE FROM fastapi_pg_sse.pending_events WHERE xact_id = NEW.xact_id
        RETURNING position, channel, target_user_id, type, payload
    ), committed AS (
        INSERT INTO fastapi_pg_sse.events (id, channel, target_user_id, type, payload, created_at, xact_id)
            SELECT nextval('fastapi_pg_sse.event_ids'), moved.channel, moved.target_user_id,
                moved.type, moved.payload, committed_at, NEW.xact_id
            FROM moved ORDER BY moved.position
            RETURNING id, channel, target_user_id
    )
    SELECT count(*) INTO announced FROM (  -- one statement: PERFORM cannot start with WITH
        SELECT pg_notify('fastapi_pg_sse', max(id) || ' ' || channel || ' ' || target_user_id)
        FROM committed GROUP BY channel, target_user_id
    ) AS notification;
    RETURN NULL;
END;
$$;

DROP FUNCTION fastapi_pg_sse.emit(text, text, text, jsonb, text);
DROP FUNCTION fastapi_pg_sse.emit_many(text, text[], text[], jsonb[], text);
DROP FUNCTION fastapi_pg_sse.traceparent_problem(text);
DROP FUNCTION fastapi_pg_sse.disconnect(text);
DELETE FROM fastapi_pg_sse.events WHERE channel = 'fastapi_pg_sse.revoked';
DELETE FROM fastapi_pg_sse.pending_events WHERE channel = 'fastapi_pg_sse.revoked';
ALTER TABLE fastapi_pg_sse.events DROP COLUMN traceparent;
ALTER TABLE fastapi_pg_sse.pending_events DROP COLUMN traceparent;

CREATE OR REPLACE FUNCTION fastapi_pg_sse.event_problem(channel text, target_user_id text, event_type text)
RETURNS text
LANGUAGE sql
IMMUTABLE
RETURN CASE
    WHEN channel IS NULL OR channel !~ '^[a-z][a-z0-9_]*$' OR octet_length(channel) > 53 THEN
        'channel must be a lowercase SQL identifier of at most 53 bytes, got ' || quote_nullable(channel)
    WHEN target_user_id IS NULL OR target_user_id = '' OR target_user_id ~ '[\r\n]' THEN
        'target_user_id must be a non-empty single line, got ' || quote_nullable(target_user_id)
    WHEN octet_length(target_user_id) > 1024 THEN
        'target_user_id must be at most 1024 bytes, got ' || octet_length(target_user_id)
    WHEN event_type IS NULL OR event_type !~ '^[A-Za-z][A-Za-z0-9_.:-]*$' THEN
        'event_type must be a word such as stock_updated, got ' || quote_nullable(event_type)
    WHEN event_type IN ('reset', 'expired') THEN
        'event_type ' || event_type || ' is reserved: streams send it themselves'
END;

DELETE FROM fastapi_pg_sse.migrations WHERE version = '1.3';
