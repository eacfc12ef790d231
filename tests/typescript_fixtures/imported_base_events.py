"""Events whose bases are not in the file: scaffold types the fields the file declares."""

from typing import ClassVar

from fastapi_pg_sse import ChannelEvent
from shop.shared import Audited, Tagged


class StockUpdated(Audited):
    """A stock changed."""

    event_type: ClassVar[str] = "stock_updated"

    id: int


class StockRow(ChannelEvent, Tagged):
    """A row, tagged by a mixin of another module."""

    sku: str


class StockRemoved(StockRow):
    event_type: ClassVar[str] = "stock_removed"


StockEvent = StockUpdated | StockRemoved
