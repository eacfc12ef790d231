"""The real-time kernel of one process: its listener, its hub, and the streams it serves."""

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from types import FrameType

import anyio
import asyncpg
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from fastapi_pg_sse.channel import Channel, event_id_range, fetch_user_events
from fastapi_pg_sse.frames import HEARTBEAT, event_frame, reset_frame, retry_frame
from fastapi_pg_sse.hub import Hub, Subscriber
from fastapi_pg_sse.listener import Listener
from fastapi_pg_sse.settings import RealtimeSettings

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
POOL_CLOSE_SECONDS = 2.0
"""How long the replay pool's connections may take to close politely at shutdown."""


@dataclass(frozen=True)
class RealtimeMetrics:
    """Counters of one process, for your metrics endpoint or exporter."""

    listener_connected: bool
    listener_reconnects: int
    open_streams: int
    events_delivered: int
    clients_dropped: int


class Realtime:
    """The kernel of one process; `create_realtime_router`'s lifespan starts and stops it.

    The running kernel is `app.state.realtime`.
    """

    def __init__(self, settings: RealtimeSettings, channels: Sequence[Channel]) -> None:
        self.settings = settings
        self.channels = tuple(channels)
        self.hub = Hub()
        self.listener = Listener(
            settings.database_url.get_secret_value(),
            self.channels,
            self.hub.publish,
            keepalive_seconds=settings.keepalive_seconds,
            max_backoff_seconds=settings.reconnect_max_backoff_seconds,
            page_size=settings.replay_page_size,
        )
        self._pool: asyncpg.Pool | None = None
        self._restore_signal_handlers: Callable[[], None] = lambda: None

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.settings.database_url.get_secret_value(),
            min_size=self.settings.pool_min_size,
            max_size=self.settings.pool_max_size,
        )
        try:
            await self.listener.start()
        except BaseException:
            await self._pool.close()
            raise
        self._restore_signal_handlers = _on_shutdown_signal(self.hub.close_all)

    async def stop(self) -> None:
        self._restore_signal_handlers()
        self.hub.close_all()
        await self.listener.stop()
        if self._pool is not None:
            # Politely, unless the network to PostgreSQL went silent: then nothing would answer
            # and shutdown would wait for ever. On the timeout, asyncpg terminates the pool.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pool.close(), POOL_CLOSE_SECONDS)

    def metrics(self) -> RealtimeMetrics:
        counters = self.hub.counters
        return RealtimeMetrics(
            listener_connected=self.listener.connected,
            listener_reconnects=self.listener.reconnects,
            open_streams=counters.open_streams,
            events_delivered=counters.events_delivered,
            clients_dropped=counters.clients_dropped,
        )

    def stream(
        self,
        channel: Channel,
        user_id: str,
        last_event_id: int | None = None,
        *,
        expires_at: float | None = None,
    ) -> "EventStream":
        """Stream `user_id`'s events, after replaying those that follow `last_event_id`.

        The subscriber joins the hub when the response starts, before its headers and the replay
        are sent, so an event committed meanwhile is either in the replay or queued live; the
        queue drops what the replay already sent.
        The stream ends at `expires_at` (a Unix time), when the user's credentials expire.
        """
        if channel not in self.channels:
            raise LookupError(f"channel {channel.name!r} is not one of this app's channels")
        subscriber = Subscriber(channel.name, user_id, self.settings.max_queued_bytes)
        frames = self._frames(channel, subscriber, last_event_id, expires_at)
        return EventStream(
            frames,
            hub=self.hub,
            subscriber=subscriber,
            grace_seconds=self.settings.stalled_client_grace_seconds,
        )

    async def _frames(
        self,
        channel: Channel,
        subscriber: Subscriber,
        last_event_id: int | None,
        expires_at: float | None,
    ) -> AsyncIterator[bytes]:
        yield retry_frame(self.settings.retry_milliseconds)
        if last_event_id is not None:
            async for frames in self._replay(channel, subscriber, last_event_id):
                yield frames
        heartbeat = self.settings.heartbeat_seconds
        while expires_at is None or (remaining := expires_at - time.time()) > 0:
            timeout = heartbeat if expires_at is None else min(heartbeat, remaining)
            chunk = await subscriber.next_chunk(timeout)
            if chunk is None:
                return
            yield chunk or HEARTBEAT

    async def _replay(
        self, channel: Channel, subscriber: Subscriber, last_event_id: int
    ) -> AsyncIterator[bytes]:
        """Frames of the subscriber's events after `last_event_id`, page by page.

        An id the table cannot vouch for (older than the oldest event kept, or newer than the
        newest) gets a `reset` frame instead, and the stream goes on from the newest event. A
        connection is held only while a page is read, never while a slow client takes it.
        """
        assert self._pool is not None, "Realtime.start() was not called"
        timeout = self.settings.pool_timeout_seconds
        async with self._pool.acquire(timeout=timeout) as connection:
            oldest, newest = await event_id_range(connection, channel)
        after_id = last_event_id
        if not oldest - 1 <= last_event_id <= newest:
            yield reset_frame(newest)
            after_id = newest
        subscriber.replayed_through = after_id
        while True:
            async with self._pool.acquire(timeout=timeout) as connection:
                events = await fetch_user_events(
                    connection,
                    channel,
                    target_user_id=subscriber.user_id,
                    after_id=after_id,
                    limit=self.settings.replay_page_size,
                )
            if not events:
                return
            after_id = subscriber.replayed_through = events[-1].id
            yield b"".join(event_frame(event.id, event.type, event.data) for event in events)


class EventStream(StreamingResponse):
    """An SSE response over pre-encoded frames that always leaves the hub when it ends.

    It is a route's `response_class`, for the OpenAPI document. It is not a subclass of
    `fastapi.sse.EventSourceResponse`: FastAPI takes a route of that class for one that `yield`s
    items, and would encode each item again for every recipient.

    When the server ends a stream (shutdown, or a client too far behind), a client that is
    reading receives the end of the response. One that stopped reading would keep the response
    waiting to write, and with it the server's shutdown: after a grace period it is cut off.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        frames: AsyncIterator[bytes],
        status_code: int = 200,  # FastAPI's OpenAPI reads the default status from here
        *,
        hub: Hub,
        subscriber: Subscriber,
        grace_seconds: float,
    ) -> None:
        super().__init__(frames, status_code, STREAM_HEADERS)
        self._hub = hub
        self._subscriber = subscriber
        self._grace_seconds = grace_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        respond = super().__call__
        cut_off = False
        self._hub.add(self._subscriber)
        try:
            async with anyio.create_task_group() as tasks:

                async def stream_until_done() -> None:
                    await respond(scope, receive, send)
                    tasks.cancel_scope.cancel()

                tasks.start_soon(stream_until_done)
                await self._subscriber.wait_closed()
                await anyio.sleep(self._grace_seconds)
                cut_off = True
                tasks.cancel_scope.cancel()
        finally:
            self._subscriber.close()
            self._hub.remove(self._subscriber)
        if cut_off:
            _abort_connection(receive)


def _abort_connection(receive: Receive) -> None:
    """Drop the connection of a response cut off because its client stopped reading.

    The server would close it gracefully: it would wait, for ever, to flush what the client does
    not read, and uvicorn waits for every connection to close before it stops. ASGI cannot abort
    a connection, so this reaches uvicorn's transport (`receive` is a method of its request
    cycle); under another server, or behind a middleware that wraps `receive`, it does nothing.
    """
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    if callable(abort):
        abort()


def get_realtime(request: Request) -> Realtime:
    """The running kernel of the app (a dependency)."""
    realtime: Realtime | None = getattr(request.app.state, "realtime", None)
    if realtime is None:
        raise RuntimeError("the real-time kernel is not running: include create_realtime_router()")
    return realtime


def _on_shutdown_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Run `callback` on the event loop when the server is told to stop (SIGINT, SIGTERM).

    uvicorn waits for every open response to finish before it runs the lifespan shutdown, so
    without this, open streams would keep it waiting for ever. The previous handlers still run
    afterwards; the returned function puts them back.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handle(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(callback)
        handler = previous[signal.Signals(signum)]
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    for sig in previous:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
