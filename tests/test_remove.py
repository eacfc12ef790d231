"""`scaffold remove-sse-channel`: undoes a channel, and only that channel, through the pipeline."""

import asyncio
import json
import tomllib
from pathlib import Path

import pytest

from scaffold import apply
from scaffold._commands.remove_sse_channel import remove_sse_channel
from tests.golden_cases import TRIGGERED
from tests.helpers import (
    EXAMPLE,
    channel_test_count,
    new_database,
    run_generated_tests,
    run_scaffold,
    snapshot,
)
from tests.test_check import generated_copy

STOCK = ("Stock", "in", "inventory")
LEVEL = ("StockLevel", "in", "warehouse-ops")
SERVICE = "shop/modules/inventory/services/stock_notify_service.py"


SCHEMA_MIGRATION = "migrations/0002_fastapi_pg_sse_schema_1_5.sql"
LEVEL_NAME = "warehouse_ops_stock_level"


def without_migrations(files: dict[str, bytes]) -> dict[str, bytes]:
    return {path: text for path, text in files.items() if not path.startswith("migrations/")}


def test_create_then_remove_leaves_the_project_as_before_but_its_schema_migration(
    shop: Path,
) -> None:
    before = snapshot(shop)
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    created = snapshot(shop)
    result = run_scaffold("remove-sse-channel", *STOCK, cwd=shop)
    assert result.exit_code == 0, result.stderr
    assert "Apply" not in result.stdout, "a channel without trigger needs no removal migration"
    after = snapshot(shop)
    assert sorted(after.keys() - before.keys()) == [SCHEMA_MIGRATION]
    assert after[SCHEMA_MIGRATION] == created[SCHEMA_MIGRATION]
    changed = [path for path in before if after[path] != before[path]]
    assert changed == ["pyproject.toml"]
    pyproject = tomllib.loads(after["pyproject.toml"].decode())
    assert "channels" not in pyproject["tool"]["scaffold"]
    assert pyproject["tool"]["scaffold"]["schema"] == [
        {"version": "1.5", "migration": SCHEMA_MIGRATION.removeprefix("migrations/")}
    ], "the database keeps the runtime's schema: its record stays, with its migration"
    assert not (shop / "shop" / "modules").exists()


def test_removal_keeps_the_dependencies_that_create_added(shop: Path) -> None:
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    added = tomllib.loads((shop / "pyproject.toml").read_text())["project"]["dependencies"]
    assert run_scaffold("remove-sse-channel", *STOCK, cwd=shop).exit_code == 0
    kept = tomllib.loads((shop / "pyproject.toml").read_text())["project"]["dependencies"]
    assert kept == added
    assert "fastapi-pg-sse>=0.10,<1" in kept


def test_removing_the_last_channel_leaves_the_dependencies_as_the_user_has_them(
    shop: Path,
) -> None:
    """Going back: the user dropped the runtime and pinned an older FastAPI before removing the
    last channel. Neither is undone, nor refused: the packages were the channels' need."""
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    pyproject = shop / "pyproject.toml"
    text = pyproject.read_text()
    runtime = ('    "fastapi-pg-sse>=0.10,<1",\n', '    "fastapi-pg-sse[testing]>=0.10,<1",\n')
    for requirement in runtime:
        assert requirement in text
        text = text.replace(requirement, "")
    assert '"fastapi>=0.137.2"' in text
    pyproject.write_text(text.replace('"fastapi>=0.137.2"', '"fastapi<0.80"'))
    dependencies = tomllib.loads(pyproject.read_text())["project"]
    result = run_scaffold("remove-sse-channel", *STOCK, cwd=shop)
    assert result.exit_code == 0, result.stderr
    assert tomllib.loads(pyproject.read_text())["project"] == dependencies


BASKET = ("Basket", "in", "shop")


@pytest.mark.parametrize("first", [STOCK, BASKET], ids=["plain-first", "trigger-first"])
def test_removing_two_channels_in_either_order_leaves_the_project_as_it_was(
    shop: Path, first: tuple[str, ...]
) -> None:
    """A tests folder that is a package, a channel with a trigger and one without: whichever
    goes first, nothing of either stays but the migrations (history) and the dependencies."""
    (shop / "tests" / "__init__.py").write_text("")
    before = without_migrations(snapshot(shop))
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    assert run_scaffold("create-sse-channel", *BASKET, *TRIGGERED, cwd=shop).exit_code == 0
    second = BASKET if first == STOCK else STOCK
    for channel in (first, second):
        result = run_scaffold("remove-sse-channel", *channel, cwd=shop)
        assert result.exit_code == 0, result.stderr
    after = without_migrations(snapshot(shop))
    changed = sorted(
        path for path in after.keys() | before.keys() if after.get(path) != before.get(path)
    )
    assert changed == ["pyproject.toml"]


def test_removing_the_second_channel_leaves_the_project_as_if_only_the_first_was_made(
    tmp_path: Path,
) -> None:
    both = generated_copy("second-channel", tmp_path / "both")
    result = run_scaffold("remove-sse-channel", *LEVEL, cwd=both)
    assert result.exit_code == 0, result.stderr
    first = generated_copy("stock-in-inventory", tmp_path / "first")
    assert without_migrations(snapshot(both)) == without_migrations(snapshot(first))


def test_removing_one_of_two_channels_leaves_the_other_working_on_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    project = generated_copy("second-channel", tmp_path / "shop")
    assert run_scaffold("remove-sse-channel", *STOCK, cwd=project).exit_code == 0
    assert run_scaffold("check", cwd=project).exit_code == 0
    passed = run_generated_tests(project, postgres_url, tmp_path / "basetemp")
    assert passed >= channel_test_count(project) > 0


@pytest.mark.parametrize("drop_data", [False, True], ids=["keep-data", "drop-data"])
def test_the_removal_migration_drops_the_trigger_and_deletes_the_events_if_asked_on_postgresql(
    shop: Path, postgres_url: str, drop_data: bool
) -> None:
    assert run_scaffold("create-sse-channel", *LEVEL, *TRIGGERED, cwd=shop).exit_code == 0
    made = _migrations(shop)
    flags = ("--drop-data",) if drop_data else ()
    removed = run_scaffold("remove-sse-channel", *LEVEL, *flags, cwd=shop)
    assert removed.exit_code == 0, removed.stderr
    [removal] = _migrations(shop)[len(made) :]
    assert f"Apply migrations/{removal.name} to your database." in removed.stdout
    assert removal.name == "0004_remove_warehouse_ops_stock_level_sse_channel.sql"
    state = asyncio.run(_state_after(postgres_url, made, removal))
    assert state == {"triggers": 0, "events": 0 if drop_data else 1, "reset": drop_data}


def test_a_channel_removed_with_its_data_kept_streams_it_again_when_made_again_on_postgresql(
    shop: Path, postgres_url: str
) -> None:
    for command, options in (
        ("create-sse-channel", TRIGGERED),
        ("remove-sse-channel", ()),
        ("create-sse-channel", TRIGGERED),
    ):
        result = run_scaffold(command, *LEVEL, *options, cwd=shop)
        assert result.exit_code == 0, result.stderr
    made_again = _migrations(shop)
    assert [path.name.partition("_")[2] for path in made_again] == [
        "fastapi_pg_sse_schema_1_5.sql",
        f"{LEVEL_NAME}_sse_trigger.sql",
        f"remove_{LEVEL_NAME}_sse_channel.sql",
        f"{LEVEL_NAME}_sse_trigger.sql",
    ]
    state = asyncio.run(_state_after(postgres_url, made_again[:2], *made_again[2:]))
    assert state == {"triggers": 3, "events": 1, "reset": False}


def _migrations(project: Path) -> list[Path]:
    return sorted((project / "migrations").glob("0*_*.sql"))[1:]  # after the shop's own


async def _state_after(server_url: str, made: list[Path], *then: Path) -> dict[str, object]:
    """Apply the `made` migrations to a new database, change a basket (an event of LEVEL), apply
    `then`: how many triggers the channel has left, how many of its events, and whether a client
    resuming from its event gets a reset (its id was pruned)."""
    async with new_database(server_url) as database:
        for migration in [*sorted((EXAMPLE / "migrations").glob("*.sql")), *made]:
            await database.execute(migration.read_text())
        await database.execute("INSERT INTO baskets (user_id, stock) VALUES ('ann', 1)")
        for migration in then:
            await database.execute(migration.read_text())
        event_id = await database.fetchval("SELECT max(id) FROM fastapi_pg_sse.events")
        return {
            "triggers": await database.fetchval(
                "SELECT count(*) FROM pg_trigger WHERE tgname LIKE $1", f"{LEVEL_NAME}%"
            ),
            "events": await database.fetchval(
                "SELECT count(*) FROM fastapi_pg_sse.events WHERE channel = $1", LEVEL_NAME
            ),
            "reset": await database.fetchval(
                "SELECT coalesce(max(through_id), 0) >= $2 FROM fastapi_pg_sse.pruned"
                " WHERE channel = $1",
                LEVEL_NAME,
                event_id or 1,
            ),
        }


def test_dry_run_lists_the_deletions_and_writes_nothing(shop: Path) -> None:
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    before = snapshot(shop)
    result = run_scaffold("remove-sse-channel", *STOCK, "--dry-run", "--json", cwd=shop)
    assert result.exit_code == 0, result.stderr
    actions = {change["path"]: change["action"] for change in json.loads(result.stdout)["changes"]}
    assert actions[SERVICE] == "delete"
    assert actions["shop/sse_channels.py"] == "delete"
    assert actions["shop/main.py"] == "update"
    assert not [path for path in actions if path.startswith("migrations/")]
    assert snapshot(shop) == before


def test_a_hand_edited_file_is_deleted_only_with_force(shop: Path) -> None:
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    service = shop / SERVICE
    service.write_text(service.read_text() + "# a hand edit\n")
    before = snapshot(shop)
    refused = run_scaffold("remove-sse-channel", *STOCK, cwd=shop)
    assert refused.exit_code == 1
    assert f"generated files differ from what scaffold would write: {SERVICE}" in refused.stderr
    assert snapshot(shop) == before
    forced = run_scaffold("remove-sse-channel", *STOCK, "--force", cwd=shop)
    assert forced.exit_code == 0, forced.stderr
    assert not service.exists()


def test_the_users_files_in_a_removed_module_are_kept(shop: Path) -> None:
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    models = shop / "shop/modules/inventory/models.py"
    models.write_text("STOCK = 1\n")
    assert run_scaffold("remove-sse-channel", *STOCK, cwd=shop).exit_code == 0
    assert models.read_text() == "STOCK = 1\n"
    assert (shop / "shop/modules/inventory/__init__.py").is_file()
    assert (shop / "shop/modules/__init__.py").is_file()
    assert not (shop / "shop/modules/inventory/services").exists()


def test_a_channel_that_is_not_recorded_is_refused(shop: Path) -> None:
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    before = snapshot(shop)
    result = run_scaffold("remove-sse-channel", *LEVEL, cwd=shop)
    assert result.exit_code == 2
    assert "channel StockLevel in warehouse-ops is not recorded" in result.stderr
    assert "recorded channels: Stock in inventory" in result.stderr
    assert snapshot(shop) == before


def test_a_failure_while_removing_restores_every_file(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    before = snapshot(shop)
    write = apply.write_atomically

    def failing_write(target: Path, text: str) -> None:
        if target.name == "pyproject.toml":  # the last step, after every deletion
            raise OSError("disk full")
        write(target, text)

    monkeypatch.setattr(apply, "write_atomically", failing_write)
    with pytest.raises(OSError, match="disk full"):
        remove_sse_channel(shop, "Stock", "inventory")
    assert snapshot(shop) == before
    assert not list(shop.rglob(".*.deleted.*")), "a set-aside file was left behind"
