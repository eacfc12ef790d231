-- The --table trigger as scaffold 0.3 generated it, for the benchmarks' "before": one emit per
-- row changed. On a table of its own, shaped like the example's baskets, emitting through 0.3's
-- emit function, the per-user lock of user_lock_0.4.sql (unchanged in 0.4), which goes first.

CREATE TABLE bench_row_baskets (LIKE baskets INCLUDING ALL);

CREATE FUNCTION bench_row_baskets_on_change()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM bench_user_lock_emit(OLD.user_id::text, 'stock_level_deleted', to_jsonb(OLD));
        RETURN OLD;
    END IF;
    PERFORM bench_user_lock_emit(
        NEW.user_id::text,
        CASE TG_OP WHEN 'INSERT' THEN 'stock_level_created' ELSE 'stock_level_updated' END,
        to_jsonb(NEW)
    );
    RETURN NEW;
END;
$$;

CREATE TRIGGER bench_row_baskets_notify
    AFTER INSERT OR UPDATE OR DELETE ON bench_row_baskets
    FOR EACH ROW EXECUTE FUNCTION bench_row_baskets_on_change();
