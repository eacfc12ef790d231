"""A channel may declare its event types, each with a pydantic payload model: emitting is then
typed, and a payload or an event class the channel does not expect is refused before any SQL."""

from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ValidationError

from fastapi_pg_sse import Channel, ChannelEvent
from fastapi_pg_sse.testing import (
    Server,
    connected,
    next_event,
    open_stream,
    payload_of,
    sign_token,
)
from tests.app import FEED, ORDERS, ORDERS_STREAM
from tests.helpers import committing
from tests.order_events import Order, OrderLine, OrderPlaced, OrderShipped

pytestmark = pytest.mark.anyio


class Refunded(ChannelEvent):
    """An event of no channel of the test app."""

    event_type: ClassVar[str] = "refunded"

    order_id: int


def _event(event_type: object, name: str = "Declared") -> type[ChannelEvent]:
    """A concrete event class of `event_type`."""
    namespace = {"__annotations__": {"event_type": ClassVar[str]}, "event_type": event_type}
    return type(name, (ChannelEvent,), namespace)


async def test_a_typed_emit_delivers_the_models_json_by_alias_under_its_event_type(
    realtime_server: Server, realtime_database_url: str
) -> None:
    placed = OrderPlaced(order_id=7, lines=[OrderLine(sku="A1", quantity=2)])
    shipped = OrderShipped(order_id=7, carrier="post")
    ids_in_order: list[int] = []
    async with open_stream(realtime_server.url + ORDERS_STREAM, sign_token("olga")) as olga:
        async with connected(realtime_database_url) as connection:
            for event in (placed, shipped):
                async with committing(connection) as ids:
                    await ORDERS.emit(connection, event, target_user_id="olga")
                ids_in_order.extend(ids)
        ids = ids_in_order
        received = [await next_event(olga) for _ in ids]
    assert [(e.id, e.event, payload_of(e)) for e in received] == [
        (str(ids[0]), "order_placed", {"order_id": 7, "lines": [{"sku": "A1", "quantity": 2}]}),
        (str(ids[1]), "order_shipped", {"order_id": 7, "carrier": "post", "trackingUrl": None}),
    ]


def test_a_wrong_payload_is_a_validation_error_when_the_event_is_built() -> None:
    with pytest.raises(ValidationError) as refused:
        OrderPlaced.model_validate({"order_id": "seven", "lines": [{"sku": "A1"}]})
    assert {error["loc"] for error in refused.value.errors()} == {
        ("order_id",),
        ("lines", 0, "quantity"),
    }


@pytest.mark.parametrize(
    ("channel", "event"),
    [
        (ORDERS, Refunded(order_id=7)),
        (ORDERS, Order(order_id=7)),  # the abstract base of the channel's events
        (FEED, OrderShipped(order_id=7, carrier="post")),  # a channel that declares none
    ],
    ids=["undeclared", "abstract", "untyped-channel"],
)
async def test_an_event_class_the_channel_does_not_declare_is_refused_and_nothing_is_written(
    realtime_database_url: str, channel: Channel[Any], event: ChannelEvent
) -> None:
    async with connected(realtime_database_url) as connection, committing(connection) as ids:
        with pytest.raises(TypeError, match=f"not {type(event).__name__}"):
            await channel.emit(connection, event, target_user_id="uma")
        await connection.execute("SELECT 1")  # refused before any SQL: still usable
    assert ids == []


async def test_the_raw_emit_takes_an_event_type_and_not_also_an_event(
    realtime_database_url: str,
) -> None:
    async with connected(realtime_database_url) as connection:
        with pytest.raises(TypeError, match="not both"):
            await ORDERS.emit(  # type: ignore[call-overload]
                connection, Refunded(order_id=1), target_user_id="uma", event_type="refunded"
            )


def test_a_channel_reads_its_events_from_one_class_or_a_union() -> None:
    placed: Channel[OrderPlaced] = Channel("one_event", events=OrderPlaced)
    assert dict(placed.event_classes) == {"order_placed": OrderPlaced}
    assert dict(ORDERS.event_classes) == {
        "order_placed": OrderPlaced,
        "order_shipped": OrderShipped,
    }
    assert dict(Channel("untyped").event_classes) == {}


@pytest.mark.parametrize(
    ("events", "error", "message"),
    [
        (_event("reset"), ValueError, "'reset' is reserved"),
        (_event("expired"), ValueError, "'expired' is reserved"),
        (_event("placed") | _event("placed", "Other"), ValueError, "have the same event_type"),
        (_event("order placed"), ValueError, "must be a word"),
        (_event("1st"), ValueError, "must be a word"),
        (_event(""), ValueError, "must be a word"),
        (Order, TypeError, "Order has no event_type: it is an abstract base"),
        (OrderPlaced | Order, TypeError, "Order has no event_type"),
        (_event(3), TypeError, "has no event_type"),
        (OrderLine, TypeError, "must be a ChannelEvent subclass"),
        (OrderPlaced | None, TypeError, "must be a ChannelEvent subclass"),
        (OrderPlaced(order_id=1, lines=[]), TypeError, "must be a ChannelEvent subclass"),
    ],
    ids=[
        "reset",
        "expired",
        "twice",
        "a-space",
        "a-digit-first",
        "empty",
        "abstract",
        "abstract-in-a-union",
        "not-a-string",
        "a-plain-model",
        "optional",
        "an-instance",
    ],
)
def test_a_channel_refuses_events_a_client_could_not_tell_apart_or_take_for_the_runtimes(
    events: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Channel("refused", events=events)  # type: ignore[arg-type]


def test_an_events_type_is_inherited_like_any_class_variable() -> None:
    """A plain model subclass of an event is the same event type: declared with its parent,
    it is a duplicate."""

    class PlacedAgain(OrderPlaced):
        note: str

    assert Channel("inherited", events=PlacedAgain).event_classes == {"order_placed": PlacedAgain}
    with pytest.raises(ValueError, match="PlacedAgain and OrderPlaced have the same event_type"):
        Channel("inherited", events=OrderPlaced | PlacedAgain)


def test_a_plain_model_is_not_an_event_even_with_an_event_type() -> None:
    class Lookalike(BaseModel):
        event_type: ClassVar[str] = "lookalike"

    with pytest.raises(TypeError, match="must be a ChannelEvent subclass"):
        Channel("lookalike", events=Lookalike)  # type: ignore[type-var]
