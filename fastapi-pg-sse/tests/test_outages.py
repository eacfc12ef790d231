"""What an operator meets on a bad day: a database that is down, and a migration not applied.
Each gets a clear answer and a line in the log that says why, never a traceback."""

import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import ExitStack

import anyio
import httpx
import pytest

from fastapi_pg_sse.testing import TEST_JWT_SECRET, migrated_database, open_stream, sign_token
from tests.app import FEED, STREAM
from tests.helpers import (
    connected,
    failed_start_up,
    running_kernel,
    serving,
    terminate_listener,
    wait_until,
)
from tests.proxy import blackhole_proxy

pytestmark = pytest.mark.anyio


@pytest.fixture
async def private_database_url(
    realtime_postgres_url: str, pytestconfig: pytest.Config
) -> AsyncIterator[str]:
    """A migrated database of this test's own, for a test that breaks its schema."""
    migrations = pytestconfig.rootpath / "tests" / "migrations"
    with ExitStack() as stack:
        yield await anyio.to_thread.run_sync(
            stack.enter_context, migrated_database(realtime_postgres_url, migrations)
        )
        await anyio.to_thread.run_sync(stack.close)


async def test_a_stream_opened_while_the_database_is_down_gets_a_503_and_one_log_line(
    realtime_database_url: str, pytestconfig: pytest.Config, capfd: pytest.CaptureFixture[str]
) -> None:
    async with blackhole_proxy(realtime_database_url) as (proxy, proxied_url):
        environment = {"DATABASE_URL": proxied_url, "REALTIME_RETRY_MILLISECONDS": "2500"}
        async with serving("tests.app:app", pytestconfig.rootpath, environment) as server:
            await proxy.stop()  # every connection to PostgreSQL is cut, and new ones refused
            headers = {"Authorization": f"Bearer {sign_token('dora')}"}
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                response = await client.get(STREAM, headers=headers)
    log = capfd.readouterr().err
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "3"
    assert response.json() == {"detail": "The event store is unavailable; retry later."}
    assert log.count("realtime stream refused: database unavailable") == 1
    assert "Traceback" not in log


async def test_a_stream_opened_while_the_database_network_is_silent_gets_a_503(
    realtime_database_url: str, pytestconfig: pytest.Config
) -> None:
    """The pooled connection left by a first stream stays open, but nothing answers on it: the
    query gives up after `REALTIME_POOL_TIMEOUT_SECONDS` rather than the kernel's TCP timeout."""
    async with blackhole_proxy(realtime_database_url) as (proxy, proxied_url):
        environment = {"DATABASE_URL": proxied_url, "REALTIME_POOL_TIMEOUT_SECONDS": "1"}
        async with serving("tests.app:app", pytestconfig.rootpath, environment) as server:
            async with open_stream(server.url + STREAM, sign_token("sid")):
                pass
            proxy.blackhole()
            headers = {"Authorization": f"Bearer {sign_token('sid')}"}
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                response = await client.get(STREAM, headers=headers)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "3"


async def test_start_up_fails_naming_the_migration_when_a_channel_has_no_table(
    realtime_postgres_url: str, pytestconfig: pytest.Config
) -> None:
    output = failed_start_up(
        "tests.app:app",
        pytestconfig.rootpath,
        {"DATABASE_URL": realtime_postgres_url, "REALTIME_JWT_SECRET": TEST_JWT_SECRET},
    )
    assert (
        "the database lacks table test_feed_events (of channel test_feed),"
        " function test_feed_emit() (of channel test_feed)"
    ) in output
    assert "_sse_channel.sql" in output
    assert "Application startup failed" in output


async def test_the_listener_backs_off_and_says_why_while_a_table_is_missing(
    private_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The connection succeeds each time, the LISTEN set-up does not: the delay between attempts
    grows all the same, and each attempt logs what is missing."""
    caplog.set_level(logging.INFO)
    table = FEED.events_table
    async with (
        connected(private_database_url) as connection,
        running_kernel(private_database_url) as realtime,
    ):
        await connection.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
        try:
            await terminate_listener(connection, os.getpid())

            async def three_attempts_failed() -> bool:
                return len(_retry_delays(caplog.text)) >= 3

            await wait_until(three_attempts_failed, "three attempts to listen failed")
            assert not realtime.listener.connected
        finally:
            await connection.execute(f"ALTER TABLE {table}_away RENAME TO {table}")

        async def reconnected() -> bool:
            return realtime.listener.connected

        await wait_until(reconnected, "the listener listens again")
        reconnects = realtime.metrics().listener_reconnects
    delays = _retry_delays(caplog.text)[:3]
    assert delays == sorted(delays), "the backoff was reset by a connection that did not listen"
    assert reconnects == 1


def _retry_delays(log: str) -> list[float]:
    pattern = (
        r"realtime listener cannot listen: the database lacks table test_feed_events \(of"
        r" channel test_feed\).*; retrying in ([0-9.]+) s"
    )
    return [float(delay) for delay in re.findall(pattern, log)]
