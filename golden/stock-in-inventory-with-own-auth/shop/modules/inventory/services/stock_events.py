# Written by scaffold once: yours to edit, scaffold never checks or rewrites it.
"""Stock events of the inventory module: each event the channel sends, and its payload.

Declare each event as a `ChannelEvent` with its `event_type`, and list them all in
`StockEvent`: `emit_stock_event` sends only those, and the stream's OpenAPI documents
each of them. (SQL, and the channel's untyped emit, can send any event type.)
"""

from typing import ClassVar

from fastapi_pg_sse import ChannelEvent


class StockUpdated(ChannelEvent):
    """A stock changed: an example, replace it with your own events."""

    event_type: ClassVar[str] = "stock_updated"

    id: int


StockEvent = StockUpdated
"""Every event of the channel: a union such as `StockUpdated | StockRemoved`."""
