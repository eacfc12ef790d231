"""`scaffold create-sse-channel`: what it writes, what it prints, and what it never does."""

import json
import tomllib
from pathlib import Path

import pytest

from scaffold import apply
from scaffold._commands.create_sse_channel import ChannelRequest, create_sse_channel
from tests.golden_cases import (
    CHOSEN_COLUMNS,
    GROUP_TRIGGERED,
    TRIGGERED,
    with_notices_to_teams,
    with_own_auth,
)
from tests.helpers import heavy_modules_loaded, run_scaffold, snapshot

STOCK = ("create-sse-channel", "Stock", "in", "inventory")
NOTICE = ("create-sse-channel", "Notice", "in", "teams")


def test_dry_run_prints_the_plan_and_writes_nothing(shop: Path) -> None:
    before = snapshot(shop)
    result = run_scaffold(*STOCK, "--dry-run", cwd=shop)
    assert result.exit_code == 0, result.stderr
    assert snapshot(shop) == before
    lines = result.stdout.splitlines()
    assert "  create  shop/sse_channels.py" in lines
    assert "  update  shop/main.py" in lines
    assert "  update  pyproject.toml" in lines
    assert "Dry run: nothing was written." in lines


def test_a_channel_without_trigger_loads_neither_pglast_libcst_matchers_rich_nor_pydantic(
    shop: Path,
) -> None:
    """pglast reads the migrations only for a trigger's columns; the wiring needs libcst, but
    not its matchers, typer's messages need no rich, and its command line is read without
    typer's parser, which imports pydantic."""
    loaded = heavy_modules_loaded(shop, *STOCK)
    assert "libcst" in loaded
    assert not {"pglast", "libcst.matchers", "rich", "pydantic"} & set(loaded)


def test_dry_run_diff_shows_unified_diffs(shop: Path) -> None:
    result = run_scaffold(*STOCK, "--dry-run", "--diff", cwd=shop)
    assert result.exit_code == 0, result.stderr
    assert "--- a/shop/main.py\n+++ b/shop/main.py\n" in result.stdout
    assert "+from shop.sse_channels import realtime_router\n" in result.stdout
    assert "+app.include_router(realtime_router)\n" in result.stdout
    assert "--- /dev/null\n+++ b/shop/sse_channels.py\n" in result.stdout


def test_json_output_lists_every_file_and_its_action(shop: Path) -> None:
    result = run_scaffold(*STOCK, "--dry-run", "--json", cwd=shop)
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    actions = {change["path"]: change["action"] for change in plan["changes"]}
    assert actions["shop/modules/inventory/services/stock_notify_service.py"] == "create"
    assert actions["shop/main.py"] == "update"
    assert actions["migrations/0002_fastapi_pg_sse_schema_1_5.sql"] == "create"
    assert [path for path in actions if path.startswith("migrations/")] == [
        "migrations/0002_fastapi_pg_sse_schema_1_5.sql"
    ], "a channel without a trigger has no migration of its own"


def test_the_plan_says_a_trigger_sends_every_column_of_the_row_by_default(shop: Path) -> None:
    result = run_scaffold(*STOCK, *TRIGGERED, "--dry-run", cwd=shop)
    assert result.exit_code == 0, result.stderr
    assert (
        "  create  tests/realtime/test_inventory_stock_sse_channel.py\n"
        "Trigger on baskets: each event goes to each changed row's user_id.\n"
        "Trigger on baskets: each event carries every column of the row to the browser.\n"
        "Choose them with --columns if baskets holds secrets (password hashes, tokens).\n"
    ) in result.stdout


def test_the_plan_names_the_columns_the_trigger_sends(shop: Path) -> None:
    result = run_scaffold(*STOCK, *TRIGGERED, *CHOSEN_COLUMNS, "--dry-run", cwd=shop)
    assert result.exit_code == 0, result.stderr
    assert "\nTrigger on baskets: each event carries the columns id, stock.\n" in result.stdout
    assert "every column" not in result.stdout


def test_json_output_says_what_the_triggers_events_carry(shop: Path) -> None:
    every = json.loads(run_scaffold(*STOCK, *TRIGGERED, "--dry-run", "--json", cwd=shop).stdout)
    chosen = json.loads(
        run_scaffold(*STOCK, *TRIGGERED, *CHOSEN_COLUMNS, "--dry-run", "--json", cwd=shop).stdout
    )
    without = json.loads(run_scaffold(*STOCK, "--dry-run", "--json", cwd=shop).stdout)
    assert every["trigger"] == {
        "table": "baskets",
        "user_column": "user_id",
        "group_column": None,
        "columns": None,
        "payload": "every column of baskets",
    }
    assert chosen["trigger"]["columns"] == ["id", "stock"]
    assert chosen["trigger"]["payload"] == "id, stock"
    assert without["trigger"] is None


def test_a_group_column_makes_a_trigger_to_the_group_each_row_names(shop: Path) -> None:
    with_notices_to_teams(shop)
    planned = run_scaffold(*NOTICE, *GROUP_TRIGGERED, "--dry-run", cwd=shop)
    assert planned.exit_code == 0, planned.stderr
    assert (
        "\nTrigger on notices: each event goes to the members of the group in each changed row's"
        " team_id.\n"
    ) in planned.stdout
    result = run_scaffold(*NOTICE, *GROUP_TRIGGERED, "--json", cwd=shop)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["trigger"] == {
        "table": "notices",
        "user_column": None,
        "group_column": "team_id",
        "columns": None,
        "payload": "every column of notices",
    }
    (channel,) = tomllib.loads((shop / "pyproject.toml").read_text())["tool"]["scaffold"][
        "channels"
    ]
    assert channel == {
        "name": "Notice",
        "module": "teams",
        "migration": "0004_teams_notice_sse_trigger.sql",
        "table": "notices",
        "group_column": "team_id",
    }
    assert (
        "group_column => 'team_id'"
        in (shop / "migrations" / "0004_teams_notice_sse_trigger.sql").read_text()
    )
    listed = run_scaffold("list", "--json", cwd=shop)
    assert json.loads(listed.stdout)["channels"][0]["audience"] == "group"
    assert run_scaffold("check", cwd=shop).exit_code == 0


def test_the_plan_says_the_users_of_an_own_auth_have_no_groups_until_a_function_says_them(
    shop: Path,
) -> None:
    with_notices_to_teams(shop)
    pyproject = shop / "pyproject.toml"
    with_own_auth(shop)
    pyproject.write_text(pyproject.read_text().replace('groups = "shop.teams:teams_of"\n', ""))
    planned = run_scaffold(*NOTICE, *GROUP_TRIGGERED, "--dry-run", cwd=shop)
    assert planned.exit_code == 0, planned.stderr
    assert (
        "\nTrigger on notices: the users of the project's own auth dependency are in no group"
        " until a function of yours says which they are in: name it in [tool.scaffold] groups.\n"
    ) in planned.stdout
    with_notices_to_teams(shop)
    result = run_scaffold(*NOTICE, *GROUP_TRIGGERED, "--json", cwd=shop)
    assert json.loads(result.stdout)["membership"].startswith("the channel's test signs its user")


def test_the_plan_says_the_group_test_assumes_the_groups_function_honours_the_claim(
    shop: Path,
) -> None:
    with_notices_to_teams(shop)
    planned = run_scaffold(*NOTICE, *GROUP_TRIGGERED, "--dry-run", cwd=shop)
    assert planned.exit_code == 0, planned.stderr
    assert (
        "\nTrigger on notices: the channel's test makes a user a member of the row's group by"
        " the groups claim of their token: it passes if shop.teams:teams_of gives that claim's"
        " groups, else make its user a member where that function looks.\n"
    ) in planned.stdout


@pytest.mark.parametrize(
    ("auth", "groups", "imports", "router"),
    [
        (
            "shop.auth:teams_of",
            "shop.teams:teams_of",
            [
                "from shop.auth import teams_of",
                "from shop.teams import teams_of as shop_teams_teams_of",
            ],
            "create_realtime_router(user=teams_of, groups=shop_teams_teams_of)",
        ),
        (
            None,
            "shop.teams:notice_sse_controller",
            [
                "from shop.modules.teams.adapters.inbound import notice_sse_controller",
                "from shop.teams import notice_sse_controller as shop_teams_notice_sse_controller",
            ],
            "create_realtime_router(groups=shop_teams_notice_sse_controller)",
        ),
    ],
    ids=["auth-and-groups-of-one-name", "groups-named-as-a-controller"],
)
def test_the_registry_aliases_a_function_whose_name_another_import_has(
    shop: Path, auth: str | None, groups: str, imports: list[str], router: str
) -> None:
    with_notices_to_teams(shop)
    for module, name in (reference.split(":") for reference in filter(None, (auth, groups))):
        path = shop / f"{module.replace('.', '/')}.py"
        path.write_text(f"{path.read_text() if path.exists() else ''}\n{name} = print\n")
    pyproject = shop / "pyproject.toml"
    settings = f'groups = "{groups}"\n' + (f'auth = "{auth}"\n' if auth else "")
    pyproject.write_text(
        pyproject.read_text().replace('groups = "shop.teams:teams_of"\n', settings)
    )
    result = run_scaffold(*NOTICE, *GROUP_TRIGGERED, cwd=shop)
    assert result.exit_code == 0, result.stderr
    registry = (shop / "shop" / "sse_channels.py").read_text()
    assert set(imports) <= set(registry.splitlines())
    assert f"realtime_router = {router}\n" in registry


def test_columns_are_given_comma_separated_or_one_per_option(shop: Path) -> None:
    result = run_scaffold(
        *STOCK, *TRIGGERED, "--columns", "id", "--columns", " stock,", "--json", cwd=shop
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["trigger"]["columns"] == ["id", "stock"]
    assert (
        'user_column = "user_id"\ncolumns = ["id", "stock"]\n'
        in (shop / "pyproject.toml").read_text()
    )


def test_running_the_command_twice_changes_nothing_the_second_time(shop: Path) -> None:
    assert run_scaffold(*STOCK, cwd=shop).exit_code == 0
    after_first = snapshot(shop)
    second = run_scaffold(*STOCK, "--json", cwd=shop)
    assert second.exit_code == 0, second.stderr
    assert snapshot(shop) == after_first
    assert {change["action"] for change in json.loads(second.stdout)["changes"]} == {"unchanged"}


def test_the_command_finds_the_project_from_a_subfolder(shop: Path) -> None:
    result = run_scaffold(*STOCK, cwd=shop / "shop")
    assert result.exit_code == 0, result.stderr
    assert (shop / "shop" / "sse_channels.py").is_file()
    assert "Channel ready: GET /inventory/events/stock/stream" in result.stdout


def test_pyproject_keeps_every_line_of_the_user_and_records_the_channel(shop: Path) -> None:
    original = (shop / "pyproject.toml").read_text()
    # But the minimum of fastapi, raised to what the generated code needs.
    original = original.replace('"fastapi>=0.135"', '"fastapi>=0.137.2"').splitlines()
    assert run_scaffold(*STOCK, cwd=shop).exit_code == 0
    edited = (shop / "pyproject.toml").read_text()
    remaining = iter(edited.splitlines())
    assert all(line in remaining for line in original), "a line of the user's file was lost"
    assert (
        '[[tool.scaffold.schema]]\nversion = "1.5"\n'
        'migration = "0002_fastapi_pg_sse_schema_1_5.sql"\n'
        '\n[[tool.scaffold.channels]]\nname = "Stock"\nmodule = "inventory"\n'
    ) in edited
    assert '"fastapi-pg-sse>=0.10,<1"' in edited
    assert '"fastapi-pg-sse[testing]>=0.10,<1"' in edited


def test_the_first_channel_writes_the_runtimes_schema_migration_before_its_trigger(
    shop: Path,
) -> None:
    result = run_scaffold(*STOCK, *TRIGGERED, cwd=shop)
    assert result.exit_code == 0, result.stderr
    assert sorted(path.name for path in (shop / "migrations").iterdir()) == [
        "0001_create_baskets.sql",
        "0002_fastapi_pg_sse_schema_1_5.sql",
        "0003_inventory_stock_sse_trigger.sql",
    ]
    assert result.stdout.endswith(
        "Apply migrations/0002_fastapi_pg_sse_schema_1_5.sql,"
        " migrations/0003_inventory_stock_sse_trigger.sql to your database, then run your tests.\n"
    )
    pyproject = (shop / "pyproject.toml").read_text()
    assert 'migration = "0003_inventory_stock_sse_trigger.sql"\n' in pyproject


def test_the_trigger_migration_creates_the_trigger_with_the_runtimes_function(
    shop: Path,
) -> None:
    assert run_scaffold(*STOCK, *TRIGGERED, *CHOSEN_COLUMNS, cwd=shop).exit_code == 0
    sql = (shop / "migrations/0003_inventory_stock_sse_trigger.sql").read_text()
    statements = [line for line in sql.splitlines() if line and not line.startswith("--")]
    assert statements == [
        "SELECT fastapi_pg_sse.create_trigger(",
        "    'inventory_stock',",
        "    'baskets',",
        "    user_column => 'user_id',",
        "    event_prefix => 'stock',",
        "    columns => ARRAY['id', 'stock']",
        ");",
    ]


def test_a_channel_without_table_writes_no_migration_of_its_own(shop: Path) -> None:
    result = run_scaffold(*STOCK, cwd=shop)
    assert result.exit_code == 0, result.stderr
    assert sorted(path.name for path in (shop / "migrations").iterdir()) == [
        "0001_create_baskets.sql",
        "0002_fastapi_pg_sse_schema_1_5.sql",
    ]
    assert result.stdout.endswith(
        "Apply migrations/0002_fastapi_pg_sse_schema_1_5.sql to your database,"
        " then run your tests.\n"
    )
    (channel,) = tomllib.loads((shop / "pyproject.toml").read_text())["tool"]["scaffold"][
        "channels"
    ]
    assert channel == {"name": "Stock", "module": "inventory"}


def test_a_second_channel_writes_no_schema_migration_and_numbers_its_own_after_the_rest(
    shop: Path,
) -> None:
    assert run_scaffold(*STOCK, cwd=shop).exit_code == 0
    second = run_scaffold("create-sse-channel", "StockLevel", "in", "warehouse-ops", cwd=shop)
    assert second.exit_code == 0, second.stderr
    assert second.stdout.endswith("\nRun your tests.\n")
    third = ("create-sse-channel", "Price", "in", "catalog", *TRIGGERED)
    assert run_scaffold(*third, cwd=shop).exit_code == 0
    assert sorted(path.name for path in (shop / "migrations").iterdir()) == [
        "0001_create_baskets.sql",
        "0002_fastapi_pg_sse_schema_1_5.sql",
        "0003_catalog_price_sse_trigger.sql",
    ]
    schema = tomllib.loads((shop / "pyproject.toml").read_text())["tool"]["scaffold"]["schema"]
    assert schema == [{"version": "1.5", "migration": "0002_fastapi_pg_sse_schema_1_5.sql"}]


def test_the_result_lists_every_migration_of_the_project_in_the_order_they_apply(
    shop: Path,
) -> None:
    first = create_sse_channel(shop, ChannelRequest("Stock", "inventory", "baskets", "user_id"))
    assert first.migrations == (
        "migrations/0002_fastapi_pg_sse_schema_1_5.sql",
        "migrations/0003_inventory_stock_sse_trigger.sql",
    )
    second = create_sse_channel(shop, ChannelRequest("StockLevel", "warehouse-ops"))
    assert second.migrations == first.migrations
    assert not [c.path for c in second.plan.pending if c.path.startswith("migrations/")]


def test_a_failure_while_writing_leaves_the_project_as_it_was(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(shop)
    write = apply.write_atomically
    calls = 0

    def failing_write(target: Path, text: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise OSError("disk full")
        write(target, text)

    monkeypatch.setattr(apply, "write_atomically", failing_write)
    with pytest.raises(OSError, match="disk full"):
        create_sse_channel(shop, ChannelRequest("Stock", "inventory"))
    assert snapshot(shop) == before
    assert not (shop / "shop" / "realtime").exists()


def test_the_plan_says_what_it_does_to_the_dependencies(shop: Path) -> None:
    result = run_scaffold(*STOCK, "--dry-run", cwd=shop)
    assert result.exit_code == 0, result.stderr
    assert (
        "pyproject.toml: raises fastapi>=0.135 to fastapi>=0.137.2 in [project] dependencies"
        " (the generated code needs it)\n"
        "pyproject.toml: adds fastapi-pg-sse>=0.10,<1 to [project] dependencies\n"
        "pyproject.toml: adds fastapi-pg-sse[testing]>=0.10,<1 to the test extra\n"
        "pyproject.toml: adds asyncpg-stubs>=0.29 to the test extra\n"
    ) in result.stdout
    assert run_scaffold(*STOCK, cwd=shop).exit_code == 0
    again = run_scaffold(*STOCK, "--dry-run", cwd=shop)
    assert "pyproject.toml:" not in again.stdout


def test_json_output_lists_the_dependency_changes(shop: Path) -> None:
    result = run_scaffold(*STOCK, "--dry-run", "--json", cwd=shop)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["dependencies"][:2] == [
        {
            "action": "raise",
            "requirement": "fastapi>=0.137.2",
            "replaces": "fastapi>=0.135",
            "in": "project.dependencies",
        },
        {
            "action": "add",
            "requirement": "fastapi-pg-sse>=0.10,<1",
            "replaces": None,
            "in": "project.dependencies",
        },
    ]


def test_a_dependency_that_excludes_the_needed_version_is_refused_and_nothing_written(
    shop: Path,
) -> None:
    pyproject = shop / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"fastapi>=0.135"', '"fastapi<0.100"'))
    before = snapshot(shop)
    result = run_scaffold(*STOCK, cwd=shop)
    assert result.exit_code == 2
    assert (
        "error: pyproject.toml: [project] dependencies lists fastapi<0.100, but the generated code"
        " needs fastapi>=0.137.2: allow that version, then run the command again"
    ) in result.stderr
    assert snapshot(shop) == before


def test_test_dependencies_join_the_projects_dev_dependency_group(shop: Path) -> None:
    pyproject = shop / "pyproject.toml"
    text = pyproject.read_text()
    test_extra = (
        '[project.optional-dependencies]\ntest = [\n    "httpx>=0.27",\n    "pytest>=8",\n]\n'
    )
    assert test_extra in text
    pyproject.write_text(
        text.replace(test_extra, '[dependency-groups]\ndev = [\n    "pytest>=8",\n]\n')
    )
    create_sse_channel(shop, ChannelRequest("Stock", "inventory"))
    assert (
        '[dependency-groups]\ndev = [\n    "pytest>=8",\n'
        '    "fastapi-pg-sse[testing]>=0.10,<1",\n    "asyncpg-stubs>=0.29",\n]\n'
    ) in pyproject.read_text()
    assert "optional-dependencies" not in pyproject.read_text()


def test_running_the_command_again_says_nothing_changed_and_no_migration_to_apply(
    shop: Path,
) -> None:
    assert run_scaffold(*STOCK, cwd=shop).exit_code == 0
    again = run_scaffold(*STOCK, cwd=shop)
    assert again.exit_code == 0, again.stderr
    assert again.stdout.endswith(
        "\nChannel Stock in inventory is already in place"
        " (GET /inventory/events/stock/stream): nothing changed.\n"
    )
    assert "Apply" not in again.stdout


def test_running_the_command_again_to_restore_a_file_asks_to_apply_no_migration(
    shop: Path,
) -> None:
    assert run_scaffold(*STOCK, *TRIGGERED, cwd=shop).exit_code == 0
    (shop / "shop/sse_channels.py").unlink()
    again = run_scaffold(*STOCK, *TRIGGERED, cwd=shop)
    assert again.exit_code == 0, again.stderr
    assert "  create  shop/sse_channels.py\n" in again.stdout
    assert "Apply" not in again.stdout
    assert again.stdout.endswith(
        "\nChannel ready: GET /inventory/events/stock/stream\nRun your tests.\n"
    )


def test_a_channel_whose_name_is_a_reserved_sql_key_word_is_created(shop: Path) -> None:
    """Its name is a string value in SQL (`fastapi_pg_sse.emit('current_date', ...)`)."""
    result = run_scaffold("create-sse-channel", "Date", "in", "current", *TRIGGERED, cwd=shop)
    assert result.exit_code == 0, result.stderr
    migration = (shop / "migrations/0003_current_date_sse_trigger.sql").read_text()
    assert "create_trigger(\n    'current_date', 'baskets'," in migration
