"""Under load, a client that stops reading is dropped without holding back anyone else.

One reader stops reading while 20,000 events flow to 100 others: every other reader receives
every event in order, the server's memory stays bounded although 100 MB of events are meant for
the slow reader, and the server closes the slow reader's stream (a client recovers from that
with `Last-Event-ID`, as the replay tests show).
"""

from pathlib import Path

import anyio
import pytest

from fastapi_pg_sse.testing import ServerFactory, connected
from tests.helpers import RawStream, server_metrics

pytestmark = pytest.mark.anyio

READERS = 100
EVENTS = 20_000
BATCH = 500
SLOW_EVENT_BYTES = 50_000  # one such event per ten: 2,000 events, 100 MB for the slow reader


def resident_megabytes(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


async def test_a_client_that_stops_reading_is_dropped_while_100_others_get_everything(
    start_realtime_server: ServerFactory, realtime_database_url: str
) -> None:
    server = start_realtime_server(REALTIME_MAX_STREAMS_PER_USER=str(READERS))
    pid = server.process.pid
    readers = [await RawStream.open(server, "crowd") for _ in range(READERS)]
    slow = await RawStream.open(server, "laggard")
    baseline = peak = resident_megabytes(pid)
    async with connected(realtime_database_url) as connection:
        async with anyio.create_task_group() as tasks:
            for reader in readers:
                tasks.start_soon(reader.read, EVENTS)
            for start in range(1, EVENTS + 1, BATCH):
                async with connection.transaction():
                    await connection.execute(
                        "SELECT fastapi_pg_sse.emit('test_feed', 'crowd', 'load',"
                        " jsonb_build_object('n', n)) FROM generate_series($1::int, $2::int) AS n",
                        start,
                        start + BATCH - 1,
                    )
                    for _ in range(BATCH // 10):
                        await connection.execute(
                            "SELECT fastapi_pg_sse.emit('test_feed', 'laggard', 'load',"
                            " jsonb_build_object('padding', repeat('x', $1)))",
                            SLOW_EVENT_BYTES,
                        )
                # Readers that keep up: each batch is read before the next one is sent.
                with anyio.fail_after(120):
                    while any(reader.frames < start + BATCH - 1 for reader in readers):
                        peak = max(peak, resident_megabytes(pid))
                        await anyio.sleep(0.01)
        newest = await connection.fetchval(
            "SELECT max(id) FROM fastapi_pg_sse.events"
            " WHERE channel = 'test_feed' AND target_user_id = 'crowd'"
        )
    with anyio.fail_after(60):
        await slow.read()  # what reached it before it was dropped, until the server closes
    for reader in [*readers, slow]:
        reader.close()
    metrics = await server_metrics(server)

    assert all(reader.frames == EVENTS for reader in readers)
    assert all(reader.last_id == newest for reader in readers)
    assert slow.frames < EVENTS // 10, "the slow reader was not dropped"
    assert metrics["clients_dropped"] == 1
    # An unbounded queue would hold the slow reader's 100 MB.
    assert peak - baseline < 50, f"server memory grew by {peak - baseline:.0f} MB"
