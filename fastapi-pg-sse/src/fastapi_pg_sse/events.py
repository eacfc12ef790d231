"""Typed events: the payload models a channel declares, one class per event type.

An event type, and a channel that declares it with another:

    class StockUpdated(ChannelEvent):
        event_type: ClassVar[str] = "stock_updated"

        sku: str
        stock: int

    INVENTORY_STOCK = Channel("inventory_stock", events=StockUpdated | StockRemoved)
"""

import re
from types import UnionType
from typing import ClassVar, Union, get_args, get_origin

from pydantic import BaseModel

RESERVED_EVENT_TYPES = frozenset({"reset", "expired", "revoked"})
"""The events the runtime itself sends on every stream."""

_EVENT_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]*")
"""What the emit function accepts as an event type (see the channel's migration)."""

EventDeclaration = type["ChannelEvent"] | UnionType | None
"""What `Channel(events=...)` takes: an event class, a union of them (`A | B`), or none."""


class ChannelEvent(BaseModel):
    """The payload of one event type of a channel; its fields are the event's JSON `data`.

    A concrete event sets `event_type: ClassVar[str] = "stock_updated"`. One without is an
    abstract base, such as a table row shared by a trigger's three events: it cannot be declared
    by a channel, nor emitted.
    """

    event_type: ClassVar[str]


def event_type_of(event_class: type[ChannelEvent]) -> str | None:
    """The class's event type, None for an abstract base."""
    value: object = getattr(event_class, "event_type", None)
    return value if isinstance(value, str) else None


def declared_events(events: object) -> dict[str, type[ChannelEvent]]:
    """The event classes of a declaration, by event type; refuse a declaration that would put
    on the wire an event a client cannot tell apart or would take for the runtime's own."""
    if events is None:
        return {}
    members = get_args(events) if get_origin(events) in (Union, UnionType) else (events,)
    declared: dict[str, type[ChannelEvent]] = {}
    for member in members:
        if not (isinstance(member, type) and issubclass(member, ChannelEvent)):
            raise TypeError(
                f"events must be a ChannelEvent subclass or a union of them, got {member!r}"
            )
        event_type = event_type_of(member)
        if event_type is None:
            raise TypeError(
                f"{member.__name__} has no event_type: it is an abstract base, declare its"
                " subclasses that set `event_type: ClassVar[str] = ...`"
            )
        if not _EVENT_TYPE.fullmatch(event_type):
            raise ValueError(
                f"{member.__name__}.event_type {event_type!r} must be a word such as"
                " stock_updated (a letter, then letters, digits or _ . : -)"
            )
        if event_type in RESERVED_EVENT_TYPES:
            raise ValueError(
                f"{member.__name__}.event_type {event_type!r} is reserved: the runtime sends"
                f" {' and '.join(sorted(RESERVED_EVENT_TYPES))} itself"
            )
        if event_type in declared:
            raise ValueError(
                f"{member.__name__} and {declared[event_type].__name__} have the same"
                f" event_type {event_type!r}"
            )
        declared[event_type] = member
    return declared
