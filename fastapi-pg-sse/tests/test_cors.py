"""Pages of the origins of `REALTIME_CORS_ORIGINS` may open streams with their credentials (a
cookie, or an `Authorization` header after a preflight); other origins get no CORS header, so the
browser keeps the stream from them; with no origin set, the middleware does nothing. Only stream
routes get CORS: every other route of the app answers as if the middleware were not there. An
`http://` origin off the loopback interface is logged as a warning."""

import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from fastapi_pg_sse import EventStream, RealtimeCORSMiddleware, RealtimeSettings
from fastapi_pg_sse.pytest_plugin import TEST_ENVIRONMENT
from fastapi_pg_sse.testing import Server, serve, sign_token
from tests.app import STREAM
from tests.helpers import kernel_settings

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


def _preflight_headers(origin: str) -> dict[str, str]:
    """What a browser sends before it opens a stream with an `Authorization` header."""
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, last-event-id",
    }


async def _preflight(server: Server, origin: str, path: str = STREAM) -> httpx.Response:
    """What a browser asks before it sends a GET with an `Authorization` header to `path`."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        return await client.options(path, headers=_preflight_headers(origin))


def _settings(*origins: str) -> RealtimeSettings:
    """Settings allowing `origins`, for a middleware built in the test process."""
    return kernel_settings("postgresql://unused", cors_origins=origins)


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


@pytest.mark.parametrize("path", ["/openapi.json", "/metrics"])
async def test_a_route_that_is_not_a_stream_gets_no_cors_header_even_from_an_allowed_origin(
    cors_server: Server, path: str
) -> None:
    async with httpx.AsyncClient(base_url=cors_server.url, timeout=30) as client:
        response = await client.get(path, headers={"Origin": FRONT})
    assert response.status_code == 200
    assert _cors_headers(response) == {}
    preflight = await _preflight(cors_server, FRONT, path)
    assert preflight.status_code == 405, "the route's answer to OPTIONS"
    assert _cors_headers(preflight) == {}


MOUNTED_STREAM = "/api/stream"


def _mounting_app() -> FastAPI:
    """An app that mounts, at `/api`, an app of a stream route (the response class is what
    makes it one: it answers without a kernel) and another route; CORS on the outer app."""
    api = FastAPI()

    @api.get("/stream", response_class=EventStream)
    async def stream() -> PlainTextResponse:
        return PlainTextResponse("a stream")

    @api.get("/orders")
    async def orders() -> list[str]:
        return ["an order"]

    app = FastAPI()
    app.mount("/api", api)
    app.add_middleware(RealtimeCORSMiddleware, settings=_settings(FRONT))
    return app


async def test_a_stream_of_a_mounted_app_gets_cors_and_its_other_routes_do_not() -> None:
    transport = httpx.ASGITransport(app=_mounting_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://api.example") as client:
        stream = await client.get(MOUNTED_STREAM, headers={"Origin": FRONT})
        preflight = await client.options(MOUNTED_STREAM, headers=_preflight_headers(FRONT))
        orders = await client.get("/api/orders", headers={"Origin": FRONT})
        schema = await client.get("/openapi.json", headers={"Origin": FRONT})
    assert stream.text == "a stream"
    assert stream.headers["access-control-allow-origin"] == FRONT
    assert stream.headers["access-control-allow-credentials"] == "true"
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == FRONT
    assert orders.json() == ["an order"]
    assert _cors_headers(orders) == {}
    assert schema.status_code == 200
    assert _cors_headers(schema) == {}


def _warnings_on_building(caplog: pytest.LogCaptureFixture, *origins: str) -> list[str]:
    """The warnings logged as the middleware is built for `origins`."""
    with caplog.at_level(logging.WARNING, logger="fastapi_pg_sse.cors"):
        RealtimeCORSMiddleware(FastAPI(), settings=_settings(*origins))
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


@pytest.mark.parametrize(
    "loopback", ["http://localhost:5173", "http://127.0.0.1:8000", "http://[::1]:3000"]
)
def test_only_an_http_origin_off_the_loopback_interface_is_warned_of(
    caplog: pytest.LogCaptureFixture, loopback: str
) -> None:
    origins = ("http://app.example.com", loopback, "https://secure.example")
    warnings = _warnings_on_building(caplog, *origins)
    assert len(warnings) == 1, warnings
    assert "'http://app.example.com'" in warnings[0]
    assert "plain HTTP" in warnings[0]
    assert loopback not in warnings[0]
