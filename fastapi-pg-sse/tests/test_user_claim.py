"""A service whose tokens name the user in a claim of their own (`REALTIME_JWT_USER_CLAIM`), sent
after a scheme word of its own (`REALTIME_AUTH_SCHEME`): here tokens like `{"sub": "access",
"user_id": "ada"}` sent as `Authorization: Token <JWT>`. Each user gets their own stream,
whatever `sub` says; the claim is required and must hold a user id; the challenge, the cookie,
the query parameter and the OpenAPI document follow the same settings, and so do the test
helpers, which read them from the environment."""

import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from httpx_sse import aconnect_sse

from fastapi_pg_sse.auth import verify_token
from fastapi_pg_sse.pytest_plugin import TEST_ENVIRONMENT
from fastapi_pg_sse.testing import (
    SHARED_SUBJECT,
    TEST_JWT_SECRET,
    ServedApp,
    Server,
    ServerFactory,
    authorization,
    emit_event,
    next_event,
    serve,
    sign_token,
)
from tests.app import FEED, STREAM
from tests.helpers import failed_start_up, kernel_settings, new_users

pytestmark = pytest.mark.anyio

TOKEN_SETTINGS = {
    "REALTIME_JWT_USER_CLAIM": "user_id",
    "REALTIME_AUTH_SCHEME": "Token",
    "REALTIME_QUERY_TOKEN": "true",
}
NO_TOKEN = 'Token realm="realtime"'
INVALID_TOKEN = 'Token realm="realtime", error="invalid_token"'


@pytest.fixture(scope="module")
def token_server(realtime_database_url: str, pytestconfig: pytest.Config) -> Iterator[Server]:
    """The test app, reading the user from `user_id` after the word `Token`."""
    environment = {"DATABASE_URL": realtime_database_url, **TEST_ENVIRONMENT, **TOKEN_SETTINGS}
    with serve("tests.app:app", pytestconfig.rootpath, environment) as server:
        yield server


def _token(**claims: object) -> str:
    """A token of the test key, valid for a minute, that says it is an access token in `sub`,
    as the service's tokens do, with `claims`."""
    payload = {"sub": "access", "exp": int(time.time()) + 60, **claims}
    return jwt.encode(payload, TEST_JWT_SECRET)


def _client(server: Server, carrier: str, token: str) -> httpx.AsyncClient:
    """A client of `server` that sends `token` in `carrier` with every request."""
    return httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Token {token}"} if carrier == "header" else {},
        cookies={"access_token": token} if carrier == "cookie" else {},
        params={"access_token": token} if carrier == "query" else {},
        timeout=30,
    )


async def _refusal(server: Server, authorization: str | None) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
        client.stream("GET", STREAM, headers=headers) as response,  # an accepted one streams on
    ):
        return response


@pytest.mark.parametrize("carrier", ["header", "cookie", "query"])
async def test_users_whose_tokens_share_a_sub_each_get_only_their_own_events(
    token_server: Server, realtime_database_url: str, carrier: str
) -> None:
    ada, bob = new_users("ada", "bob")
    async with (
        _client(token_server, carrier, _token(user_id=ada)) as ada_client,
        _client(token_server, carrier, _token(user_id=bob)) as bob_client,
        aconnect_sse(ada_client, "GET", STREAM) as ada_source,
        aconnect_sse(bob_client, "GET", STREAM) as bob_source,
    ):
        ada_source.response.raise_for_status()
        bob_source.response.raise_for_status()
        for_bob = await emit_event(realtime_database_url, FEED, bob, "for_bob")
        for_ada = await emit_event(realtime_database_url, FEED, ada, "for_ada")
        to_ada = await next_event(ada_source.aiter_sse())
        to_bob = await next_event(bob_source.aiter_sse())
    assert (to_ada.id, to_ada.event) == (str(for_ada), "for_ada")
    assert (to_bob.id, to_bob.event) == (str(for_bob), "for_bob")


@pytest.mark.parametrize("word", ["Token", "token", "TOKEN"])
async def test_the_scheme_word_is_compared_case_insensitively(
    token_server: Server, realtime_database_url: str, word: str
) -> None:
    [cara] = new_users("cara")
    headers = {"Authorization": f"{word} {_token(user_id=cara)}"}
    async with (
        httpx.AsyncClient(base_url=token_server.url, timeout=30) as client,
        aconnect_sse(client, "GET", STREAM, headers=headers) as source,
    ):
        source.response.raise_for_status()
        event_id = await emit_event(realtime_database_url, FEED, cara, "hello")
        event = await next_event(source.aiter_sse())
    assert event.id == str(event_id)


@pytest.mark.parametrize("authorization", [None, "Token", "Bearer", "Basic YWxpY2U6c2VjcmV0"])
async def test_a_request_without_a_token_of_the_scheme_is_a_401_with_its_challenge(
    token_server: Server, authorization: str | None
) -> None:
    response = await _refusal(token_server, authorization)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == NO_TOKEN


async def test_a_valid_token_sent_as_bearer_is_refused_with_the_token_challenge(
    token_server: Server,
) -> None:
    response = await _refusal(token_server, f"Bearer {_token(user_id='dora')}")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == NO_TOKEN


INVALID_USERS: dict[str, dict[str, object]] = {
    "without-the-claim": {},
    "empty": {"user_id": ""},
    "null": {"user_id": None},
    "boolean": {"user_id": True},
    "fractional": {"user_id": 4.2},
    "list": {"user_id": ["ada"]},
    "object": {"user_id": {"id": "ada"}},
}
MISSING_USERS = ("without-the-claim", "null")
"""What PyJWT counts as a missing claim."""


@pytest.mark.parametrize("carrier", ["header", "cookie", "query"])
@pytest.mark.parametrize("kind", list(INVALID_USERS))
async def test_a_token_whose_claim_holds_no_user_id_is_a_401_with_an_invalid_token_challenge(
    token_server: Server, kind: str, carrier: str
) -> None:
    async with (
        _client(token_server, carrier, _token(**INVALID_USERS[kind])) as client,
        client.stream("GET", STREAM) as response,
    ):
        assert response.status_code == 401
        challenge = response.headers["WWW-Authenticate"]
    assert challenge == INVALID_TOKEN


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        *((kind, 'Token is missing the "user_id" claim') for kind in MISSING_USERS),
        *(
            (kind, "the token's user_id claim is not a user id")
            for kind in INVALID_USERS
            if kind not in MISSING_USERS
        ),
    ],
)
def test_verifying_a_token_whose_claim_holds_no_user_id_says_why(
    realtime_database_url: str, kind: str, reason: str
) -> None:
    settings = kernel_settings(realtime_database_url, jwt_user_claim="user_id")
    with pytest.raises(jwt.InvalidTokenError, match=reason):
        verify_token(_token(**INVALID_USERS[kind]), settings)


@pytest.mark.parametrize(("claimed", "user_id"), [("ada", "ada"), (42, "42"), (-7, "-7")])
def test_the_user_is_the_claims_string_or_the_digits_of_its_integer(
    realtime_database_url: str, claimed: object, user_id: str
) -> None:
    """Services that number their users put the number in the claim."""
    settings = kernel_settings(realtime_database_url, jwt_user_claim="user_id")
    assert verify_token(_token(user_id=claimed), settings).id == user_id


def test_sub_keeps_its_meaning_when_another_claim_names_the_user(
    realtime_database_url: str,
) -> None:
    """`sub` is then neither required nor read; when present it is still what RFC 7519 says,
    a string (PyJWT checks it)."""
    settings = kernel_settings(realtime_database_url, jwt_user_claim="user_id")
    without_sub = jwt.encode({"user_id": "eve", "exp": int(time.time()) + 60}, TEST_JWT_SECRET)
    assert verify_token(without_sub, settings).id == "eve"
    with pytest.raises(jwt.InvalidTokenError, match="Subject must be a string"):
        verify_token(_token(sub=7, user_id="eve"), settings)


@pytest.mark.parametrize("sub", ["", 42], ids=["empty", "integer"])
def test_by_default_the_user_is_sub_a_non_empty_string(
    realtime_database_url: str, sub: object
) -> None:
    """An empty `sub` would be one user for every token that carries it; an integer one is no
    JWT subject (RFC 7519 §4.1.2)."""
    token = jwt.encode({"sub": sub, "exp": int(time.time()) + 60}, TEST_JWT_SECRET)
    with pytest.raises(jwt.InvalidTokenError):
        verify_token(token, kernel_settings(realtime_database_url))


async def test_the_openapi_document_describes_the_header_with_its_scheme_word(
    token_server: Server,
) -> None:
    """Swagger UI's Authorize dialog knows no HTTP scheme but Basic and Bearer: another word is
    documented as an API key in the `Authorization` header, sent as typed."""
    async with httpx.AsyncClient(base_url=token_server.url, timeout=30) as client:
        response = await client.get("/openapi.json")
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    schemes = document["components"]["securitySchemes"]
    header = schemes["authorizationHeader"]
    assert (header["type"], header["in"], header["name"]) == ("apiKey", "header", "Authorization")
    assert header["description"].startswith("`Token <JWT>`, the word included.")
    assert "`user_id` claim is the user id" in header["description"]
    assert "bearerToken" not in schemes
    assert document["paths"][STREAM]["get"]["security"] == [
        {"authorizationHeader": []},
        {"tokenCookie": []},
        {"tokenQuery": []},
    ]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"REALTIME_JWT_USER_CLAIM": ""}, "REALTIME_JWT_USER_CLAIM must name the claim"),
        ({"REALTIME_JWT_USER_CLAIM": " user_id"}, "REALTIME_JWT_USER_CLAIM must name the claim"),
        ({"REALTIME_JWT_USER_CLAIM": "aud"}, "REALTIME_JWT_USER_CLAIM is aud, a claim that every"),
        ({"REALTIME_AUTH_SCHEME": "Bearer Token"}, "REALTIME_AUTH_SCHEME must be the one word"),
        ({"REALTIME_AUTH_SCHEME": ""}, "REALTIME_AUTH_SCHEME must be the one word"),
        ({"REALTIME_AUTH_SCHEME": "Token:"}, "REALTIME_AUTH_SCHEME must be the one word"),
    ],
    ids=["empty-claim", "spaced-claim", "shared-claim", "two-words", "empty-scheme", "separator"],
)
def test_an_invalid_claim_or_scheme_stops_the_app_at_start_up_naming_the_variable(
    realtime_database_url: str,
    pytestconfig: pytest.Config,
    variables: dict[str, str],
    message: str,
) -> None:
    output = failed_start_up(
        "tests.app:app",
        pytestconfig.rootpath,
        {
            "DATABASE_URL": realtime_database_url,
            "REALTIME_JWT_SECRET": TEST_JWT_SECRET,
            **variables,
        },
    )
    assert message in output
    assert "Application startup failed" in output


@pytest.fixture
def token_environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """`TOKEN_SETTINGS`, set in the test process's environment, where the helpers read them."""
    for name, value in TOKEN_SETTINGS.items():
        monkeypatch.setenv(name, value)
    return TOKEN_SETTINGS


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, TEST_JWT_SECRET, algorithms=["HS256"])
    return claims


def test_by_default_the_helpers_sign_the_user_as_sub_and_send_it_as_bearer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in TOKEN_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    claims = _claims(sign_token("ada"))
    assert set(claims) == {"sub", "exp"}
    assert claims["sub"] == "ada"
    assert authorization("the-token") == "Bearer the-token"


def test_the_helpers_sign_the_user_in_the_claim_of_the_environment_and_send_its_word(
    token_environment: dict[str, str],
) -> None:
    claims = _claims(sign_token("ada"))
    assert (claims["sub"], claims["user_id"]) == (SHARED_SUBJECT, "ada")
    assert authorization("the-token") == "Token the-token"


@pytest.mark.usefixtures("token_environment")
async def test_a_test_server_and_the_helpers_follow_the_token_format_of_the_environment(
    start_realtime_server: ServerFactory, realtime_database_url: str
) -> None:
    """Set where the helpers read them, the two settings reach the test servers too, unlike the
    developer's other `REALTIME_*` variables: `ServedApp.stream` signs in with `sign_token` and
    opens the stream with `open_stream`, and each user still gets their own events, though
    every token says `sub: access`."""
    served = ServedApp(start_realtime_server(), realtime_database_url)
    ada, bob = new_users("ada", "bob")
    async with served.stream(STREAM, ada) as ada_stream, served.stream(STREAM, bob) as bob_stream:
        for_bob = await served.emit(FEED, bob)
        for_ada = await served.emit(FEED, ada)
        to_ada, to_bob = await next_event(ada_stream), await next_event(bob_stream)
    assert (to_ada.id, to_bob.id) == (str(for_ada), str(for_bob))
    refused = await served.get(STREAM, {"Authorization": f"Bearer {sign_token(ada)}"})
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Token")
