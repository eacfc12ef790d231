"""Stock level events of the warehouse-ops module: each event the channel sends, and its payload.

Yours to edit: scaffold wrote this file once and never checks or overwrites it.
"""

from typing import ClassVar

from fastapi_pg_sse import ChannelEvent


class BasketsRow(ChannelEvent):
    """A row of baskets, as the trigger sends it."""

    id: int
    user_id: str
    stock: int


class StockLevelCreated(BasketsRow):
    """A row of baskets was inserted."""

    event_type: ClassVar[str] = "stock_level_created"


class StockLevelUpdated(BasketsRow):
    """A row of baskets was updated: the new row."""

    event_type: ClassVar[str] = "stock_level_updated"


class StockLevelDeleted(BasketsRow):
    """A row of baskets was deleted: the old row."""

    event_type: ClassVar[str] = "stock_level_deleted"


StockLevelEvent = StockLevelCreated | StockLevelUpdated | StockLevelDeleted
"""Every event of the channel."""
