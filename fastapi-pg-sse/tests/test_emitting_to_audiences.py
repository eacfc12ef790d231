"""An event goes to a user, to a group, or to everyone on its channel (schema 1.4), from SQL
(`emit_to_group`, `emit_to_groups`, `broadcast`, `broadcast_many`), from Python
(`Channel.emit` and `emit_many` with `target_group=` or `everyone=True`) and from a trigger made
with `group_column`: stored with its audience, numbered in commit order with every other event,
announced once per audience, and refused as a user's event is when it cannot be delivered."""

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from opentelemetry import trace

from fastapi_pg_sse import Channel
from fastapi_pg_sse.testing import connected
from tests.app import ORDERS
from tests.helpers import committing, new_channel
from tests.order_events import OrderPlaced, OrderShipped
from tests.test_bulk_emit import notifications, until_marker
from tests.test_tracing import spans  # noqa: F401  (the fixture)

pytestmark = pytest.mark.anyio

AUDIENCE = (
    "SELECT array_agg(format('%s|%s|%s|%s', target_user_id, target_group, type, payload)"
    " ORDER BY id) FROM fastapi_pg_sse.events WHERE channel = $1"
)
"""Each event of a channel, in id order: `user|group|type|payload`, user empty for a group's or
everyone's event, group empty for a user's or everyone's."""


async def stored(connection: asyncpg.Connection, channel: Channel[Any]) -> list[str]:
    rows: list[str] | None = await connection.fetchval(AUDIENCE, channel.name)
    return rows or []


async def test_sql_emits_to_a_group_and_to_everyone_in_the_order_given_one_notify_per_audience(
    realtime_database_url: str,
) -> None:
    channel = new_channel()
    async with (
        notifications(realtime_database_url) as queue,
        connected(realtime_database_url) as connection,
    ):
        async with committing(connection) as ids:
            await connection.execute(
                "SELECT fastapi_pg_sse.emit($1, 'ada', 'mine', '{\"n\": 1}');"
                " SELECT fastapi_pg_sse.emit_to_group($1, 'team 7', 'ours', '{\"n\": 2}');"
                " SELECT fastapi_pg_sse.broadcast($1, 'all', '{\"n\": 3}');"
                " SELECT fastapi_pg_sse.emit_to_groups($1, '{team 7,ops}', '{ours,theirs}',"
                "  '{4,5}');"
                " SELECT fastapi_pg_sse.broadcast_many($1, '{all,all}', '{6,null}')".replace(
                    "$1", f"'{channel.name}'"
                )
            )
        async with committing(connection) as marker:
            await connection.execute("SELECT fastapi_pg_sse.emit('marker', 'm', 'marker', NULL)")
        announced = await until_marker(queue, marker[0])
        assert await stored(connection, channel) == [
            'ada||mine|{"n": 1}',
            '|team 7|ours|{"n": 2}',
            '||all|{"n": 3}',
            "|team 7|ours|4",
            "|ops|theirs|5",
            "||all|6",
            "||all|null",
        ]
    assert ids == list(range(ids[0], ids[0] + 7))
    assert sorted(announced) == sorted(
        [
            f"{ids[0]} {channel.name} ada",
            f"{ids[3]} {channel.name} \nteam 7",
            f"{ids[4]} {channel.name} \nops",
            f"{ids[6]} {channel.name} \n",
        ]
    ), "the newest id of each audience, a group's and everyone's after a line break"


async def test_python_emits_to_a_group_and_to_everyone_typed_raw_and_in_bulk(
    realtime_database_url: str,
) -> None:
    placed, shipped = OrderPlaced(order_id=1, lines=[]), OrderShipped(order_id=1, carrier="post")
    async with connected(realtime_database_url) as connection, committing(connection) as ids:
        await ORDERS.emit(connection, placed, target_group="team-7")
        await ORDERS.emit(connection, shipped, everyone=True)
        await ORDERS.emit(connection, target_group="team-7", event_type="raw", payload={"a": 1})
        await ORDERS.emit(connection, everyone=True, event_type="raw", payload=None)
        await ORDERS.emit_many(connection, [shipped, placed], target_group="ops")
        await ORDERS.emit_many(connection, [placed], everyone=True)
        await ORDERS.emit_many(connection, [], target_group="nobody")
        await ORDERS.emit_many(connection, [placed], target_user_id="ada")
    async with connected(realtime_database_url) as connection:
        rows = await connection.fetch(
            "SELECT target_user_id, target_group, type FROM fastapi_pg_sse.events"
            " WHERE id = ANY ($1) ORDER BY id",
            ids,
        )
    assert [tuple(row) for row in rows] == [
        ("", "team-7", "order_placed"),
        ("", "", "order_shipped"),
        ("", "team-7", "raw"),
        ("", "", "raw"),
        ("", "ops", "order_shipped"),
        ("", "ops", "order_placed"),
        ("", "", "order_placed"),
        ("ada", "", "order_placed"),
    ]


PLACED = OrderPlaced(order_id=1, lines=[])
NO_AUDIENCE = "takes one audience: target_user_id=, target_group= or everyone=True, got"
MISUSES: dict[str, tuple[Callable[[asyncpg.Connection], Awaitable[None]], str]] = {
    "emit to none": (lambda c: ORDERS.emit(c, PLACED), f"emit() {NO_AUDIENCE} none"),  # type: ignore[call-overload]
    "emit to none, everyone=False": (
        lambda c: ORDERS.emit(c, PLACED, everyone=False),  # type: ignore[call-overload]
        f"emit() {NO_AUDIENCE} none",
    ),
    "emit to a user and a group": (
        lambda c: ORDERS.emit(c, PLACED, target_user_id="u", target_group="g"),  # type: ignore[call-overload]
        f"emit() {NO_AUDIENCE} target_user_id and target_group",
    ),
    "emit raw to a group and everyone": (
        lambda c: ORDERS.emit(c, target_group="g", everyone=True, event_type="x"),  # type: ignore[call-overload]
        f"emit() {NO_AUDIENCE} target_group and everyone",
    ),
    "emit_many to a user and everyone": (
        lambda c: ORDERS.emit_many(c, [PLACED], target_user_id="u", everyone=True),  # type: ignore[call-overload]
        f"emit_many() {NO_AUDIENCE} target_user_id and everyone",
    ),
    "emit_many of nothing to all three": (
        lambda c: ORDERS.emit_many(c, [], target_user_id="u", target_group="g", everyone=True),  # type: ignore[call-overload]
        f"emit_many() {NO_AUDIENCE} target_user_id and target_group and everyone",
    ),
    "emit_many of pairs to a group": (
        lambda c: ORDERS.emit_many(c, [("u", PLACED)], target_group="g"),  # type: ignore[list-item]
        "declares OrderPlaced, OrderShipped, not tuple",
    ),
}


@pytest.mark.parametrize("misuse", MISUSES)
async def test_no_audience_or_several_is_a_type_error_before_any_sql(
    realtime_database_url: str, misuse: str
) -> None:
    call, message = MISUSES[misuse]
    async with connected(realtime_database_url) as connection:
        async with committing(connection) as ids:
            with pytest.raises(TypeError) as refused:
                await call(connection)
            await connection.execute("SELECT 1")  # refused before any SQL: still usable
        assert message in str(refused.value)
    assert ids == []


REFUSALS = {
    "empty group": (
        "emit_to_group($1, '', 'x', NULL)",
        "target_group must be a non-empty single line, got ''",
    ),
    "NULL group": (
        "emit_to_group($1, NULL, 'x', NULL)",
        "target_group must be a non-empty single line, got NULL",
    ),
    "two-line group": (
        "emit_to_group($1, E'a\\nb', 'x', NULL)",
        "target_group must be a non-empty single line, got 'a\nb'",
    ),
    "long group": (
        "emit_to_group($1, repeat('é', 513), 'x', NULL)",
        "target_group must be at most 1024 bytes, got 1026",
    ),
    "group of 1024 bytes, reserved type": (
        "emit_to_groups($1, ARRAY['ok', repeat('g', 1024)], '{x,reset}', '{null,null}')",
        "event_type reset is reserved: streams send it themselves",
    ),
    "groups, types and payloads": (
        "emit_to_groups($1, '{a,b}', '{x}', '{null,null}')",
        "target_groups, event_types and payloads must be as long, got 2, 1 and 2",
    ),
    "broadcast of a reserved type": (
        "broadcast($1, 'revoked', NULL)",
        "event_type revoked is reserved",
    ),
    "broadcast on the revocations' channel": (
        "broadcast('fastapi_pg_sse.revoked', 'revoked', NULL)",
        "channel must be a lowercase SQL identifier of at most 53 bytes, got"
        " 'fastapi_pg_sse.revoked'",
    ),
    "broadcast_many, types and payloads": (
        "broadcast_many($1, '{a,b}', '{null}')",
        "event_types and payloads must be as long, got 2 and 1",
    ),
    "broadcast_many, NULL types": (
        "broadcast_many($1, NULL, '{null}')",
        "event_types and payloads must be as long, got 0 and 1",
    ),
    "a bad traceparent": (
        "broadcast($1, 'x', NULL, 'not-a-trace')",
        "traceparent must be a W3C traceparent",
    ),
}


@pytest.mark.parametrize("refusal", REFUSALS)
async def test_what_no_stream_could_receive_is_refused_and_nothing_is_stored(
    realtime_database_url: str, refusal: str
) -> None:
    call, message = REFUSALS[refusal]
    channel = new_channel()
    async with connected(realtime_database_url) as connection:
        with pytest.raises(asyncpg.InvalidParameterValueError) as refused:
            await connection.execute(
                f"SELECT fastapi_pg_sse.{call.replace('$1', repr(channel.name))}"
            )
        assert refused.value.message.startswith(message)
        assert await stored(connection, channel) == []


async def test_a_group_of_1024_bytes_and_nothing_to_broadcast_are_taken(
    realtime_database_url: str,
) -> None:
    channel = new_channel()
    async with connected(realtime_database_url) as connection:
        async with committing(connection) as ids:
            await connection.execute(
                "SELECT fastapi_pg_sse.emit_to_group($1, repeat('é', 512), 'x', NULL);"
                " SELECT fastapi_pg_sse.broadcast_many($1, '{}', '{}')".replace(
                    "$1", repr(channel.name)
                )
            )
        assert len(ids) == 1
        assert (
            await connection.fetchval(
                "SELECT octet_length(target_group) FROM fastapi_pg_sse.events WHERE id = $1", ids[0]
            )
            == 1024
        )


@pytest.mark.usefixtures("spans")
async def test_an_emit_to_a_group_or_everyone_stores_the_traceparent_of_the_current_span(
    realtime_database_url: str,
) -> None:
    """As an emit to a user does, singly and in bulk; outside any span, none."""
    placed = OrderPlaced(order_id=1, lines=[])
    async with connected(realtime_database_url) as connection:
        with trace.get_tracer("the application").start_as_current_span("POST /teams") as span:
            async with committing(connection) as traced:
                await ORDERS.emit(connection, placed, target_group="team-7")
                await ORDERS.emit(connection, everyone=True, event_type="raw")
                await ORDERS.emit_many(connection, [placed], target_group="team-7")
                await ORDERS.emit_many(connection, [placed], everyone=True)
        async with committing(connection) as untraced:
            await ORDERS.emit(connection, placed, target_group="team-7")
            await ORDERS.emit_many(connection, [placed], everyone=True)
        stored = await connection.fetch(
            "SELECT traceparent FROM fastapi_pg_sse.events WHERE id = ANY ($1) ORDER BY id",
            traced + untraced,
        )
    context = span.get_span_context()
    traceparent = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    assert [row["traceparent"] for row in stored] == [traceparent] * 4 + [None] * 2
