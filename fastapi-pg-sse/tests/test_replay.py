"""`Last-Event-ID`: a reconnecting client first receives, in order, what it missed, on any server;
an id the events table cannot vouch for gets a `reset` event, and a malformed one a 400."""

import re
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import HTTPException
from starlette.requests import Request

from fastapi_pg_sse.routing import last_event_id
from fastapi_pg_sse.testing import (
    Server,
    ServerFactory,
    emit_event,
    next_event,
    open_stream,
    payload_of,
    sign_token,
)
from tests.app import FEED, STREAM
from tests.helpers import RawStream, connected, ids_of, server_metrics, wait_until

pytestmark = pytest.mark.anyio


async def test_a_reconnecting_client_replays_only_its_missed_events_in_order_then_live_ones(
    realtime_server: Server, realtime_database_url: str
) -> None:
    url = realtime_server.url + STREAM
    async with open_stream(url, sign_token("dave")) as dave:
        seen = await emit_event(realtime_database_url, FEED, "dave", "seen")
        assert (await next_event(dave)).id == str(seen)
    missed = []
    for number in range(3):
        await emit_event(realtime_database_url, FEED, "erin", "not_for_dave")
        missed.append(
            await emit_event(realtime_database_url, FEED, "dave", "missed", {"n": number})
        )
    async with open_stream(url, sign_token("dave"), last_event_id=str(seen)) as dave:
        replayed = [await next_event(dave) for _ in missed]
        live = await emit_event(realtime_database_url, FEED, "dave", "live")
        after = await next_event(dave)
    assert [event.id for event in replayed] == [str(event_id) for event_id in missed]
    assert [payload_of(event) for event in replayed] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert after.id == str(live)


async def test_replay_reads_page_after_page_without_losing_or_repeating_events(
    start_realtime_server: ServerFactory, realtime_database_url: str
) -> None:
    server = start_realtime_server(REALTIME_REPLAY_PAGE_SIZE="2")
    seen = await emit_event(realtime_database_url, FEED, "pia", "seen")
    missed = [str(await emit_event(realtime_database_url, FEED, "pia")) for _ in range(5)]
    async with open_stream(server.url + STREAM, sign_token("pia"), last_event_id=str(seen)) as pia:
        replayed = await ids_of(pia, len(missed))
        live = [str(await emit_event(realtime_database_url, FEED, "pia")) for _ in range(2)]
        assert await ids_of(pia, len(live)) == live
    assert replayed == missed


async def test_a_client_too_far_behind_is_dropped_and_recovers_everything_by_replay(
    start_realtime_server: ServerFactory, realtime_database_url: str
) -> None:
    server = start_realtime_server(REALTIME_MAX_QUEUED_BYTES=str(64 * 1024))
    stalled = await RawStream.open(server, "lena", event_type="big")
    try:
        # Far more than the socket buffers hold, so the server's queue fills up.
        emitted = [
            str(await emit_event(realtime_database_url, FEED, "lena", "big", {"blob": blob}))
            for blob in ("x" * 2**20 for _ in range(32))
        ]

        async def dropped() -> bool:
            return (await server_metrics(server))["clients_dropped"] == 1

        await wait_until(dropped, "the server dropped the stream that fell behind")
        with anyio.fail_after(60):
            received = await stalled.read_to_end()
    finally:
        stalled.close()
    # `id` is the last line of a frame: an id followed by a blank line ends a whole frame.
    whole = [match.decode() for match in re.findall(rb"^id: (\d+)\n\n", received, re.MULTILINE)]
    assert whole == emitted[: len(whole)]
    assert len(whole) < len(emitted)
    assert b"event: expired" not in received, "dropped, not expired"
    resume_after = whole[-1] if whole else str(int(emitted[0]) - 1)
    url = server.url + STREAM
    async with open_stream(url, sign_token("lena"), last_event_id=resume_after) as lena:
        replayed = await ids_of(lena, len(emitted) - len(whole))
    assert whole + replayed == emitted


async def test_a_client_replays_on_another_server_what_it_missed_on_the_first(
    realtime_server: Server, start_realtime_server: ServerFactory, realtime_database_url: str
) -> None:
    """Replay reads the events table: it needs no memory of the server that streamed."""
    async with open_stream(realtime_server.url + STREAM, sign_token("yves")) as first:
        await emit_event(realtime_database_url, FEED, "yves", "seen")
        seen = (await next_event(first)).id
    missed = [str(await emit_event(realtime_database_url, FEED, "yves")) for _ in range(3)]
    other = start_realtime_server()
    async with open_stream(other.url + STREAM, sign_token("yves"), last_event_id=seen) as second:
        replayed = await ids_of(second, len(missed))
    assert replayed == missed


async def test_an_unknown_last_event_id_gets_a_reset_event_then_live_ones(
    realtime_server: Server, realtime_database_url: str
) -> None:
    newest = await emit_event(realtime_database_url, FEED, "paul", "before")
    future_id = str(newest + 1_000_000)
    url = realtime_server.url + STREAM
    async with open_stream(url, sign_token("paul"), last_event_id=future_id) as paul:
        reset = await next_event(paul)
        live = await emit_event(realtime_database_url, FEED, "paul", "after")
        after = await next_event(paul)
    assert (reset.id, reset.event, payload_of(reset)) == (
        str(newest),
        "reset",
        {"replayable": False},
    )
    assert after.id == str(live)


async def test_a_pruned_last_event_id_gets_a_reset_event(
    realtime_server: Server, realtime_database_url: str
) -> None:
    pruned = await emit_event(realtime_database_url, FEED, "quinn", "old")
    kept = await emit_event(realtime_database_url, FEED, "quinn", "newest")
    async with connected(realtime_database_url) as connection:
        assert await FEED.prune(connection, keep=timedelta(0)) > 0
        oldest = await connection.fetchval(f"SELECT min(id) FROM {FEED.events_table}")
    assert oldest == kept, "the newest event is always kept"
    url = realtime_server.url + STREAM
    async with open_stream(url, sign_token("quinn"), last_event_id=str(pruned - 1)) as quinn:
        reset = await next_event(quinn)
        live = await emit_event(realtime_database_url, FEED, "quinn", "after")
        after = await next_event(quinn)
    assert (reset.id, reset.event) == (str(kept), "reset")
    assert after.id == str(live)


@pytest.mark.parametrize(
    "value",
    ["²".encode(), "¹²³".encode(), "٣".encode(), b"-1", b"+7", b"1e3", b"0x7", b"1" * 19, b"7 7"],
    ids=[
        "superscript",
        "superscripts",
        "arabic-indic",
        "negative",
        "plus",
        "exponent",
        "hex",
        "19-digits",
        "two-ids",
    ],
)
async def test_a_malformed_last_event_id_is_a_bad_request(
    realtime_server: Server, value: bytes
) -> None:
    headers = {
        b"Authorization": f"Bearer {sign_token('mal')}".encode(),
        b"Last-Event-ID": value,
    }
    async with httpx.AsyncClient(base_url=realtime_server.url, timeout=30) as client:
        response = await client.get(STREAM, headers=headers)
    assert response.status_code == 400
    assert response.json() == {"detail": "Last-Event-ID must be an event id."}


@pytest.mark.parametrize("value", [b" 7", b"7 ", b"\t7"])
async def test_whitespace_inside_the_last_event_id_value_is_refused(value: bytes) -> None:
    """HTTP/1.1 servers strip whitespace around a header value (` 7` arrives as `7`); a value
    that still holds some, from another ASGI server, is refused all the same."""
    request = Request({"type": "http", "headers": [(b"last-event-id", value)]})
    with pytest.raises(HTTPException) as refused:
        await last_event_id(request)
    assert refused.value.status_code == 400


async def test_the_largest_event_id_is_accepted(
    realtime_server: Server, realtime_database_url: str
) -> None:
    """18 digits is the most a `bigint` id can be read from; such an id is merely unknown."""
    url = realtime_server.url + STREAM
    async with open_stream(url, sign_token("max"), last_event_id="9" * 18) as events:
        reset = await next_event(events)
    assert reset.event == "reset"


async def test_replay_holds_no_more_than_the_queue_bound_in_memory_whatever_the_event_sizes(
    start_realtime_server: ServerFactory, realtime_database_url: str
) -> None:
    """64 events of 1 MiB, replayed with the default 4 MiB bound: a page is read only once the
    client has taken the one before, so the server's peak memory grows by a few pages, not by
    the 64 MiB missed (read, encoded and joined: three times that, before the bound)."""
    server = start_realtime_server()
    seen = await emit_event(realtime_database_url, FEED, "mona", "seen")
    async with connected(realtime_database_url) as connection:
        missed: list[int] = await connection.fetchval(
            f"SELECT array_agg({FEED.emit_function}('mona', 'big',"
            " jsonb_build_object('blob', repeat('x', 1048576))) ORDER BY 1)"
            " FROM generate_series(1, 64)"
        )
    peak_before = _peak_memory_bytes(server)
    async with open_stream(
        server.url + STREAM, sign_token("mona"), last_event_id=str(seen)
    ) as mona:
        replayed = await ids_of(mona, len(missed))
    growth = _peak_memory_bytes(server) - peak_before
    assert replayed == [str(event_id) for event_id in missed]
    assert growth < 48 * 2**20, f"the server's peak memory grew by {growth / 2**20:.0f} MiB"


def _peak_memory_bytes(server: Server) -> int:
    """The process's peak resident memory so far (VmHWM)."""
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
    assert match is not None, "Linux reports VmHWM"
    return int(match[1]) * 1024
