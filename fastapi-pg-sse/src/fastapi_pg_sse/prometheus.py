"""The kernel's metrics in prometheus-client's default registry (the `prometheus` extra), enabled
by `REALTIME_PROMETHEUS=true`: the app's existing `/metrics` shows them.

One collector, registered once per process, reads the counts of every running kernel when the
registry is scraped, so the delivery path only adds to plain numbers (`ChannelStats`). A kernel
that stops leaves its counts to the collector: counters never go back, however many kernels
(apps, or lifespans in tests) a process starts and stops.

Every metric is labelled by channel, never by user, or not at all (see `ChannelStats` for the
bound on labels):

- `fastapi_pg_sse_open_streams{channel}`: streams open now;
- `fastapi_pg_sse_events_delivered_total{channel}`: events handed to open streams live, once
  per stream;
- `fastapi_pg_sse_events_replayed_total{channel}`: events sent from the table to streams that
  resumed after an id;
- `fastapi_pg_sse_clients_dropped_total{channel}`: streams cut off, their client too far behind
  or no longer reading;
- `fastapi_pg_sse_delivery_delay_seconds{channel}`: a histogram, per event delivered live, of the
  time from its commit (`created_at`, stamped by the commit trigger as its transaction commits)
  to the listener's read of it, after which it is handed at once to its streams' queues:
  measured by PostgreSQL's clock alone (`clock_timestamp() - created_at` in the read), so no
  clock skew between hosts counts. It does not include the time the stream's task then takes
  to write the frame to the socket;
- `fastapi_pg_sse_listener_reconnects_total`: reconnections of the LISTEN connection;
- `fastapi_pg_sse_listener_connected`: 1 while every running kernel's listener is connected,
  else 0.
"""

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import (
    REGISTRY,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from fastapi_pg_sse.channel_stats import DELAY_BUCKETS, ChannelCounts, ChannelStats

if TYPE_CHECKING:
    from fastapi_pg_sse.realtime import Realtime

PREFIX = "fastapi_pg_sse_"


@dataclass
class _Retired:
    """What the kernels that stopped counted."""

    channels: dict[str, ChannelCounts] = field(default_factory=dict)
    listener_reconnects: int = 0


class RealtimeCollector(Collector):
    """Reads the counts of the running kernels (and of those that stopped) at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # a scrape may run in another thread than the kernels'
        self._kernels: list[Realtime] = []
        self._retired = _Retired()

    def add(self, realtime: "Realtime") -> None:
        with self._lock:
            self._kernels.append(realtime)

    def remove(self, realtime: "Realtime") -> None:
        """Stop reading `realtime`, keeping what it counted."""
        with self._lock:
            if realtime not in self._kernels:
                return
            self._kernels.remove(realtime)
            self._retired.listener_reconnects += realtime.listener.reconnects
            if realtime.hub.stats is not None:
                for label, counts in realtime.hub.stats.counts.items():
                    self._retired.channels.setdefault(label, ChannelCounts()).add(counts)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            kernels = tuple(self._kernels)
            channels: dict[str, ChannelCounts] = {}
            for label, counts in self._retired.channels.items():
                channels.setdefault(label, ChannelCounts()).add(counts)
            reconnects = self._retired.listener_reconnects
        open_streams: dict[str, int] = {}
        for realtime in kernels:
            reconnects += realtime.listener.reconnects
            stats = realtime.hub.stats
            if stats is None:
                continue
            for label, counts in tuple(stats.counts.items()):
                channels.setdefault(label, ChannelCounts()).add(counts)
            for name, count in realtime.hub.open_streams().items():
                label = stats.label(name)
                open_streams[label] = open_streams.get(label, 0) + count
        yield from _channel_metrics(channels, open_streams)
        yield CounterMetricFamily(
            f"{PREFIX}listener_reconnects",
            "Reconnections of the LISTEN connection to PostgreSQL.",
            value=reconnects,
        )
        connected = bool(kernels) and all(k.listener.connected for k in kernels)
        yield GaugeMetricFamily(
            f"{PREFIX}listener_connected",
            "1 while every running kernel's LISTEN connection is up, else 0.",
            value=int(connected),
        )


def _channel_metrics(
    channels: dict[str, ChannelCounts], open_streams: dict[str, int]
) -> Iterator[Metric]:
    labels = ["channel"]
    streams = GaugeMetricFamily(f"{PREFIX}open_streams", "Streams open now.", labels=labels)
    delivered = CounterMetricFamily(
        f"{PREFIX}events_delivered",
        "Events handed to open streams as they committed, once per stream.",
        labels=labels,
    )
    replayed = CounterMetricFamily(
        f"{PREFIX}events_replayed",
        "Events sent from the table to streams that resumed after an event id.",
        labels=labels,
    )
    dropped = CounterMetricFamily(
        f"{PREFIX}clients_dropped",
        "Streams cut off: their client fell too far behind, or stopped reading.",
        labels=labels,
    )
    delay = HistogramMetricFamily(
        f"{PREFIX}delivery_delay_seconds",
        "Time from an event's commit to its read by the listener, which hands it to its"
        " streams (by PostgreSQL's clock).",
        labels=labels,
    )
    for label in sorted(channels.keys() | open_streams.keys()):
        counts = channels.get(label, ChannelCounts())
        streams.add_metric([label], open_streams.get(label, 0))
        delivered.add_metric([label], counts.events_delivered)
        replayed.add_metric([label], counts.events_replayed)
        dropped.add_metric([label], counts.clients_dropped)
        cumulative, buckets = 0, []
        for bound, count in zip((*DELAY_BUCKETS, float("inf")), counts.delay_counts, strict=True):
            cumulative += count
            le = floatToGoString(bound)  # type: ignore[no-untyped-call]
            buckets.append((le, float(cumulative)))
        delay.add_metric([label], buckets, counts.delay_sum)
    yield from (streams, delivered, replayed, dropped, delay)


_COLLECTOR: RealtimeCollector | None = None
_REGISTERING = threading.Lock()


def collector() -> RealtimeCollector:
    """The process's collector, registered in the default registry on first use."""
    global _COLLECTOR
    with _REGISTERING:
        if _COLLECTOR is None:
            _COLLECTOR = RealtimeCollector()
            REGISTRY.register(_COLLECTOR)
        return _COLLECTOR


def export(realtime: "Realtime") -> None:
    """Count `realtime`'s deliveries per channel, and show them in the default registry."""
    realtime.hub.stats = ChannelStats(tuple(channel.name for channel in realtime.channels))
    collector().add(realtime)


def withdraw(realtime: "Realtime") -> None:
    """Stop showing `realtime` (a kernel that stops), keeping what it counted."""
    collector().remove(realtime)
