"""`fastapi_pg_sse.create_trigger(channel, table, user_column, event_prefix, columns)`: a table
emits a channel's events, one bulk emit per statement, to the user of each row it inserts,
updates or deletes (`<prefix>_created`, `_updated`, `_deleted`); it refuses a column the table
lacks; `fastapi_pg_sse.triggers` lists what it made, and `drop_trigger` undoes it. The served
app's test helpers find the watched table through that view."""

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from fastapi_pg_sse import Channel
from fastapi_pg_sse.testing import (
    RowNotBuilt,
    ServedApp,
    WatchedRow,
    connected,
    insert_row,
    next_event,
    payload_of,
)
from tests.app import FEED, NEWS, STREAM
from tests.helpers import committing, in_a_schema_of_its_own, new_channel

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(realtime_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection whose tables go to a schema of the test's own."""
    async with in_a_schema_of_its_own(realtime_database_url, "public") as connection:
        yield connection


async def _create_trigger(
    connection: asyncpg.Connection,
    channel: Channel[Any],
    table: str,
    user_column: str,
    event_prefix: str,
    columns: list[str] | None = None,
) -> None:
    await connection.execute(
        "SELECT fastapi_pg_sse.create_trigger($1, $2::regclass, $3, $4, $5)",
        channel.name,
        table,
        user_column,
        event_prefix,
        columns,
    )


async def _events(
    connection: asyncpg.Connection, channel: Channel[Any], ids: list[int]
) -> list[tuple[str, str, Any]]:
    """(user, type, payload) of the events `ids` of `channel`, in id order."""
    rows = await connection.fetch(
        "SELECT target_user_id, type, payload::text FROM fastapi_pg_sse.events"
        " WHERE channel = $1 AND id = ANY ($2) ORDER BY id",
        channel.name,
        ids,
    )
    return [(user, event_type, json.loads(payload)) for user, event_type, payload in rows]


async def _triggers(connection: asyncpg.Connection, channel: Channel[Any]) -> list[tuple[Any, ...]]:
    """What `fastapi_pg_sse.triggers` lists for `channel`: the table (named as the connection's
    search path sees it), the user column, the event types' prefix, the columns."""
    rows = await connection.fetch(
        "SELECT on_table::text, user_column, event_prefix, columns FROM fastapi_pg_sse.triggers"
        " WHERE channel = $1",
        channel.name,
    )
    return [tuple(row) for row in rows]


async def test_a_watched_tables_inserts_updates_and_deletes_emit_to_each_rows_user_in_order(
    database: asyncpg.Connection,
) -> None:
    channel = new_channel("notes")
    await database.execute(
        "CREATE TABLE notes (id int PRIMARY KEY, owner text NOT NULL, body text)"
    )
    await _create_trigger(database, channel, "notes", "owner", "note")
    async with committing(database) as inserted:
        await database.execute(
            "INSERT INTO notes VALUES (1, 'ada', 'a'), (2, 'bo', 'b'), (3, 'ada', 'c')"
        )
    async with committing(database) as updated:
        await database.execute("UPDATE notes SET body = upper(body) WHERE owner = 'ada'")
    async with committing(database) as deleted:
        await database.execute("DELETE FROM notes WHERE id = 2")
    assert await _events(database, channel, inserted) == [
        ("ada", "note_created", {"id": 1, "owner": "ada", "body": "a"}),
        ("bo", "note_created", {"id": 2, "owner": "bo", "body": "b"}),
        ("ada", "note_created", {"id": 3, "owner": "ada", "body": "c"}),
    ]
    assert sorted(await _events(database, channel, updated), key=lambda e: e[2]["id"]) == [
        ("ada", "note_updated", {"id": 1, "owner": "ada", "body": "A"}),
        ("ada", "note_updated", {"id": 3, "owner": "ada", "body": "C"}),
    ]
    assert await _events(database, channel, deleted) == [
        ("bo", "note_deleted", {"id": 2, "owner": "bo", "body": "b"}),
    ]


async def test_the_events_carry_the_chosen_columns_only(database: asyncpg.Connection) -> None:
    channel = new_channel("stock")
    await database.execute(
        "CREATE TABLE stock (sku text, owner_id bigint NOT NULL, quantity int, secret text)"
    )
    await _create_trigger(database, channel, "stock", "owner_id", "stock", ["sku", "quantity"])
    async with committing(database) as ids:
        await database.execute("INSERT INTO stock VALUES ('A1', 42, 3, 'hidden')")
    assert await _events(database, channel, ids) == [
        ("42", "stock_created", {"sku": "A1", "quantity": 3})
    ]


async def test_a_row_without_a_user_emits_nothing_and_is_written(
    database: asyncpg.Connection,
) -> None:
    channel = new_channel("notes")
    await database.execute("CREATE TABLE notes (id int PRIMARY KEY, owner text)")
    await _create_trigger(database, channel, "notes", "owner", "note")
    async with committing(database) as ids:
        await database.execute("INSERT INTO notes VALUES (1, NULL), (2, ''), (3, 'ada')")
    assert await _events(database, channel, ids) == [
        ("ada", "note_created", {"id": 3, "owner": "ada"})
    ]
    assert await database.fetchval("SELECT count(*) FROM notes") == 3


async def test_a_statement_that_changes_no_row_emits_nothing(database: asyncpg.Connection) -> None:
    channel = new_channel("notes")
    await database.execute("CREATE TABLE notes (owner text NOT NULL)")
    await _create_trigger(database, channel, "notes", "owner", "note")
    async with committing(database) as ids:
        await database.execute("UPDATE notes SET owner = 'x' WHERE false")
        await database.execute("DELETE FROM notes")
        await database.execute("INSERT INTO notes SELECT 'x' WHERE false")
    assert ids == []


async def test_a_rolled_back_statement_emits_nothing(database: asyncpg.Connection) -> None:
    channel = new_channel("notes")
    await database.execute("CREATE TABLE notes (owner text NOT NULL)")
    await _create_trigger(database, channel, "notes", "owner", "note")
    transaction = database.transaction()
    await transaction.start()
    await database.execute("INSERT INTO notes VALUES ('gone')")
    await transaction.rollback()
    recorded = await database.fetchval(
        "SELECT count(*) FROM fastapi_pg_sse.events WHERE channel = $1", channel.name
    )
    assert recorded == 0


async def test_the_triggers_view_lists_each_watched_table_as_create_trigger_was_called(
    database: asyncpg.Connection,
) -> None:
    everything, chosen = new_channel("all"), new_channel("some")
    await database.execute('CREATE TABLE "Odd Table" ("Owner Id" text, "Size" int, plain int)')
    await _create_trigger(database, everything, '"Odd Table"', "Owner Id", "odd")
    await _create_trigger(database, chosen, '"Odd Table"', "Owner Id", "sized", ["Size", "plain"])
    assert await _triggers(database, everything) == [('"Odd Table"', "Owner Id", "odd", None)]
    assert await _triggers(database, chosen) == [
        ('"Odd Table"', "Owner Id", "sized", ["Size", "plain"])
    ]
    names = await database.fetchval(
        "SELECT array_agg(tgname ORDER BY tgname) FROM pg_trigger"
        " WHERE tgrelid = '\"Odd Table\"'::regclass"
    )
    assert names == sorted(
        f"{channel.name}_on_{operation}"
        for channel in (everything, chosen)
        for operation in ("delete", "insert", "update")
    )
    async with committing(database) as ids:
        await database.execute("""INSERT INTO "Odd Table" VALUES ('zed', 2, 3)""")
    assert await _events(database, chosen, ids) == [
        ("zed", "sized_created", {"Size": 2, "plain": 3})
    ]


async def test_drop_trigger_stops_the_events_and_the_listing(database: asyncpg.Connection) -> None:
    channel = new_channel("notes")
    await database.execute("CREATE TABLE notes (owner text NOT NULL)")
    await _create_trigger(database, channel, "notes", "owner", "note")
    await database.execute("SELECT fastapi_pg_sse.drop_trigger($1, 'notes')", channel.name)
    async with committing(database) as ids:
        await database.execute("INSERT INTO notes VALUES ('after')")
    assert ids == []
    assert await _triggers(database, channel) == []


@pytest.mark.parametrize(
    ("user_column", "columns", "missing"),
    [
        ("owner_id", None, "owner_id"),
        ("owner", ["body", "colour"], "colour"),
        ("ownr", ["body", "sise"], "ownr, sise"),
        ("owner", ["Body"], "Body"),  # names are as written, not folded to lower case
        ("owner", ["ctid"], "ctid"),  # a system column is no column of the row
    ],
)
async def test_a_column_the_table_lacks_is_refused_and_nothing_is_created(
    database: asyncpg.Connection, user_column: str, columns: list[str] | None, missing: str
) -> None:
    channel = new_channel("notes")
    await database.execute("CREATE TABLE notes (owner text NOT NULL, body text)")
    await database.execute("ALTER TABLE notes ADD COLUMN gone int; ALTER TABLE notes DROP gone")
    with pytest.raises(asyncpg.UndefinedColumnError) as refused:
        await _create_trigger(database, channel, "notes", user_column, "note", columns)
    schema = await database.fetchval("SELECT current_schema()")
    assert str(refused.value) == (
        f"cannot emit {channel.name} from {schema}.notes: it has no column {missing}"
    )
    assert refused.value.sqlstate == "42703"
    assert await _triggers(database, channel) == []


async def test_a_dropped_column_is_refused(database: asyncpg.Connection) -> None:
    channel = new_channel("notes")
    await database.execute("CREATE TABLE notes (owner text NOT NULL, gone int)")
    await database.execute("ALTER TABLE notes DROP COLUMN gone")
    with pytest.raises(asyncpg.UndefinedColumnError, match="it has no column gone"):
        await _create_trigger(database, channel, "notes", "owner", "note", ["gone"])


@pytest.mark.parametrize(
    ("channel_name", "user_column", "event_prefix", "columns", "why"),
    [
        ("Bad", "owner", "note", None, "channel must be a lowercase SQL identifier"),
        ("x" * 54, "owner", "note", None, "at most 53 bytes"),
        ("notes_ok", "owner", "a note", None, "event_type must be a word"),
        ("notes_ok", "", "note", None, "target_user_id must be a non-empty single line"),
        ("notes_ok", "owner", "note", [], "columns must name 1 to 50 distinct columns"),
        ("notes_ok", "owner", "note", ["body", "body"], "1 to 50 distinct columns"),
        ("notes_ok", "owner", "note", [f"c{n}" for n in range(51)], "1 to 50 distinct"),
    ],
    ids=["channel", "long-channel", "prefix", "user-column", "no-column", "twice", "51-columns"],
)
async def test_arguments_a_trigger_could_not_emit_with_are_refused(
    database: asyncpg.Connection,
    channel_name: str,
    user_column: str,
    event_prefix: str,
    columns: list[str] | None,
    why: str,
) -> None:
    await database.execute("CREATE TABLE notes (owner text NOT NULL, body text)")
    with pytest.raises(asyncpg.InvalidParameterValueError, match=why):
        await database.execute(
            "SELECT fastapi_pg_sse.create_trigger($1, 'notes', $2, $3, $4)",
            channel_name,
            user_column,
            event_prefix,
            columns,
        )
    triggers = await database.fetchval(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'notes'::regclass"
    )
    assert triggers == 0


async def test_the_longest_channel_names_triggers_keep_their_whole_names(
    database: asyncpg.Connection,
) -> None:
    channel: Channel[Any] = Channel("x" * 53)
    await database.execute("CREATE TABLE notes (owner text NOT NULL)")
    await _create_trigger(database, channel, "notes", "owner", "note")
    try:
        names = await database.fetchval(
            "SELECT array_agg(tgname ORDER BY tgname) FROM pg_trigger"
            " WHERE tgrelid = 'notes'::regclass"
        )
        assert names == [f"{'x' * 53}_on_{op}" for op in ("delete", "insert", "update")]
        await database.execute("SELECT fastapi_pg_sse.drop_trigger($1, 'notes')", channel.name)
    finally:
        await database.execute("DROP TABLE notes")


@pytest.fixture
async def watched_feed(served_app: ServedApp) -> AsyncIterator[str]:
    """A table whose trigger emits FEED's events, as a project's trigger migration makes it,
    its user column a number and another column NOT NULL; dropped at the end."""
    table = f"watched_{uuid.uuid4().hex[:8]}"
    async with connected(served_app.database_url) as connection:
        await connection.execute(
            f"CREATE TABLE {table} (id serial PRIMARY KEY, owner_id bigint NOT NULL,"
            " label text NOT NULL, note text)"
        )
        await _create_trigger(connection, FEED, table, "owner_id", "watched", ["id", "label"])
        try:
            yield table
        finally:
            await connection.execute(f"DROP TABLE {table}")


async def test_a_served_app_streams_the_events_of_a_row_inserted_and_deleted_by_its_helpers(
    served_app: ServedApp, watched_feed: str
) -> None:
    newest = await served_app.newest_event_id()
    row = await served_app.insert_watched_row(FEED)
    assert (row.table, row.user_column) == (watched_feed, "owner_id")
    async with served_app.stream(STREAM, row.user_id, last_event_id=newest) as events:
        created = await next_event(events)
        await served_app.delete_watched_row(row)
        deleted = await next_event(events)
    assert created.event == "watched_created"
    assert deleted.event == "watched_deleted"
    assert payload_of(deleted) == payload_of(created)
    assert set(payload_of(created)) == {"id", "label"}
    assert int(deleted.id) == await served_app.newest_event_id()


async def test_a_served_app_inserts_its_watched_rows_with_the_row_factory_it_was_given(
    served_app: ServedApp, watched_feed: str
) -> None:
    """What a project's `realtime_row_factory` fixture gives, when a valid row needs more than
    `insert_row` knows."""
    calls: list[tuple[str, str]] = []

    async def labelled_row(
        connection: asyncpg.Connection, table: str, user_column: str
    ) -> asyncpg.Record:
        calls.append((table, user_column))
        row = await insert_row(connection, table, fill=[user_column, "note"])
        await connection.execute(f"UPDATE {table} SET label = 'custom' WHERE id = $1", row["id"])
        return row

    custom = ServedApp(served_app.server, served_app.database_url, labelled_row)
    row = await custom.insert_watched_row(FEED)
    async with connected(served_app.database_url) as connection:
        label = await connection.fetchval(
            f"SELECT label FROM {watched_feed} WHERE owner_id::text = $1", row.user_id
        )
    assert calls == [(watched_feed, "owner_id")]
    assert label == "custom"


async def test_a_served_app_says_which_migration_is_missing_for_a_channel_no_table_emits(
    served_app: ServedApp,
) -> None:
    with pytest.raises(LookupError, match="no table emits 'test_news': apply its trigger"):
        await served_app.insert_watched_row(NEWS)


async def test_a_served_app_will_not_guess_which_of_several_tables_a_test_means(
    served_app: ServedApp,
) -> None:
    channel = new_channel("twice")
    tables = [f"watched_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    async with connected(served_app.database_url) as connection:
        for table in tables:
            await connection.execute(f"CREATE TABLE {table} (owner text NOT NULL)")
            await _create_trigger(connection, channel, table, "owner", "twice")
    with pytest.raises(LookupError, match=f"several tables emit '{channel.name}'"):
        await served_app.insert_watched_row(channel)


async def test_a_watched_row_of_an_oddly_named_table_and_column_is_found_and_deleted(
    served_app: ServedApp,
) -> None:
    table = f'"Odd {uuid.uuid4().hex[:8]}"'
    async with connected(served_app.database_url) as connection:
        await connection.execute(f'CREATE TABLE {table} ("Owner Id" text NOT NULL)')
        await _create_trigger(connection, FEED, table, "Owner Id", "odd")
        try:
            newest = await served_app.newest_event_id()
            row = await served_app.insert_watched_row(FEED)
            assert row == WatchedRow(table, '"Owner Id"', row.user_id)
            async with served_app.stream(STREAM, row.user_id, last_event_id=newest) as events:
                assert (await next_event(events)).event == "odd_created"
                await served_app.delete_watched_row(row)
                assert (await next_event(events)).event == "odd_deleted"
            assert await connection.fetchval(f"SELECT count(*) FROM {table}") == 0
        finally:
            await connection.execute(f"DROP TABLE {table}")


async def test_a_watched_row_the_default_factory_cannot_build_says_to_write_a_row_factory(
    served_app: ServedApp,
) -> None:
    table = f"unbuildable_{uuid.uuid4().hex[:8]}"
    async with connected(served_app.database_url) as connection:
        await connection.execute(f"CREATE TABLE {table} (owner text NOT NULL, at point NOT NULL)")
        await _create_trigger(connection, FEED, table, "owner", "unbuildable")
        try:
            with pytest.raises(RowNotBuilt) as refused:
                await served_app.insert_watched_row(FEED)
        finally:
            await connection.execute(f"DROP TABLE {table}")
    assert str(refused.value) == (
        f"cannot build a row of {table}: column at has type point; insert it yourself in a"
        " `realtime_row_factory` fixture of yours (see RowFactory)"
    )
