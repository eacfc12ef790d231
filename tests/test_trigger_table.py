"""A trigger's table as the migrations show it, and the row its generated test inserts.

`--table` and `--user-column` (and `--columns`) are checked against the project's migrations:
what they show does not exist is refused; what they cannot tell is said in the plan. The row the
trigger test inserts comes from a row factory beside the tests, created once and then the user's.
"""

import json
from pathlib import Path

import pytest

from scaffold.schema import read_schema
from tests.golden_cases import TRIGGERED
from tests.helpers import run_scaffold, snapshot

ROWS = "tests/realtime/baskets_rows.py"
STOCK = ("Stock", "in", "inventory")


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        (
            ("--table", "orders", "--user-column", "user_id"),
            "--table orders --user-column user_id: no migration creates table orders (tables:"
            " baskets); check the names, or write the table's migration first",
        ),
        (
            ("--table", "baskets", "--user-column", "customer_id"),
            "table baskets has no column customer_id in the migrations (columns: id, stock,"
            " user_id)",
        ),
        ((*TRIGGERED, "--columns", "id,price"), "table baskets has no column price"),
    ],
    ids=["table", "user-column", "payload-column"],
)
def test_a_table_or_column_the_migrations_do_not_have_is_refused(
    shop: Path, trigger: tuple[str, ...], message: str
) -> None:
    before = snapshot(shop)
    result = run_scaffold("create-sse-channel", *STOCK, *trigger, cwd=shop)
    assert (result.exit_code, snapshot(shop)) == (2, before)
    assert message in result.stderr


def test_the_migrations_are_followed_through_renames_and_later_columns(shop: Path) -> None:
    (shop / "migrations" / "0002_rename_baskets.sql").write_text(
        "ALTER TABLE baskets RENAME TO carts;\n"
        "ALTER TABLE carts RENAME COLUMN user_id TO owner_id;\n"
        "ALTER TABLE carts ADD COLUMN label text;\n"
    )
    old_name = run_scaffold("create-sse-channel", *STOCK, *TRIGGERED, cwd=shop)
    assert old_name.exit_code == 2
    assert "no migration creates table baskets (tables: carts)" in old_name.stderr
    new_names = ("--table", "carts", "--user-column", "owner_id", "--columns", "id,label")
    created = run_scaffold("create-sse-channel", *STOCK, *new_names, cwd=shop)
    assert created.exit_code == 0, created.stderr
    assert "cannot tell" not in created.stdout


def test_what_the_migrations_cannot_tell_is_said_in_the_plan(shop: Path) -> None:
    (shop / "migrations" / "0002_orders.sql").write_text(
        "DO $$ BEGIN EXECUTE 'CREATE TABLE orders (id int, customer_id text)'; END $$;\n"
    )
    trigger = ("--table", "orders", "--user-column", "customer_id")
    dry_run = run_scaffold("create-sse-channel", *STOCK, *trigger, "--dry-run", cwd=shop)
    as_json = run_scaffold("create-sse-channel", *STOCK, *trigger, "--json", "--dry-run", cwd=shop)
    assert dry_run.exit_code == as_json.exit_code == 0, dry_run.stderr
    unchecked = (
        "scaffold cannot tell from the migrations whether table orders exists"
        " (0002_orders.sql runs a DO block)"
    )
    assert f"Trigger on orders: {unchecked}." in dry_run.stdout
    assert json.loads(as_json.stdout)["unchecked"] == unchecked


def test_the_row_factory_is_created_once_and_then_the_users(shop: Path) -> None:
    assert run_scaffold("create-sse-channel", *STOCK, *TRIGGERED, cwd=shop).exit_code == 0
    rows = shop / ROWS
    assert 'insert_row(connection, "baskets", fill=[user_column])' in rows.read_text()
    edited = rows.read_text().replace("fill=[user_column]", 'fill=[user_column, "stock"]')
    rows.write_text(edited)

    check = run_scaffold("check", cwd=shop)
    sync = run_scaffold("sync", cwd=shop)
    removed = run_scaffold("remove-sse-channel", *STOCK, cwd=shop)
    assert (check.exit_code, sync.exit_code, removed.exit_code) == (0, 0, 0), check.stdout
    assert rows.read_text() == edited, "scaffold touched the user's row factory"


def test_an_unused_row_factory_goes_with_its_channel_if_untouched(shop: Path) -> None:
    assert run_scaffold("create-sse-channel", *STOCK, *TRIGGERED, cwd=shop).exit_code == 0
    (shop / ROWS).unlink()
    assert run_scaffold("check", cwd=shop).stdout.startswith("       missing  " + ROWS)
    assert run_scaffold("sync", cwd=shop).exit_code == 0
    assert run_scaffold("remove-sse-channel", *STOCK, cwd=shop).exit_code == 0
    assert not (shop / ROWS).exists()


def test_the_migrations_cannot_tell_a_column_after_a_do_block_nor_mix_up_schemas(
    tmp_path: Path,
) -> None:
    (tmp_path / "1.sql").write_text(
        "CREATE TABLE orders (id int, total numeric);\nCREATE TABLE billing.orders (x int);\n"
    )
    (tmp_path / "2.sql").write_text("DROP TABLE billing.orders;\n")
    (tmp_path / "3.sql").write_text(
        "DO $$ BEGIN ALTER TABLE orders ADD COLUMN customer_id int; END $$;\n"
    )
    schema = read_schema(sorted(tmp_path.glob("*.sql")))
    assert {table: set(columns) for table, columns in schema.tables.items()} == {
        "orders": {"id", "total"}
    }
    assert schema.table_problem("orders", ["customer_id"]) == (
        None,
        "scaffold cannot tell from the migrations whether orders has customer_id (3.sql runs a"
        " DO block)",
    )
