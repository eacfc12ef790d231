"""What an operator meets on a bad day: a database that is down, and a schema not migrated (or
migrated by a newer runtime). Each gets a clear answer and a line in the log that says why and
what to do."""

import logging
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest

from fastapi_pg_sse.schema import FIX, SchemaVersion, creation_sql, migration_sql
from fastapi_pg_sse.testing import (
    TEST_JWT_SECRET,
    connected,
    emit_event,
    next_event,
    open_stream,
    sign_token,
)
from tests.app import FEED, STREAM
from tests.helpers import (
    emit,
    failed_start_up,
    new_database,
    new_users,
    running_kernel,
    serving,
    subscribe,
    terminate_listener,
    wait_until,
)
from tests.proxy import blackhole_proxy

pytestmark = pytest.mark.anyio


@pytest.fixture
async def private_database_url(realtime_postgres_url: str) -> AsyncIterator[str]:
    """A database with the runtime's schema, of this test's own, for a test that breaks it."""
    async with new_database(realtime_postgres_url) as url:
        yield url


async def _record_version(database_url: str, version: str) -> None:
    """Make the database's schema look migrated to `version`, and to nothing newer."""
    async with connected(database_url) as connection:
        await connection.execute(
            "DELETE FROM fastapi_pg_sse.migrations;"
            f" INSERT INTO fastapi_pg_sse.migrations (version) VALUES ('{version}')"
        )


OUTAGE_COMMENT = ": the event store is unavailable: reconnect after the retry hint"


async def test_a_stream_opened_while_the_database_is_down_ends_at_once_with_where_to_resume(
    realtime_database_url: str, pytestconfig: pytest.Config, capfd: pytest.CaptureFixture[str]
) -> None:
    """A 200 that an EventSource reconnects after (it gives up for good on a 503), carrying the
    retry hint and the newest id the listener saw: the reconnection resumes after it."""
    async with blackhole_proxy(realtime_database_url) as (proxy, proxied_url):
        environment = {"DATABASE_URL": proxied_url, "REALTIME_RETRY_MILLISECONDS": "2500"}
        async with serving("tests.app:app", pytestconfig.rootpath, environment) as server:
            async with open_stream(server.url + STREAM, sign_token("dora")) as dora:
                newest = await emit_event(proxied_url, FEED, "dora")
                assert (await next_event(dora)).id == str(newest)
            await proxy.stop()  # every connection to PostgreSQL is cut, and new ones refused
            headers = {"Authorization": f"Bearer {sign_token('dora')}"}
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                response = await client.get(STREAM, headers=headers)
    log = capfd.readouterr().err
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store, private"
    assert response.text == f"{OUTAGE_COMMENT}\nid: {newest}\nretry: 2500\n\n"
    assert re.fullmatch(_readme_outage_frame(), response.text), "as the README shows it"
    assert log.count("realtime stream ended at once: database unavailable") == 1
    assert "Traceback" not in log


async def test_a_forged_notification_does_not_move_where_a_stream_opened_in_an_outage_resumes(
    realtime_database_url: str, pytestconfig: pytest.Config
) -> None:
    """Any role that can connect may NOTIFY: an id a notification claims must not become the id
    of an outage answer, or the client, resuming after it, would skip every event committed up
    to it, without a `reset`. The answer carries the newest id of the table."""
    (fay,) = new_users("fay")
    async with blackhole_proxy(realtime_database_url) as (proxy, proxied_url):
        environment = {"DATABASE_URL": proxied_url}
        async with serving("tests.app:app", pytestconfig.rootpath, environment) as server:
            async with (
                open_stream(server.url + STREAM, sign_token(fay)) as stream,
                connected(realtime_database_url) as forger,
            ):
                forged = f"{10**17} {FEED.name} {fay}"
                await forger.execute("SELECT pg_notify('fastapi_pg_sse', $1)", forged)
                # Notifications are handled in order: the event's comes after the forged one.
                newest = await emit_event(realtime_database_url, FEED, fay)
                assert (await next_event(stream)).id == str(newest)
            await proxy.stop()
            headers = {"Authorization": f"Bearer {sign_token(fay)}"}
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                response = await client.get(STREAM, headers=headers)
    assert response.status_code == 200
    assert response.text == f"{OUTAGE_COMMENT}\nid: {newest}\nretry: 3000\n\n"


def _readme_outage_frame() -> str:
    """The README's frame of a stream opened during an outage (section "What it promises"), as a
    pattern: its numbers stand for any."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## What it promises", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"\n  ```text\n(.*?)  ```\n", section, re.DOTALL)
    assert block is not None, "the README shows the frame in a text block"
    frame = "".join(line.removeprefix("  ") for line in block.group(1).splitlines(keepends=True))
    return re.sub(r"[0-9]+", "[0-9]+", re.escape(frame))


async def test_a_stream_resuming_while_the_database_network_is_silent_ends_at_once_with_its_id(
    realtime_database_url: str, pytestconfig: pytest.Config
) -> None:
    """The pooled connection left by a first stream stays open, but nothing answers on it: the
    query gives up after `REALTIME_POOL_TIMEOUT_SECONDS` rather than the kernel's TCP timeout,
    and the stream ends at once, keeping the id the client resumes after."""
    async with blackhole_proxy(realtime_database_url) as (proxy, proxied_url):
        environment = {"DATABASE_URL": proxied_url, "REALTIME_POOL_TIMEOUT_SECONDS": "1"}
        async with serving("tests.app:app", pytestconfig.rootpath, environment) as server:
            async with open_stream(server.url + STREAM, sign_token("sid")):
                pass
            proxy.blackhole()
            headers = {"Authorization": f"Bearer {sign_token('sid')}", "Last-Event-ID": "7"}
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                response = await client.get(STREAM, headers=headers)
    assert response.status_code == 200
    assert response.text == f"{OUTAGE_COMMENT}\nid: 7\nretry: 3000\n\n"


async def test_the_listener_logs_each_loss_of_its_connection_in_one_line_without_a_traceback(
    realtime_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Its backend terminated while it reads (`pg_terminate_backend`, as a failover does), asyncpg
    may raise `InternalClientError` ("cannot switch to state 12; another operation (2) is in
    progress") rather than a connection error: one line all the same. It takes chance: forty
    terminations find it about one run in three."""
    caplog.set_level(logging.INFO, logger="fastapi_pg_sse")
    [user] = new_users("tess")
    async with (
        running_kernel(realtime_database_url) as realtime,
        connected(realtime_database_url) as killer,
        connected(realtime_database_url) as emitter,
    ):
        subscribe(realtime, user)  # for the listener to read its events, as it reconnects

        async def emitting() -> None:
            while True:
                await emit(emitter, FEED, user, "tick", {})

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(emitting)
            for terminated in range(1, 41):
                await terminate_listener(killer, os.getpid())

                async def reconnected(count: int = terminated) -> bool:
                    return realtime.listener.reconnects >= count

                await wait_until(reconnected, f"the listener reconnected {terminated} times")
            tasks.cancel_scope.cancel()
    failures = [record.getMessage() for record in caplog.records if record.exc_info]
    lost = [r for r in caplog.records if "listener lost its connection" in r.getMessage()]
    assert failures == []
    assert len(lost) >= 40


def _start_up_refusal(output: str) -> str:
    """What the one line of uvicorn's output that ends its traceback says: why the app did not
    start."""
    assert "Application startup failed" in output, output
    prefix = "fastapi_pg_sse.schema.SchemaMismatch: "
    [line] = [line for line in output.splitlines() if line.startswith(prefix)]
    return line.removeprefix(prefix)


async def test_start_up_is_refused_naming_the_fix_on_a_database_without_the_schema(
    realtime_postgres_url: str, pytestconfig: pytest.Config
) -> None:
    async with new_database(realtime_postgres_url, schema=False) as empty:
        output = failed_start_up(
            "tests.app:app",
            pytestconfig.rootpath,
            {"DATABASE_URL": empty, "REALTIME_JWT_SECRET": TEST_JWT_SECRET},
        )
    assert _start_up_refusal(output) == (
        "the database has no fastapi-pg-sse schema: apply the migrations `scaffold sync` writes"
        " (`alembic upgrade head` in an Alembic project, else your SQL migrations), or, in a"
        " project that keeps no migrations, run `python -m fastapi_pg_sse schema --apply`"
    )


@pytest.mark.parametrize(
    ("version", "refusal"),
    [
        ("1.0", f"the database's fastapi-pg-sse schema is 1.0, not 1.5: {FIX}"),
        ("1.4", f"the database's fastapi-pg-sse schema is 1.4, not 1.5: {FIX}"),
        (
            "2.0",
            "the database's fastapi-pg-sse schema is 2.0, newer than 1.x: upgrade"
            " fastapi-pg-sse to a version that supports it",
        ),
    ],
    ids=["older", "the-one-before", "newer-major"],
)
async def test_start_up_is_refused_on_a_schema_older_or_of_a_newer_major_version(
    private_database_url: str, pytestconfig: pytest.Config, version: str, refusal: str
) -> None:
    await _record_version(private_database_url, version)
    output = failed_start_up(
        "tests.app:app",
        pytestconfig.rootpath,
        {"DATABASE_URL": private_database_url, "REALTIME_JWT_SECRET": TEST_JWT_SECRET},
    )
    assert _start_up_refusal(output) == refusal


async def test_a_schema_of_a_newer_minor_version_is_accepted_and_served(
    private_database_url: str, pytestconfig: pytest.Config
) -> None:
    """A minor version only adds to the schema: what this runtime uses is still there."""
    await _record_version(private_database_url, "1.9")
    environment = {"DATABASE_URL": private_database_url, "REALTIME_JWT_SECRET": TEST_JWT_SECRET}
    async with (
        serving("tests.app:app", pytestconfig.rootpath, environment) as server,
        open_stream(server.url + STREAM, sign_token("mina")) as mina,
        connected(private_database_url) as connection,
    ):
        event_id = await emit(connection, FEED, "mina", "on_1_9")
        event = await next_event(mina)
    assert (event.id, event.event) == (str(event_id), "on_1_9")


async def test_a_database_upgraded_to_the_schema_this_runtime_needs_is_served(
    realtime_postgres_url: str, pytestconfig: pytest.Config
) -> None:
    """A database created at 1.2, with a trigger, then upgraded to 1.3, 1.4 and 1.5 (which this
    runtime needs): its emits and its trigger's events stream."""
    async with new_database(realtime_postgres_url, schema=False) as url:
        async with connected(url) as connection:
            await connection.execute(
                creation_sql(SchemaVersion(1, 2)) + "CREATE TABLE notes (owner text NOT NULL);"
                f" SELECT fastapi_pg_sse.create_trigger('{FEED.name}', 'notes', 'owner', 'note')"
            )
            await connection.execute(migration_sql(SchemaVersion(1, 3)))
            await connection.execute(migration_sql(SchemaVersion(1, 4)))
            await connection.execute(migration_sql(SchemaVersion(1, 5)))
        environment = {"DATABASE_URL": url, "REALTIME_JWT_SECRET": TEST_JWT_SECRET}
        async with (
            serving("tests.app:app", pytestconfig.rootpath, environment) as server,
            open_stream(server.url + STREAM, sign_token("mina")) as mina,
            connected(url) as connection,
        ):
            await emit(connection, FEED, "mina", "on_1_5")
            await connection.execute("INSERT INTO notes VALUES ('mina')")
            events = [await next_event(mina) for _ in range(2)]
            version = await connection.fetchval(
                "SELECT max(version) FROM fastapi_pg_sse.migrations"
            )
    assert [event.event for event in events] == ["on_1_5", "note_created"]
    assert version == "1.5"


async def test_the_listener_backs_off_and_says_why_while_the_schema_is_behind(
    private_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The connection succeeds each time, the schema check does not: the delay between
    attempts grows all the same, and each attempt logs what to do."""
    caplog.set_level(logging.INFO)
    async with (
        connected(private_database_url) as connection,
        running_kernel(private_database_url) as realtime,
    ):
        await _record_version(private_database_url, "1.0")
        try:
            await terminate_listener(connection, os.getpid())

            async def three_attempts_failed() -> bool:
                return len(_retry_delays(caplog.text)) >= 3

            await wait_until(three_attempts_failed, "three attempts to listen failed")
            assert not realtime.listener.connected
        finally:
            await _record_version(private_database_url, "1.5")

        async def reconnected() -> bool:
            return realtime.listener.connected

        await wait_until(reconnected, "the listener listens again")
        reconnects = realtime.metrics().listener_reconnects
    delays = _retry_delays(caplog.text)[:3]
    assert delays == sorted(delays), "the backoff was reset by a connection that did not listen"
    assert reconnects == 1


def _retry_delays(log: str) -> list[float]:
    pattern = (
        r"realtime listener cannot listen: the database's fastapi-pg-sse schema is 1\.0, not"
        r" 1\.5: apply the migrations `scaffold sync` writes \(`alembic upgrade head` in an"
        r" Alembic project, else your SQL migrations\), or, in a project that keeps no"
        r" migrations, run `python -m fastapi_pg_sse schema --apply`; retrying in ([0-9.]+) s"
    )
    return [float(delay) for delay in re.findall(pattern, log)]
