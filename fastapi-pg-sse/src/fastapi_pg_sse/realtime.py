"""The real-time kernel of one process: its listener, its hub, and the streams it serves."""

import asyncio
import contextlib
import gc
import logging
import math
import signal
import threading
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Sequence,
)
from dataclasses import dataclass
from types import FrameType
from typing import Any

import asyncpg
from fastapi.datastructures import DefaultPlaceholder
from pydantic import SecretStr
from starlette import status
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from fastapi_pg_sse.channel import (
    CONNECTION_ERRORS,
    Channel,
    Connection,
    fetch_audience_events,
    latest_revocations,
    resume_bounds,
    user_id_problem,
)
from fastapi_pg_sse.frames import (
    HEARTBEAT,
    event_frame,
    expired_frame,
    opening_frame,
    outage_frame,
    reset_frame,
    revoked_frame,
    wire_type,
)
from fastapi_pg_sse.hub import NOT_WRITING, Hub, Subscriber
from fastapi_pg_sse.listener import Listener, PollListener
from fastapi_pg_sse.settings import RealtimeSettings
from fastapi_pg_sse.tracing import Span, current_span, start_span

logger = logging.getLogger(__name__)

STREAM_HEADERS = {"Cache-Control": "no-store, private", "X-Accel-Buffering": "no"}
"""A user's events are for that user alone: no cache, shared or the browser's, keeps them."""
REFUSAL_HEADERS = {"Cache-Control": "no-store"}
"""Of a 429: a refusal holds only at the moment it is given."""
POOL_CLOSE_SECONDS = 2.0
"""How long the stream pool's connections may take to close politely at shutdown."""


@dataclass(frozen=True)
class RealtimeMetrics:
    """Counters of one process, for your metrics endpoint or exporter."""

    listener_connected: bool
    listener_reconnects: int
    open_streams: int
    events_delivered: int
    clients_dropped: int
    foreign_notifications: int
    """Notifications on the NOTIFY channel that are not the runtime's (`<id> <channel> <user>`):
    ignored, and warned about at most once a minute."""
    notifications_dropped: int
    """Always 0 since 0.9: a notification only wakes the listener, which keeps no queue of
    them, so none is ever dropped. Kept for the dashboards that read it."""


class TokenRevoked(Exception):
    """The stream's token was issued before its user's streams were revoked: answered 401."""


class StreamSlots:
    """The streams a process serves at once, in all and per user id (over every channel).

    A stream takes its slot as its response starts, before it does anything that waits: however
    many open at once, no more than the caps pass.
    """

    def __init__(self, max_streams: int, max_streams_per_user: int) -> None:
        self._max_streams = max_streams
        self._max_streams_per_user = max_streams_per_user
        self._taken = 0
        self._taken_by_user: dict[str, int] = {}

    def refusal(self, user_id: str) -> str | None:
        """Why a further stream of `user_id` must be refused now; None if it may open."""
        if self._taken_by_user.get(user_id, 0) >= self._max_streams_per_user:
            return "Too many open streams for this user; close one, or retry later."
        if self._taken >= self._max_streams:
            return "This server serves too many streams; retry later."
        return None

    def take(self, user_id: str) -> None:
        self._taken += 1
        self._taken_by_user[user_id] = self._taken_by_user.get(user_id, 0) + 1

    def give_back(self, user_id: str) -> None:
        self._taken -= 1
        left = self._taken_by_user[user_id] - 1
        if left:
            self._taken_by_user[user_id] = left
        else:
            del self._taken_by_user[user_id]


class Realtime:
    """The kernel of one process; `create_realtime_router`'s lifespan starts and stops it.

    The running kernel is `app.state.realtime`.
    """

    def __init__(self, settings: RealtimeSettings, channels: Sequence[Channel[Any]] = ()) -> None:
        """`channels`, if given, are the only ones it streams; any, if not."""
        self.settings = settings
        self.channels = tuple(channels)
        self.hub = Hub()
        self.slots = StreamSlots(settings.max_streams, settings.max_streams_per_user)
        self.listener = _listener(settings, self.hub)
        self.groups_of: Callable[[Any, Request], object] | None = None
        """The app's function that says a user's groups (`create_realtime_router(groups=...)`),
        called as each stream opens; None: the groups of the user's token."""
        self.verifies_tokens = False
        """Whether its settings verify tokens (see `jwt_key_problem`), as the app starts."""
        self.multiplexed_channels: dict[str, Channel[Any]] = {}
        """The channels the multiplexed route serves, by name, as the app starts."""
        self.multiplexed_guards: dict[str, str] = {}
        """The channels it serves that their stream routes' dependencies guard, by name, with
        what guards them, as the app starts (none when the app says who may read which)."""
        self._pool: asyncpg.Pool | None = None
        self._heartbeats: asyncio.Task[None] | None = None
        self._restore_signal_handlers: Callable[[], None] = lambda: None

    async def start(self) -> None:
        gc.set_threshold(self.settings.gc_threshold, *gc.get_threshold()[1:])
        if self.settings.gc_freeze_at_start:
            gc.freeze()
        self._pool = await asyncpg.create_pool(
            self.read_database_url.get_secret_value(),
            min_size=self.settings.pool_min_size,
            max_size=self.settings.pool_max_size,
        )
        try:
            await self.listener.start()
        except BaseException:
            await self._pool.close()
            raise
        self._heartbeats = asyncio.create_task(self._beat(), name="realtime-heartbeats")
        self._restore_signal_handlers = _on_shutdown_signal(self.hub.close_all)
        if self.settings.prometheus:
            from fastapi_pg_sse import prometheus  # the prometheus extra, checked by the settings

            prometheus.export(self)

    async def stop(self) -> None:
        if self.settings.prometheus:
            from fastapi_pg_sse import prometheus

            prometheus.withdraw(self)
        self._restore_signal_handlers()
        self.hub.close_all()
        if self._heartbeats is not None:
            self._heartbeats.cancel()
        await self.listener.stop()
        if self._pool is not None:
            # Politely, unless the network to PostgreSQL went silent: then nothing would answer
            # and shutdown would wait for ever. On the timeout, asyncpg terminates the pool.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pool.close(), POOL_CLOSE_SECONDS)

    async def _beat(self) -> None:
        """Keep every idle stream's silences under `heartbeat_seconds`, and drop the streams
        whose client stopped reading `write_timeout_seconds` ago (see `Hub.beat`)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds / 2)
            self.hub.beat(writes_stalled_before=loop.time() - self.settings.write_timeout_seconds)

    def metrics(self) -> RealtimeMetrics:
        counters = self.hub.counters
        return RealtimeMetrics(
            listener_connected=self.listener.connected,
            listener_reconnects=self.listener.reconnects,
            open_streams=counters.open_streams,
            events_delivered=counters.events_delivered,
            clients_dropped=counters.clients_dropped,
            foreign_notifications=self.listener.foreign_notifications,
            notifications_dropped=0,
        )

    @property
    def read_database_url(self) -> SecretStr:
        """Where streams read: `REALTIME_READ_DATABASE_URL` (poll mode), else the primary."""
        return self.settings.read_database_url or self.settings.database_url

    @property
    def pool(self) -> asyncpg.Pool:
        """The stream pool, on the read database: connections for opening streams and reading
        their replay."""
        assert self._pool is not None, "Realtime.start() was not called"
        return self._pool

    def stopped_tasks(self) -> list[str]:
        """The kernel's background tasks that have ended (none while it runs as it should)."""
        tasks = {"listener": self.listener.task, "heartbeats": self._heartbeats}
        return [name for name, task in tasks.items() if task is None or task.done()]

    def stream(
        self,
        channel_or_channels: Channel[Any] | Sequence[Channel[Any]],
        user_id: str,
        last_event_id: int | None = None,
        *,
        groups: Iterable[str] = (),
        expires_at: float | None = None,
        issued_at: float | None = None,
    ) -> "EventStream":
        """Stream `user_id`'s events, and those of `groups` and of everyone, on a channel or on
        several, after replaying those that follow `last_event_id`, all in one id order.

        A stream of several channels (a sequence, even of one) is the multiplexed route's: each
        frame says its channel (`event: <channel>.<type>`), and a `reset` lists the channels.
        The stream ends at `expires_at` (a Unix time), when the user's credentials expire, with
        an `expired` event; and when the user's streams are revoked (`disconnect`), with a
        `revoked` event. Credentials issued (`issued_at`, a Unix time) before the second of the
        user's last revocation are refused with a 401. A user id or a group name no stream can
        serve (`user_id_problem`), or no channel, is a `ValueError`.

        `groups` are the user's groups, given explicitly: the app's `groups` function (see
        `create_realtime_router`) is not called, nor is a token read.
        """
        members_of = frozenset(groups)
        if problem := groups_problem(members_of):
            raise ValueError(problem)

        async def of_groups() -> frozenset[str]:
            return members_of

        return self.open(
            channel_or_channels,
            user_id,
            last_event_id,
            groups=of_groups,
            expires_at=expires_at,
            issued_at=issued_at,
        )

    def open(
        self,
        channel_or_channels: Channel[Any] | Sequence[Channel[Any]],
        user_id: str,
        last_event_id: int | None,
        *,
        groups: Callable[[], Awaitable[frozenset[str]]],
        expires_at: float | None,
        issued_at: float | None,
    ) -> "EventStream":
        """`stream`, with the user's groups read by `groups` as the stream opens, before any
        event is read (an exception it raises answers the request): what the routes open."""
        multiplexed = not isinstance(channel_or_channels, Channel)
        listed = (
            [channel_or_channels]
            if isinstance(channel_or_channels, Channel)
            else channel_or_channels
        )
        channels = tuple({channel.name: channel for channel in listed}.values())
        if not channels:
            raise ValueError("a stream reads at least one channel")
        for channel in channels:
            if self.channels and channel not in self.channels:
                raise LookupError(f"channel {channel.name!r} is not one of this app's channels")
        if problem := user_id_problem(user_id):
            raise ValueError(f"the user id {problem}")
        subscriber = Subscriber(
            tuple(channel.name for channel in channels),
            user_id,
            self.settings.max_queued_bytes,
            multiplexed=multiplexed,
        )
        return EventStream(
            self._catch_up(subscriber, groups, last_event_id, issued_at),
            hub=self.hub,
            slots=self.slots,
            subscriber=subscriber,
            settings=self.settings,
            expires_at=expires_at,
            resume_after=lambda: (
                self.listener.newest_seen if last_event_id is None else last_event_id
            ),
        )

    async def disconnect(self, user_id: str, *, connection: Connection | None = None) -> None:
        """End `user_id`'s open streams in every process of the app, each with a `revoked`
        event, and refuse new ones whose token was issued before (see "Revocation" in the
        README). With `connection`, in the caller's transaction, once it commits."""
        if connection is not None:
            await connection.execute("SELECT fastapi_pg_sse.disconnect($1)", user_id)
            return
        async with self._primary() as primary:
            await primary.execute("SELECT fastapi_pg_sse.disconnect($1)", user_id)

    @contextlib.asynccontextmanager
    async def _primary(self) -> AsyncIterator[Connection]:
        """A connection that may write: the pool's, unless streams read from another database
        (perhaps a read-only replica), then one of its own to `database_url`."""
        assert self._pool is not None, "Realtime.start() was not called"
        timeout = self.settings.pool_timeout_seconds
        if self.settings.read_database_url is None:
            async with self._pool.acquire(timeout=timeout) as acquired:
                yield acquired
            return
        primary = await asyncpg.connect(
            self.settings.database_url.get_secret_value(), timeout=timeout
        )
        try:
            yield primary
        finally:
            await primary.close(timeout=timeout)

    async def _catch_up(
        self,
        subscriber: Subscriber,
        groups: Callable[[], Awaitable[frozenset[str]]],
        last_event_id: int | None,
        issued_at: float | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """The stream's frames up to its live events: the id it resumes after with the retry hint
        (`opening_frame`), a `reset` if it needs one, and the replay, a page at a time.

        The first is ready once the user's groups are read, the subscriber has joined the hub
        and the replay's first page is read: a database that fails before then fails the
        request.
        """
        subscriber.groups = await groups()
        self._check_groups(subscriber)
        reset = await self._join(subscriber, last_event_id)
        opening = opening_frame(subscriber.replayed_through, self.settings.retry_milliseconds)
        pages = self._replay(subscriber, issued_at)
        first_page = await anext(pages, b"")
        yield (
            opening + (b"" if reset is None else self._reset_frame(subscriber, reset)) + first_page
        )
        async for page in pages:
            yield page

    def _check_groups(self, subscriber: Subscriber) -> None:
        """Refuse a stream of more groups than `max_groups_per_stream`: a 500 (the groups are
        the app's to say), logged naming the setting."""
        limit = self.settings.max_groups_per_stream
        if len(subscriber.groups) <= limit:
            return
        logger.error(
            "realtime stream refused: its user is in %d groups, more than"
            " REALTIME_MAX_GROUPS_PER_STREAM (%d)",
            len(subscriber.groups),
            limit,
            extra={"user_id": subscriber.user_id},
        )
        raise HTTPException(
            status.HTTP_500_INTERNAL_SERVER_ERROR,
            "The user is in more groups than a stream may read (REALTIME_MAX_GROUPS_PER_STREAM).",
        )

    @staticmethod
    def _reset_frame(subscriber: Subscriber, event_id: int) -> bytes:
        """A `reset`; the multiplexed route's lists the channels to reload."""
        return reset_frame(event_id, subscriber.channels if subscriber.multiplexed else None)

    async def _join(self, subscriber: Subscriber, last_event_id: int | None) -> int | None:
        """Subscribe a stream from where it resumes; return the id of a `reset`, if it needs one.

        A stream resumes after `last_event_id`, or after the newest id given out. An id the table
        cannot vouch for (below the highest id gone before it for the user on any of its
        channels, pruned or of an earlier version, or above the newest id) gets a `reset`
        instead, and the whole stream goes on from the newest id. So does one whose snapshot
        (on a read database) stayed behind what the listener handed the hub: what lies between
        would reach it neither by replay nor live.
        """
        gone_through, newest, whole = await self._bounds(subscriber, last_event_id)
        subscriber.opened_through = newest
        resume_after = newest if last_event_id is None else last_event_id
        reset = None if whole and gone_through <= resume_after <= newest else newest
        subscriber.replayed_through = newest if reset is not None else resume_after
        self.hub.add(subscriber)
        return reset

    async def _bounds(
        self, subscriber: Subscriber, last_event_id: int | None
    ) -> tuple[int, int, bool]:
        """`resume_bounds`, and whether its snapshot reaches the listener's watermark. On a
        read database (a replica) the snapshot may be behind an id the primary gave, which a
        client saw through another process, or behind what the listener handed the hub already
        (the stream would miss what lies between): wait, up to `pool_timeout_seconds`, for the
        listener to see it, then for the pool's server to replay it, rather than reset the
        stream at once. No connection is held while waiting, and every wait ends by the
        deadline: a made-up id keeps only its own request waiting."""
        if self.settings.read_database_url is None:  # the primary: every id it gave is there
            gone_through, newest = await self._read_bounds(subscriber)
            return gone_through, newest, True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.pool_timeout_seconds
        while True:
            delivered = self.listener.delivered_through or 0  # read before the snapshot
            wanted = max(last_event_id or 0, delivered)
            gone_through, newest = await self._read_bounds(subscriber)
            remaining = deadline - loop.time()
            if newest >= wanted or remaining <= 0:
                return gone_through, newest, newest >= delivered
            if self.listener.newest_seen < wanted:  # then read once more, seen or not
                await self.listener.wait_to_see(wanted, remaining)
            else:  # the pool's server lags the listener's
                await asyncio.sleep(min(self.settings.poll_interval_seconds, remaining))

    async def _read_bounds(self, subscriber: Subscriber) -> tuple[int, int]:
        """`resume_bounds`, on a pooled connection held only for the query."""
        assert self._pool is not None, "Realtime.start() was not called"
        timeout = self.settings.pool_timeout_seconds  # also what giving the connection back takes
        async with self._pool.acquire(timeout=timeout) as connection:
            return await resume_bounds(
                connection, subscriber.channels, subscriber.user_id, timeout=timeout
            )

    async def _replay(
        self, subscriber: Subscriber, issued_at: float | None
    ) -> AsyncIterator[bytes]:
        """Frames of the subscriber's events after where it resumes, a page at a time.

        A page holds at most `max_queued_bytes` of payload (or one event), the bound of live
        delivery; the next is read once the client has taken it. A connection is held only while
        a page is read. Live events queued meanwhile that the replay sent are dropped. Each page
        is read in one snapshot with how far back the user may resume: events pruned since the
        stream opened end the replay with a `reset`, never with a gap.
        """
        span = start_span(f"replay {subscriber.name}", {"fastapi_pg_sse.channel": subscriber.name})
        try:
            async for page in self._replay_pages(subscriber, issued_at, span):
                yield page
        finally:
            span.end()

    async def _replay_pages(
        self, subscriber: Subscriber, issued_at: float | None, span: Span
    ) -> AsyncIterator[bytes]:
        assert self._pool is not None, "Realtime.start() was not called"
        timeout = self.settings.pool_timeout_seconds
        audiences = subscriber.audiences()
        more, first, replayed = True, True, 0
        while more and not subscriber.closed:
            async with (
                self._pool.acquire(timeout=timeout) as connection,
                connection.transaction(isolation="repeatable_read", readonly=True),
            ):
                gone_through, newest = await resume_bounds(
                    connection, subscriber.channels, subscriber.user_id, timeout=timeout
                )
                page = None  # pruned since it resumed: what it would replay may be gone
                if first:
                    first = False
                    await self._check_revocation(connection, subscriber.user_id, issued_at)
                if gone_through <= subscriber.replayed_through:
                    page = await fetch_audience_events(
                        connection,
                        audiences,
                        subscriber.replayed_through,
                        limit=self.settings.replay_page_size,
                        max_bytes=self.settings.max_queued_bytes,
                        timeout=timeout,
                    )
            if page is None:
                subscriber.replayed_through = newest
                yield self._reset_frame(subscriber, newest)
                return
            if page.events:
                if self.hub.stats is not None:
                    for event in page.events:
                        self.hub.stats.of(event.channel).events_replayed += 1
                subscriber.replayed_through = page.events[-1].id
                replayed += len(page.events)
                span.set_attribute("fastapi_pg_sse.events", replayed)
                multiplexed = subscriber.multiplexed
                yield b"".join(
                    event_frame(e.id, wire_type(e.channel, e.type, multiplexed=multiplexed), e.data)
                    for e in page.events
                )
            more = page.more

    async def _check_revocation(
        self, connection: Connection, user_id: str, issued_at: float | None
    ) -> None:
        """Read the user's newest revocation once the stream has joined the hub: refuse a token
        issued before it (`TokenRevoked`, a 401), and end the user's streams opened before it
        (one committed after the stream read where it opens, whose notification the listener
        handled before the stream joined, would end none otherwise).

        Compared by whole seconds, as `iat` counts them: a token issued in the second of the
        revocation is accepted, so that signing in again at once works."""
        timeout = self.settings.pool_timeout_seconds
        revocation = (await latest_revocations(connection, [user_id], timeout=timeout)).get(user_id)
        if revocation is None:
            return
        if issued_at is not None and math.floor(issued_at) < math.floor(revocation.committed_at):
            raise TokenRevoked
        self.hub.revoke(user_id, revocation.id)


class EventStream(StreamingResponse):
    """An SSE response over pre-encoded frames that always leaves the hub when it ends.

    It is a route's `response_class`, for the OpenAPI document. It is not a subclass of
    `fastapi.sse.EventSourceResponse`: FastAPI takes a route of that class for one that `yield`s
    items, and would encode each item again for every recipient.

    A stream beyond `max_streams_per_user` or `max_streams` is answered 429 with `Retry-After`,
    before any database work. It reads where the stream resumes before it answers: with the
    database unreachable (`CONNECTION_ERRORS`), the answer is a 200 that ends at once with the
    retry hint and the id to resume after (`outage_frame`), so that an `EventSource` reconnects
    on its own and resumes from there: the `Last-Event-ID` sent, else the newest id the
    listener saw before the outage. Once streaming, a lost database ends the stream, and the
    client resumes with `Last-Event-ID`. A stream that reaches `expires_at` (a Unix time) ends
    with an `expired` event.

    When the server ends a stream (shutdown, or a client too far behind), a client that is
    reading receives the end of the response. One that stopped reading would keep the response
    waiting to write, and with it the server's shutdown: after a grace period it is cut off. So
    is one that took longer than `write_timeout_seconds` to accept a write (a page of replay, a
    chunk of live events, a heartbeat).
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        catch_up: AsyncGenerator[bytes, None],
        status_code: int = 200,  # FastAPI's OpenAPI reads the default status from here
        *,
        hub: Hub,
        slots: StreamSlots,
        subscriber: Subscriber,
        settings: RealtimeSettings,
        resume_after: Callable[[], int],
        expires_at: float | None = None,
    ) -> None:
        super().__init__(catch_up, status_code, STREAM_HEADERS)
        self._resume_after = resume_after
        self._catch_up = catch_up
        self._hub = hub
        self._slots = slots
        self._subscriber = subscriber
        self._settings = settings
        self._expires_at = expires_at

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        subscriber = self._subscriber
        if (refusal := self._slots.refusal(subscriber.user_id)) is not None:
            too_many = _refused(self._settings, status.HTTP_429_TOO_MANY_REQUESTS, refusal)
            await too_many(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        timers: list[asyncio.TimerHandle] = []
        if self._expires_at is not None:
            delay = self._expires_at - time.time()
            timers.append(loop.call_at(loop.time() + delay, subscriber.expire))
        grace = self._settings.stalled_client_grace_seconds
        subscriber.on_close = lambda: timers.append(
            loop.call_later(grace, _abort_connection, receive)
        )
        streaming = watching = None
        # Taken with no wait since the check: however many streams open at once, none passes
        # the check before the ones before it are counted.
        self._slots.take(subscriber.user_id)
        span = start_span(f"stream {subscriber.name}", {"fastapi_pg_sse.channel": subscriber.name})
        try:
            try:
                with current_span(span):  # the replay's span is its child
                    first = await anext(self._catch_up)
            except CONNECTION_ERRORS as error:
                logger.warning(
                    "realtime stream ended at once: database unavailable, no pooled connection"
                    " free in time, or the app's groups function could not connect (%r); the"
                    " client reconnects after the retry hint",
                    error,
                )
                await self._end_at_once(send)
                return
            except TokenRevoked:
                await _revoked_token(self._settings)(scope, receive, send)
                return
            # Written from a task of its own, whose coroutine stack is two frames deep rather
            # than the whole middleware stack's: waking it for each chunk is that much cheaper.
            streaming = loop.create_task(self._stream(first, send))
            watching = loop.create_task(self._close_on_disconnect(receive))
            await streaming
        finally:
            subscriber.close()
            self._hub.remove(subscriber)
            self._slots.give_back(subscriber.user_id)
            for task in (streaming, watching):
                if task is not None:
                    task.cancel()
            for timer in timers:
                timer.cancel()
            if streaming is None:  # else the streaming task closed it
                await self._catch_up.aclose()
            span.set_attribute("fastapi_pg_sse.end", _end_reason(subscriber))
            span.end()

    async def _stream(self, first: bytes, send: Send) -> None:
        """Send the response: the catch-up, then each chunk of live frames, until it ends.

        Each write of the body is stamped with when it began (`write_started_at`), for the hub's
        beat to drop the stream if it does not complete in time: a stamp per write, not a timer.
        """
        subscriber = self._subscriber
        clock = asyncio.get_running_loop().time
        # From the response's start: a server may wait to send it until the client has read
        # what it answered before on the connection (a pipelined request).
        subscriber.write_started_at = clock()
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await self._write(send, first, clock)
        try:
            async for page in self._catch_up:
                if subscriber.closed:
                    break
                await self._write(send, page, clock)
        except CONNECTION_ERRORS as error:
            # The client reconnects, and resumes with its Last-Event-ID.
            logger.warning("realtime stream ended: database unavailable (%r)", error)
            subscriber.close()
        finally:
            await self._catch_up.aclose()
        while (chunk := await subscriber.next_chunk()) is not None:
            await self._write(send, chunk or HEARTBEAT, clock)
        # Shut down, dropped too far behind, disconnected or expired: the client reconnects.
        # Revoked: it must not, with the same token.
        final = b""
        if subscriber.revoked or subscriber.expired:
            final = revoked_frame() if subscriber.revoked else expired_frame()
        await send({"type": "http.response.body", "body": final, "more_body": False})

    async def _end_at_once(self, send: Send) -> None:
        """Answer a stream the database cannot serve now: `outage_frame`, and the end."""
        frame = outage_frame(self._resume_after(), self._settings.retry_milliseconds)
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await send({"type": "http.response.body", "body": frame, "more_body": False})

    async def _write(self, send: Send, body: bytes, clock: Callable[[], float]) -> None:
        """Send a part of the body, stamped with when it began for the hub's beat, which drops
        the stream if the client has not accepted it `write_timeout_seconds` later."""
        self._subscriber.write_started_at = clock()
        await send({"type": "http.response.body", "body": body, "more_body": True})
        self._subscriber.write_started_at = NOT_WRITING

    async def _close_on_disconnect(self, receive: Receive) -> None:
        """Close the subscriber, and so end the stream, when the client goes away."""
        while (await receive())["type"] != "http.disconnect":
            pass
        self._subscriber.close()


def _listener(settings: RealtimeSettings, hub: Hub) -> Listener:
    """The listener of the settings' read mode."""
    if settings.read_mode == "notify":
        return Listener(
            settings.database_url,
            hub,
            keepalive_seconds=settings.keepalive_seconds,
            max_backoff_seconds=settings.reconnect_max_backoff_seconds,
            page_size=settings.replay_page_size,
            page_bytes=settings.max_queued_bytes,
        )
    return PollListener(
        settings.database_url,
        hub,
        read_database_url=settings.read_database_url,
        poll_interval_seconds=settings.poll_interval_seconds,
        keepalive_seconds=settings.keepalive_seconds,
        max_backoff_seconds=settings.reconnect_max_backoff_seconds,
        page_size=settings.replay_page_size,
        page_bytes=settings.max_queued_bytes,
    )


def groups_problem(groups: Iterable[str]) -> str | None:
    """Why one of `groups` cannot name a group a stream reads (it is named as a user id is, see
    `user_id_problem`), or None if each can."""
    for group in groups:
        if not isinstance(group, str):
            return f"a group name must be a string, got {type(group).__name__}"
        if problem := user_id_problem(group):
            return f"the group name {group[:64]!r} {problem}"
    return None


def is_event_stream(response_class: object) -> bool:
    """Whether a route answering with `response_class` (a route's, perhaps FastAPI's default
    placeholder) is a stream route: `EventStream`, or a subclass."""
    if isinstance(response_class, DefaultPlaceholder):
        response_class = response_class.value
    return isinstance(response_class, type) and issubclass(response_class, EventStream)


def _end_reason(subscriber: Subscriber) -> str:
    """Why a stream ended, for its span."""
    if subscriber.revoked:
        return "revoked"
    if subscriber.expired:
        return "expired"
    return "overflowed" if subscriber.overflowed else "closed"


def _revoked_token(settings: RealtimeSettings) -> JSONResponse:
    """401: the token was issued before its user's streams were revoked."""
    return JSONResponse(
        {"detail": "The token was revoked; sign in again."},
        status.HTTP_401_UNAUTHORIZED,
        headers={
            "WWW-Authenticate": f'{settings.auth_scheme} realm="realtime", error="invalid_token",'
            ' error_description="the token was revoked"',
            **REFUSAL_HEADERS,
        },
    )


def _refused(settings: RealtimeSettings, status_code: int, detail: str) -> JSONResponse:
    """A refusal telling the client to come back after the browser's reconnection delay."""
    return JSONResponse(
        {"detail": detail},
        status_code,
        headers={
            "Retry-After": str(math.ceil(settings.retry_milliseconds / 1000)),
            **REFUSAL_HEADERS,
        },
    )


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


async def get_realtime(request: Request) -> Realtime:
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
