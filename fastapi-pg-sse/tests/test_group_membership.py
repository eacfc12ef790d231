"""Group membership is the application's to say (`create_realtime_router(groups=...)`): read as
each stream opens or resumes, so a removed member stops receiving the group's events when the
stream next opens, and `disconnect` makes that happen at once; an exception of the function
answers the request."""

from collections.abc import AsyncIterator

import httpx
import pytest
from httpx_sse import aconnect_sse

from fastapi_pg_sse.openapi import ITEM_SCHEMA
from fastapi_pg_sse.testing import (
    Server,
    connected,
    emit_event,
    next_event,
    open_stream,
    sign_token,
)
from tests.app import FEED, STREAM, USER_HEADER
from tests.groups_app import MEMBERSHIPS
from tests.helpers import new_users, serving

pytestmark = pytest.mark.anyio


@pytest.fixture
async def groups_server(
    realtime_database_url: str, pytestconfig: pytest.Config
) -> AsyncIterator[Server]:
    async with connected(realtime_database_url) as connection:
        await connection.execute(MEMBERSHIPS)
    environment = {"DATABASE_URL": realtime_database_url, "REALTIME_HEARTBEAT_SECONDS": "1"}
    async with serving("tests.groups_app:app", pytestconfig.rootpath, environment) as server:
        yield server


async def test_groups_are_read_at_each_open_and_resume_and_disconnect_ends_the_stream_at_once(
    groups_server: Server, realtime_database_url: str
) -> None:
    user, kept, left = new_users("gus", "team-kept", "team-left")
    url = groups_server.url + STREAM
    async with connected(realtime_database_url) as connection:

        async def to_group(group: str, kind: str) -> None:
            await connection.execute(
                "SELECT fastapi_pg_sse.emit_to_group($1, $2, $3, '{}'::jsonb)",
                FEED.name,
                group,
                kind,
            )

        await connection.executemany(
            "INSERT INTO test_memberships VALUES ($1, $2)", [(user, kept), (user, left)]
        )
        async with open_stream(url, sign_token(user)) as stream:
            await to_group(left, "before_removal")
            seen = await next_event(stream)
            await connection.execute(
                "DELETE FROM test_memberships WHERE user_id = $1 AND group_name = $2", user, left
            )
            await to_group(left, "after_removal")
            await to_group(kept, "still_a_member")
            # Still open: the membership it read as it opened holds until it ends.
            assert (await next_event(stream)).event == "after_removal"
            assert (await next_event(stream)).event == "still_a_member"
            async with httpx.AsyncClient(base_url=groups_server.url) as client:
                ended = await client.post(f"/disconnect/{user}")
            assert ended.status_code == 204
            revoked = await next_event(stream)
        async with open_stream(url, sign_token(user), last_event_id=seen.id) as resumed:
            replayed = await next_event(resumed)
    assert seen.event == "before_removal"
    assert revoked.event == "revoked"
    assert replayed.event == "still_a_member", "the removed group's event was replayed"


async def test_an_exception_of_the_apps_groups_function_answers_the_request(
    groups_server: Server,
) -> None:
    async with httpx.AsyncClient(base_url=groups_server.url, timeout=30) as client:
        for path in (STREAM, "/realtime/stream?channels=test_feed"):
            response = await client.get(
                path, headers={"Authorization": f"Bearer {sign_token('banned-bo')}"}
            )
            assert response.status_code == 403, path
            assert response.json() == {"detail": "This user may not stream."}


async def test_a_group_name_no_stream_can_serve_from_the_apps_function_is_the_servers_fault(
    groups_server: Server,
) -> None:
    async with httpx.AsyncClient(base_url=groups_server.url, timeout=30) as client:
        response = await client.get(
            STREAM, headers={"Authorization": f"Bearer {sign_token('blank-bea')}"}
        )
    assert response.status_code == 500
    assert response.json()["detail"] == (
        "The app's groups function gave a group no stream can serve."
    )


async def test_a_timeout_of_the_apps_groups_function_is_answered_as_an_outage_the_client_outlasts(
    groups_server: Server,
) -> None:
    """Memberships read from a database that is down: the answer of an outage, a 200 that ends
    at once with the id to resume after and the retry hint, which an `EventSource` follows on its
    own (a 500 would make it give up for good)."""
    async with httpx.AsyncClient(base_url=groups_server.url, timeout=30) as client:
        response = await client.get(
            STREAM, headers={"Authorization": f"Bearer {sign_token('slow-sam')}"}
        )
    assert response.status_code == 200
    assert response.text.startswith(": the event store is unavailable"), response.text


@pytest.mark.parametrize("claim", ["team", [{"team": 7}]], ids=["a-string", "objects"])
async def test_the_tokens_groups_claim_is_not_read_when_the_app_says_the_groups(
    groups_server: Server, realtime_database_url: str, claim: object
) -> None:
    (user,) = new_users("cleo")
    async with open_stream(groups_server.url + STREAM, sign_token(user, groups=claim)) as stream:
        event_id = await emit_event(realtime_database_url, FEED, user, "mine")
        event = await next_event(stream)
    assert event.id == str(event_id)


async def test_the_apps_groups_function_may_read_the_tokens_groups_claim(
    groups_server: Server, realtime_database_url: str
) -> None:
    """`user.groups` holds the claim for the function to use (`return user.groups`), as a
    generated project's group test relies on."""
    user, crew = new_users("claimed-cleo", "crew")
    async with (
        connected(realtime_database_url) as connection,
        open_stream(groups_server.url + STREAM, sign_token(user, groups=[crew])) as stream,
    ):
        await connection.execute(
            "SELECT fastapi_pg_sse.emit_to_group($1, $2, 'to_the_crew', '{}'::jsonb)",
            FEED.name,
            crew,
        )
        event = await next_event(stream)
    assert event.event == "to_the_crew"


async def test_an_own_auth_apps_multiplexed_route_serves_and_documents_its_routes_channels(
    realtime_database_url: str, pytestconfig: pytest.Config
) -> None:
    (user,) = new_users("ozzy")
    environment = {"DATABASE_URL": realtime_database_url}
    async with (
        serving("tests.multiplexed_app:app", pytestconfig.rootpath, environment) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
    ):
        document = (await client.get("/openapi.json")).json()
        async with aconnect_sse(
            client, "GET", "/realtime/stream?channels=test_feed", headers={USER_HEADER: user}
        ) as source:
            events = source.aiter_sse()
            event_id = await emit_event(realtime_database_url, FEED, user, "own_auth")
            event = await next_event(events)
    assert (event.id, event.event) == (str(event_id), "test_feed.own_auth")
    operation = document["paths"]["/realtime/stream"]["get"]
    assert set(operation["responses"]) == {"200", "400", "429"}
    item_schema = operation["responses"]["200"]["content"]["text/event-stream"][ITEM_SCHEMA]
    patterns = [e["properties"]["event"].get("pattern") for e in item_schema["oneOf"]]
    assert patterns[0] == "^test_feed\\."
