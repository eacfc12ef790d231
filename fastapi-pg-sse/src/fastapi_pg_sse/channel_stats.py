"""What the kernel counts per channel for an exporter (see `fastapi_pg_sse.prometheus`), kept
only while one is enabled: plain numbers updated on the delivery path, read at scrape time.

Labels are channel names, never user ids, and their number is bounded: a kernel that declares
its channels counts only those (it streams no other); one that streams any channel gives its own
label to the first `MAX_UNDECLARED_CHANNELS` names it meets, and counts the rest together under
`OTHER_CHANNELS`, a name no channel can have.
"""

import bisect
from dataclasses import dataclass, field

DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds, in seconds, of the buckets of the commit-to-delivery delay (prometheus-client's
default buckets); the last bucket, +Inf, holds the rest."""
MAX_UNDECLARED_CHANNELS = 50
"""Channels a kernel that declares none labels on their own."""
OTHER_CHANNELS = "_other"
"""The label of the channels beyond `MAX_UNDECLARED_CHANNELS`: not a channel name (a channel
name starts with a letter)."""


@dataclass(slots=True)
class ChannelCounts:
    """One channel's counts, since the kernel started."""

    events_delivered: int = 0
    """Frames handed to the channel's open streams by live delivery: an event that reaches two
    streams of its user counts twice."""
    events_replayed: int = 0
    """Events a stream sent from the table after its `Last-Event-ID` (or `last_event_id`)."""
    clients_dropped: int = 0
    """Streams cut off: their client fell `max_queued_bytes` behind, or stopped reading."""
    delay_counts: list[int] = field(default_factory=lambda: [0] * (len(DELAY_BUCKETS) + 1))
    """Events delivered live, by bucket of delay (not cumulative); the last is above them all."""
    delay_sum: float = 0.0

    def observe_delay(self, seconds: float) -> None:
        self.delay_counts[bisect.bisect_left(DELAY_BUCKETS, seconds)] += 1
        self.delay_sum += seconds

    def add(self, other: "ChannelCounts") -> None:
        """Add `other`'s counts to these."""
        self.events_delivered += other.events_delivered
        self.events_replayed += other.events_replayed
        self.clients_dropped += other.clients_dropped
        for bucket, count in enumerate(other.delay_counts):
            self.delay_counts[bucket] += count
        self.delay_sum += other.delay_sum


class ChannelStats:
    """The counts of one kernel, per channel label (see the module's docstring)."""

    def __init__(self, declared: tuple[str, ...]) -> None:
        self._declared = frozenset(declared)
        self.counts: dict[str, ChannelCounts] = {name: ChannelCounts() for name in declared}

    def label(self, channel: str) -> str:
        """The label `channel` is counted under."""
        if channel in self.counts:
            return channel
        if self._declared or len(self.counts) >= MAX_UNDECLARED_CHANNELS:
            return OTHER_CHANNELS
        return channel

    def of(self, channel: str) -> ChannelCounts:
        """The counts `channel` adds to."""
        label = self.label(channel)
        counts = self.counts.get(label)
        if counts is None:
            counts = self.counts[label] = ChannelCounts()
        return counts
