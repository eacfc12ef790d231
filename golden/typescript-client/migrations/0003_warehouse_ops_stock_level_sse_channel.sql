-- Written by scaffold. Migrations are history: scaffold never rewrites this one.
-- Stock level events of the warehouse-ops module (/warehouse-ops/events/stock-level/stream).

-- Events are kept here, not only sent with NOTIFY, so that a client reconnecting with
-- Last-Event-ID can replay what it missed, after a restart and on any worker. The table may
-- already exist: a channel removed with its data kept and created again picks its events up.
CREATE TABLE IF NOT EXISTS warehouse_ops_stock_level_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target_user_id text NOT NULL,
    type text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS warehouse_ops_stock_level_events_replay_idx
    ON warehouse_ops_stock_level_events (target_user_id, id);

CREATE INDEX IF NOT EXISTS warehouse_ops_stock_level_events_created_at_idx
    ON warehouse_ops_stock_level_events (created_at);

-- One row per user the channel has sent events to, locked by the emit function until commit: a
-- user's events commit in id order, which replay relies on, and other users' emitters never wait.
CREATE TABLE IF NOT EXISTS warehouse_ops_stock_level_event_locks (target_user_id text PRIMARY KEY);

-- Records an event in the caller's transaction; on commit, NOTIFY announces "<id> <type> <user>".
-- Emit late and keep the transaction short: until it ends, it holds up the user's next emitter.
CREATE FUNCTION warehouse_ops_stock_level_emit(target_user_id text, event_type text, payload jsonb)
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
        PERFORM FROM warehouse_ops_stock_level_event_locks AS locked
            WHERE locked.target_user_id = warehouse_ops_stock_level_emit.target_user_id FOR UPDATE;
        EXIT WHEN FOUND;
        INSERT INTO warehouse_ops_stock_level_event_locks VALUES (target_user_id) ON CONFLICT DO NOTHING;
    END LOOP;
    INSERT INTO warehouse_ops_stock_level_events (target_user_id, type, payload)
        VALUES (target_user_id, event_type, coalesce(payload, 'null'::jsonb))
        RETURNING id INTO event_id;
    PERFORM pg_notify('warehouse_ops_stock_level', event_id || ' ' || event_type || ' ' || target_user_id);
    RETURN event_id;
END;
$$;

-- Emits stock_level_created, _updated and _deleted events to the row's user_id
-- whenever a row of baskets changes; the payload is every column of the row, as JSON.
CREATE FUNCTION warehouse_ops_stock_level_on_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM warehouse_ops_stock_level_emit(OLD.user_id::text, 'stock_level_deleted', to_jsonb(OLD));
        RETURN OLD;
    END IF;
    PERFORM warehouse_ops_stock_level_emit(
        NEW.user_id::text,
        CASE TG_OP WHEN 'INSERT' THEN 'stock_level_created' ELSE 'stock_level_updated' END,
        to_jsonb(NEW)
    );
    RETURN NEW;
END;
$$;

CREATE TRIGGER warehouse_ops_stock_level_notify
    AFTER INSERT OR UPDATE OR DELETE ON baskets
    FOR EACH ROW EXECUTE FUNCTION warehouse_ops_stock_level_on_change();
