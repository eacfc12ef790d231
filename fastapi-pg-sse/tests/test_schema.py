"""The runtime's schema, `fastapi_pg_sse`: printed, applied and checked by `python -m
fastapi_pg_sse schema` (exit 0 done or up to date, 1 behind or ahead with `--check`, 2 bad
arguments or no database), applied once however many processes apply it at once, split into
statements that each run on their own, and applied and undone by an Alembic revision."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent

import anyio
import asyncpg
import pytest
from anyio.from_thread import start_blocking_portal

from fastapi_pg_sse.__main__ import main
from fastapi_pg_sse.schema import (
    FIX,
    MIGRATIONS,
    SchemaMismatch,
    SchemaVersion,
    applied_version,
    apply_migrations,
    check_schema,
    creation_sql,
    downgrade_sql,
    migration_sql,
    newest_version,
    require,
    required_version,
    shipped_versions,
    statements,
    upgrade_sql,
)
from fastapi_pg_sse.testing import connected
from tests.helpers import emit, new_channel, new_database, wait_until_blocked

UNREACHABLE = "postgresql://postgres@127.0.0.1:9/postgres"
"""Nothing listens on the discard port."""
ONE_ZERO = SchemaVersion(1, 0)
ONE_ONE = SchemaVersion(1, 1)
ONE_TWO = SchemaVersion(1, 2)
ONE_THREE = SchemaVersion(1, 3)
ONE_FOUR = SchemaVersion(1, 4)
ONE_FIVE = SchemaVersion(1, 5)


@pytest.fixture
def empty_database_url(realtime_postgres_url: str) -> Iterator[str]:
    """A database of the test's own without the runtime's schema, for a test without an event
    loop (the CLI runs one of its own)."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(new_database(realtime_postgres_url, schema=False)) as url,
    ):
        yield url


def _run(url: str, statement: str, *args: object) -> object:
    """The value `statement` returns on a connection of its own (for a test without a loop)."""

    async def fetch() -> object:
        async with connected(url) as connection:
            return await connection.fetchval(statement, *args)

    return anyio.run(fetch)


def _execute(url: str, script: str) -> None:
    """Run a script of statements on a connection of its own (for a test without a loop)."""

    async def execute() -> None:
        async with connected(url) as connection:
            await connection.execute(script)

    anyio.run(execute)


def _record_version(url: str, version: str) -> None:
    """Make the database's schema look migrated to `version`, and to nothing newer."""
    _run(url, "DELETE FROM fastapi_pg_sse.migrations")
    _run(url, "INSERT INTO fastapi_pg_sse.migrations (version) VALUES ($1)", version)


def test_this_runtime_ships_schema_1_5_and_needs_it() -> None:
    """1.5 adds what the runtime's Python code calls (sequence_queued, at each keep-alive)."""
    assert shipped_versions() == (ONE_ZERO, ONE_ONE, ONE_TWO, ONE_THREE, ONE_FOUR, ONE_FIVE)
    assert newest_version() == ONE_FIVE
    assert required_version() == ONE_FIVE
    assert sorted(path.name for path in MIGRATIONS.glob("*.sql")) == [
        "1.0.downgrade.sql",
        "1.0.sql",
        "1.1.create.sql",
        "1.1.downgrade.sql",
        "1.1.sql",
        "1.2.create.sql",
        "1.2.downgrade.sql",
        "1.2.sql",
        "1.3.create.sql",
        "1.3.downgrade.sql",
        "1.3.sql",
        "1.4.create.sql",
        "1.4.downgrade.sql",
        "1.4.sql",
        "1.5.create.sql",
        "1.5.downgrade.sql",
        "1.5.sql",
    ]


def test_the_cli_prints_the_sql_that_creates_the_schema_at_the_newest_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert printed == upgrade_sql() == (MIGRATIONS / "1.5.create.sql").read_text(encoding="utf-8")
    assert printed.startswith("-- fastapi-pg-sse schema 1.5")


def test_the_cli_prints_the_migrations_after_the_version_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["schema", "--from", "1.0"]) == 0
    assert capsys.readouterr().out == "\n".join(
        (MIGRATIONS / name).read_text(encoding="utf-8")
        for name in ("1.1.sql", "1.2.sql", "1.3.sql", "1.4.sql", "1.5.sql")
    )
    assert main(["schema", "--from", "1.4"]) == 0
    assert capsys.readouterr().out == (MIGRATIONS / "1.5.sql").read_text(encoding="utf-8")
    assert main(["schema", "--from", "1.5"]) == 0
    assert capsys.readouterr().out == "" == upgrade_sql(ONE_FIVE)


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (
            ["schema", "--from", "0.9"],
            "no schema 0.9 was shipped (versions: 1.0, 1.1, 1.2, 1.3, 1.4, 1.5)",
        ),
        (["schema", "--from", "one"], "'one' is not a schema version such as 1.0"),
        (["schema", "--from", "1.0.0"], "is not a schema version such as 1.0"),
        (["schema", "--apply", "--check"], "not allowed with argument"),
        ([], "required: command"),
        (["schema", "--apply"], "set DATABASE_URL, or pass --database-url"),
        (["schema", "--from", "1.0", "--check"], "--from prints SQL: it goes with neither"),
    ],
    ids=[
        "unshipped",
        "not-a-version",
        "three-parts",
        "apply-and-check",
        "no-command",
        "no-url",
        "from-and-check",
    ],
)
def test_the_cli_refuses_bad_arguments_with_status_2(
    arguments: list[str],
    complaint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REALTIME_DATABASE_URL", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(arguments)
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


def test_apply_creates_the_schema_once_and_a_second_run_applies_nothing(
    empty_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command = ["schema", "--apply", "--database-url", empty_database_url]
    assert main(command) == 0
    assert capsys.readouterr().out == "Applied fastapi-pg-sse schema 1.5.\n"
    assert main(command) == 0
    assert capsys.readouterr().out == "The fastapi-pg-sse schema is up to date (1.5 or newer).\n"
    assert _run(empty_database_url, "SELECT array_agg(version) FROM fastapi_pg_sse.migrations") == [
        "1.5"
    ]


@pytest.mark.parametrize(
    ("since", "applied"),
    [
        (ONE_ZERO, "1.1, 1.2, 1.3, 1.4, 1.5"),
        (ONE_ONE, "1.2, 1.3, 1.4, 1.5"),
        (ONE_TWO, "1.3, 1.4, 1.5"),
        (ONE_THREE, "1.4, 1.5"),
        (ONE_FOUR, "1.5"),
    ],
    ids=["1.0", "1.1", "1.2", "1.3", "1.4"],
)
def test_apply_upgrades_an_older_schema_keeping_its_events_and_triggers(
    empty_database_url: str, capsys: pytest.CaptureFixture[str], since: SchemaVersion, applied: str
) -> None:
    _execute(empty_database_url, creation_sql(since))
    _execute(
        empty_database_url,
        "CREATE TABLE notes (id int, owner text NOT NULL);"
        " SELECT fastapi_pg_sse.create_trigger('notes', 'notes', 'owner', 'note');"
        " SELECT fastapi_pg_sse.create_trigger('ids', 'notes', 'owner', 'note', '{id}');"
        " INSERT INTO notes VALUES (1, 'ola')",
    )
    assert main(["schema", "--apply", "--database-url", empty_database_url]) == 0
    assert capsys.readouterr().out == f"Applied fastapi-pg-sse schema {applied}.\n"
    _run(empty_database_url, "INSERT INTO notes VALUES (2, 'ola')")
    events = (
        "SELECT array_agg(format('%s %s %s %s %s', id, channel, target_user_id, type, payload)"
        " ORDER BY id)"
    )
    assert _run(empty_database_url, f"{events} FROM fastapi_pg_sse.events") == [
        '1 ids ola note_created {"id": 1}',  # triggers fire in the order of their names
        '2 notes ola note_created {"id": 1, "owner": "ola"}',
        '3 ids ola note_created {"id": 2}',
        '4 notes ola note_created {"id": 2, "owner": "ola"}',
    ]


def test_upgrading_to_1_3_is_refused_while_an_apps_channel_stores_events_of_type_revoked(
    empty_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """1.2 let an app emit the type `revoked`, which 1.3 streams send to end a user's streams:
    replayed, clients would take them for that. The upgrade changes nothing and says which
    channels hold them and what to do; once they have a type of their own, it goes through."""
    _execute(empty_database_url, creation_sql(ONE_TWO))
    for channel, event_type in [("feed", "revoked"), ("news", "revoked"), ("feed", "revoked")]:
        _run(
            empty_database_url,
            "SELECT fastapi_pg_sse.emit($1, 'ada', $2, NULL)",
            channel,
            event_type,
        )
    _run(empty_database_url, "SELECT fastapi_pg_sse.emit('feed', 'ada', 'kept', NULL)")
    command = ["schema", "--apply", "--database-url", empty_database_url]
    assert main(command) == 2
    assert capsys.readouterr().err == (
        "error: PostgreSQL refused it: cannot upgrade to fastapi-pg-sse schema 1.3: events of type"
        " revoked are stored on these channels (with their count), and 1.3 reserves that type for"
        " the end of a user's streams, which clients would take them for: feed (2), news (1)\n"
        "HINT:  give them a type of your own (UPDATE fastapi_pg_sse.events SET type = 'your_type'"
        " WHERE type = 'revoked', and the same on fastapi_pg_sse.pending_events) or delete them,"
        " then upgrade again\n"
    )
    assert _run(empty_database_url, "SELECT array_agg(version) FROM fastapi_pg_sse.migrations") == [
        "1.2"
    ]
    _run(
        empty_database_url,
        "UPDATE fastapi_pg_sse.events SET type = 'app_revoked' WHERE type = 'revoked'",
    )
    assert main(command) == 0
    assert capsys.readouterr().out == "Applied fastapi-pg-sse schema 1.3, 1.4, 1.5.\n"
    types = "SELECT array_agg(type ORDER BY id) FROM fastapi_pg_sse.events"
    assert _run(empty_database_url, types) == ["app_revoked"] * 3 + ["kept"]


def test_upgrading_to_1_4_is_refused_while_a_trigger_reads_its_users_from_a_group_marked_column(
    empty_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """1.4 marks a trigger to a group by its column's `group:` prefix: a 1.3 trigger whose user
    column is named so would send each user's events to a group. The upgrade changes nothing and
    says which trigger and what to do."""
    _execute(empty_database_url, creation_sql(ONE_THREE))
    _execute(
        empty_database_url,
        """CREATE TABLE tasks ("group:team" text);"""
        " SELECT fastapi_pg_sse.create_trigger('tasks', 'tasks', 'group:team', 'task');",
    )
    assert main(["schema", "--apply", "--database-url", empty_database_url]) == 2
    assert capsys.readouterr().err.startswith(
        "error: PostgreSQL refused it: cannot upgrade to fastapi-pg-sse schema 1.4: these triggers"
        " read their users from a column whose name begins with group:, which 1.4 takes for a"
        " group: tasks on tasks (group:team)\n"
    )
    assert _run(empty_database_url, "SELECT array_agg(version) FROM fastapi_pg_sse.migrations") == [
        "1.3"
    ]


@pytest.mark.anyio
async def test_undoing_1_4_waits_for_an_open_emitting_transaction_which_then_commits(
    realtime_postgres_url: str,
) -> None:
    """An emitter holds `pending_events` until it commits, and its commit then writes `events`:
    the downgrade locks them in that order as it starts, so the emitter's commit goes through
    (the downgrade's first statement waits for it) rather than dying in a deadlock."""
    async with (
        new_database(realtime_postgres_url, schema=False) as url,
        connected(url) as emitter,
        connected(url) as migrator,
    ):
        await migrator.execute(creation_sql(ONE_THREE) + migration_sql(ONE_FOUR))
        emitting = emitter.transaction()
        await emitting.start()
        await emitter.execute("SELECT fastapi_pg_sse.emit('feed', 'ada', 'kept', NULL)")

        async def downgrade() -> None:
            async with migrator.transaction():
                await migrator.execute(downgrade_sql(ONE_FOUR))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(downgrade)
            await wait_until_blocked(emitter, migrator.get_server_pid())
            await emitting.commit()
        assert await applied_version(migrator) == ONE_THREE
        assert await migrator.fetchval("SELECT array_agg(type) FROM fastapi_pg_sse.events") == [
            "kept"
        ]


def test_apply_leaves_a_newer_minor_version_alone(
    empty_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", "--apply", "--database-url", empty_database_url]) == 0
    _run(empty_database_url, "SELECT fastapi_pg_sse.emit('kept', 'u', 'before', NULL)")
    _record_version(empty_database_url, "1.9")
    capsys.readouterr()
    assert main(["schema", "--apply", "--database-url", empty_database_url]) == 0
    assert "up to date" in capsys.readouterr().out
    assert _run(empty_database_url, "SELECT count(*) FROM fastapi_pg_sse.events") == 1


def test_the_database_is_realtime_database_url_before_database_url(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As for the app: `REALTIME_DATABASE_URL` wins over `DATABASE_URL`."""
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
    monkeypatch.setenv("REALTIME_DATABASE_URL", empty_database_url)
    assert main(["schema", "--apply"]) == 0
    assert main(["schema", "--check"]) == 0
    assert capsys.readouterr().out.endswith("The fastapi-pg-sse schema is 1.5: up to date.\n")


def _check(database_url: str) -> subprocess.CompletedProcess[str]:
    """`python -m fastapi_pg_sse schema --check`, run as an operator or a CI job runs it."""
    return subprocess.run(
        [sys.executable, "-m", "fastapi_pg_sse", "schema", "--check"],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("version", "status", "output"),
    [
        (None, 1, f"error: the database has no fastapi-pg-sse schema: {FIX}"),
        ("1.4", 1, f"error: the database's fastapi-pg-sse schema is 1.4, not 1.5: {FIX}"),
        ("1.5", 0, "The fastapi-pg-sse schema is 1.5: up to date."),
        ("1.9", 0, "The fastapi-pg-sse schema is 1.9: up to date."),
        (
            "2.0",
            1,
            "error: the database's fastapi-pg-sse schema is 2.0, newer than 1.x: upgrade"
            " fastapi-pg-sse to a version that supports it",
        ),
    ],
    ids=["none", "older", "newest", "newer-minor", "newer-major"],
)
def test_check_exits_0_only_for_a_schema_this_runtime_works_with(
    empty_database_url: str, version: str | None, status: int, output: str
) -> None:
    if version is not None:
        assert main(["schema", "--apply", "--database-url", empty_database_url]) == 0
        _record_version(empty_database_url, version)
    checked = _check(empty_database_url)
    assert checked.returncode == status, checked.stderr
    assert (checked.stdout + checked.stderr).strip() == output


def test_check_and_apply_exit_2_when_the_database_cannot_be_reached() -> None:
    checked = _check(UNREACHABLE)
    assert checked.returncode == 2
    assert checked.stderr.startswith("error: cannot reach the database: ")
    assert "Traceback" not in checked.stderr
    applied = subprocess.run(
        [sys.executable, "-m", "fastapi_pg_sse", "schema", "--apply"],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": UNREACHABLE},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert applied.returncode == 2
    assert applied.stderr.startswith("error: cannot reach the database: ")


def test_apply_says_what_postgresql_refused_and_exits_2(
    empty_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database whose schema was made by hand, but not its record of versions."""
    _run(empty_database_url, "CREATE SCHEMA fastapi_pg_sse")
    assert main(["schema", "--apply", "--database-url", empty_database_url]) == 2
    assert capsys.readouterr().err == (
        'error: PostgreSQL refused it: schema "fastapi_pg_sse" already exists\n'
    )


def test_bad_arguments_exit_2_from_the_command_line() -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "fastapi_pg_sse", "schema", "--from", "0.9"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "no schema 0.9 was shipped" in refused.stderr
    assert refused.stdout == ""


@pytest.mark.parametrize(
    ("applied", "problem"),
    [
        (None, f"the database has no fastapi-pg-sse schema: {FIX}"),
        ("1.0", f"the database's fastapi-pg-sse schema is 1.0, not 1.5: {FIX}"),
        ("1.4", f"the database's fastapi-pg-sse schema is 1.4, not 1.5: {FIX}"),
        ("2.0", "schema is 2.0, newer than 1.x: upgrade fastapi-pg-sse"),
        ("10.0", "schema is 10.0, newer than 1.x: upgrade fastapi-pg-sse"),
    ],
)
def test_require_refuses_a_schema_missing_behind_or_of_a_newer_major_in_one_line(
    applied: str | None, problem: str
) -> None:
    with pytest.raises(SchemaMismatch) as refused:
        require(None if applied is None else SchemaVersion.parse(applied))
    assert problem in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("applied", ["1.5", "1.9", "1.10"])
def test_require_accepts_the_needed_version_and_newer_minors(applied: str) -> None:
    require(SchemaVersion.parse(applied))


@pytest.mark.parametrize("text", ["1", "1.0.0", "v1.0", "01.0", "1.01", "1.x", " 1.0", ""])
def test_a_schema_version_is_major_dot_minor_in_plain_numbers(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a schema version such as 1\.0"):
        SchemaVersion.parse(text)


def test_versions_compare_as_numbers() -> None:
    assert SchemaVersion.parse("1.10") > SchemaVersion.parse("1.9") > ONE_ZERO
    assert str(SchemaVersion.parse("1.10")) == "1.10"


@pytest.mark.anyio
async def test_migrations_applied_from_two_connections_at_once_are_applied_once(
    realtime_postgres_url: str,
) -> None:
    """Two processes starting their migrations together: one applies, the other waits for it
    and then finds nothing to apply, instead of failing on a schema that already exists."""
    lock = "SELECT pg_advisory_lock(hashtext('fastapi_pg_sse.migrations'))"
    async with (
        new_database(realtime_postgres_url, schema=False) as url,
        connected(url) as holder,
        connected(url) as first,
        connected(url) as second,
    ):
        await holder.execute(lock)
        applied: list[list[SchemaVersion]] = []

        async def apply(connection: asyncpg.Connection) -> None:
            applied.append(await apply_migrations(connection))

        async with anyio.create_task_group() as tasks:
            for connection in (first, second):
                tasks.start_soon(apply, connection)
                await wait_until_blocked(holder, connection.get_server_pid())
            await holder.execute("SELECT pg_advisory_unlock_all()")
        versions = await holder.fetchval("SELECT array_agg(version) FROM fastapi_pg_sse.migrations")
        assert await check_schema(holder) == ONE_FIVE
    assert sorted(applied) == [[], [ONE_FIVE]]
    assert versions == ["1.5"]


@pytest.mark.anyio
async def test_apply_migrations_does_nothing_on_an_up_to_date_database(
    realtime_database_url: str,
) -> None:
    async with connected(realtime_database_url) as connection:
        assert await apply_migrations(connection) == []
        assert await applied_version(connection) == ONE_FIVE


_SCHEMA = """
    SELECT array_agg(object ORDER BY object) FROM (
        SELECT format('%s %s %s %s', relkind, relpersistence, relname, relacl) FROM pg_class
            WHERE relnamespace = 'fastapi_pg_sse'::regnamespace
        UNION ALL SELECT format('column %s.%s %s %s %s %s', attrelid::regclass, attname,
                format_type(atttypid, atttypmod), attnotnull, attidentity,
                pg_get_expr(adbin, adrelid))
            FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
            WHERE attrelid::regclass::text LIKE 'fastapi_pg_sse.%' AND attnum > 0
                AND NOT attisdropped  -- a column a downgrade dropped is gone, whatever its number
        UNION ALL SELECT format('constraint %s %s %s', conrelid::regclass, conname,
                -- a CHECK an upgrade adds to a table that has rows is NOT VALID, as it should be
                replace(pg_get_constraintdef(oid), ' NOT VALID', ''))
            FROM pg_constraint WHERE connamespace = 'fastapi_pg_sse'::regnamespace
        -- who may execute it, the default (NULL) spelt out, as a GRANT back to PUBLIC spells it
        UNION ALL SELECT format('function %s %s %s', oid::regprocedure,
                (SELECT array_agg(item::text ORDER BY item::text)
                    FROM unnest(coalesce(proacl, acldefault('f', proowner))) AS item),
                md5(pg_get_functiondef(oid)))
            FROM pg_proc WHERE pronamespace = 'fastapi_pg_sse'::regnamespace
        UNION ALL SELECT pg_get_triggerdef(oid) FROM pg_trigger
            WHERE tgrelid::regclass::text LIKE 'fastapi_pg_sse.%'
        UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'fastapi_pg_sse'
        UNION ALL SELECT pg_get_viewdef('fastapi_pg_sse.triggers'::regclass)
        UNION ALL SELECT format('schema %s', nspacl) FROM pg_namespace
            WHERE nspname = 'fastapi_pg_sse'
    ) AS objects (object)
"""
"""Everything the schema is made of, down to its functions' text and who may use what."""


@pytest.mark.anyio
@pytest.mark.parametrize("since", shipped_versions(), ids=str)
async def test_created_or_upgraded_one_statement_at_a_time_the_schema_is_the_same(
    realtime_postgres_url: str, realtime_database_url: str, since: SchemaVersion
) -> None:
    """Each statement runs as a prepared statement, which holds only one (as Alembic's
    `op.execute` runs it). In order, those that create the schema at any version, then upgrade
    it through each newer one, make the same schema as `apply_migrations` on a new database."""
    sql = [creation_sql(since), *(migration_sql(v) for v in shipped_versions() if v > since)]
    found = [statement for migration in sql for statement in statements(migration)]
    assert all(statement.endswith(";") for statement in found)
    assert found[0].endswith("\nCREATE SCHEMA fastapi_pg_sse;"), "its comment, then itself"
    async with new_database(realtime_postgres_url, schema=False) as url, connected(url) as split:
        for statement in found:
            await split.fetch(statement)
        async with connected(realtime_database_url) as whole:
            expected = await whole.fetchval(_SCHEMA)
        assert await split.fetchval(_SCHEMA) == expected
        assert await check_schema(split) == newest_version()
        event_id = await emit(split, new_channel(), "stan")
    assert event_id == 1


@pytest.mark.anyio
@pytest.mark.parametrize("version", shipped_versions()[1:], ids=str)
async def test_a_downgrade_one_statement_at_a_time_gives_back_the_schema_of_the_version_before(
    realtime_postgres_url: str, version: SchemaVersion
) -> None:
    """As the downgrade of the Alembic revision that applied `version` runs it."""
    before = max(v for v in shipped_versions() if v < version)
    sql = [creation_sql(before), migration_sql(version), downgrade_sql(version)]
    async with (
        new_database(realtime_postgres_url, schema=False) as downgraded_url,
        new_database(realtime_postgres_url, schema=False) as before_url,
        connected(downgraded_url) as downgraded,
        connected(before_url) as created_before,
    ):
        for statement in [statement for migration in sql for statement in statements(migration)]:
            await downgraded.fetch(statement)
        await created_before.execute(creation_sql(before))
        assert await downgraded.fetchval(_SCHEMA) == await created_before.fetchval(_SCHEMA)
        assert await applied_version(downgraded) == before


COMMENTS = """
    CREATE TABLE notes (owner text NOT NULL);
    CREATE TABLE articles (id int PRIMARY KEY, author_id text);
    CREATE TABLE comments (id int PRIMARY KEY, article_id int REFERENCES articles);
    INSERT INTO articles VALUES (1, 'ada');
    SELECT fastapi_pg_sse.create_trigger('notes', 'notes', 'owner', 'note');
    SELECT fastapi_pg_sse.create_trigger('blog_comment', 'comments', 'article_id.author_id',
        'comment');
"""
"""A trigger that finds its user in a column of the row, and one through a foreign key (1.2)."""


@pytest.mark.anyio
async def test_undoing_1_2_is_refused_while_a_trigger_goes_through_a_foreign_key(
    realtime_postgres_url: str,
) -> None:
    """1.1's triggers read a column of the row only: such a trigger would fail every write to
    its table. Once it is dropped, the downgrade goes through, and the other triggers emit."""
    async with (
        new_database(realtime_postgres_url, schema=False) as url,
        connected(url) as connection,
    ):
        await connection.execute(creation_sql(ONE_ONE) + migration_sql(ONE_TWO) + COMMENTS)
        with pytest.raises(asyncpg.DependentObjectsStillExistError) as refused:
            await connection.execute(downgrade_sql(ONE_TWO))
        assert refused.value.message == (
            "cannot undo fastapi-pg-sse schema 1.2: these triggers find their users through a"
            " foreign key, which 1.1 cannot: blog_comment on comments (article_id.author_id)"
        )
        assert refused.value.hint == (
            "drop them first, with fastapi_pg_sse.drop_trigger(channel, on_table)"
        )
        assert await applied_version(connection) == ONE_TWO
        await connection.execute(
            "INSERT INTO comments VALUES (1, 1);"
            " SELECT fastapi_pg_sse.drop_trigger('blog_comment', 'comments');"
            + downgrade_sql(ONE_TWO)
            + " INSERT INTO notes VALUES ('bo'); INSERT INTO comments VALUES (2, 1)"
        )
        assert await applied_version(connection) == ONE_ONE
        events = await connection.fetchval(
            "SELECT array_agg(format('%s %s %s', channel, target_user_id, type) ORDER BY id)"
            " FROM fastapi_pg_sse.events"
        )
    assert events == ["blog_comment ada comment_created", "notes bo note_created"]


@pytest.mark.anyio
async def test_undoing_1_4_is_refused_while_a_trigger_emits_to_groups_and_drops_what_no_user_reads(
    realtime_postgres_url: str,
) -> None:
    """1.3's triggers emit to users only: such a trigger would fail every write to its table.
    Once it is dropped, the downgrade goes through: the events to groups and to everyone, which
    no stream of 1.3 would read, are deleted, the users' kept, and the other triggers emit."""
    async with (
        new_database(realtime_postgres_url, schema=False) as url,
        connected(url) as connection,
    ):
        await connection.execute(creation_sql(ONE_THREE) + migration_sql(ONE_FOUR))
        await connection.execute(
            "CREATE TABLE notes (owner text NOT NULL, team text);"
            " SELECT fastapi_pg_sse.create_trigger('notes', 'notes', 'owner', 'note');"
            " SELECT fastapi_pg_sse.create_trigger('team_notes', 'notes', group_column => 'team',"
            "  event_prefix => 'note');"
            " INSERT INTO notes VALUES ('ada', 'ops');"
            " SELECT fastapi_pg_sse.broadcast('notes', 'hello', NULL)"
        )
        with pytest.raises(asyncpg.DependentObjectsStillExistError) as refused:
            await connection.execute(downgrade_sql(ONE_FOUR))
        assert refused.value.message == (
            "cannot undo fastapi-pg-sse schema 1.4: these triggers emit to groups, which 1.3"
            " cannot: team_notes on notes (team)"
        )
        assert refused.value.hint == (
            "drop them first, with fastapi_pg_sse.drop_trigger(channel, on_table)"
        )
        assert await applied_version(connection) == ONE_FOUR
        await connection.execute(
            "SELECT fastapi_pg_sse.drop_trigger('team_notes', 'notes');"
            + downgrade_sql(ONE_FOUR)
            + " INSERT INTO notes VALUES ('bo', 'ops')"
        )
        assert await applied_version(connection) == ONE_THREE
        events = await connection.fetchval(
            "SELECT array_agg(format('%s %s %s', channel, target_user_id, type) ORDER BY id)"
            " FROM fastapi_pg_sse.events"
        )
    assert events == ["notes ada note_created", "notes bo note_created"]


@pytest.mark.anyio
async def test_the_whole_migration_is_more_than_one_statement(realtime_postgres_url: str) -> None:
    """Why `statements` exists: a prepared statement refuses the migration whole."""
    async with new_database(realtime_postgres_url, schema=False) as url, connected(url) as split:
        with pytest.raises(asyncpg.PostgresSyntaxError, match="multiple commands"):
            await split.fetch(migration_sql(ONE_ZERO))


def test_statements_keep_a_function_body_whole_and_refuse_an_unfinished_statement() -> None:
    sql = dedent(
        """\
        CREATE TABLE t (x int);
        CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM 1;
        END;
        $$;
        -- a comment of the next statement
        SELECT 1;
        """
    )
    assert statements(sql) == [
        "CREATE TABLE t (x int);",
        "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n    PERFORM 1;\nEND;\n$$;",
        "-- a comment of the next statement\nSELECT 1;",
    ]
    with pytest.raises(ValueError, match="a statement does not end with ';': 'SELECT 2'"):
        statements("SELECT 1;\nSELECT 2\n")


ALEMBIC_ENV = """\
import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine


def run(connection):
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


async def main():
    engine = create_async_engine(context.config.get_main_option("sqlalchemy.url"))
    async with engine.connect() as connection:
        await connection.run_sync(run)
    await engine.dispose()


asyncio.run(main())
"""


def alembic_revision(name: str, down: str | None, upgrade: str, downgrade: str) -> str:
    """A project's revision that has the runtime apply its schema."""
    helpers = sorted(call.partition("(")[0] for call in (upgrade, downgrade))
    return dedent(
        f"""\
        from fastapi_pg_sse.schema import {", ".join(helpers)}

        revision = "{name}"
        down_revision = {down and repr(down)}


        def upgrade() -> None:
            {upgrade}


        def downgrade() -> None:
            {downgrade}
        """
    )


ALEMBIC_PROJECTS = {
    "new": [alembic_revision("0001", None, 'alembic_create("1.5")', "alembic_drop()")],
    "made-at-1.0": [
        alembic_revision("0001", None, 'alembic_upgrade("1.0")', 'alembic_downgrade("1.0")'),
        alembic_revision("0002", "0001", 'alembic_upgrade("1.1")', 'alembic_downgrade("1.1")'),
        alembic_revision("0003", "0002", 'alembic_upgrade("1.2")', 'alembic_downgrade("1.2")'),
        alembic_revision("0004", "0003", 'alembic_upgrade("1.3")', 'alembic_downgrade("1.3")'),
        alembic_revision("0005", "0004", 'alembic_upgrade("1.4")', 'alembic_downgrade("1.4")'),
        alembic_revision("0006", "0005", 'alembic_upgrade("1.5")', 'alembic_downgrade("1.5")'),
    ],
    "made-at-1.2": [
        alembic_revision("0001", None, 'alembic_create("1.2")', "alembic_drop()"),
        alembic_revision("0002", "0001", 'alembic_upgrade("1.3")', 'alembic_downgrade("1.3")'),
        alembic_revision("0003", "0002", 'alembic_upgrade("1.4")', 'alembic_downgrade("1.4")'),
        alembic_revision("0004", "0003", 'alembic_upgrade("1.5")', 'alembic_downgrade("1.5")'),
    ],
}
"""The revisions of a project made with schema 1.5, and of ones made with 1.0 or 1.2 then
upgraded."""


def alembic_project(folder: Path, revisions: list[str]) -> Path:
    """A throwaway Alembic environment on the asyncpg driver whose revisions apply the
    runtime's schema; its `alembic.ini`."""
    (folder / "migrations" / "versions").mkdir(parents=True)
    (folder / "migrations" / "env.py").write_text(ALEMBIC_ENV, encoding="utf-8")
    for number, revision in enumerate(revisions, start=1):
        (folder / "migrations" / "versions" / f"{number:04}_fastapi_pg_sse.py").write_text(
            revision, encoding="utf-8"
        )
    config = folder / "alembic.ini"
    config.write_text(
        "[alembic]\nscript_location = %(here)s/migrations\n"
        "sqlalchemy.url = postgresql+asyncpg://configured-elsewhere/\n",
        encoding="utf-8",
    )
    return config


@pytest.mark.parametrize("project", ALEMBIC_PROJECTS)
def test_alembic_revisions_apply_the_schema_on_upgrade_and_drop_it_on_downgrade(
    empty_database_url: str, tmp_path: Path, project: str
) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(alembic_project(tmp_path, ALEMBIC_PROJECTS[project])))
    url = empty_database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")

    async def use_the_schema() -> None:
        async with connected(empty_database_url) as connection:
            assert await check_schema(connection) == ONE_FIVE
            await connection.execute(
                "CREATE TABLE notes (owner text NOT NULL);"
                " SELECT fastapi_pg_sse.create_trigger('notes', 'notes', 'owner', 'note')"
            )
            await connection.execute("INSERT INTO notes VALUES ('ola')")
            assert await connection.fetchval("SELECT count(*) FROM fastapi_pg_sse.events") == 1

    anyio.run(use_the_schema)
    command.downgrade(config, "base")

    async def what_is_left() -> asyncpg.Record | None:
        async with connected(empty_database_url) as connection:
            await connection.execute("INSERT INTO notes VALUES ('after')")
            return await connection.fetchrow(
                "SELECT to_regnamespace('fastapi_pg_sse'),"
                " (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'notes'::regclass),"
                " (SELECT count(*) FROM notes)"
            )

    left = anyio.run(what_is_left)
    assert left is not None
    assert tuple(left) == (None, 0, 2), "no schema, no trigger, the table's rows"
