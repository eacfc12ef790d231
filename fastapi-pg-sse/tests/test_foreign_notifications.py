"""Any role that can connect can NOTIFY on the runtime's channel: however many notifications it
sends, the log gets at most a line a minute about them, they only wake the listener (no queue
grows with them), and every real event still reaches its streams, once."""

import logging

import pytest

from fastapi_pg_sse.testing import connected
from tests.app import FEED
from tests.helpers import (
    committing,
    emit,
    frame_ids,
    new_users,
    read_frames,
    running_kernel,
    subscribe,
    wait_until,
)

pytestmark = pytest.mark.anyio

FOREIGN = 5000
PAGE_SIZE = 10
"""The kernel's `replay_page_size` in the flood test: the listener reads at most this many
events at once."""


async def test_5000_foreign_notifications_make_one_warning_line_and_delivery_goes_on(
    realtime_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The payloads differ: PostgreSQL folds identical notifications of one transaction into
    one."""
    (user,) = new_users("fay")
    async with (
        connected(realtime_database_url) as connection,
        running_kernel(realtime_database_url) as realtime,
    ):
        fay = subscribe(realtime, user)
        await connection.execute(
            "SELECT pg_notify('fastapi_pg_sse', 'garbage ' || n) FROM generate_series(1, $1) AS n",
            FOREIGN,
        )

        async def all_counted() -> bool:
            return realtime.metrics().foreign_notifications == FOREIGN

        await wait_until(all_counted, f"the listener counted {FOREIGN} foreign notifications")
        event_id = await emit(connection, FEED, user, "after_the_flood")
        frames = await read_frames(fay, 1)
    assert frame_ids(frames) == [event_id]
    assert _listener_warnings(caplog) == [
        "realtime listener ignored 1 foreign notification(s) since its last such warning"
        " (it warns at most once every 60 s)"
    ]


async def test_a_flood_of_forged_announcements_loses_and_repeats_no_real_event(
    realtime_database_url: str,
) -> None:
    """Each transaction announces, before its real events, far more well-formed but forged
    events of another user with an open stream than the listener reads at once: what reaches a
    stream is read from the table, once, in id order."""
    user, bystander = new_users("flo", "bystander")
    flood = 1000 * PAGE_SIZE
    emitted: list[int] = []
    async with (
        connected(realtime_database_url) as connection,
        running_kernel(realtime_database_url, replay_page_size=PAGE_SIZE) as realtime,
    ):
        flo = subscribe(realtime, user)
        subscribe(realtime, bystander)
        for round_number in range(5):
            async with committing(connection) as ids:
                await connection.execute(
                    "SELECT pg_notify('fastapi_pg_sse', n || ' test_feed ' || $1)"
                    " FROM generate_series(1, $2) AS n",
                    bystander,
                    flood,
                )
                for _ in range(3):
                    await FEED.emit(
                        connection,
                        target_user_id=user,
                        event_type="real",
                        payload={"round": round_number},
                    )
            emitted.extend(ids)
        frames = await read_frames(flo, len(emitted))
        marker = await emit(connection, FEED, user, "marker")
        after = await read_frames(flo, 1)
        dropped = realtime.metrics().notifications_dropped
    assert frame_ids(frames) == emitted
    assert frame_ids(after) == [marker], "an event came twice"
    assert dropped == 0, "a notification only wakes the listener: none is dropped"


def _listener_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "fastapi_pg_sse.listener" and record.levelno >= logging.WARNING
    ]
