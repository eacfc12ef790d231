"""Bad input gets a clear message and a non-zero exit, and leaves every file byte-identical."""

from pathlib import Path

import pytest

from tests.golden_cases import TRIGGERED
from tests.helpers import CliResult, run_scaffold, snapshot


def refused(project: Path, *args: str, cwd: Path | None = None) -> CliResult:
    """Run the command, asserting it changed nothing under `project`."""
    before = snapshot(project)
    result = run_scaffold("create-sse-channel", *args, cwd=cwd or project)
    assert snapshot(project) == before, "a refused command changed files"
    return result


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("2fast", "in", "inventory"), "channel name '2fast' must start with a letter"),
        (("Stock", "in", "../etc"), "must be a name, not a path"),
        (("class", "in", "inventory"), "Python keyword"),
        (("List", "in", "inventory"), "builtin"),
        (("Stöck", "in", "inventory"), "channel name 'Stöck'"),
        (("", "in", "inventory"), "channel name"),
        (("Stock", "at", "inventory"), "expected the word 'in'"),
        (
            ("Stock", "in", "inventory", "--table", "baskets"),
            "--table baskets needs either --user-column (each row's events go to the user it"
            " names) or --group-column (to every member of the group it names), to say to whom"
            " its events go",
        ),
        (
            ("Stock", "in", "inventory", *TRIGGERED, "--group-column", "user_id"),
            "--table baskets needs either --user-column",
        ),
        (
            ("Stock", "in", "inventory", "--group-column", "user_id"),
            "--group-column says to whom the events of a trigger on --table go: it needs --table",
        ),
        (
            ("Stock", "in", "inventory", "--user-column", "user_id"),
            "--user-column says to whom the events of a trigger on --table go: it needs --table",
        ),
        (
            ("Stock", "in", "inventory", "--table", "baskets", "--group-column", "a.b.c"),
            "--group-column 'a.b.c' follows more than one foreign key",
        ),
        (
            ("Stock", "in", "inventory", "--table", "Baskets!", "--user-column", "user_id"),
            "--table",
        ),
        (
            ("A" * 60, "in", "inventory"),
            "the channel's name 'inventory_aaaa",
        ),
        (
            ("Stock", "in", "inventory", "--columns", "id,stock"),
            "--columns chooses what the events of a trigger carry: it needs --table and"
            " --user-column or --group-column",
        ),
        (
            ("Stock", "in", "inventory", *TRIGGERED, "--columns", "id,Stock!"),
            "--columns: column 'Stock!' is not a plain lowercase PostgreSQL identifier",
        ),
        (
            ("Stock", "in", "inventory", *TRIGGERED, "--columns", "id,select"),
            "--columns: column 'select' is a reserved PostgreSQL key word",
        ),
        (
            ("Stock", "in", "inventory", *TRIGGERED, "--columns", "id,stock", "--columns", "id"),
            "--columns names the column 'id' twice; list each column once",
        ),
        (("Stock", "in", "inventory", *TRIGGERED, "--columns", ","), "--columns is empty"),
        (
            (
                "Stock",
                "in",
                "inventory",
                *TRIGGERED,
                "--columns",
                ",".join(f"c{n}" for n in range(51)),
            ),
            "--columns names 51 columns; an event carries at most 50",
        ),
    ],
)
def test_invalid_arguments_are_refused(
    shop: Path, arguments: tuple[str, ...], message: str
) -> None:
    result = refused(shop, *arguments)
    assert result.exit_code == 2
    assert message in result.stderr


def test_a_folder_without_pyproject_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    result = refused(folder, "Stock", "in", "inventory")
    assert result.exit_code == 2
    assert "no pyproject.toml at or above" in result.stderr


def test_a_missing_project_path_is_refused(shop: Path) -> None:
    result = refused(shop, "Stock", "in", "inventory", "--project", str(shop / "nowhere"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_a_project_without_scaffold_table_is_told_how_to_add_one(shop: Path) -> None:
    pyproject = shop / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().split("# Where scaffold")[0])
    result = refused(shop, "Stock", "in", "inventory")
    assert result.exit_code == 2
    assert "has no [tool.scaffold] table; add one such as" in result.stderr
    assert 'app = "shop.main:app"' in result.stderr


def test_a_missing_app_module_is_refused(shop: Path) -> None:
    (shop / "shop" / "main.py").unlink()
    result = refused(shop, "Stock", "in", "inventory")
    assert result.exit_code == 2
    assert "the app module shop.main (shop/main.py) does not exist" in result.stderr


def test_an_app_module_that_does_not_parse_is_refused(shop: Path) -> None:
    main = shop / "shop" / "main.py"
    main.write_text(main.read_text() + "\ndef broken(:\n")
    result = refused(shop, "Stock", "in", "inventory")
    assert result.exit_code == 2
    assert (
        "shop/main.py, line 26: invalid syntax; fix it and run the command again" in result.stderr
    )


def test_an_app_module_without_the_app_is_refused(shop: Path) -> None:
    main = shop / "shop" / "main.py"
    main.write_text(main.read_text().replace("app = FastAPI(", "application = FastAPI("))
    result = refused(shop, "Stock", "in", "inventory")
    assert result.exit_code == 2
    assert "defines no 'app = FastAPI(...)'" in result.stderr


def test_two_channels_sharing_a_channel_name_are_refused(shop: Path) -> None:
    assert (
        run_scaffold("create-sse-channel", "LevelStock", "in", "inventory", cwd=shop).exit_code == 0
    )
    result = refused(shop, "Stock", "in", "inventory-level")
    assert result.exit_code == 2
    assert (
        "channel Stock in inventory-level and channel LevelStock in inventory would share"
        in result.stderr
    )
    assert "'inventory_level_stock" in result.stderr


def test_a_hand_edited_channel_is_a_conflict_that_shows_the_difference(shop: Path) -> None:
    assert run_scaffold("create-sse-channel", "Stock", "in", "inventory", cwd=shop).exit_code == 0
    service = shop / "shop" / "modules" / "inventory" / "services" / "stock_notify_service.py"
    service.write_text(service.read_text() + "# a hand edit\n")
    result = refused(shop, "Stock", "in", "inventory")
    assert result.exit_code == 1
    assert "-# a hand edit" in result.stderr
    assert "a/shop/modules/inventory/services/stock_notify_service.py" in result.stderr
    assert "--force overwrites generated files" in result.stderr


def test_force_overwrites_generated_files_and_keeps_the_users_edits(shop: Path) -> None:
    assert run_scaffold("create-sse-channel", "Stock", "in", "inventory", cwd=shop).exit_code == 0
    service = shop / "shop" / "modules" / "inventory" / "services" / "stock_notify_service.py"
    generated = service.read_text()
    service.write_text(generated + "# a hand edit\n")
    main = shop / "shop" / "main.py"
    main.write_text(main.read_text() + "\n# the user's own comment\n")
    result = run_scaffold("create-sse-channel", "Stock", "in", "inventory", "--force", cwd=shop)
    assert result.exit_code == 0, result.stderr
    assert service.read_text() == generated
    assert main.read_text().endswith("# the user's own comment\n")


def test_a_recorded_channel_cannot_change_its_trigger(shop: Path) -> None:
    assert run_scaffold("create-sse-channel", "Stock", "in", "inventory", cwd=shop).exit_code == 0
    result = refused(
        shop, "Stock", "in", "inventory", "--table", "baskets", "--user-column", "user_id"
    )
    assert result.exit_code == 2
    assert "already exists with no trigger" in result.stderr


def test_a_recorded_channel_cannot_change_the_columns_its_events_carry(shop: Path) -> None:
    create = ("Stock", "in", "inventory", *TRIGGERED)
    assert run_scaffold("create-sse-channel", *create, "--columns", "id", cwd=shop).exit_code == 0
    result = refused(shop, *create, "--columns", "id,stock")
    assert result.exit_code == 2
    assert "already exists with a trigger on baskets.user_id carrying id;" in result.stderr
    every_column = refused(shop, *create)
    assert every_column.exit_code == 2
    assert (
        "carrying id; a channel's trigger is made with it: remove the channel and create it again"
        " to change it"
    ) in every_column.stderr
