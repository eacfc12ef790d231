-- A channel's emit functions as scaffold 0.4.0 generated them, for the benchmarks' "before" of
-- the commit-order emit (fastapi_pg_sse.emit): a table of events per channel, and a row per user
-- in <channel>_event_locks that every emit locks until commit, so that a user's events commit in
-- id order; a user's emitters wait for each other for the whole transaction. NOTIFY announces
-- "<id> <type> <user>" on the channel's own name. From 0.4.0's pinned test migration
-- (fastapi-pg-sse/tests/migrations/0001_test_feed_sse_channel.sql, since removed), the channel
-- test_feed renamed bench_user_lock. <channel>_emit is also 0.3's, which 0.3's row trigger
-- (row_trigger_0.3.sql) calls; <channel>_emit_many came with 0.4, and 0.4's statement-level
-- trigger (statement_trigger_0.4.sql) calls it.

-- Events are kept here, not only sent with NOTIFY, so that a client reconnecting with
-- Last-Event-ID can replay what it missed, after a restart and on any worker. The table may
-- already exist: a channel removed with its data kept and created again picks its events up.
CREATE TABLE IF NOT EXISTS bench_user_lock_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_user_id text NOT NULL,
    type text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS bench_user_lock_events_replay_idx
    ON bench_user_lock_events (target_user_id, id);

CREATE INDEX IF NOT EXISTS bench_user_lock_events_created_at_idx
    ON bench_user_lock_events (created_at);

-- One row per user the channel has sent events to, locked by the emit function until commit: a
-- user's events commit in id order, which replay relies on, and other users' emitters never wait.
CREATE TABLE IF NOT EXISTS bench_user_lock_event_locks (target_user_id text PRIMARY KEY);

-- Records an event in the caller's transaction; on commit, NOTIFY announces "<id> <type> <user>".
-- Emit late and keep the transaction short: until it ends, it holds up the user's next emitter.
CREATE FUNCTION bench_user_lock_emit(target_user_id text, event_type text, payload jsonb)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    event_id bigint;
BEGIN
    IF target_user_id IS NULL OR target_user_id = '' OR target_user_id ~ '[\r\n]' THEN
        RAISE EXCEPTION 'target_user_id must be a non-empty single line, got %', quote_nullable(target_user_id)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF event_type IS NULL OR event_type !~ '^[A-Za-z][A-Za-z0-9_.:-]*$' THEN
        RAISE EXCEPTION 'event_type must be a word such as stock_updated, got %', quote_nullable(event_type)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    LOOP  -- lock the user's row, creating it for their first event
        PERFORM FROM bench_user_lock_event_locks AS locked
            WHERE locked.target_user_id = bench_user_lock_emit.target_user_id FOR UPDATE;
        EXIT WHEN FOUND;
        INSERT INTO bench_user_lock_event_locks VALUES (target_user_id) ON CONFLICT DO NOTHING;
    END LOOP;
    INSERT INTO bench_user_lock_events (target_user_id, type, payload)
        VALUES (target_user_id, event_type, coalesce(payload, 'null'::jsonb))
        RETURNING id INTO event_id;
    PERFORM pg_notify('bench_user_lock', event_id || ' ' || event_type || ' ' || target_user_id);
    RETURN event_id;
END;
$$;

-- Records many events in one statement, in the order given: their ids, returned in that order,
-- ascend in it. Each is checked as the emit function checks one. Each user's row is locked in
-- sorted order, so bulk emitters do not deadlock each other; on commit, one NOTIFY per user
-- announces their newest event.
CREATE FUNCTION bench_user_lock_emit_many(target_user_ids text[], event_types text[], payloads jsonb[])
RETURNS SETOF bigint
LANGUAGE plpgsql
AS $$
DECLARE
    event_ids bigint[];
    invalid record;
BEGIN
    IF coalesce(cardinality(target_user_ids), 0) <> coalesce(cardinality(event_types), 0)
        OR coalesce(cardinality(target_user_ids), 0) <> coalesce(cardinality(payloads), 0) THEN
        RAISE EXCEPTION 'target_user_ids, event_types and payloads must be as long, got %, % and %',
            cardinality(target_user_ids), cardinality(event_types), cardinality(payloads)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT given.* INTO invalid
        FROM unnest(target_user_ids, event_types) AS given (target_user_id, event_type)
        WHERE given.target_user_id IS NULL OR given.target_user_id = '' OR given.target_user_id ~ '[\r\n]'
            OR given.event_type IS NULL OR given.event_type !~ '^[A-Za-z][A-Za-z0-9_.:-]*$'
        LIMIT 1;
    IF FOUND THEN  -- the emit function raises its error for the first invalid event
        PERFORM bench_user_lock_emit(invalid.target_user_id, invalid.event_type, NULL);
    END IF;
    INSERT INTO bench_user_lock_event_locks
        SELECT DISTINCT given COLLATE "C" FROM unnest(target_user_ids) AS given ORDER BY 1
        ON CONFLICT DO NOTHING;
    PERFORM FROM bench_user_lock_event_locks AS locked WHERE locked.target_user_id = ANY (target_user_ids)
        ORDER BY locked.target_user_id COLLATE "C" FOR UPDATE;
    WITH event AS (
        INSERT INTO bench_user_lock_events (target_user_id, type, payload)
            SELECT given.target_user_id, given.event_type, coalesce(given.payload, 'null'::jsonb)
            FROM unnest(target_user_ids, event_types, payloads) WITH ORDINALITY
                AS given (target_user_id, event_type, payload, position)
            ORDER BY given.position
            RETURNING id
    )
    SELECT array_agg(id ORDER BY id) INTO event_ids FROM event;
    PERFORM pg_notify('bench_user_lock', event_ids[newest.position] || ' ' || newest.event_type || ' ' || newest.target_user_id)
        FROM (
            SELECT DISTINCT ON (given.target_user_id) given.*
            FROM unnest(target_user_ids, event_types) WITH ORDINALITY AS given (target_user_id, event_type, position)
            ORDER BY given.target_user_id, given.position DESC
        ) AS newest;
    RETURN QUERY SELECT unnest(event_ids);
END;
$$;
