"""A user claim, whatever its value: a 200 stream that receives the user's events, or a 401 that
says why, before any database work; never a 5xx.

A user id must be one that events can be emitted to and PostgreSQL can store: a non-empty single
line of Unicode text (no NUL, no lone surrogate) of at most `MAX_USER_ID_BYTES` in UTF-8, or an
integer, whose digits are the id. The server reads it from `user_id`, so that integers reach it
(PyJWT refuses a `sub` that is not a string), from the header, the cookie and the query.
"""

import json
import re
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import anyio
import httpx
import jwt
import pytest
from httpx_sse import aconnect_sse
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from fastapi_pg_sse.channel import MAX_USER_ID_BYTES
from fastapi_pg_sse.pytest_plugin import TEST_ENVIRONMENT
from fastapi_pg_sse.testing import (
    TEST_JWT_SECRET,
    Server,
    emit_event,
    next_event,
    serve,
    sign_token,
)
from tests.app import FEED, OWN_AUTH_STREAM, STREAM, USER_HEADER
from tests.helpers import new_database, serving, token_client
from tests.proxy import blackhole_proxy

pytestmark = pytest.mark.anyio

CLAIM_SETTINGS = {"REALTIME_JWT_USER_CLAIM": "user_id", "REALTIME_QUERY_TOKEN": "true"}
CARRIERS = ["header", "cookie", "query"]
INVALID_TOKEN = 'Bearer realm="realtime", error="invalid_token"'

_PIECES = [
    "\x00",
    "\ud800",  # lone surrogates: JSON can carry them (\ud800), UTF-8 cannot
    "\udfff",
    "\r",
    "\n",
    "\r\n",
    " ",
    "\t",
    "é",
    "€",
    "😀",
    "\u2028",
    "\ufeff",
    "x" * 500,
    "é" * 300,
    "😀" * 200,
]
"""Bits of user ids near the edges: what PostgreSQL cannot store, line breaks, and long runs of
characters of 1 to 4 bytes that cross the limit in some combinations."""

_STRINGS = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=())),  # surrogates included
    st.lists(st.sampled_from(_PIECES), max_size=8).map("".join),
    st.integers(MAX_USER_ID_BYTES - 2, MAX_USER_ID_BYTES + 2).map(lambda size: "u" * size),
)
_SCALARS = st.one_of(
    _STRINGS,
    st.integers(),
    st.integers(min_value=-(10**1100), max_value=10**1100),  # digits beyond the limit
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
CLAIMS = st.one_of(
    _SCALARS, st.lists(_SCALARS, max_size=3), st.dictionaries(st.text(max_size=5), _SCALARS)
)


@pytest.fixture(scope="module")
def claim_server(realtime_database_url: str, pytestconfig: pytest.Config) -> Iterator[Server]:
    environment = {"DATABASE_URL": realtime_database_url, **TEST_ENVIRONMENT, **CLAIM_SETTINGS}
    with serve("tests.app:app", pytestconfig.rootpath, environment) as server:
        yield server


def _token(claim: object) -> str:
    """A token of the test key, valid for a minute, whose user claim is `claim`."""
    return jwt.encode(
        {"sub": "access", "user_id": claim, "exp": int(time.time()) + 60}, TEST_JWT_SECRET
    )


def _servable(claim: object) -> bool:
    """Whether a stream can serve the user `claim` names, told from its value alone: a string
    or an integer (not a boolean) whose text is not empty, at most `MAX_USER_ID_BYTES` of UTF-8,
    without a NUL, a line break or a lone surrogate (which UTF-8 cannot hold)."""
    if isinstance(claim, bool) or not isinstance(claim, str | int):
        return False
    text = str(claim)
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        return False
    return 0 < size <= MAX_USER_ID_BYTES and not any(c in text for c in "\x00\r\n")


async def _open_with_claim(server: Server, database_url: str, claim: object, carrier: str) -> None:
    """Open a stream with a token whose user claim is `claim`: a 401 saying why when the claim
    names no user a stream can serve, else a stream that receives an event emitted to that
    user."""
    with anyio.fail_after(30):
        async with (
            token_client(server, carrier, _token(claim)) as client,
            aconnect_sse(client, "GET", STREAM) as source,
        ):
            status = source.response.status_code
            event(f"status {status}")
            assert status == (200 if _servable(claim) else 401), status
            if status == 401:
                await source.response.aread()
                assert source.response.headers["WWW-Authenticate"] == INVALID_TOKEN
                detail = source.response.json()["detail"]
                assert detail.startswith("A valid bearer token is required"), detail
                return
            user_id = claim if isinstance(claim, str) else str(claim)
            emitted = await emit_event(database_url, FEED, user_id, "for_the_claim")
            received = await next_event(source.aiter_sse())
            assert (received.id, received.event) == (str(emitted), "for_the_claim")


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(claim=CLAIMS, carrier=st.sampled_from(CARRIERS))
@example(claim="", carrier="header")
@example(claim="\x00", carrier="query")
@example(claim="ada\ud800", carrier="cookie")
@example(claim="u" * MAX_USER_ID_BYTES, carrier="header")
@example(claim="é" * (MAX_USER_ID_BYTES // 2), carrier="query")
@example(claim="u" * 10_000, carrier="query")
@example(claim=10**1030, carrier="header")
@example(claim=-7, carrier="cookie")
def test_any_user_claim_gets_a_stream_that_receives_its_events_or_a_401_never_a_5xx(
    claim_server: Server, realtime_database_url: str, claim: object, carrier: str
) -> None:
    """Each example runs on an event loop of its own; the module's server serves them all."""
    anyio.run(partial(_open_with_claim, claim_server, realtime_database_url, claim, carrier))


REFUSED_CLAIMS = {
    "empty": ("", "it is empty"),
    "nul": ("ada\x00", "it holds a NUL character, which PostgreSQL cannot store"),
    "surrogate": ("ada\udc00", "it holds a lone surrogate, which is not Unicode text"),
    "line-break": ("ada\nbob", "it holds a line break"),
    "too-long": (
        "é" * 513,
        f"it is 1026 bytes long, more than the {MAX_USER_ID_BYTES} allowed",
    ),
    "too-many-digits": (10**1024, f"more than the {MAX_USER_ID_BYTES} allowed"),
    "not-a-string": (4.5, "is not a user id (a non-empty string or an integer)"),
}


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("kind", list(REFUSED_CLAIMS))
async def test_a_claim_no_stream_can_serve_is_a_401_that_says_why_even_with_the_database_down(
    realtime_database_url: str, pytestconfig: pytest.Config, kind: str, carrier: str
) -> None:
    """Checked before any database work: with PostgreSQL unreachable the answer is the 401,
    not the stream that ends at once for the client to retry."""
    claim, why = REFUSED_CLAIMS[kind]
    async with blackhole_proxy(realtime_database_url) as (proxy, proxied_url):
        environment = {"DATABASE_URL": proxied_url, **TEST_ENVIRONMENT, **CLAIM_SETTINGS}
        async with serving("tests.app:app", pytestconfig.rootpath, environment) as server:
            await proxy.stop()
            async with (
                token_client(server, carrier, _token(claim)) as client,
                client.stream("GET", STREAM) as response,
            ):
                await response.aread()
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == INVALID_TOKEN
    detail = response.json()["detail"]
    assert detail.startswith("A valid bearer token is required: the token's user_id claim ")
    assert why in detail


async def test_a_user_id_from_the_apps_own_auth_that_no_stream_can_serve_is_a_401_that_says_why(
    realtime_server: Server,
) -> None:
    """The test app's own auth dependency returns the `X-User` header as it comes."""
    headers = {USER_HEADER: "u" * (MAX_USER_ID_BYTES + 1)}
    async with httpx.AsyncClient(base_url=realtime_server.url, timeout=30) as client:
        response = await client.get(OWN_AUTH_STREAM, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == INVALID_TOKEN
    assert response.json() == {
        "detail": "The user id the app's authentication gave is 1025 bytes long, more than the"
        " 1024 allowed: no stream can serve it."
    }


README = Path(__file__).resolve().parents[1] / "README.md"


async def test_the_readmes_401_for_a_sub_holding_a_nul_is_the_servers(
    realtime_server: Server,
) -> None:
    """The http block of the README's "Tokens" section, as the server answers it."""
    section = README.read_text(encoding="utf-8").split("### Tokens", 1)[1].split("\n### ", 1)[0]
    block = re.search(r"```http\n(.*?)\n```", section, re.DOTALL)
    assert block is not None, "the README shows the 401 in an http block"
    head, body = block.group(1).split("\n\n")
    status_line, challenge = head.split("\n")
    token = jwt.encode({"sub": "ada\x00", "exp": int(time.time()) + 60}, TEST_JWT_SECRET)
    async with httpx.AsyncClient(base_url=realtime_server.url, timeout=30) as client:
        response = await client.get(STREAM, headers={"Authorization": f"Bearer {token}"})
    assert status_line == f"HTTP/1.1 {response.status_code} {response.reason_phrase}"
    assert challenge == f"www-authenticate: {response.headers['WWW-Authenticate']}"
    assert json.loads(body) == response.json()


async def test_a_user_id_the_database_refuses_is_a_500_never_taken_for_an_outage(
    realtime_postgres_url: str, pytestconfig: pytest.Config, capfd: pytest.CaptureFixture[str]
) -> None:
    """A LATIN1 database cannot store "€", as the runtime cannot know before it asks: its
    refusal (`UntranslatableCharacterError`, a `DataError`) is a server error with its
    traceback, not the outage answer that would have the client retry what is refused again."""
    latin1 = "ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    async with new_database(realtime_postgres_url, options=latin1) as database_url:
        environment = {"DATABASE_URL": database_url, **TEST_ENVIRONMENT}
        async with serving("tests.app:app", pytestconfig.rootpath, environment) as server:
            headers = {"Authorization": f"Bearer {sign_token('€uro')}"}
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                response = await client.get(STREAM, headers=headers)
    log = capfd.readouterr().err
    assert response.status_code == 500
    assert "UntranslatableCharacterError" in log
    assert "database unavailable" not in log
