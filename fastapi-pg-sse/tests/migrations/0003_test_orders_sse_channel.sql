-- Written by scaffold. Migrations are history: scaffold never rewrites this one.
-- Orders events of the test module (/test/events/orders/stream).

-- Events are kept here, not only sent with NOTIFY, so that a client reconnecting with
-- Last-Event-ID can replay what it missed, after a restart and on any worker. The table may
-- already exist: a channel removed with its data kept and created again picks its events up.
CREATE TABLE IF NOT EXISTS test_orders_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_user_id text NOT NULL,
    type text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS test_orders_events_replay_idx
    ON test_orders_events (target_user_id, id);

CREATE INDEX IF NOT EXISTS test_orders_events_created_at_idx
    ON test_orders_events (created_at);

-- One row per user the channel has sent events to, locked by the emit function until commit: a
-- user's events commit in id order, which replay relies on, and other users' emitters never wait.
CREATE TABLE IF NOT EXISTS test_orders_event_locks (target_user_id text PRIMARY KEY);

-- Records an event in the caller's transaction; on commit, NOTIFY announces "<id> <type> <user>".
-- Emit late and keep the transaction short: until it ends, it holds up the user's next emitter.
CREATE FUNCTION test_orders_emit(target_user_id text, event_type text, payload jsonb)
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
        PERFORM FROM test_orders_event_locks AS locked
            WHERE locked.target_user_id = test_orders_emit.target_user_id FOR UPDATE;
        EXIT WHEN FOUND;
        INSERT INTO test_orders_event_locks VALUES (target_user_id) ON CONFLICT DO NOTHING;
    END LOOP;
    INSERT INTO test_orders_events (target_user_id, type, payload)
        VALUES (target_user_id, event_type, coalesce(payload, 'null'::jsonb))
        RETURNING id INTO event_id;
    PERFORM pg_notify('test_orders', event_id || ' ' || event_type || ' ' || target_user_id);
    RETURN event_id;
END;
$$;
