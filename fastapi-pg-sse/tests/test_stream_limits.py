"""A process serves a bounded number of streams, in all and per user: one beyond either cap is
answered 429 with `Retry-After`, before any database work, however many open at once."""

import asyncio
from collections import Counter
from urllib.parse import urlsplit

import httpx
import pytest

from fastapi_pg_sse.testing import (
    Server,
    ServerFactory,
    emit_event,
    next_event,
    open_stream,
    sign_token,
)
from tests.app import FEED, NEWS_STREAM, ORDERS_STREAM, STREAM
from tests.helpers import new_users, server_metrics, wait_until

pytestmark = pytest.mark.anyio

PER_USER_REFUSAL = "Too many open streams for this user; close one, or retry later."


async def test_a_users_stream_beyond_the_per_user_cap_gets_429_while_another_user_gets_200(
    start_realtime_server: ServerFactory,
) -> None:
    """The cap counts the user's streams over every channel."""
    server = start_realtime_server(REALTIME_MAX_STREAMS_PER_USER="3")
    ida, other = new_users("ida", "other")
    async with (
        open_stream(server.url + STREAM, sign_token(ida)),
        open_stream(server.url + NEWS_STREAM, sign_token(ida)),
        open_stream(server.url + ORDERS_STREAM, sign_token(ida)),
    ):
        refused = await _answer(server, ida)
        async with open_stream(server.url + STREAM, sign_token(other)):
            pass  # raises unless 200
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "3"
    assert refused.headers["Cache-Control"] == "no-store"
    assert refused.json() == {"detail": PER_USER_REFUSAL}


async def test_a_slot_frees_when_its_stream_closes(
    start_realtime_server: ServerFactory, realtime_database_url: str
) -> None:
    server = start_realtime_server(REALTIME_MAX_STREAMS_PER_USER="1")
    (uma,) = new_users("uma")
    async with open_stream(server.url + STREAM, sign_token(uma)):
        refused = await _answer(server, uma)

    async def closed() -> bool:
        return (await server_metrics(server))["open_streams"] == 0

    await wait_until(closed, "the server saw the stream close")
    async with open_stream(server.url + STREAM, sign_token(uma)) as events:
        event_id = await emit_event(realtime_database_url, FEED, uma, "after")
        assert (await next_event(events)).id == str(event_id)
    assert refused.status_code == 429


async def test_a_stream_beyond_the_process_cap_gets_429(
    start_realtime_server: ServerFactory,
) -> None:
    server = start_realtime_server(REALTIME_MAX_STREAMS="2")
    first, second, third = new_users("first", "second", "third")
    async with (
        open_stream(server.url + STREAM, sign_token(first)),
        open_stream(server.url + STREAM, sign_token(second)),
    ):
        refused = await _answer(server, third)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "3"
    assert refused.headers["Cache-Control"] == "no-store"
    assert refused.json() == {"detail": "This server serves too many streams; retry later."}


async def test_of_300_streams_of_one_user_opened_at_once_exactly_the_cap_open(
    start_realtime_server: ServerFactory,
) -> None:
    """Each stream is counted as its response starts: none passes the check while those before
    it wait for the database."""
    server = start_realtime_server(REALTIME_MAX_STREAMS_PER_USER="10")
    (crowd,) = new_users("crowd")
    statuses = await _statuses_of_streams_opened_at_once(server, crowd, 300)
    assert Counter(statuses) == {200: 10, 429: 290}


async def _answer(server: Server, user_id: str) -> httpx.Response:
    """The answer to a request for `user_id`'s FEED stream: its status and headers, and its body
    unless it is the stream itself."""
    headers = {"Authorization": f"Bearer {sign_token(user_id)}"}
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream("GET", server.url + STREAM, headers=headers) as response,
    ):
        if response.status_code != 200:
            await response.aread()
    return response


async def _statuses_of_streams_opened_at_once(
    server: Server, user_id: str, count: int
) -> list[int]:
    """The status of each of `count` requests for `user_id`'s FEED stream, all sent before any
    answer is read, on connections held open until every answer has come."""
    host, port = urlsplit(server.url).netloc.split(":")
    request = (
        f"GET {STREAM} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {sign_token(user_id)}\r\n\r\n"
    ).encode()
    connections = [await asyncio.open_connection(host, int(port)) for _ in range(count)]
    try:
        for _, writer in connections:
            writer.write(request)
        heads = [await reader.readuntil(b"\r\n\r\n") for reader, _ in connections]
    finally:
        for _, writer in connections:
            writer.close()
    return [int(head.split(b" ", 2)[1]) for head in heads]


async def test_a_multiplexed_stream_of_three_channels_takes_one_slot_of_the_per_user_cap(
    start_realtime_server: ServerFactory,
) -> None:
    server = start_realtime_server(REALTIME_MAX_STREAMS_PER_USER="2")
    (ivy,) = new_users("ivy")
    multiplexed = f"{server.url}/realtime/stream?channels=test_feed,test_news,test_orders"
    async with (
        open_stream(multiplexed, sign_token(ivy)),
        open_stream(server.url + STREAM, sign_token(ivy)),
    ):
        refused = await _answer(server, ivy)
    assert refused.status_code == 429
