"""A process in poll mode reads from a hot standby (`REALTIME_READ_DATABASE_URL`), streaming from
its primary by PostgreSQL's own replication: while the standby's replay is paused, events commit
on the primary (numbered there by the listener) and none is lost; once replay resumes, the stream
gets every one of them exactly once, in order; and a stream that resumes after an id the standby
has not replayed yet waits for it, rather than being reset."""

from collections.abc import Iterator

import anyio
import pytest
from httpx_sse import ServerSentEvent
from pydantic import SecretStr

from fastapi_pg_sse.channel import Event
from fastapi_pg_sse.testing import (
    TEST_JWT_SECRET,
    connected,
    embedded_postgres,
    hot_standby,
    next_event,
    open_stream,
    sign_token,
)
from tests.app import FEED, STREAM
from tests.helpers import (
    frame_ids,
    new_database,
    new_users,
    read_frames,
    running_kernel,
    serving,
    subscribe,
    wait_until,
)
from tests.proxy import blackhole_proxy, upstream_of

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def primary_url() -> Iterator[str]:
    """A server of the module's own: a standby copies all of it."""
    with embedded_postgres() as url:
        yield url


async def newest(url: str) -> int:
    async with connected(url) as connection:
        found: int = await connection.fetchval(
            "SELECT coalesce(max(id), 0) FROM fastapi_pg_sse.events"
        )
    return found


async def test_a_stream_read_from_a_lagging_standby_gets_every_event_once_in_order(
    primary_url: str, pytestconfig: pytest.Config
) -> None:
    [user] = new_users("replicated")
    async with new_database(primary_url) as url:
        with hot_standby(url) as standby_url:
            environment = {
                "DATABASE_URL": url,
                "REALTIME_JWT_SECRET": TEST_JWT_SECRET,
                "REALTIME_READ_MODE": "poll",
                "REALTIME_READ_DATABASE_URL": standby_url,
            }
            async with (
                serving("tests.app:app", pytestconfig.rootpath, environment) as server,
                open_stream(server.url + STREAM, sign_token(user)) as stream,
                connected(url) as polling,
                connected(url) as notifying,
                connected(standby_url) as standby,
            ):
                await polling.execute("SET fastapi_pg_sse.delivery = 'poll'")
                await FEED.emit(polling, target_user_id=user, event_type="before_pause")
                first = await next_event(stream)
                await standby.execute("SELECT pg_wal_replay_pause()")

                async def paused() -> bool:
                    state = await standby.fetchval("SELECT pg_get_wal_replay_pause_state()")
                    return bool(state == "paused")

                await wait_until(paused, "the standby paused its replay")
                for number in range(6):
                    emitter = (polling, notifying)[number % 2]
                    await FEED.emit(emitter, target_user_id=user, event_type=f"lagged_{number}")

                async def numbered_on_the_primary() -> bool:
                    queued = await polling.fetchval(
                        "SELECT count(*) FROM fastapi_pg_sse.queued_events"
                    )
                    return bool(queued == 0)

                await wait_until(numbered_on_the_primary, "the listener numbered the events")
                on_primary, on_standby = await newest(url), await newest(standby_url)
                lagged_ids = await polling.fetchval(
                    "SELECT array_agg(id ORDER BY id) FROM fastapi_pg_sse.events"
                    " WHERE target_user_id = $1 AND id > $2",
                    user,
                    on_standby,
                )
                # A client that saw the third lagged event through a process reading the
                # primary resumes here: its id is above every id the standby has replayed.
                resumed: list[ServerSentEvent] = []
                asked_at = await standby.fetchval("SELECT clock_timestamp()")

                async def resume_after_the_third() -> None:
                    token = sign_token(user)
                    url = server.url + STREAM
                    async with open_stream(url, token, last_event_id=str(lagged_ids[2])) as late:
                        resumed.extend([await next_event(late) for _ in lagged_ids[3:]])

                async def waiting_for_the_standby() -> bool:
                    # The stream pool's connection, given back once it read (its last query
                    # then the pool's reset): no other reads on the standby but the listener's.
                    joins = await standby.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                        " AND backend_type = 'client backend' AND query_start > $1"
                        " AND application_name NOT LIKE 'realtime-listener:%'",
                        asked_at,
                    )
                    return bool(joins > 0)

                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(resume_after_the_third)
                    await wait_until(waiting_for_the_standby, "the stream read where it resumes")
                    await standby.execute("SELECT pg_wal_replay_resume()")
                    lagged = [await next_event(stream) for _ in range(6)]
                await FEED.emit(notifying, target_user_id=user, event_type="after_resume")
                after = await next_event(stream)
                ids = await polling.fetchval(
                    "SELECT array_agg(id ORDER BY id) FROM fastapi_pg_sse.events"
                    " WHERE target_user_id = $1",
                    user,
                )
    assert on_standby == int(first.id) < lagged_ids[2] <= on_primary, "the standby lagged"
    assert [int(event.id) for event in resumed] == lagged_ids[3:], "no reset: it waited"
    received = [first, *lagged, after]
    assert [int(event.id) for event in received] == ids
    # In id order: a poll-delivery event is numbered as the listener sequences it, after the
    # NOTIFY-delivery commits before that; each once.
    assert [event.event for event in (first, after)] == ["before_pause", "after_resume"]
    assert sorted(event.event for event in lagged) == [f"lagged_{n}" for n in range(6)]


async def test_a_listener_reconnected_to_a_read_database_behind_what_it_delivered_waits_for_it(
    primary_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Its read URL leads first to a server that has every event, then, as it reconnects, to a
    standby whose replay is paused behind what it delivered: it waits for the standby to catch
    up (failing its attempts meanwhile) rather than lower its watermark to the standby's newest
    id and hand the hub the same events again."""
    [user] = new_users("rewound")
    async with new_database(primary_url) as url:
        with hot_standby(url) as standby_url:
            async with (
                blackhole_proxy(url) as (proxy, read_url),
                connected(url) as primary,
                connected(standby_url) as standby,
                running_kernel(
                    url,
                    read_mode="poll",
                    read_database_url=SecretStr(read_url),
                    poll_interval_seconds=0.01,
                    keepalive_seconds=0.5,
                    reconnect_max_backoff_seconds=0.2,
                ) as realtime,
            ):
                published: list[int] = []
                publish = realtime.hub.publish

                def recorded(event: Event) -> None:
                    published.append(event.id)
                    publish(event)

                realtime.hub.publish = recorded  # type: ignore[method-assign]
                subscriber = subscribe(realtime, user)
                await standby.execute("SELECT pg_wal_replay_pause()")

                async def paused() -> bool:
                    state = await standby.fetchval("SELECT pg_get_wal_replay_pause_state()")
                    return bool(state == "paused")

                await wait_until(paused, "the standby paused its replay")
                for number in range(3):
                    await FEED.emit(primary, target_user_id=user, event_type=f"ahead_{number}")
                frames = await read_frames(subscriber, 3)  # delivered from the primary
                proxy._open_upstream = await upstream_of(standby_url)
                reconnects = realtime.listener.reconnects
                await primary.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name LIKE 'realtime-listener:%'"
                    " AND datname = current_database()"
                )

                async def on_the_standby() -> bool:
                    waits = "the read database is behind what was delivered" in caplog.text
                    return waits or realtime.listener.reconnects > reconnects

                await wait_until(on_the_standby, "the listener read the standby's newest id")
                await standby.execute("SELECT pg_wal_replay_resume()")
                await FEED.emit(primary, target_user_id=user, event_type="after")
                frames += await read_frames(subscriber, 1)
                ids = await primary.fetchval(
                    "SELECT array_agg(id ORDER BY id) FROM fastapi_pg_sse.events"
                    " WHERE target_user_id = $1",
                    user,
                )
    assert frame_ids(frames) == ids
    assert len(published) == len(set(published)), "no event handed to the hub twice"
