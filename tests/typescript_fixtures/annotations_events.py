"""Every kind of annotation scaffold maps to TypeScript."""

import datetime as dt
import enum
import typing
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Optional, Union
from uuid import UUID

import pydantic
from fastapi_pg_sse import ChannelEvent
from pydantic import BaseModel, ConfigDict, Field, JsonValue, computed_field

from shop.elsewhere import Imported


class Colour(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


class Size(enum.StrEnum):
    """A value the file alone cannot tell (`auto()`): the union is unknown."""

    SMALL = "small"
    LARGE = enum.auto()


class Line(BaseModel):
    """A line of an order: a nested model."""

    sku: str
    quantity: int


class Audited(pydantic.BaseModel):
    """A base of the file without `event_type`: the events extend it."""

    model_config = ConfigDict(extra="allow")

    at: dt.datetime
    by: "str | None" = None


class OrderPlaced(ChannelEvent, Audited):
    """An order was placed.

    Its lines are what the basket held.
    """

    event_type: ClassVar[str] = "order.placed"
    _private: int = 0

    id: UUID
    """The order's id."""
    total: Decimal
    day: dt.date
    at_time: dt.time
    count: int = 0
    ratio: float
    paid: bool
    note: str | None
    maybe: Optional[int]
    either: Union[int, str]
    tags: list[str]
    codes: Sequence[int]
    pair: tuple[int, str]
    many: tuple[float, ...]
    seen: set[str]
    lines: list[Line]
    optional_lines: list[Line | None]
    by_sku: dict[str, Line]
    counts: Mapping[str, int]
    status: Literal["open", "closed", 3, True, None]
    colour: Colour
    size: Size
    measured: Annotated[float, Field(ge=0)]
    anything: Any
    json: JsonValue
    other: Imported
    bare_list: list
    bare_dict: typing.Dict
    secret: str = Field(exclude=True)

    @computed_field
    @property
    def line_count(self) -> int:
        return len(self.lines)


class OrderCancelled(ChannelEvent):
    event_type: ClassVar[str] = "order_cancelled"
    model_config = {"extra": "forbid"}

    id: UUID


class Strict(OrderPlaced, extra="forbid"):
    event_type: ClassVar[str] = "order_placed_strictly"


OrderEvent = Union[OrderPlaced, OrderCancelled] | Strict
