"""Who is asking: a JWT from the `Authorization` header, or on a stream route from the
`access_token` cookie, or the `access_token` query parameter when `REALTIME_QUERY_TOKEN` is true
(see test_token_transport for the other routes); anything else is a 401 with a bearer challenge.

A token is accepted only if its key is long enough for its algorithm, and it was minted for this
use (audience, type) and for a short while."""

import base64
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from functools import cache

import anyio
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from httpx_sse import aconnect_sse
from pydantic import SecretStr

from fastapi_pg_sse import create_realtime_router
from fastapi_pg_sse.auth import verify_token
from fastapi_pg_sse.pytest_plugin import TEST_ENVIRONMENT
from fastapi_pg_sse.settings import RealtimeSettings
from fastapi_pg_sse.testing import (
    TEST_JWT_SECRET,
    Server,
    ServerFactory,
    emit_event,
    next_event,
    serve,
    sign_token,
)
from tests.app import FEED, STREAM, jwt_router, own_auth_router
from tests.helpers import failed_start_up, kernel_settings, token_client

pytestmark = pytest.mark.anyio

OTHER_KEY = "another-signing-key-of-at-least-32-bytes"
LONG_KEY = "a-signing-key-long-enough-for-hs512-" + "k" * 32
CARRIERS = ["header", "cookie", "query"]
DAY = 24 * 3600


@pytest.fixture(scope="module")
def query_token_server(realtime_database_url: str, pytestconfig: pytest.Config) -> Iterator[Server]:
    """The test app, served with `REALTIME_QUERY_TOKEN=true`: its stream routes also read the
    token from the query string."""
    environment = {
        "DATABASE_URL": realtime_database_url,
        **TEST_ENVIRONMENT,
        "REALTIME_QUERY_TOKEN": "true",
    }
    with serve("tests.app:app", pytestconfig.rootpath, environment) as server:
        yield server


@pytest.fixture
def server(carrier: str, request: pytest.FixtureRequest) -> Server:
    """The session's server; for a token in the query string, one that reads it there."""
    served: Server = request.getfixturevalue(
        "query_token_server" if carrier == "query" else "realtime_server"
    )
    return served


@pytest.mark.parametrize("carrier", CARRIERS)
async def test_a_stream_route_reads_the_token_from_the_header_the_cookie_or_the_query_string(
    server: Server, realtime_database_url: str, carrier: str
) -> None:
    async with (
        token_client(server, carrier, sign_token("vera")) as client,
        aconnect_sse(client, "GET", STREAM) as source,
    ):
        source.response.raise_for_status()
        event_id = await emit_event(realtime_database_url, FEED, "vera", "hello")
        event = await next_event(source.aiter_sse())
    assert event.id == str(event_id)


def _claims(**claims: object) -> dict[str, object]:
    return {"sub": "alice", "exp": int(time.time()) + 3600, **claims}


def _hs512_token_of_the_test_key() -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)  # the key suits HS256
        return jwt.encode(_claims(), TEST_JWT_SECRET, algorithm="HS512")


def _token_with_a_deeply_nested_header() -> str:
    """A header of 3000 nested arrays, unsigned: decoding it exceeds Python's recursion limit,
    which PyJWT before 2.14 let out as a `RecursionError` (a 500, to anyone)."""
    header = base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).rstrip(b"=").decode()
    return f"{header}.e30.c2lnbmF0dXJl"


INVALID_TOKENS = {
    "malformed": "not-a-token",
    "expired": sign_token("alice", expires_in=-60),
    "wrong-key": sign_token("alice", key=OTHER_KEY),
    "unsigned": jwt.encode(_claims(), "", algorithm="none"),
    "unaccepted-algorithm": _hs512_token_of_the_test_key(),
    "without-sub": jwt.encode({"exp": int(time.time()) + 3600}, TEST_JWT_SECRET),
    "without-exp": jwt.encode({"sub": "alice"}, TEST_JWT_SECRET),
    "numeric-sub": jwt.encode(_claims(sub=42), TEST_JWT_SECRET),
    "valid-for-31-years": sign_token("alice", expires_in=31 * 365 * DAY),
    "issued-two-days-ago": sign_token("alice", iat=int(time.time()) - 2 * DAY),
    "deeply-nested-header": _token_with_a_deeply_nested_header(),
}


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("kind", list(INVALID_TOKENS))
async def test_an_invalid_token_is_a_401_with_an_invalid_token_challenge(
    server: Server, kind: str, carrier: str
) -> None:
    async with (
        token_client(server, carrier, INVALID_TOKENS[kind]) as client,
        client.stream("GET", STREAM) as response,  # an accepted token would stream on
    ):
        assert response.status_code == 401
        challenge = response.headers["WWW-Authenticate"]
    assert challenge == 'Bearer realm="realtime", error="invalid_token"'


@pytest.mark.parametrize("authorization", [None, "Bearer", "Basic YWxpY2U6c2VjcmV0"])
async def test_a_request_without_a_token_is_a_401_with_a_bearer_challenge(
    realtime_server: Server, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(base_url=realtime_server.url, timeout=30) as client:
        response = await client.get(STREAM, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="realtime"'
    assert response.json() == {"detail": "A valid bearer token is required."}


async def test_a_stream_ends_when_its_token_expires_with_an_expired_event_and_no_id(
    realtime_server: Server, realtime_database_url: str
) -> None:
    """The last frame tells the client why the stream ended; without an id, it leaves the
    client's last event id where it was, to resume from with a new token."""
    # Emitted first and replayed, so the only race with the clock is opening the stream.
    event_id = await emit_event(realtime_database_url, FEED, "vic", "before_expiry")
    headers = {
        "Authorization": f"Bearer {sign_token('vic', expires_in=5)}",
        "Last-Event-ID": str(event_id - 1),
    }
    body = b""
    async with (
        httpx.AsyncClient(base_url=realtime_server.url, timeout=30) as client,
        client.stream("GET", STREAM, headers=headers) as response,
    ):
        assert response.status_code == 200
        with anyio.fail_after(30):
            async for chunk in response.aiter_bytes():
                body += chunk
    *frames, end = body.split(b"\n\n")
    assert end == b"", "the stream ends after a whole frame"
    assert f"event: before_expiry\ndata: {{}}\nid: {event_id}".encode() in frames
    assert frames[-1] == b'event: expired\ndata: {"reason": "token_expired"}'


async def test_audience_and_issuer_are_checked_when_configured(
    start_realtime_server: ServerFactory,
) -> None:
    issuer = "https://auth.example"
    server = start_realtime_server(REALTIME_JWT_AUDIENCE="shop", REALTIME_JWT_ISSUER=issuer)
    tokens = {
        "right": sign_token("wes", aud="shop", iss=issuer),
        "wrong-audience": sign_token("wes", aud="other", iss=issuer),
        "wrong-issuer": sign_token("wes", aud="shop", iss="https://other.example"),
        "neither": sign_token("wes"),
    }
    statuses = {}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for kind, token in tokens.items():
            headers = {"Authorization": f"Bearer {token}"}
            async with client.stream("GET", STREAM, headers=headers) as response:
                statuses[kind] = response.status_code
    assert statuses == {"right": 200, "wrong-audience": 401, "wrong-issuer": 401, "neither": 401}


def test_every_algorithm_of_the_settings_is_accepted(realtime_database_url: str) -> None:
    settings = kernel_settings(
        realtime_database_url,
        jwt_secret=SecretStr(LONG_KEY),
        jwt_algorithms=("HS256", "HS512"),
    )
    for algorithm in ("HS256", "HS512"):
        token = jwt.encode(_claims(), LONG_KEY, algorithm=algorithm)
        assert verify_token(token, settings).id == "alice"
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify_token(jwt.encode(_claims(), LONG_KEY, algorithm="HS384"), settings)


def test_the_user_is_the_tokens_subject_and_expires_with_it(realtime_database_url: str) -> None:
    settings = kernel_settings(realtime_database_url)
    expires = int(time.time()) + 300
    token = jwt.encode({"sub": "42", "exp": expires}, TEST_JWT_SECRET)
    user = verify_token(token, settings)
    assert (user.id, user.expires_at) == ("42", expires)


def _typed_token(typ: str | None, user_id: str = "tess") -> str:
    """A token of the test key whose `typ` header is `typ` (none at all for None)."""
    return jwt.encode(_claims(sub=user_id), TEST_JWT_SECRET, headers={"typ": typ})


async def test_with_a_jwt_type_set_only_tokens_of_that_type_are_accepted(
    start_realtime_server: ServerFactory,
) -> None:
    """A refresh token or a password-reset link signed with the same key is no access token:
    the type tells them apart, compared as RFC 7515 §4.1.9 compares media types."""
    server = start_realtime_server(REALTIME_JWT_TYPE="at+jwt")
    tokens = {
        "at+jwt": _typed_token("at+jwt"),
        "application/AT+JWT": _typed_token("application/AT+JWT"),
        "JWT": sign_token("tess"),
        "refresh+jwt": _typed_token("refresh+jwt"),
        "none": _typed_token(None),
    }
    statuses = {}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for kind, token in tokens.items():
            headers = {"Authorization": f"Bearer {token}"}
            async with client.stream("GET", STREAM, headers=headers) as response:
                statuses[kind] = response.status_code
    assert statuses == {
        "at+jwt": 200,
        "application/AT+JWT": 200,
        "JWT": 401,
        "refresh+jwt": 401,
        "none": 401,
    }


LIFETIMES = {
    "issued-now-for-9-minutes": ({"iat": 0, "exp": 540}, True),
    "issued-now-for-11-minutes": ({"iat": 0, "exp": 660}, False),
    "without-iat-for-9-minutes": ({"exp": 540}, True),
    "without-iat-for-11-minutes": ({"exp": 660}, False),
    "issued-an-hour-ago-for-5-more-minutes": ({"iat": -3600, "exp": 300}, False),
}


@pytest.mark.parametrize("kind", list(LIFETIMES))
def test_a_token_valid_for_longer_than_the_maximum_lifetime_is_refused(
    realtime_database_url: str, kind: str
) -> None:
    """Counted from `iat`, or from now without one: a leaked token stays usable no longer."""
    settings = kernel_settings(realtime_database_url, jwt_max_lifetime_seconds=600)
    offsets, accepted = LIFETIMES[kind]
    now = int(time.time())
    token = jwt.encode(
        {"sub": "lena", **{claim: now + offset for claim, offset in offsets.items()}},
        TEST_JWT_SECRET,
    )
    if accepted:
        assert verify_token(token, settings).id == "lena"
    else:
        with pytest.raises(jwt.InvalidTokenError, match="valid for longer than 600 s"):
            verify_token(token, settings)


@cache
def _rsa_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _public_pem(bits: int) -> str:
    public_key = _rsa_key(bits).public_key()
    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def _rs256_token(bits: int, user_id: str = "rhea") -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)  # the 1024-bit key
        return jwt.encode(_claims(sub=user_id), _rsa_key(bits), algorithm="RS256")


def _rs256_settings(database_url: str, bits: int) -> RealtimeSettings:
    return kernel_settings(
        database_url, jwt_algorithms=("RS256",), jwt_public_key=SecretStr(_public_pem(bits))
    )


def test_a_token_verified_with_an_rsa_key_below_2048_bits_is_refused(
    realtime_database_url: str,
) -> None:
    """Such a key can be factored: whoever does signs tokens for anyone."""
    with pytest.raises(jwt.InvalidKeyError, match="1024 bits"):
        verify_token(_rs256_token(1024), _rs256_settings(realtime_database_url, 1024))
    assert verify_token(_rs256_token(2048), _rs256_settings(realtime_database_url, 2048)).id


def test_an_app_whose_rsa_key_is_below_2048_bits_refuses_to_start(
    realtime_database_url: str, pytestconfig: pytest.Config
) -> None:
    output = failed_start_up(
        "tests.app:app",
        pytestconfig.rootpath,
        {
            "DATABASE_URL": realtime_database_url,
            "REALTIME_JWT_ALGORITHMS": "RS256",
            "REALTIME_JWT_PUBLIC_KEY": _public_pem(1024),
        },
    )
    assert (
        "RuntimeError: REALTIME_JWT_PUBLIC_KEY cannot verify RS256 tokens:"
        " The RSA key is 1024 bits long"
    ) in output
    assert "routes of this app authenticate with CurrentUser" in output
    assert "Application startup failed" in output


async def test_a_server_with_a_2048_bit_rsa_key_streams_to_its_rs256_tokens(
    start_realtime_server: ServerFactory, realtime_database_url: str
) -> None:
    server = start_realtime_server(
        REALTIME_JWT_ALGORITHMS="RS256", REALTIME_JWT_PUBLIC_KEY=_public_pem(2048)
    )
    async with (
        token_client(server, "header", _rs256_token(2048)) as client,
        aconnect_sse(client, "GET", STREAM) as source,
    ):
        source.response.raise_for_status()
        event_id = await emit_event(realtime_database_url, FEED, "rhea", "hello")
        event = await next_event(source.aiter_sse())
    assert event.id == str(event_id)


def _jwt_app(settings: RealtimeSettings) -> FastAPI:
    app = FastAPI()
    app.include_router(create_realtime_router([FEED], settings=settings))
    app.include_router(jwt_router)
    return app


def _own_auth_app(settings: RealtimeSettings) -> FastAPI:
    app = FastAPI()
    app.include_router(create_realtime_router([FEED], settings=settings))
    app.include_router(own_auth_router)
    return app


@pytest.mark.parametrize(
    ("app_of", "overrides", "warned"),
    [
        (_jwt_app, {}, True),
        (_jwt_app, {"jwt_audience": "shop"}, False),
        (_jwt_app, {"jwt_type": "at+jwt"}, False),
        (_own_auth_app, {}, False),
    ],
    ids=["neither", "audience", "type", "no-current-user-route"],
)
async def test_a_kernel_that_accepts_tokens_minted_for_anything_says_so_once_at_start(
    realtime_database_url: str,
    caplog: pytest.LogCaptureFixture,
    app_of: Callable[[RealtimeSettings], FastAPI],
    overrides: dict[str, str],
    warned: bool,
) -> None:
    """Without an audience or a type to check, a refresh token or a password-reset link the
    same key signed opens streams too."""
    app = app_of(kernel_settings(realtime_database_url, **overrides))
    with caplog.at_level(logging.WARNING, logger="fastapi_pg_sse.routing"):
        async with app.router.lifespan_context(app):
            started = [record.getMessage() for record in caplog.records]
    assert len(started) == int(warned)
    for message in started:
        assert "a token the same key signs for another purpose" in message
        assert "set REALTIME_JWT_AUDIENCE or REALTIME_JWT_TYPE" in message
