"""What an operator looks at first: a channel's events as they commit (`tail`), and what the
database holds and serves (`stats`), read as the runtime reads them.

`follow` reads a channel as the listener does: a notification on `fastapi_pg_sse` is only a hint
that something committed, and what it yields is read from the events table, in id order, after
the last id it yielded. Ids are given in commit order (see `fastapi_pg_sse.schema`), so an event
whose transaction commits late is never skipped. It reads the table every `poll_seconds` even
without a hint, which also tells a silent network. `tail` connects again when its connection
is lost, and reads on after the last id it printed.

`read_stats` counts each channel's events, reads the events table's size, and reads each
process's open streams from the name of its LISTEN connection in `pg_stat_activity` (see
`fastapi_pg_sse.listener.listener_name`): no schema of its own, and no work on the path of a
stream or an event.
"""

import asyncio
import contextlib
import json
import signal
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import asyncpg

from fastapi_pg_sse.channel import DATABASE_ERRORS, Connection
from fastapi_pg_sse.listener import _announcement, parse_listener_name
from fastapi_pg_sse.schema import SCHEMA, check_schema

TAIL_APPLICATION_NAME = "fastapi_pg_sse tail"
"""The `application_name` of `tail`'s connection, in `pg_stat_activity`."""
POLL_SECONDS = 10.0
"""How long `follow` waits for a notification before it reads the table anyway."""
PAGE_SIZE = 500
"""The most events `follow` reads in one query."""
RECONNECT_MAX_SECONDS = 5.0
"""The longest `tail` waits before it tries again to connect."""


@dataclass(frozen=True)
class CommittedEvent:
    """An event of the events table, as `tail` shows it."""

    id: int
    channel: str
    type: str
    target_user_id: str
    payload: str
    """JSON text."""
    committed_at: datetime
    target_group: str = ""
    """Its group, for an event of a group (its `target_user_id` is then empty; both are for
    everyone on the channel)."""

    @property
    def audience(self) -> str:
        """Whom it is for, in a word: the user id, `group:<group>`, or `everyone`."""
        if self.target_user_id:
            return self.target_user_id
        return f"group:{self.target_group}" if self.target_group else "everyone"

    def line(self) -> str:
        """One line for a person: id, commit time (UTC), type, audience, payload."""
        return f"{self.id} {_utc(self.committed_at)} {self.type} {self.audience} {self.payload}"

    def json_line(self) -> str:
        """One JSON object on a line, for a program."""
        return json.dumps(
            {
                "id": self.id,
                "channel": self.channel,
                "type": self.type,
                "target_user_id": self.target_user_id,
                "target_group": self.target_group,
                "payload": json.loads(self.payload),
                "committed_at": self.committed_at.isoformat(),
            },
            ensure_ascii=False,
        )


async def newest_id(connection: Connection) -> int:
    """The newest id given out, on any channel (0 if none): what `tail` reads after by default,
    as a stream without `Last-Event-ID` does."""
    newest: int = await connection.fetchval(
        "SELECT greatest((SELECT max(id) FROM fastapi_pg_sse.events),"
        " (SELECT max(through_id) FROM fastapi_pg_sse.pruned), 0)"
    )
    return newest


async def is_known_channel(connection: Connection, channel: str) -> bool:
    """Whether the database knows `channel`: it has events, was pruned, or a trigger emits it
    (if the role may read `fastapi_pg_sse.triggers`: the app's role needs not)."""
    known: bool = await connection.fetchval(
        "SELECT EXISTS (SELECT FROM fastapi_pg_sse.events WHERE channel = $1)"
        " OR EXISTS (SELECT FROM fastapi_pg_sse.pruned WHERE channel = $1)",
        channel,
    )
    if known or not await connection.fetchval(
        "SELECT has_table_privilege('fastapi_pg_sse.triggers', 'SELECT')"
    ):
        return known
    emitted: bool = await connection.fetchval(
        "SELECT EXISTS (SELECT FROM fastapi_pg_sse.triggers WHERE channel = $1)", channel
    )
    return emitted


async def stored_channels(connection: Connection) -> list[str]:
    """The channels that have events, in name order."""
    names: list[str] = await connection.fetchval(
        "SELECT coalesce(array_agg(channel ORDER BY channel), '{}')"
        " FROM (SELECT DISTINCT channel FROM fastapi_pg_sse.events) AS stored"
    )
    return names


async def read_events(
    connection: Connection,
    channel: str,
    *,
    after: int,
    user: str | None = None,
    limit: int = PAGE_SIZE,
    timeout: float | None = None,
) -> list[CommittedEvent]:
    """The channel's committed events after id `after` (of `user` only, if given), in id order,
    at most `limit`."""
    rows = await connection.fetch(
        "SELECT id, channel, type, target_user_id, payload::text, created_at, target_group"
        " FROM fastapi_pg_sse.events"
        " WHERE channel = $1 AND ($2::text IS NULL OR target_user_id = $2) AND id > $3"
        " ORDER BY id LIMIT $4",
        channel,
        user,
        after,
        limit,
        timeout=timeout,
    )
    return [CommittedEvent(*row) for row in rows]


async def follow(
    connection: asyncpg.Connection,
    channel: str,
    *,
    after: int,
    user: str | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> AsyncIterator[CommittedEvent]:
    """Each event of the channel (of `user` only, if given) committed after id `after`, in id
    order, as it commits, for ever, on a connection of the caller's own (a pooled one would lose
    its LISTEN when released). A lost connection raises one of `DATABASE_ERRORS`: read on after
    the last id yielded."""
    hint = asyncio.Event()

    def on_notification(_: object, __: int, ___: str, payload: object) -> None:
        announced = _announcement(str(payload))
        if announced is not None and announced[1] == channel and user in (None, announced[2]):
            hint.set()

    connection.add_termination_listener(lambda _: hint.set())  # the next read raises
    await connection.add_listener(SCHEMA, on_notification)
    while True:
        hint.clear()  # a notification while reading sets it again: read once more
        while True:
            page = await read_events(
                connection, channel, after=after, user=user, timeout=poll_seconds
            )
            for event in page:
                after = event.id
                yield event
            if len(page) < PAGE_SIZE:
                break
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll_seconds):
                await hint.wait()


@dataclass(frozen=True)
class ChannelStats:
    """What the events table holds of one channel."""

    channel: str
    events: int
    oldest_id: int
    oldest_committed_at: datetime
    newest_id: int
    newest_committed_at: datetime


@dataclass(frozen=True)
class ProcessStats:
    """A process of the runtime connected to the database, as its LISTEN connection is named."""

    host: str
    """Its host name, perhaps cut short (see `listener_name`); empty from a runtime before 0.8."""
    pid: int
    open_streams: int | None
    """Its open streams, over all its channels, as of at most `STREAMS_REPORT_SECONDS` ago;
    None from a runtime before 0.8, which did not say."""
    listening_since: datetime | None
    """When its LISTEN connection opened: it reopens when the listener reconnects. None when
    PostgreSQL hides it from the role reading the stats: one neither a member of the process's
    role nor of `pg_read_all_stats`."""


@dataclass(frozen=True)
class Stats:
    channels: list[ChannelStats]
    events_table_bytes: int
    """The events table's size on disk, with its indexes and TOAST."""
    events_table_size: str
    """The same, as PostgreSQL writes it for a person (`48 kB`)."""
    processes: list[ProcessStats]

    def as_json(self) -> dict[str, Any]:
        return {
            "channels": [
                {
                    "channel": c.channel,
                    "events": c.events,
                    "oldest_id": c.oldest_id,
                    "oldest_committed_at": c.oldest_committed_at.isoformat(),
                    "newest_id": c.newest_id,
                    "newest_committed_at": c.newest_committed_at.isoformat(),
                }
                for c in self.channels
            ],
            "events_table_bytes": self.events_table_bytes,
            "processes": [
                {
                    "host": p.host,
                    "pid": p.pid,
                    "open_streams": p.open_streams,
                    "listening_since": None
                    if p.listening_since is None
                    else p.listening_since.isoformat(),
                }
                for p in self.processes
            ],
        }

    def lines(self) -> list[str]:
        """The report for a person: a table of channels, the table's size, a table of
        processes."""
        channels = [
            (
                c.channel,
                str(c.events),
                f"{c.oldest_id} at {_utc(c.oldest_committed_at)}",
                f"{c.newest_id} at {_utc(c.newest_committed_at)}",
            )
            for c in self.channels
        ]
        lines = _table(("channel", "events", "oldest", "newest"), channels, right=(1,))
        if not channels:
            lines = ["No events are stored."]
        lines += [
            "",
            f"fastapi_pg_sse.events: {self.events_table_size} on disk, with its indexes",
            "",
        ]
        processes = [
            (
                f"{p.host or '?'}:{p.pid}",
                "?" if p.open_streams is None else str(p.open_streams),
                "?" if p.listening_since is None else _utc(p.listening_since),
            )
            for p in self.processes
        ]
        if processes:
            lines += _table(("process", "open streams", "listening since"), processes, right=(1,))
        else:
            lines.append("No process of the runtime is listening on this database.")
        return lines


async def read_stats(connection: Connection) -> Stats:
    """The database's channels, its events table's size and the runtime's processes, read in
    one snapshot."""
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        channels = await connection.fetch(
            "SELECT counted.channel, counted.events, oldest.id, oldest.created_at,"
            " newest.id, newest.created_at"
            " FROM (SELECT channel, count(*) AS events, min(id) AS oldest_id, max(id) AS newest_id"
            "  FROM fastapi_pg_sse.events GROUP BY channel) AS counted"
            " JOIN fastapi_pg_sse.events AS oldest ON oldest.id = counted.oldest_id"
            " JOIN fastapi_pg_sse.events AS newest ON newest.id = counted.newest_id"
            " ORDER BY counted.channel"
        )
        size = await connection.fetchrow(
            "SELECT pg_total_relation_size('fastapi_pg_sse.events'),"
            " pg_size_pretty(pg_total_relation_size('fastapi_pg_sse.events'))"
        )
        listeners = await connection.fetch(
            "SELECT application_name, backend_start FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name LIKE 'realtime-listener:%'"
        )
    assert size is not None, "a SELECT without FROM returns one row"
    processes = []
    for application_name, backend_start in listeners:
        named = parse_listener_name(application_name)
        if named is not None:
            pid, streams, host = named
            processes.append(ProcessStats(host, pid, streams, backend_start))
    processes.sort(key=lambda p: (p.host, p.pid))
    return Stats([ChannelStats(*row) for row in channels], size[0], size[1], processes)


async def tail(
    database_url: str,
    channel: str,
    *,
    user: str | None,
    after: int | None,
    count: int | None,
    as_json: bool,
    out: TextIO,
    err: TextIO,
) -> int:
    """`python -m fastapi_pg_sse tail`: write the channel's events to `out` as they commit, one
    a line, after id `after` (else after the newest id given out), until `count` were written,
    or SIGINT or SIGTERM; return the exit status, 0. A connection lost meanwhile is opened
    again, and reading goes on after the last id written (`err` says so). Raise what
    `connect_checked` raises when the first connection fails."""
    with _stopped_by_signals():
        try:
            connection = await connect_checked(database_url, application_name=TAIL_APPLICATION_NAME)
            try:
                after = await _start(connection, channel, user, after, err)
            except BaseException:
                await _close(connection)
                raise
            writer = _Writer(out, count, as_json)
            return await _follow(connection, database_url, channel, user, after, writer, err)
        except asyncio.CancelledError:
            return 0  # SIGINT or SIGTERM


async def _start(
    connection: asyncpg.Connection, channel: str, user: str | None, after: int | None, err: TextIO
) -> int:
    """Where `tail` starts, `after` or the newest id, said on `err` with a note if the database
    does not know the channel (a typo, or a channel before its first event)."""
    after = await newest_id(connection) if after is None else after
    if not await is_known_channel(connection, channel):
        stored = ", ".join(await stored_channels(connection)) or "none"
        _say(
            err,
            f"note: no event of {channel} is stored (channels with events: {stored});"
            " waiting for its first.",
        )
    whose = "" if user is None else f" of {user}"
    _say(err, f"Tailing {channel}{whose} after event {after}; Ctrl-C stops.")
    return after


@dataclass
class _Writer:
    """Writes `tail`'s events to `out`, and says when `count` were written."""

    out: TextIO
    count: int | None
    as_json: bool
    written: int = 0

    def write(self, event: CommittedEvent) -> bool:
        """Write `event`; return whether it was the last to write."""
        self.out.write((event.json_line() if self.as_json else event.line()) + "\n")
        self.out.flush()
        self.written += 1
        return self.written == self.count


async def _follow(
    connection: asyncpg.Connection | None,
    database_url: str,
    channel: str,
    user: str | None,
    after: int,
    writer: _Writer,
    err: TextIO,
) -> int:
    """Write what `follow` yields until the writer has written its count; connect again, after
    a growing delay, whenever the connection is lost. Close the connection at the end."""
    failures = 0
    try:
        while True:
            try:
                if connection is None:
                    connection = await connect_checked(
                        database_url, application_name=TAIL_APPLICATION_NAME
                    )
                    failures = 0
                    _say(err, f"tail reconnected; reading on after event {after}")
                async for event in follow(connection, channel, after=after, user=user):
                    after = event.id
                    if writer.write(event):
                        return 0
            except BrokenPipeError:
                raise  # an OSError, but of `out`: the caller's to handle
            except DATABASE_ERRORS as error:
                failures += 1
                delay = min(RECONNECT_MAX_SECONDS, 0.25 * 2**failures)
                _say(
                    err,
                    f"tail lost the database after event {after} ({error!r}); connecting again"
                    f" in {delay:.1f} s",
                )
                if connection is not None:
                    await _close(connection)
                    connection = None
                await asyncio.sleep(delay)
    finally:
        if connection is not None:
            await _close(connection)


def _say(err: TextIO, line: str) -> None:
    err.write(line + "\n")
    err.flush()


async def _close(connection: asyncpg.Connection) -> None:
    """Close politely, unless the network is silent or the connection already lost."""
    with contextlib.suppress(*DATABASE_ERRORS):
        await connection.close(timeout=2)


async def stats(database_url: str, *, as_json: bool, out: TextIO) -> int:
    """`python -m fastapi_pg_sse stats`: write `read_stats`, for a person or as JSON. Return
    the exit status, 0. Raise what `connect_checked` raises."""
    connection = await connect_checked(database_url)
    try:
        found = await read_stats(connection)
    finally:
        await connection.close()
    out.write(
        json.dumps(found.as_json(), indent=2) + "\n" if as_json else "\n".join(found.lines()) + "\n"
    )
    return 0


async def connect_checked(
    database_url: str, *, application_name: str | None = None
) -> asyncpg.Connection:
    """A connection to a database whose schema this runtime works with; `SchemaMismatch` (a
    message saying what to do) if it has none it works with, one of `DATABASE_ERRORS` if it
    cannot be reached."""
    settings = {} if application_name is None else {"application_name": application_name}
    connection: asyncpg.Connection = await asyncpg.connect(database_url, server_settings=settings)
    try:
        await check_schema(connection)
    except BaseException:
        await connection.close()
        raise
    return connection


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """Cancel the current task on SIGINT or SIGTERM while the block runs (in the main thread;
    elsewhere signals are not delivered)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None, "called from a task"
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _utc(moment: datetime) -> str:
    """`2026-12-07T15:04:05.123Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _table(
    header: tuple[str, ...], rows: Sequence[tuple[str, ...]], *, right: tuple[int, ...] = ()
) -> list[str]:
    """Rows in columns as wide as their widest cell, those of `right` aligned right."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(header), *map(line, rows)]
