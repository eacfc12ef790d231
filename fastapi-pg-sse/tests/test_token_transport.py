"""Where a token may travel: `Authorization: Bearer` to every route that uses `CurrentUser`; the
`access_token` cookie to stream routes only, since a browser sends cookies with a cross-site
request too; the `access_token` query parameter to stream routes only, and only when
`REALTIME_QUERY_TOKEN` is true, since query strings are logged. Accepted or not, a token sent in
a query string is redacted from uvicorn's access log.

The app these tests serve (`app`, below) is the test app's JWT stream routes, with a
state-changing route and a JSON GET route of `CurrentUser` beside them.
"""

import copy
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from uvicorn.config import LOGGING_CONFIG

from fastapi_pg_sse import CurrentUser, EventStream, Streams, create_realtime_router
from fastapi_pg_sse.pytest_plugin import TEST_ENVIRONMENT
from fastapi_pg_sse.testing import Server, serve, sign_token
from tests.app import FEED, NEWS, ORDERS, STREAM, jwt_router
from tests.helpers import kernel_settings, wait_until

pytestmark = pytest.mark.anyio

ACTION = "/feed/read-marker"
"""A state-changing route: what a cross-site form or `fetch` targets."""
PROFILE = "/me"
"""A GET route that answers JSON, not a stream."""
ANY_METHOD_STREAM = "/feed/any-method/stream"
"""A stream route written by hand that also answers POST."""
NO_TOKEN = 'Bearer realm="realtime"'
"""The challenge of a request that sent no token the route accepts."""

actions = APIRouter()


@actions.post(ACTION)
async def mark_read(user: CurrentUser) -> dict[str, str]:
    return {"marked_by": user.id}


@actions.get(PROFILE)
async def profile(user: CurrentUser) -> dict[str, str]:
    return {"user": user.id}


@actions.api_route(ANY_METHOD_STREAM, methods=["GET", "POST"], response_class=EventStream)
async def stream_by_any_method(user: CurrentUser, streams: Streams) -> EventStream:
    return streams.open(FEED, user)


app = FastAPI(title="fastapi-pg-sse tests, routes beside the streams")
app.include_router(create_realtime_router([FEED, NEWS, ORDERS]))
app.include_router(jwt_router)
app.include_router(actions)


def _log_config(access_log: Path) -> dict[str, Any]:
    """uvicorn's own logging configuration, its access log written to `access_log` uncoloured."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"]["use_colors"] = False
    config["handlers"]["access"] = {
        "formatter": "access",
        "class": "logging.FileHandler",
        "filename": str(access_log),
    }
    return config


@dataclass(frozen=True)
class LoggedServer:
    """This module's app under uvicorn, and the file of its access log."""

    server: Server
    access_log: Path
    query_token: bool
    """Whether it was started with `REALTIME_QUERY_TOKEN=true`."""


@pytest.fixture(scope="module", params=[False, True], ids=["query-off", "query-on"])
def served(
    request: pytest.FixtureRequest,
    realtime_database_url: str,
    pytestconfig: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LoggedServer]:
    query_token: bool = request.param
    folder = tmp_path_factory.mktemp("logs")
    access_log, log_config = folder / "access.log", folder / "logging.json"
    log_config.write_text(json.dumps(_log_config(access_log)), encoding="utf-8")
    environment = {
        "DATABASE_URL": realtime_database_url,
        **TEST_ENVIRONMENT,
        "REALTIME_QUERY_TOKEN": str(query_token).lower(),
        "UVICORN_LOG_CONFIG": str(log_config),
    }
    with serve("tests.test_token_transport:app", pytestconfig.rootpath, environment) as server:
        yield LoggedServer(server, access_log, query_token)


async def _answer(
    served: LoggedServer,
    method: str,
    path: str,
    *,
    cookies: dict[str, str] | None = None,
    **sent: Any,
) -> tuple[int, str]:
    """The status of one request, and its challenge (empty without); a stream is closed at
    once."""
    async with (
        httpx.AsyncClient(base_url=served.server.url, cookies=cookies, timeout=30) as client,
        client.stream(method, path, **sent) as response,
    ):
        return response.status_code, response.headers.get("WWW-Authenticate", "")


async def test_a_cookie_alone_does_not_authenticate_a_state_changing_route(
    served: LoggedServer,
) -> None:
    """The cross-site request forgery: a page of another site posts to the route, and the
    browser adds the user's cookie."""
    token = sign_token("carl")
    cookies = {"access_token": token}
    assert await _answer(served, "POST", ACTION, cookies=cookies) == (401, NO_TOKEN)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=served.server.url, timeout=30) as client:
        response = await client.post(ACTION, headers=headers)
    assert (response.status_code, response.json()) == (200, {"marked_by": "carl"})


async def test_a_cookie_alone_does_not_authenticate_a_get_route_that_does_not_stream(
    served: LoggedServer,
) -> None:
    token = sign_token("cleo")
    cookies = {"access_token": token}
    assert await _answer(served, "GET", PROFILE, cookies=cookies) == (401, NO_TOKEN)
    headers = {"Authorization": f"Bearer {token}"}
    assert await _answer(served, "GET", PROFILE, headers=headers) == (200, "")


async def test_a_cookie_authenticates_a_stream_route(served: LoggedServer) -> None:
    cookies = {"access_token": sign_token("cody")}
    assert await _answer(served, "GET", STREAM, cookies=cookies) == (200, "")


async def test_a_cookie_authenticates_a_stream_route_by_get_only(served: LoggedServer) -> None:
    """A stream route that also answers POST is no way round: the POST needs the header."""
    cookies = {"access_token": sign_token("cora")}
    assert await _answer(served, "GET", ANY_METHOD_STREAM, cookies=cookies) == (200, "")
    assert await _answer(served, "POST", ANY_METHOD_STREAM, cookies=cookies) == (401, NO_TOKEN)


async def test_a_query_token_authenticates_only_stream_routes_and_only_when_enabled(
    served: LoggedServer,
) -> None:
    params = {"access_token": sign_token("quin")}
    on_a_stream = (200, "") if served.query_token else (401, NO_TOKEN)
    assert await _answer(served, "GET", STREAM, params=params) == on_a_stream
    assert await _answer(served, "POST", ACTION, params=params) == (401, NO_TOKEN)
    assert await _answer(served, "GET", PROFILE, params=params) == (401, NO_TOKEN)


async def test_a_token_in_a_query_string_is_redacted_from_uvicorns_access_log(
    served: LoggedServer,
) -> None:
    """However the parameter's name is encoded (Starlette decodes it), and whether the route
    accepts it or not: a token in a log file is a credential for whoever reads it."""
    tokens = [sign_token(f"logan-{number}") for number in range(3)]
    sent = [
        ("GET", f"{STREAM}?last_event_id=7&access_token={tokens[0]}"),
        ("GET", f"{STREAM}?access%5Ftoken={tokens[1]}"),
        ("POST", f"{ACTION}?access_token={tokens[2]}"),
    ]
    statuses = [(await _answer(served, method, path))[0] for method, path in sent]

    async def logged() -> bool:
        text = served.access_log.read_text(encoding="utf-8")
        return all(f"{method} {path.partition('?')[0]}?" in text for method, path in sent)

    await wait_until(logged, "uvicorn logged the three requests")
    text = served.access_log.read_text(encoding="utf-8")
    assert not [token for token in tokens if token in text]
    assert f'"GET {STREAM}?last_event_id=7&access_token=[redacted] HTTP/1.1" {statuses[0]}' in text
    assert f'"GET {STREAM}?access%5Ftoken=[redacted] HTTP/1.1" {statuses[1]}' in text
    assert f'"POST {ACTION}?access_token=[redacted] HTTP/1.1" 401' in text
    accepted = [200, 200] if served.query_token else [401, 401]
    assert statuses[:2] == accepted, "the encoded name is a name of the parameter too"


async def test_the_kernel_redacts_uvicorns_access_log_only_while_it_runs(
    realtime_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Its filter goes when it stops: an app started again in the same process adds no
    second one."""
    access_log = logging.getLogger("uvicorn.access")
    filters_before = list(access_log.filters)
    kernel = FastAPI()
    settings = kernel_settings(realtime_database_url)
    kernel.include_router(create_realtime_router([FEED], settings=settings))
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        async with kernel.router.lifespan_context(kernel):
            # As uvicorn logs a request: the path and query are the third argument.
            access_log.info(
                '%s - "%s %s HTTP/%s" %d',
                "127.0.0.1:5000",
                "GET",
                "/s?access_token=t0k",
                "1.1",
                200,
            )
    assert [record.getMessage() for record in caplog.records] == [
        '127.0.0.1:5000 - "GET /s?access_token=[redacted] HTTP/1.1" 200'
    ]
    assert access_log.filters == filters_before
