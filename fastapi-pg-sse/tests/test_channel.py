"""A channel's name is the root of its PostgreSQL names; emitting checks what it records; a
kernel streams only the channels it was given."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

import asyncpg
import pytest

from fastapi_pg_sse import Channel, Realtime
from fastapi_pg_sse.channel import NEWEST, fetch_events_after
from tests.app import FEED
from tests.helpers import connected, kernel_settings

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "name",
    ["Stock", "a;drop", "x" * 57, "", "1stock", "stock-events", "stock events", "stöck", "a.b"],
)
def test_a_channel_name_must_be_a_short_lowercase_sql_identifier(name: str) -> None:
    with pytest.raises(ValueError, match="must be a lowercase SQL identifier"):
        Channel(name)


@pytest.mark.parametrize("name", ["inventory_stock", "_private", "x" * 56, "a1"])
def test_a_channel_derives_its_postgresql_names_from_its_name(name: str) -> None:
    channel = Channel(name)
    assert (channel.events_table, channel.emit_function, channel.emit_many_function) == (
        f"{name}_events",
        f"{name}_emit",
        f"{name}_emit_many",
    )
    assert len(channel.events_table) <= 63, "PostgreSQL truncates longer identifiers"


@pytest.mark.parametrize(
    ("user_id", "event_type"),
    [
        ("", "ok"),
        ("two\nlines", "ok"),
        ("carriage\rreturn", "ok"),
        ("u", ""),
        ("u", "a b"),
        ("u", "1st"),
        ("u", "semi;colon"),
    ],
)
async def test_emit_refuses_an_empty_or_multi_line_user_and_an_event_type_that_is_no_word(
    realtime_database_url: str, user_id: str, event_type: str
) -> None:
    async with connected(realtime_database_url) as connection:
        before = await connection.fetchval(f"SELECT count(*) FROM {FEED.events_table}")
        with pytest.raises(asyncpg.InvalidParameterValueError):
            await FEED.emit(connection, target_user_id=user_id, event_type=event_type)
        after = await connection.fetchval(f"SELECT count(*) FROM {FEED.events_table}")
    assert after == before


async def test_emit_records_the_event_in_the_callers_transaction(
    realtime_database_url: str,
) -> None:
    async with connected(realtime_database_url) as connection:
        async with connection.transaction():
            event_id = await FEED.emit(
                connection, target_user_id="ines", event_type="stock.updated:v2", payload=None
            )
        row = await connection.fetchrow(
            f"SELECT target_user_id, type, payload::text FROM {FEED.events_table} WHERE id = $1",
            event_id,
        )
    assert row is not None
    assert tuple(row) == ("ines", "stock.updated:v2", "{}")


async def test_emit_encodes_the_payload_as_fastapi_encodes_a_response(
    realtime_database_url: str,
) -> None:
    payload = MappingProxyType(
        {"at": datetime(2026, 11, 30, 12, 0, tzinfo=UTC), "price": Decimal("9.90"), "sku": "A1"}
    )
    async with connected(realtime_database_url) as connection:
        event_id = await FEED.emit(
            connection, target_user_id="jude", event_type="priced", payload=payload
        )
        stored = await connection.fetchval(
            f"SELECT payload::text FROM {FEED.events_table} WHERE id = $1", event_id
        )
    assert json.loads(stored) == {"at": "2026-11-30T12:00:00+00:00", "price": 9.9, "sku": "A1"}


async def test_prune_deletes_events_older_than_kept_but_always_the_newest(
    realtime_database_url: str,
) -> None:
    async with connected(realtime_database_url) as connection:
        for _ in range(3):
            await FEED.emit(connection, target_user_id="pru", event_type="old")
        assert await FEED.prune(connection) == 0, "a week is kept by default"
        newest = await FEED.emit(connection, target_user_id="pru", event_type="newest")
        total = await connection.fetchval(f"SELECT count(*) FROM {FEED.events_table}")
        assert await FEED.prune(connection, keep=timedelta(0)) == total - 1
        kept = await connection.fetch(f"SELECT id FROM {FEED.events_table}")
    assert [row["id"] for row in kept] == [newest]


async def test_prune_deletes_every_id_up_to_the_newest_expired_event_so_none_is_skipped(
    realtime_database_url: str,
) -> None:
    """`created_at` is when an event's transaction began, so a later id may be older: an id kept
    below a pruned one would let a `Last-Event-ID` skip the pruned event without a `reset`."""
    async with connected(realtime_database_url) as connection:
        earlier, expired, newest = [
            await FEED.emit(connection, target_user_id="prue", event_type="e") for _ in range(3)
        ]
        await connection.execute(
            f"UPDATE {FEED.events_table} SET created_at = now() - interval '30 days' WHERE id = $1",
            expired,
        )
        await FEED.prune(connection)
        kept = await connection.fetch(
            f"SELECT id FROM {FEED.events_table} WHERE id >= $1 ORDER BY id", earlier
        )
    assert [row["id"] for row in kept] == [newest]


async def test_a_page_holds_no_more_payload_than_its_bound_or_one_event_that_exceeds_it(
    realtime_database_url: str,
) -> None:
    async with connected(realtime_database_url) as connection:
        ids = [
            await FEED.emit(
                connection, target_user_id="paige", event_type="e", payload={"b": "x" * 3000}
            )
            for _ in range(3)
        ]
        ranges = {"paige": (ids[0] - 1, NEWEST)}
        pages = {
            max_bytes: await fetch_events_after(
                connection, FEED, ranges, limit=100, max_bytes=max_bytes
            )
            for max_bytes in (100, 4000, 10_000)
        }
    read = {size: ([e.id for e in page.events], page.more) for size, page in pages.items()}
    assert read == {100: (ids[:1], True), 4000: (ids[:1], True), 10_000: (ids, False)}


def test_a_kernel_refuses_to_stream_a_channel_it_was_not_given(
    realtime_database_url: str,
) -> None:
    realtime = Realtime(kernel_settings(realtime_database_url), [FEED])
    with pytest.raises(LookupError, match="'other_feed' is not one of this app's channels"):
        realtime.stream(Channel("other_feed"), "alice")
    assert realtime.metrics().open_streams == 0
