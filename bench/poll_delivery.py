"""Commit-to-delivery time of the poll read mode, against the notify mode, in the same run.

A kernel of this process (`fastapi_pg_sse.Realtime`, as an app runs it) reads in one mode; one
stream's subscriber joins its hub. Emitters commit one event per transaction, each numbered in
its payload, at a steady rate from several connections: in notify mode by NOTIFY-delivery
sessions (the default), in poll mode by poll-delivery ones (`fastapi_pg_sse.delivery` 'poll',
whose commits take no turn). The time from each commit's return to its frame's arrival at the
subscriber is the figure: p50 and p99 of every event, per mode, the modes interleaved, each
going first in turn, a kernel of its own each round. Every event must arrive once, in id order,
and in each emitter's order, or the run fails.

The poll mode's bound is its interval (`REALTIME_POLL_INTERVAL_SECONDS`, 0.02 s by default) plus
two queries (number, then read); notify's is one notification and one read.

    python bench/poll_delivery.py [--seconds S] [--rate EVENTS_PER_S] [--connections N]
        [--repeats R] [--poll-interval S]
"""

import argparse
import asyncio
import json
import os
import statistics
import time
from contextlib import ExitStack
from typing import Literal

import asyncpg
from fastapi_pg_sse import Realtime, RealtimeSettings
from fastapi_pg_sse.hub import Subscriber
from fastapi_pg_sse.testing import TEST_JWT_SECRET, embedded_postgres, schema_database
from pydantic import SecretStr

CHANNEL = "bench_poll"
USER = "reader"
Mode = Literal["notify", "poll"]
MODES: tuple[Mode, ...] = ("notify", "poll")


async def measure(
    url: str, mode: Mode, *, seconds: float, rate: float, connections: int, interval: float
) -> dict[str, float]:
    """Run a kernel in `mode`, emit for `seconds` at `rate` events/s from `connections`
    sessions of the matching delivery; return p50/p99 in ms and the events delivered."""
    settings = RealtimeSettings(
        database_url=SecretStr(url),
        jwt_secret=SecretStr(TEST_JWT_SECRET),
        read_mode=mode,
        poll_interval_seconds=interval,
        gc_freeze_at_start=False,
    )
    realtime = Realtime(settings)
    await realtime.start()
    subscriber = Subscriber((CHANNEL,), USER, 64 * 1024 * 1024)
    realtime.hub.add(subscriber)
    committed_at: dict[int, float] = {}
    arrived: list[tuple[int, int, float]] = []  # (id, number, arrival)
    server_settings = {"fastapi_pg_sse.delivery": "poll"} if mode == "poll" else {}
    pool = await asyncpg.create_pool(
        url, min_size=connections, max_size=connections, server_settings=server_settings
    )
    total = max(1, round(seconds * rate))

    async def emitter(offset: int) -> None:
        async with pool.acquire() as connection:
            start = time.perf_counter()
            for number in range(offset, total, connections):
                await asyncio.sleep(max(0.0, start + number / rate - time.perf_counter()))
                await connection.execute(
                    "SELECT fastapi_pg_sse.emit($1, $2, 'tick', $3::jsonb)",
                    CHANNEL,
                    USER,
                    json.dumps({"n": number}),
                )
                committed_at[number] = time.perf_counter()

    async def reader() -> None:
        while len(arrived) < total:
            chunk = await subscriber.next_chunk()
            now = time.perf_counter()
            assert chunk is not None, "the subscriber was closed"
            for fields in frames(chunk):
                arrived.append((int(fields["id"]), json.loads(fields["data"])["n"], now))

    reading = asyncio.create_task(reader())
    try:
        await asyncio.gather(*(emitter(offset) for offset in range(connections)))
        await asyncio.wait_for(reading, 60)
    finally:
        reading.cancel()
        await pool.close()
        await realtime.stop()
    check_once_in_order(arrived, total, connections)
    latencies = sorted((at - committed_at[number]) * 1000 for _, number, at in arrived)
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))],
        "events": len(arrived),
    }


def frames(chunk: bytes) -> list[dict[str, str]]:
    """The fields of each event frame of a chunk (not comments, such as heartbeats)."""
    parsed = []
    for frame in chunk.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line)
        if "data" in fields and "id" in fields:
            parsed.append(fields)
    return parsed


def check_once_in_order(
    arrived: list[tuple[int, int, float]], total: int, connections: int
) -> None:
    """Every event once, ids increasing, and each emitter's events in the order it committed
    them (a session's transactions commit one after the other)."""
    ids = [event_id for event_id, _, _ in arrived]
    numbers = [number for _, number, _ in arrived]
    assert sorted(numbers) == list(range(total)), "an event was lost or duplicated"
    assert ids == sorted(set(ids)), "ids out of order or repeated"
    for offset in range(connections):
        own = [number for number in numbers if number % connections == offset]
        assert own == sorted(own), "an emitter's events out of its commit order"


async def run(url: str, arguments: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for repeat in range(arguments.repeats):
        shift = repeat % len(MODES)
        for mode in MODES[shift:] + MODES[:shift]:
            figures = await measure(
                url,
                mode,
                seconds=arguments.seconds,
                rate=arguments.rate,
                connections=arguments.connections,
                interval=arguments.poll_interval,
            )
            results[mode].append(figures)
    return results


def report(results: dict[str, list[dict[str, float]]], arguments: argparse.Namespace) -> None:
    print(
        f"Commit to delivery, ms: {arguments.rate:g} events/s from {arguments.connections}"
        f" connections for {arguments.seconds:g} s, {arguments.repeats} interleaved repeats,"
        f" poll interval {arguments.poll_interval:g} s; median (range) over the repeats"
    )
    print(f"{'mode':<8} {'p50 ms':>20} {'p99 ms':>20} {'events':>8}")
    for mode, runs in results.items():
        cells = []
        for key in ("p50_ms", "p99_ms"):
            values = [figures[key] for figures in runs]
            cells.append(f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})")
        events = sum(int(figures["events"]) for figures in runs)
        print(f"{mode:<8} {cells[0]:>20} {cells[1]:>20} {events:>8}")
    print("every event delivered once, in order")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="of emitting per figure (10)")
    parser.add_argument("--rate", type=float, default=200, help="events/s emitted (200)")
    parser.add_argument("--connections", type=int, default=4, help="emitting sessions (4)")
    parser.add_argument("--repeats", type=int, default=3, help="of each mode (3)")
    parser.add_argument("--poll-interval", type=float, default=0.02, help="seconds (0.02)")
    parser.add_argument("--json", help="also write the figures to this file")
    arguments = parser.parse_args()
    with ExitStack() as stack:
        server = os.environ.get("DATABASE_URL") or stack.enter_context(embedded_postgres())
        url = stack.enter_context(schema_database(server))
        results = asyncio.run(run(url, arguments))
    report(results, arguments)
    if arguments.json:
        with open(arguments.json, "w", encoding="utf-8") as output:
            json.dump(results, output)


if __name__ == "__main__":
    main()
