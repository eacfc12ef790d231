-- The --table trigger as scaffold 0.4.0 generated it, for the benchmarks' "before" of the
-- runtime's generic trigger (fastapi_pg_sse.create_trigger): a function and three triggers per
-- channel, one bulk emit per statement from its transition table, the event types and the user
-- column written into the function's SQL. Taken from 0.4.0's golden trigger case
-- (golden/stock-level-in-warehouse-ops-with-trigger/migrations/0002_..._sse_channel.sql), the
-- channel warehouse_ops_stock_level renamed bench_user_lock (its emit_many is in
-- user_lock_0.4.sql, which goes first) and its table baskets renamed bench_statement_baskets:
-- a table of its own, shaped like the example's baskets.

CREATE TABLE bench_statement_baskets (LIKE baskets INCLUDING ALL);

-- Emits stock_level_created, _updated and _deleted events to each changed row's user_id, in one
-- bulk emit per statement, in the order the statement changed the rows;
-- the payload is every column of the row, as JSON.
CREATE FUNCTION bench_user_lock_on_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    event_type text := CASE TG_OP
        WHEN 'INSERT' THEN 'stock_level_created'
        WHEN 'UPDATE' THEN 'stock_level_updated'
        ELSE 'stock_level_deleted'
    END;
BEGIN
    PERFORM bench_user_lock_emit_many(
        array_agg(changed.user_id::text),
        array_agg(event_type),
        array_agg(to_jsonb(changed))
    )
    FROM changed_rows AS changed;
    RETURN NULL;
END;
$$;

CREATE TRIGGER bench_user_lock_on_insert
    AFTER INSERT ON bench_statement_baskets REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bench_user_lock_on_change();

CREATE TRIGGER bench_user_lock_on_update
    AFTER UPDATE ON bench_statement_baskets REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bench_user_lock_on_change();

CREATE TRIGGER bench_user_lock_on_delete
    AFTER DELETE ON bench_statement_baskets REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bench_user_lock_on_change();
