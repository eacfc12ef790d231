"""Each channel's events file: created once and then the user's, and for a trigger a row model
whose fields read what PostgreSQL's `to_jsonb` makes of the table's row.
"""

import ast
import datetime
import hashlib
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel, ValidationError

from tests.golden_cases import TRIGGERED
from tests.helpers import new_database, run_scaffold

STOCK = ("Stock", "in", "inventory")
EVENTS = "shop/modules/inventory/services/stock_events.py"
CHECKLIST = "tests/realtime/test_inventory_stock_sse_channel.py"
USERS = (EVENTS,)
"""A trigger channel's files that are the user's once written, in path order: its events file
alone (its test inserts rows with `served_app.insert_watched_row`)."""

RICH_TABLE = """\
CREATE TYPE order_status AS ENUM ('placed', 'paid');
ALTER TYPE order_status ADD VALUE 'shipped' AFTER 'paid';
CREATE DOMAIN quantity AS integer CHECK (VALUE >= 0);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id text NOT NULL,
    total numeric(10, 2) NOT NULL,
    weight double precision,
    paid boolean NOT NULL DEFAULT false,
    reference uuid,
    placed_at timestamptz NOT NULL DEFAULT now(),
    due date,
    opens time,
    status order_status NOT NULL DEFAULT 'placed',
    items quantity[],
    details jsonb,
    lasts interval,
    tax decimal(5, 2),
    fee money,
    class text
);
ALTER TABLE orders ALTER COLUMN weight SET NOT NULL;
"""

RICH_FIELDS = """\
    id: int
    customer_id: str
    total: float
    weight: float
    paid: bool
    reference: UUID | None
    placed_at: datetime.datetime
    due: datetime.date | None
    opens: datetime.time | None
    status: Literal["placed", "paid", "shipped"]
    items: list[int | None] | None
    details: JsonValue
    lasts: str | None
    tax: float | None
    fee: str | None
"""

ROW = """\
INSERT INTO orders (
    customer_id, total, weight, reference, due, opens, items, details, lasts, tax, fee
)
VALUES ('alice', 12.50, 1.5, gen_random_uuid(), '2025-01-31', '09:30', '{1,NULL,3}',
        '{"gift": true}', '1 day 02:00:00', 0.07, 3.5)
RETURNING to_jsonb(orders)::text
"""
LABELS_LIKE_TYPES = """\
CREATE TYPE kind AS ENUM ('UUID', 'JsonValue', 'datetime.date', 'serial');
CREATE TABLE orders (id serial PRIMARY KEY, customer_id text NOT NULL, kind kind NOT NULL);
"""
"""An enum whose labels read like the types of other columns: the file imports none of them."""
TEMPORAL = ("placed_at",)
"""Columns whose JSON pydantic writes in its own spelling: `Z` for `+00:00`, six digits of
fractions of a second where PostgreSQL drops the trailing zeros."""


def test_the_events_file_is_created_once_and_then_the_users(shop: Path) -> None:
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    events = shop / EVENTS
    assert events.read_text().startswith("# Written by scaffold once: yours to edit")
    assert f"\n# {_sha256(events)}  {EVENTS}\n" in (shop / "scaffold.lock").read_text()
    edited = events.read_text().replace("    id: int\n", "    id: int\n    stock: int\n")
    events.write_text(edited)

    check = run_scaffold("check", cwd=shop)
    sync = run_scaffold("sync", cwd=shop)
    removed = run_scaffold("remove-sse-channel", *STOCK, cwd=shop)
    assert (check.exit_code, sync.exit_code, removed.exit_code) == (0, 0, 0), check.stdout
    assert events.read_text() == edited, "scaffold touched the user's events file"


def test_a_deleted_events_file_is_reported_missing_and_written_again(shop: Path) -> None:
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    written = (shop / EVENTS).read_text()
    (shop / EVENTS).unlink()
    check = run_scaffold("check", cwd=shop)
    assert check.exit_code == 1
    assert check.stdout.startswith("       missing  " + EVENTS)
    assert run_scaffold("sync", cwd=shop).exit_code == 0
    assert (shop / EVENTS).read_text() == written


def test_an_untouched_events_file_goes_with_its_channel(shop: Path) -> None:
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    assert run_scaffold("remove-sse-channel", *STOCK, cwd=shop).exit_code == 0
    assert not (shop / EVENTS).exists()
    assert not (shop / "shop" / "modules").exists()


@pytest.mark.parametrize("trigger", [(), TRIGGERED], ids=["plain", "trigger"])
def test_the_checklist_emits_no_event_type_the_events_file_declares(
    shop: Path, trigger: tuple[str, ...]
) -> None:
    assert run_scaffold("create-sse-channel", *STOCK, *trigger, cwd=shop).exit_code == 0
    events = ast.parse((shop / EVENTS).read_text())
    checklist = ast.parse((shop / CHECKLIST).read_text())
    declared = {
        node.value.value
        for node in ast.walk(events)
        if isinstance(node, ast.AnnAssign) and ast.unparse(node.target) == "event_type"
        if isinstance(node.value, ast.Constant)
    }
    constants = {
        node.targets[0].id: node.value.value
        for node in checklist.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
        if isinstance(node.value, ast.Constant)
    }
    emitted = {
        constants[event.id] if isinstance(event, ast.Name) else ast.literal_eval(event)
        for node in ast.walk(checklist)
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "served_app.emit"
        for event in [node.args[2]]
    }
    assert declared and emitted
    assert not declared & emitted, "the checklist sends payloads the declared events do not have"


def test_an_untouched_events_file_goes_with_its_channel_after_its_table_changed(
    shop: Path,
) -> None:
    (shop / "migrations" / "0002_orders.sql").write_text(RICH_TABLE)
    trigger = ("--table", "orders", "--user-column", "customer_id")
    assert run_scaffold("create-sse-channel", *STOCK, *trigger, cwd=shop).exit_code == 0
    (shop / "migrations" / "0003_notes.sql").write_text("ALTER TABLE orders ADD note text;\n")

    assert run_scaffold("remove-sse-channel", *STOCK, cwd=shop).exit_code == 0
    assert not (shop / EVENTS).exists()


def test_without_its_record_an_events_file_goes_if_it_is_what_scaffold_writes_today(
    shop: Path,
) -> None:
    """A lock from a scaffold that did not record the user's files yet."""
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    lock = shop / "scaffold.lock"
    lock.write_text("".join(line for line in lock.open() if not line.startswith("# ")))

    assert run_scaffold("remove-sse-channel", *STOCK, cwd=shop).exit_code == 0
    assert not (shop / EVENTS).exists()


def test_the_lock_keeps_what_scaffold_wrote_once_in_lines_sha256sum_skips(shop: Path) -> None:
    assert run_scaffold("create-sse-channel", *STOCK, *TRIGGERED, cwd=shop).exit_code == 0
    written = {path: _sha256(shop / path) for path in USERS}
    (shop / EVENTS).write_text((shop / EVENTS).read_text() + "# mine now\n")
    assert run_scaffold("sync", cwd=shop).exit_code == 0

    lines = (shop / "scaffold.lock").read_text().splitlines()
    assert [f"# {sha}  {path}" for path, sha in written.items()] == lines[-len(USERS) :]
    assert not [line for line in lines if not line.startswith("#") and line.endswith(USERS)]


def test_a_triggers_row_model_is_typed_from_the_migrations(shop: Path) -> None:
    (shop / "migrations" / "0002_orders.sql").write_text(RICH_TABLE)
    trigger = ("--table", "orders", "--user-column", "customer_id")
    assert run_scaffold("create-sse-channel", *STOCK, *trigger, cwd=shop).exit_code == 0
    text = (shop / EVENTS).read_text()
    assert RICH_FIELDS in text
    assert "Columns whose names cannot be fields arrive as extra fields: class." in text
    assert 'model_config = ConfigDict(extra="allow")' in text
    assert "StockEvent = StockCreated | StockUpdated | StockDeleted\n" in text


@pytest.mark.anyio
async def test_the_typed_row_model_reads_the_row_postgresql_sends(
    shop: Path, postgres_url: str
) -> None:
    (shop / "migrations" / "0002_orders.sql").write_text(RICH_TABLE)
    trigger = ("--table", "orders", "--user-column", "customer_id")
    assert run_scaffold("create-sse-channel", *STOCK, *trigger, cwd=shop).exit_code == 0
    async with new_database(postgres_url) as database:
        await database.execute(RICH_TABLE)
        payload = await database.fetchval(ROW)
    row = _events_module(shop).OrdersRow.model_validate_json(payload)
    assert (row.status, row.items, row.details) == ("placed", [1, None, 3], {"gift": True})
    assert row.model_extra == {"class": None}
    sent = json.loads(payload)
    dumped = row.model_dump(mode="json", by_alias=True)  # as the typed emit sends the row
    assert _without(dumped, TEMPORAL) == _without(sent, TEMPORAL)
    for column in TEMPORAL:  # the same instant, in another spelling of RFC 3339 ("Z", ".500000")
        assert _instant(dumped[column]) == _instant(sent[column]), column
    with pytest.raises(ValidationError):
        _events_module(shop).OrdersRow.model_validate_json(payload.replace('"placed"', '"lost"'))


@pytest.mark.parametrize(
    "migration", [RICH_TABLE, LABELS_LIKE_TYPES], ids=["rich-table", "labels-like-types"]
)
def test_the_typed_row_model_passes_ruff_and_mypy_strict(
    shop: Path, tmp_path: Path, migration: str
) -> None:
    (shop / "migrations" / "0002_orders.sql").write_text(migration)
    trigger = ("--table", "orders", "--user-column", "customer_id")
    assert run_scaffold("create-sse-channel", *STOCK, *trigger, cwd=shop).exit_code == 0
    commands = [
        ["ruff", "check", "--isolated", "--no-cache", "--extend-select", "I", EVENTS],
        ["ruff", "format", "--isolated", "--no-cache", "--check", EVENTS],
        ["mypy", "--strict", "--cache-dir", str(tmp_path / "mypy"), EVENTS],
    ]
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-m", *command], cwd=shop, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("migration", "why"),
    [
        ("DO $$ BEGIN NULL; END $$;\n", "0002_later.sql runs a DO block"),
        ("CREATE TABLE copies (LIKE baskets);\nALTER TABLE baskets ADD (\n", "does not parse"),
    ],
    ids=["do-block", "unparseable"],
)
def test_a_row_model_the_migrations_cannot_tell_accepts_any_fields(
    shop: Path, migration: str, why: str
) -> None:
    (shop / "migrations" / "0002_later.sql").write_text(migration)
    assert run_scaffold("create-sse-channel", *STOCK, *TRIGGERED, cwd=shop).exit_code == 0
    text = (shop / EVENTS).read_text()
    assert "scaffold cannot tell its columns from the migrations (0002_later.sql" in text
    assert why in text
    assert 'model_config = ConfigDict(extra="allow")' in text
    row = _events_module(shop).BasketsRow.model_validate({"id": 1, "anything": "goes"})
    assert row.model_extra == {"id": 1, "anything": "goes"}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _without(row: dict[str, object], columns: Iterable[str]) -> dict[str, object]:
    return {column: value for column, value in row.items() if column not in columns}


def _instant(value: object) -> object:
    """A date or time written in JSON, as Python reads it."""
    assert isinstance(value, str)
    return datetime.datetime.fromisoformat(value)


def _events_module(project: Path) -> ModuleType:
    """The project's events file, imported as a module of its own."""
    spec = importlib.util.spec_from_file_location("stock_events", project / EVENTS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert issubclass(module.StockCreated, BaseModel)
    return module
