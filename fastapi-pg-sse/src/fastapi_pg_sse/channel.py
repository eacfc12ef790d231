"""A channel: emitting on it, and reading its events, in the runtime's schema.

A channel is a name, such as `inventory_stock`, that its events carry in the table
`fastapi_pg_sse.events` (see `fastapi_pg_sse.schema`). Emitting records an event in the caller's
transaction with the SQL function `fastapi_pg_sse.emit`; the events of one user and channel are
read back in id order, which is commit order.
"""

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import UnionType
from typing import Any, ClassVar, Generic, Literal, cast, overload

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from fastapi.encoders import jsonable_encoder
from typing_extensions import TypeVar

from fastapi_pg_sse.events import ChannelEvent, declared_events
from fastapi_pg_sse.tracing import current_traceparent

Connection = asyncpg.Connection | PoolConnectionProxy
"""A connection of your own or one acquired from a pool."""

CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # what a connection terminated mid-protocol may raise
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,  # shutting down, starting up, or a query cancelled
    asyncpg.InsufficientResourcesError,  # too many connections, out of memory or disk
)
"""What a lost, silent, unreachable or overloaded database raises: worth retrying later, unlike
a refusal of a value (`asyncpg.DataError`), which would be refused again."""
DATABASE_ERRORS = (*CONNECTION_ERRORS, asyncpg.PostgresError)
"""Anything the database or the connection to it raises."""

MAX_USER_ID_BYTES = 1024
"""The longest user id, in UTF-8 bytes: what `fastapi_pg_sse.emit` accepts. Its notification,
`<id> <channel> <user>`, then fits well under `pg_notify`'s 8000 bytes (19 + 1 + 53 + 1 + 1024)."""

NAME = re.compile(r"[a-z][a-z0-9_]{0,52}")
"""A channel's name: a lowercase SQL identifier, short enough for the names of the triggers
`fastapi_pg_sse.create_trigger` makes for it (`<name>_on_insert`) to fit in 63 bytes."""

E = TypeVar("E", bound=ChannelEvent, default=ChannelEvent)
"""The events a channel declares: any `ChannelEvent`, unless it is annotated with its own."""


def user_id_problem(user_id: str) -> str | None:
    """Why `user_id` cannot be a stream's user, or None if it can: events can be emitted to it
    (see `emit`) and stored in a UTF-8 database, so what is streamed can be delivered."""
    if not user_id:
        return "is empty"
    if "\x00" in user_id:
        return "holds a NUL character, which PostgreSQL cannot store"
    if "\r" in user_id or "\n" in user_id:
        return "holds a line break"
    try:
        size = len(user_id.encode())
    except UnicodeEncodeError:
        return "holds a lone surrogate, which is not Unicode text"
    if size > MAX_USER_ID_BYTES:
        return f"is {size} bytes long, more than the {MAX_USER_ID_BYTES} allowed"
    return None


@dataclass(frozen=True)
class Channel(Generic[E]):
    """A channel's name, and the events it declares (`events=StockUpdated | StockRemoved`), if
    any: their models document its stream and type its emits.

    mypy checks what is emitted on a channel of one event class; annotate one of a union with
    it: `STOCK: Channel[StockEvent] = Channel("inventory_stock", events=StockEvent)`.
    """

    name: str
    events: type[E] | UnionType | None = None
    event_classes: Mapping[str, type[ChannelEvent]] = field(init=False, repr=False, compare=False)
    """The declared event classes, by event type."""

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise ValueError(
                f"channel name {self.name!r} must be a lowercase SQL identifier of at most 53"
                " characters, such as inventory_stock"
            )
        object.__setattr__(self, "event_classes", declared_events(self.events))

    @overload
    async def emit(self, connection: Connection, event: E, *, target_user_id: str) -> None: ...

    @overload
    async def emit(self, connection: Connection, event: E, *, target_group: str) -> None: ...

    @overload
    async def emit(self, connection: Connection, event: E, *, everyone: Literal[True]) -> None: ...

    @overload
    async def emit(
        self,
        connection: Connection,
        *,
        target_user_id: str,
        event_type: str,
        payload: Mapping[str, Any] | None = None,
    ) -> None: ...

    @overload
    async def emit(
        self,
        connection: Connection,
        *,
        target_group: str,
        event_type: str,
        payload: Mapping[str, Any] | None = None,
    ) -> None: ...

    @overload
    async def emit(
        self,
        connection: Connection,
        *,
        everyone: Literal[True],
        event_type: str,
        payload: Mapping[str, Any] | None = None,
    ) -> None: ...

    async def emit(
        self,
        connection: Connection,
        event: E | None = None,
        *,
        target_user_id: str | None = None,
        target_group: str | None = None,
        everyone: bool = False,
        event_type: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> None:
        """Record an event in the caller's transaction, to one audience: a user
        (`target_user_id=`), the members of a group (`target_group=`), or every stream of the
        channel (`everyone=True`). Naming none, or more than one, is a `TypeError` before any SQL.

        Subscribers receive it when that transaction commits, and never if it rolls back; its id
        is given as it commits, after every event committed before it.

        Typed, `emit(connection, StockUpdated(...), target_user_id=...)`: the payload is the
        model's JSON, its fields named by their aliases as FastAPI names them in responses, and
        a class the channel does not declare is refused (`TypeError`) before any SQL. Raw,
        `emit(connection, target_user_id=..., event_type=..., payload=...)`: as untyped as SQL;
        the payload is encoded as FastAPI encodes a response (datetimes, decimals, models).

        PostgreSQL refuses (`asyncpg.InvalidParameterValueError`) an empty, multi-line or longer
        than 1024 bytes user id or group, and an event type that is not a word such as
        `stock_updated`.

        While an OpenTelemetry span is recording, its traceparent is stored with the event, for
        the delivery's span to link to (see `tracing`).
        """
        audience, target = self._audience("emit", target_user_id, target_group, everyone)
        if audience is None:
            raise TypeError(f"emit() takes one audience: {self._AUDIENCES}, got none")
        if event is None:
            if event_type is None:
                raise TypeError("emit() takes an event, or an event_type and a payload")
            data = json.dumps(jsonable_encoder(payload if payload is not None else {}))
        else:
            if event_type is not None or payload is not None:
                raise TypeError("emit() takes an event, or an event_type and a payload, not both")
            event_type, data = self._typed(event)
        function = self._FUNCTIONS[audience][0]
        await self._call(connection, function, [*target, event_type], data)

    @overload
    async def emit_many(
        self, connection: Connection, events: Iterable[E], *, target_user_id: str
    ) -> None: ...

    @overload
    async def emit_many(
        self, connection: Connection, events: Iterable[E], *, target_group: str
    ) -> None: ...

    @overload
    async def emit_many(
        self, connection: Connection, events: Iterable[E], *, everyone: Literal[True]
    ) -> None: ...

    @overload
    async def emit_many(self, connection: Connection, events: Iterable[tuple[str, E]]) -> None: ...

    async def emit_many(
        self,
        connection: Connection,
        events: Iterable[E] | Iterable[tuple[str, E]],
        *,
        target_user_id: str | None = None,
        target_group: str | None = None,
        everyone: bool = False,
    ) -> None:
        """Record many events in one statement of the caller's transaction, in the order given:
        their ids ascend in it.

        `emit_many(connection, [event, ...], target_user_id=...)` sends them all to one user
        (`target_group=...` to a group's members, `everyone=True` to every stream of the channel),
        `emit_many(connection, [(target_user_id, event), ...])` each to its own user; more than
        one audience is a `TypeError` before any SQL. Each promise of `emit` holds for each event
        (typed payloads, a class the channel does not declare refused before any SQL, the same
        errors from PostgreSQL, delivered in order on commit, never on rollback).
        """
        audience, target = self._audience("emit_many", target_user_id, target_group, everyone)
        if audience is None:
            targets, typed = self._pairs(events)
        else:
            typed = [self._typed(event) for event in events]
            targets = [list(target) * len(typed)] if target else []
        if typed:
            function = self._FUNCTIONS[audience or "target_user_id"][1]
            event_types, payloads = (list(column) for column in zip(*typed, strict=True))
            await self._call(connection, function, [*targets, event_types], payloads)

    _FUNCTIONS: ClassVar[Mapping[str, tuple[str, str]]] = {
        "target_user_id": ("emit", "emit_many"),
        "target_group": ("emit_to_group", "emit_to_groups"),
        "everyone": ("broadcast", "broadcast_many"),
    }
    """The SQL functions that emit one event, and many, to each audience."""
    _AUDIENCES: ClassVar[str] = "target_user_id=, target_group= or everyone=True"

    @staticmethod
    def _audience(
        method: str, target_user_id: str | None, target_group: str | None, everyone: bool
    ) -> tuple[str | None, tuple[str, ...]]:
        """The audience named, `target_user_id`, `target_group` or `everyone` (None if none is),
        and its target (none for everyone). More than one is refused before any SQL: an event
        meant for one user must never reach a group, nor everyone."""
        named = {"target_user_id": target_user_id, "target_group": target_group}
        given = [name for name, target in named.items() if target is not None]
        given += ["everyone"] if everyone else []
        if len(given) > 1:
            raise TypeError(
                f"{method}() takes one audience: {Channel._AUDIENCES}, got {' and '.join(given)}"
            )
        if not given:
            return None, ()
        target = named.get(given[0])
        return given[0], () if target is None else (target,)

    async def _call(
        self, connection: Connection, function: str, texts: list[Any], payloads: str | list[str]
    ) -> None:
        """`SELECT fastapi_pg_sse.<function>(channel, *texts, payloads[, traceparent])`, where
        texts and payloads are one event's (text, jsonb) or many's (text[], jsonb[]), and the
        traceparent is the recording span's, if any (as emit's and emit_many's four-argument
        forms, which a role granted before schema 1.3 may call, record none)."""
        many = "[]" if isinstance(payloads, list) else ""
        arguments: list[Any] = [self.name, *texts, payloads]
        casts = ["", *(f"::text{many}" for _ in texts), f"::jsonb{many}"]
        if (traceparent := current_traceparent()) is not None:
            arguments.append(traceparent)
            casts.append("")
        placeholders = ", ".join(f"${n}{suffix}" for n, suffix in enumerate(casts, start=1))
        await connection.execute(f"SELECT fastapi_pg_sse.{function}({placeholders})", *arguments)

    def _pairs(self, events: Iterable[object]) -> tuple[list[list[str]], list[tuple[str, str]]]:
        """The target users, and the event types and payloads, of `emit_many`'s
        `(target_user_id, event)` pairs."""
        users: list[str] = []
        typed: list[tuple[str, str]] = []
        for item in events:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
                raise TypeError(
                    "emit_many() takes (target_user_id, event) pairs, or events and one audience"
                    f" ({self._AUDIENCES}), not {type(item).__name__}"
                )
            users.append(item[0])
            typed.append(self._typed(item[1]))
        return [users], typed

    def _typed(self, event: object) -> tuple[str, str]:
        """The event type and JSON payload of `event`, if its class is one the channel declares."""
        return self._declared_type(event), cast(ChannelEvent, event).model_dump_json(by_alias=True)

    def _declared_type(self, event: object) -> str:
        """The event type of `event`, if its class is one the channel declares."""
        for event_type, event_class in self.event_classes.items():
            if type(event) is event_class:
                return event_type
        declared = ", ".join(c.__name__ for c in self.event_classes.values()) or "no event"
        raise TypeError(
            f"channel {self.name!r} declares {declared}, not {type(event).__name__}:"
            " add it to the channel's events"
        )

    async def prune(self, connection: Connection, *, keep: timedelta = timedelta(days=7)) -> int:
        """Delete the channel's events committed longer than `keep` ago and return how many; run
        it from a scheduled job (or `SELECT fastapi_pg_sse.prune(channel, keep)`).

        A client resuming from a pruned id gets a `reset` event: the schema records the highest
        id pruned from each channel (`fastapi_pg_sse.pruned`).
        """
        deleted: int = await connection.fetchval(
            "SELECT fastapi_pg_sse.prune($1, $2::interval)", self.name, keep
        )
        return deleted


@dataclass(frozen=True, slots=True)
class Event:
    """A committed event of a channel."""

    id: int
    type: str
    target_user_id: str
    data: str
    """The payload as JSON text."""
    committed_seconds_ago: float = 0.0
    """How long before it was read the event committed (its `created_at`, stamped as its
    transaction commits), by PostgreSQL's clock: no clock skew between hosts counts."""
    traceparent: str | None = None
    """The W3C traceparent of the span current where it was emitted, if any (see `tracing`)."""
    channel: str = ""
    target_group: str = ""
    """Its audience with `target_user_id` (see `Audience`)."""

    @property
    def audience(self) -> "Audience":
        return Audience(self.channel, self.target_user_id, self.target_group)


@dataclass(frozen=True, slots=True)
class Audience:
    """Who an event of a channel is for, as the events table stores it: a user
    (`target_user_id`, no group), a group (no user, `target_group`), or everyone on the channel
    (neither)."""

    channel: str
    target_user_id: str = ""
    target_group: str = ""


def audiences(channels: Iterable[str], user_id: str, groups: Iterable[str]) -> list[Audience]:
    """What a stream of `user_id`, a member of `groups`, reads on each of `channels`: the user's
    events, each group's, and the channel's broadcasts."""
    return [
        audience
        for channel in channels
        for audience in (
            Audience(channel, user_id),
            *(Audience(channel, target_group=group) for group in sorted(groups)),
            Audience(channel),
        )
    ]


@dataclass(frozen=True)
class EventPage:
    """Events read from the events table, and whether more may follow them."""

    events: list[Event]
    more: bool


NEWEST = 2**63 - 1
"""The largest `bigint`: an upper bound that bounds nothing."""


_SIZED_PAGE = """
    sized AS (
        SELECT *,
            sum(octet_length(data)) OVER (ORDER BY id) - octet_length(data) AS before,
            count(*) OVER () AS page_size
        FROM page
    )"""
"""The rows of `page` with how many payload bytes come before each, and how many rows it has:
a page keeps the rows whose payload fits in its byte budget (its first row at least)."""

_EVENT_COLUMNS = """event.id, event.type, event.target_user_id, event.payload::text AS data,
    greatest(extract(epoch FROM clock_timestamp() - event.created_at), 0)::float8 AS age,
    event.traceparent, event.channel, event.target_group"""
"""An `Event`'s fields, in its order, of a row `event` of the events table."""


def _events(rows: list[asyncpg.Record]) -> list[Event]:
    """The events of a page's rows (`_EVENT_COLUMNS` first; a row without an id is none)."""
    return [Event(*row[:8]) for row in rows if row["id"] is not None]


def _page(rows: list[asyncpg.Record], limit: int) -> EventPage:
    events = _events(rows)
    # More may follow a full page, and a page cut short by its size.
    page_size = rows[0]["page_size"] or 0 if rows else 0
    return EventPage(events, more=page_size == limit or len(events) < page_size)


async def fetch_audience_events(
    connection: Connection,
    audiences: Sequence[Audience],
    after: int,
    *,
    limit: int,
    max_bytes: int,
    timeout: float | None = None,
) -> EventPage:
    """The committed events of `audiences` after the id `after`, in id order: what a stream
    replays.

    A page holds at most `limit` events and at most `max_bytes` of payload, or its first event
    alone if that is larger; a query that takes longer than `timeout` seconds raises
    `TimeoutError`. Ids are given in commit order, so reading on from the last id read never
    skips an event that committed late. Each audience's ids are read by its own range of the
    audience index (index only), the ranges merged by id, and only the page's rows read: a page
    costs its rows, not a page of rows per audience."""
    rows = await connection.fetch(
        f"""
        WITH page_ids AS (
            SELECT candidate.id
            FROM unnest($1::text[], $2::text[], $3::text[])
                AS audience (channel, target_user_id, target_group)
            CROSS JOIN LATERAL (
                SELECT id FROM fastapi_pg_sse.events AS candidate
                WHERE candidate.channel = audience.channel
                    AND candidate.target_user_id = audience.target_user_id
                    AND candidate.target_group = audience.target_group
                    AND candidate.id > $4
                ORDER BY candidate.id LIMIT $5
            ) AS candidate
            ORDER BY candidate.id LIMIT $5
        ), page AS (
            SELECT {_EVENT_COLUMNS}
            FROM page_ids JOIN fastapi_pg_sse.events AS event ON event.id = page_ids.id
        ), {_SIZED_PAGE}
        SELECT * FROM sized WHERE before = 0 OR before + octet_length(data) <= $6 ORDER BY id
        """,
        [audience.channel for audience in audiences],
        [audience.target_user_id for audience in audiences],
        [audience.target_group for audience in audiences],
        after,
        limit,
        max_bytes,
        timeout=timeout,
    )
    return _page(rows, limit)


_COMMITTED_AFTER = f"""
    SELECT event.*, newest.id AS through_id
    FROM (SELECT greatest(max(id), $1) AS id FROM fastapi_pg_sse.events) AS newest
    LEFT JOIN LATERAL (
        SELECT *, sum(octet_length(data)) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING) AS upto
        FROM (
            SELECT {_EVENT_COLUMNS} FROM fastapi_pg_sse.events AS event
            WHERE event.id > $1 ORDER BY event.id LIMIT $2
        ) AS page
    ) AS event ON event.upto = octet_length(event.data) OR event.upto <= $3
    ORDER BY event.id
    """
"""`fetch_committed_after`'s statement: one row with the newest id alone if there is no event
to read. The page is the first rows of the primary key's range after `$1`, read in its order
and no further: a page costs its rows, however many more follow (bounding the range by the
newest id too made PostgreSQL, which cannot estimate that bound, plan to read and sort the whole
range for each page of a burst). Every row the statement sees has an id up to the newest one, so
no upper bound is needed. `upto` is the payload bytes up to each row, its own included: the page
keeps the rows that fit in `$3`, and its first row (whose `upto` is its own size) in any case."""


async def fetch_committed_after(
    connection: Connection,
    after: int,
    *,
    limit: int,
    max_bytes: int,
    timeout: float | None = None,
) -> tuple[EventPage, int]:
    """Every committed event after the id `after`, of every channel (a page, as
    `fetch_audience_events` says), and the newest event id of the statement's snapshot (at least
    `after`): what the listener reads, in one round trip.

    Ids are given in commit order (see `fastapi_pg_sse.schema`), so every id up to that newest
    one is visible in the same snapshot: once a page that is not full is read, nothing up to
    it remains to read, however late its transaction committed. More follow a page exactly
    when its last id is below the newest: the newest id is a row the statement sees.
    """
    rows = await connection.fetch(_COMMITTED_AFTER, after, limit, max_bytes, timeout=timeout)
    through_id: int = rows[0]["through_id"]
    events = _events(rows)
    return EventPage(events, more=bool(events) and events[-1].id < through_id), through_id


async def fetch_newest_committed(
    connection: Connection, after: int, *, timeout: float | None = None
) -> int:
    """The newest event id of the statement's snapshot (at least `after`): every id up to it is
    visible in that snapshot (see `fetch_committed_after`)."""
    newest: int = await connection.fetchval(
        "SELECT greatest(max(id), $1) FROM fastapi_pg_sse.events", after, timeout=timeout
    )
    return newest


NEWEST_ID = (
    "greatest((SELECT max(id) FROM fastapi_pg_sse.events),"
    " (SELECT max(through_id) FROM fastapi_pg_sse.pruned), 0)"
)
"""The SQL expression of the newest id given out, on any channel (0 if none)."""


async def resume_bounds(
    connection: Connection,
    channels: "Channel[Any] | Iterable[str]",
    target_user_id: str,
    *,
    timeout: float | None = None,
) -> tuple[int, int]:
    """The ids a client of the user on `channels` (a channel, or names) may resume after: from
    the highest id gone before it on any of them (pruned, or given out by an earlier version; 0
    if none) to the newest id given out, on any channel (0 if none)."""
    names = [channels.name] if isinstance(channels, Channel) else list(channels)
    row = await connection.fetchrow(
        "SELECT (SELECT coalesce(max(through_id), 0) FROM fastapi_pg_sse.pruned"
        f"  WHERE channel = ANY($1::text[]) AND target_user_id IN ('', $2)), {NEWEST_ID}",
        names,
        target_user_id,
        timeout=timeout,
    )
    assert row is not None, "a query without FROM returns one row"
    gone_through: int = row[0]
    newest: int = row[1]
    return gone_through, newest


REVOCATIONS = "fastapi_pg_sse.revoked"
"""The channel of the rows `fastapi_pg_sse.disconnect(user_id)` adds to the events table: no
emit can name it, and no stream reads it."""


@dataclass(frozen=True, slots=True)
class Revocation:
    """The newest revocation of a user's streams: its id, in the order of every event, and when
    it committed (a Unix time)."""

    id: int
    committed_at: float


async def latest_revocations(
    connection: Connection, user_ids: Iterable[str], *, timeout: float | None = None
) -> dict[str, Revocation]:
    """The newest revocation of each of `user_ids` that has one."""
    rows = await connection.fetch(
        "SELECT DISTINCT ON (target_user_id) target_user_id, id, extract(epoch FROM created_at)"
        " FROM fastapi_pg_sse.events WHERE channel = $1 AND target_user_id = ANY($2::text[])"
        " ORDER BY target_user_id, id DESC",
        REVOCATIONS,
        list(user_ids),
        timeout=timeout,
    )
    return {row[0]: Revocation(row[1], float(row[2])) for row in rows}
