"""A stream route may authenticate with an auth dependency of the app's own, returning the user
id: `streams.open(channel, user_id)`. Such a stream has no token to expire, and an app whose
routes all work so needs no JWT setting at all."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fastapi_pg_sse.testing import Server, emit_event, next_event, serve
from tests.app import FEED, OWN_AUTH_STREAM, USER_HEADER
from tests.helpers import ids_of, open_own_auth_stream, server_metrics

pytestmark = pytest.mark.anyio


async def test_the_own_auth_route_streams_the_header_users_events_only(
    realtime_server: Server, realtime_database_url: str
) -> None:
    async with open_own_auth_stream(realtime_server, "hank") as hank:
        await emit_event(realtime_database_url, FEED, "ivy", "not_for_hank")
        for_hank = await emit_event(realtime_database_url, FEED, "hank", "for_hank")
        event = await next_event(hank)
    assert (event.id, event.event) == (str(for_hank), "for_hank")


async def test_the_own_auth_route_refuses_a_request_without_its_header(
    realtime_server: Server,
) -> None:
    async with httpx.AsyncClient(base_url=realtime_server.url, timeout=30) as client:
        response = await client.get(OWN_AUTH_STREAM)
    assert response.status_code == 401
    assert response.json() == {"detail": f"{USER_HEADER} is required."}
    assert "WWW-Authenticate" not in response.headers, "no bearer challenge of ours"


async def test_the_own_auth_route_resumes_after_the_last_event_id(
    realtime_server: Server, realtime_database_url: str
) -> None:
    seen = await emit_event(realtime_database_url, FEED, "jude", "seen")
    missed = [str(await emit_event(realtime_database_url, FEED, "jude")) for _ in range(3)]
    async with open_own_auth_stream(realtime_server, "jude", last_event_id=str(seen)) as jude:
        replayed = await ids_of(jude, len(missed))
        live = await emit_event(realtime_database_url, FEED, "jude", "live")
        after = await next_event(jude)
    assert replayed == missed
    assert after.id == str(live)


@pytest.fixture
def own_auth_server(realtime_database_url: str, pytestconfig: pytest.Config) -> Iterator[Server]:
    """`tests.own_auth_app`, served without any JWT setting (`serve` sets REALTIME_JWT_SECRET
    for the test tokens: a blank value counts as unset, and no other REALTIME_* variable of
    the developer reaches the server)."""
    environment = {
        "DATABASE_URL": realtime_database_url,
        "REALTIME_HEARTBEAT_SECONDS": "1",
        "REALTIME_JWT_SECRET": "",
    }
    with serve("tests.own_auth_app:app", pytestconfig.rootpath, environment) as server:
        yield server


async def test_an_app_with_only_its_own_auth_starts_and_streams_without_a_jwt_key(
    own_auth_server: Server, realtime_database_url: str
) -> None:
    async with open_own_auth_stream(own_auth_server, "kurt") as kurt:
        emitted = [str(await emit_event(realtime_database_url, FEED, "kurt")) for _ in range(3)]
        received = await ids_of(kurt, len(emitted))
    metrics = await server_metrics(own_auth_server)
    assert received == emitted
    assert metrics["listener_connected"]


async def test_an_app_with_only_its_own_auth_documents_no_jwt_scheme(
    own_auth_server: Server,
) -> None:
    async with httpx.AsyncClient(base_url=own_auth_server.url, timeout=30) as client:
        response = await client.get("/openapi.json")
    document: dict[str, Any] = response.json()
    assert set(document["components"]["securitySchemes"]) == {"userHeader"}
    assert set(document["paths"]) == {OWN_AUTH_STREAM, "/metrics", "/disconnect/{user_id}"}
