"""Alembic projects: `init` finds Alembic, `create-sse-channel` and `remove-sse-channel` write
revisions chained to the head, and those revisions go up, down and up again on PostgreSQL.

The project is `tests/corpus/alembic_shop`: the example shop as `alembic init -t async` (the
asyncpg template) makes it, with a first revision that creates `baskets`.
"""

import asyncio
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from fastapi_pg_sse.testing import alembic_migrated_database

from scaffold.project import load_project
from tests.golden_cases import TRIGGERED
from tests.helpers import (
    REPO,
    CliResult,
    channel_test_count,
    new_database,
    run_generated_tests,
    run_scaffold,
    snapshot,
)

CORPUS = REPO / "tests" / "corpus" / "alembic_shop"
FIRST_REVISION = "bdca26538ef0"
STOCK = ("Stock", "in", "inventory")
TRIGGERS = {"inventory_stock_on_insert", "inventory_stock_on_update", "inventory_stock_on_delete"}


@pytest.fixture
def alembic_shop(tmp_path: Path) -> Path:
    """A fresh copy of the Alembic shop, initialised with `scaffold init`."""
    project = shutil.copytree(CORPUS, tmp_path / "shop")
    initialised = run_scaffold("init", cwd=project)
    assert initialised.exit_code == 0, initialised.stderr
    return project


def test_init_records_the_alembic_configuration(alembic_shop: Path) -> None:
    scaffold = tomllib.loads((alembic_shop / "pyproject.toml").read_text())["tool"]["scaffold"]
    assert scaffold == {
        "package": "shop",
        "app": "shop.main:app",
        "alembic": "alembic.ini",
        "tests": "tests",
    }
    assert load_project(alembic_shop).migrations == "alembic/versions"


def test_init_finds_alembic_configured_in_pyproject(tmp_path: Path) -> None:
    project = shutil.copytree(CORPUS, tmp_path / "shop")
    (project / "alembic.ini").unlink()
    (project / "migrations").mkdir()  # a SQL folder too: Alembic's configuration wins
    shutil.move(project / "alembic", project / "db")
    with (project / "pyproject.toml").open("a") as pyproject:
        pyproject.write('\n[tool.alembic]\nscript_location = "%(here)s/db"\n')
    assert run_scaffold("init", cwd=project).exit_code == 0
    loaded = load_project(project)
    assert (loaded.alembic, loaded.migrations) == ("pyproject.toml", "db/versions")


@pytest.mark.parametrize(
    ("trigger", "drop_data"),
    [((), True), (TRIGGERED, False)],
    ids=["no-trigger-drop-data", "trigger-keep-data"],
)
@pytest.mark.anyio
async def test_the_revisions_go_up_down_and_up_again_on_postgresql(
    alembic_shop: Path, postgres_url: str, tmp_path: Path, trigger: tuple[str, ...], drop_data: bool
) -> None:
    # The subprocesses block the event loop, which has nothing else to do meanwhile.
    project = alembic_shop
    async with new_database(postgres_url) as database:
        use_database(project, postgres_url, await database.fetchval("SELECT current_database()"))
        assert run_scaffold("create-sse-channel", *STOCK, *trigger, cwd=project).exit_code == 0
        schema = single_new_revision(project, follows=FIRST_REVISION)
        assert schema.name.endswith("_fastapi_pg_sse_schema_1_5.py")
        assert recorded_schema(project) == (schema.name, FIRST_REVISION)
        channel = TRIGGERS if trigger else set()
        if trigger:
            creation = single_new_revision(project, follows=revision_of(schema))
            assert recorded_migration(project) == (creation.name, revision_of(schema))
        assert in_sync(project)

        alembic(project, "upgrade", "head")
        await database.execute("INSERT INTO baskets (user_id, stock) VALUES ('ann', 1)")
        made = await state(database)
        assert made == ("1.5", channel, 1 if trigger else 0)
        alembic(project, "downgrade", "-1")
        assert await state(database) == (("1.5", set(), 1) if trigger else (None, set(), 0))
        assert await database.fetchval("SELECT to_regclass('baskets') IS NOT NULL")
        alembic(project, "upgrade", "head")
        assert await state(database) == (made if trigger else ("1.5", set(), 0))
        await database.execute("UPDATE baskets SET stock = 2")
        made = await state(database)

        passed = run_generated_tests(project, postgres_url, tmp_path / "basetemp")
        assert passed >= channel_test_count(project) > 0

        flags = ("--drop-data",) if drop_data else ()
        assert run_scaffold("remove-sse-channel", *STOCK, *flags, cwd=project).exit_code == 0
        last = creation if trigger else schema
        removal = single_new_revision(project, follows=revision_of(last))
        assert removal.name.endswith("_remove_inventory_stock_sse_channel.py")
        assert in_sync(project)

        removed = ("1.5", set(), 0 if drop_data else made[2])
        alembic(project, "upgrade", "head")
        assert await state(database) == removed
        alembic(project, "downgrade", "-1")
        assert await state(database) == ("1.5", channel, removed[2]), "deleted events stay so"
        alembic(project, "upgrade", "head")
        assert await state(database) == removed


@pytest.mark.anyio
async def test_a_misspelt_user_column_fails_the_upgrade_and_leaves_the_table_writable(
    alembic_shop: Path, postgres_url: str
) -> None:
    """scaffold cannot read Alembic revisions, so it only says it cannot tell; the runtime's
    `create_trigger` refuses the column, the upgrade fails and rolls back, and the table keeps
    taking rows (no trigger that fails every INSERT)."""
    misspelt = ("--table", "baskets", "--user-column", "usr_id")
    created = run_scaffold("create-sse-channel", *STOCK, *misspelt, cwd=alembic_shop)
    assert created.exit_code == 0, created.stderr
    assert "cannot tell whether baskets.usr_id exists" in created.stdout
    async with new_database(postgres_url) as database:
        name = await database.fetchval("SELECT current_database()")
        use_database(alembic_shop, postgres_url, name)
        alembic(alembic_shop, "upgrade", FIRST_REVISION)  # the developer's database, baskets made
        upgrade = subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=alembic_shop,
            capture_output=True,
            text=True,
            check=False,
        )
        assert upgrade.returncode != 0
        assert "has no column usr_id" in upgrade.stderr
        await database.execute("INSERT INTO baskets (user_id, stock) VALUES ('ann', 1)")
        assert await state(database) == (None, set(), 0)


def test_revisions_are_the_same_on_every_run(tmp_path: Path) -> None:
    written = []
    for run in ("first", "second"):
        project = shutil.copytree(CORPUS, tmp_path / run)
        assert run_scaffold("init", cwd=project).exit_code == 0
        assert run_scaffold("create-sse-channel", *STOCK, *TRIGGERED, cwd=project).exit_code == 0
        written.append(snapshot(project / "alembic" / "versions"))
    assert written[0] == written[1]


def test_a_deleted_revision_is_reported_and_written_again_the_same(alembic_shop: Path) -> None:
    """The manifest records the revision a channel's revision follows: `sync` writes it again
    as it was, though the head has moved on since."""
    created = run_scaffold("create-sse-channel", *STOCK, cwd=alembic_shop)
    assert created.exit_code == 0, created.stderr
    revision = single_new_revision(alembic_shop, follows=FIRST_REVISION)
    path = revision.relative_to(alembic_shop)
    assert f"Run `alembic upgrade head` to apply {path}, then run your tests." in created.stdout
    written = revision.read_text()
    (alembic_shop / "alembic/versions/0a1b2c3d4e5f_later.py").write_text(
        f'revision = "0a1b2c3d4e5f"\ndown_revision = "{revision_of(revision)}"\n'
    )
    revision.unlink()
    checked = run_scaffold("check", cwd=alembic_shop)
    assert checked.exit_code == 1
    assert f"missing  {path}" in checked.stdout
    assert run_scaffold("sync", cwd=alembic_shop).exit_code == 0
    assert revision.read_text() == written


def test_the_generated_project_and_revisions_pass_ruff_and_mypy_strict(
    alembic_shop: Path, tmp_path: Path
) -> None:
    assert run_scaffold("create-sse-channel", *STOCK, *TRIGGERED, cwd=alembic_shop).exit_code == 0
    schema = single_new_revision(alembic_shop, follows=FIRST_REVISION)
    trigger = single_new_revision(alembic_shop, follows=revision_of(schema))
    revisions = [str(path.relative_to(alembic_shop)) for path in (schema, trigger)]
    mypy = ["mypy", "--strict", "--cache-dir", str(tmp_path / "mypy"), "shop", "tests"]
    for command in (
        ["ruff", "check", "--isolated", "--no-cache", "."],
        ["ruff", "format", "--isolated", "--no-cache", "--check", "."],
        [*mypy, *revisions],
    ):
        result = subprocess.run(
            [sys.executable, "-m", *command],
            cwd=alembic_shop,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("revision", "message"),
    [
        (
            'revision = "0a1b2c3d4e5f"\ndown_revision = None\n',
            "have several heads (0a1b2c3d4e5f, bdca26538ef0): merge them with"
            " `alembic merge heads` first",
        ),
        (
            'revision = "0a1b2c3d4e5f"\ndown_revision = "ffffffffffff"\n',
            "alembic/versions/0a1b2c3d4e5f_next.py follows revision ffffffffffff, which no file"
            " in alembic/versions declares",
        ),
        (
            f'revision = "0a1b2c3d4e5f"\ndown_revision = "{FIRST_REVISION}".upper()\n',
            "alembic/versions/0a1b2c3d4e5f_next.py, line 2: down_revision is not a literal",
        ),
        (
            'down_revision = "bdca26538ef0"\n',
            'alembic/versions/0a1b2c3d4e5f_next.py declares no `revision = "<id>"`',
        ),
        ("revision = (\n", "alembic/versions/0a1b2c3d4e5f_next.py, line 1: '(' was never closed"),
    ],
    ids=["several-heads", "broken-chain", "computed", "no-revision", "syntax-error"],
)
def test_a_chain_without_one_head_is_refused_and_nothing_is_written(
    alembic_shop: Path, revision: str, message: str
) -> None:
    (alembic_shop / "alembic/versions/0a1b2c3d4e5f_next.py").write_text(revision)
    result = refused(alembic_shop, "create-sse-channel", *STOCK)
    assert message in result.stderr


def test_a_removal_needs_one_head_too(alembic_shop: Path) -> None:
    created = run_scaffold("create-sse-channel", *STOCK, *TRIGGERED, cwd=alembic_shop)
    assert created.exit_code == 0, created.stderr
    (alembic_shop / "alembic/versions/0a1b2c3d4e5f_next.py").write_text(
        f'revision = "0a1b2c3d4e5f"\ndown_revision = "{FIRST_REVISION}"\n'
    )
    result = refused(alembic_shop, "remove-sse-channel", *STOCK)
    assert "have several heads (0a1b2c3d4e5f, " in result.stderr


def refused(project: Path, *arguments: str) -> CliResult:
    """Run the command, asserting exit 2 and that it changed nothing."""
    before = snapshot(project)
    result = run_scaffold(*arguments, cwd=project)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert snapshot(project) == before
    return result


def test_a_channel_made_with_sql_migrations_is_refused_once_alembic_is_set(shop: Path) -> None:
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    shutil.copy(CORPUS / "alembic.ini", shop / "alembic.ini")
    pyproject = shop / "pyproject.toml"
    settings = pyproject.read_text().replace('migrations = "migrations"', 'alembic = "alembic.ini"')
    pyproject.write_text(settings)
    result = run_scaffold("check", cwd=shop)
    assert result.exit_code == 2
    assert "its migration '0002_fastapi_pg_sse_schema_1_5.sql' is not one of the Alembic" in (
        result.stderr
    )
    assert "put the setting back" in result.stderr


def test_tests_migrate_a_project_whose_env_py_reads_database_url(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other usual env.py takes the URL from `DATABASE_URL`: the runtime's pytest plugin
    sets it to the test database, whatever the developer's own says."""
    project = shutil.copytree(CORPUS, tmp_path / "shop")
    env = project / "alembic" / "env.py"
    reads_database_url = (
        "config = context.config\n"
        "url = os.environ['DATABASE_URL'].replace('postgresql://', 'postgresql+asyncpg://')\n"
        "config.set_main_option('sqlalchemy.url', url)\n"
    )
    env.write_text(
        "import os\n" + env.read_text().replace("config = context.config\n", reads_database_url)
    )
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/elsewhere")
    with alembic_migrated_database(postgres_url, project / "alembic.ini") as url:
        assert asyncio.run(_has_table(url, "baskets"))


async def _has_table(url: str, table: str) -> bool:
    connection = await asyncpg.connect(url)
    try:
        return bool(await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", table))
    finally:
        await connection.close()


def use_database(project: Path, server_url: str, name: str) -> None:
    """Point the project's alembic.ini at database `name` of the server, as a developer points
    it at theirs."""
    url = urlsplit(server_url)._replace(scheme="postgresql+asyncpg", path=f"/{name}").geturl()
    ini = project / "alembic.ini"
    ini.write_text(
        re.sub(r"(?m)^sqlalchemy\.url = .*$", f"sqlalchemy.url = {url}", ini.read_text())
    )


def alembic(project: Path, *arguments: str) -> None:
    """Run the `alembic` command in the project, as a developer does."""
    result = subprocess.run(
        [sys.executable, "-m", "alembic", *arguments],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def single_new_revision(project: Path, *, follows: str) -> Path:
    """The one revision that follows `follows`, checked to be named `<revision>_<slug>.py`."""
    followers = [
        path
        for path in (project / "alembic" / "versions").glob("*.py")
        if f'\ndown_revision: str | None = "{follows}"\n' in path.read_text()
    ]
    assert len(followers) == 1, followers
    assert re.fullmatch(r"[0-9a-f]{12}_[a-z0-9_]+\.py", followers[0].name)
    return followers[0]


def revision_of(path: Path) -> str:
    return path.name.partition("_")[0]


def recorded_migration(project: Path) -> tuple[str, str | None]:
    (channel,) = load_project(project).channels
    assert channel.migration is not None
    return channel.migration.name, channel.migration.down_revision


def recorded_schema(project: Path) -> tuple[str, str | None]:
    (schema,) = load_project(project).schema
    return schema.migration.name, schema.migration.down_revision


def in_sync(project: Path) -> bool:
    return run_scaffold("check", cwd=project).exit_code == 0


async def state(database: asyncpg.Connection) -> tuple[str | None, set[str], int]:
    """The runtime's schema version in the database (None: no schema), the channel's triggers,
    and how many of its events the database keeps."""
    if not await database.fetchval("SELECT to_regclass('fastapi_pg_sse.migrations') IS NOT NULL"):
        return None, set(), 0
    version = await database.fetchval("SELECT max(version) FROM fastapi_pg_sse.migrations")
    triggers = await database.fetch(
        "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'inventory_stock%'"
    )
    events = await database.fetchval(
        "SELECT count(*) FROM fastapi_pg_sse.events WHERE channel = 'inventory_stock'"
    )
    return version, {row[0] for row in triggers}, events
