-- Written by scaffold. Migrations are history: scaffold never rewrites this one.
-- Stock events of the inventory module (/inventory/events/stock/stream), from baskets:
-- stock_created, _updated and _deleted, to each changed row's user_id, carrying every column of baskets.
SELECT fastapi_pg_sse.create_trigger(
    'inventory_stock', 'baskets', user_column => 'user_id', event_prefix => 'stock'
);
