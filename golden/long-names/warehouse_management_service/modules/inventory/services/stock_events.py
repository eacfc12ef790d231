# Written by scaffold once: yours to edit, scaffold never checks or rewrites it.
"""Stock events of the inventory module: the trigger on baskets sends stock_created,
_updated and _deleted events, a row as `BasketsRow` declares it (keep it in step with the table);
declare the events you emit yourself here too, and add them to `StockEvent`."""

from typing import ClassVar

from fastapi_pg_sse import ChannelEvent


class BasketsRow(ChannelEvent):
    """A row of baskets as the trigger sends it (every column of baskets)."""

    id: int
    user_id: str
    stock: int


class StockCreated(BasketsRow):
    """A row of baskets was inserted: the new row."""

    event_type: ClassVar[str] = "stock_created"


class StockUpdated(BasketsRow):
    """A row of baskets was updated: the row as it is now."""

    event_type: ClassVar[str] = "stock_updated"


class StockDeleted(BasketsRow):
    """A row of baskets was deleted: the row as it was."""

    event_type: ClassVar[str] = "stock_deleted"


StockEvent = StockCreated | StockUpdated | StockDeleted
"""Every event of the channel: add those you emit yourself with `|`."""
