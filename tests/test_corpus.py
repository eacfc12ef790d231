"""The whole life of two channels on each realistic project of `tests/corpus/`.

Each folder there is a small project of a shape real FastAPI services have. On each: `init`
where the project has no `[tool.scaffold]` table yet, a channel without a trigger and one with,
`check`, the generated project's own tests on PostgreSQL, the removal of both channels, `check`
again, and at last every migration, the removals' included, applied to a new database.
"""

import asyncio
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import REPO, channel_test_count, new_database, run_generated_tests, run_scaffold

CORPUS = REPO / "tests" / "corpus"


@dataclass(frozen=True)
class Shape:
    """What a corpus project is, and the trigger its second channel gets."""

    what: str
    trigger: tuple[str, ...]
    migrations: str
    """The project's folder of SQL migrations, as `init` should find it."""


SHAPES = {
    "src_layout_orders": Shape(
        "src/ layout, an app module that already includes routers, a dev extra, migrations in"
        " db/migrations, and an orders table with NOT NULL columns, an enum, a CHECK, a foreign"
        " key to customers as its user column, and a column added by a later migration",
        ("--table", "orders", "--user-column", "customer_id"),
        "db/migrations",
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
    migrations = sorted((project / shape.migrations).glob("*.sql"))
    assert len(migrations) == len(list((CORPUS / name / shape.migrations).glob("*.sql"))) + 4
    asyncio.run(_apply(postgres_url, [path.read_text() for path in migrations]))


def _scaffold(project: Path, *arguments: str) -> str:
    result = run_scaffold(*arguments, cwd=project)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


async def _apply(server_url: str, migrations: list[str]) -> None:
    """Apply `migrations` in order to a new database: the channels come and go without error."""
    async with new_database(server_url) as database:
        for migration in migrations:
            await database.execute(migration)
        left = await database.fetchval(
            "SELECT count(*) FROM pg_proc WHERE proname LIKE '%\\_emit' OR proname LIKE"
            " '%\\_on\\_change'"
        )
    assert left == 0, "the removal migrations left a channel's functions behind"
