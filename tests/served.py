"""A generated shop on a database of its own, served by a real uvicorn process."""

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import jwt

SECRET = "end-to-end-signing-key-of-at-least-32-bytes"


@dataclass(frozen=True)
class ServedShop:
    url: str
    database_url: str
    process: "subprocess.Popen[bytes]"

    def token(self, user: str) -> str:
        return jwt.encode({"sub": user, "exp": int(time.time()) + 600}, SECRET, "HS256")


@contextmanager
def serve_shop(project: Path, postgres_url: str, **environment: str) -> Iterator[ServedShop]:
    """Create a database, apply the project's migrations, and serve the project's app."""
    name = f"shop_e2e_{uuid.uuid4().hex[:10]}"
    asyncio.run(_execute(postgres_url, f'CREATE DATABASE "{name}"'))
    database_url = urlsplit(postgres_url)._replace(path=f"/{name}").geturl()
    try:
        for migration in sorted((project / "migrations").glob("*.sql")):
            asyncio.run(_execute(database_url, migration.read_text()))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REALTIME_JWT_SECRET": SECRET,
            **environment,
        }
        command = [sys.executable, "-m", "uvicorn", "shop.main:app", "--port", str(port)]
        with subprocess.Popen(command, cwd=project, env=env) as process:
            try:
                shop = ServedShop(f"http://127.0.0.1:{port}", database_url, process)
                _wait_until_serving(shop)
                yield shop
            finally:
                # Open streams, even stalled ones, must not hold the server up.
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    raise AssertionError("uvicorn did not stop within 10 s of SIGTERM") from None
    finally:
        asyncio.run(_execute(postgres_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


async def _execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _wait_until_serving(shop: ServedShop) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert shop.process.poll() is None, f"uvicorn exited with {shop.process.returncode}"
        try:
            httpx.get(f"{shop.url}/health", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"uvicorn did not serve {shop.url} within 30 seconds")
