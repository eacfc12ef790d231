"""`scaffold remove-sse-channel`: undoes a channel, and only that channel, through the pipeline."""

import asyncio
import json
from pathlib import Path

import pytest

from scaffold import apply
from scaffold._commands.remove_sse_channel import remove_sse_channel
from scaffold.manifest import edit_pyproject
from tests.golden_cases import TRIGGERED
from tests.helpers import (
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


def without_migrations(files: dict[str, bytes]) -> dict[str, bytes]:
    return {path: text for path, text in files.items() if not path.startswith("migrations/")}


def test_create_then_remove_leaves_every_non_migration_file_as_before(shop: Path) -> None:
    pyproject = shop / "pyproject.toml"
    pyproject.write_text(edit_pyproject(pyproject.read_text(), []))  # dependencies listed already
    before = snapshot(shop)
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    created = snapshot(shop)
    result = run_scaffold("remove-sse-channel", *STOCK, cwd=shop)
    assert result.exit_code == 0, result.stderr
    after = snapshot(shop)
    assert without_migrations(after) == without_migrations(before)
    migration = "migrations/0002_inventory_stock_sse_channel.sql"
    assert after[migration] == created[migration], "the channel's migration was edited"
    assert sorted(after.keys() - before.keys()) == [
        migration,
        "migrations/0003_remove_inventory_stock_sse_channel.sql",
    ]
    assert not (shop / "shop" / "realtime").exists()
    assert not (shop / "shop" / "modules").exists()


def test_removal_keeps_the_dependencies_that_create_added(shop: Path) -> None:
    original = (shop / "pyproject.toml").read_text()
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    assert run_scaffold("remove-sse-channel", *STOCK, cwd=shop).exit_code == 0
    kept = (shop / "pyproject.toml").read_text()
    assert kept == edit_pyproject(original, [])
    assert '"fastapi-pg-sse>=0.4,<1"' in kept
    assert "[tool.scaffold.channels]" not in kept


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
def test_the_removal_migration_drops_trigger_and_functions_on_postgresql(
    shop: Path, postgres_url: str, drop_data: bool
) -> None:
    assert run_scaffold("create-sse-channel", *LEVEL, *TRIGGERED, cwd=shop).exit_code == 0
    flags = ("--drop-data",) if drop_data else ()
    assert run_scaffold("remove-sse-channel", *LEVEL, *flags, cwd=shop).exit_code == 0
    migrations = [path.read_text() for path in sorted((shop / "migrations").glob("*.sql"))]
    assert len(migrations) == 3
    left = asyncio.run(_migrated_objects(postgres_url, migrations, "warehouse_ops_stock_level"))
    assert left == {"functions": 0, "triggers": 0, "table": not drop_data}


def test_a_channel_removed_with_its_data_kept_can_be_created_again_on_postgresql(
    shop: Path, postgres_url: str
) -> None:
    for command in ("create-sse-channel", "remove-sse-channel", "create-sse-channel"):
        assert run_scaffold(command, *LEVEL, cwd=shop).exit_code == 0
    migrations = [path.read_text() for path in sorted((shop / "migrations").glob("*.sql"))]
    assert len(migrations) == 4
    left = asyncio.run(_migrated_objects(postgres_url, migrations, "warehouse_ops_stock_level"))
    assert left == {"functions": 2, "triggers": 0, "table": True}  # emit and emit_many


async def _migrated_objects(server_url: str, migrations: list[str], stem: str) -> dict[str, object]:
    """Apply `migrations` to a new database; count what is left whose name starts with `stem`."""
    async with new_database(server_url) as database:
        for migration in migrations:
            await database.execute(migration)
        return {
            "functions": await database.fetchval(
                "SELECT count(*) FROM pg_proc WHERE proname LIKE $1", f"{stem}%"
            ),
            "triggers": await database.fetchval(
                "SELECT count(*) FROM pg_trigger WHERE tgname LIKE $1", f"{stem}%"
            ),
            "table": await database.fetchval(
                "SELECT to_regclass($1) IS NOT NULL", f"{stem}_events"
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
    assert actions["migrations/0003_remove_inventory_stock_sse_channel.sql"] == "create"
    assert "migrations/0002_inventory_stock_sse_channel.sql" not in actions
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
    write = apply._write_atomically

    def failing_write(target: Path, text: str) -> None:
        if target.name == "pyproject.toml":  # the last step, after every deletion
            raise OSError("disk full")
        write(target, text)

    monkeypatch.setattr(apply, "_write_atomically", failing_write)
    with pytest.raises(OSError, match="disk full"):
        remove_sse_channel(shop, "Stock", "inventory")
    assert snapshot(shop) == before
    assert not list(shop.rglob(".*.deleted.*")), "a set-aside file was left behind"
