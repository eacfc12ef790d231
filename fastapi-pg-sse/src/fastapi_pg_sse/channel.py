"""A channel: its PostgreSQL names, emitting on it, and reading its events table.

A channel `inventory_stock` is the NOTIFY channel of that name, the table
`inventory_stock_events` and the SQL functions `inventory_stock_emit(target_user_id, type,
payload)` and `inventory_stock_emit_many(target_user_ids, types, payloads)`, all created by the
channel's migration.
"""

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast, overload

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from fastapi.encoders import jsonable_encoder

from fastapi_pg_sse.events import ChannelEvent, EventDeclaration, declared_events

Connection = asyncpg.Connection | PoolConnectionProxy
"""A connection of your own or one acquired from a pool."""

DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
"""What a lost, silent or unreachable database raises."""

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,55}")
"""A lowercase SQL identifier short enough for its `_events` table to fit in 63 bytes."""


@dataclass(frozen=True)
class Channel:
    """A channel's name, from which its migration derives every PostgreSQL name, and the events
    it declares (`events=StockUpdated | StockRemoved`), if any: their models document its stream
    and type its emits."""

    name: str
    events: EventDeclaration = None
    event_classes: Mapping[str, type[ChannelEvent]] = field(init=False, repr=False, compare=False)
    """The declared event classes, by event type."""

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(
                f"channel name {self.name!r} must be a lowercase SQL identifier of at most 56"
                " characters, such as inventory_stock"
            )
        object.__setattr__(self, "event_classes", declared_events(self.events))

    @property
    def events_table(self) -> str:
        return f"{self.name}_events"

    @property
    def emit_function(self) -> str:
        return f"{self.name}_emit"

    @property
    def emit_many_function(self) -> str:
        return f"{self.name}_emit_many"

    @overload
    async def emit(
        self, connection: Connection, event: ChannelEvent, *, target_user_id: str
    ) -> int: ...

    @overload
    async def emit(
        self,
        connection: Connection,
        *,
        target_user_id: str,
        event_type: str,
        payload: Mapping[str, Any] | None = None,
    ) -> int: ...

    async def emit(
        self,
        connection: Connection,
        event: ChannelEvent | None = None,
        *,
        target_user_id: str,
        event_type: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> int:
        """Record an event in the caller's transaction and return its id.

        Subscribers receive it when that transaction commits, and never if it rolls back.

        Typed, `emit(connection, StockUpdated(...), target_user_id=...)`: the payload is the
        model's JSON, its fields named by their aliases as FastAPI names them in responses, and
        a class the channel does not declare is refused (`TypeError`) before any SQL. Raw,
        `emit(connection, target_user_id=..., event_type=..., payload=...)`: as untyped as SQL;
        the payload is encoded as FastAPI encodes a response (datetimes, decimals, models).

        The emit function refuses (`asyncpg.InvalidParameterValueError`) an empty or multi-line
        user id and an event type that is not a word such as `stock_updated`.
        """
        if event is None:
            if event_type is None:
                raise TypeError("emit() takes an event, or an event_type and a payload")
            data = json.dumps(jsonable_encoder(payload if payload is not None else {}))
        else:
            if event_type is not None or payload is not None:
                raise TypeError("emit() takes an event, or an event_type and a payload, not both")
            event_type = self._declared_type(event)
            data = event.model_dump_json(by_alias=True)
        event_id: int = await connection.fetchval(
            f"SELECT {self.emit_function}($1, $2, $3::jsonb)", target_user_id, event_type, data
        )
        return event_id

    @overload
    async def emit_many(
        self, connection: Connection, events: Iterable[ChannelEvent], *, target_user_id: str
    ) -> list[int]: ...

    @overload
    async def emit_many(
        self, connection: Connection, events: Iterable[tuple[str, ChannelEvent]]
    ) -> list[int]: ...

    async def emit_many(
        self,
        connection: Connection,
        events: Iterable[ChannelEvent] | Iterable[tuple[str, ChannelEvent]],
        *,
        target_user_id: str | None = None,
    ) -> list[int]:
        """Record many events in one statement of the caller's transaction; return their ids,
        which ascend in the order given.

        `emit_many(connection, [event, ...], target_user_id=...)` sends them all to one user,
        `emit_many(connection, [(target_user_id, event), ...])` each to its own. Each promise of
        `emit` holds for each event (typed payloads, a class the channel does not declare refused
        before any SQL, the same errors from PostgreSQL, delivered in order on commit, never on
        rollback). It waits only for emitters to the same users, whose rows it locks in sorted
        order, so bulk emitters do not deadlock each other. Channels made before
        fastapi-pg-sse 0.4 lack the SQL function it calls: see the README.
        """
        emitted = [self._emitted(item, target_user_id) for item in events]
        if not emitted:
            return []
        rows = await connection.fetch(
            f"SELECT * FROM {self.emit_many_function}($1::text[], $2::text[], $3::jsonb[])",
            *zip(*emitted, strict=True),
        )
        return [row[0] for row in rows]

    def _emitted(self, item: object, target_user_id: str | None) -> tuple[str, str, str]:
        """The target user, event type and payload of an event given to `emit_many`."""
        if target_user_id is None:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
                raise TypeError(
                    "emit_many() takes (target_user_id, event) pairs, or events and"
                    f" target_user_id=, not {type(item).__name__}"
                )
            target_user_id, item = item
        event_type = self._declared_type(item)
        return target_user_id, event_type, cast(ChannelEvent, item).model_dump_json(by_alias=True)

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
        """Delete the events older than `keep` and return how many; run it from a scheduled job.

        It deletes every id up to the newest event older than `keep`, so that the ids kept are
        never preceded by a pruned one (`created_at` is when an event's transaction began, not
        in id order), and it always keeps the newest event: the oldest id kept then tells a
        pruned `Last-Event-ID` (answered with a `reset` event) from an id that is merely old.
        """
        table = self.events_table
        status: str = await connection.execute(
            f"DELETE FROM {table}"
            f" WHERE id <= (SELECT max(id) FROM {table} WHERE created_at < now() - $1::interval)"
            f" AND id < (SELECT max(id) FROM {table})",
            keep,
        )
        return int(status.split()[-1])


@dataclass(frozen=True, slots=True)
class Event:
    """A committed row of a channel's events table."""

    id: int
    type: str
    target_user_id: str
    data: str
    """The payload as JSON text."""


@dataclass(frozen=True)
class EventPage:
    """Events read from a channel's table, and whether more may follow them."""

    events: list[Event]
    more: bool


NEWEST = 2**63 - 1
"""The largest `bigint`: an upper bound that bounds nothing."""


async def fetch_events_after(
    connection: Connection,
    channel: Channel,
    ranges: Mapping[str, tuple[int, int]],
    *,
    limit: int,
    max_bytes: int,
    timeout: float | None = None,
) -> EventPage:
    """The committed events of each user in `ranges`, after its first id and up to its second,
    in id order.

    A page holds at most `limit` events and at most `max_bytes` of payload, or its first event
    alone if that is larger; a query that takes longer than `timeout` seconds raises
    `TimeoutError`. A user's events commit in id order (the emit function locks the user's row
    until its transaction ends), so reading on from the last id read never skips one of them.
    """
    rows = await connection.fetch(
        f"""
        WITH page AS (
            SELECT event.id, event.type, event.target_user_id, event.payload::text AS data
            FROM unnest($1::text[], $2::bigint[], $3::bigint[])
                AS range (target_user_id, after_id, through_id)
            CROSS JOIN LATERAL (
                SELECT id, type, target_user_id, payload FROM {channel.events_table}
                WHERE target_user_id = range.target_user_id
                    AND id > range.after_id AND id <= range.through_id
                ORDER BY id LIMIT $4
            ) AS event
            ORDER BY event.id LIMIT $4
        )
        SELECT id, type, target_user_id, data, page_size
        FROM (
            SELECT *,
                sum(octet_length(data)) OVER (ORDER BY id) - octet_length(data) AS before,
                count(*) OVER () AS page_size
            FROM page
        ) AS sized
        WHERE before = 0 OR before + octet_length(data) <= $5
        ORDER BY id
        """,
        list(ranges),
        [after for after, _ in ranges.values()],
        [through for _, through in ranges.values()],
        limit,
        max_bytes,
        timeout=timeout,
    )
    events = [Event(*row[:4]) for row in rows]
    # More may follow a full page, and a page cut short by its size.
    page_size = rows[0]["page_size"] if rows else 0
    return EventPage(events, more=page_size == limit or len(events) < page_size)


async def user_event_range(
    connection: Connection, channel: Channel, target_user_id: str, *, timeout: float | None = None
) -> tuple[int, int]:
    """The oldest id the channel keeps (1 while it has none) and the user's newest id (or 0)."""
    row = await connection.fetchrow(
        f"SELECT (SELECT coalesce(min(id), 1) FROM {channel.events_table}),"
        f" (SELECT coalesce(max(id), 0) FROM {channel.events_table}"
        "  WHERE target_user_id = $1)",
        target_user_id,
        timeout=timeout,
    )
    assert row is not None, "a query without FROM returns one row"
    oldest: int = row[0]
    newest: int = row[1]
    return oldest, newest


async def missing_objects(
    connection: Connection, channel: Channel, *, timeout: float | None = None
) -> list[str]:
    """What of the channel's migration the database lacks: its table, its emit function."""
    row = await connection.fetchrow(
        "SELECT to_regclass($1) IS NOT NULL,"
        " EXISTS (SELECT FROM pg_proc WHERE proname = $2 AND pg_function_is_visible(oid))",
        channel.events_table,
        channel.emit_function,
        timeout=timeout,
    )
    assert row is not None, "a query without FROM returns one row"
    has_table, has_function = row
    missing = []
    if not has_table:
        missing.append(f"table {channel.events_table}")
    if not has_function:
        missing.append(f"function {channel.emit_function}()")
    return missing
