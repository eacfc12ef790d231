"""A client that stops reading is cut off once a write to it has waited `write_timeout_seconds`,
during its replay as during live delivery: it holds neither a page of replay nor a queue of
events for as long as its token lives. A client of the same user that reads gets everything."""

import asyncio
import socket
from urllib.parse import urlsplit

import pytest

from fastapi_pg_sse.testing import (
    Server,
    ServerFactory,
    connected,
    emit_event,
    next_event,
    open_stream,
    sign_token,
)
from tests.app import FEED, STREAM
from tests.helpers import (
    RawStream,
    ids_of,
    new_users,
    server_metrics,
    server_side_is_open,
    wait_until,
)

pytestmark = pytest.mark.anyio

EVENTS = 32
EVENT_BYTES = 512 * 1024
"""32 events of 512 KiB: 16 MiB, far more than the socket buffers of a client that reads nothing
(its receive buffer is kept small) and of the server hold."""
WRITE_TIMEOUT = {"REALTIME_WRITE_TIMEOUT_SECONDS": "3"}


async def test_a_client_that_stops_reading_its_replay_is_dropped_and_cut_off(
    start_realtime_server: ServerFactory,
    realtime_database_url: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Both resume from just before the user's first event, as `Last-Event-ID: 0` would had
    other tests not pruned the channel, and replay in pages of 1 MiB (`max_queued_bytes`): the
    stalled one waits to write one."""
    server = start_realtime_server(**WRITE_TIMEOUT, REALTIME_MAX_QUEUED_BYTES=str(2**20))
    (hoarder,) = new_users("hoarder")
    emitted = await _emit_large_events(realtime_database_url, hoarder)
    before_all = str(emitted[0] - 1)
    stalled = await _stalled_stream(server, hoarder, last_event_id=before_all)
    resumed = open_stream(server.url + STREAM, sign_token(hoarder), last_event_id=before_all)
    try:
        async with resumed as reader:
            replayed = await ids_of(reader, EVENTS)
            await _wait_until_cut_off(server, stalled)
            live = await emit_event(realtime_database_url, FEED, hoarder, "after")
            assert (await next_event(reader)).id == str(live)
            metrics = await server_metrics(server)
    finally:
        stalled.close()
    assert replayed == [str(event_id) for event_id in emitted]
    assert (metrics["clients_dropped"], metrics["open_streams"]) == (1, 1)
    assert "realtime stream dropped: client stopped reading" in capfd.readouterr().err


async def test_a_client_that_stops_reading_live_events_is_dropped_before_its_queue_fills(
    start_realtime_server: ServerFactory,
    realtime_database_url: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Its queue could hold 1 GiB: the write it never accepts, not the queue, cuts it off."""
    server = start_realtime_server(**WRITE_TIMEOUT, REALTIME_MAX_QUEUED_BYTES=str(2**30))
    (lurker,) = new_users("lurker")
    stalled = await _stalled_stream(server, lurker)
    try:
        async with open_stream(server.url + STREAM, sign_token(lurker)) as reader:
            emitted = await _emit_large_events(realtime_database_url, lurker)
            received = await ids_of(reader, EVENTS)
            await _wait_until_cut_off(server, stalled)
            live = await emit_event(realtime_database_url, FEED, lurker, "after")
            assert (await next_event(reader)).id == str(live)
            metrics = await server_metrics(server)
    finally:
        stalled.close()
    log = capfd.readouterr().err
    assert received == [str(event_id) for event_id in emitted]
    assert (metrics["clients_dropped"], metrics["open_streams"]) == (1, 1)
    assert "realtime stream dropped: client stopped reading" in log
    assert "queue full" not in log


async def test_a_client_that_queues_its_stream_behind_a_response_it_never_reads_is_cut_off(
    start_realtime_server: ServerFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    """Two requests sent at once on one connection: the server starts the stream's response only
    once the client has taken enough of the first, which it never does. That wait counts."""
    server = start_realtime_server(**WRITE_TIMEOUT)
    (piper,) = new_users("piper")
    host, reader, writer = await _connection_that_reads_little(server)
    writer.write(
        f"GET /padding?size={EVENTS * EVENT_BYTES} HTTP/1.1\r\nHost: {host}\r\n\r\n"
        f"GET {STREAM} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {sign_token(piper)}\r\n\r\n".encode()
    )
    stalled = RawStream(reader, writer, "big")
    try:
        await _wait_until_cut_off(server, stalled)
    finally:
        stalled.close()
    assert "realtime stream dropped: client stopped reading" in capfd.readouterr().err


async def _emit_large_events(database_url: str, user_id: str) -> list[int]:
    """Emit `EVENTS` events of `EVENT_BYTES` for `user_id` in one transaction; their ids."""
    async with connected(database_url) as connection:
        async with connection.transaction():
            await connection.execute(
                "SELECT fastapi_pg_sse.emit('test_feed', $1, 'big',"
                " jsonb_build_object('n', n, 'blob', repeat('x', $2)))"
                " FROM generate_series(1, $3) AS n",
                user_id,
                EVENT_BYTES,
                EVENTS,
            )
        ids: list[int] = await connection.fetchval(
            "SELECT array_agg(id ORDER BY id) FROM fastapi_pg_sse.events"
            " WHERE channel = 'test_feed' AND target_user_id = $1",
            user_id,
        )
    return ids


async def _stalled_stream(
    server: Server, user_id: str, *, last_event_id: str | None = None
) -> RawStream:
    """`user_id`'s stream, whose client reads the response's head and then nothing more."""
    host, reader, writer = await _connection_that_reads_little(server)
    resume = "" if last_event_id is None else f"Last-Event-ID: {last_event_id}\r\n"
    writer.write(
        f"GET {STREAM} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {sign_token(user_id)}\r\n{resume}\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return RawStream(reader, writer, "big")


async def _connection_that_reads_little(
    server: Server,
) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to `server` (its host, reader and writer) whose receive buffer is set small,
    as the kernel would otherwise grow it to tens of MiB."""
    host, port = urlsplit(server.url).netloc.split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock)
    return host, reader, writer


async def _wait_until_cut_off(server: Server, stalled: RawStream) -> None:
    """Wait until the server has dropped the stalled stream and closed its connection."""

    async def dropped() -> bool:
        return (await server_metrics(server))["clients_dropped"] == 1

    async def closed() -> bool:
        return not server_side_is_open(server, stalled)

    await wait_until(dropped, "the server dropped the stream of the client that stopped reading")
    await wait_until(closed, "the server closed the connection of the client that stopped reading")
