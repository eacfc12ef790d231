"""`Last-Event-ID`: a reconnecting client first receives, in order, what it missed, on any server;
an id the events table cannot vouch for (below the channel's pruned horizon, or above the newest
id given out) gets a `reset` event, and a malformed one a 400."""

import re
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import cast

import anyio
import asyncpg
import httpx
import pytest
from fastapi import HTTPException
from starlette.requests import Request

from fastapi_pg_sse.frames import reset_frame
from fastapi_pg_sse.routing import last_event_id
from fastapi_pg_sse.testing import (
    ServedApp,
    Server,
    ServerFactory,
    connected,
    emit_event,
    next_event,
    open_stream,
    payload_of,
    sign_token,
)
from tests.app import FEED, NEWS, NEWS_STREAM, STREAM
from tests.helpers import (
    RawStream,
    committing,
    emit,
    frame_ids,
    ids_of,
    new_users,
    newest_id,
    running_kernel,
    server_metrics,
    wait_until,
)

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


async def test_a_last_event_id_below_the_pruned_horizon_gets_a_reset_with_the_newest_id(
    served_app: ServedApp,
) -> None:
    """Events of other users of the channel were pruned above it: the client may have missed
    some. The reset carries the newest id given out, on any channel, and live events follow."""
    quinn, other = new_users("quinn", "other")
    async with connected(served_app.database_url) as connection:
        before = await emit(connection, FEED, quinn, "before")
        pruned = await emit(connection, FEED, other, "pruned")
        await _backdate(connection, [before, pruned], days=30)
        assert await FEED.prune(connection) == 2
        await emit(connection, NEWS, other, "on_another_channel")
        newest = await newest_id(connection)
    async with served_app.stream(STREAM, quinn, last_event_id=before) as events:
        reset = await next_event(events)
        live = await served_app.emit(FEED, quinn, "after")
        after = await next_event(events)
    assert (reset.id, reset.event, payload_of(reset)) == (
        str(newest),
        "reset",
        {"replayable": False},
    )
    assert (after.id, after.event) == (str(live), "after")


async def test_a_last_event_id_at_or_above_the_pruned_horizon_replays_exactly_what_followed(
    served_app: ServedApp,
) -> None:
    (rhea,) = new_users("rhea")
    async with connected(served_app.database_url) as connection:
        pruned = [await emit(connection, FEED, rhea, "pruned") for _ in range(2)]
        await _backdate(connection, pruned, days=30)
        assert await FEED.prune(connection) == 2
        kept = [str(await emit(connection, FEED, rhea, "kept")) for _ in range(2)]
    async with served_app.stream(STREAM, rhea, last_event_id=pruned[-1]) as events:
        from_the_horizon = await ids_of(events, len(kept))
        kept.append(str(await served_app.emit(FEED, rhea, "live")))
        assert await ids_of(events, 1) == kept[-1:], "a reset, or an event twice"
    async with served_app.stream(STREAM, rhea, last_event_id=kept[0]) as events:
        from_above = await ids_of(events, len(kept) - 1)
    assert from_the_horizon == kept[:2]
    assert from_above == kept[1:]


async def test_events_pruned_while_a_client_replays_end_its_replay_with_a_reset_not_a_gap(
    realtime_database_url: str,
) -> None:
    """The replay reads a page at a time, the next once the client took the one before: a prune
    in between is seen, in the same snapshot as the page it would have read."""
    (sid,) = new_users("sid")
    async with connected(realtime_database_url) as connection:
        resume_from = await emit(connection, FEED, sid, "seen")
        missed = [await emit(connection, FEED, sid, "missed") for _ in range(4)]
        async with running_kernel(realtime_database_url, replay_page_size=2) as realtime:
            stream = realtime.stream(FEED, sid, resume_from)
            frames = cast(AsyncGenerator[bytes, None], stream.body_iterator)
            first = await anext(frames)
            await _backdate(connection, missed[2:], days=30)
            assert await FEED.prune(connection) == 2
            newest = await newest_id(connection)
            second = await anext(frames)
            await frames.aclose()
    assert frame_ids(first) == missed[:2]
    assert second == reset_frame(newest), "the pruned events were skipped"


async def test_continue_after_makes_older_ids_get_a_reset_and_new_events_follow_it(
    served_app: ServedApp,
) -> None:
    """`continue_after(channel, last_id)` is how ids given out elsewhere (a table of an earlier
    version) join: a client resuming below `last_id` gets a reset to it, new events get larger
    ids, and a client resuming from it replays them exactly."""
    (sol,) = new_users("sol")
    async with connected(served_app.database_url) as connection:
        seen = await emit(connection, NEWS, sol, "seen")
        last_id = await newest_id(connection) + 1000
        await connection.execute("SELECT fastapi_pg_sse.continue_after($1, $2)", NEWS.name, last_id)
        assert await newest_id(connection) == last_id
    async with served_app.stream(NEWS_STREAM, sol, last_event_id=seen) as events:
        reset = await next_event(events)
    assert (reset.id, reset.event) == (str(last_id), "reset")
    after = [await served_app.emit(NEWS, sol, "after") for _ in range(2)]
    assert after[0] > last_id
    async with served_app.stream(NEWS_STREAM, sol, last_event_id=last_id) as events:
        assert await ids_of(events, 2) == [str(event_id) for event_id in after]


async def test_continue_after_leaves_the_other_channels_clients_resuming_as_before(
    served_app: ServedApp,
) -> None:
    (tam,) = new_users("tam")
    async with connected(served_app.database_url) as connection:
        seen = await emit(connection, FEED, tam, "seen")
        missed = await emit(connection, FEED, tam, "missed")
        last_id = await newest_id(connection) + 1000
        await connection.execute("SELECT fastapi_pg_sse.continue_after($1, $2)", NEWS.name, last_id)
    async with served_app.stream(STREAM, tam, last_event_id=seen) as events:
        assert await ids_of(events, 1) == [str(missed)]
        live = await served_app.emit(FEED, tam, "live")
        assert await ids_of(events, 1) == [str(live)]
    assert live > last_id, "ids are given in one sequence for every channel"


async def test_continue_after_for_one_user_resets_that_users_clients_only(
    served_app: ServedApp,
) -> None:
    """The ids of one user's events given out elsewhere: another user of the channel resuming
    from the same place replays what followed, as before."""
    ula, vic = new_users("ula", "vic")
    async with connected(served_app.database_url) as connection:
        seen = {user: await emit(connection, FEED, user, "seen") for user in (ula, vic)}
        missed = {user: await emit(connection, FEED, user, "missed") for user in (ula, vic)}
        last_id = await newest_id(connection) + 10
        await connection.execute(
            "SELECT fastapi_pg_sse.continue_after($1, $2, $3)", FEED.name, last_id, ula
        )
    async with served_app.stream(STREAM, ula, last_event_id=seen[ula]) as events:
        reset = await next_event(events)
    async with served_app.stream(STREAM, vic, last_event_id=seen[vic]) as events:
        replayed = await next_event(events)
    after = await served_app.emit(FEED, ula, "after")
    async with served_app.stream(STREAM, ula, last_event_id=last_id) as events:
        resumed = await next_event(events)
    assert (reset.id, reset.event) == (str(last_id), "reset")
    assert (replayed.id, replayed.event) == (str(missed[vic]), "missed")
    assert after > last_id
    assert (resumed.id, resumed.event) == (str(after), "after")


async def test_continue_after_never_moves_the_horizon_or_the_ids_back(
    realtime_database_url: str,
) -> None:
    async with connected(realtime_database_url) as connection:
        high = await newest_id(connection) + 500
        for last_id in (high, high - 400):
            await connection.execute(
                "SELECT fastapi_pg_sse.continue_after($1, $2)", NEWS.name, last_id
            )
        horizon = await connection.fetchval(
            "SELECT through_id FROM fastapi_pg_sse.pruned"
            " WHERE channel = $1 AND target_user_id = ''",
            NEWS.name,
        )
        later = await emit(connection, FEED, "una", "later")
    assert horizon == high
    assert later == high + 1


async def _backdate(connection: asyncpg.Connection, ids: list[int], days: int) -> None:
    """Make the events `ids` look committed `days` ago, so that `prune` deletes them."""
    await connection.execute(
        "UPDATE fastapi_pg_sse.events SET created_at = created_at - make_interval(days => $2)"
        " WHERE id = ANY ($1)",
        ids,
        days,
    )


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
    async with connected(realtime_database_url) as connection, committing(connection) as missed:
        await connection.execute(
            "SELECT fastapi_pg_sse.emit('test_feed', 'mona', 'big',"
            " jsonb_build_object('blob', repeat('x', 1048576))) FROM generate_series(1, 64)"
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
