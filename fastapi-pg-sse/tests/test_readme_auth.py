"""A user id the settings cannot name, one nested in a claim (`{"user": {"id": 42}}`), takes a
dependency of the app's own: the README's, run from its code block (`tests.readme_auth_app`),
streams each user their own events and refuses a token that names none."""

import time
import uuid
from collections.abc import Iterator

import httpx
import jwt
import pytest
from httpx_sse import aconnect_sse

from fastapi_pg_sse.pytest_plugin import TEST_ENVIRONMENT
from fastapi_pg_sse.testing import TEST_JWT_SECRET, Server, emit_event, next_event, serve
from tests.app import FEED
from tests.readme_auth_app import NESTED_CLAIM_STREAM

pytestmark = pytest.mark.anyio


def _token(**claims: object) -> str:
    """A token of the test key, valid for a minute, with `claims`."""
    return jwt.encode({"exp": int(time.time()) + 60, **claims}, TEST_JWT_SECRET)


def _bearer(user_id: object) -> dict[str, str]:
    """The header that sends a token of `user_id`, nested at `user.id`."""
    return {"Authorization": f"Bearer {_token(user={'id': user_id})}"}


@pytest.fixture(scope="module")
def nested_claim_server(
    realtime_database_url: str, pytestconfig: pytest.Config
) -> Iterator[Server]:
    """The README's dependency at work: `tests.readme_auth_app`, its key in `JWT_SECRET`."""
    environment = {
        "DATABASE_URL": realtime_database_url,
        **TEST_ENVIRONMENT,
        "JWT_SECRET": TEST_JWT_SECRET,
    }
    with serve("tests.readme_auth_app:app", pytestconfig.rootpath, environment) as server:
        yield server


async def test_the_readmes_dependency_streams_to_the_user_of_a_nested_claim(
    nested_claim_server: Server, realtime_database_url: str
) -> None:
    """Users numbered by the service, as integers, each get their own events."""
    ada, bob = (uuid.uuid4().int % 10**12 for _ in range(2))
    async with (
        httpx.AsyncClient(base_url=nested_claim_server.url, timeout=30) as client,
        aconnect_sse(client, "GET", NESTED_CLAIM_STREAM, headers=_bearer(ada)) as ada_source,
        aconnect_sse(client, "GET", NESTED_CLAIM_STREAM, headers=_bearer(bob)) as bob_source,
    ):
        ada_source.response.raise_for_status()
        bob_source.response.raise_for_status()
        for_bob = await emit_event(realtime_database_url, FEED, str(bob), "for_bob")
        for_ada = await emit_event(realtime_database_url, FEED, str(ada), "for_ada")
        to_ada = await next_event(ada_source.aiter_sse())
        to_bob = await next_event(bob_source.aiter_sse())
    assert (to_ada.id, to_bob.id) == (str(for_ada), str(for_bob))


@pytest.mark.parametrize(
    "claims",
    [{}, {"user": "ada"}, {"user": {"id": ""}}, {"user": {"id": True}}, {"user": {"id": 4.2}}],
    ids=["no-user", "user-not-an-object", "empty-id", "boolean-id", "fractional-id"],
)
async def test_the_readmes_dependency_refuses_a_token_without_a_nested_user_id(
    nested_claim_server: Server, claims: dict[str, object]
) -> None:
    async with httpx.AsyncClient(base_url=nested_claim_server.url, timeout=30) as client:
        headers = {"Authorization": f"Bearer {_token(**claims)}"}
        response = await client.get(NESTED_CLAIM_STREAM, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
