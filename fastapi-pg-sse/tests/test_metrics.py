"""Prometheus metrics (`REALTIME_PROMETHEUS=true`): scraped from a served app's `/metrics` after
real streams and events, labelled per channel and never per user; and in one process, with
several kernels and channels no one declared."""

import importlib.util
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fastapi_pg_sse import channel_stats
from fastapi_pg_sse.testing import Server, connected, next_event, open_stream, sign_token
from tests.app import FEED, NEWS, NEWS_STREAM, STREAM
from tests.helpers import (
    emit,
    kernel_settings,
    new_channel,
    new_users,
    read_frames,
    running_kernel,
    serving,
    subscribe,
    terminate_listener,
    wait_until,
)

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""Each sample of a scrape, by its name and its labels."""
OBSERVED = {"REALTIME_PROMETHEUS": "true"}


def _samples(exposition: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


async def _scrape(server: Server) -> tuple[Samples, str]:
    """The served app's `/metrics`, parsed, and as it was written."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.get("/metrics")
    response.raise_for_status()
    return _samples(response.text), response.text


def _of(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _ours(samples: Samples) -> Iterator[tuple[str, tuple[tuple[str, str], ...]]]:
    return (key for key in samples if key[0].startswith("fastapi_pg_sse_"))


@asynccontextmanager
async def _observed_server(root: Any, database_url: str) -> AsyncIterator[Server]:
    environment = {"DATABASE_URL": database_url, **OBSERVED}
    async with serving("tests.observed_app:app", root, environment) as server:
        yield server


async def test_a_served_apps_metrics_count_its_streams_deliveries_and_replays_per_channel(
    realtime_database_url: str, pytestconfig: pytest.Config
) -> None:
    ann, ben = new_users("ann", "ben")
    async with (
        _observed_server(pytestconfig.rootpath, realtime_database_url) as server,
        connected(realtime_database_url) as connection,
    ):
        idle, _ = await _scrape(server)
        async with (
            open_stream(server.url + STREAM, sign_token(ann)) as ann_feed,
            open_stream(server.url + STREAM, sign_token(ann)) as ann_second_tab,
            open_stream(server.url + NEWS_STREAM, sign_token(ben)) as ben_news,
        ):
            opened, _ = await _scrape(server)
            first = await emit(connection, FEED, ann, "noted")
            await emit(connection, FEED, ann, "noted")
            await emit(connection, NEWS, ben, "noted")
            for events, count in ((ann_feed, 2), (ann_second_tab, 2), (ben_news, 1)):
                for _ in range(count):
                    await next_event(events)
            delivered, text = await _scrape(server)
        async with open_stream(
            server.url + STREAM, sign_token(ann), last_event_id=str(first)
        ) as resumed:
            await next_event(resumed)
            replayed, _ = await _scrape(server)
    assert {key for key in _ours(idle) if key[0] == "fastapi_pg_sse_open_streams"} == {
        ("fastapi_pg_sse_open_streams", (("channel", name),))
        for name in ("test_feed", "test_news", "test_orders")
    }, "each declared channel is labelled from the start"
    assert _of(opened, "fastapi_pg_sse_open_streams", channel="test_feed") == 2
    assert _of(opened, "fastapi_pg_sse_open_streams", channel="test_news") == 1
    assert _of(opened, "fastapi_pg_sse_open_streams", channel="test_orders") == 0
    assert _of(delivered, "fastapi_pg_sse_events_delivered_total", channel="test_feed") == 4
    assert _of(delivered, "fastapi_pg_sse_events_delivered_total", channel="test_news") == 1
    assert _of(delivered, "fastapi_pg_sse_delivery_delay_seconds_count", channel="test_feed") == 2
    assert _of(delivered, "fastapi_pg_sse_delivery_delay_seconds_count", channel="test_news") == 1
    assert (
        _of(
            delivered,
            "fastapi_pg_sse_delivery_delay_seconds_bucket",
            channel="test_feed",
            le="+Inf",
        )
        == 2
    )
    assert 0 < _of(delivered, "fastapi_pg_sse_delivery_delay_seconds_sum", channel="test_feed") < 10
    assert _of(delivered, "fastapi_pg_sse_events_replayed_total", channel="test_feed") == 0
    assert _of(replayed, "fastapi_pg_sse_events_replayed_total", channel="test_feed") == 1
    assert _of(replayed, "fastapi_pg_sse_open_streams", channel="test_feed") == 1
    assert _of(delivered, "fastapi_pg_sse_listener_connected") == 1
    assert ann not in text and ben not in text, "no label names a user"
    labels = {name for key in _ours(delivered) for name, _ in key[1]}
    assert labels == {"channel", "le"}


async def test_a_served_apps_metrics_count_listener_reconnects(
    realtime_database_url: str, pytestconfig: pytest.Config
) -> None:
    async with (
        _observed_server(pytestconfig.rootpath, realtime_database_url) as server,
        connected(realtime_database_url) as connection,
    ):
        before, _ = await _scrape(server)
        await terminate_listener(connection, server.process.pid)

        async def reconnected() -> bool:
            samples, _ = await _scrape(server)
            return _of(samples, "fastapi_pg_sse_listener_reconnects_total") == 1 and (
                _of(samples, "fastapi_pg_sse_listener_connected") == 1
            )

        await wait_until(reconnected, "the listener reconnected, as /metrics says")
    assert _of(before, "fastapi_pg_sse_listener_reconnects_total") == 0
    assert _of(before, "fastapi_pg_sse_listener_connected") == 1


async def test_kernels_started_one_after_another_share_one_registration_and_keep_counting(
    realtime_database_url: str,
) -> None:
    """Two lifespans in one process, as tests run them: no "Duplicated timeseries", and what
    the first counted stays counted (its dropped stream too) when the second runs."""
    channel = new_channel()
    (cy,) = new_users("cy")

    def scraped() -> Samples:
        return _samples(generate_latest(REGISTRY).decode())

    before = scraped()
    async with connected(realtime_database_url) as connection:
        for _ in range(2):
            async with running_kernel(
                realtime_database_url, [channel], prometheus=True
            ) as realtime:
                slow = subscribe(realtime, cy, max_queued_bytes=200, channel=channel)
                fast = subscribe(realtime, cy, channel=channel)
                ids = [await emit(connection, channel, cy, "burst") for _ in range(10)]
                await read_frames(fast, len(ids))
                assert slow.overflowed
                during = scraped()
                assert _of(during, "fastapi_pg_sse_open_streams", channel=channel.name) == 1
    after = scraped()
    delivered = "fastapi_pg_sse_events_delivered_total"
    assert (
        _of(after, delivered, channel=channel.name) - _of(before, delivered, channel=channel.name)
        >= 20
    )
    assert _of(after, "fastapi_pg_sse_clients_dropped_total", channel=channel.name) == 2
    assert _of(after, "fastapi_pg_sse_open_streams", channel=channel.name) == 0


async def test_a_kernel_that_declares_no_channels_labels_a_bounded_number_of_them(
    realtime_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(channel_stats, "MAX_UNDECLARED_CHANNELS", 2)
    channels = [new_channel() for _ in range(4)]
    (di,) = new_users("di")
    async with (
        connected(realtime_database_url) as connection,
        running_kernel(realtime_database_url, (), prometheus=True) as realtime,
    ):
        subscribers = [subscribe(realtime, di, channel=channel) for channel in channels]
        for channel, subscriber in zip(channels, subscribers, strict=True):
            await emit(connection, channel, di, "spread")
            await read_frames(subscriber, 1)
        samples = _samples(generate_latest(REGISTRY).decode())
    delivered = "fastapi_pg_sse_events_delivered_total"
    assert [_of(samples, delivered, channel=c.name) for c in channels] == [1, 1, 0, 0]
    assert _of(samples, delivered, channel="_other") >= 2
    assert [_of(samples, "fastapi_pg_sse_open_streams", channel=c.name) for c in channels] == [
        1,
        1,
        0,
        0,
    ]
    assert _of(samples, "fastapi_pg_sse_open_streams", channel="_other") == 2


def test_the_setting_says_what_to_install_when_prometheus_client_is_missing(
    realtime_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"install fastapi-pg-sse\[prometheus\]"):
        kernel_settings(realtime_database_url, prometheus=True)
