"""A new `EventSource` (after a token refresh, say) cannot send `Last-Event-ID`: it resumes with
the `last_event_id` query parameter instead, which the header overrides when both are sent."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from fastapi_pg_sse.testing import Server, emit_event, sign_token
from tests.app import FEED, STREAM
from tests.helpers import ids_of

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def _stream(
    server: Server, user_id: str, *, query: str, header: str | None = None
) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
    """`user_id`'s FEED stream, resuming after `?last_event_id=<query>` (and the header)."""
    headers = {"Authorization": f"Bearer {sign_token(user_id)}"}
    if header is not None:
        headers["Last-Event-ID"] = header
    params = {"last_event_id": query}
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
        aconnect_sse(client, "GET", STREAM, headers=headers, params=params) as source,
    ):
        source.response.raise_for_status()
        yield source.aiter_sse()


async def test_a_stream_resumed_with_the_query_parameter_replays_what_followed(
    realtime_server: Server, realtime_database_url: str
) -> None:
    seen = await emit_event(realtime_database_url, FEED, "quinn", "seen")
    missed = [str(await emit_event(realtime_database_url, FEED, "quinn")) for _ in range(3)]
    async with _stream(realtime_server, "quinn", query=str(seen)) as quinn:
        assert await ids_of(quinn, len(missed)) == missed


async def test_the_header_wins_over_the_query_parameter(
    realtime_server: Server, realtime_database_url: str
) -> None:
    first, second, third = [
        str(await emit_event(realtime_database_url, FEED, "hugo")) for _ in range(3)
    ]
    async with _stream(realtime_server, "hugo", query=second, header=first) as hugo:
        assert await ids_of(hugo, 2) == [second, third]


@pytest.mark.parametrize("value", ["-1", "1e3", "²", " 7", "9" * 19, "last"])
async def test_a_malformed_query_parameter_is_a_400_like_the_header(
    realtime_server: Server, value: str
) -> None:
    headers = {"Authorization": f"Bearer {sign_token('bad')}"}
    async with httpx.AsyncClient(base_url=realtime_server.url, timeout=30) as client:
        response = await client.get(STREAM, headers=headers, params={"last_event_id": value})
    assert response.status_code == 400
    assert response.json() == {"detail": "last_event_id must be an event id."}
