"""The process's one LISTEN connection: hands every committed event to its user's open streams.

The connection is dedicated (a pooled connection would lose its LISTEN on reset). asyncpg forgets
listeners when a connection dies and does not reconnect, so a supervisor loop does: it notices a
lost connection through a termination callback and a periodic keep-alive query, reconnects with
capped exponential backoff and jitter, LISTENs again, and then reads everything committed for
the users with open streams since the last event each of them received.

A notification (`<id> <channel> <user>` on the NOTIFY channel `fastapi_pg_sse`) only says which
user has something new: any role that can connect can NOTIFY, so what reaches a stream is always
read from the events table, after the last event its user received. Ids are given in commit
order (see `fastapi_pg_sse.schema`), so reading on from there never skips one, whatever a
notification claims.

Nor can a flood of notifications exhaust the process: foreign ones are counted, and warned about
at most once a minute; the queue of announcements is bounded, and when it is full the listener
drops them and then reads on from the table for every user with open streams.
"""

import asyncio
import logging
import math
import os
import random
import re
import socket
import time
from collections import defaultdict

import asyncpg
from pydantic import SecretStr

from fastapi_pg_sse.channel import (
    DATABASE_ERRORS,
    NEWEST,
    NEWEST_ID,
    REVOCATIONS,
    fetch_events_after,
    latest_revocations,
)
from fastapi_pg_sse.hub import Hub
from fastapi_pg_sse.schema import SCHEMA, SchemaMismatch, check_schema

logger = logging.getLogger(__name__)

Announcement = tuple[int, str, str]
"""What a notification announces: an event id, its channel and its user."""
PING: Announcement = (0, "", "")
"""Queued when no notification came for a keep-alive period: the pump checks the connection."""
Notifications = asyncio.Queue[Announcement | None]
"""What each notification announces for a user with open streams here, or PING; None when the
connection is lost."""
QUEUED_PAGES = 10
"""The queue holds at most this many pages (`page_size`) of announcements."""
FOREIGN_WARNING_INTERVAL_SECONDS = 60.0
"""The least time between two warnings about foreign notifications."""
REPORT: Announcement = (0, "", "report")
"""Queued when the process's count of open streams changed: the pump renames the connection."""
STREAMS_REPORT_SECONDS = 1.0
"""How often the listener looks whether the count of open streams changed since it last named
its connection after it (see `listener_name`)."""
_NAME_BYTES = 63
"""What PostgreSQL keeps of an `application_name`."""
_LISTENER_NAME = re.compile(r"realtime-listener:([0-9]+)(?: streams=([0-9]+))?(?: host=(.*))?")
"""A `listener_name`, or the `realtime-listener:<pid>` of a runtime before 0.8."""


class Listener:
    """Runs the LISTEN connection in a background task and delivers events through `hub`."""

    def __init__(
        self,
        database_url: SecretStr,
        hub: Hub,
        *,
        keepalive_seconds: float,
        max_backoff_seconds: float,
        page_size: int,
        page_bytes: int,
    ) -> None:
        self._database_url = database_url
        """A secret until the moment of connecting: no repr or traceback of the listener shows
        its password."""
        self._hub = hub
        self._keepalive_seconds = keepalive_seconds
        self._max_backoff_seconds = max_backoff_seconds
        self._page_size = page_size
        self._page_bytes = page_bytes
        self._max_queued = QUEUED_PAGES * page_size
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reconnects = 0
        self.foreign_notifications = 0
        self.notifications_dropped = 0
        self.newest_seen = 0
        """The newest event id seen, on any channel, read from the table only: as it connects,
        at each keep-alive, and in each event it delivers. A stream opened while the database is
        unreachable resumes after it: never above the truth (a notification, which any role may
        send, could put it there, and clients would skip what lies between), at worst behind
        it, and the stream then replays a little more."""
        self._received = 0
        """Notifications received, for the keep-alive to tell an idle connection."""
        self._behind = False
        """Announcements were dropped since the last catch-up: the pump must catch up."""
        self._foreign_warned_at = -math.inf
        self._foreign_when_warned = 0
        self._named_after_streams = 0
        """The count of open streams the connection was last named (or renamed) after."""

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def caught_up(self) -> bool:
        """Connected, and no announcement dropped since it last read on from the table."""
        return self.connected and not self._behind

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task that runs the connection, reconnecting it; None before `start`."""
        return self._task

    async def start(self) -> None:
        """Connect and LISTEN; raise if that fails, so that start-up fails loudly.

        Raises `SchemaMismatch`, saying what to apply, when the database's schema is not one this
        runtime works with. Once this returns, every event committed from then on is delivered.
        """
        connection = await self._connect()
        try:
            notifications = await self._listen(connection)
        except BaseException:
            connection.terminate()
            raise
        logger.info("realtime listener connected")
        self._task = asyncio.create_task(
            self._supervise(connection, notifications), name="realtime-listener"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _supervise(
        self, connection: asyncpg.Connection | None, notifications: Notifications | None
    ) -> None:
        failures = 0
        while True:
            try:
                if connection is None or notifications is None:
                    connection = await self._connect()
                    notifications = await self._listen(connection)
                    self.reconnects += 1
                    logger.info(
                        "realtime listener reconnected after %d attempt(s)",
                        failures,
                        extra={"reconnects": self.reconnects},
                    )
                failures = 0  # only once listening and caught up
                await self._pump(connection, notifications)
            except SchemaMismatch as error:
                problem = f"cannot listen: {error}"
            except DATABASE_ERRORS as error:  # its connection's: no traceback, one line
                problem = f"lost its connection: {error!r}"
            except Exception:
                # A bug must not end real-time delivery for the process: log it, start over.
                logger.exception("realtime listener failed")
                problem = "failed"
            finally:
                self._connected.clear()
                if connection is not None:
                    connection.terminate()
                    connection = notifications = None
            failures += 1
            cap = min(self._max_backoff_seconds, 0.1 * 2 ** min(failures, 30))
            delay = random.uniform(cap / 2, cap)
            logger.warning("realtime listener %s; retrying in %.2f s", problem, delay)
            await asyncio.sleep(delay)

    async def _connect(self) -> asyncpg.Connection:
        self._named_after_streams = self._hub.counters.open_streams
        connection: asyncpg.Connection = await asyncpg.connect(
            self._database_url.get_secret_value(),
            server_settings={"application_name": listener_name(self._named_after_streams)},
        )
        return connection

    async def _listen(self, connection: asyncpg.Connection) -> Notifications:
        """Check the schema, LISTEN and catch up; return the queue of notifications."""
        await check_schema(connection, timeout=self._keepalive_seconds)
        queue: Notifications = asyncio.Queue()

        def on_notification(_: object, __: int, ___: str, payload: object) -> None:
            self._received += 1
            self._queue_announcement(queue, str(payload))

        connection.add_termination_listener(lambda _: queue.put_nowait(None))
        await connection.add_listener(SCHEMA, on_notification)
        await self._read_newest(connection)
        self._behind = False  # what was dropped before is read by this catch-up
        await self._catch_up(connection)
        self._connected.set()
        return queue

    def _queue_announcement(self, queue: Notifications, payload: str) -> None:
        """Queue what a notification announces, if it is for a user with open streams here.

        A full queue drops it, and marks the listener behind: the pump then catches up every
        user from the table. PING and the end of the connection are queued all the same.
        """
        announcement = _announcement(payload)
        if announcement is None:
            self._ignore_foreign()
            return
        _, channel, user_id = announcement
        if channel == REVOCATIONS:
            if not self._hub.has_streams(user_id):
                return
        elif self._hub.delivered_through(channel, user_id) is None:
            return  # another app's channel, or nobody here to deliver to
        if queue.qsize() >= self._max_queued:
            self.notifications_dropped += 1
            self._behind = True
            return
        queue.put_nowait(announcement)

    def _ignore_foreign(self) -> None:
        """Count a notification that is not one of ours; warn, saying how many came since the
        last warning, at most once every `FOREIGN_WARNING_INTERVAL_SECONDS`."""
        self.foreign_notifications += 1
        now = time.monotonic()
        if now - self._foreign_warned_at < FOREIGN_WARNING_INTERVAL_SECONDS:
            return
        logger.warning(
            "realtime listener ignored %d foreign notification(s) since its last such warning"
            " (it warns at most once every %d s)",
            self.foreign_notifications - self._foreign_when_warned,
            FOREIGN_WARNING_INTERVAL_SECONDS,
        )
        self._foreign_warned_at = now
        self._foreign_when_warned = self.foreign_notifications

    async def _pump(self, connection: asyncpg.Connection, queue: Notifications) -> None:
        """Deliver what notifications announce, a batch at a time, until the connection is lost.

        The notifications queued meanwhile join the batch, up to a page of them: under load, one
        query reads the events of many notifications. The connection is checked with a query
        after each keep-alive period without notifications.
        """
        keepalive = asyncio.create_task(self._request_pings(queue), name="realtime-keepalive")
        reports = asyncio.create_task(self._request_reports(queue), name="realtime-reports")
        try:
            while True:
                batch = [await queue.get()]
                while batch[-1] is not None and not queue.empty() and len(batch) < self._page_size:
                    batch.append(queue.get_nowait())
                if any(item is PING for item in batch):
                    await self._read_newest(connection)
                if any(item is REPORT for item in batch):
                    await self._report_streams(connection)
                await self._deliver_announced(
                    connection, [item for item in batch if item is not None and item[0] > 0]
                )
                if self._behind:
                    self._behind = False
                    await self._catch_up(connection)
                if batch[-1] is None:
                    raise ConnectionError("listener connection terminated")
        finally:
            keepalive.cancel()
            reports.cancel()

    async def _read_newest(self, connection: asyncpg.Connection) -> None:
        """Take up the newest id given out: the truth, even of a database restored from an older
        copy. The keep-alive's query, which checks the connection."""
        self.newest_seen = await connection.fetchval(
            f"SELECT {NEWEST_ID}", timeout=self._keepalive_seconds
        )

    async def _request_pings(self, queue: Notifications) -> None:
        """Queue a PING after each keep-alive period in which the queue received nothing.

        One timer per period rather than a timeout on every wait for a notification: a timeout
        per wait is garbage the collector has to chase, at the rate of notifications.
        """
        while True:
            received = self._received
            await asyncio.sleep(self._keepalive_seconds)
            if self._received == received:
                queue.put_nowait(PING)

    async def _request_reports(self, queue: Notifications) -> None:
        """Queue a REPORT, at most once every `STREAMS_REPORT_SECONDS`, when the count of open
        streams differs from the one the connection is named after: nothing on the path of a
        stream or an event, and a rename at most once a period."""
        while True:
            await asyncio.sleep(STREAMS_REPORT_SECONDS)
            if self._hub.counters.open_streams != self._named_after_streams:
                self._named_after_streams = self._hub.counters.open_streams
                queue.put_nowait(REPORT)

    async def _report_streams(self, connection: asyncpg.Connection) -> None:
        """Rename the connection after the count of open streams now (see `listener_name`)."""
        self._named_after_streams = self._hub.counters.open_streams
        await connection.execute(
            "SELECT set_config('application_name', $1, false)",
            listener_name(self._named_after_streams),
            timeout=self._keepalive_seconds,
        )

    async def _catch_up(self, connection: asyncpg.Connection) -> None:
        """Deliver what was committed while we were not listening (nothing on first start), or
        whose announcements were dropped; end the streams revoked meanwhile."""
        await self._revoke(connection, self._hub.users())
        for name in self._hub.channels():
            ranges = {user: (after, NEWEST) for user, after in self._hub.positions(name).items()}
            delivered = await self._deliver(connection, name, ranges)
            if delivered:
                logger.info(
                    "realtime listener replayed the gap: %d event(s) on %s",
                    delivered,
                    name,
                    extra={"channel": name, "events": delivered},
                )

    async def _deliver_announced(
        self, connection: asyncpg.Connection, announcements: list[Announcement]
    ) -> None:
        """Read and deliver, for each announced user with open streams here, their events after
        the last one they received, up to the newest announced."""
        ranges: defaultdict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
        revoked = {user for _, name, user in announcements if name == REVOCATIONS}
        if revoked:
            await self._revoke(connection, revoked)
        for event_id, name, target_user_id in announcements:
            if name == REVOCATIONS:
                continue
            delivered_through = self._hub.delivered_through(name, target_user_id)
            if delivered_through is None or event_id <= delivered_through:
                continue  # nobody here to deliver to any more, or delivered already
            _, announced = ranges[name].get(target_user_id, (0, 0))
            ranges[name][target_user_id] = (delivered_through, max(announced, event_id))
        for name, users in ranges.items():
            await self._deliver(connection, name, users)

    async def _revoke(self, connection: asyncpg.Connection, user_ids: set[str]) -> None:
        """End the streams of `user_ids` that a revocation committed after they opened.

        What a notification claims is not trusted: the revocation is read from the table."""
        if not user_ids:
            return
        revocations = await latest_revocations(
            connection, user_ids, timeout=self._keepalive_seconds
        )
        for user_id, revocation in revocations.items():
            if ended := self._hub.revoke(user_id, revocation.id):
                logger.info("realtime streams revoked: %d", ended, extra={"user_id": user_id})

    async def _deliver(
        self,
        connection: asyncpg.Connection,
        channel: str,
        ranges: dict[str, tuple[int, int]],
    ) -> int:
        """Publish the events of each user in `ranges` (after, through); count them."""
        delivered = 0
        while ranges:
            page = await fetch_events_after(
                connection,
                channel,
                ranges,
                limit=self._page_size,
                max_bytes=self._page_bytes,
                timeout=self._keepalive_seconds,  # a silent network must not hold it for ever
            )
            for event in page.events:
                self._hub.publish(channel, event)
                ranges[event.target_user_id] = (event.id, ranges[event.target_user_id][1])
                self.newest_seen = max(self.newest_seen, event.id)
            delivered += len(page.events)
            if not page.more:
                break
        return delivered


def _announcement(payload: str) -> Announcement | None:
    """What a notification of ours (`<id> <channel> <user>`) announces; None for another's."""
    try:
        raw_id, channel, user_id = payload.split(" ", 2)
        event_id = int(raw_id)
    except ValueError:
        return None
    return (event_id, channel, user_id) if 0 < event_id <= NEWEST else None


def listener_name(streams: int) -> str:
    """The `application_name` of the process's LISTEN connection, as `pg_stat_activity` shows
    it: `realtime-listener:<pid> streams=<open streams> host=<host name>`, the host name cut to
    fit the 63 bytes PostgreSQL keeps."""
    name = f"realtime-listener:{os.getpid()} streams={streams} host={socket.gethostname()}"
    return name.encode("ascii", "replace")[:_NAME_BYTES].decode("ascii")


def parse_listener_name(name: str) -> tuple[int, int | None, str] | None:
    """The pid, open streams (None from a runtime before 0.8, which did not say) and host
    (perhaps cut short; empty if not said) of a `listener_name`; None for another connection's
    name."""
    match = _LISTENER_NAME.fullmatch(name)
    if match is None:
        return None
    streams = None if match.group(2) is None else int(match.group(2))
    return int(match.group(1)), streams, match.group(3) or ""
