"""Stopping a server: SIGTERM or SIGINT ends every open stream, even one whose client stopped
reading, and the server exits promptly."""

import signal
from contextlib import AsyncExitStack

import anyio
import pytest

from fastapi_pg_sse.hub import Hub, Subscriber
from fastapi_pg_sse.testing import (
    ServerFactory,
    connected,
    emit_event,
    listener_connections,
    next_event,
    open_stream,
    sign_token,
)
from tests.app import FEED, STREAM
from tests.helpers import (
    RawStream,
    server_metrics,
    server_side_is_open,
    serving,
    wait_until,
)
from tests.proxy import blackhole_proxy

pytestmark = pytest.mark.anyio

STOP_BOUND_SECONDS = 5
"""How long a server may take to stop after the signal, whatever its streams."""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_stop_signal_ends_100_open_streams_and_stops_the_server_promptly(
    start_realtime_server: ServerFactory, realtime_database_url: str, sig: signal.Signals
) -> None:
    doomed = start_realtime_server()
    async with AsyncExitStack() as stack:
        streams = [
            await stack.enter_async_context(
                open_stream(doomed.url + STREAM, sign_token(f"reader-{number}"))
            )
            for number in range(100)
        ]
        seconds = await anyio.to_thread.run_sync(doomed.stop, sig)
        for events in streams:
            with anyio.fail_after(30):
                assert [event async for event in events if event.data] == [], "not ended"
    assert seconds < STOP_BOUND_SECONDS
    assert doomed.process.returncode in (0, -sig), "uvicorn re-raises the signal once stopped"

    async def listener_closed() -> bool:
        return await listener_connections(realtime_database_url, doomed.process.pid) == 0

    await wait_until(listener_closed, "the stopped server's LISTEN connection is gone")


async def test_a_client_that_stopped_reading_does_not_hold_up_shutdown(
    start_realtime_server: ServerFactory, realtime_database_url: str
) -> None:
    """Among 100 open streams, one is stuck writing 32 MB its client will never read; it is cut
    off after the grace period, and the server exits."""
    doomed = start_realtime_server(REALTIME_MAX_QUEUED_BYTES=str(2**30))
    idle = [await RawStream.open(doomed, f"idle-{number}") for number in range(99)]
    stalled = await RawStream.open(doomed, "stalled", event_type="big")
    try:
        async with connected(realtime_database_url) as connection:
            for _ in range(32):
                await FEED.emit(
                    connection,
                    target_user_id="stalled",
                    event_type="big",
                    payload={"blob": "x" * 2**20},
                )

        async def all_queued() -> bool:
            return (await server_metrics(doomed))["events_delivered"] == 32

        await wait_until(all_queued, "the 32 events were handed to the stalled stream")
        assert server_side_is_open(doomed, stalled), "the stalled connection is open"
        seconds = await anyio.to_thread.run_sync(doomed.stop)
        with anyio.fail_after(30):
            await stalled.read()  # until the connection ends
    finally:
        for stream in [*idle, stalled]:
            stream.close()
    assert seconds < STOP_BOUND_SECONDS
    assert stalled.frames < 32, "the client received everything: it was never stalled"


async def test_a_dropped_client_that_never_reads_has_its_connection_closed(
    start_realtime_server: ServerFactory, realtime_database_url: str
) -> None:
    """Dropped for falling behind, its response still waits to write what the client does not
    read: after the grace period the server closes the connection, and serves on."""
    server = start_realtime_server(REALTIME_MAX_QUEUED_BYTES=str(64 * 1024))
    stalled = await RawStream.open(server, "nina", event_type="big")
    try:
        async with connected(realtime_database_url) as connection:
            for _ in range(32):  # far more than the socket buffers hold
                await FEED.emit(
                    connection, target_user_id="nina", event_type="big", payload={"x": "x" * 2**20}
                )

        async def cut_off() -> bool:
            return not server_side_is_open(server, stalled)

        await wait_until(cut_off, "the server closed the stalled client's connection")
        metrics = await server_metrics(server)
        async with open_stream(server.url + STREAM, sign_token("nina")) as nina:
            event_id = await emit_event(realtime_database_url, FEED, "nina", "after")
            assert (await next_event(nina)).id == str(event_id)
    finally:
        stalled.close()
    assert metrics["clients_dropped"] == 1


async def test_a_server_whose_database_network_went_silent_still_stops_promptly(
    realtime_database_url: str, pytestconfig: pytest.Config
) -> None:
    """Its connections to PostgreSQL cannot be closed politely: nothing answers any more."""
    async with blackhole_proxy(realtime_database_url) as (proxy, proxied_url):
        environment = {"DATABASE_URL": proxied_url, "REALTIME_KEEPALIVE_SECONDS": "1"}
        async with (
            serving("tests.app:app", pytestconfig.rootpath, environment) as doomed,
            open_stream(doomed.url + STREAM, sign_token("noel")),
        ):
            proxy.blackhole()

            async def disconnected() -> bool:
                return not (await server_metrics(doomed))["listener_connected"]

            await wait_until(disconnected, "the listener noticed its connection is lost")
            seconds = await anyio.to_thread.run_sync(doomed.stop)
    assert seconds < STOP_BOUND_SECONDS


async def test_a_stream_opened_during_shutdown_ends_at_once() -> None:
    hub = Hub()
    hub.close_all()
    late = Subscriber((FEED.name,), "lee", max_queued_bytes=10_000)
    hub.add(late)
    assert late.take() is None
    assert hub.counters.open_streams == 0
