"""The embedded PostgreSQL listens on TCP loopback: the plugin's URL is an ordinary
`postgresql://postgres@127.0.0.1:<port>/postgres`, which a project's own settings accept as
pydantic's `PostgresDsn`; two pytest sessions at once each get a server of their own, and a port
taken before the server binds it is traded for another."""

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastapi_pg_sse import _loopback_postgres
from fastapi_pg_sse._loopback_postgres import LoopbackPostgres
from fastapi_pg_sse.testing import connected, free_port

SESSION_TEST = """\
import asyncio
from urllib.parse import urlsplit

from pydantic import PostgresDsn, TypeAdapter

from fastapi_pg_sse.testing import connected


def test_the_url_is_a_postgres_dsn_of_a_server_reached_over_tcp(realtime_postgres_url):
    TypeAdapter(PostgresDsn).validate_python(realtime_postgres_url)

    async def server_address():
        async with connected(realtime_postgres_url) as connection:
            return await connection.fetchval("SELECT host(inet_server_addr())")

    assert asyncio.run(server_address()) == "127.0.0.1"
    print("URL", realtime_postgres_url)
"""


def test_two_pytest_sessions_at_once_each_get_an_embedded_server_on_loopback_tcp(
    tmp_path: Path,
) -> None:
    """What the plugin gives a session without `DATABASE_URL`, while this session's own embedded
    server runs too: a `PostgresDsn` that asyncpg reaches over TCP, not a Unix socket."""
    (tmp_path / "test_url.py").write_text(SESSION_TEST, encoding="utf-8")
    environment = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    command = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-W", "ignore"]
    sessions = [
        subprocess.Popen(command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [session.communicate(timeout=300)[0] for session in sessions]
    assert [session.returncode for session in sessions] == [0, 0], outputs
    urls = {line.split()[-1] for output in outputs for line in output.splitlines() if "URL" in line}
    assert len(urls) == 2, outputs
    assert all(url.startswith("postgresql://postgres@127.0.0.1:") for url in urls), urls


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket() as listener:
        listener.bind((_loopback_postgres.HOST, 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_server_whose_port_is_taken_before_it_binds_it_starts_on_another(
    taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process may take the free port chosen before PostgreSQL binds it."""
    chosen = [taken_port]

    def the_taken_one_first() -> int:
        return chosen.pop() if chosen else free_port()

    monkeypatch.setattr(_loopback_postgres, "free_port", the_taken_one_first)
    with tempfile.TemporaryDirectory(prefix="realtime-postgres-") as folder:
        server = LoopbackPostgres(Path(folder) / "data")
        try:

            async def server_port() -> int:
                async with connected(server.url) as connection:
                    port: int = await connection.fetchval("SELECT inet_server_port()")
                return port

            assert asyncio.run(server_port()) == server.port != taken_port
        finally:
            server.cleanup()
        assert not (Path(folder) / "data").exists()
