"""`fastapi_pg_sse.create_trigger(channel, table, user_column, event_prefix, columns)`: a table
emits a channel's events, one bulk emit per statement, to the user of each row it inserts,
updates or deletes (`<prefix>_created`, `_updated`, `_deleted`), in a column of the row or,
through a foreign key, `<fk_column>.<user_column>`, in the row it references (or, made with
`group_column` instead, to each row's group, found the same ways); it refuses a column the table
lacks, a path that leads to no user, and both or neither of user_column and group_column;
`fastapi_pg_sse.triggers` lists what it made, and `drop_trigger` undoes it. The served app's test
helpers find the watched table through that view."""

import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
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


BLOG = """
    CREATE TABLE articles (id int PRIMARY KEY, author_id text);
    CREATE TABLE comments (
        id int PRIMARY KEY,
        article_id int REFERENCES articles ON DELETE CASCADE DEFERRABLE,
        body text
    );
"""
"""Comments whose article's author hears of them: `article_id.author_id`."""
A_PATH = (
    "such as article_id.author_id (a column that is the single column of a foreign key, a dot,"
    " and a column of the table it references)"
)
"""What create_trigger's refusal of a path with an empty part says a path is."""


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


@pytest.mark.parametrize(
    ("table", "user_column", "refusal", "named"),
    [
        ("comments", "authr_id", asyncpg.UndefinedColumnError, "it has no column authr_id"),
        (
            "comments",
            "article_id.authr_id",
            asyncpg.UndefinedColumnError,
            "which article_id references, has no column authr_id",
        ),
        ("commnts", "author_id", asyncpg.UndefinedTableError, 'relation "commnts" does not exist'),
    ],
    ids=["user-column", "user-column-through-a-foreign-key", "table"],
)
async def test_a_migration_whose_trigger_names_what_does_not_exist_fails_and_writes_go_on(
    database: asyncpg.Connection,
    table: str,
    user_column: str,
    refusal: type[asyncpg.PostgresError],
    named: str,
) -> None:
    """A misspelt name fails the migration that names it, as one transaction, never the
    table's writes from then on (issue 19: `column changed.authr_id does not exist` on every
    INSERT)."""
    await database.execute(BLOG + "INSERT INTO articles VALUES (1, 'ada')")
    migration = (
        "CREATE INDEX comments_body_idx ON comments (body);"
        f" SELECT fastapi_pg_sse.create_trigger('comments', '{table}', '{user_column}', 'comment')"
    )
    with pytest.raises(refusal) as refused:
        await database.execute(migration)
    assert named in str(refused.value)
    await database.execute("INSERT INTO comments VALUES (10, 1, 'written')")
    assert await database.fetchval("SELECT to_regclass('comments_body_idx')") is None
    triggers = await database.fetchval(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'comments'::regclass AND NOT tgisinternal"
    )
    assert triggers == 0


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


async def test_a_path_through_a_foreign_key_emits_each_change_to_the_referenced_rows_user(
    database: asyncpg.Connection,
) -> None:
    channel = new_channel("comments")
    await database.execute(BLOG)
    await database.execute("INSERT INTO articles VALUES (1, 'ada'), (2, 'bo')")
    await _create_trigger(database, channel, "comments", "article_id.author_id", "comment")
    async with committing(database) as inserted:
        await database.execute(
            "INSERT INTO comments VALUES (10, 1, 'a'), (11, 2, 'b'), (12, 1, 'c'), (13, 2, 'd')"
        )
    async with committing(database) as deleted:
        await database.execute("DELETE FROM comments WHERE id IN (10, 11)")
    async with committing(database) as updated:
        await database.execute("UPDATE comments SET body = upper(body) WHERE id = 12")
    async with committing(database) as moved:
        await database.execute("UPDATE comments SET article_id = 1 WHERE id = 13")
    assert await _events(database, channel, inserted) == [
        ("ada", "comment_created", {"id": 10, "article_id": 1, "body": "a"}),
        ("bo", "comment_created", {"id": 11, "article_id": 2, "body": "b"}),
        ("ada", "comment_created", {"id": 12, "article_id": 1, "body": "c"}),
        ("bo", "comment_created", {"id": 13, "article_id": 2, "body": "d"}),
    ]
    assert await _events(database, channel, deleted) == [
        ("ada", "comment_deleted", {"id": 10, "article_id": 1, "body": "a"}),
        ("bo", "comment_deleted", {"id": 11, "article_id": 2, "body": "b"}),
    ]
    assert await _events(database, channel, updated) == [
        ("ada", "comment_updated", {"id": 12, "article_id": 1, "body": "C"}),
    ]
    assert await _events(database, channel, moved) == [
        ("ada", "comment_updated", {"id": 13, "article_id": 1, "body": "d"}),
    ], "an update tells the user of the row it references now"


async def test_a_path_carries_the_chosen_columns_of_the_changed_row(
    database: asyncpg.Connection,
) -> None:
    channel = new_channel("comments")
    await database.execute(BLOG)
    await database.execute("INSERT INTO articles VALUES (1, 'ada')")
    await _create_trigger(
        database, channel, "comments", "article_id.author_id", "comment", ["id", "body"]
    )
    async with committing(database) as ids:
        await database.execute("INSERT INTO comments VALUES (10, 1, 'a')")
    assert await _events(database, channel, ids) == [
        ("ada", "comment_created", {"id": 10, "body": "a"})
    ]


async def test_a_row_whose_referenced_row_has_no_user_or_is_gone_emits_nothing(
    database: asyncpg.Connection,
) -> None:
    """No article, an article without an author, or one deleted by the statement whose
    cascade deletes the comment: the rows are written, and tell nobody."""
    channel = new_channel("comments")
    await database.execute(BLOG)
    await database.execute("INSERT INTO articles VALUES (1, NULL), (2, ''), (3, 'cy')")
    await _create_trigger(database, channel, "comments", "article_id.author_id", "comment")
    async with committing(database) as inserted:
        await database.execute("SET CONSTRAINTS ALL DEFERRED")
        await database.execute(
            "INSERT INTO comments VALUES (10, 1, 'a'), (11, 2, 'b'), (12, NULL, 'c'),"
            " (13, 4, 'not yet'), (14, 3, 'd')"
        )
        await database.execute("INSERT INTO articles VALUES (4, 'dee')")
    async with committing(database) as cascaded:
        await database.execute("DELETE FROM articles WHERE id = 3")
    assert await _events(database, channel, inserted) == [
        ("cy", "comment_created", {"id": 14, "article_id": 3, "body": "d"})
    ]
    assert cascaded == []
    assert await database.fetchval("SELECT array_agg(id ORDER BY id) FROM comments") == [
        10,
        11,
        12,
        13,
    ]


async def test_a_trigger_through_a_foreign_key_follows_its_table_and_key_renamed(
    database: asyncpg.Connection,
) -> None:
    """The foreign key is looked up as each statement runs: the trigger reads the table and key
    it references now."""
    channel = new_channel("comments")
    await database.execute(BLOG)
    await database.execute("INSERT INTO articles VALUES (1, 'ada')")
    await _create_trigger(database, channel, "comments", "article_id.author_id", "comment")
    await database.execute(
        "ALTER TABLE articles RENAME TO posts; ALTER TABLE posts RENAME id TO post_id"
    )
    async with committing(database) as ids:
        await database.execute("INSERT INTO comments VALUES (10, 1, 'a')")
    [(user, event_type, _)] = await _events(database, channel, ids)
    assert (user, event_type) == ("ada", "comment_created")


async def test_a_trigger_whose_foreign_key_was_dropped_fails_the_write_saying_why(
    database: asyncpg.Connection,
) -> None:
    """As a user column dropped from under its trigger does: the write fails rather than its
    events being lost without a word. Drop the trigger first."""
    channel = new_channel("comments")
    await database.execute(BLOG)
    await database.execute("INSERT INTO articles VALUES (1, 'ada')")
    await _create_trigger(database, channel, "comments", "article_id.author_id", "comment")
    await database.execute("ALTER TABLE comments DROP CONSTRAINT comments_article_id_fkey")
    schema = await database.fetchval("SELECT current_schema()")
    with pytest.raises(asyncpg.InvalidForeignKeyError) as refused:
        await database.execute("INSERT INTO comments VALUES (10, 1, 'a')")
    assert str(refused.value) == (
        f"cannot emit {channel.name} from {schema}.comments: article_id.author_id needs a"
        f" foreign key whose single column is article_id, and {schema}.comments has none"
    )


async def test_a_column_named_with_a_dot_is_that_column_not_a_path(
    database: asyncpg.Connection,
) -> None:
    channel = new_channel("dotted")
    await database.execute('CREATE TABLE dotted ("owner.id" text, owner int)')
    await _create_trigger(database, channel, "dotted", "owner.id", "dotted")
    async with committing(database) as ids:
        await database.execute("INSERT INTO dotted VALUES ('ada', 1)")
    assert await _events(database, channel, ids) == [
        ("ada", "dotted_created", {"owner.id": "ada", "owner": 1})
    ]


async def test_a_path_of_odd_names_reaches_its_user(database: asyncpg.Connection) -> None:
    """Names as written, quoted where SQL needs it, the referenced key not named `id`."""
    channel = new_channel("odd")
    await database.execute(
        'CREATE TABLE "Odd Articles" ("Key" int PRIMARY KEY, "Author Id" text);'
        ' CREATE TABLE "Odd Comments" ("Article Id" int REFERENCES "Odd Articles");'
        """ INSERT INTO "Odd Articles" VALUES (1, 'ada')"""
    )
    await _create_trigger(database, channel, '"Odd Comments"', "Article Id.Author Id", "odd")
    async with committing(database) as ids:
        await database.execute('INSERT INTO "Odd Comments" VALUES (1)')
    assert await _events(database, channel, ids) == [("ada", "odd_created", {"Article Id": 1})]


async def test_the_triggers_view_lists_a_path_as_it_was_given(
    database: asyncpg.Connection,
) -> None:
    channel = new_channel("comments")
    await database.execute(BLOG)
    await _create_trigger(database, channel, "comments", "article_id.author_id", "comment", ["id"])
    assert await _triggers(database, channel) == [
        ("comments", "article_id.author_id", "comment", ["id"])
    ]


async def test_the_readmes_example_of_a_path_tells_each_article_author_of_its_comments(
    database: asyncpg.Connection,
) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Recipients through a foreign key", 1)[1]
    example = re.search(r"```sql\n(.*?)```", section, re.DOTALL)
    assert example is not None, "the section gives its example in a sql block"
    await database.execute(example.group(1))
    await database.execute("INSERT INTO articles VALUES (1, 42, 'On tea'), (2, 7, 'On coffee')")
    async with committing(database) as ids:
        await database.execute(
            "INSERT INTO comments (article_id, body) VALUES (1, 'Yes'), (2, 'No'), (1, 'Maybe')"
        )
    events = await _events(database, Channel("blog_comment"), ids)
    assert [(user, event_type, payload["body"]) for user, event_type, payload in events] == [
        ("42", "comment_created", "Yes"),
        ("7", "comment_created", "No"),
        ("42", "comment_created", "Maybe"),
    ]


@pytest.mark.parametrize(
    ("setup", "user_column", "columns", "refusal", "why"),
    [
        (
            "",
            "artcle_id.author_id",
            ["body", "sise"],
            asyncpg.UndefinedColumnError,
            "it has no column artcle_id, sise",
        ),
        (
            "",
            "body.author_id",
            None,
            asyncpg.InvalidForeignKeyError,
            "body.author_id needs a foreign key whose single column is body, and {comments}"
            " has none",
        ),
        (
            "CREATE TABLE editions (article_id int, number int, editor_id text,"
            " PRIMARY KEY (article_id, number));"
            " ALTER TABLE comments ADD edition int,"
            " ADD FOREIGN KEY (article_id, edition) REFERENCES editions",
            "edition.editor_id",
            None,
            asyncpg.InvalidForeignKeyError,
            "edition.editor_id needs a foreign key whose single column is edition, and"
            " {comments} has none",
        ),
        (
            "",
            "article_id.authr_id",
            None,
            asyncpg.UndefinedColumnError,
            "{schema}.articles, which article_id references, has no column authr_id",
        ),
        (
            "CREATE TABLE drafts (id int PRIMARY KEY, author_id text);"
            " ALTER TABLE comments ADD FOREIGN KEY (article_id) REFERENCES drafts",
            "article_id.author_id",
            None,
            asyncpg.AmbiguousColumnError,
            "article_id.author_id is ambiguous: foreign keys of article_id reference"
            " {schema}.articles (id) and {schema}.drafts (id)",
        ),
        (
            "",
            "article_id.",
            None,
            asyncpg.InvalidParameterValueError,
            f"'article_id.' is neither a column of it nor a path {A_PATH}",
        ),
        (
            "",
            ".author_id",
            None,
            asyncpg.InvalidParameterValueError,
            f"'.author_id' is neither a column of it nor a path {A_PATH}",
        ),
    ],
    ids=[
        "no-fk-column",
        "no-foreign-key",
        "two-column-key",
        "no-user-column",
        "two-foreign-keys",
        "no-user-part",
        "no-fk-part",
    ],
)
async def test_a_path_that_leads_to_no_user_is_refused_naming_what_is_wrong(
    database: asyncpg.Connection,
    setup: str,
    user_column: str,
    columns: list[str] | None,
    refusal: type[asyncpg.PostgresError],
    why: str,
) -> None:
    channel = new_channel("comments")
    await database.execute(BLOG + setup)
    schema = await database.fetchval("SELECT current_schema()")
    with pytest.raises(refusal) as refused:
        await _create_trigger(database, channel, "comments", user_column, "comment", columns)
    expected = why.format(schema=schema, comments=f"{schema}.comments")
    assert str(refused.value) == f"cannot emit {channel.name} from {schema}.comments: {expected}"
    assert await _triggers(database, channel) == []


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
    assert (row.table, row.recipient) == (watched_feed, "owner_id")
    async with served_app.stream(STREAM, row.user_id, last_event_id=newest) as events:
        created = await next_event(events)
        await served_app.delete_watched_row(row)
        deleted = await next_event(events)
    assert created.event == "watched_created"
    assert deleted.event == "watched_deleted"
    assert payload_of(deleted) == payload_of(created)
    assert set(payload_of(created)) == {"id", "label"}
    assert int(deleted.id) == await served_app.newest_event_id()


async def test_a_served_app_streams_the_events_of_a_row_whose_user_is_through_a_foreign_key(
    served_app: ServedApp,
) -> None:
    """As a generated channel's test runs it: the row references a new row of the user, who
    receives its creation and deletion; the referenced row stays."""
    suffix = uuid.uuid4().hex[:8]
    articles, comments = f"articles_{suffix}", f"comments_{suffix}"
    async with connected(served_app.database_url) as connection:
        await connection.execute(
            f"CREATE TABLE {articles} (id serial PRIMARY KEY, author_id bigint NOT NULL,"
            f" title text NOT NULL);"
            f" CREATE TABLE {comments} (id serial PRIMARY KEY,"
            f" article_id int REFERENCES {articles}, body text NOT NULL)"
        )
        await _create_trigger(connection, FEED, comments, "article_id.author_id", "comment")
        try:
            newest = await served_app.newest_event_id()
            row = await served_app.insert_watched_row(FEED)
            async with served_app.stream(STREAM, row.user_id, last_event_id=newest) as events:
                created = await next_event(events)
                await served_app.delete_watched_row(row)
                deleted = await next_event(events)
            author = await connection.fetchval(f"SELECT author_id::text FROM {articles}")
            left = await connection.fetchval(
                f"SELECT format('%s %s', (SELECT count(*) FROM {comments}),"
                f" (SELECT count(*) FROM {articles}))"
            )
        finally:
            await connection.execute(f"DROP TABLE {comments}, {articles}")
    assert row.table == comments and row.user_id == author
    assert (created.event, deleted.event) == ("comment_created", "comment_deleted")
    assert payload_of(created)["article_id"] == payload_of(deleted)["article_id"]
    assert left == "0 1", "the changed rows are deleted, the referenced row stays"


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


TEAMS = """
    CREATE TABLE projects (id int PRIMARY KEY, team text);
    CREATE TABLE tasks (id int PRIMARY KEY, project_id int REFERENCES projects, team text);
    INSERT INTO projects VALUES (1, 'ops'), (2, NULL);
"""
"""Tasks whose team hears of them, in a column of the task (`team`) or of its project
(`project_id.team`)."""


async def _create_group_trigger(
    connection: asyncpg.Connection, channel: Channel[Any], group_column: str, prefix: str
) -> None:
    await connection.execute(
        "SELECT fastapi_pg_sse.create_trigger($1, 'tasks', group_column => $2, event_prefix => $3)",
        channel.name,
        group_column,
        prefix,
    )


async def test_a_group_column_emits_each_change_to_the_rows_group_in_it_or_through_a_foreign_key(
    database: asyncpg.Connection,
) -> None:
    """The events go to the group (target_group), to no user; a row without a group emits
    nothing. The view lists the group column, and no user column."""
    own, through = new_channel("own"), new_channel("through")
    await database.execute(TEAMS)
    await _create_group_trigger(database, own, "team", "task")
    await _create_group_trigger(database, through, "project_id.team", "task")
    async with committing(database) as ids:
        await database.execute(
            "INSERT INTO tasks VALUES (1, 1, 'dev'), (2, 2, 'dev'), (3, 1, NULL), (4, NULL, '')"
        )
        await database.execute("DELETE FROM tasks WHERE id = 1")
    rows = await database.fetch(
        "SELECT channel = $1 AS own, target_user_id, target_group, type, payload->>'id' AS task"
        " FROM fastapi_pg_sse.events WHERE id = ANY ($2) ORDER BY id",
        own.name,
        ids,
    )
    assert [tuple(row) for row in rows] == [
        (True, "", "dev", "task_created", "1"),  # triggers fire in the order of their names
        (True, "", "dev", "task_created", "2"),
        (False, "", "ops", "task_created", "1"),
        (False, "", "ops", "task_created", "3"),
        (True, "", "dev", "task_deleted", "1"),
        (False, "", "ops", "task_deleted", "1"),
    ]
    listed = await database.fetch(
        "SELECT channel, user_column, group_column, event_prefix FROM fastapi_pg_sse.triggers"
        " WHERE on_table = 'tasks'::regclass ORDER BY channel = $1",
        own.name,
    )
    assert [tuple(row) for row in listed] == [
        (through.name, None, "project_id.team", "task"),
        (own.name, None, "team", "task"),
    ]


@pytest.mark.parametrize(
    ("arguments", "why"),
    [
        (
            "user_column => 'team', group_column => 'team'",
            "name either user_column or group_column, not both",
        ),
        ("event_prefix => 'task'", "name either user_column or group_column, not neither"),
        (
            "group_column => '', event_prefix => 'task'",
            "group_column must be a non-empty single line, got ''",
        ),
        (
            "group_column => 'team', event_prefix => 'a b'",
            "event_type must be a word such as stock_updated, got 'a b'",
        ),
        (
            "user_column => 'group:team', event_prefix => 'task'",
            "user_column cannot begin with group:, got 'group:team'",
        ),
    ],
    ids=["both", "neither", "empty", "bad-prefix", "group-marker"],
)
async def test_a_trigger_names_its_users_or_its_groups_never_both_nor_neither(
    database: asyncpg.Connection, arguments: str, why: str
) -> None:
    await database.execute(TEAMS)
    with pytest.raises(asyncpg.InvalidParameterValueError) as refused:
        await database.execute(
            f"SELECT fastapi_pg_sse.create_trigger('teams', 'tasks', {arguments})"
        )
    assert refused.value.message.endswith(f".tasks: {why}")
    assert (
        await database.fetchval(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tasks'::regclass AND NOT tgisinternal"
        )
        == 0
    )
