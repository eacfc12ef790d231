"""The plugin migrates the test database, never another one: an Alembic env.py that builds its
URL from settings of its own has its connection to their database refused before it opens, and
the session stops saying what env.py needs, both databases untouched; one that uses the URL it is
given (`sqlalchemy.url`, or `DATABASE_URL`) migrates the test database."""

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest
from anyio.from_thread import start_blocking_portal

from fastapi_pg_sse.testing import ENV_PY_URL, MigratedElsewhere, alembic_upgrade, connected
from tests.helpers import new_database
from tests.test_schema import ALEMBIC_ENV, ALEMBIC_PROJECTS, alembic_project
from tests.test_testing import _run_pytest, _tiny_project

CONNECTS_TO_SQLALCHEMY_URL = (
    '    engine = create_async_engine(context.config.get_main_option("sqlalchemy.url"))\n'
)


def env_py(connects: str) -> str:
    """The env.py of `alembic_project`, connecting as `connects` (lines of `main()`) does."""
    assert CONNECTS_TO_SQLALCHEMY_URL in ALEMBIC_ENV
    return "import os\n" + ALEMBIC_ENV.replace(CONNECTS_TO_SQLALCHEMY_URL, connects)


ENV_OF_ITS_OWN = env_py(
    "    own = 'postgresql+asyncpg://{POSTGRES_USER}@{POSTGRES_SERVER}:{POSTGRES_PORT}/{POSTGRES_DB}'\n"
    "    engine = create_async_engine(own.format_map(os.environ))\n"
)
"""As FastAPI's full-stack template builds its URL: from settings of its own."""
ENV_AS_THE_REFUSAL_SAYS = env_py(
    f"    config = context.config\n{ENV_PY_URL}\n    engine = create_async_engine(url)\n"
)
ENV_OF_A_VERSION_TABLE_OF_ITS_OWN = ALEMBIC_ENV.replace(
    "target_metadata=None)", 'target_metadata=None, version_table="schema_history")'
)
assert ENV_OF_A_VERSION_TABLE_OF_ITS_OWN != ALEMBIC_ENV
"""Alembic records its head elsewhere than in `alembic_version`: migrated all the same."""
ENV_OF_DATABASE_URL = env_py(
    '    url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+asyncpg://", 1)\n'
    "    engine = create_async_engine(url)\n"
)


def own_settings_naming(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point `ENV_OF_ITS_OWN`'s settings at `database_url`."""
    url = urlsplit(database_url)
    monkeypatch.setenv("POSTGRES_SERVER", url.hostname or "")
    monkeypatch.setenv("POSTGRES_PORT", str(url.port))
    monkeypatch.setenv("POSTGRES_USER", url.username or "")
    monkeypatch.setenv("POSTGRES_DB", url.path.lstrip("/"))


@pytest.fixture
def empty_databases(realtime_postgres_url: str) -> Iterator[Callable[[], str]]:
    """New databases without the runtime's schema, dropped at the end of the test."""
    with start_blocking_portal() as portal, ExitStack() as databases:

        def new() -> str:
            empty = new_database(realtime_postgres_url, schema=False)
            return databases.enter_context(portal.wrap_async_context_manager(empty))

        yield new


def test_an_env_py_that_connects_to_another_database_is_refused_both_untouched(
    tmp_path: Path, empty_databases: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    test_database, developers_database = empty_databases(), empty_databases()
    config = alembic_project(tmp_path, ALEMBIC_PROJECTS["new"])
    (tmp_path / "migrations" / "env.py").write_text(ENV_OF_ITS_OWN, encoding="utf-8")
    own_settings_naming(developers_database, monkeypatch)

    with pytest.raises(MigratedElsewhere) as refused:
        alembic_upgrade(test_database, config)

    developers_name = urlsplit(developers_database).path.removeprefix("/")
    assert str(refused.value) == (
        "`alembic -c alembic.ini upgrade head` did not migrate the test database"
        f" {test_database}: your env.py connected to database {developers_name!r} instead, the"
        " one its own settings name, and the tests refused that connection before anything ran"
        " there. env.py must connect to the URL it is given:"
        ' config.get_main_option("sqlalchemy.url") when it is set (the tests set it to their'
        " database, with the driver alembic.ini's URL names, postgresql+asyncpg if none), else"
        ' os.environ["DATABASE_URL"] (set to it too). Where env.py builds its URL:\n\n'
        '    url = config.get_main_option("sqlalchemy.url")  # the tests set it to their database\n'
        "    if not url:\n"
        '        url = os.environ["DATABASE_URL"]  # or where your env.py found its URL so far\n'
    )

    async def tables(url: str) -> list[str]:
        async with connected(url) as connection:
            names: list[str] = await connection.fetchval(
                "SELECT coalesce(array_agg(table_schema || '.' || table_name ORDER BY 1), '{}')"
                " FROM information_schema.tables"
                " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            )
        return names

    assert anyio.run(tables, test_database) == []
    assert anyio.run(tables, developers_database) == [], "the developer's database was migrated"


ENV_OF_NO_DATABASE = env_py(
    "    own = 'postgresql+asyncpg://{POSTGRES_USER}@{POSTGRES_SERVER}:{POSTGRES_PORT}'\n"
    "    engine = create_async_engine(own.format_map(os.environ))\n"
)
"""A URL that names no database: asyncpg then connects to the one named after the user."""


def test_an_env_py_whose_url_names_no_database_is_refused_before_it_connects(
    tmp_path: Path,
    realtime_postgres_url: str,
    empty_databases: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    test_database = empty_databases()
    config = alembic_project(tmp_path, ALEMBIC_PROJECTS["new"])
    (tmp_path / "migrations" / "env.py").write_text(ENV_OF_NO_DATABASE, encoding="utf-8")
    own_settings_naming(realtime_postgres_url, monkeypatch)

    with pytest.raises(MigratedElsewhere) as refused:
        alembic_upgrade(test_database, config)

    assert "your env.py connected to a database its URL does not name instead" in str(refused.value)

    async def has_alembic_version(url: str) -> bool:
        async with connected(url) as connection:
            return bool(
                await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
            )

    user = urlsplit(realtime_postgres_url).username or ""
    users_database = urlsplit(realtime_postgres_url)._replace(path=f"/{user}").geturl()
    assert not anyio.run(has_alembic_version, users_database)


def _with_password(database_url: str, password: str) -> str:
    url = urlsplit(database_url)
    host = url.netloc.rpartition("@")[2]
    return url._replace(netloc=f"{url.username}:{password}@{host}").geturl()


def test_the_plugin_stops_the_session_naming_the_test_database_without_its_password(
    tmp_path: Path,
    realtime_postgres_url: str,
    empty_databases: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = alembic_project(tmp_path, ALEMBIC_PROJECTS["new"])
    (tmp_path / "migrations" / "env.py").write_text(ENV_OF_ITS_OWN, encoding="utf-8")
    own_settings_naming(empty_databases(), monkeypatch)
    project = _tiny_project(tmp_path, f'realtime_alembic_config = "{config.name}"\n', {})
    server = urlsplit(_with_password(realtime_postgres_url, "sekret"))

    ran = _run_pytest(project, server.geturl())

    assert ran.returncode != 0
    said = re.escape(
        "fastapi-pg-sse: `alembic -c alembic.ini upgrade head` did not migrate the test"
        f" database postgresql://{server.username}:***@{server.hostname}:{server.port}/"
    )
    assert re.search(said + r"realtime_test_[0-9a-f]{12}: your env.py connected to", ran.stdout)
    assert ENV_PY_URL.splitlines()[0] in ran.stdout, ran.stdout
    assert "sekret" not in ran.stdout + ran.stderr
    assert "2 errors" in ran.stdout


@pytest.mark.parametrize(
    "env",
    [ENV_AS_THE_REFUSAL_SAYS, ENV_OF_DATABASE_URL, ENV_OF_A_VERSION_TABLE_OF_ITS_OWN],
    ids=["sqlalchemy.url-as-the-refusal-says", "DATABASE_URL", "a-version-table-of-its-own"],
)
def test_an_env_py_that_uses_the_url_it_is_given_migrates_the_test_database(
    tmp_path: Path,
    realtime_postgres_url: str,
    empty_databases: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
    env: str,
) -> None:
    """Its own settings (here naming another database) are not looked at under the tests."""
    config = alembic_project(tmp_path, ALEMBIC_PROJECTS["new"])
    (tmp_path / "migrations" / "env.py").write_text(env, encoding="utf-8")
    own_settings_naming(empty_databases(), monkeypatch)
    project = _tiny_project(tmp_path, f'realtime_alembic_config = "{config.name}"\n', {})

    ran = _run_pytest(project, realtime_postgres_url)

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "2 passed" in ran.stdout


def test_the_readme_shows_the_env_py_the_refusal_asks_for() -> None:
    readme = Path(__file__).resolve().parents[1] / "README.md"
    section = readme.read_text(encoding="utf-8").split("## Testing", 1)[1].split("\n## ", 1)[0]
    assert ENV_PY_URL in section
