"""Pages of the origins of `REALTIME_CORS_ORIGINS` may open streams with their credentials (a
cookie, or an `Authorization` header after a preflight); other origins get no CORS header, so the
browser keeps the stream from them; with no origin set, the middleware does nothing."""

from collections.abc import Iterator

import httpx
import pytest

from fastapi_pg_sse.pytest_plugin import TEST_ENVIRONMENT
from fastapi_pg_sse.testing import Server, serve, sign_token
from tests.app import STREAM

pytestmark = pytest.mark.anyio

FRONT = "http://front.example:5173"
OTHER_FRONT = "https://other-front.example"


@pytest.fixture(scope="module")
def cors_server(
    realtime_database_url: str, realtime_app: str, pytestconfig: pytest.Config
) -> Iterator[Server]:
    """The test app, allowing two origins."""
    environment = {
        "DATABASE_URL": realtime_database_url,
        **TEST_ENVIRONMENT,
        "REALTIME_CORS_ORIGINS": f"{FRONT}, {OTHER_FRONT}",
    }
    with serve(realtime_app, pytestconfig.rootpath, environment) as server:
        yield server


async def _stream_head(server: Server, origin: str) -> httpx.Response:
    """The head of a stream opened from a page of `origin`, with a cookie."""
    cookies = {"access_token": sign_token("cora")}
    async with (
        httpx.AsyncClient(base_url=server.url, cookies=cookies, timeout=30) as client,
        client.stream("GET", STREAM, headers={"Origin": origin}) as response,
    ):
        return response


async def _preflight(server: Server, origin: str) -> httpx.Response:
    """What a browser asks before it opens a stream with an `Authorization` header."""
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, last-event-id",
    }
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        return await client.options(STREAM, headers=headers)


def _cors_headers(response: httpx.Response) -> dict[str, str]:
    return {
        name: value
        for name, value in response.headers.items()
        if name.startswith("access-control-")
    }


@pytest.mark.parametrize("origin", [FRONT, OTHER_FRONT])
async def test_an_allowed_origin_may_read_the_stream_with_its_credentials(
    cors_server: Server, origin: str
) -> None:
    response = await _stream_head(cors_server, origin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert _cors_headers(response) == {
        "access-control-allow-origin": origin,
        "access-control-allow-credentials": "true",
        "access-control-expose-headers": "Retry-After, WWW-Authenticate",
    }


async def test_an_allowed_origin_may_read_a_401_and_its_challenge(cors_server: Server) -> None:
    async with httpx.AsyncClient(base_url=cors_server.url, timeout=30) as client:
        response = await client.get(STREAM, headers={"Origin": FRONT})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == FRONT
    assert "WWW-Authenticate" in response.headers["access-control-expose-headers"]


async def test_a_preflight_for_the_authorization_header_is_answered(
    cors_server: Server,
) -> None:
    response = await _preflight(cors_server, FRONT)
    assert response.status_code == 200
    cors = _cors_headers(response)
    assert cors["access-control-allow-origin"] == FRONT
    assert cors["access-control-allow-credentials"] == "true"
    assert cors["access-control-allow-methods"] == "GET"
    allowed = {name.strip().lower() for name in cors["access-control-allow-headers"].split(",")}
    assert {"authorization", "last-event-id"} <= allowed


async def test_another_origin_gets_no_cors_header(cors_server: Server) -> None:
    assert _cors_headers(await _stream_head(cors_server, "https://evil.example")) == {}
    preflight = await _preflight(cors_server, "https://evil.example")
    assert preflight.status_code == 405, "the route's answer to OPTIONS"
    assert _cors_headers(preflight) == {}


async def test_without_origins_the_middleware_does_nothing(realtime_server: Server) -> None:
    response = await _stream_head(realtime_server, FRONT)
    assert response.status_code == 200
    assert _cors_headers(response) == {}
    preflight = await _preflight(realtime_server, FRONT)
    assert preflight.status_code == 405, "the route's answer to OPTIONS"
    assert _cors_headers(preflight) == {}
