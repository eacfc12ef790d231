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
from fastapi_pg_sse.testing import alembic_migrated_database, migrated_database

from tests.helpers import REPO, channel_test_count, run_generated_tests, run_scaffold

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
    "poetry_blog": Shape(
        "a Poetry 1 project (no [project] table: [tool.poetry.dependencies] with python ^3.10, an"
        " old-but-allowable fastapi >=0.100,<1, an inline-table uvicorn, and a dev group) whose"
        " posts table has its author as user column",
        ("--table", "posts", "--user-column", "author_id"),
        "migrations",
    ),
}
NOTICE = ("Notice", "in", "accounts")
ORDER = ("Order", "in", "sales")


def test_every_corpus_project_has_a_shape() -> None:
    """A project folder without its entry (or an entry without its folder) would test nothing."""
    assert sorted(path.name for path in CORPUS.iterdir() if path.is_dir()) == sorted(SHAPES)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_two_channels_live_and_go_on_a_real_project(
    name: str, tmp_path: Path, postgres_url: str
) -> None:
    shape = SHAPES[name]
    project = Path(shutil.copytree(CORPUS / name, tmp_path / name))
    assert "scaffold" not in tomllib.loads((project / "pyproject.toml").read_text())["tool"]

    _scaffold(project, "init")
    _scaffold(project, "create-sse-channel", *NOTICE)
    _scaffold(project, "create-sse-channel", *ORDER, *shape.trigger)
    assert _scaffold(project, "check").startswith("In sync")
    passed = run_generated_tests(project, postgres_url, tmp_path / "basetemp")
    assert passed >= channel_test_count(project) > 0

    _scaffold(project, "remove-sse-channel", *NOTICE)
    _scaffold(project, "remove-sse-channel", *ORDER)
    assert _scaffold(project, "check").startswith("In sync")
    suffix = "*.py" if shape.alembic else "*.sql"
    before = list((CORPUS / name / shape.migrations).glob(suffix))
    written = len(list((project / shape.migrations).glob(suffix))) - len(before)
    assert written == 3, "the runtime's schema, the trigger and the trigger's removal"
    with shape.migrated(project, postgres_url) as database_url:
        assert asyncio.run(_schema_and_triggers(database_url)) == ("1.1", 0)


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
