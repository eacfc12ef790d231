"""End to end: the real CLI on a copy of `examples/shop`, then the result run for real.

The generated project's own test suite runs in a subprocess against real PostgreSQL, and the
application is also started under uvicorn and driven from outside with a streaming SSE client.
"""

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import asyncpg
import httpx
import jwt
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from tests.golden_cases import generate

SECRET = "end-to-end-signing-key-of-at-least-32-bytes"
STREAM = "/inventory/events/stock/stream"


def test_generated_project_passes_its_own_tests_on_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    project = generate("second-channel", tmp_path / "shop")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env={**os.environ, "DATABASE_URL": postgres_url, "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed is not None and int(passed.group(1)) >= 20, result.stdout
    assert "failed" not in result.stdout and "skipped" not in result.stdout


@pytest.fixture
def served_shop(tmp_path: Path, postgres_url: str) -> Iterator[tuple[str, str]]:
    """A generated shop on its own database, served by uvicorn: (base url, database url)."""
    project = generate("stock-in-inventory", tmp_path / "shop")
    name = f"shop_e2e_{uuid.uuid4().hex[:10]}"
    asyncio.run(_execute(postgres_url, f'CREATE DATABASE "{name}"'))
    database_url = urlsplit(postgres_url)._replace(path=f"/{name}").geturl()
    for migration in sorted((project / "migrations").glob("*.sql")):
        asyncio.run(_execute(database_url, migration.read_text()))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {**os.environ, "DATABASE_URL": database_url, "JWT_SECRET": SECRET}
    command = [sys.executable, "-m", "uvicorn", "shop.main:app", "--port", str(port)]
    with subprocess.Popen(command, cwd=project, env=environment) as server:
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_until_serving(base_url, server)
            yield base_url, database_url
        finally:
            server.terminate()
            server.wait(timeout=30)
            asyncio.run(_execute(postgres_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.mark.anyio
async def test_an_event_emitted_in_sql_reaches_only_its_users_stream(
    served_shop: tuple[str, str],
) -> None:
    base_url, database_url = served_shop
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
        _stream(client, "alice") as alice,
        _stream(client, "bob") as bob,
    ):
        connection = await asyncpg.connect(database_url)
        try:
            for user, stock in (("alice", 3), ("bob", 5)):
                await connection.execute(
                    "SELECT inventory_stock_emit($1, 'stock_updated', $2::jsonb)",
                    user,
                    json.dumps({"newStock": stock}),
                )
        finally:
            await connection.close()
        alice_event, bob_event = await _next_event(alice), await _next_event(bob)
    assert (alice_event.event, json.loads(alice_event.data)) == ("stock_updated", {"newStock": 3})
    assert json.loads(bob_event.data) == {"newStock": 5}, "bob received another user's event"


@asynccontextmanager
async def _stream(
    client: httpx.AsyncClient, user: str
) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
    """An open stream, authenticated the way a browser's EventSource can: in the query."""
    token = jwt.encode({"sub": user, "exp": int(time.time()) + 300}, SECRET, "HS256")
    params = {"access_token": token}
    async with aconnect_sse(client, "GET", STREAM, params=params) as source:
        source.response.raise_for_status()
        yield source.aiter_sse()


async def _next_event(events: AsyncIterator[ServerSentEvent]) -> ServerSentEvent:
    with anyio.fail_after(10):
        async for event in events:
            if event.data:
                return event
    raise AssertionError("the stream ended")


async def _execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _wait_until_serving(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, f"uvicorn exited with {server.returncode}"
        try:
            httpx.get(f"{url}/health", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"uvicorn did not serve {url} within 30 seconds")
