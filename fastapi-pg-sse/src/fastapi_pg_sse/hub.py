"""Fan-out: hands each event, encoded once per wire format, to the open streams of its audience
(its user, its group, or everyone on its channel)."""

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from fastapi_pg_sse.channel import Audience, Event, audiences
from fastapi_pg_sse.channel_stats import ChannelStats
from fastapi_pg_sse.frames import event_frame
from fastapi_pg_sse.tracing import record_delivery

logger = logging.getLogger(__name__)

NOT_WRITING = math.inf
"""`Subscriber.write_started_at` while no write to the client is pending."""
HEARTBEATS_AT_ONCE = 256
"""Idle streams a beat wakes per turn of the event loop. Woken all at once, ten thousand idle
streams would each write their heartbeat before the loop reads anything else, and the events
that arrive meanwhile would wait behind the whole burst (a p99 of 150 ms instead of 10 at
10,000 streams): in turns, they wait behind at most this many writes."""


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
        "_offered_through",
        "_queued_bytes",
        "_sent_since_beat",
        "_waiter",
        "channels",
        "expired",
        "groups",
        "multiplexed",
        "on_close",
        "opened_through",
        "overflowed",
        "replayed_through",
        "revoked",
        "user_id",
        "write_started_at",
    )

    def __init__(
        self,
        channels: tuple[str, ...],
        user_id: str,
        max_queued_bytes: int,
        *,
        groups: frozenset[str] = frozenset(),
        multiplexed: bool = False,
    ) -> None:
        self.channels = channels
        """The channels it reads, each for its user, its groups and everyone."""
        self.user_id = user_id
        self.groups = groups
        """The groups its user was a member of as it opened (or resumed): kept until it ends."""
        self.multiplexed = multiplexed
        """Whether its frames name their channel (`event: <channel>.<type>`), as those of the
        multiplexed route do."""
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
        self._offered_through = 0
        """The id of the last frame queued: ids come in increasing order, so one at or below it
        (a listener that read on from a lower watermark, its read database behind) is a
        duplicate."""
        self._heartbeat_due = False
        self._sent_since_beat = False
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def name(self) -> str:
        """Its channels, for logs and spans."""
        return ",".join(self.channels)

    def audiences(self) -> list[Audience]:
        """The audiences whose events it carries."""
        return audiences(self.channels, self.user_id, self.groups)

    def rewind(self, through: int) -> None:
        """Take ids above `through` again: the database now gives them to other events."""
        self._offered_through = min(self._offered_through, through)
        self.replayed_through = min(self.replayed_through, through)

    def offer(self, event_id: int, frame: bytes) -> bool:
        """Queue a frame; return whether it did. A frame the replay already sent (a listener
        behind the point the stream resumes from hands it over late) is skipped, and so is one
        for a closed stream, and one at or below an id already queued; one that would overflow
        the queue closes the subscriber (`overflowed`)."""
        if self._closed or event_id <= self.replayed_through or event_id <= self._offered_through:
            return False
        if self._frames and self._queued_bytes + len(frame) > self._max_queued_bytes:
            self.overflowed = True
            self.close()
            return False
        self._offered_through = event_id
        self._ids.append(event_id)
        self._frames.append(frame)
        self._queued_bytes += len(frame)
        self._wake()
        return True

    def beat(self) -> bool:
        """Ask for a heartbeat if nothing was sent since the previous beat (see `Hub.beat`);
        return whether it did, for the caller to `wake` the stream."""
        if self._sent_since_beat:
            self._sent_since_beat = False
            return False
        self._heartbeat_due = True
        return True

    def wake(self) -> None:
        """Let the stream's owner send what is due (a heartbeat asked for by `beat`)."""
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


def _wake_in_turns(subscribers: list[Subscriber], start: int) -> None:
    """Wake `HEARTBEATS_AT_ONCE` of `subscribers` from `start`, and the next ones on the event
    loop's next turn (after it has polled for I/O), until every one is woken."""
    end = start + HEARTBEATS_AT_ONCE
    for subscriber in subscribers[start:end]:
        subscriber.wake()
    if end < len(subscribers):
        asyncio.get_running_loop().call_soon(_wake_in_turns, subscribers, end)


@dataclass
class HubCounters:
    open_streams: int = 0
    events_delivered: int = 0
    clients_dropped: int = 0


class Hub:
    """Routes events by audience (channel, user, group) with one dictionary look-up per event.

    A stream is in one audience per channel for its user, one per group, and one for everyone on
    the channel; it gets each event once, since an event has one audience. Which events to
    publish, and in which order, is the listener's: it publishes every event, in id order.
    """

    def __init__(self) -> None:
        self.counters = HubCounters()
        self.stats: ChannelStats | None = None
        """Counts per channel, kept while an exporter is enabled (see `Realtime`)."""
        self.joins = 0
        """How many streams joined: the listener, which skips reading while no stream is open
        here, tells by it whether one joined meanwhile."""
        self._audiences: dict[Audience, set[Subscriber]] = {}
        self._streams_by_user: dict[str, set[Subscriber]] = {}
        self._streams_by_channel: dict[str, int] = {}
        self._closing = False

    def add(self, subscriber: Subscriber) -> None:
        """Subscribe a stream: it gets every event of its audiences published from now on."""
        if self._closing:
            subscriber.close()  # a stream opened after shutdown began ends at once
            return
        for audience in subscriber.audiences():
            self._audiences.setdefault(audience, set()).add(subscriber)
        self.joins += 1
        for channel in subscriber.channels:
            self._streams_by_channel[channel] = self._streams_by_channel.get(channel, 0) + 1
        self._streams_by_user.setdefault(subscriber.user_id, set()).add(subscriber)
        self.counters.open_streams += 1

    def remove(self, subscriber: Subscriber) -> None:
        streams = self._streams_by_user.get(subscriber.user_id)
        if streams is None or subscriber not in streams:
            return
        streams.discard(subscriber)
        if not streams:
            del self._streams_by_user[subscriber.user_id]
        for audience in subscriber.audiences():
            subscribers = self._audiences[audience]
            subscribers.discard(subscriber)
            if not subscribers:
                del self._audiences[audience]
        for channel in subscriber.channels:
            if left := self._streams_by_channel[channel] - 1:
                self._streams_by_channel[channel] = left
            else:
                del self._streams_by_channel[channel]
        self.counters.open_streams -= 1

    def has_streams(self, user_id: str) -> bool:
        return user_id in self._streams_by_user

    def revoke(self, user_id: str, revocation_id: int) -> int:
        """End, with a `revoked` event, the user's streams that opened before the revocation
        whose id is `revocation_id` committed; return how many."""
        ended = [
            subscriber
            for subscriber in self._streams_by_user.get(user_id, ())
            if subscriber.opened_through < revocation_id
        ]
        for subscriber in ended:
            subscriber.revoke()
            self.remove(subscriber)
        return len(ended)

    def rewind(self, through: int) -> None:
        """Let every open stream take ids above `through` again (see `Subscriber.rewind`)."""
        for streams in self._streams_by_user.values():
            for subscriber in streams:
                subscriber.rewind(through)

    def open_streams(self) -> dict[str, int]:
        """The number of open streams of each channel that has any (a stream of several
        channels counts in each)."""
        return dict(self._streams_by_channel)  # a copy: a scrape may run in a thread

    def publish(self, event: Event) -> None:
        """Hand a committed event to the open streams of its audience, encoded once for the
        per-channel streams and once for the multiplexed ones."""
        subscribers = self._audiences.get(event.audience)
        if not subscribers:
            return
        frames: dict[bool, bytes] = {}
        overflowed: list[Subscriber] = []
        delivered = 0
        for subscriber in subscribers:
            multiplexed = subscriber.multiplexed
            frame = frames.get(multiplexed)
            if frame is None:
                event_type = f"{event.channel}.{event.type}" if multiplexed else event.type
                frame = frames[multiplexed] = event_frame(event.id, event_type, event.data)
            if subscriber.offer(event.id, frame):
                delivered += 1
            elif subscriber.overflowed:
                overflowed.append(subscriber)
        self.counters.events_delivered += delivered
        if self.stats is not None and delivered:
            counts = self.stats.of(event.channel)
            counts.events_delivered += delivered
            counts.observe_delay(event.committed_seconds_ago)
        if event.traceparent is not None:
            record_delivery(event.channel, event.id, event.type, event.traceparent, delivered)
        for subscriber in overflowed:
            self._drop(subscriber, "queue full")

    def beat(self, *, writes_stalled_before: float) -> None:
        """Ask every stream that sent nothing since the previous beat for a heartbeat, and drop
        every stream whose client has not accepted a write begun before `writes_stalled_before`
        (an event loop time): that client stopped reading.

        Run every half heartbeat period, it keeps every stream's silences under one period, and
        notices a stalled write within half a period after its timeout, with one timer for the
        process instead of one per stream or per write. The streams due a heartbeat are woken
        `HEARTBEATS_AT_ONCE` per turn of the event loop.
        """
        stalled: list[Subscriber] = []
        due: list[Subscriber] = []
        for streams in self._streams_by_user.values():
            for subscriber in streams:
                if subscriber.write_started_at < writes_stalled_before:
                    stalled.append(subscriber)
                elif subscriber.beat():
                    due.append(subscriber)
        for subscriber in stalled:
            self._drop(subscriber, "client stopped reading")
        _wake_in_turns(due, 0)

    def _drop(self, subscriber: Subscriber, reason: str) -> None:
        """Close a stream whose client cannot keep up, counted and logged; it recovers by
        replay when it reconnects."""
        subscriber.close()
        self.remove(subscriber)
        self.counters.clients_dropped += 1
        if self.stats is not None:
            for channel in subscriber.channels:
                self.stats.of(channel).clients_dropped += 1
        logger.warning(
            "realtime stream dropped: %s",
            reason,
            extra={"channel": subscriber.name, "user_id": subscriber.user_id},
        )

    def close_all(self) -> None:
        """End every open stream, and any opened from now on, for shutdown."""
        self._closing = True
        for streams in tuple(self._streams_by_user.values()):
            for subscriber in tuple(streams):
                subscriber.close()
                self.remove(subscriber)
