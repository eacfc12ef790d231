"""Stock events of the inventory module: each event the channel sends, and its payload.

Yours to edit: scaffold wrote this file once and never checks or overwrites it.
"""

from typing import ClassVar

from fastapi_pg_sse import ChannelEvent


class StockUpdated(ChannelEvent):
    """A stock changed: an example, replace it with your own events."""

    event_type: ClassVar[str] = "stock_updated"

    id: int


StockEvent = StockUpdated
"""Every event of the channel: a union such as `StockUpdated | StockRemoved`."""
