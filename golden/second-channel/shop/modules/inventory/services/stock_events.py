# Written by scaffold once: yours to edit, scaffold never checks or rewrites it.
"""Stock events of the inventory module: each a `ChannelEvent` with its `event_type`,
all in `StockEvent`, which types the channel's emits and documents its stream in OpenAPI."""

from typing import ClassVar

from fastapi_pg_sse import ChannelEvent


class StockUpdated(ChannelEvent):
    """A stock changed: an example, replace it with your own events."""

    event_type: ClassVar[str] = "stock_updated"

    id: int


StockEvent = StockUpdated
"""Every event of the channel: a union such as `StockUpdated | StockRemoved`."""
