"""Who may do what in the runtime's schema: the schema's owner, the roles the README's grants
name, and nobody else. A role that only writes the application's tables emits through their
triggers and can do nothing more; no role, the owner included, can store an event of a type
streams send themselves."""

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit

import asyncpg
import pytest

from fastapi_pg_sse.schema import (
    SchemaVersion,
    apply_migrations,
    creation_sql,
    downgrade_sql,
    migration_sql,
)
from fastapi_pg_sse.testing import connected, next_event, open_stream, sign_token
from tests.app import FEED, STREAM
from tests.helpers import new_database, new_users, serving

pytestmark = pytest.mark.anyio

README = Path(__file__).resolve().parents[1] / "README.md"
ROLES = ("streaming_role", "emitting_role", "pruning_role", "writer", "nobody")
"""The README's roles, a role that only writes the application's table, and one with no grant."""
PASSWORD = "a-password-of-the-roles-of-these-tests"
DEFINERS = {
    *("emit", "emit_many", "emit_to_group", "emit_to_groups", "broadcast", "broadcast_many"),
    *("record", "commit_events", "emit_changes", "prune", "disconnect", "sequence_queued"),
}
"""The functions that run as the schema's owner: those that write events."""


def readme_grants() -> str:
    """The SQL block of the README's "Database roles"."""
    section = README.read_text(encoding="utf-8").split("### Database roles", 1)[1]
    block = re.search(r"```sql\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the README gives the grants in a sql block"
    return block.group(1)


def as_role(database_url: str, role: str) -> str:
    """`database_url`, connecting as `role`."""
    parts = urlsplit(database_url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{role}:{quote(PASSWORD)}@{host}").geturl()


@asynccontextmanager
async def database_with_roles(postgres_url: str) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A database of its own with the runtime's schema, a `notes` table whose trigger emits on
    channel `notes`, the README's grants, and the table's rights for `writer`: its URL, and
    each role's URL. The roles (of the whole server) are dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    names = {role: f"{role}_{suffix}" for role in ROLES}
    async with connected(postgres_url) as admin:
        for name in names.values():
            await admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'")
    try:
        async with new_database(postgres_url) as url, connected(url) as owner:
            grants = readme_grants()
            for role in ROLES:
                grants = grants.replace(role, names[role])
            await owner.execute(
                "CREATE TABLE notes (id serial PRIMARY KEY, owner text NOT NULL, body text);"
                " SELECT fastapi_pg_sse.create_trigger('notes', 'notes', 'owner', 'note');"
                f" GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO {names['writer']};"
                f" GRANT USAGE ON SEQUENCE notes_id_seq TO {names['writer']};" + grants
            )
            yield url, {role: as_role(url, name) for role, name in names.items()}
    finally:
        async with connected(postgres_url) as admin:
            for name in names.values():
                await admin.execute(f"DROP ROLE IF EXISTS {name}")


async def events_of(connection: asyncpg.Connection, channel: str) -> list[str]:
    rows = await connection.fetch(
        "SELECT target_user_id, type FROM fastapi_pg_sse.events WHERE channel = $1 ORDER BY id",
        channel,
    )
    return [f"{row['target_user_id']} {row['type']}" for row in rows]


async def test_a_role_that_only_writes_a_table_emits_through_its_trigger(
    realtime_postgres_url: str,
) -> None:
    """It needs no grant on the schema: the trigger's functions run as the schema's owner."""
    async with (
        database_with_roles(realtime_postgres_url) as (url, roles),
        connected(roles["writer"]) as writer,
    ):
        await writer.execute("INSERT INTO notes (owner) VALUES ('ola')")
        await writer.execute("UPDATE notes SET body = 'hi'")
        await writer.execute("DELETE FROM notes")
        async with connected(url) as owner:
            assert await events_of(owner, "notes") == [
                "ola note_created",
                "ola note_updated",
                "ola note_deleted",
            ]


ATTEMPTS = {
    "emit": "SELECT fastapi_pg_sse.emit('notes', 'victim', 'note_created', '{}')",
    "emit_many": "SELECT fastapi_pg_sse.emit_many('notes', '{victim}', '{reset}', '{null}')",
    "insert an event": "INSERT INTO fastapi_pg_sse.events"
    " VALUES (1, 'notes', 'victim', 'note_created', '{}', now(), pg_current_xact_id())",
    "stage an event": "INSERT INTO fastapi_pg_sse.pending_events"
    " (channel, target_user_id, type, payload) VALUES ('notes', 'victim', 'reset', '{}')",
    "read the events": "SELECT * FROM fastapi_pg_sse.events",
    "prune": "SELECT fastapi_pg_sse.prune('notes', '0 seconds')",
    "move the horizon": "SELECT fastapi_pg_sse.continue_after('notes', 1000000)",
    "make a trigger": "SELECT fastapi_pg_sse.create_trigger('notes2', 'notes', 'owner', 'x')",
    "drop a trigger": "SELECT fastapi_pg_sse.drop_trigger('notes', 'notes')",
}

NEW_IN_1_4 = {
    "emit_to_group": "SELECT fastapi_pg_sse.emit_to_group('notes', 'ops', 'note', '{}')",
    "emit_to_groups": "SELECT fastapi_pg_sse.emit_to_groups('notes', '{ops}', '{note}', '{null}')",
    "broadcast": "SELECT fastapi_pg_sse.broadcast('notes', 'note', '{}')",
    "broadcast_many": "SELECT fastapi_pg_sse.broadcast_many('notes', '{note}', '{\"{}\"}', NULL)",
}
"""A call of each function schema 1.4 adds: to a group, to groups, to everyone, many to everyone."""


@pytest.mark.parametrize("attempt", ATTEMPTS)
async def test_a_role_that_only_writes_a_table_can_do_nothing_else_with_events(
    realtime_postgres_url: str, attempt: str
) -> None:
    async with (
        database_with_roles(realtime_postgres_url) as (_, roles),
        connected(roles["writer"]) as writer,
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await writer.execute(ATTEMPTS[attempt])


async def test_no_role_may_execute_a_function_of_the_schema_unless_granted(
    realtime_postgres_url: str,
) -> None:
    async with (
        database_with_roles(realtime_postgres_url) as (url, roles),
        connected(url) as owner,
    ):
        executable = await owner.fetch(
            "SELECT proname FROM pg_proc WHERE pronamespace = 'fastapi_pg_sse'::regnamespace"
            " AND has_function_privilege($1, oid, 'EXECUTE') ORDER BY proname",
            urlsplit(roles["nobody"]).username,
        )
        assert [row["proname"] for row in executable] == []


async def test_the_functions_that_write_events_run_as_the_owner_with_a_pinned_search_path(
    realtime_database_url: str,
) -> None:
    """Without the pin, a caller's own objects, first on its `search_path`, would run as the
    owner."""
    async with connected(realtime_database_url) as connection:
        definers = await connection.fetch(
            "SELECT proname, proconfig FROM pg_proc"
            " WHERE pronamespace = 'fastapi_pg_sse'::regnamespace AND prosecdef"
        )
    assert {row["proname"] for row in definers} == DEFINERS
    assert {tuple(row["proconfig"]) for row in definers} == {("search_path=pg_catalog, pg_temp",)}


async def test_the_readme_grants_let_each_role_do_its_part_and_nothing_more(
    realtime_postgres_url: str, pytestconfig: pytest.Config
) -> None:
    """The app serves streams as `streaming_role`; `emitting_role` emits, `pruning_role`
    prunes; none of them can do what another does."""
    (user,) = new_users("reader")
    async with database_with_roles(realtime_postgres_url) as (_, roles):
        environment = {"DATABASE_URL": roles["streaming_role"]}
        async with (
            serving("tests.app:app", pytestconfig.rootpath, environment) as server,
            open_stream(server.url + STREAM, sign_token(user)) as events,
            connected(roles["emitting_role"]) as emitter,
        ):
            await emitter.execute(
                "SELECT fastapi_pg_sse.emit($1, $2, 'granted', '{\"by\": \"emitting_role\"}')",
                FEED.name,
                user,
            )
            event = await next_event(events)
            assert (event.event, event.data) == ("granted", '{"by": "emitting_role"}')
        refused = {
            "streaming_role": [ATTEMPTS["emit"], ATTEMPTS["prune"], ATTEMPTS["insert an event"]],
            "emitting_role": [ATTEMPTS["read the events"], ATTEMPTS["prune"]],
            "pruning_role": [ATTEMPTS["emit"], ATTEMPTS["read the events"]],
        }
        for role, attempts in refused.items():
            async with connected(roles[role]) as connection:
                for statement in attempts:
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):
                        await connection.execute(statement)
        async with connected(roles["emitting_role"]) as emitter:
            for statement in NEW_IN_1_4.values():
                await emitter.execute(statement)
        async with connected(roles["streaming_role"]) as streamer:
            for statement in NEW_IN_1_4.values():
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await streamer.execute(statement)
        async with connected(roles["pruning_role"]) as pruner:
            assert await pruner.fetchval("SELECT fastapi_pg_sse.prune($1, '0 s')", FEED.name) >= 1


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT fastapi_pg_sse.emit('notes', 'victim', 'reset', '{}')",
        "SELECT fastapi_pg_sse.emit_many('notes', '{a,victim}', '{note_created,expired}',"
        " '{null,null}')",
    ],
    ids=["emit", "emit_many"],
)
async def test_nobody_can_emit_an_event_of_a_type_streams_send_themselves(
    realtime_database_url: str, statement: str
) -> None:
    async with connected(realtime_database_url) as owner:
        with pytest.raises(asyncpg.InvalidParameterValueError, match="is reserved"):
            await owner.execute(statement)


async def test_not_even_the_owner_can_store_an_event_of_a_reserved_type(
    realtime_database_url: str,
) -> None:
    async with connected(realtime_database_url) as owner, owner.transaction():
        with pytest.raises(asyncpg.CheckViolationError):
            await owner.execute(
                "INSERT INTO fastapi_pg_sse.events VALUES"
                " (-1, 'notes', 'victim', 'reset', '{}', now(), pg_current_xact_id())"
            )


async def test_a_trigger_through_a_table_the_owner_may_not_read_is_refused_with_the_grant(
    realtime_postgres_url: str,
) -> None:
    """A trigger through a foreign key reads the referenced row's user as the schema's owner:
    when another role owns that table, `create_trigger` refuses, saying which grant it needs,
    rather than every write to the table failing later. Once granted, it emits."""
    owner = f"tables_owner_{uuid.uuid4().hex[:8]}"
    async with connected(realtime_postgres_url) as admin:
        await admin.execute(f"CREATE ROLE {owner} LOGIN PASSWORD '{PASSWORD}'")
    try:
        async with (
            new_database(realtime_postgres_url, schema=False) as url,
            connected(url) as admin,
        ):
            database = await admin.fetchval("SELECT current_database()")
            await admin.execute(
                f'GRANT CREATE ON DATABASE "{database}" TO {owner};'
                f" GRANT CREATE ON SCHEMA public TO {owner};"
                " CREATE TABLE articles (id int PRIMARY KEY, author_id text);"
                " INSERT INTO articles VALUES (1, 'ada');"
                f" GRANT REFERENCES (id) ON articles TO {owner}"
            )
            async with connected(as_role(url, owner)) as connection:
                await apply_migrations(connection)
                await connection.execute(
                    "CREATE TABLE comments (id int PRIMARY KEY, article_id int REFERENCES articles)"
                )
                create = (
                    "SELECT fastapi_pg_sse.create_trigger('blog_comment', 'comments',"
                    " 'article_id.author_id', 'comment')"
                )
                with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
                    await connection.execute(create)
                assert refused.value.message == (
                    f"cannot emit blog_comment from public.comments: {owner}, who runs its"
                    " triggers, may not read id, author_id of public.articles"
                )
                assert refused.value.hint == (
                    f"GRANT SELECT (id, author_id) ON public.articles TO {owner}"
                )
                await admin.execute(refused.value.hint)
                await connection.execute(create)
                await connection.execute("INSERT INTO comments VALUES (10, 1)")
                assert await events_of(connection, "blog_comment") == ["ada comment_created"]
    finally:
        async with connected(realtime_postgres_url) as admin:
            await admin.execute(f"DROP ROLE IF EXISTS {owner}")


async def test_1_4_grants_its_functions_to_who_could_emit_and_its_downgrade_keeps_the_grants(
    realtime_postgres_url: str,
) -> None:
    """The 1.4 migration grants its functions to each role granted emit or emit_many, and its
    create_trigger to whoever could call 1.3's (here, a role granted every function of the
    schema, as a role that runs migrations may be); to no other role. Its downgrade gives 1.3's
    create_trigger and view of triggers to whom 1.4's were granted."""
    suffix = uuid.uuid4().hex[:8]
    emitter, creator, nobody = (f"{role}_{suffix}" for role in ("emitter", "creator", "nobody"))
    async with connected(realtime_postgres_url) as admin:
        for role in (emitter, creator, nobody):
            await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
    try:
        async with (
            new_database(realtime_postgres_url, schema=False) as url,
            connected(url) as owner,
        ):
            await owner.execute(
                creation_sql(SchemaVersion(1, 3))
                + f"GRANT USAGE ON SCHEMA fastapi_pg_sse TO {emitter}, {creator}, {nobody};"
                "GRANT EXECUTE ON FUNCTION fastapi_pg_sse.emit(text, text, text, jsonb)"
                f" TO {emitter};"
                f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA fastapi_pg_sse TO {creator};"
                f"CREATE TABLE notes (owner text, team text); ALTER TABLE notes OWNER TO {creator};"
                + migration_sql(SchemaVersion(1, 4))
            )
            async with connected(as_role(url, emitter)) as connection:
                for statement in NEW_IN_1_4.values():
                    await connection.execute(statement)
            async with connected(as_role(url, creator)) as connection:
                await connection.execute(
                    "SELECT fastapi_pg_sse.create_trigger('team_notes', 'notes',"
                    " group_column => 'team', event_prefix => 'note');"
                    " INSERT INTO notes VALUES ('ada', 'dev')"
                )
            async with connected(as_role(url, nobody)) as connection:
                for statement in NEW_IN_1_4.values():
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):
                        await connection.execute(statement)
            stored = await owner.fetchval(
                "SELECT array_agg(format('%s %s', channel, target_group) ORDER BY id)"
                " FROM fastapi_pg_sse.events"
            )
            await owner.execute(
                f"GRANT SELECT ON fastapi_pg_sse.triggers TO {nobody};"
                " SELECT fastapi_pg_sse.drop_trigger('team_notes', 'notes');"
                + downgrade_sql(SchemaVersion(1, 4))
            )
            kept = await owner.fetchrow(
                "SELECT has_function_privilege($1, 'fastapi_pg_sse.create_trigger(text, regclass,"
                " text, text, text[])', 'EXECUTE'), has_table_privilege($2,"
                " 'fastapi_pg_sse.triggers', 'SELECT'), has_table_privilege($1,"
                " 'fastapi_pg_sse.triggers', 'SELECT')",
                creator,
                nobody,
            )
    finally:
        async with connected(realtime_postgres_url) as admin:
            for role in (emitter, creator, nobody):
                await admin.execute(f"DROP ROLE IF EXISTS {role}")
    assert stored == [*["notes ops"] * 2, *["notes "] * 2, "team_notes dev"]
    assert kept is not None
    assert tuple(kept) == (True, True, False)
