"""Fan-out: hands each event, encoded once, to the open streams of its target user."""

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from fastapi_pg_sse.channel import Event
from fastapi_pg_sse.channel_stats import ChannelStats
from fastapi_pg_sse.frames import event_frame
from fastapi_pg_sse.tracing import record_delivery

logger = logging.getLogger(__name__)

NOT_WRITING = math.inf
"""`Subscriber.write_started_at` while no write to the client is pending."""


class Subscriber:
    """One open stream, with a queue of encoded frames bounded in bytes.

    Fan-out never waits for a reader: a subscriber whose queue would exceed its bound is closed
    instead, and its client reconnects with `Last-Event-ID` to replay what it missed. A single
    frame larger than the bound is still accepted into an empty queue.

    It is on the path of every frame, so it allocates no object the garbage collector tracks per
    frame (ids and frames wait in two lists of ints and bytes) and arms no timer per wait: the
    hub's `beat` asks idle streams for a heartbeat, and drops those whose client stopped reading
    (a write pending for too long, as `write_started_at` tells); the stream's owner closes it on
    expiry.
    """

    __slots__ = (
        "_closed",
        "_frames",
        "_heartbeat_due",
        "_ids",
        "_loop",
        "_max_queued_bytes",
        "_queued_bytes",
        "_sent_since_beat",
        "_waiter",
        "channel",
        "expired",
        "on_close",
        "opened_through",
        "overflowed",
        "replayed_through",
        "revoked",
        "user_id",
        "write_started_at",
    )

    def __init__(self, channel: str, user_id: str, max_queued_bytes: int) -> None:
        self.channel = channel
        self.user_id = user_id
        self.replayed_through = 0
        """Frames with an id at or below this one were already sent by the replay."""
        self.opened_through = 0
        """The newest id given out as the stream opened: a revocation of its user with a higher
        id, committed after, ends it."""
        self.overflowed = False
        self.expired = False
        self.revoked = False
        self.on_close: Callable[[], object] | None = None
        """Called once when the subscriber closes, whoever closes it."""
        self.write_started_at = NOT_WRITING
        """When (the event loop's time) the write to the client pending now began, set by the
        stream's owner around each write; `NOT_WRITING` between writes."""
        self._ids: list[int] = []
        self._frames: list[bytes] = []
        self._queued_bytes = 0
        self._max_queued_bytes = max_queued_bytes
        self._heartbeat_due = False
        self._sent_since_beat = False
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def offer(self, event_id: int, frame: bytes) -> bool:
        """Queue a frame; return False, closing the subscriber, if its queue is full."""
        if self._closed:
            return True
        if self._frames and self._queued_bytes + len(frame) > self._max_queued_bytes:
            self.overflowed = True
            self.close()
            return False
        self._ids.append(event_id)
        self._frames.append(frame)
        self._queued_bytes += len(frame)
        self._wake()
        return True

    def beat(self) -> None:
        """Ask for a heartbeat if nothing was sent since the previous beat (see `Hub.beat`)."""
        if self._sent_since_beat:
            self._sent_since_beat = False
        else:
            self._heartbeat_due = True
            self._wake()

    def expire(self) -> None:
        """End the stream because its credentials expired."""
        self.expired = True
        self.close()

    def revoke(self) -> None:
        """End the stream because the application revoked its user's streams."""
        self.revoked = True
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake()
        if self.on_close is not None:
            self.on_close()

    def take(self) -> bytes | None:
        """Every frame queued since the last call, as one chunk to write at once (`b""` when
        there is none), without waiting; None once closed."""
        if self._closed:
            return None
        ids, frames = self._ids, self._frames
        if not frames:
            return b""
        if ids[0] > self.replayed_through:
            chunk = b"".join(frames)
        else:  # live frames the replay already sent
            after = self.replayed_through
            chunk = b"".join(frame for id_, frame in zip(ids, frames, strict=True) if id_ > after)
        ids.clear()
        frames.clear()
        self._queued_bytes = 0
        return chunk

    async def next_chunk(self) -> bytes | None:
        """The frames queued since the last call, as one chunk; `b""` when a heartbeat is due;
        None once closed."""
        while True:
            chunk = self.take()
            if chunk is None or chunk:
                self._sent_since_beat = True
                return chunk
            if self._heartbeat_due:
                self._heartbeat_due = False
                self._sent_since_beat = True
                return b""
            if self._loop is None:
                self._loop = asyncio.get_running_loop()  # once: each call costs a getpid()
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


@dataclass
class HubCounters:
    open_streams: int = 0
    events_delivered: int = 0
    clients_dropped: int = 0


@dataclass
class _Audience:
    """The open streams of one user on one channel, and the last event handed to them."""

    subscribers: set[Subscriber]
    delivered_through: int


class Hub:
    """Routes events by (channel, user id) with one dictionary look-up per event.

    For each user with open streams it keeps the id of the last event delivered to them: the
    listener reads that user's events after it.
    """

    def __init__(self) -> None:
        self.counters = HubCounters()
        self.stats: ChannelStats | None = None
        """Counts per channel, kept while an exporter is enabled (see `Realtime`)."""
        self._audiences: dict[tuple[str, str], _Audience] = {}
        self._streams_by_user: dict[str, int] = {}
        self._closing = False

    def add(self, subscriber: Subscriber, *, delivered_through: int) -> None:
        """Subscribe a stream; `delivered_through` is its user's newest event id, read as it
        opened: the listener delivers what follows, unless the user already had open streams."""
        if self._closing:
            subscriber.close()  # a stream opened after shutdown began ends at once
            return
        key = (subscriber.channel, subscriber.user_id)
        audience = self._audiences.setdefault(key, _Audience(set(), delivered_through))
        audience.subscribers.add(subscriber)
        self.counters.open_streams += 1
        user_id = subscriber.user_id
        self._streams_by_user[user_id] = self._streams_by_user.get(user_id, 0) + 1

    def remove(self, subscriber: Subscriber) -> None:
        key = (subscriber.channel, subscriber.user_id)
        audience = self._audiences.get(key)
        if audience is None or subscriber not in audience.subscribers:
            return
        audience.subscribers.discard(subscriber)
        if not audience.subscribers:
            del self._audiences[key]
        self.counters.open_streams -= 1
        if left := self._streams_by_user[subscriber.user_id] - 1:
            self._streams_by_user[subscriber.user_id] = left
        else:
            del self._streams_by_user[subscriber.user_id]

    def users(self) -> set[str]:
        """The users with open streams here, on any channel."""
        return set(self._streams_by_user)

    def has_streams(self, user_id: str) -> bool:
        return user_id in self._streams_by_user

    def revoke(self, user_id: str, revocation_id: int) -> int:
        """End, with a `revoked` event, the user's streams that opened before the revocation
        whose id is `revocation_id` committed; return how many."""
        ended = [
            subscriber
            for (_, audience_user), audience in self._audiences.items()
            if audience_user == user_id
            for subscriber in audience.subscribers
            if subscriber.opened_through < revocation_id
        ]
        for subscriber in ended:
            subscriber.revoke()
            self.remove(subscriber)
        return len(ended)

    def delivered_through(self, channel: str, user_id: str) -> int | None:
        """The last event delivered to the user's open streams; None if they have none."""
        audience = self._audiences.get((channel, user_id))
        return None if audience is None else audience.delivered_through

    def open_streams(self) -> dict[str, int]:
        """The number of open streams of each channel that has any."""
        counts: dict[str, int] = {}
        for (name, _), audience in tuple(self._audiences.items()):  # a scrape may run in a thread
            counts[name] = counts.get(name, 0) + len(audience.subscribers)
        return counts

    def channels(self) -> set[str]:
        """The channels with open streams."""
        return {name for name, _ in self._audiences}

    def positions(self, channel: str) -> dict[str, int]:
        """`delivered_through` of every user with open streams on `channel`."""
        return {
            user_id: audience.delivered_through
            for (name, user_id), audience in self._audiences.items()
            if name == channel
        }

    def publish(self, channel: str, event: Event) -> None:
        """Hand a committed event to its user's open streams, if it is newer than their last."""
        audience = self._audiences.get((channel, event.target_user_id))
        if audience is None or event.id <= audience.delivered_through:
            return
        audience.delivered_through = event.id
        frame = event_frame(event.id, event.type, event.data)
        overflowed = [
            subscriber
            for subscriber in audience.subscribers
            if not subscriber.offer(event.id, frame)
        ]
        delivered = len(audience.subscribers) - len(overflowed)
        self.counters.events_delivered += delivered
        if self.stats is not None and delivered:
            counts = self.stats.of(channel)
            counts.events_delivered += delivered
            counts.observe_delay(event.committed_seconds_ago)
        if event.traceparent is not None:
            record_delivery(
                channel, event.id, event.type, event.traceparent, len(audience.subscribers)
            )
        for subscriber in overflowed:
            self._drop(subscriber, "queue full")

    def beat(self, *, writes_stalled_before: float) -> None:
        """Ask every stream that sent nothing since the previous beat for a heartbeat, and drop
        every stream whose client has not accepted a write begun before `writes_stalled_before`
        (an event loop time): that client stopped reading.

        Run every half heartbeat period, it keeps every stream's silences under one period, and
        notices a stalled write within half a period after its timeout, with one timer for the
        process instead of one per stream or per write.
        """
        stalled: list[Subscriber] = []
        for audience in self._audiences.values():
            for subscriber in audience.subscribers:
                if subscriber.write_started_at < writes_stalled_before:
                    stalled.append(subscriber)
                else:
                    subscriber.beat()
        for subscriber in stalled:
            self._drop(subscriber, "client stopped reading")

    def _drop(self, subscriber: Subscriber, reason: str) -> None:
        """Close a stream whose client cannot keep up, counted and logged; it recovers by
        replay when it reconnects."""
        subscriber.close()
        self.remove(subscriber)
        self.counters.clients_dropped += 1
        if self.stats is not None:
            self.stats.of(subscriber.channel).clients_dropped += 1
        logger.warning(
            "realtime stream dropped: %s",
            reason,
            extra={"channel": subscriber.channel, "user_id": subscriber.user_id},
        )

    def close_all(self) -> None:
        """End every open stream, and any opened from now on, for shutdown."""
        self._closing = True
        for audience in tuple(self._audiences.values()):
            for subscriber in tuple(audience.subscribers):
                subscriber.close()
                self.remove(subscriber)
