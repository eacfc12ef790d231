"""Revocation: `realtime.disconnect(user_id)`, or `fastapi_pg_sse.disconnect(user_id)` in SQL,
ends the user's open streams in every process of the app with a `revoked` event, once its
transaction commits; a stream whose token was issued before is refused. The truth is a row of
the events table: a NOTIFY of any role's making ends nothing."""

import os
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import asyncpg
import httpx
import pytest
from fastapi import APIRouter, FastAPI
from httpx_sse import ServerSentEvent, aconnect_sse

from fastapi_pg_sse import CurrentUser, EventStream, Streams, create_realtime_router, stream_route
from fastapi_pg_sse.testing import (
    ServedApp,
    Server,
    ServerFactory,
    connected,
    next_event,
    open_stream,
    sign_token,
)
from tests.app import FEED, NEWS, NEWS_STREAM, STREAM
from tests.helpers import (
    closed_to_new_connections,
    in_a_schema_of_its_own,
    kernel_settings,
    new_channel,
    new_database,
    new_users,
    running_kernel,
    subscribe,
    terminate_listener,
    wait_until,
)
from tests.test_tracing import readme_block, served_here

pytestmark = pytest.mark.anyio


async def _until_end(events: AsyncIterator[ServerSentEvent]) -> list[tuple[str, str]]:
    """The type and data of every event left on a stream, until the server ends it (not the
    retry hint, which httpx-sse gives as an event of no data)."""
    return [(event.event, event.data) async for event in events if event.data]


async def _disconnect(server: Server, user_id: str) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.post(f"/disconnect/{user_id}")
    assert response.status_code == 204, response.text


async def test_disconnect_ends_the_users_streams_in_every_process_and_no_one_elses(
    served_app: ServedApp, start_realtime_server: ServerFactory
) -> None:
    other_process = start_realtime_server()
    ada, bob = new_users("ada", "bob")
    token = sign_token(ada, iat=int(time.time()) - 5)
    async with AsyncExitStack() as streams:
        here = await streams.enter_async_context(open_stream(served_app.server.url + STREAM, token))
        there = await streams.enter_async_context(
            open_stream(other_process.url + NEWS_STREAM, token)
        )
        bobs = await streams.enter_async_context(served_app.stream(STREAM, bob))
        await _disconnect(other_process, ada)
        assert await _until_end(here) == [("revoked", '{"reason": "revoked"}')]
        assert await _until_end(there) == [("revoked", '{"reason": "revoked"}')]
        event_id = await served_app.emit(FEED, bob, "still_here")
        assert (await next_event(bobs)).id == str(event_id)


async def test_a_token_issued_before_the_revocation_is_refused_and_a_new_one_streams(
    served_app: ServedApp,
) -> None:
    (ada,) = new_users("ada")
    old_token = sign_token(ada, iat=int(time.time()) - 5)
    await _disconnect(served_app.server, ada)
    refused = await served_app.get(STREAM, token=old_token)
    assert refused.status_code == 401
    assert refused.json() == {"detail": "The token was revoked; sign in again."}
    assert 'error_description="the token was revoked"' in refused.headers["WWW-Authenticate"]
    new_token = sign_token(ada, iat=int(time.time()))  # signed in again, in the same second
    async with open_stream(served_app.server.url + STREAM, new_token) as events:
        event_id = await served_app.emit(FEED, ada, "after_sign_in")
        assert (await next_event(events)).id == str(event_id)


async def test_the_sql_form_revokes_when_its_transaction_commits_and_not_on_rollback(
    served_app: ServedApp,
) -> None:
    (ada,) = new_users("ada")
    async with (
        connected(served_app.database_url) as connection,
        served_app.stream(NEWS_STREAM, ada) as events,
    ):
        with pytest.raises(RuntimeError):
            async with connection.transaction():
                await connection.execute("SELECT fastapi_pg_sse.disconnect($1)", ada)
                raise RuntimeError("rolled back")
        kept = await served_app.emit(NEWS, ada, "kept")
        assert (await next_event(events)).id == str(kept)
        async with connection.transaction():
            await connection.execute("SELECT fastapi_pg_sse.disconnect($1)", ada)
        assert await _until_end(events) == [("revoked", '{"reason": "revoked"}')]


async def test_a_forged_notification_ends_no_stream(
    served_app: ServedApp, start_realtime_server: ServerFactory
) -> None:
    """A NOTIFY on the runtime's channel naming the revocations' channel is only a hint: with no
    revocation row after the stream opened, the stream goes on. An old revocation, committed
    before the stream opened, does not end it either. Served by a process of its own: what a
    forgery might leave in a listener stays out of the session's server."""
    (ada,) = new_users("ada")
    server = await anyio.to_thread.run_sync(start_realtime_server)
    async with connected(served_app.database_url) as connection:
        await connection.execute("SELECT fastapi_pg_sse.disconnect($1)", ada)
        async with open_stream(server.url + STREAM, sign_token(ada)) as events:
            for event_id in (1, 2**62):
                await connection.execute(
                    "SELECT pg_notify('fastapi_pg_sse', $1)",
                    f"{event_id} fastapi_pg_sse.revoked {ada}",
                )
            # Notifications are handled in order: the event's comes after the forged ones.
            delivered = await served_app.emit(FEED, ada, "still_streaming")
            assert (await next_event(events)).id == str(delivered)


async def test_no_role_may_revoke_until_granted(realtime_postgres_url: str) -> None:
    """In a database of its own: a grant leaves its mark on the schema's privileges."""
    (ada,) = new_users("ada")
    role = f"no_rights_{ada.split('-')[1]}"
    async with (
        new_database(realtime_postgres_url) as database_url,
        connected(database_url) as connection,
    ):
        await connection.execute(
            f"CREATE ROLE {role}; GRANT USAGE ON SCHEMA fastapi_pg_sse TO {role}"
        )
        try:
            async with connection.transaction():
                await connection.execute(f"SET LOCAL ROLE {role}")
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await connection.execute("SELECT fastapi_pg_sse.disconnect($1)", ada)
            await connection.execute(
                f"GRANT EXECUTE ON FUNCTION fastapi_pg_sse.disconnect(text) TO {role}"
            )
            async with connection.transaction():
                await connection.execute(f"SET LOCAL ROLE {role}")
                await connection.execute("SELECT fastapi_pg_sse.disconnect($1)", ada)
        finally:
            await connection.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")


async def test_disconnect_refuses_a_user_id_no_stream_can_have(served_app: ServedApp) -> None:
    async with connected(served_app.database_url) as connection:
        for user_id in ("", "two\nlines", "x" * 1025):
            with pytest.raises(asyncpg.InvalidParameterValueError, match="target_user_id must"):
                await connection.execute("SELECT fastapi_pg_sse.disconnect($1)", user_id)


async def test_the_readme_logout_and_its_sql_end_the_users_streams(
    realtime_database_url: str,
) -> None:
    """The README's "Revocation" section: its route, mounted in an app, ends the caller's stream;
    its SQL, run as it is (with a `sessions` table), ends the next one."""
    namespace: dict[str, Any] = {"__name__": "readme_revocation"}
    exec(readme_block("Revocation", "python"), namespace)
    channel = new_channel("revoked")
    router = APIRouter()

    @stream_route(router, channel)
    async def stream(user: CurrentUser, streams: Streams) -> EventStream:
        return streams.open(channel, user)

    app = FastAPI()
    app.include_router(
        create_realtime_router([channel], settings=kernel_settings(realtime_database_url))
    )
    app.include_router(router)
    app.include_router(namespace["router"])
    headers = {"Authorization": f"Bearer {sign_token('ada', iat=int(time.time()) - 5)}"}
    async with (
        served_here(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
        in_a_schema_of_its_own(realtime_database_url, "public") as connection,
    ):
        async with aconnect_sse(client, "GET", "/stream", headers=headers) as source:
            response = await client.post("/logout", headers=headers)
            assert response.status_code == 204
            assert await _until_end(source.aiter_sse()) == [("revoked", '{"reason": "revoked"}')]
        headers["Authorization"] = f"Bearer {sign_token('ada', iat=int(time.time()))}"
        async with aconnect_sse(client, "GET", "/stream", headers=headers) as source:
            await connection.execute("CREATE TABLE sessions (user_id text)")
            await connection.execute(readme_block("Revocation", "sql"))
            assert await _until_end(source.aiter_sse()) == [("revoked", '{"reason": "revoked"}')]


async def test_a_revocation_committed_while_the_listener_was_away_ends_the_stream_on_its_return(
    realtime_postgres_url: str, realtime_database_url: str
) -> None:
    """The listener reconnects, and reads the revocations it was not told of."""
    (ada,) = new_users("ada")
    async with (
        connected(realtime_database_url) as connection,
        running_kernel(realtime_database_url) as realtime,
    ):
        stream = subscribe(realtime, ada)
        async with closed_to_new_connections(realtime_postgres_url, realtime_database_url):
            await terminate_listener(connection, os.getpid())

            async def disconnected() -> bool:
                return not realtime.listener.connected

            await wait_until(disconnected, "the listener saw its connection die")
            await connection.execute("SELECT fastapi_pg_sse.disconnect($1)", ada)
        with anyio.fail_after(30):
            while await stream.next_chunk() is not None:  # heartbeats, until the stream ends
                pass
        assert stream.revoked
