"""The kernel of one process, run in the test process against the real PostgreSQL server:
its listener, its hub, its counters and its log."""

import logging
import os

import anyio
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from fastapi_pg_sse import Realtime, get_realtime
from fastapi_pg_sse import hub as hub_module
from fastapi_pg_sse.channel import Event
from fastapi_pg_sse.frames import event_frame
from fastapi_pg_sse.hub import Hub, Subscriber
from fastapi_pg_sse.testing import connected
from tests.app import FEED, NEWS
from tests.helpers import (
    closed_to_new_connections,
    committing,
    emit,
    frame_ids,
    kernel_settings,
    new_channel,
    new_users,
    read_frames,
    running_kernel,
    subscribe,
    terminate_listener,
    wait_until,
    wait_until_blocked,
)

pytestmark = pytest.mark.anyio


async def test_a_started_kernel_already_listens_so_the_next_commit_reaches_its_streams(
    realtime_database_url: str,
) -> None:
    async with (
        connected(realtime_database_url) as connection,
        running_kernel(realtime_database_url) as realtime,
    ):
        assert realtime.metrics().listener_connected
        stan = subscribe(realtime, "stan")
        event_id = await emit(connection, FEED, "stan", "first")
        frames = await read_frames(stan, 1)
    assert frame_ids(frames) == [event_id]


async def test_events_arrive_when_their_transaction_commits_and_never_if_it_rolls_back(
    realtime_database_url: str,
) -> None:
    async with (
        connected(realtime_database_url) as connection,
        connected(realtime_database_url) as other,
        running_kernel(realtime_database_url) as realtime,
    ):
        tess = subscribe(realtime, "tess")
        rolled_back = connection.transaction()
        await rolled_back.start()
        await FEED.emit(connection, target_user_id="tess", event_type="lost")
        await rolled_back.rollback()
        async with committing(connection) as ids:
            for _ in range(3):
                await FEED.emit(connection, target_user_id="tess", event_type="kept")
            # Notifications reach the listener in commit order: once it has received one
            # committed after the events were written, any notification of theirs would have
            # come first. A malformed one is counted when received.
            await other.execute("SELECT pg_notify('fastapi_pg_sse', 'sync')")

            async def synced() -> bool:
                return realtime.metrics().foreign_notifications == 1

            await wait_until(synced, "the listener received the notification committed after")
            assert tess.take() == b"", "delivered before the commit"
        frames = await read_frames(tess, len(ids))
    assert frame_ids(frames) == ids
    assert b"event: lost" not in frames


async def test_reconnects_are_counted_and_logged_with_the_gap_replayed(
    realtime_postgres_url: str, realtime_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with (
        connected(realtime_database_url) as connection,
        running_kernel(realtime_database_url) as realtime,
    ):
        yuri = subscribe(realtime, "yuri")
        # Once the listener has seen its connection die, keep it out until the event is
        # committed: it must find the event in the table.
        async with closed_to_new_connections(realtime_postgres_url, realtime_database_url):
            await terminate_listener(connection, os.getpid())

            async def disconnected() -> bool:
                return not realtime.listener.connected

            await wait_until(disconnected, "the listener saw its connection die")
            missed = await emit(connection, FEED, "yuri", "gap")
        frames = await read_frames(yuri, 1)

        async def reconnected() -> bool:
            return realtime.listener.connected

        await wait_until(reconnected, "the listener listens again")
        metrics = realtime.metrics()
    assert frame_ids(frames) == [missed]
    assert metrics.listener_reconnects == 1
    assert "realtime listener lost its connection" in caplog.text
    assert "realtime listener replayed the gap: 1 event(s) on test_feed" in caplog.text


async def test_a_slow_subscriber_is_dropped_and_counted_without_holding_back_others(
    realtime_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        connected(realtime_database_url) as connection,
        running_kernel(realtime_database_url) as realtime,
    ):
        slow = subscribe(realtime, "zoe", max_queued_bytes=200)
        fast = subscribe(realtime, "zoe", max_queued_bytes=10_000)
        ids = [await emit(connection, FEED, "zoe", "burst") for _ in range(10)]
        frames = await read_frames(fast, len(ids))
        metrics = realtime.metrics()
    assert frame_ids(frames) == ids
    assert slow.overflowed
    assert slow.take() is None, "the slow subscriber was not closed"
    assert (metrics.clients_dropped, metrics.open_streams) == (1, 1)
    assert "realtime stream dropped: queue full" in caplog.text


async def test_a_single_frame_larger_than_the_bound_still_reaches_an_idle_subscriber(
    realtime_database_url: str,
) -> None:
    async with (
        connected(realtime_database_url) as connection,
        running_kernel(realtime_database_url) as realtime,
    ):
        ada = subscribe(realtime, "ada", max_queued_bytes=100)
        event_id = await emit(connection, FEED, "ada", "big", {"blob": "x" * 1000})
        frames = await read_frames(ada, 1)
    assert frame_ids(frames) == [event_id]
    assert not ada.overflowed


def test_an_event_is_encoded_once_for_all_its_recipients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encodings = 0

    def counting_encode(event_id: int, event_type: str, data: str) -> bytes:
        nonlocal encodings
        encodings += 1
        return event_frame(event_id, event_type, data)

    monkeypatch.setattr(hub_module, "event_frame", counting_encode)
    hub = Hub()
    for _ in range(3):
        hub.add(Subscriber((FEED.name,), "ann", max_queued_bytes=10_000))
    hub.publish(Event(1, "fanned", "ann", "{}", channel=FEED.name))
    assert (encodings, hub.counters.events_delivered) == (1, 3)


def test_a_stream_joins_the_hub_only_when_its_response_starts(realtime_database_url: str) -> None:
    """A stream a route built but never sent (a later dependency failed, say) holds nothing."""
    realtime = Realtime(kernel_settings(realtime_database_url), [FEED])
    realtime.stream(FEED, "ola")
    assert realtime.metrics().open_streams == 0


async def test_the_kernel_dependency_says_what_to_include_when_the_router_is_missing() -> None:
    request = Request({"type": "http", "app": FastAPI()})
    with pytest.raises(RuntimeError, match=r"include create_realtime_router\(\)"):
        await get_realtime(request)


async def test_notifications_of_channels_this_process_does_not_serve_are_ignored_silently(
    realtime_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Every app on the database announces on the one NOTIFY channel: another app's events,
    real or merely announced, even for a user of the same name, are none of this kernel's
    business, and no reason to warn."""
    caplog.set_level(logging.INFO)
    other_app = new_channel("other_app")
    (user,) = new_users("ula")
    async with (
        connected(realtime_database_url) as connection,
        running_kernel(realtime_database_url) as realtime,
    ):
        ula = subscribe(realtime, user)
        elsewhere = await emit(connection, other_app, user, "elsewhere")
        await connection.execute(
            "SELECT pg_notify('fastapi_pg_sse', $1)", f"{elsewhere + 1} {other_app.name} {user}"
        )
        mine = await emit(connection, FEED, user, "mine")
        frames = await read_frames(ula, 1)
    assert frame_ids(frames) == [mine]
    assert _listener_warnings(caplog) == []


@pytest.mark.parametrize(
    "payload",
    ["sync", "", "12", "12 test_feed", "0 test_feed ula", "-3 test_feed ula", "x test_feed ula"],
    ids=["a-word", "empty", "no-channel", "no-user", "id-0", "negative-id", "not-a-number"],
)
async def test_a_malformed_notification_is_warned_about_once_and_delivery_goes_on(
    realtime_database_url: str, caplog: pytest.LogCaptureFixture, payload: str
) -> None:
    (user,) = new_users("ula")
    async with (
        connected(realtime_database_url) as connection,
        running_kernel(realtime_database_url) as realtime,
    ):
        ula = subscribe(realtime, user)
        await connection.execute(
            "SELECT pg_notify('fastapi_pg_sse', $1)", payload.replace("ula", user)
        )
        mine = await emit(connection, FEED, user, "mine")
        frames = await read_frames(ula, 1)
        reconnects = realtime.metrics().listener_reconnects
    assert frame_ids(frames) == [mine]
    assert _listener_warnings(caplog) == [
        "realtime listener ignored 1 foreign notification(s) since its last such warning"
        " (it warns at most once every 60 s)"
    ]
    assert reconnects == 0


def _listener_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "fastapi_pg_sse.listener" and record.levelno >= logging.WARNING
    ]


async def test_a_kernel_given_no_channels_streams_whichever_channel_a_stream_opens(
    realtime_database_url: str,
) -> None:
    """Its one LISTEN serves every channel; it reads the events of those with open streams."""
    first, second = new_channel(), new_channel()
    (user,) = new_users("vera")
    async with (
        connected(realtime_database_url) as connection,
        running_kernel(realtime_database_url, channels=()) as realtime,
    ):
        realtime.stream(first, user)  # no LookupError
        on_first = subscribe(realtime, user, channel=first)
        on_second = subscribe(realtime, user, channel=second)
        second_id = await emit(connection, second, user, "on_second")
        first_id = await emit(connection, first, user, "on_first")
        first_frames, second_frames = (
            await read_frames(on_first, 1),
            await read_frames(on_second, 1),
        )
    assert frame_ids(first_frames) == [first_id]
    assert frame_ids(second_frames) == [second_id]


async def test_a_channel_whose_first_stream_joins_during_a_read_misses_none_of_its_events(
    realtime_database_url: str,
) -> None:
    """The listener's read waits for a lock while the first stream of NEWS joins, and the
    transaction that holds the lock commits an event for it: the read hands it to the stream,
    subscribed by the time the read is handed over."""
    feed_user, news_user = new_users("kim", "kai")
    lock = "LOCK TABLE fastapi_pg_sse.events IN ACCESS EXCLUSIVE MODE"
    async with (
        connected(realtime_database_url) as holder,
        connected(realtime_database_url) as observer,
        running_kernel(realtime_database_url, (FEED, NEWS)) as realtime,
    ):
        subscribe(realtime, feed_user)
        listener = await observer.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name LIKE 'realtime-listener:' || $1 || ' %'",
            str(os.getpid()),
        )
        async with committing(holder) as ids:
            await holder.execute(lock)
            await NEWS.emit(holder, target_user_id=news_user, event_type="first_of_news")
            await observer.execute("SELECT pg_notify('fastapi_pg_sse', $1)", f"1 {FEED.name} x")
            await wait_until_blocked(observer, listener)
            joined = subscribe(realtime, news_user, channel=NEWS)
        frames = await read_frames(joined, 1)
    assert frame_ids(frames) == ids


async def test_delivery_goes_on_while_streams_of_another_channel_join_and_leave_nonstop(
    realtime_database_url: str,
) -> None:
    """NEWS gets a first stream at every turn of the event loop, thousands a second: a listener
    that made a read again whenever a channel got its first stream during it never moved on."""
    user, other = new_users("cal", "cid")
    async with (
        connected(realtime_database_url) as connection,
        running_kernel(realtime_database_url, (FEED, NEWS)) as realtime,
        anyio.create_task_group() as churning,
    ):
        steady = subscribe(realtime, user)

        async def churn() -> None:
            while True:
                realtime.hub.remove(subscribe(realtime, other, channel=NEWS))
                await anyio.sleep(0)

        churning.start_soon(churn)
        ids = [await emit(connection, FEED, user, "during_churn") for _ in range(20)]
        frames = await read_frames(steady, len(ids))
        churning.cancel_scope.cancel()
    assert frame_ids(frames) == ids


async def test_a_stream_that_joins_ahead_of_the_listener_gets_none_of_its_stale_frames(
    realtime_postgres_url: str, realtime_database_url: str
) -> None:
    """2,000 broadcasts commit while the listener is away; a stream joins at the newest id (its
    replay sent them). The listener then hands them over late: skipped, not queued (which
    overflowed a small queue), nor counted as delivered."""
    async with (
        connected(realtime_database_url) as connection,
        running_kernel(realtime_database_url) as realtime,
    ):
        async with closed_to_new_connections(realtime_postgres_url, realtime_database_url):
            await terminate_listener(connection, os.getpid())

            async def disconnected() -> bool:
                return not realtime.listener.connected

            await wait_until(disconnected, "the listener saw its connection die")
            await connection.execute(
                "SELECT fastapi_pg_sse.broadcast($1, 'stale', '{}'::jsonb)"
                " FROM generate_series(1, 2000)",
                FEED.name,
            )
            ahead = subscribe(realtime, "ahead", max_queued_bytes=500)
            ahead.replayed_through = await connection.fetchval(
                "SELECT max(id) FROM fastapi_pg_sse.events"
            )
        async with committing(connection) as ids:
            await connection.execute(
                "SELECT fastapi_pg_sse.broadcast($1, 'fresh', '{}'::jsonb)", FEED.name
            )
        frames = await read_frames(ahead, 1)
        metrics = realtime.metrics()
    assert frame_ids(frames) == ids
    assert not ahead.overflowed
    assert (metrics.events_delivered, metrics.clients_dropped) == (1, 0)
