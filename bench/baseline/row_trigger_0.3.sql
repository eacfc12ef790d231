-- The --table trigger as scaffold 0.3 generated it, for the benchmarks' "before": one emit per
-- row changed. On a table of its own, shaped like the example's baskets, emitting on the
-- channel of the golden trigger case (golden/stock-level-in-warehouse-ops-with-trigger).

CREATE TABLE bench_row_baskets (LIKE baskets INCLUDING ALL);

CREATE FUNCTION bench_row_baskets_on_change()
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

CREATE TRIGGER bench_row_baskets_notify
    AFTER INSERT OR UPDATE OR DELETE ON bench_row_baskets
    FOR EACH ROW EXECUTE FUNCTION bench_row_baskets_on_change();
