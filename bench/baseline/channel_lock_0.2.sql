-- The emit function as fastapi-pg-sse 0.2 generated it, for the benchmarks' "before": one
-- advisory lock per channel, held until commit, and the payload carried in the NOTIFY.

-- Events are kept here, not only sent with NOTIFY, so that a client reconnecting with
-- Last-Event-ID can replay what it missed, after a restart and on any worker. The table may
-- already exist: a channel removed with its data kept and created again picks its events up.
CREATE TABLE IF NOT EXISTS bench_before_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_user_id text NOT NULL,
    type text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS bench_before_events_replay_idx
    ON bench_before_events (target_user_id, id);

CREATE INDEX IF NOT EXISTS bench_before_events_created_at_idx
    ON bench_before_events (created_at);

-- Records an event in the caller's transaction and announces it on commit. The advisory lock
-- makes ids commit in id order, which replay relies on: until it commits, a transaction that
-- emitted holds up the channel's other emitters, so emit late and keep it short (see "Limits" in
-- fastapi-pg-sse's README). NOTIFY carries "<id> <type> <user>", and the payload if it fits.
CREATE FUNCTION bench_before_emit(target_user_id text, event_type text, payload jsonb)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    event_id bigint;
    message text;
BEGIN
    IF target_user_id IS NULL OR target_user_id = '' OR target_user_id ~ '[\r\n]' THEN
        RAISE EXCEPTION 'target_user_id must be a non-empty single line, got %', quote_nullable(target_user_id)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF event_type IS NULL OR event_type !~ '^[A-Za-z][A-Za-z0-9_.:-]*$' THEN
        RAISE EXCEPTION 'event_type must be a word such as stock_updated, got %', quote_nullable(event_type)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('bench_before_events'));
    INSERT INTO bench_before_events (target_user_id, type, payload)
        VALUES (target_user_id, event_type, coalesce(payload, 'null'::jsonb))
        RETURNING id INTO event_id;
    message := event_id || ' ' || event_type || ' ' || target_user_id;
    IF octet_length(message) + 1 + octet_length(payload::text) < 8000 THEN
        message := message || E'\n' || payload::text;
    END IF;
    PERFORM pg_notify('bench_before', message);
    RETURN event_id;
END;
$$;
