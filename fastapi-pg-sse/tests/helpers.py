"""What the runtime's tests share: emitting and learning the ids events committed with, waiting
for conditions, databases of a test's own, a kernel run in the test process, and a raw-socket SSE
reader cheap enough to run a hundred at once."""

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import asyncpg
import httpx
from httpx_sse import ServerSentEvent, aconnect_sse
from pydantic import SecretStr

from fastapi_pg_sse import Channel, Realtime, RealtimeSettings
from fastapi_pg_sse.hub import Subscriber
from fastapi_pg_sse.schema import apply_migrations
from fastapi_pg_sse.testing import (
    TEST_JWT_SECRET,
    Server,
    committed_event_ids,
    connected,
    next_event,
    serve,
    sign_token,
)
from tests.app import FEED, OWN_AUTH_STREAM, STREAM, USER_HEADER


def new_channel(prefix: str = "test") -> Channel[Any]:
    """A channel no other test emits on: a channel is only a name, its events need no table of
    their own. For tests in the test process; the served app streams only its own channels."""
    return Channel(f"{prefix}_{uuid.uuid4().hex[:12]}")


def new_users(*names: str) -> list[str]:
    """Users of the test's own: the session's database is shared by every test."""
    suffix = uuid.uuid4().hex[:8]
    return [f"{name}-{suffix}" for name in names]


@asynccontextmanager
async def in_a_schema_of_its_own(
    database_url: str, *also_searched: str
) -> AsyncIterator[asyncpg.Connection]:
    """A connection whose tables go to a new schema (searched before `also_searched`), dropped
    with them when the block ends."""
    schema = f"test_{uuid.uuid4().hex[:8]}"
    search_path = ", ".join([schema, *also_searched])
    async with connected(database_url) as connection:
        await connection.execute(f"CREATE SCHEMA {schema}; SET search_path = {search_path}")
        try:
            yield connection
        finally:
            await connection.execute(f"DROP SCHEMA {schema} CASCADE")


@asynccontextmanager
async def committing(connection: asyncpg.Connection) -> AsyncIterator[list[int]]:
    """A transaction on `connection`. The list it gives is empty until the transaction commits;
    then it holds the ids its events committed with, in the order they were emitted (an event
    gets its id as its transaction commits: emitting returns none)."""
    ids: list[int] = []
    async with connection.transaction():
        xact_id = await connection.fetchval("SELECT pg_current_xact_id()")
        yield ids
    ids.extend(await committed_event_ids(connection, xact_id))


async def emit(
    connection: asyncpg.Connection,
    channel: Channel[Any],
    user_id: str,
    event_type: str = "test_event",
    payload: Mapping[str, object] | None = None,
) -> int:
    """Emit one event on `connection`, in a transaction of its own; return its committed id."""
    async with committing(connection) as ids:
        await channel.emit(
            connection, target_user_id=user_id, event_type=event_type, payload=payload
        )
    [event_id] = ids
    return event_id


async def newest_id(connection: asyncpg.Connection) -> int:
    """The newest id given out, on any channel: the greatest id committed or declared gone
    (pruned, or given out by an earlier version), the id a `reset` carries."""
    newest: int = await connection.fetchval(
        "SELECT greatest((SELECT max(id) FROM fastapi_pg_sse.events),"
        " (SELECT max(through_id) FROM fastapi_pg_sse.pruned), 0)"
    )
    return newest


@asynccontextmanager
async def new_database(
    postgres_url: str, *, schema: bool = True, options: str = ""
) -> AsyncIterator[str]:
    """A database of the test's own on `postgres_url`, with the runtime's schema (unless
    `schema` is false: an empty one), created with `CREATE DATABASE`'s `options`, as a URL;
    dropped when the block ends. For a test that breaks or inspects what the session's database
    must keep."""
    name = f"realtime_test_{uuid.uuid4().hex[:12]}"
    async with connected(postgres_url) as admin:
        await admin.execute(f'CREATE DATABASE "{name}" {options}')
    try:
        url = urlsplit(postgres_url)._replace(path=f"/{name}").geturl()
        if schema:
            async with connected(url) as connection:
                await apply_migrations(connection)
        yield url
    finally:
        async with connected(postgres_url) as admin:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


async def wait_until(
    condition: Callable[[], Awaitable[bool]], what: str, *, timeout: float = 30
) -> None:
    """Poll `condition` until it holds; fail, saying `what` was awaited, after `timeout` s."""
    deadline = anyio.current_time() + timeout
    while not await condition():
        if anyio.current_time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        await anyio.sleep(0.02)


async def ids_of(events: AsyncIterator[ServerSentEvent], count: int) -> list[str]:
    """The ids of the next `count` events of a stream."""
    return [(await next_event(events)).id for _ in range(count)]


def token_client(server: Server, carrier: str, token: str) -> httpx.AsyncClient:
    """A client of `server` that sends `token` in `carrier` (`header`, `cookie` or `query`) with
    every request."""
    return httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {token}"} if carrier == "header" else {},
        cookies={"access_token": token} if carrier == "cookie" else {},
        params={"access_token": token} if carrier == "query" else {},
        timeout=30,
    )


async def server_metrics(server: Server) -> dict[str, int]:
    """The served app's `GET /metrics`: the kernel's counters (and `listener_connected`)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.get("/metrics")
    response.raise_for_status()
    metrics: dict[str, int] = response.json()
    return metrics


@asynccontextmanager
async def open_own_auth_stream(
    server: Server, user_id: str, *, last_event_id: str | None = None
) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
    """`user_id`'s FEED stream on the route of the app's own auth: no token, an `X-User` header.

    Once this has returned, the server has subscribed the stream (see `open_stream`).
    """
    headers = {USER_HEADER: user_id}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with (
        httpx.AsyncClient(timeout=30) as client,
        aconnect_sse(client, "GET", server.url + OWN_AUTH_STREAM, headers=headers) as source,
    ):
        source.response.raise_for_status()
        yield source.aiter_sse()


@asynccontextmanager
async def serving(
    app: str, project_root: Path, environment: dict[str, str], *, port: int | None = None
) -> AsyncIterator[Server]:
    """`serve` (on `port`, if given), started and stopped in a worker thread, so that the test's
    event loop (and what runs on it, such as a proxy the server connects through, or a client
    reading the server) goes on meanwhile."""
    with ExitStack() as stack:
        server = await anyio.to_thread.run_sync(
            stack.enter_context, serve(app, project_root, environment, port=port)
        )
        try:
            yield server
        finally:
            await anyio.to_thread.run_sync(stack.close)


def failed_start_up(app: str, project_root: Path, environment: dict[str, str]) -> str:
    """Run `app` (`module:variable`) under uvicorn, expecting its start-up to fail: return what
    uvicorn wrote. The developer's `REALTIME_*` variables stay out, as with `serve`."""
    inherited = {
        name: value for name, value in os.environ.items() if not name.startswith("REALTIME_")
    }
    finished = subprocess.run(
        [sys.executable, "-m", "uvicorn", app, "--port=0"],
        cwd=project_root,
        env={**inherited, **environment},
        capture_output=True,
        text=True,
        timeout=60,  # raises if the app started after all
        check=False,
    )
    assert finished.returncode != 0, "uvicorn exited successfully"
    return finished.stdout + finished.stderr


async def terminate_listener(connection: asyncpg.Connection, pid: int) -> None:
    """Kill the LISTEN backend of process `pid`, as a network failure or failover would.

    Waits first for the listener to be connected, since it may still be reconnecting.
    """

    async def terminated() -> bool:
        count: int = await connection.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE split_part(application_name, ' ', 1) = $1",
            f"realtime-listener:{pid}",
        )
        return count > 0

    await wait_until(terminated, f"the listener of process {pid} was terminated")


async def blocking_pids(connection: asyncpg.Connection, backend_pid: int) -> list[int]:
    """The backends that hold a lock the backend `backend_pid` waits for (none if it waits for
    no lock)."""
    pids: list[int] = await connection.fetchval("SELECT pg_blocking_pids($1)", backend_pid)
    return pids


async def wait_until_blocked(connection: asyncpg.Connection, backend_pid: int) -> None:
    """Wait until the backend `backend_pid` waits for a lock another backend holds."""

    async def blocked() -> bool:
        return bool(await blocking_pids(connection, backend_pid))

    await wait_until(blocked, f"backend {backend_pid} waits for a lock")


@asynccontextmanager
async def closed_to_new_connections(postgres_url: str, database_url: str) -> AsyncIterator[None]:
    """Refuse new connections to the database of `database_url` while the block runs; the
    connections already open are not affected."""
    database = urlsplit(database_url).path.lstrip("/")
    async with connected(postgres_url) as admin:
        await admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
        try:
            yield
        finally:
            await admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')


def kernel_settings(database_url: str, **overrides: Any) -> RealtimeSettings:
    """Settings of a kernel on `database_url` that verifies the test tokens."""
    values: dict[str, Any] = {
        "database_url": SecretStr(database_url),
        "jwt_secret": SecretStr(TEST_JWT_SECRET),
        **overrides,
    }
    return RealtimeSettings(**values)


@asynccontextmanager
async def running_kernel(
    database_url: str, channels: Sequence[Channel[Any]] = (FEED,), **overrides: Any
) -> AsyncIterator[Realtime]:
    """A kernel of `channels` run in the test process, started and stopped as the app's
    lifespan would."""
    realtime = Realtime(kernel_settings(database_url, **overrides), channels)
    await realtime.start()
    try:
        yield realtime
    finally:
        await realtime.stop()


def subscribe(
    realtime: Realtime,
    user_id: str,
    max_queued_bytes: int = 1_000_000,
    *,
    channel: Channel[Any] = FEED,
    groups: frozenset[str] = frozenset(),
) -> Subscriber:
    """A subscriber of `user_id`'s events (and `groups`' and everyone's) on `channel`, as an
    open stream holds, joined before the user's first event (the tests' users are new)."""
    subscriber = Subscriber((channel.name,), user_id, max_queued_bytes, groups=groups)
    realtime.hub.add(subscriber)
    return subscriber


async def read_frames(subscriber: Subscriber, count: int, *, timeout: float = 30) -> bytes:
    """The subscriber's queued frames until `count` of them arrived."""
    received = b""
    with anyio.fail_after(timeout):
        while received.count(b"\n\n") < count:
            chunk = await subscriber.next_chunk()
            assert chunk is not None, "the subscriber was closed"
            received += chunk
    return received


def frame_ids(frames: bytes) -> list[int]:
    """The ids of the event frames in `frames`, in order (not the id of a stream's opening
    frame, which carries no event)."""
    return [
        int(match.group(1))
        for frame in frames.split(b"\n\n")
        if re.search(rb"^event: ", frame, re.MULTILINE)
        and (match := re.search(rb"^id: (\d+)$", frame, re.MULTILINE))
    ]


class RawStream:
    """A stream read from a raw socket, counting the frames of one event type.

    Cheap enough to run a hundred in the test process, and able to stop reading altogether.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, event_type: str
    ) -> None:
        self.reader, self.writer = reader, writer
        self.marker = f"event: {event_type}\n".encode()
        self.frames = 0
        self.last_id = 0

    @classmethod
    async def open(cls, server: Server, user_id: str, event_type: str = "load") -> "RawStream":
        """Open `user_id`'s stream, with the token in the `Authorization` header, and read the
        head."""
        host, port = urlsplit(server.url).netloc.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        authorization = f"Authorization: Bearer {sign_token(user_id, expires_in=3600)}"
        writer.write(f"GET {STREAM} HTTP/1.1\r\nHost: {host}\r\n{authorization}\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        return cls(reader, writer, event_type)

    async def read(self, until_frames: int | None = None) -> None:
        """Count frames until `until_frames` arrived, or until the server ends the stream."""
        tail = b""
        while until_frames is None or self.frames < until_frames:
            try:
                data = await self.reader.read(65536)
            except ConnectionResetError:
                return
            if not data:
                return
            window = tail + data
            self.frames += window.count(self.marker)
            if ids := re.findall(rb"id: (\d+)\n", window):
                self.last_id = int(ids[-1])
            tail = window[-(len(self.marker) - 1) :]

    async def read_to_end(self) -> bytes:
        """Everything the server still sends, until it ends the stream."""
        received = b""
        try:
            while data := await self.reader.read(65536):
                received += data
        except ConnectionResetError:
            pass
        return received

    @property
    def port(self) -> int:
        """The client's port."""
        port: int = self.writer.get_extra_info("sockname")[1]
        return port

    def close(self) -> None:
        self.writer.close()


def server_side_is_open(server: Server, stream: RawStream) -> bool:
    """Whether the server still holds its end of the stream's TCP connection (in any state but
    closing after its close: an abort leaves none), read from the kernel's socket table."""
    server_port = int(urlsplit(server.url).port or 0)
    wanted = f"0100007F:{server_port:04X} 0100007F:{stream.port:04X}"
    table = Path("/proc/net/tcp").read_text().splitlines()[1:]
    states = [line.split()[3] for line in table if " ".join(line.split()[1:3]) == wanted]
    closing = {"04", "05", "06", "07", "09", "0B"}  # FIN_WAIT*, TIME_WAIT, CLOSE, LAST_ACK, CLOSING
    return any(state not in closing for state in states)


VALIDATE_OPENAPI = Path(__file__).resolve().parents[2] / "scripts" / "validate_openapi.py"
"""The repository's script that validates OpenAPI documents with `openapi-spec-validator` and
`@redocly/cli lint`."""


def openapi_errors(document: Path, *, command: tuple[str, ...] = ()) -> str:
    """The errors `openapi-spec-validator` and `@redocly/cli lint` (its minimal ruleset) find in
    the document at `document`, one a line: empty when it is valid; `command` runs the script
    (`unshare ...`). Without either tool (`scripts/_environment.sh` installs them), the test
    fails, saying so."""
    finished = subprocess.run(
        [*command, sys.executable, str(VALIDATE_OPENAPI), str(document)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert finished.returncode in (0, 1), finished.stderr
    return finished.stdout
