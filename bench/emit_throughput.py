"""Emit throughput, before and after a user's events stopped waiting for other users' emitters.

fastapi-pg-sse 0.2's emit function took one advisory lock per channel and held it until commit,
so every emitter of a channel waited for every other. Now it locks the target user's row of
`<channel>_event_locks`: a user's events still commit in id order, which replay relies on, and
emitters for different users run side by side. Both functions run here, in one database, in the
same run, interleaved: each connection emits to a user of its own, in transactions of 1 or 100
events, and the figure is events committed per second.

    python bench/emit_throughput.py [--seconds S]
"""

import argparse
import asyncio
import time

import asyncpg
from _database import AFTER, BEFORE, bench_database

CONNECTIONS = (1, 4, 16)
EVENTS_PER_TRANSACTION = (1, 100)


async def emitted_per_second(
    url: str, channel: str, connections: int, per_transaction: int, seconds: float
) -> float:
    """Events committed per second by `connections` emitters, each to a user of its own."""
    pool = await asyncpg.create_pool(url, min_size=connections, max_size=connections)
    statement = f"SELECT {channel}_emit($1, 'tick', '{{\"n\": 1}}'::jsonb)"
    deadline = time.perf_counter() + seconds
    committed = 0

    async def emitter(user: str) -> None:
        nonlocal committed
        async with pool.acquire() as connection:
            while time.perf_counter() < deadline:
                async with connection.transaction():
                    for _ in range(per_transaction):
                        await connection.fetchval(statement, user)
                committed += per_transaction

    started = time.perf_counter()
    await asyncio.gather(*(emitter(f"user-{number}") for number in range(connections)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return committed / elapsed


async def run(url: str, seconds: float) -> None:
    print(f"events/s committed, {seconds:g} s per figure; each connection emits to its own user")
    print(f"{'connections':>11} {'per tx':>6} {'before':>9} {'after':>9} {'after/before':>12}")
    for per_transaction in EVENTS_PER_TRANSACTION:
        for connections in CONNECTIONS:
            before = await emitted_per_second(url, BEFORE, connections, per_transaction, seconds)
            after = await emitted_per_second(url, AFTER, connections, per_transaction, seconds)
            print(
                f"{connections:>11} {per_transaction:>6} {before:>9.0f} {after:>9.0f}"
                f" {after / before:>11.2f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3, help="per figure (3)")
    seconds = parser.parse_args().seconds
    with bench_database() as url:
        asyncio.run(run(url, seconds))


if __name__ == "__main__":
    main()
