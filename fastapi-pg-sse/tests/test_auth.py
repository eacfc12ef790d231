"""Who is asking: a JWT from the `Authorization` header, the `access_token` cookie or the
`access_token` query parameter; anything else is a 401 with a bearer challenge."""

import time
import warnings

import anyio
import httpx
import jwt
import pytest
from httpx_sse import aconnect_sse
from pydantic import SecretStr

from fastapi_pg_sse.auth import verify_token
from fastapi_pg_sse.testing import (
    TEST_JWT_SECRET,
    Server,
    ServerFactory,
    emit_event,
    next_event,
    sign_token,
)
from tests.app import FEED, STREAM
from tests.helpers import kernel_settings

pytestmark = pytest.mark.anyio

OTHER_KEY = "another-signing-key-of-at-least-32-bytes"
LONG_KEY = "a-signing-key-long-enough-for-hs512-" + "k" * 32


@pytest.mark.parametrize("carrier", ["header", "cookie", "query"])
async def test_the_token_may_come_in_the_header_a_cookie_or_the_query_string(
    realtime_server: Server, realtime_database_url: str, carrier: str
) -> None:
    token = sign_token("vera")
    headers = {"Authorization": f"Bearer {token}"} if carrier == "header" else {}
    cookies = {"access_token": token} if carrier == "cookie" else {}
    params = {"access_token": token} if carrier == "query" else {}
    async with (
        httpx.AsyncClient(base_url=realtime_server.url, cookies=cookies, timeout=30) as client,
        aconnect_sse(client, "GET", STREAM, headers=headers, params=params) as source,
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


INVALID_TOKENS = {
    "malformed": "not-a-token",
    "expired": sign_token("alice", expires_in=-60),
    "wrong-key": sign_token("alice", key=OTHER_KEY),
    "unsigned": jwt.encode(_claims(), None, algorithm="none"),
    "unaccepted-algorithm": _hs512_token_of_the_test_key(),
    "without-sub": jwt.encode({"exp": int(time.time()) + 3600}, TEST_JWT_SECRET),
    "without-exp": jwt.encode({"sub": "alice"}, TEST_JWT_SECRET),
}


@pytest.mark.parametrize("carrier", ["header", "cookie", "query"])
@pytest.mark.parametrize("kind", list(INVALID_TOKENS))
async def test_an_invalid_token_is_a_401_with_an_invalid_token_challenge(
    realtime_server: Server, kind: str, carrier: str
) -> None:
    token = INVALID_TOKENS[kind]
    headers = {"Authorization": f"Bearer {token}"} if carrier == "header" else {}
    cookies = {"access_token": token} if carrier == "cookie" else {}
    params = {"access_token": token} if carrier == "query" else {}
    async with httpx.AsyncClient(
        base_url=realtime_server.url, cookies=cookies, timeout=30
    ) as client:
        response = await client.get(STREAM, headers=headers, params=params)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="realtime", error="invalid_token"'


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
    headers = {"Authorization": f"Bearer {sign_token('vic', expires_in=2)}"}
    body = b""
    async with (
        httpx.AsyncClient(base_url=realtime_server.url, timeout=30) as client,
        client.stream("GET", STREAM, headers=headers) as response,
    ):
        assert response.status_code == 200
        event_id = await emit_event(realtime_database_url, FEED, "vic", "before_expiry")
        with anyio.fail_after(20):
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
