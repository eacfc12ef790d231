"""Under load, a client that stops reading is dropped without holding back anyone else.

One reader stops reading while 20,000 events flow to 100 others: every other reader receives
every event in order, the server's memory stays bounded although 100 MB of events are meant for
the slow reader, and the server closes the slow reader's stream (a client recovers from that
with `Last-Event-ID`, as the generated replay tests show).
"""

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import anyio
import asyncpg
import pytest

from tests.golden_cases import generate
from tests.served import ServedShop, serve_shop

READERS = 100
EVENTS = 20_000
BATCH = 500
SLOW_EVENT_BYTES = 50_000  # one such event per batch: 2,000 events, 100 MB for the slow reader
FRAME_MARKER = b"event: load\n"


class RawReader:
    """An SSE client reading raw bytes, cheap enough to run a hundred in one test process."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.frames = 0
        self.last_id = 0

    @classmethod
    async def open(cls, shop: ServedShop, user: str) -> "RawReader":
        host, port = shop.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        path = f"/inventory/events/stock/stream?access_token={shop.token(user)}"
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        return cls(reader, writer)

    async def read(self, until_frames: int | None = None) -> None:
        """Count frames until `until_frames` arrived, or until the server closes the stream."""
        tail = b""
        while until_frames is None or self.frames < until_frames:
            data = await self.reader.read(65536)
            if not data:
                return
            window = tail + data
            self.frames += window.count(FRAME_MARKER)
            if ids := re.findall(rb"id: (\d+)\n", window):
                self.last_id = int(ids[-1])
            tail = window[-(len(FRAME_MARKER) - 1) :]

    def close(self) -> None:
        self.writer.close()


def resident_megabytes(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


@pytest.fixture
def served(tmp_path: Path, postgres_url: str) -> Iterator[ServedShop]:
    project = generate("stock-in-inventory", tmp_path / "shop")
    with serve_shop(project, postgres_url) as shop:
        yield shop


@pytest.mark.anyio
async def test_a_client_that_stops_reading_is_dropped_while_100_others_get_everything(
    served: ServedShop,
) -> None:
    readers = [await RawReader.open(served, "crowd") for _ in range(READERS)]
    slow = await RawReader.open(served, "laggard")
    baseline = peak = resident_megabytes(served.process.pid)
    connection = await asyncpg.connect(served.database_url)
    try:
        async with anyio.create_task_group() as tasks:
            for reader in readers:
                tasks.start_soon(reader.read, EVENTS)
            for start in range(1, EVENTS + 1, BATCH):
                async with connection.transaction():
                    await connection.execute(
                        "SELECT inventory_stock_emit('crowd', 'load',"
                        " jsonb_build_object('n', n))"
                        " FROM generate_series($1::int, $2::int) AS n",
                        start,
                        start + BATCH - 1,
                    )
                    for _ in range(BATCH // 10):
                        await connection.execute(
                            "SELECT inventory_stock_emit('laggard', 'load',"
                            " jsonb_build_object('padding', repeat('x', $1)))",
                            SLOW_EVENT_BYTES,
                        )
                # Readers that keep up: each batch is read before the next one is sent.
                with anyio.fail_after(60):
                    while any(reader.frames < start + BATCH - 1 for reader in readers):
                        peak = max(peak, resident_megabytes(served.process.pid))
                        await anyio.sleep(0.01)
        newest = await connection.fetchval(
            "SELECT max(id) FROM inventory_stock_events WHERE target_user_id = 'crowd'"
        )
    finally:
        await connection.close()
    with anyio.fail_after(30):
        await slow.read()
    for reader in [*readers, slow]:
        reader.close()

    assert all(reader.frames == EVENTS for reader in readers)
    assert all(reader.last_id == newest for reader in readers)
    assert slow.frames < EVENTS // 10, "the slow reader was not dropped"
    # An unbounded queue would hold the slow reader's 100 MB.
    assert peak - baseline < 50, f"server memory grew by {peak - baseline:.0f} MB"
