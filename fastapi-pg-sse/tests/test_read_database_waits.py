"""Streams read from a read database (`REALTIME_READ_DATABASE_URL`) wait for it without taking
from the others: a made-up `Last-Event-ID` above every id keeps only its own request waiting,
holding no pooled connection; and a listener never hands a stream an event twice, whatever
server its read connection reaches."""

import asyncio
import os

import pytest
from pydantic import SecretStr

from fastapi_pg_sse.hub import Subscriber
from fastapi_pg_sse.inspection import read_stats
from fastapi_pg_sse.testing import connected
from tests.app import FEED
from tests.helpers import (
    emit,
    frame_ids,
    new_database,
    new_users,
    read_frames,
    running_kernel,
    subscribe,
    terminate_listener,
    wait_until,
)

pytestmark = pytest.mark.anyio

MADE_UP_ID = 10**12
"""A `Last-Event-ID` far above any id given out."""


async def test_streams_resuming_after_a_made_up_id_hold_no_connection_while_they_wait(
    realtime_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More such streams than the pool has connections wait (up to the pool timeout) while
    another user's stream opens at once: without waiting on the listener, each held a pooled
    connection for the whole wait, and the other stream waited for the pool."""
    [mallory, victim] = new_users("mallory", "victim")
    async with (
        new_database(realtime_postgres_url) as url,
        running_kernel(
            url,
            read_mode="poll",
            read_database_url=SecretStr(url),
            pool_max_size=2,
            pool_timeout_seconds=30,
        ) as realtime,
    ):
        waiting = 0
        wait_to_see = realtime.listener.wait_to_see

        async def counted(event_id: int, timeout: float) -> bool:
            nonlocal waiting
            waiting += 1
            return await wait_to_see(event_id, timeout)

        monkeypatch.setattr(realtime.listener, "wait_to_see", counted)
        hostile = [
            asyncio.create_task(realtime._join(Subscriber((FEED.name,), mallory, 1000), MADE_UP_ID))
            for _ in range(4)
        ]
        try:

            async def all_waiting() -> bool:
                return waiting == len(hostile) and not any(task.done() for task in hostile)

            await wait_until(all_waiting, "every made-up id waits for the listener")
            reset = await realtime._join(Subscriber((FEED.name,), victim, 1000), None)
            pending = [not task.done() for task in hostile]
        finally:
            for task in hostile:
                task.cancel()
            await asyncio.gather(*hostile, return_exceptions=True)
    assert reset is None
    assert all(pending), "the victim's stream opened while the made-up ids still waited"


def test_a_subscriber_drops_an_id_at_or_below_one_it_was_offered() -> None:
    """Ids reach a subscriber in increasing order: one handed over again (a listener that read
    on from a lower watermark) is dropped, not sent twice."""
    subscriber = Subscriber((FEED.name,), "sue", 1000)
    offered = [subscriber.offer(event_id, b"x") for event_id in (5, 6, 5, 6, 4, 7)]
    assert offered == [True, True, False, False, False, True]


async def test_stats_list_a_poll_process_reading_a_read_database_once(
    realtime_postgres_url: str,
) -> None:
    """Its connection to the primary that numbers queued events is named apart
    (`realtime-sequencer:<pid>`): the stats list the process once, by its read connection,
    with its open streams. Named as a listener, it was a second, stale one."""
    [user] = new_users("counted")
    async with (
        new_database(realtime_postgres_url) as url,
        running_kernel(url, read_mode="poll", read_database_url=SecretStr(url)) as realtime,
        connected(url) as connection,
    ):
        realtime.hub.add(Subscriber((FEED.name,), user, 1000))

        async def renamed() -> bool:
            stats = await read_stats(connection)
            return any(process.open_streams == 1 for process in stats.processes)

        await wait_until(renamed, "the listener was renamed after its stream")
        processes = (await read_stats(connection)).processes
        sequencers = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name LIKE 'realtime-sequencer:%'"
            " AND datname = current_database()"
        )
    assert len(processes) == 1 and processes[0].open_streams == 1
    assert sequencers == 1


async def test_a_stream_whose_snapshot_stays_behind_the_listener_is_reset(
    realtime_postgres_url: str,
) -> None:
    """A read database (here as if another standby) whose snapshot stays, up to the pool
    timeout, behind what the listener handed the hub: the stream gets a `reset` at the
    snapshot's newest id, since what lies between would reach it neither by replay nor live."""
    [user] = new_users("behind")
    async with (
        new_database(realtime_postgres_url) as url,
        running_kernel(
            url,
            read_mode="poll",
            read_database_url=SecretStr(url),
            poll_interval_seconds=60,  # the listener reads once, as it starts
            pool_timeout_seconds=0.2,
        ) as realtime,
    ):
        newest = realtime.listener.newest_seen
        realtime.listener.delivered_through = newest + 5  # handed over from a further server
        reset = await realtime._join(Subscriber((FEED.name,), user, 1000), None)
    assert reset == newest


async def test_a_database_restored_from_an_older_copy_gives_open_streams_its_ids_again(
    realtime_postgres_url: str,
) -> None:
    """A primary restored from an older copy (or a failover that lost commits) gives the ids
    above its newest to new events: the reconnected listener reads on from there, and an open
    stream, which got the lost events' ids, takes the new events under them too (a subscriber
    that only dropped ids at or below one it was offered lost them)."""
    [user] = new_users("restored")
    async with (
        new_database(realtime_postgres_url) as url,
        running_kernel(url, reconnect_max_backoff_seconds=0.2) as realtime,
        connected(url) as connection,
    ):
        subscriber = subscribe(realtime, user)
        lost = [await emit(connection, FEED, user, f"lost{n}") for n in range(3)]
        assert frame_ids(await read_frames(subscriber, 3)) == lost
        await connection.execute("DELETE FROM fastapi_pg_sse.events WHERE id > $1", lost[0])
        await connection.execute("SELECT setval('fastapi_pg_sse.event_ids', $1)", lost[0])
        reconnects = realtime.listener.reconnects
        await terminate_listener(connection, os.getpid())

        async def reconnected() -> bool:
            return realtime.listener.reconnects > reconnects and realtime.listener.connected

        await wait_until(reconnected, "the listener reconnected to the restored database")
        given_again = [await emit(connection, FEED, user, f"new{n}") for n in range(2)]
        assert given_again == lost[1:]
        assert frame_ids(await read_frames(subscriber, 2)) == given_again
