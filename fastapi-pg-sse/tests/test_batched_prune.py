"""Pruning in slices (`Channel.prune(batch_size=...)`), each committed on its own so that a
channel of millions of events is pruned without one long transaction: the slices delete exactly
what one statement would, raise the channel's horizon as it does, and leave every event
committed meanwhile."""

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import asyncpg
import pytest

from fastapi_pg_sse import Channel
from fastapi_pg_sse.channel import resume_bounds
from fastapi_pg_sse.testing import ServedApp, connected, next_event, open_stream, sign_token
from tests.app import FEED, STREAM
from tests.helpers import committing, emit, new_channel, new_users

pytestmark = pytest.mark.anyio

KEEP = timedelta(days=1)
TRANSACTIONS = [1, 3, 1, 2, 4, 1]
"""The sizes of the transactions of `_emit_aged`: the events of one share a `created_at`."""


async def _emit_aged(
    connection: asyncpg.Connection, channel: Channel[Any], ages: list[timedelta]
) -> list[int]:
    """Emit the transactions of TRANSACTIONS, the n-th committed `ages[n]` ago (its events
    typed `e<k>`, k counting on across them); return their ids."""
    ids: list[int] = []
    for size, age in zip(TRANSACTIONS, ages, strict=True):
        async with committing(connection) as committed:
            for _ in range(size):
                await channel.emit(connection, target_user_id="pat", event_type=f"e{len(ids)}")
        await connection.execute(
            "UPDATE fastapi_pg_sse.events SET created_at = now() - $2::interval"
            " WHERE id = ANY ($1)",
            committed,
            age,
        )
        ids += committed
    return ids


async def _kept(connection: asyncpg.Connection, channel: Channel[Any]) -> list[str]:
    kept: list[str] = [
        row["type"]
        for row in await connection.fetch(
            "SELECT type FROM fastapi_pg_sse.events WHERE channel = $1 ORDER BY id", channel.name
        )
    ]
    return kept


async def _prune_both_ways(
    connection: asyncpg.Connection, ages: list[timedelta], batch_size: int, keep: timedelta
) -> tuple[tuple[int, list[str], int], tuple[int, list[str], int]]:
    """Two channels of the same aged events, one pruned in slices, the other in one statement:
    for each, how many it deleted, the types it kept, and its horizon less its first id."""
    outcomes = []
    for size in (batch_size, None):
        channel = new_channel("batch")
        ids = await _emit_aged(connection, channel, ages)
        with anyio.fail_after(10):  # a slice deleting nothing would loop
            deleted = await channel.prune(connection, keep=keep, batch_size=size)
        horizon = (await resume_bounds(connection, channel, "pat"))[0]
        outcomes.append((deleted, await _kept(connection, channel), horizon - ids[0]))
    batched, one_statement = outcomes
    return batched, one_statement


@pytest.mark.parametrize("batch_size", [1, 2, 3, 100])
async def test_slices_delete_exactly_what_one_statement_deletes(
    realtime_database_url: str, batch_size: int
) -> None:
    """Whatever the slices' size: one smaller than a transaction's events takes them all, one
    larger than the channel leaves everything to the last slice (`keep` itself)."""
    ages = [timedelta(days=days) for days in (9, 8, 8, 5, 2, 0)]
    async with connected(realtime_database_url) as connection:
        batched, one_statement = await _prune_both_ways(connection, ages, batch_size, KEEP)
    assert batched == one_statement
    assert batched[:2] == (sum(TRANSACTIONS[:-1]), ["e11"])


async def test_slices_follow_created_at_across_a_change_of_daylight_saving_time(
    realtime_database_url: str,
) -> None:
    """A slice's horizon is its oldest events' `created_at` to the microsecond, even where a
    day between then and now was 23 or 25 hours long in the session's time zone."""
    zone = ZoneInfo("America/New_York")
    now = datetime.now(zone)
    days = next(
        days
        for days in range(30, 366)
        if (now - timedelta(days=days)).utcoffset() != now.utcoffset()
    )
    ages = [timedelta(days=days, minutes=minutes) for minutes in (150, 120, 90, 60, 30, 0)]
    async with connected(realtime_database_url) as connection:
        await connection.execute(f"SET TimeZone = '{zone.key}'")
        batched, one_statement = await _prune_both_ways(
            connection, ages, 1, timedelta(days=days, minutes=75)
        )
    assert batched == one_statement


async def test_refused_inside_a_transaction_and_below_one_before_any_sql(
    realtime_database_url: str,
) -> None:
    """Inside a transaction each slice's commit turn would be held until it ends."""
    channel = new_channel("batch")
    async with connected(realtime_database_url) as connection:
        ids = [await emit(connection, channel, "pat") for _ in range(2)]
        with pytest.raises(ValueError, match="outside a transaction"):
            async with connection.transaction():
                await channel.prune(connection, keep=timedelta(0), batch_size=1)
        with pytest.raises(ValueError, match="at least 1"):
            await channel.prune(connection, keep=timedelta(0), batch_size=0)
        assert await channel.prune(connection, keep=KEEP, batch_size=1) == 0
        assert len(await _kept(connection, channel)) == len(ids)


async def test_events_committed_while_slices_run_are_kept_above_the_horizon(
    realtime_database_url: str,
) -> None:
    """An emitter committing between slices, and a transaction that emitted before the prune
    began and commits after it, keep their events, with ids a resuming client replays."""
    channel = new_channel("batch")
    async with (
        connected(realtime_database_url) as pruner,
        connected(realtime_database_url) as emitter,
        connected(realtime_database_url) as late,
    ):
        old = await _emit_aged(pruner, channel, [timedelta(days=30)] * len(TRANSACTIONS))
        meanwhile: list[int] = []
        pruning = True

        async def emit_while_pruning() -> None:
            while pruning or not meanwhile:
                meanwhile.append(await emit(emitter, channel, "pat", "meanwhile"))

        async with committing(late) as committed_late:
            await channel.emit(late, target_user_id="pat", event_type="late")
            emitting = asyncio.create_task(emit_while_pruning())
            deleted = await channel.prune(pruner, keep=KEEP, batch_size=2)
            pruning = False
            await emitting
        horizon = (await resume_bounds(pruner, channel, "pat"))[0]
        kept = await pruner.fetch(
            "SELECT id FROM fastapi_pg_sse.events WHERE channel = $1 ORDER BY id", channel.name
        )
    assert deleted == len(old)
    assert horizon == old[-1]
    assert sorted([*meanwhile, *committed_late]) == [row["id"] for row in kept]
    assert min(row["id"] for row in kept) > horizon


async def test_a_client_resuming_from_an_id_pruned_in_slices_gets_a_reset(
    served_app: ServedApp,
) -> None:
    (user,) = new_users("rosa")
    async with connected(served_app.database_url) as connection:
        pruned = [await emit(connection, FEED, user, "old") for _ in range(3)]
        await connection.execute(
            "UPDATE fastapi_pg_sse.events SET created_at = created_at - interval '30 days'"
            " WHERE id = ANY ($1)",
            pruned,
        )
        assert await FEED.prune(connection, keep=timedelta(days=20), batch_size=1) >= 3
    url = served_app.server.url + STREAM
    async with open_stream(url, sign_token(user), last_event_id=str(pruned[0])) as events:
        reset = await next_event(events)
    assert reset.event == "reset"
