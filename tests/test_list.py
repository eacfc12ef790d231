"""`scaffold list`: the recorded channels with their routes, channel names and files."""

import json
from pathlib import Path

from tests.helpers import run_scaffold
from tests.test_check import generated_copy


def test_list_shows_each_channel_with_its_route_names_and_files(tmp_path: Path) -> None:
    project = generated_copy("second-channel", tmp_path / "shop")
    result = run_scaffold("list", cwd=project)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(
        "Stock in inventory\n"
        "  route               GET /inventory/events/stock/stream\n"
        "  channel name        inventory_stock\n"
        "  files               shop/modules/inventory/services/stock_events.py\n"
        "                      shop/modules/inventory/services/stock_notify_service.py\n"
        "                      shop/modules/inventory/adapters/inbound/stock_sse_controller.py\n"
        "                      tests/realtime/test_inventory_stock_sse_channel.py\n"
        "StockLevel in warehouse-ops\n"
    )
    assert (
        "  trigger on          baskets.user_id\n"
        "  events go to        each changed row's user_id\n"
        "  events carry        every column of baskets\n"
    ) in result.stdout
    assert "fastapi_pg_sse_schema" not in result.stdout, "the runtime's schema is no channel's"


def test_list_json_describes_every_channel(tmp_path: Path) -> None:
    project = generated_copy("second-channel", tmp_path / "shop")
    result = run_scaffold("list", "--json", cwd=project)
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert listed["project"] == str(project)
    stock, level = listed["channels"]
    assert stock["route"] == "/inventory/events/stock/stream"
    assert stock["trigger"] is None
    assert stock["channel_name"] == "inventory_stock"
    assert not any("migrations/" in path for path in stock["files"]), "it has no migration"
    assert level == {
        "name": "StockLevel",
        "module": "warehouse-ops",
        "route": "/warehouse-ops/events/stock-level/stream",
        "channel_name": "warehouse_ops_stock_level",
        "trigger": "baskets.user_id",
        "audience": "user",
        "columns": None,
        "files": [
            "shop/modules/warehouse_ops/services/stock_level_events.py",
            "shop/modules/warehouse_ops/services/stock_level_notify_service.py",
            "shop/modules/warehouse_ops/adapters/inbound/stock_level_sse_controller.py",
            "migrations/0003_warehouse_ops_stock_level_sse_trigger.sql",
            "tests/realtime/test_warehouse_ops_stock_level_sse_channel.py",
        ],
    }
    assert all((project / path).is_file() for path in level["files"])


def test_list_shows_the_columns_a_triggers_events_carry(tmp_path: Path) -> None:
    project = generated_copy("stock-in-inventory-with-chosen-columns", tmp_path / "shop")
    result = run_scaffold("list", cwd=project)
    assert result.exit_code == 0, result.stderr
    assert (
        "  trigger on          baskets.user_id\n"
        "  events go to        each changed row's user_id\n"
        "  events carry        id, stock\n"
    ) in result.stdout
    (stock,) = json.loads(run_scaffold("list", "--json", cwd=project).stdout)["channels"]
    assert (stock["trigger"], stock["columns"]) == ("baskets.user_id", ["id", "stock"])


def test_list_without_channels_says_how_to_add_one(shop: Path) -> None:
    result = run_scaffold("list", cwd=shop)
    assert result.exit_code == 0, result.stderr
    assert "No channel is recorded" in result.stdout
    assert "scaffold create-sse-channel <ChannelName> in <module>" in result.stdout
    assert json.loads(run_scaffold("list", "--json", cwd=shop).stdout)["channels"] == []
