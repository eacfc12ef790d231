"""Group membership is the application's to say (`create_realtime_router(groups=...)`): read as
each stream opens or resumes, so a removed member stops receiving the group's events when the
stream next opens, and `disconnect` makes that happen at once; an exception of the function
answers the request."""

from collections.abc import AsyncIterator

import httpx
import pytest

from fastapi_pg_sse.testing import Server, connected, next_event, open_stream, sign_token
from tests.app import FEED, STREAM
from tests.groups_app import MEMBERSHIPS
from tests.helpers import new_users, serving

pytestmark = pytest.mark.anyio


@pytest.fixture
async def groups_server(realtime_database_url: str, pytestconfig: pytest.Config) -> AsyncIterator[Server]:
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
