"""The events of the test app's typed channel, as a project writes them in its events file: an
abstract base shared by two events, and a payload that nests another model."""

from typing import ClassVar

from pydantic import BaseModel

from fastapi_pg_sse import ChannelEvent


class OrderLine(BaseModel):
    sku: str
    quantity: int


class Order(ChannelEvent):
    """What every event of an order carries; no event type: it is not an event itself."""

    order_id: int


class OrderPlaced(Order):
    """An order was placed."""

    event_type: ClassVar[str] = "order_placed"

    lines: list[OrderLine]


class OrderShipped(Order):
    """An order left the warehouse."""

    event_type: ClassVar[str] = "order_shipped"

    carrier: str


OrderEvent = OrderPlaced | OrderShipped
"""Every event of the channel."""
