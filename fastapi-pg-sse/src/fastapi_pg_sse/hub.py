"""Fan-out: hands each event, encoded once, to the open streams of its target user."""

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from fastapi_pg_sse.channel import Event
from fastapi_pg_sse.frames import event_frame

logger = logging.getLogger(__name__)


class Subscriber:
    """One open stream, with a queue of encoded frames bounded in bytes.

    Fan-out never waits for a reader: a subscriber whose queue would exceed its bound is closed
    instead, and its client reconnects with `Last-Event-ID` to replay what it missed. A single
    frame larger than the bound is still accepted into an empty queue.
    """

    def __init__(self, channel: str, user_id: str, max_queued_bytes: int) -> None:
        self.channel = channel
        self.user_id = user_id
        self.replayed_through = 0
        """Frames with an id at or below this one were already sent by the replay."""
        self.overflowed = False
        self._frames: deque[tuple[int, bytes]] = deque()
        self._queued_bytes = 0
        self._max_queued_bytes = max_queued_bytes
        self._ready = asyncio.Event()
        self._closed = asyncio.Event()

    def offer(self, event_id: int, frame: bytes) -> bool:
        """Queue a frame; return False, closing the subscriber, if its queue is full."""
        if self._closed.is_set():
            return True
        if self._frames and self._queued_bytes + len(frame) > self._max_queued_bytes:
            self.overflowed = True
            self.close()
            return False
        self._frames.append((event_id, frame))
        self._queued_bytes += len(frame)
        self._ready.set()
        return True

    def close(self) -> None:
        self._closed.set()
        self._ready.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def next_chunk(self, idle_timeout: float) -> bytes | None:
        """Every frame queued since the last call, as one chunk to write at once.

        Returns `b""` after `idle_timeout` seconds without frames, and None once closed.
        """
        while not self._closed.is_set():
            if self._frames:
                frames = [
                    frame for event_id, frame in self._frames if event_id > self.replayed_through
                ]
                self._frames.clear()
                self._queued_bytes = 0
                if frames:
                    return b"".join(frames)
            self._ready.clear()
            try:
                async with asyncio.timeout(idle_timeout):
                    await self._ready.wait()
            except TimeoutError:
                return b""
        return None


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
        self._audiences: dict[tuple[str, str], _Audience] = {}
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

    def remove(self, subscriber: Subscriber) -> None:
        key = (subscriber.channel, subscriber.user_id)
        audience = self._audiences.get(key)
        if audience is None or subscriber not in audience.subscribers:
            return
        audience.subscribers.discard(subscriber)
        if not audience.subscribers:
            del self._audiences[key]
        self.counters.open_streams -= 1

    def delivered_through(self, channel: str, user_id: str) -> int | None:
        """The last event delivered to the user's open streams; None if they have none."""
        audience = self._audiences.get((channel, user_id))
        return None if audience is None else audience.delivered_through

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
        for subscriber in tuple(audience.subscribers):
            if subscriber.offer(event.id, frame):
                self.counters.events_delivered += 1
            else:
                self.remove(subscriber)
                self.counters.clients_dropped += 1
                logger.warning(
                    "realtime stream dropped: queue full",
                    extra={"channel": channel, "user_id": event.target_user_id},
                )

    def close_all(self) -> None:
        """End every open stream, and any opened from now on, for shutdown."""
        self._closing = True
        for audience in tuple(self._audiences.values()):
            for subscriber in tuple(audience.subscribers):
                subscriber.close()
                self.remove(subscriber)
