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
"""

import asyncio
import logging
import os
import random
from collections import defaultdict

import asyncpg

from fastapi_pg_sse.channel import DATABASE_ERRORS, NEWEST, fetch_events_after
from fastapi_pg_sse.hub import Hub
from fastapi_pg_sse.schema import SCHEMA, SchemaMismatch, check_schema

logger = logging.getLogger(__name__)

PING = ("", "")
"""Queued when no notification came for a keep-alive period: the pump checks the connection."""
Notifications = asyncio.Queue[tuple[str, str] | None]
"""(channel, payload) of each notification, or PING; None when the connection is lost."""


class Listener:
    """Runs the LISTEN connection in a background task and delivers events through `hub`."""

    def __init__(
        self,
        database_url: str,
        hub: Hub,
        *,
        keepalive_seconds: float,
        max_backoff_seconds: float,
        page_size: int,
        page_bytes: int,
    ) -> None:
        self._database_url = database_url
        self._hub = hub
        self._keepalive_seconds = keepalive_seconds
        self._max_backoff_seconds = max_backoff_seconds
        self._page_size = page_size
        self._page_bytes = page_bytes
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reconnects = 0
        self._received = 0
        """Notifications received, for the keep-alive to tell an idle connection."""

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

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
            except DATABASE_ERRORS as error:
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
        connection: asyncpg.Connection = await asyncpg.connect(
            self._database_url,
            server_settings={"application_name": f"realtime-listener:{os.getpid()}"},
        )
        return connection

    async def _listen(self, connection: asyncpg.Connection) -> Notifications:
        """Check the schema, LISTEN and catch up; return the queue of notifications."""
        await check_schema(connection, timeout=self._keepalive_seconds)
        queue: Notifications = asyncio.Queue()

        def on_notification(_: object, __: int, channel: str, payload: object) -> None:
            self._received += 1
            queue.put_nowait((channel, str(payload)))

        connection.add_termination_listener(lambda _: queue.put_nowait(None))
        await connection.add_listener(SCHEMA, on_notification)
        await self._catch_up(connection)
        self._connected.set()
        return queue

    async def _pump(self, connection: asyncpg.Connection, queue: Notifications) -> None:
        """Deliver what notifications announce, a batch at a time, until the connection is lost.

        The notifications queued meanwhile join the batch, up to a page of them: under load, one
        query reads the events of many notifications. The connection is checked with a query
        after each keep-alive period without notifications.
        """
        keepalive = asyncio.create_task(self._request_pings(queue), name="realtime-keepalive")
        try:
            while True:
                batch = [await queue.get()]
                while batch[-1] is not None and not queue.empty() and len(batch) < self._page_size:
                    batch.append(queue.get_nowait())
                if any(item is PING for item in batch):
                    await connection.execute("SELECT 1", timeout=self._keepalive_seconds)
                await self._deliver_announced(
                    connection, [item for item in batch if item is not None and item is not PING]
                )
                if batch[-1] is None:
                    raise ConnectionError("listener connection terminated")
        finally:
            keepalive.cancel()

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

    async def _catch_up(self, connection: asyncpg.Connection) -> None:
        """Deliver what was committed while we were not listening (nothing on first start)."""
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
        self, connection: asyncpg.Connection, notifications: list[tuple[str, str]]
    ) -> None:
        """Read and deliver, for each announced user with open streams here, their events after
        the last one they received, up to the newest announced."""
        ranges: defaultdict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
        for _, payload in notifications:
            try:
                raw_id, name, target_user_id = payload.split(" ", 2)
                event_id = int(raw_id)
            except ValueError:
                event_id = 0
            if not 0 < event_id <= NEWEST:
                logger.warning("realtime listener ignored a foreign notification")
                continue
            delivered_through = self._hub.delivered_through(name, target_user_id)
            if delivered_through is None or event_id <= delivered_through:
                continue  # another app's channel, nobody here to deliver to, or delivered already
            _, announced = ranges[name].get(target_user_id, (0, 0))
            ranges[name][target_user_id] = (delivered_through, max(announced, event_id))
        for name, users in ranges.items():
            await self._deliver(connection, name, users)

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
            delivered += len(page.events)
            if not page.more:
                break
        return delivered
