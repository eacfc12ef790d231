"""The whole life of two channels on each realistic project of `tests/corpus/`.

Each folder there is a small project of a shape real FastAPI services have. On each: `init`
where the project has no `[tool.scaffold]` table yet, a channel without a trigger and one with,
`check`, the generated project's own tests on PostgreSQL, the removal of both channels, `check`
again, and at last every migration (the runtime's schema, the trigger, its removal) applied to a
new database (with `alembic upgrade head` where the project uses Alembic).
"""

import asyncio
import shutil
import tomllib
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from fastapi_pg_sse.schema import newest_version
from fastapi_pg_sse.testing import ENV_PY_URL, alembic_migrated_database, migrated_database

from tests.helpers import (
    REPO,
    channel_test_count,
    failed_generated_tests,
    run_generated_tests,
    run_scaffold,
)

CORPUS = REPO / "tests" / "corpus"


@dataclass(frozen=True)
class Shape:
    """What a corpus project is, and the trigger its second channel gets."""

    what: str
    trigger: tuple[str, ...]
    migrations: str
    """The project's folder of migrations, as `init` should find it."""
    alembic: bool = False
    """Whether they are Alembic revisions (configured by `alembic.ini`) rather than SQL files."""
    init: tuple[str, ...] = ()
    """Options of `scaffold init`."""
    environment: tuple[tuple[str, str], ...] = ()
    """The environment the project's tests run in, its own settings."""
    group_trigger: tuple[str, ...] = ()
    """The trigger of a third channel, whose events go to a group; none: no third channel."""
    own_url_env_py: bool = False
    """Whether its Alembic env.py builds its URL from settings of its own: the generated tests
    then refuse to run, and pass once env.py is written as their refusal says."""

    def migrated(self, project: Path, postgres_url: str) -> AbstractContextManager[str]:
        """A new database with every migration of `project` applied, as a URL."""
        if self.alembic:
            return alembic_migrated_database(postgres_url, project / "alembic.ini")
        return migrated_database(postgres_url, project / self.migrations)


SHAPES = {
    "src_layout_orders": Shape(
        "src/ layout, an app module that already includes routers, a dev extra, migrations in"
        " db/migrations, and an orders table with NOT NULL columns, an enum, a CHECK, a foreign"
        " key to customers as its user column, and a column added by a later migration",
        ("--table", "orders", "--user-column", "customer_id"),
        "db/migrations",
    ),
    "factory_ledger": Shape(
        "an app factory (`uvicorn --factory`) that names its app `application` and includes a"
        " router through its module, a [dependency-groups] dev group, fastapi>=0.110 (too low),"
        " and a transfers table whose user column is a uuid referencing users; events carry"
        " chosen columns",
        ("--table", "transfers", "--user-column", "sender_id", "--columns", "id,amount,memo"),
        "migrations",
    ),
    "alembic_shop": Shape(
        "the example shop migrated with Alembic (async env.py, asyncpg), its first revision"
        " creating baskets",
        ("--table", "baskets", "--user-column", "user_id"),
        "alembic/versions",
        alembic=True,
    ),
    "fullstack_blog": Shape(
        "FastAPI's full-stack template as its backend comes (pydantic-settings read from"
        " POSTGRES_*, a DATABASE_URL validated as PostgresDsn, its API under /api/v1, an"
        " HTTPException handler of its own, requires-python >=3.10, pytest >=7.4.3 in a dev group),"
        " with an Alembic env.py that builds its URL from those settings, tokens that carry the"
        " user id in a user_id claim under a Token scheme, and a comment table whose events go"
        " to the author of the commented article, and to the group named by that author",
        ("--table", "comment", "--user-column", "article_id.author_id"),
        "app/alembic/versions",
        alembic=True,
        init=("--prefix", "/api/v1"),
        environment=(("REALTIME_JWT_USER_CLAIM", "user_id"), ("REALTIME_AUTH_SCHEME", "Token")),
        group_trigger=("--table", "comment", "--group-column", "article_id.author_id"),
        own_url_env_py=True,
    ),
    "poetry_blog": Shape(
        "a Poetry 1 project (no [project] table: [tool.poetry.dependencies] with python ^3.10, an"
        " old-but-allowable fastapi >=0.100,<1, an inline-table uvicorn, and a dev group) whose"
        " posts table has its author as user column, and as the group of the author's followers",
        ("--table", "posts", "--user-column", "author_id"),
        "migrations",
        group_trigger=("--table", "posts", "--group-column", "author_id"),
    ),
}
ENV_PY_OWN_URL = """\
def get_url() -> str:
    return str(settings.SQLALCHEMY_DATABASE_URI)
"""
ENV_PY_URL_GIVEN = f"""\
def get_url() -> str:
{ENV_PY_URL.replace('os.environ["DATABASE_URL"]', "str(settings.SQLALCHEMY_DATABASE_URI)")}
    return url
"""
"""`get_url` of the template's env.py, as the generated tests' refusal asks it to be."""
NOTICE = ("Notice", "in", "accounts")
ORDER = ("Order", "in", "sales")
FEED = ("Feed", "in", "sales")


def test_every_corpus_project_has_a_shape() -> None:
    """A project folder without its entry (or an entry without its folder) would test nothing."""
    assert sorted(path.name for path in CORPUS.iterdir() if path.is_dir()) == sorted(SHAPES)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_two_channels_live_and_go_on_a_real_project(
    name: str, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shape = SHAPES[name]
    project = Path(shutil.copytree(CORPUS / name, tmp_path / name))
    assert "scaffold" not in tomllib.loads((project / "pyproject.toml").read_text())["tool"]

    for variable, value in shape.environment:
        monkeypatch.setenv(variable, value)
    _scaffold(project, "init", *shape.init)
    _scaffold(project, "create-sse-channel", *NOTICE)
    _scaffold(project, "create-sse-channel", *ORDER, *shape.trigger)
    if shape.group_trigger:
        _scaffold(project, "create-sse-channel", *FEED, *shape.group_trigger)
    assert _scaffold(project, "check").startswith("In sync")
    if shape.own_url_env_py:
        refused = failed_generated_tests(project, postgres_url, tmp_path / "refused")
        assert "your env.py connected to database 'app' instead" in refused
        env_py = project / "app" / "alembic" / "env.py"
        assert ENV_PY_OWN_URL in env_py.read_text()
        env_py.write_text(env_py.read_text().replace(ENV_PY_OWN_URL, ENV_PY_URL_GIVEN))
    passed = run_generated_tests(project, postgres_url, tmp_path / "basetemp")
    assert passed >= channel_test_count(project) > 0

    _scaffold(project, "remove-sse-channel", *NOTICE)
    _scaffold(project, "remove-sse-channel", *ORDER)
    if shape.group_trigger:
        _scaffold(project, "remove-sse-channel", *FEED)
    assert _scaffold(project, "check").startswith("In sync")
    suffix = "*.py" if shape.alembic else "*.sql"
    before = list((CORPUS / name / shape.migrations).glob(suffix))
    written = len(list((project / shape.migrations).glob(suffix))) - len(before)
    triggers = 2 if shape.group_trigger else 1
    assert written == 1 + 2 * triggers, "the runtime's schema, each trigger and its removal"
    with shape.migrated(project, postgres_url) as database_url:
        assert asyncio.run(_schema_and_triggers(database_url)) == (str(newest_version()), 0)


def _scaffold(project: Path, *arguments: str) -> str:
    result = run_scaffold(*arguments, cwd=project)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


async def _schema_and_triggers(database_url: str) -> tuple[str, int]:
    """The runtime's schema version the database has, and how many triggers emit channels."""
    connection = await asyncpg.connect(database_url)
    try:
        version: str = await connection.fetchval(
            "SELECT max(version) FROM fastapi_pg_sse.migrations"
        )
        triggers: int = await connection.fetchval("SELECT count(*) FROM fastapi_pg_sse.triggers")
    finally:
        await connection.close()
    return version, triggers
