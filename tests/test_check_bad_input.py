"""Bad input to the commands that read the recorded channels (check, sync, list, remove): a
clear message, exit 2, and every file left byte-identical."""

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import run_scaffold, snapshot
from tests.test_check import generated_copy

COMMANDS = {
    "check": ("check",),
    "sync": ("sync",),
    "list": ("list",),
    "remove": ("remove-sse-channel", "Stock", "in", "inventory"),
}
STOCK_ENTRY = '[[tool.scaffold.channels]]\nname = "Stock"\n'


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def invalid_name(project: Path) -> None:
    edit(project / "pyproject.toml", 'name = "StockLevel"', 'name = "2fast"')


def invalid_columns(project: Path) -> None:
    edit(
        project / "pyproject.toml",
        'user_column = "user_id"',
        'user_column = "user_id"\ncolumns = ["Id"]',
    )


def both_audience_columns(project: Path) -> None:
    edit(
        project / "pyproject.toml",
        'user_column = "user_id"',
        'user_column = "user_id"\ngroup_column = "team_id"',
    )


def groups_not_a_function(project: Path) -> None:
    edit(project / "pyproject.toml", 'tests = "tests"', 'tests = "tests"\ngroups = "shop.auth"')


def recorded_twice(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    entry = pyproject.read_text().split(STOCK_ENTRY)[1].split("\n\n")[0]
    pyproject.write_text(f"{pyproject.read_text()}\n{STOCK_ENTRY}{entry}\n")


def schema_without_migration(project: Path) -> None:
    edit(project / "pyproject.toml", 'migration = "0002_fastapi_pg_sse_schema_1_5.sql"\n', "")


def migration_is_a_path(project: Path) -> None:
    edit(project / "pyproject.toml", 'migration = "0003_', 'migration = "../0003_')


def migration_of_another_kind(project: Path) -> None:
    edit(project / "pyproject.toml", "_sse_trigger.sql", "_sse_trigger.py")


def package_is_a_keyword(project: Path) -> None:
    edit(project / "pyproject.toml", 'package = "shop"', 'package = "shop.class"')


def app_does_not_parse(project: Path) -> None:
    edit(project / "shop/main.py", "@app.get", "@app.get(\ndef broken(:\n@app.get")


def app_does_not_parse_nor_wire(project: Path) -> None:
    edit(project / "shop/main.py", "app.include_router(realtime_router)\n", "def broken(:\n")


CASES: dict[str, tuple[Callable[[Path], None], str, tuple[str, ...]]] = {
    "invalid-name": (
        invalid_name,
        "records an invalid channel 2fast in warehouse-ops: channel name '2fast' must start with"
        " a letter",
        ("check", "sync", "list", "remove"),
    ),
    "invalid-columns": (
        invalid_columns,
        "records an invalid channel StockLevel in warehouse-ops: columns: column 'Id' is not a"
        " plain lowercase PostgreSQL",
        ("check", "sync", "list", "remove"),
    ),
    "both-audience-columns": (
        both_audience_columns,
        "records an invalid channel StockLevel in warehouse-ops: a trigger records its table with"
        " either user_column or group_column, not user_column and group_column",
        ("check", "sync", "list", "remove"),
    ),
    "groups-not-a-function": (
        groups_not_a_function,
        "groups in {pyproject} must name the function that gives a user's groups, like"
        " 'shop.auth:groups_of'",
        ("check", "sync", "list", "remove"),
    ),
    "recorded-twice": (
        recorded_twice,
        "channel Stock in inventory is recorded twice in [tool.scaffold]",
        ("check", "sync", "list", "remove"),
    ),
    "schema-without-migration": (
        schema_without_migration,
        "records an invalid [[tool.scaffold.schema]] entry: it needs a version and a migration",
        ("check", "sync", "list", "remove"),
    ),
    "migration-is-a-path": (
        migration_is_a_path,
        "records an invalid channel StockLevel in warehouse-ops: migration must be a file name of"
        " the migrations folder, not '../0003_warehouse_ops_stock_level_sse_trigger.sql'",
        ("check", "sync", "list", "remove"),
    ),
    "migration-of-another-kind": (
        migration_of_another_kind,
        "its migration '0003_warehouse_ops_stock_level_sse_trigger.py' is not one of the plain SQL"
        " files (.sql) that [tool.scaffold] says the migrations are",
        ("check", "sync", "list", "remove"),
    ),
    "package-is-a-keyword": (
        package_is_a_keyword,
        "must be a package name like 'shop'",
        ("check", "sync", "list", "remove"),
    ),
    "app-does-not-parse": (
        app_does_not_parse,
        "shop/main.py, line ",
        ("check", "sync", "remove"),
    ),
    "app-does-not-parse-nor-wire": (
        app_does_not_parse_nor_wire,
        "shop/main.py, line ",
        ("check", "sync", "remove"),
    ),
}


@pytest.mark.parametrize(
    ("case", "command"),
    [(case, command) for case, (_, _, commands) in CASES.items() for command in commands],
)
def test_bad_input_is_refused_and_nothing_is_written(
    tmp_path: Path, case: str, command: str
) -> None:
    project = generated_copy("second-channel", tmp_path / "shop")
    break_it, message, _ = CASES[case]
    break_it(project)
    before = snapshot(project)
    result = run_scaffold(*COMMANDS[command], cwd=project)
    assert (result.exit_code, snapshot(project)) == (2, before), result.stdout + result.stderr
    assert message.format(pyproject=project / "pyproject.toml") in result.stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_missing_project_path_is_refused(shop: Path, command: str) -> None:
    before = snapshot(shop)
    result = run_scaffold(*COMMANDS[command], "--project", str(shop / "nowhere"), cwd=shop)
    assert (result.exit_code, snapshot(shop)) == (2, before)
    assert f"project path {shop / 'nowhere'} does not exist" in result.stderr
