"""Everything the demo runs on, set up in order and torn down in reverse: PostgreSQL, the
generated project in a temporary folder, its migrated database, and the app serving it."""

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from fastapi_pg_sse.testing import embedded_postgres, migrated_database

from demo.project import APP, REPO, TOKEN_TYPE, prepare_project
from demo.server import AppServer


@dataclass(frozen=True)
class Demo:
    """The running demo: its project, database and server."""

    project: Path
    database_url: str
    server: AppServer

    def page_url(self, page: str = "", **query: str) -> str:
        """A page of the demo on the server's main origin (`user.html`, ...)."""
        return _with_query(f"{self.server.url}/demo/{page}", query)

    def other_origin_url(self, page: str, **query: str) -> str:
        """A page of the demo served from the other origin (`localhost`)."""
        return _with_query(f"{self.server.other_origin}/demo/{page}", query)


@contextmanager
def postgres() -> Iterator[str]:
    """`DATABASE_URL` when it is set, otherwise an embedded PostgreSQL server for the block."""
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    with embedded_postgres() as url:
        yield url


@contextmanager
def running_demo(postgres_url: str, port: int, *, echo: bool = False) -> Iterator[Demo]:
    """The demo on a new database of `postgres_url`, served on `port` with CORS allowing its
    two origins, until the block ends."""
    with tempfile.TemporaryDirectory(prefix="scaffold-demo-") as folder:
        project = prepare_project(Path(folder) / "shop", echo=echo)
        with migrated_database(postgres_url, project / "migrations") as database_url:
            origins = f"http://127.0.0.1:{port},http://localhost:{port}"
            environment = {
                # For `demo.app` (`shop` comes from the project's folder), before any path the
                # caller's PYTHONPATH names (a worktree's packages, say).
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(REPO), os.environ.get("PYTHONPATH")])
                ),
                "DATABASE_URL": database_url,
                "REALTIME_JWT_SECRET": secrets.token_urlsafe(32),
                "REALTIME_JWT_TYPE": TOKEN_TYPE,
                "REALTIME_CORS_ORIGINS": origins,
            }
            server = AppServer(APP, project, port, environment)
            server.start()
            try:
                yield Demo(project, database_url, server)
            finally:
                server.stop()


def _with_query(url: str, query: dict[str, str]) -> str:
    return f"{url}?{urlencode(query)}" if query else url
