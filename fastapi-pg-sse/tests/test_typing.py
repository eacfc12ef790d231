"""A typed emit is checked by mypy: a wrong payload, or an event of another channel (on a channel
annotated with its events, `Channel[OrderEvent]`), is a type error where it is written, not a
surprise in a browser; and no code can take an emit for the id it no longer returns."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

SNIPPET = '''
from typing import ClassVar

from fastapi_pg_sse import Channel, ChannelEvent, Connection
from tests.app import FEED, ORDERS
from tests.order_events import OrderEvent, OrderLine, OrderPlaced, OrderShipped


class Refunded(ChannelEvent):
    """An event of another channel."""

    event_type: ClassVar[str] = "refunded"

    order_id: int


REFUNDS: Channel[Refunded] = Channel("refunds", events=Refunded)


async def emit_order_event(
    connection: Connection, event: OrderEvent, *, target_user_id: str
) -> None:
    """The typed helper a project's notify service declares."""
    await ORDERS.emit(connection, event, target_user_id=target_user_id)


async def emits(connection: Connection) -> None:
    shipped = OrderShipped(order_id=7, carrier="post")
    placed = OrderPlaced(order_id=7, lines=[])
    await emit_order_event(connection, shipped, target_user_id="u")
    await ORDERS.emit(connection, placed, target_user_id="u")
    await ORDERS.emit_many(connection, [shipped, placed], target_user_id="u")
    await ORDERS.emit_many(connection, [("u", shipped), ("v", placed)])
    await ORDERS.emit(connection, target_user_id="u", event_type="any", payload={"a": 1})
    await REFUNDS.emit(connection, Refunded(order_id=7), target_user_id="u")
    await FEED.emit(connection, shipped, target_user_id="u")  # Channel[Any]: checked when run
    OrderPlaced(order_id="seven", lines=[])  # error: arg-type
    OrderShipped(order_id=7)  # error: call-arg
    OrderShipped(order_id=7, carrier="post", colour="red")  # error: call-arg
    line = OrderLine(sku="A1", quantity=1)
    await emit_order_event(connection, line, target_user_id="u")  # error: arg-type
    await emit_order_event(connection, Refunded(order_id=7), target_user_id="u")  # error: arg-type
    await emit_order_event(connection, {"order_id": 7}, target_user_id="u")  # error: arg-type
    await ORDERS.emit(connection, Refunded(order_id=7), target_user_id="u")  # error: call-overload
    await REFUNDS.emit(connection, shipped, target_user_id="u")  # error: call-overload
    await ORDERS.emit(connection, {"order_id": 7}, target_user_id="u")  # error: call-overload
    await ORDERS.emit(connection, shipped)  # error: call-overload
    refunded = Refunded(order_id=7)
    await ORDERS.emit_many(connection, [refunded], target_user_id="u")  # error: list-item
    await ORDERS.emit_many(connection, [("u", refunded)])  # error: list-item
    await ORDERS.emit_many(connection, [shipped])  # error: list-item
    event_id = await ORDERS.emit(connection, placed, target_user_id="")  # error: func-returns-value
    ids = await ORDERS.emit_many(connection, [("u", shipped)])  # error: func-returns-value
'''
_EXPECTED = re.compile(r"# error: ([a-z-]+)$")
_REPORTED = re.compile(r"^snippet\.py:(\d+): error: .*\[([a-z-]+)\]$", re.MULTILINE)


def test_mypy_refuses_a_wrong_payload_an_event_of_another_channel_and_an_emits_result(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    (tmp_path / "snippet.py").write_text(SNIPPET, encoding="utf-8")
    mypy = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache")]
    checked = subprocess.run(
        [*mypy, "--no-error-summary", "--show-error-codes", "snippet.py"],
        cwd=tmp_path,
        env={"MYPYPATH": str(pytestconfig.rootpath)},
        capture_output=True,
        text=True,
        check=False,
    )
    expected = {
        (number, match[1])
        for number, line in enumerate(SNIPPET.splitlines(), start=1)
        if (match := _EXPECTED.search(line))
    }
    reported = {(int(number), code) for number, code in _REPORTED.findall(checked.stdout)}
    assert reported == expected, checked.stdout + checked.stderr
