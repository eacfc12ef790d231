"""`scaffold check`: each kind of drift is reported with the command that fixes it."""

import functools
import json
import shutil
import tempfile
import tomllib
from pathlib import Path

import fastapi_pg_sse
import pytest

from scaffold.lock import LOCK_PATH
from scaffold.render import HEADER, MIGRATION_HEADER, USERS_HEADER
from scaffold.runtime_schema import RUNTIME_PACKAGE
from tests.golden_cases import generate, with_notices_to_teams
from tests.helpers import HEAVY_MODULES, heavy_modules_loaded, run_scaffold, snapshot

SERVICE = "shop/modules/inventory/services/stock_notify_service.py"
INCLUDE = "app.include_router(realtime_router)\n"


_GENERATED = tempfile.TemporaryDirectory(prefix="scaffold-generated-")


@functools.cache
def _generated_once(case: str) -> Path:
    return generate(case, Path(_GENERATED.name) / case)


def generated_copy(case: str, destination: Path) -> Path:
    """`examples/shop` as the golden case `case` generates it, copied to `destination`.

    Each case is generated once per test session, with the real CLI.
    """
    return Path(shutil.copytree(_generated_once(case), destination))


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    """A copy of `examples/shop` with two channels."""
    return generated_copy("second-channel", tmp_path / "shop")


def test_a_generated_project_is_in_sync(generated: Path) -> None:
    result = run_scaffold("check", cwd=generated)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.startswith("In sync: ")


def test_a_project_without_channels_is_in_sync(shop: Path) -> None:
    result = run_scaffold("check", cwd=shop)
    assert result.exit_code == 0, result.stderr


def test_a_hand_edit_is_reported_as_modified_with_its_diff(generated: Path) -> None:
    service = generated / SERVICE
    service.write_text(service.read_text() + "# a hand edit\n")
    result = run_scaffold("check", cwd=generated)
    assert result.exit_code == 1
    assert f"      modified  {SERVICE}\n--- a/{SERVICE}\n+++ b/{SERVICE}\n" in result.stdout
    assert "\n-# a hand edit\n" in result.stdout
    assert result.stdout.endswith("Out of sync. To fix: scaffold sync --force\n")


def test_a_deleted_generated_file_is_reported_missing(generated: Path) -> None:
    (generated / "shop/sse_channels.py").unlink()
    result = run_scaffold("check", cwd=generated)
    assert result.exit_code == 1
    assert "       missing  shop/sse_channels.py\n" in result.stdout
    assert result.stdout.endswith("To fix: scaffold sync\n")


def test_a_deleted_include_router_line_is_missing_wiring(generated: Path) -> None:
    main = generated / "shop/main.py"
    main.write_text(main.read_text().replace(INCLUDE, ""))
    result = run_scaffold("check", cwd=generated)
    assert result.exit_code == 1
    assert "missing wiring  shop/main.py (realtime_router)\n" in result.stdout
    assert f"\n+{INCLUDE}" in result.stdout
    assert result.stdout.endswith("To fix: scaffold sync\n")


def test_a_deleted_import_is_missing_wiring(generated: Path) -> None:
    main = generated / "shop/main.py"
    main.write_text(main.read_text().replace("from shop.sse_channels import realtime_router\n", ""))
    result = run_scaffold("check", cwd=generated)
    assert result.exit_code == 1
    assert "missing wiring  shop/main.py (realtime_router)\n" in result.stdout


def test_the_users_own_files_are_not_checked(generated: Path) -> None:
    (generated / "shop/modules/inventory/__init__.py").write_text('"""Inventory."""\n')
    (generated / "shop/modules/warehouse_ops/services/__init__.py").unlink()
    pyproject = generated / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('    "pyjwt>=2.8",\n', ""))
    main = generated / "shop/main.py"
    main.write_text(main.read_text() + "\n\n# The user's own line.\n")
    result = run_scaffold("check", cwd=generated)
    assert result.exit_code == 0, result.stdout


def test_wiring_written_differently_still_counts(generated: Path) -> None:
    main = generated / "shop/main.py"
    main.write_text(main.read_text().replace(INCLUDE, INCLUDE.replace(")", ', prefix="")')))
    result = run_scaffold("check", cwd=generated)
    assert result.exit_code == 0, result.stdout


def test_json_report_lists_each_finding_and_the_fix(generated: Path) -> None:
    (generated / "shop/sse_channels.py").unlink()
    main = generated / "shop/main.py"
    main.write_text(main.read_text().replace(INCLUDE, ""))
    result = run_scaffold("check", "--json", "--project", str(generated), cwd=generated.parent)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["in_sync"] is False
    assert [(f["path"], f["status"]) for f in report["findings"]] == [
        ("shop/main.py", "missing wiring"),
        ("shop/sse_channels.py", "missing"),
    ]
    assert report["findings"][0]["routers"] == ["realtime_router"]
    assert report["fix"] == f"scaffold sync --project {generated}"


def test_check_writes_nothing(generated: Path) -> None:
    service = generated / SERVICE
    service.write_text(service.read_text() + "# a hand edit\n")
    (generated / "shop/sse_channels.py").unlink()
    before = snapshot(generated)
    assert run_scaffold("check", cwd=generated).exit_code == 1
    assert snapshot(generated) == before


@pytest.mark.parametrize("case", ["second-channel", "stock-level-in-warehouse-ops-with-trigger"])
@pytest.mark.parametrize("options", [(), ("--json",), ("--project", ".")])
def test_check_in_sync_loads_neither_libcst_tomlkit_pglast_pydantic_nor_typer(
    case: str, options: tuple[str, ...], tmp_path: Path
) -> None:
    """typer is imported only to style what is out of sync: a check in sync prints plain text."""
    project = generated_copy(case, tmp_path / "shop")
    assert heavy_modules_loaded(project, "check", *options, among=(*HEAVY_MODULES, "typer")) == []


def test_generated_headers_carry_no_version_or_date(generated: Path) -> None:
    """Upgrading scaffold changes nothing on disk unless the generated text itself changed.

    The lock holds only hashes of that text.
    """
    first_lines = {
        path.read_text().partition("\n")[0]
        for path in generated.rglob("*")
        if path.is_file()
        and path.name != LOCK_PATH
        and "scaffold" in path.read_text().partition("\n")[0]
    }
    assert first_lines == {f"# {HEADER}", f"-- {MIGRATION_HEADER}", f"# {USERS_HEADER}"}


def test_create_check_edit_check_sync_check(shop: Path) -> None:
    """The round trip a user goes through."""
    assert run_scaffold("create-sse-channel", "Stock", "in", "inventory", cwd=shop).exit_code == 0
    assert run_scaffold("check", cwd=shop).exit_code == 0
    service = shop / SERVICE
    service.write_text(service.read_text().replace('"inventory_stock"', "'inventory_stock'", 1))
    assert run_scaffold("check", cwd=shop).exit_code == 1
    assert run_scaffold("sync", cwd=shop).exit_code == 1, "sync overwrote a hand edit"
    synced = run_scaffold("sync", "--force", cwd=shop)
    assert synced.exit_code == 0, synced.stderr
    assert f"  update  {SERVICE}\n" in synced.stdout
    assert run_scaffold("check", cwd=shop).exit_code == 0


@pytest.mark.parametrize(
    "name", ["0002_fastapi_pg_sse_schema_1_5.sql", "0003_warehouse_ops_stock_level_sse_trigger.sql"]
)
def test_an_applied_migration_edited_by_hand_is_history_not_drift(
    generated: Path, name: str
) -> None:
    migration = generated / "migrations" / name
    edited = migration.read_text() + "-- squashed into the baseline on deploy\n"
    migration.write_text(edited)
    assert run_scaffold("check", cwd=generated).exit_code == 0
    assert run_scaffold("sync", "--force", cwd=generated).exit_code == 0
    assert migration.read_text() == edited


def test_the_chosen_columns_are_recorded_and_sync_writes_the_row_model_of_them_again(
    tmp_path: Path,
) -> None:
    project = generated_copy("stock-in-inventory-with-chosen-columns", tmp_path / "shop")
    assert run_scaffold("check", cwd=project).exit_code == 0
    events = project / "shop/modules/inventory/services/stock_events.py"
    written = events.read_text()
    events.unlink()
    synced = run_scaffold("sync", cwd=project)
    assert synced.exit_code == 0, synced.stderr
    assert events.read_text() == written
    assert "class BasketsRow(ChannelEvent):" in written
    assert '(id, stock)."""\n\n    id: int\n    stock: int\n\n\n' in written


NEWER_SCHEMA = "-- fastapi-pg-sse schema 1.6: a version a newer runtime ships.\nSELECT 1;\n"


@pytest.fixture
def newer_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, the fastapi-pg-sse beside scaffold (first on PYTHONPATH, which the commands
    run in a subprocess inherit) ships the schema versions this one ships and a newer 1.6."""
    package = tmp_path / "newer-runtime" / RUNTIME_PACKAGE
    shutil.copytree(Path(fastapi_pg_sse.__file__).parent / "migrations", package / "migrations")
    (package / "__init__.py").write_text("")
    (package / "migrations" / "1.6.sql").write_text(NEWER_SCHEMA)
    monkeypatch.setenv("PYTHONPATH", str(package.parent))


def test_a_newer_runtime_schema_is_reported_and_sync_writes_and_records_its_migration(
    generated: Path, newer_runtime: None
) -> None:
    before = snapshot(generated)
    checked = run_scaffold("check", cwd=generated)
    assert checked.exit_code == 1, checked.stdout + checked.stderr
    assert (
        "    new schema  migrations/0004_fastapi_pg_sse_schema_1_6.sql"
        " (fastapi-pg-sse's schema 1.6)\n"
    ) in checked.stdout
    assert "       records  pyproject.toml\n--- a/pyproject.toml\n" in checked.stdout
    assert checked.stdout.endswith("Out of sync. To fix: scaffold sync\n")
    assert snapshot(generated) == before

    synced = run_scaffold("sync", cwd=generated)
    assert synced.exit_code == 0, synced.stderr
    assert "  create  migrations/0004_fastapi_pg_sse_schema_1_6.sql\n" in synced.stdout
    assert synced.stdout.endswith(
        "\nApply migrations/0004_fastapi_pg_sse_schema_1_6.sql to your database.\n"
    )
    written = (generated / "migrations/0004_fastapi_pg_sse_schema_1_6.sql").read_text()
    assert written == f"-- {MIGRATION_HEADER}\n{NEWER_SCHEMA}"
    recorded = tomllib.loads((generated / "pyproject.toml").read_text())["tool"]["scaffold"]
    assert recorded["schema"] == [
        {"version": "1.5", "migration": "0002_fastapi_pg_sse_schema_1_5.sql"},
        {"version": "1.6", "migration": "0004_fastapi_pg_sse_schema_1_6.sql"},
    ]
    assert run_scaffold("check", cwd=generated).exit_code == 0


def test_json_reports_a_newer_runtime_schema_with_what_its_migration_does(
    generated: Path, newer_runtime: None
) -> None:
    report = json.loads(run_scaffold("check", "--json", cwd=generated).stdout)
    findings = {finding["path"]: finding for finding in report["findings"]}
    assert {path: finding["status"] for path, finding in findings.items()} == {
        "migrations/0004_fastapi_pg_sse_schema_1_6.sql": "new schema",
        "pyproject.toml": "records",
    }
    new_schema = findings["migrations/0004_fastapi_pg_sse_schema_1_6.sql"]
    assert (new_schema["detail"], new_schema["diff"]) == ("fastapi-pg-sse's schema 1.6", None)
    assert report["fix"] == "scaffold sync"


def test_a_project_without_channels_needs_no_runtime_schema(
    shop: Path, newer_runtime: None
) -> None:
    result = run_scaffold("check", cwd=shop)
    assert result.exit_code == 0, result.stdout


def made_by_scaffold_0_4(project: Path) -> None:
    """Make the stock-in-inventory project look as scaffold 0.4 left it: its channel recorded
    with the migration of its own tables and functions, no runtime schema recorded."""
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    schema = (
        '[[tool.scaffold.schema]]\nversion = "1.5"\n'
        'migration = "0002_fastapi_pg_sse_schema_1_5.sql"\n\n'
    )
    assert schema in text
    pyproject.write_text(
        text.replace(schema, "").replace(
            'module = "inventory"\n',
            'module = "inventory"\nmigration = "0002_inventory_stock_sse_channel.sql"\n',
        )
    )
    migrations = project / "migrations"
    (migrations / "0002_fastapi_pg_sse_schema_1_5.sql").unlink()
    (migrations / "0002_inventory_stock_sse_channel.sql").write_text("-- scaffold 0.4's\n")


def test_a_channel_made_by_scaffold_0_4_is_reported_with_the_migrations_that_upgrade_it(
    tmp_path: Path,
) -> None:
    project = generated_copy("stock-in-inventory", tmp_path / "shop")
    made_by_scaffold_0_4(project)
    checked = run_scaffold("check", cwd=project)
    assert checked.exit_code == 1, checked.stdout + checked.stderr
    assert (
        "    new schema  migrations/0003_fastapi_pg_sse_schema_1_5.sql"
        " (fastapi-pg-sse's schema 1.5)\n"
        "       upgrade  migrations/0004_upgrade_inventory_stock_sse_channel.sql"
        " (Stock in inventory, made before fastapi-pg-sse 0.5)\n"
    ) in checked.stdout
    assert "       records  pyproject.toml\n" in checked.stdout

    synced = run_scaffold("sync", cwd=project)
    assert synced.exit_code == 0, synced.stderr
    assert synced.stdout.endswith(
        "\nApply migrations/0003_fastapi_pg_sse_schema_1_5.sql,"
        " migrations/0004_upgrade_inventory_stock_sse_channel.sql to your database.\n"
    )
    recorded = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["scaffold"]
    assert recorded["schema"] == [
        {"version": "1.5", "migration": "0003_fastapi_pg_sse_schema_1_5.sql"}
    ]
    assert recorded["channels"] == [
        {
            "name": "Stock",
            "module": "inventory",
            "migration": "0002_inventory_stock_sse_channel.sql",
            "upgrade": "0004_upgrade_inventory_stock_sse_channel.sql",
        }
    ]
    assert (project / "migrations/0002_inventory_stock_sse_channel.sql").read_text() == (
        "-- scaffold 0.4's\n"
    )
    assert run_scaffold("check", cwd=project).exit_code == 0


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ('groups = "shop.teams:groups_of"', "shop/teams.py defines no groups_of"),
        (
            'auth = "shop.sessions:current_user_id"',
            "the project has no module shop.sessions (shop/sessions.py or"
            " shop/sessions/__init__.py)",
        ),
    ],
    ids=["function-missing", "module-missing"],
)
def test_check_and_sync_refuse_an_auth_or_groups_function_the_project_lacks(
    shop: Path, setting: str, problem: str
) -> None:
    with_notices_to_teams(shop)
    assert run_scaffold("create-sse-channel", "Notice", "in", "teams", cwd=shop).exit_code == 0
    pyproject = shop / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('groups = "shop.teams:teams_of"', setting))
    for command in ("check", "sync"):
        result = run_scaffold(command, cwd=shop)
        assert result.exit_code == 2, result.stdout
        assert f"[tool.scaffold] {setting}: {problem}" in result.stderr
