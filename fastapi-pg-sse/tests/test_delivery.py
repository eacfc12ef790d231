"""Live delivery through the served app: every committed event reaches exactly its user's open
streams, once and in commit order, whatever happens to the listener's connection."""

import json
import random
import re
from collections import defaultdict
from contextlib import AsyncExitStack

import anyio
import httpx
import pytest

from fastapi_pg_sse.testing import (
    ServedApp,
    Server,
    ServerFactory,
    committed_event_ids,
    connected,
    emit_event,
    next_event,
    open_stream,
    payload_of,
    sign_token,
)
from tests.app import FEED, NEWS, NEWS_STREAM, STREAM
from tests.helpers import (
    committing,
    emit,
    ids_of,
    server_metrics,
    serving,
    terminate_listener,
    wait_until,
)
from tests.proxy import blackhole_proxy

pytestmark = pytest.mark.anyio


async def test_frames_carry_the_id_type_and_payload_of_the_event(served_app: ServedApp) -> None:
    payload = {"sku": "A-1", "stock": 3, "note": "naïve ☃"}
    async with served_app.stream(STREAM, "carol") as carol:
        event_id = await served_app.emit(FEED, "carol", "stock_updated", payload)
        event = await next_event(carol)
    assert (event.id, event.event) == (str(event_id), "stock_updated")
    assert payload_of(event) == payload


async def test_a_stream_receives_only_its_own_users_events(served_app: ServedApp) -> None:
    async with (
        served_app.stream(STREAM, "alice") as alice,
        served_app.stream(STREAM, "bob") as bob,
    ):
        for_bob = await served_app.emit(FEED, "bob", "note", {"for": "bob"})
        for_alice = await served_app.emit(FEED, "alice", "note")
        assert (await next_event(alice)).id == str(for_alice)
        assert (await next_event(bob)).id == str(for_bob)


async def test_the_server_holds_one_listen_connection(served_app: ServedApp) -> None:
    assert await served_app.listener_connections() == 1


async def test_one_listen_connection_serves_the_streams_of_both_channels(
    served_app: ServedApp,
) -> None:
    async with (
        served_app.stream(STREAM, "bea") as feed,
        served_app.stream(NEWS_STREAM, "cyd") as news,
    ):
        assert await served_app.listener_connections() == 1
        feed_id = await served_app.emit(FEED, "bea", "feed_item")
        news_id = await served_app.emit(NEWS, "cyd", "news_item")
        feed_event, news_event = await next_event(feed), await next_event(news)
        assert await served_app.listener_connections() == 1
    assert (feed_event.id, feed_event.event) == (str(feed_id), "feed_item")
    assert (news_event.id, news_event.event) == (str(news_id), "news_item")


async def test_a_users_stream_of_one_channel_never_gets_their_events_of_the_other(
    served_app: ServedApp,
) -> None:
    """Each time, the other channel's event commits first, with a smaller id (the channels share
    one sequence of ids): had it crossed over, it would come first."""
    async with (
        served_app.stream(STREAM, "nina") as feed,
        served_app.stream(NEWS_STREAM, "nina") as news,
    ):
        news_first = await served_app.emit(NEWS, "nina", "news_item", {"on": "news"})
        feed_after = await served_app.emit(FEED, "nina", "feed_item", {"on": "feed"})
        on_feed = await next_event(feed)
        feed_first = await served_app.emit(FEED, "nina", "feed_item", {"on": "feed"})
        news_after = await served_app.emit(NEWS, "nina", "news_item", {"on": "news"})
        on_news = [await next_event(news), await next_event(news)]
        assert (await next_event(feed)).id == str(feed_first)
    assert (on_feed.id, on_feed.event, payload_of(on_feed)) == (
        str(feed_after),
        "feed_item",
        {"on": "feed"},
    )
    assert [(event.id, event.event) for event in on_news] == [
        (str(news_first), "news_item"),
        (str(news_after), "news_item"),
    ]


async def test_idle_streams_get_heartbeats_after_a_retry_hint(realtime_server: Server) -> None:
    """The served app beats every second (REALTIME_HEARTBEAT_SECONDS=1), not every 15."""
    received, headers = await _text_until_heartbeat(realtime_server)
    assert re.match(r"id: [0-9]+\nretry: 3000\n\n", received), received
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["cache-control"] == "no-store, private", "a user's events are theirs alone"
    assert headers["x-accel-buffering"] == "no"


async def test_the_retry_hint_follows_the_settings(
    start_realtime_server: ServerFactory,
) -> None:
    server = start_realtime_server(REALTIME_RETRY_MILLISECONDS="1234")
    received, _ = await _text_until_heartbeat(server)
    assert re.match(r"id: [0-9]+\nretry: 1234\n\n", received), received


async def _text_until_heartbeat(server: Server) -> tuple[str, httpx.Headers]:
    """What an idle stream sends up to its first heartbeat, and its response headers."""
    headers = {"Authorization": f"Bearer {sign_token('uma')}"}
    received = ""
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream("GET", server.url + STREAM, headers=headers) as response,
    ):
        with anyio.fail_after(30):
            async for text in response.aiter_text():
                received += text
                if ": keep-alive\n\n" in received:
                    break
    return received, response.headers


async def test_the_listener_reconnects_without_losing_or_repeating_events(
    realtime_server: Server, realtime_database_url: str
) -> None:
    emitted: list[int] = []
    async with (
        connected(realtime_database_url) as connection,
        open_stream(realtime_server.url + STREAM, sign_token("rita")) as rita,
    ):
        for round_number in range(4):
            if round_number:
                await terminate_listener(connection, realtime_server.process.pid)
            for _ in range(50):
                emitted.append(await emit(connection, FEED, "rita", "tick", {"n": len(emitted)}))
        received = await ids_of(rita, len(emitted))
        marker = await emit_event(realtime_database_url, FEED, "rita", "marker")
        assert (await next_event(rita)).id == str(marker), "an event came twice"
    assert received == [str(event_id) for event_id in emitted]


@pytest.mark.parametrize("size", [7998, 7999, 8000, 1_000_000])
async def test_payloads_around_and_far_beyond_the_notify_limit_arrive_whole(
    realtime_server: Server, realtime_database_url: str, size: int
) -> None:
    payload = {"blob": "x" * (size - len(json.dumps({"blob": ""})))}
    assert len(json.dumps(payload)) == size
    async with open_stream(realtime_server.url + STREAM, sign_token("sam")) as sam:
        event_id = await emit_event(realtime_database_url, FEED, "sam", "large", payload)
        event = await next_event(sam)
    assert event.id == str(event_id)
    assert payload_of(event) == payload


async def test_a_forged_notification_neither_reaches_a_client_nor_hides_the_real_event(
    realtime_server: Server, realtime_database_url: str
) -> None:
    """Any role that can connect can NOTIFY: here, the id the user's next event will commit
    with, announced before that event commits, alone and with a payload of its own; an id beyond
    `bigint`; and junk."""
    reconnects = (await server_metrics(realtime_server))["listener_reconnects"]
    async with (
        connected(realtime_database_url) as connection,
        connected(realtime_database_url) as forger,
        open_stream(realtime_server.url + STREAM, sign_token("ivan")) as ivan,
    ):
        async with committing(connection) as ids:
            await FEED.emit(
                connection, target_user_id="ivan", event_type="real", payload={"real": True}
            )
            next_id = await forger.fetchval(
                "SELECT last_value + is_called::int FROM fastapi_pg_sse.event_ids"
            )
            for forged in (
                f"{next_id} test_feed ivan",
                f'{next_id} test_feed ivan\n{{"forged": true}}',
                f"{2**63} test_feed ivan",
                "not an event",
            ):
                await forger.execute("SELECT pg_notify('fastapi_pg_sse', $1)", forged)
        event = await next_event(ivan)
    assert ids == [next_id], "the forgeries announced the real event's id"
    assert (event.id, event.event, payload_of(event)) == (str(next_id), "real", {"real": True})
    metrics = await server_metrics(realtime_server)
    assert metrics["listener_reconnects"] == reconnects, "a forged id broke the listener's query"


async def test_every_connection_receives_exactly_its_users_events_under_load(
    realtime_server: Server, realtime_database_url: str
) -> None:
    chance = random.Random(20261127)
    users = [f"user-{number}" for number in range(50)]
    targets = [chance.choice(users) for _ in range(2000)]
    emitted: defaultdict[str, list[str]] = defaultdict(list)
    async with AsyncExitStack() as stack:
        connection = await stack.enter_async_context(connected(realtime_database_url))
        streams = {
            user: [
                await stack.enter_async_context(
                    open_stream(realtime_server.url + STREAM, sign_token(user))
                )
                for _ in range(chance.randint(2, 3))
            ]
            for user in users
        }
        for start in range(0, len(targets), 200):
            # Every user gets an event in the last transaction, so each stream ends on one.
            last = users if start + 200 >= len(targets) else []
            batch = targets[start : start + 200] + last
            async with committing(connection) as ids:
                for user in batch:
                    await FEED.emit(
                        connection, target_user_id=user, event_type="load", payload={"user": user}
                    )
            for user, event_id in zip(batch, ids, strict=True):
                emitted[user].append(str(event_id))
        for user, user_streams in streams.items():
            for events in user_streams:
                received = await ids_of(events, len(emitted[user]))
                assert received == emitted[user], f"{user} got another user's events"


async def test_concurrent_emitters_of_many_users_lose_nothing_through_listener_restarts(
    realtime_server: Server, realtime_database_url: str
) -> None:
    """Eight connections emit at once, each transaction to one to three of twenty users (in any
    order: emitting locks no user), a sixth of them rolled back, while the listener's connection
    is killed three times: each user's stream receives exactly that user's committed events, in
    id order, once."""
    chance = random.Random(20261130)
    users = [f"crowd-{number}" for number in range(20)]
    committed: defaultdict[str, list[int]] = defaultdict(list)

    async def emitter(number: int) -> None:
        async with connected(realtime_database_url) as connection:
            for _ in range(40):
                targets = chance.sample(users, chance.randint(1, 3))
                transaction = connection.transaction()
                await transaction.start()
                xact_id = await connection.fetchval("SELECT pg_current_xact_id()")
                for user in targets:
                    await FEED.emit(connection, target_user_id=user, event_type="crowd")
                if chance.random() < 1 / 6:
                    await transaction.rollback()
                    continue
                await transaction.commit()
                ids = await committed_event_ids(connection, xact_id)
                for user, event_id in zip(targets, ids, strict=True):
                    committed[user].append(event_id)

    async with AsyncExitStack() as stack:
        killer = await stack.enter_async_context(connected(realtime_database_url))
        streams = {
            user: await stack.enter_async_context(
                open_stream(realtime_server.url + STREAM, sign_token(user))
            )
            for user in users
        }
        async with anyio.create_task_group() as tasks:
            for number in range(8):
                tasks.start_soon(emitter, number)
            for _ in range(3):
                await terminate_listener(killer, realtime_server.process.pid)
        for user, events in streams.items():
            expected = sorted(committed[user])
            assert await ids_of(events, len(expected)) == [str(i) for i in expected], user
            marker = await emit_event(realtime_database_url, FEED, user, "marker")
            assert (await next_event(events)).id == str(marker), f"{user} got an event twice"


async def test_two_servers_on_one_database_each_deliver_every_event_once(
    realtime_server: Server, start_realtime_server: ServerFactory, realtime_database_url: str
) -> None:
    other = start_realtime_server()
    async with (
        open_stream(realtime_server.url + STREAM, sign_token("xena")) as first,
        open_stream(other.url + STREAM, sign_token("xena")) as second,
    ):
        ids = [str(await emit_event(realtime_database_url, FEED, "xena")) for _ in range(20)]
        for events in (first, second):
            assert await ids_of(events, len(ids)) == ids
        marker = str(await emit_event(realtime_database_url, FEED, "xena", "marker"))
        for events in (first, second):
            assert (await next_event(events)).id == marker, "an event came twice"


async def test_the_listener_notices_a_silently_lost_connection_by_its_keepalive_query(
    realtime_database_url: str, pytestconfig: pytest.Config
) -> None:
    """The network drops every byte but no socket closes, so only the keep-alive query (after
    1 s without notifications here) can tell; the events committed meanwhile, on either
    channel, arrive once the listener has reconnected."""
    async with blackhole_proxy(realtime_database_url) as (proxy, proxied_url):
        environment = {
            "DATABASE_URL": proxied_url,
            "REALTIME_HEARTBEAT_SECONDS": "1",
            "REALTIME_KEEPALIVE_SECONDS": "1",
            "REALTIME_RECONNECT_MAX_BACKOFF_SECONDS": "1",
        }
        async with (
            serving("tests.app:app", pytestconfig.rootpath, environment) as server,
            open_stream(server.url + STREAM, sign_token("gus")) as feed,
            open_stream(server.url + NEWS_STREAM, sign_token("gus")) as news,
        ):
            before = await server_metrics(server)
            assert before["listener_connected"]
            proxy.blackhole()

            async def disconnected() -> bool:
                return not (await server_metrics(server))["listener_connected"]

            await wait_until(disconnected, "the listener noticed its connection is lost")
            missed_feed = await emit_event(realtime_database_url, FEED, "gus", "feed_outage")
            missed_news = await emit_event(realtime_database_url, NEWS, "gus", "news_outage")
            proxy.forward()

            async def reconnected() -> bool:
                metrics = await server_metrics(server)
                return bool(metrics["listener_connected"]) and (
                    metrics["listener_reconnects"] > before["listener_reconnects"]
                )

            await wait_until(reconnected, "the listener reconnected through the proxy")
            on_feed, on_news = await next_event(feed), await next_event(news)
    assert (on_feed.id, on_feed.event) == (str(missed_feed), "feed_outage")
    assert (on_news.id, on_news.event) == (str(missed_news), "news_outage")
