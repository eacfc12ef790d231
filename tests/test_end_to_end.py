"""End to end: the real CLI on a copy of `examples/shop`, then the result run for real.

The generated project's own test suite runs in a subprocess against real PostgreSQL, and the
application is also started under uvicorn and driven from outside with a streaming SSE client.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import asyncpg
import httpx
import pytest
from fastapi_pg_sse.testing import ServedApp, next_event, payload_of, sign_token
from httpx_sse import ServerSentEvent, aconnect_sse

from tests.golden_cases import generate
from tests.helpers import (
    channel_test_count,
    failed_generated_tests,
    new_database,
    run_generated_tests,
)
from tests.served import serve_shop

STREAM = "/inventory/events/stock/stream"


@pytest.mark.parametrize(
    ("case", "import_mode"),
    [
        ("second-channel", "prepend"),
        ("second-channel", "importlib"),
        ("stock-in-inventory-with-own-auth", "prepend"),
        ("stock-in-inventory-with-chosen-columns", "prepend"),
        ("notice-in-teams-with-group-trigger", "prepend"),
        ("message-in-chat-with-group-trigger-through-a-foreign-key", "prepend"),
    ],
)
def test_generated_project_passes_its_own_tests_on_postgresql(
    case: str, import_mode: str, tmp_path: Path, postgres_url: str
) -> None:
    """Under pytest's default import mode, and under `importlib`, which puts no test folder on
    the import path: the generated tests import nothing but installed packages."""
    project = generate(case, tmp_path / "shop")
    mode = f"--import-mode={import_mode}"
    passed = run_generated_tests(project, postgres_url, tmp_path / "basetemp", mode)
    assert passed >= channel_test_count(project) > 0


@pytest.mark.parametrize(
    ("case", "channel", "event", "columns"),
    [
        (
            "stock-level-in-warehouse-ops-with-trigger",
            "warehouse_ops_stock_level",
            "stock_level",
            None,
        ),
        ("stock-in-inventory-with-chosen-columns", "inventory_stock", "stock", {"id", "stock"}),
    ],
    ids=["every-column", "chosen-columns"],
)
def test_the_triggers_events_carry_every_column_or_only_the_chosen_ones_on_postgresql(
    case: str, channel: str, event: str, columns: set[str] | None, tmp_path: Path, postgres_url: str
) -> None:
    project = generate(case, tmp_path / "shop")
    migrations = [path.read_text() for path in sorted((project / "migrations").glob("*.sql"))]
    rows, events = asyncio.run(_basket_life_events(postgres_url, migrations, channel))
    sent = [{k: v for k, v in row.items() if columns is None or k in columns} for row in rows]
    assert events == [
        ("frank", f"{event}_created", sent[0]),
        ("frank", f"{event}_updated", sent[1]),
        ("frank", f"{event}_deleted", sent[1]),
    ]


async def _basket_life_events(
    server_url: str, migrations: list[str], channel: str
) -> tuple[list[dict[str, object]], list[tuple[str, str, object]]]:
    """Migrate a new database, insert, update and delete a basket; its rows and the events."""
    async with new_database(server_url) as database:
        for migration in migrations:
            await database.execute(migration)
        inserted = await database.fetchrow(
            "INSERT INTO baskets (user_id, stock) VALUES ('frank', 3) RETURNING *"
        )
        updated = await database.fetchrow("UPDATE baskets SET stock = 2 RETURNING *")
        await database.execute("DELETE FROM baskets")
        events = await database.fetch(
            "SELECT target_user_id, type, payload FROM fastapi_pg_sse.events"
            " WHERE channel = $1 ORDER BY id",
            channel,
        )
    rows = [dict(row) for row in (inserted, updated) if row is not None]
    return rows, [(user, kind, json.loads(payload)) for user, kind, payload in events]


def test_a_group_triggers_events_go_to_the_group_each_row_names_on_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    project = generate("notice-in-teams-with-group-trigger", tmp_path / "shop")
    migrations = [path.read_text() for path in sorted((project / "migrations").glob("*.sql"))]
    assert asyncio.run(_notice_audiences(postgres_url, migrations)) == [
        ("", "red", "notice_created"),
        ("", "red", "notice_updated"),
        ("", "blue", "notice_created"),
    ], "to the group the row names, to no user"


async def _notice_audiences(server_url: str, migrations: list[str]) -> list[tuple[str, ...]]:
    """Migrate a new database, write notices to two teams; the audience of each event."""
    async with new_database(server_url) as database:
        for migration in migrations:
            await database.execute(migration)
        await database.execute("INSERT INTO notices (team_id, body) VALUES ('red', 'hi')")
        await database.execute("UPDATE notices SET body = 'hello'")
        await database.execute("INSERT INTO notices (team_id, body) VALUES ('blue', 'hi')")
        events = await database.fetch(
            "SELECT target_user_id, target_group, type FROM fastapi_pg_sse.events"
            " WHERE channel = 'teams_notice' ORDER BY id"
        )
    return [tuple(event) for event in events]


def test_the_generated_group_test_fails_if_the_trigger_addresses_another_group(
    tmp_path: Path, postgres_url: str
) -> None:
    """It reads the group from the row the foreign key references, not from the event: a
    trigger that addresses the foreign key's own value (the room, not its team) fails it."""
    project = generate(
        "message-in-chat-with-group-trigger-through-a-foreign-key", tmp_path / "shop"
    )
    (project / "migrations" / "0005_messages_to_the_room.sql").write_text(
        "SELECT fastapi_pg_sse.drop_trigger('chat_message', 'messages');\n"
        "SELECT fastapi_pg_sse.create_trigger(\n"
        "    'chat_message', 'messages', group_column => 'room_id', event_prefix => 'message'\n"
        ");\n"
    )
    report = failed_generated_tests(project, postgres_url, tmp_path / "basetemp")
    assert "the trigger addressed another group than the row's" in report
    assert "1 failed" in report, report


@pytest.fixture
def served_trigger_shop(tmp_path: Path, postgres_url: str) -> Iterator[ServedApp]:
    project = generate("stock-level-in-warehouse-ops-with-trigger", tmp_path / "shop")
    with serve_shop(project, postgres_url) as shop:
        yield shop


@pytest.mark.anyio
async def test_statements_changing_many_rows_deliver_one_event_per_row_in_order(
    served_trigger_shop: ServedApp,
) -> None:
    """The trigger emits once per statement, in bulk: each row's event still reaches its user,
    in the order the statement changed the rows."""
    shop, stream = served_trigger_shop, "/warehouse-ops/events/stock-level/stream"
    async with shop.stream(stream, "gail") as gail, shop.stream(stream, "hugo") as hugo:
        connection = await asyncpg.connect(shop.database_url)
        try:
            ids = await connection.fetch(
                "INSERT INTO baskets (user_id, stock)"
                " VALUES ('gail', 1), ('hugo', 2), ('gail', 3) RETURNING id"
            )
            await connection.execute("UPDATE baskets SET stock = stock + 10")
            await connection.execute("DELETE FROM baskets")
        finally:
            await connection.close()
        received = {
            "gail": [await next_event(gail) for _ in range(6)],
            "hugo": [await next_event(hugo) for _ in range(3)],
        }
    first, second, third = (row["id"] for row in ids)
    summary = {
        user: [
            (event.event, payload_of(event)["id"], payload_of(event)["stock"]) for event in events
        ]
        for user, events in received.items()
    }
    assert summary == {
        "gail": [
            ("stock_level_created", first, 1),
            ("stock_level_created", third, 3),
            ("stock_level_updated", first, 11),
            ("stock_level_updated", third, 13),
            ("stock_level_deleted", first, 11),
            ("stock_level_deleted", third, 13),
        ],
        "hugo": [
            ("stock_level_created", second, 2),
            ("stock_level_updated", second, 12),
            ("stock_level_deleted", second, 12),
        ],
    }
    for events in received.values():
        assert [int(event.id) for event in events] == sorted(int(event.id) for event in events)


@pytest.fixture
def served_shop(tmp_path: Path, postgres_url: str) -> Iterator[ServedApp]:
    with serve_shop(generate("stock-in-inventory", tmp_path / "shop"), postgres_url) as shop:
        yield shop


@pytest.mark.anyio
async def test_an_event_emitted_in_sql_reaches_only_its_users_stream(
    served_shop: ServedApp,
) -> None:
    async with (
        httpx.AsyncClient(base_url=served_shop.server.url, timeout=10) as client,
        _stream(client, sign_token("alice")) as alice,
        _stream(client, sign_token("bob")) as bob,
    ):
        connection = await asyncpg.connect(served_shop.database_url)
        try:
            for user, stock in (("alice", 3), ("bob", 5)):
                await connection.execute(
                    "SELECT fastapi_pg_sse.emit('inventory_stock', $1, 'stock_updated', $2::jsonb)",
                    user,
                    json.dumps({"newStock": stock}),
                )
        finally:
            await connection.close()
        alice_event, bob_event = await _next_event(alice), await _next_event(bob)
    assert (alice_event.event, json.loads(alice_event.data)) == ("stock_updated", {"newStock": 3})
    assert json.loads(bob_event.data) == {"newStock": 5}, "bob received another user's event"


@pytest.fixture
def shop_with_own_auth(tmp_path: Path, postgres_url: str) -> Iterator[ServedApp]:
    project = generate("stock-in-inventory-with-own-auth", tmp_path / "shop")
    # The project never verifies a JWT: it needs no key (a blank one counts as unset).
    with serve_shop(project, postgres_url, REALTIME_JWT_SECRET="") as shop:
        yield shop


@pytest.mark.anyio
async def test_a_project_with_its_own_auth_dependency_guards_the_stream_with_it(
    shop_with_own_auth: ServedApp,
) -> None:
    shop = shop_with_own_auth
    async with httpx.AsyncClient(base_url=shop.server.url, timeout=10) as client:
        refused = await client.get(STREAM, params={"access_token": sign_token("alice")})
        client.cookies.set("session", "user:alice")
        async with aconnect_sse(client, "GET", STREAM) as source:
            source.response.raise_for_status()
            connection = await asyncpg.connect(shop.database_url)
            try:
                await connection.execute(
                    "SELECT fastapi_pg_sse.emit('inventory_stock', 'alice', 'hello', '{}')"
                )
            finally:
                await connection.close()
            event = await _next_event(source.aiter_sse())
    assert refused.status_code == 401, "the generated JWT check was used instead"
    assert refused.json() == {"detail": "Sign in first."}
    assert event.event == "hello"


@asynccontextmanager
async def _stream(
    client: httpx.AsyncClient, token: str
) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
    """An open stream, authenticated as every route accepts: the `Authorization` header."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aconnect_sse(client, "GET", STREAM, headers=headers) as source:
        source.response.raise_for_status()
        yield source.aiter_sse()


async def _next_event(events: AsyncIterator[ServerSentEvent]) -> ServerSentEvent:
    with anyio.fail_after(10):
        async for event in events:
            if event.data:
                return event
    raise AssertionError("the stream ended")
