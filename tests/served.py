"""A generated shop on a database of its own, served by a real uvicorn process.

The runtime's test helpers do the work; the project's own auth dependency, if any, stays in place.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi_pg_sse.testing import ServedApp, migrated_database, serve


@contextmanager
def serve_shop(project: Path, postgres_url: str, **environment: str) -> Iterator[ServedApp]:
    """Create a database, apply the project's migrations, and serve the project's app."""
    with (
        migrated_database(postgres_url, project / "migrations") as database_url,
        serve("shop.main:app", project, {"DATABASE_URL": database_url, **environment}) as server,
    ):
        yield ServedApp(server, database_url)
