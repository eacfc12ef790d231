"""A channel is a name its events carry in the runtime's one events table; emitting checks what
it records, in Python and in SQL alike; pruning deletes what committed longer ago than kept; a
kernel streams only the channels it was given."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import asyncpg
import pytest

from fastapi_pg_sse import Channel, Realtime
from fastapi_pg_sse.channel import Audience, fetch_audience_events, resume_bounds
from fastapi_pg_sse.testing import connected
from tests.app import FEED
from tests.helpers import committing, emit, kernel_settings, new_channel, new_users

pytestmark = pytest.mark.anyio

REFUSED_NAMES = [
    "Stock",
    "a;drop",
    "x" * 54,
    "",
    "1stock",
    "_private",
    "stock-events",
    "stock events",
    "stöck",
    "a.b",
]


@pytest.mark.parametrize("name", REFUSED_NAMES)
def test_a_channel_name_must_be_a_short_lowercase_sql_identifier(name: str) -> None:
    with pytest.raises(ValueError, match="must be a lowercase SQL identifier of at most 53"):
        Channel(name)


@pytest.mark.parametrize("name", REFUSED_NAMES)
async def test_the_sql_emit_refuses_the_channel_names_the_class_refuses(
    realtime_database_url: str, name: str
) -> None:
    """A channel emitted from SQL alone (a trigger, a job) is held to the same names."""
    async with connected(realtime_database_url) as connection:
        with pytest.raises(asyncpg.InvalidParameterValueError, match="at most 53 bytes"):
            await connection.execute("SELECT fastapi_pg_sse.emit($1, 'u', 'refused', NULL)", name)


@pytest.mark.parametrize("name", ["inventory_stock", "a", "a1", "a_", "x" * 53])
async def test_a_channel_name_of_up_to_53_characters_is_emitted_on_under_that_name(
    realtime_database_url: str, name: str
) -> None:
    channel: Channel[Any] = Channel(name)
    async with connected(realtime_database_url) as connection:
        event_id = await emit(connection, channel, "nell")
        stored = await connection.fetchval(
            "SELECT channel FROM fastapi_pg_sse.events WHERE id = $1", event_id
        )
    assert stored == name


@pytest.mark.parametrize(
    ("user_id", "event_type"),
    [
        ("", "ok"),
        ("two\nlines", "ok"),
        ("carriage\rreturn", "ok"),
        ("x" * 1025, "ok"),
        ("é" * 513, "ok"),  # 1026 bytes
        ("u", ""),
        ("u", "a b"),
        ("u", "1st"),
        ("u", "semi;colon"),
    ],
)
async def test_emit_refuses_an_empty_multi_line_or_too_long_user_and_an_event_type_that_is_no_word(
    realtime_database_url: str, user_id: str, event_type: str
) -> None:
    channel = new_channel()
    async with connected(realtime_database_url) as connection:
        with pytest.raises(asyncpg.InvalidParameterValueError):
            await channel.emit(connection, target_user_id=user_id, event_type=event_type)
        recorded = await connection.fetchval(
            "SELECT count(*) FROM fastapi_pg_sse.events WHERE channel = $1", channel.name
        )
    assert recorded == 0


async def test_a_user_id_of_1024_bytes_is_accepted(realtime_database_url: str) -> None:
    user_id = "é" * 512
    async with connected(realtime_database_url) as connection:
        event_id = await emit(connection, new_channel(), user_id)
        stored = await connection.fetchval(
            "SELECT target_user_id FROM fastapi_pg_sse.events WHERE id = $1", event_id
        )
    assert stored == user_id


async def test_emit_records_the_event_in_the_callers_transaction_and_gives_it_an_id_on_commit(
    realtime_database_url: str,
) -> None:
    async with connected(realtime_database_url) as connection:
        async with committing(connection) as ids:
            await FEED.emit(
                connection, target_user_id="ines", event_type="stock.updated:v2", payload=None
            )
            assert ids == [], "no id is known before the commit"
        [event_id] = ids
        row = await connection.fetchrow(
            "SELECT channel, target_user_id, type, payload::text FROM fastapi_pg_sse.events"
            " WHERE id = $1",
            event_id,
        )
    assert row is not None
    assert tuple(row) == ("test_feed", "ines", "stock.updated:v2", "{}")


async def test_emit_encodes_the_payload_as_fastapi_encodes_a_response(
    realtime_database_url: str,
) -> None:
    payload = MappingProxyType(
        {"at": datetime(2026, 11, 30, 12, 0, tzinfo=UTC), "price": Decimal("9.90"), "sku": "A1"}
    )
    async with connected(realtime_database_url) as connection:
        event_id = await emit(connection, FEED, "jude", "priced", payload)
        stored = await connection.fetchval(
            "SELECT payload::text FROM fastapi_pg_sse.events WHERE id = $1", event_id
        )
    assert json.loads(stored) == {"at": "2026-11-30T12:00:00+00:00", "price": 9.9, "sku": "A1"}


async def _ids_of(connection: asyncpg.Connection, channel: Channel[Any]) -> list[int]:
    ids: list[int] = await connection.fetchval(
        "SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM fastapi_pg_sse.events"
        " WHERE channel = $1",
        channel.name,
    )
    return ids


async def _backdate(connection: asyncpg.Connection, ids: list[int], days: int) -> None:
    """Make the events `ids` look committed `days` ago."""
    await connection.execute(
        "UPDATE fastapi_pg_sse.events SET created_at = created_at - make_interval(days => $2)"
        " WHERE id = ANY ($1)",
        ids,
        days,
    )


async def test_prune_deletes_the_channels_events_committed_longer_ago_than_kept(
    realtime_database_url: str,
) -> None:
    channel = new_channel("prune")
    async with connected(realtime_database_url) as connection:
        ids = [await emit(connection, channel, "pru") for _ in range(4)]
        await _backdate(connection, ids[:2], days=8)
        await _backdate(connection, ids[2:3], days=6)
        assert await channel.prune(connection) == 2, "a week is kept by default"
        assert await _ids_of(connection, channel) == ids[2:]
        assert await channel.prune(connection, keep=timedelta(days=5)) == 1
        assert await _ids_of(connection, channel) == ids[3:]


async def test_prune_keeps_nothing_committed_before_the_horizon_not_even_the_newest_event(
    realtime_database_url: str,
) -> None:
    channel = new_channel("prune")
    async with connected(realtime_database_url) as connection:
        ids = [await emit(connection, channel, "prn") for _ in range(3)]
        assert await channel.prune(connection, keep=timedelta(0)) == len(ids)
        assert await _ids_of(connection, channel) == []
        horizons = [
            (await resume_bounds(connection, channel, user))[0] for user in ("prn", "any-other")
        ]
    assert horizons == [ids[-1], ids[-1]], "for every user of the channel"


async def test_prune_leaves_the_events_of_other_channels_and_records_its_own_horizon_only(
    realtime_database_url: str,
) -> None:
    pruned, other = new_channel("prune"), new_channel("kept")
    async with connected(realtime_database_url) as connection:
        kept = [await emit(connection, other, "pro")]
        gone = [await emit(connection, pruned, "pro")]
        kept.append(await emit(connection, other, "pro"))
        await _backdate(connection, kept + gone, days=30)
        assert await pruned.prune(connection) == 1
        assert await _ids_of(connection, other) == kept
        assert (await resume_bounds(connection, pruned, "pro"))[0] == gone[0]
        assert (await resume_bounds(connection, other, "pro"))[0] == 0


async def test_pruning_from_sql_is_pruning_from_python(realtime_database_url: str) -> None:
    channel = new_channel("prune")
    async with connected(realtime_database_url) as connection:
        ids = [await emit(connection, channel, "sql") for _ in range(2)]
        await _backdate(connection, ids[:1], days=2)
        deleted = await connection.fetchval(
            "SELECT fastapi_pg_sse.prune($1, interval '1 day')", channel.name
        )
        assert deleted == 1
        assert await _ids_of(connection, channel) == ids[1:]


async def test_a_page_holds_no_more_payload_than_its_bound_or_one_event_that_exceeds_it(
    realtime_database_url: str,
) -> None:
    (paige,) = new_users("paige")
    async with connected(realtime_database_url) as connection:
        ids = [await emit(connection, FEED, paige, "e", {"b": "x" * 3000}) for _ in range(3)]
        audiences = [Audience(FEED.name, paige)]
        pages = {
            max_bytes: await fetch_audience_events(
                connection, audiences, ids[0] - 1, limit=100, max_bytes=max_bytes
            )
            for max_bytes in (100, 4000, 10_000)
        }
    read = {size: ([e.id for e in page.events], page.more) for size, page in pages.items()}
    assert read == {100: (ids[:1], True), 4000: (ids[:1], True), 10_000: (ids, False)}


async def test_a_page_reads_only_its_channels_events_of_the_users_asked_for(
    realtime_database_url: str,
) -> None:
    mine, other = new_channel(), new_channel()
    ana, ben = new_users("ana", "ben")
    async with connected(realtime_database_url) as connection:
        async with committing(connection) as ids:
            await mine.emit(connection, target_user_id=ana, event_type="a")
            await other.emit(connection, target_user_id=ana, event_type="other_channel")
            await mine.emit(connection, target_user_id=ben, event_type="not_asked_for")
            await mine.emit(connection, target_user_id=ana, event_type="b")
        page = await fetch_audience_events(
            connection, [Audience(mine.name, ana)], 0, limit=100, max_bytes=10_000
        )
    assert [(event.id, event.type) for event in page.events] == [(ids[0], "a"), (ids[3], "b")]


def test_a_kernel_refuses_to_stream_a_channel_it_was_not_given(
    realtime_database_url: str,
) -> None:
    realtime = Realtime(kernel_settings(realtime_database_url), [FEED])
    with pytest.raises(LookupError, match="'other_feed' is not one of this app's channels"):
        realtime.stream(Channel("other_feed"), "alice")
    assert realtime.metrics().open_streams == 0
