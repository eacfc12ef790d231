-- Written by scaffold. Migrations are history: scaffold never rewrites this one.
-- Stock level events of the warehouse-ops module (/warehouse-ops/events/stock-level/stream), from baskets:
-- stock_level_created, _updated and _deleted, to each changed row's user_id, carrying every column of baskets.
SELECT fastapi_pg_sse.create_trigger(
    'warehouse_ops_stock_level', 'baskets', user_column => 'user_id', event_prefix => 'stock_level'
);
