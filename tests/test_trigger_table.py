"""A trigger's table as the migrations show it, and the row its generated test inserts.

`--table` and `--user-column` (and `--columns`) are checked against the project's migrations:
what they show does not exist is refused; what they cannot tell is said in the plan. The row the
trigger test inserts comes from the runtime's `insert_row`, or, for a table that needs more, from
the `realtime_row_factory` fixture the project overrides.
"""

import json
from pathlib import Path

import pytest

from scaffold.schema import read_schema
from tests.golden_cases import TRIGGERED
from tests.helpers import (
    channel_test_count,
    failed_generated_tests,
    run_generated_tests,
    run_scaffold,
    snapshot,
)

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


ARTICLES_AND_COMMENTS = """\
CREATE TABLE writers (id bigint PRIMARY KEY);
CREATE TABLE articles (id bigint PRIMARY KEY, writer_id bigint NOT NULL REFERENCES writers);
CREATE TABLE comments (id bigint PRIMARY KEY, body text, post_id bigint, editor_id bigint);
ALTER TABLE comments ADD CONSTRAINT comments_post FOREIGN KEY (post_id) REFERENCES articles (id);
ALTER TABLE articles RENAME TO posts;
ALTER TABLE posts RENAME COLUMN writer_id TO author_id;
"""


@pytest.mark.parametrize(
    ("user_column", "message"),
    [
        ("body.author_id", "comments.body is not a single-column foreign key in the migrations"),
        ("editor_id.author_id", "comments.editor_id is not a single-column foreign key"),
        ("post_id.writer_id", "table posts has no column writer_id in the migrations"),
        ("article_id.author_id", "table comments has no column article_id in the migrations"),
        ("post_id.author_id.id", "follows more than one foreign key"),
    ],
)
def test_a_recipient_through_a_foreign_key_the_migrations_do_not_show_is_refused(
    shop: Path, user_column: str, message: str
) -> None:
    (shop / "migrations" / "0002_posts.sql").write_text(ARTICLES_AND_COMMENTS)
    before = snapshot(shop)
    trigger = ("--table", "comments", "--user-column", user_column)
    result = run_scaffold("create-sse-channel", "Comment", "in", "blog", *trigger, cwd=shop)
    assert (result.exit_code, snapshot(shop)) == (2, before)
    assert message in result.stderr


def test_a_recipient_through_a_foreign_key_is_followed_through_renames(shop: Path) -> None:
    (shop / "migrations" / "0002_posts.sql").write_text(ARTICLES_AND_COMMENTS)
    trigger = ("--table", "comments", "--user-column", "post_id.author_id")
    result = run_scaffold("create-sse-channel", "Comment", "in", "blog", *trigger, cwd=shop)
    assert result.exit_code == 0, result.stderr
    assert "cannot tell" not in result.stdout
    migration = (shop / "migrations" / "0004_blog_comment_sse_trigger.sql").read_text()
    assert "user_column => 'post_id.author_id'" in migration
    assert "to the author_id of the row that each changed row's post_id references" in migration


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


TICKETS = """\
CREATE TABLE tickets (
    id serial PRIMARY KEY,
    owner text NOT NULL,
    code text NOT NULL CHECK (code ~ '^T-[0-9]{4}$')
);
"""
TICKET_FACTORY = """\
import asyncpg
import pytest
from fastapi_pg_sse.testing import RowFactory


@pytest.fixture(scope="session")
def realtime_row_factory() -> RowFactory:
    async def insert_ticket(
        connection: asyncpg.Connection, table: str, user_column: str
    ) -> asyncpg.Record:
        row = await connection.fetchrow(
            f"INSERT INTO {table} ({user_column}, code) VALUES ('ada', 'T-0001') RETURNING *"
        )
        assert row is not None
        return row

    return insert_ticket
"""


def test_a_table_that_needs_a_hand_made_row_gets_it_from_the_projects_row_factory(
    shop: Path, postgres_url: str, tmp_path: Path
) -> None:
    (shop / "migrations" / "0002_tickets.sql").write_text(TICKETS)
    trigger = ("--table", "tickets", "--user-column", "owner")
    assert run_scaffold("create-sse-channel", *STOCK, *trigger, cwd=shop).exit_code == 0

    failed = failed_generated_tests(shop, postgres_url, tmp_path / "first")
    assert "PostgreSQL refused the row built for tickets" in failed
    assert "insert it yourself in a `realtime_row_factory` fixture of yours" in failed

    (shop / "tests" / "conftest.py").write_text(TICKET_FACTORY)
    passed = run_generated_tests(shop, postgres_url, tmp_path / "second")
    assert passed >= channel_test_count(shop) > 0
    assert run_scaffold("check", cwd=shop).exit_code == 0, "the project's own conftest is its"


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
