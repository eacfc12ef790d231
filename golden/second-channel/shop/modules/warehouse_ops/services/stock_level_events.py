# Written by scaffold once: yours to edit, scaffold never checks or rewrites it.
"""Stock level events of the warehouse-ops module: the trigger on baskets sends stock_level_created,
_updated and _deleted events, a row as `BasketsRow` declares it (keep it in step with the table);
declare the events you emit yourself here too, and add them to `StockLevelEvent`."""

from typing import ClassVar

from fastapi_pg_sse import ChannelEvent


class BasketsRow(ChannelEvent):
    """A row of baskets as the trigger sends it (every column of baskets)."""

    id: int
    user_id: str
    stock: int


class StockLevelCreated(BasketsRow):
    """A row of baskets was inserted: the new row."""

    event_type: ClassVar[str] = "stock_level_created"


class StockLevelUpdated(BasketsRow):
    """A row of baskets was updated: the row as it is now."""

    event_type: ClassVar[str] = "stock_level_updated"


class StockLevelDeleted(BasketsRow):
    """A row of baskets was deleted: the row as it was."""

    event_type: ClassVar[str] = "stock_level_deleted"


StockLevelEvent = StockLevelCreated | StockLevelUpdated | StockLevelDeleted
"""Every event of the channel: add those you emit yourself with `|`."""
