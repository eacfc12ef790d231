"""A channel: its PostgreSQL names, emitting on it, and reading its events table.

A channel `inventory_stock` is the NOTIFY channel of that name, the table
`inventory_stock_events` and the SQL function `inventory_stock_emit(target_user_id, type,
payload)`, all created by the channel's migration.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from fastapi.encoders import jsonable_encoder

Connection = asyncpg.Connection | PoolConnectionProxy
"""A connection of your own or one acquired from a pool."""

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,55}")
"""A lowercase SQL identifier short enough for its `_events` table to fit in 63 bytes."""


@dataclass(frozen=True)
class Channel:
    """A channel's name, from which its migration derives every PostgreSQL name."""

    name: str

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(
                f"channel name {self.name!r} must be a lowercase SQL identifier of at most 56"
                " characters, such as inventory_stock"
            )

    @property
    def events_table(self) -> str:
        return f"{self.name}_events"

    @property
    def emit_function(self) -> str:
        return f"{self.name}_emit"

    async def emit(
        self,
        connection: Connection,
        *,
        target_user_id: str,
        event_type: str,
        payload: Mapping[str, Any] | None = None,
    ) -> int:
        """Record an event in the caller's transaction and return its id.

        Subscribers receive it when that transaction commits, and never if it rolls back. The
        payload is encoded as FastAPI encodes a response (datetimes, decimals, models). The
        emit function refuses (`asyncpg.InvalidParameterValueError`) an empty or multi-line user
        id and an event type that is not a word such as `stock_updated`.
        """
        event_id: int = await connection.fetchval(
            f"SELECT {self.emit_function}($1, $2, $3::jsonb)",
            target_user_id,
            event_type,
            json.dumps(jsonable_encoder(payload if payload is not None else {})),
        )
        return event_id

    async def prune(self, connection: Connection, *, keep: timedelta = timedelta(days=7)) -> int:
        """Delete the events older than `keep` and return how many; run it from a scheduled job.

        The newest event is always kept: it tells a pruned `Last-Event-ID` (answered with a
        `reset` event) from an id that is merely old.
        """
        status: str = await connection.execute(
            f"DELETE FROM {self.events_table} WHERE created_at < now() - $1::interval"
            f" AND id < (SELECT max(id) FROM {self.events_table})",
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


async def fetch_events(
    connection: Connection, channel: Channel, *, after_id: int, limit: int
) -> list[Event]:
    """Committed events of every user after `after_id`, in id order, which is commit order."""
    rows = await connection.fetch(
        f"SELECT id, type, target_user_id, payload::text FROM {channel.events_table}"
        " WHERE id > $1 ORDER BY id LIMIT $2",
        after_id,
        limit,
    )
    return [Event(*row) for row in rows]


async def fetch_user_events(
    connection: Connection,
    channel: Channel,
    *,
    target_user_id: str,
    after_id: int,
    limit: int,
) -> list[Event]:
    """One user's committed events after `after_id`, in id order, for `Last-Event-ID` replay."""
    rows = await connection.fetch(
        f"SELECT id, type, target_user_id, payload::text FROM {channel.events_table}"
        " WHERE target_user_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        target_user_id,
        after_id,
        limit,
    )
    return [Event(*row) for row in rows]


async def event_id_range(connection: Connection, channel: Channel) -> tuple[int, int]:
    """The oldest and newest ids kept; (1, 0) while the channel has no event."""
    row = await connection.fetchrow(
        f"SELECT coalesce(min(id), 1), coalesce(max(id), 0) FROM {channel.events_table}"
    )
    assert row is not None, "an aggregate query returns one row"
    oldest: int = row[0]
    newest: int = row[1]
    return oldest, newest


async def newest_event_id(connection: Connection, channel: Channel) -> int:
    """The newest id kept, or 0."""
    newest: int = await connection.fetchval(
        f"SELECT coalesce(max(id), 0) FROM {channel.events_table}"
    )
    return newest
