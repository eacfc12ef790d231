-- fastapi-pg-sse schema 1.3: an event carries the trace of the request that emitted it, and a
-- user's streams can be ended in every process (fastapi_pg_sse.disconnect).

-- 1.2 let an application emit events of type `revoked`: replayed under 1.3, every client would
-- take them for the end of its user's streams. Refuses while any is stored, naming their channels.
DO $$
DECLARE
    revoked_on text;
BEGIN
    SELECT string_agg(format('%s (%s)', channel, events), ', ' ORDER BY channel)
        INTO revoked_on
        FROM (SELECT channel, count(*) AS events
                FROM (SELECT channel FROM fastapi_pg_sse.events WHERE type = 'revoked'
                      UNION ALL SELECT channel FROM fastapi_pg_sse.pending_events WHERE type = 'revoked') AS stored
                WHERE channel <> 'fastapi_pg_sse.revoked'
                GROUP BY channel) AS counted;
    IF revoked_on IS NOT NULL THEN
        RAISE EXCEPTION 'cannot upgrade to fastapi-pg-sse schema 1.3: events of type revoked are stored on these channels (with their count), and 1.3 reserves that type for the end of a user''s streams, which clients would take them for: %',
                revoked_on
            USING ERRCODE = 'object_not_in_prerequisite_state',
                HINT = 'give them a type of your own (UPDATE fastapi_pg_sse.events SET type = ''your_type'' WHERE type = ''revoked'', and the same on fastapi_pg_sse.pending_events) or delete them, then upgrade again';
    END IF;
END;
$$;

-- The W3C traceparent (`00-<trace id>-<span id>-<flags>`) of the span that was current where the
-- event was emitted, for the delivery's span to link to; NULL when none was. Nullable and without
-- a default: adding them rewrites no row.
ALTER TABLE fastapi_pg_sse.pending_events ADD COLUMN traceparent text;
ALTER TABLE fastapi_pg_sse.events ADD COLUMN traceparent text;

-- Why an event cannot be emitted, or NULL if it can: `revoked` joins the types streams send.
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
    WHEN event_type IN ('reset', 'expired', 'revoked') THEN
        'event_type ' || event_type || ' is reserved: streams send it themselves'
END;

-- Why a traceparent cannot be stored, or NULL if it can (NULL is none).
CREATE FUNCTION fastapi_pg_sse.traceparent_problem(traceparent text)
RETURNS text
LANGUAGE sql
IMMUTABLE
RETURN CASE WHEN traceparent !~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' THEN
    'traceparent must be a W3C traceparent such as 00-<32 hex digits>-<16 hex digits>-01, got '
        || quote_literal(left(traceparent, 100)) END;

-- emit, with the traceparent of the emitting span (NULL for none): what Channel.emit calls while
-- a span is current. A traceparent that is not one is refused, as a bad event type is.
CREATE FUNCTION fastapi_pg_sse.emit(channel text, target_user_id text, event_type text, payload jsonb, traceparent text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text := coalesce(fastapi_pg_sse.event_problem(channel, target_user_id, event_type), fastapi_pg_sse.traceparent_problem(traceparent));
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE = problem, ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO fastapi_pg_sse.pending_events (channel, target_user_id, type, payload, traceparent)
        VALUES (channel, target_user_id, event_type, coalesce(payload, 'null'::jsonb), traceparent);
    INSERT INTO fastapi_pg_sse.pending_commits VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
END;
$$;

-- The four-argument emit records no trace.
CREATE OR REPLACE FUNCTION fastapi_pg_sse.emit(channel text, target_user_id text, event_type text, payload jsonb)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN fastapi_pg_sse.emit(channel, target_user_id, event_type, payload, NULL::text);

-- emit_many, every event with the one traceparent of the emitting span (NULL for none).
CREATE FUNCTION fastapi_pg_sse.emit_many(channel text, target_user_ids text[], event_types text[], payloads jsonb[], traceparent text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem text := fastapi_pg_sse.traceparent_problem(traceparent);
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
    SELECT coalesce(problem, fastapi_pg_sse.event_problem(emit_many.channel, given.target_user_id, given.event_type)) INTO problem
        FROM unnest(target_user_ids, event_types) AS given (target_user_id, event_type)
        WHERE coalesce(problem, fastapi_pg_sse.event_problem(emit_many.channel, given.target_user_id, given.event_type)) IS NOT NULL
        LIMIT 1;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE = problem, ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO fastapi_pg_sse.pending_events (channel, target_user_id, type, payload, traceparent)
        SELECT emit_many.channel, given.target_user_id, given.event_type, coalesce(given.payload, 'null'::jsonb), emit_many.traceparent
        FROM unnest(target_user_ids, event_types, payloads) WITH ORDINALITY
            AS given (target_user_id, event_type, payload, position)
        ORDER BY given.position;
    INSERT INTO fastapi_pg_sse.pending_commits VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
END;
$$;

-- The four-argument emit_many records no trace.
CREATE OR REPLACE FUNCTION fastapi_pg_sse.emit_many(channel text, target_user_ids text[], event_types text[], payloads jsonb[])
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN fastapi_pg_sse.emit_many(channel, target_user_ids, event_types, payloads, NULL::text);

-- Ends the user's open streams in every process, once the caller's transaction commits: a row
-- of the events table on the channel `fastapi_pg_sse.revoked` (which no emit can name), given its
-- id in commit order as every event is and announced as one. Every stream of the user that opened
-- before it (its id is above the newest the stream saw as it opened) ends with a `revoked` event,
-- and a stream whose token was issued before the second it committed in is refused (401).
CREATE FUNCTION fastapi_pg_sse.disconnect(target_user_id text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF fastapi_pg_sse.event_problem('revoked', target_user_id, 'disconnect') IS NOT NULL THEN  -- the user id, as emit checks it
        RAISE EXCEPTION USING MESSAGE = fastapi_pg_sse.event_problem('revoked', target_user_id, 'disconnect'), ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO fastapi_pg_sse.pending_events (channel, target_user_id, type, payload)
        VALUES ('fastapi_pg_sse.revoked', target_user_id, 'revoked', '{"reason": "revoked"}');
    INSERT INTO fastapi_pg_sse.pending_commits VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
END;
$$;

-- commit_events, moving each event's traceparent with it.
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
        RETURNING position, channel, target_user_id, type, payload, traceparent
    ), committed AS (
        INSERT INTO fastapi_pg_sse.events (id, channel, target_user_id, type, payload, created_at, xact_id, traceparent)
            SELECT nextval('fastapi_pg_sse.event_ids'), moved.channel, moved.target_user_id,
                moved.type, moved.payload, committed_at, NEW.xact_id, moved.traceparent
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

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA fastapi_pg_sse FROM PUBLIC;

-- The roles granted the four-argument emit and emit_many may call the traced ones.
DO $$
DECLARE
    grant_ record;
BEGIN
    FOR grant_ IN
        SELECT DISTINCT function.proname, acl.grantee::regrole AS grantee
        FROM pg_proc AS function CROSS JOIN LATERAL aclexplode(function.proacl) AS acl
        WHERE function.oid IN ('fastapi_pg_sse.emit(text, text, text, jsonb)'::regprocedure,
                'fastapi_pg_sse.emit_many(text, text[], text[], jsonb[])'::regprocedure)
            AND acl.privilege_type = 'EXECUTE' AND acl.grantee <> 0 AND acl.grantee <> function.proowner
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION fastapi_pg_sse.%s TO %s',
            grant_.proname || CASE grant_.proname WHEN 'emit' THEN '(text, text, text, jsonb, text)'
                ELSE '(text, text[], text[], jsonb[], text)' END, grant_.grantee);
    END LOOP;
END;
$$;

INSERT INTO fastapi_pg_sse.migrations (version) VALUES ('1.3');
