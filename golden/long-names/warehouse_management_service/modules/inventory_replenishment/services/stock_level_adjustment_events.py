# Written by scaffold once: yours to edit, scaffold never checks or rewrites it.
"""Stock level adjustment events of the inventory-replenishment module: each event the channel sends, and its payload.

Declare each event as a `ChannelEvent` with its `event_type`, and list them all in
`StockLevelAdjustmentEvent`: `emit_stock_level_adjustment_event` sends only those, and the stream's OpenAPI documents
each of them. (SQL, and the channel's untyped emit, can send any event type.)
"""

from typing import ClassVar

from fastapi_pg_sse import ChannelEvent


class StockLevelAdjustmentUpdated(ChannelEvent):
    """A stock level adjustment changed: an example, replace it with your own events."""

    event_type: ClassVar[str] = "stock_level_adjustment_updated"

    id: int


StockLevelAdjustmentEvent = StockLevelAdjustmentUpdated
"""Every event of the channel: a union such as `StockLevelAdjustmentUpdated | StockLevelAdjustmentRemoved`."""
