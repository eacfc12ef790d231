"""The process's one LISTEN connection: delivers every committed event once, in commit order.

The connection is dedicated (a pooled connection would lose its LISTEN on reset). asyncpg forgets
listeners when a connection dies and does not reconnect, so a supervisor loop does: it notices a
lost connection through a termination callback and a periodic keep-alive query, reconnects with
capped exponential backoff and jitter, LISTENs again, and then reads from the events tables
everything committed after the last event it delivered. Ids are assigned in commit order (see the
emit function in each channel's migration), so "after the last id" misses nothing.
"""

import asyncio
import logging
import os
import random
from collections.abc import Callable, Sequence

import asyncpg

from fastapi_pg_sse.channel import Channel, Event, fetch_events, newest_event_id

logger = logging.getLogger(__name__)

Deliver = Callable[[str, Event], None]
Notifications = asyncio.Queue[tuple[str, str] | None]
"""(channel, payload) of each notification; None when the connection is lost."""


class Listener:
    """Runs the LISTEN connection in a background task and hands events to `deliver`."""

    def __init__(
        self,
        database_url: str,
        channels: Sequence[Channel],
        deliver: Deliver,
        *,
        keepalive_seconds: float,
        max_backoff_seconds: float,
        page_size: int,
    ) -> None:
        self._database_url = database_url
        self._channels = {channel.name: channel for channel in channels}
        self._deliver = deliver
        self._keepalive_seconds = keepalive_seconds
        self._max_backoff_seconds = max_backoff_seconds
        self._page_size = page_size
        self._last_ids: dict[str, int] = {}
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reconnects = 0

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def start(self) -> None:
        """Connect and LISTEN; raise if the first connection fails, so start-up fails loudly.

        Once this returns, every event committed from then on is delivered.
        """
        connection = await self._connect()
        try:
            notifications = await self._listen(connection)
        except BaseException:
            connection.terminate()
            raise
        logger.info("realtime listener connected", extra={"channels": list(self._channels)})
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
                    self.reconnects += 1
                    logger.info(
                        "realtime listener reconnected after %d attempt(s)",
                        failures,
                        extra={"reconnects": self.reconnects},
                    )
                    notifications = await self._listen(connection)
                failures = 0
                await self._pump(connection, notifications)
            except (
                OSError,
                TimeoutError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
            ) as error:
                logger.warning("realtime listener lost its connection: %r", error)
            except Exception:
                # A bug must not end real-time delivery for the process: log it, start over.
                logger.exception("realtime listener failed; reconnecting")
            finally:
                self._connected.clear()
                if connection is not None:
                    connection.terminate()
                    connection = notifications = None
            failures += 1
            delay = min(self._max_backoff_seconds, 0.1 * 2**failures)
            await asyncio.sleep(random.uniform(delay / 2, delay))

    async def _connect(self) -> asyncpg.Connection:
        connection: asyncpg.Connection = await asyncpg.connect(
            self._database_url,
            server_settings={"application_name": f"realtime-listener:{os.getpid()}"},
        )
        return connection

    async def _listen(self, connection: asyncpg.Connection) -> Notifications:
        """LISTEN and catch up; return the queue of notifications, None once disconnected."""
        queue: Notifications = asyncio.Queue()

        def on_notification(_: object, __: int, channel: str, payload: object) -> None:
            queue.put_nowait((channel, str(payload)))

        connection.add_termination_listener(lambda _: queue.put_nowait(None))
        for name in self._channels:
            await connection.add_listener(name, on_notification)
        await self._catch_up(connection)
        self._connected.set()
        return queue

    async def _pump(self, connection: asyncpg.Connection, queue: Notifications) -> None:
        """Deliver notifications until the connection is lost."""
        while True:
            try:
                async with asyncio.timeout(self._keepalive_seconds):
                    item = await queue.get()
            except TimeoutError:
                await connection.execute("SELECT 1", timeout=self._keepalive_seconds)
                continue
            if item is None:
                raise ConnectionError("listener connection terminated")
            await self._on_notification(connection, *item)

    async def _catch_up(self, connection: asyncpg.Connection) -> None:
        """Deliver what was committed while we were not listening (nothing on first start)."""
        for name, channel in self._channels.items():
            if name not in self._last_ids:
                self._last_ids[name] = await newest_event_id(connection, channel)
                continue
            replayed = await self._deliver_committed(connection, channel)
            if replayed:
                logger.info(
                    "realtime listener replayed the gap: %d event(s) on %s",
                    replayed,
                    name,
                    extra={"channel": name, "events": replayed},
                )

    async def _on_notification(
        self, connection: asyncpg.Connection, name: str, payload: str
    ) -> None:
        # Payload: "<id> <type> <target user id>", then "\n<payload JSON>" when it fits in
        # NOTIFY's 8000 bytes; otherwise the event is read from its table. Notifications arrive
        # in commit order, which is id order, so the id after the last one is the next event.
        header, has_data, data = payload.partition("\n")
        try:
            raw_id, event_type, target_user_id = header.split(" ", 2)
            event_id = int(raw_id)
        except ValueError:
            logger.warning("realtime listener ignored a foreign notification on %s", name)
            return
        if event_id <= self._last_ids[name]:
            return  # already delivered by a table read
        if has_data and event_id == self._last_ids[name] + 1:
            self._publish(name, Event(event_id, event_type, target_user_id, data))
        else:
            # Too large to carry, or after a gap (a rolled-back id, or a notification that
            # did not come from the emit function): the table is the authority.
            await self._deliver_committed(connection, self._channels[name])

    async def _deliver_committed(self, connection: asyncpg.Connection, channel: Channel) -> int:
        delivered = 0
        while events := await fetch_events(
            connection, channel, after_id=self._last_ids[channel.name], limit=self._page_size
        ):
            for event in events:
                self._publish(channel.name, event)
            delivered += len(events)
        return delivered

    def _publish(self, name: str, event: Event) -> None:
        self._last_ids[name] = event.id
        self._deliver(name, event)
