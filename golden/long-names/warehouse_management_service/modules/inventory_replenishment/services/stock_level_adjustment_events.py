# Written by scaffold once: yours to edit, scaffold never checks or rewrites it.
"""Stock level adjustment events of the inventory-replenishment module: each a `ChannelEvent` with its `event_type`,
all in `StockLevelAdjustmentEvent`, which types the channel's emits and documents its stream in OpenAPI."""

from typing import ClassVar

from fastapi_pg_sse import ChannelEvent


class StockLevelAdjustmentUpdated(ChannelEvent):
    """A stock level adjustment changed: an example, replace it with your own events."""

    event_type: ClassVar[str] = "stock_level_adjustment_updated"

    id: int


StockLevelAdjustmentEvent = StockLevelAdjustmentUpdated
"""Every event of the channel: a union such as `StockLevelAdjustmentUpdated | StockLevelAdjustmentRemoved`."""
