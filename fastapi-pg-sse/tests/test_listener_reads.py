"""The listener's read of the events table: a page costs its rows, however long the burst
behind it, is bounded in bytes, and says whether more follow without another read."""

import json
from typing import Any

import pytest

from fastapi_pg_sse import channel as channel_module
from fastapi_pg_sse.channel import fetch_committed_after
from fastapi_pg_sse.testing import connected
from tests.helpers import committing, emit, new_channel, new_users

pytestmark = pytest.mark.anyio


def _rows_read_from_events(plan: dict[str, Any]) -> int:
    """How many rows the plan's scans of the events table returned, in all."""
    own = plan["Actual Rows"] * plan.get("Actual Loops", 1) if "Relation Name" in plan else 0
    return own + sum(_rows_read_from_events(child) for child in plan.get("Plans", ()))


@pytest.mark.parametrize("plan", ["force_custom_plan", "force_generic_plan"])
async def test_a_page_of_a_burst_reads_its_rows_not_the_rest_of_the_burst(
    realtime_database_url: str, plan: str
) -> None:
    """A burst of 3,000 events read 100 at a time: each page's scan stops after its 100 rows
    (and the newest id's one), instead of reading and sorting the 3,000 for each page; so with
    the plan for these values and with the generic one that asyncpg's prepared statement comes
    to use."""
    channel = new_channel("burst")
    async with connected(realtime_database_url) as connection:
        async with committing(connection) as ids:
            await connection.execute(
                "SELECT fastapi_pg_sse.emit($1, 'u', 'tick', '{}') FROM generate_series(1, 3000)",
                channel.name,
            )
        await connection.execute(f"SET plan_cache_mode = {plan}")
        await connection.execute(
            f"PREPARE page (bigint, bigint, bigint) AS {channel_module._COMMITTED_AFTER}"
        )
        explained = await connection.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE page ({ids[0] - 1}, 100, {2**20})"
        )
    [plan_tree] = json.loads(explained)
    assert _rows_read_from_events(plan_tree["Plan"]) <= 101


async def test_a_page_holds_no_more_payload_than_its_bound_and_says_more_follow(
    realtime_database_url: str,
) -> None:
    (paige,) = new_users("paige")
    channel = new_channel("bytes")
    async with connected(realtime_database_url) as connection:
        ids = [await emit(connection, channel, paige, "e", {"b": "x" * 3000}) for _ in range(3)]
        pages = {
            max_bytes: await fetch_committed_after(
                connection, ids[0] - 1, limit=100, max_bytes=max_bytes
            )
            for max_bytes in (100, 4000, 10_000)
        }
    read = {
        size: ([e.id for e in page.events], page.more, newest)
        for size, (page, newest) in pages.items()
    }
    assert read == {
        100: (ids[:1], True, ids[2]),
        4000: (ids[:1], True, ids[2]),
        10_000: (ids, False, ids[2]),
    }


async def test_a_full_page_that_reaches_the_newest_id_needs_no_further_read(
    realtime_database_url: str,
) -> None:
    (nell,) = new_users("nell")
    channel = new_channel("full")
    async with connected(realtime_database_url) as connection:
        ids = [await emit(connection, channel, nell) for _ in range(4)]
        short, _ = await fetch_committed_after(connection, ids[0] - 1, limit=3, max_bytes=2**20)
        full, newest = await fetch_committed_after(connection, ids[0] - 1, limit=4, max_bytes=2**20)
        after_all, newest_after_all = await fetch_committed_after(
            connection, ids[-1], limit=4, max_bytes=2**20
        )
    assert ([e.id for e in short.events], short.more) == (ids[:3], True)
    assert ([e.id for e in full.events], full.more, newest) == (ids, False, ids[-1])
    assert (after_all.events, after_all.more, newest_after_all) == ([], False, ids[-1])
