"""What reading each announced event from its table costs the listener, against trusting NOTIFY.

fastapi-pg-sse 0.2's listener took an event from its notification's payload, so a forged
notification could put a made-up event on a stream and hide the real one. Now a notification
only says which user has something new, and the listener reads that user's events from the
table: a query per batch of notifications (those queued meanwhile join the batch). Both
listeners run here in the same run, each on its channel version (see `_database.py`):

- burst: 20,000 events for 200 users, each with an open stream, committed in one transaction;
  the figure is events delivered per second, from the commit to the last delivery;
- one by one: 500 events emitted one at a time, each awaited by its stream; the figure is the
  median time from commit to delivery.

    python bench/fanout_verification.py
"""

import asyncio
import statistics
import time

import asyncpg
from _database import AFTER, BEFORE, bench_database
from fastapi_pg_sse.channel import Channel, Event
from fastapi_pg_sse.hub import Hub, Subscriber
from fastapi_pg_sse.listener import Listener

USERS = 200
BURST_EVENTS = 20_000
ONE_BY_ONE = 500


class TrustingListener(Listener):
    """0.2's delivery: the event as its notification describes it, no query."""

    async def _deliver_announced(
        self, connection: asyncpg.Connection, notifications: list[tuple[str, str]]
    ) -> None:
        for name, payload in notifications:
            header, _, data = payload.partition("\n")
            raw_id, event_type, user = header.split(" ", 2)
            self._hub.publish(name, Event(int(raw_id), event_type, user, data))


async def drain(subscriber: Subscriber) -> None:
    while await subscriber.next_chunk() is not None:
        pass


async def measure(
    url: str, channel: Channel, listener_class: type[Listener]
) -> tuple[float, float]:
    """(events delivered per second in the burst, median ms from commit to delivery)."""
    hub = Hub()
    subscribers = [Subscriber(channel.name, f"user-{n}", 2**30) for n in range(USERS)]
    for subscriber in subscribers:
        hub.add(subscriber, delivered_through=0)
    drains = [asyncio.create_task(drain(subscriber)) for subscriber in subscribers]
    listener = listener_class(
        url, [channel], hub, keepalive_seconds=10, max_backoff_seconds=1,
        page_size=1000, page_bytes=4 * 2**20,
    )  # fmt: skip
    await listener.start()
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    statement = f"SELECT {channel.emit_function}($1, 'tick', '{{\"n\": 1}}'::jsonb)"
    try:
        async with pool.acquire() as connection:
            await connection.execute(  # one transaction: its notifications arrive at once
                f"SELECT {channel.emit_function}('user-' || n % {USERS}, 'tick', '{{}}')"
                f" FROM generate_series(1, {BURST_EVENTS}) AS n"
            )
        committed = time.perf_counter()
        while hub.counters.events_delivered < BURST_EVENTS:
            await asyncio.sleep(0.001)
        burst_rate = BURST_EVENTS / (time.perf_counter() - committed)

        latencies = []
        async with pool.acquire() as connection:
            for _ in range(ONE_BY_ONE):
                delivered = hub.counters.events_delivered
                await connection.fetchval(statement, "user-0")
                committed = time.perf_counter()
                while hub.counters.events_delivered == delivered:
                    await asyncio.sleep(0)
                latencies.append(time.perf_counter() - committed)
        return burst_rate, statistics.median(latencies) * 1000
    finally:
        await pool.close()
        await listener.stop()
        hub.close_all()
        await asyncio.gather(*drains)


async def run(url: str) -> None:
    trusting = await measure(url, Channel(BEFORE), TrustingListener)
    verifying = await measure(url, Channel(AFTER), Listener)
    print(f"{USERS} users with a stream each; a burst of {BURST_EVENTS} events in one commit")
    print(f"{'':>28} {'trusting':>9} {'verifying':>9} {'ratio':>7}")
    print(
        f"{'burst: delivered events/s':>28} {trusting[0]:>9.0f} {verifying[0]:>9.0f}"
        f" {verifying[0] / trusting[0]:>6.2f}x"
    )
    print(
        f"{'one by one: median ms':>28} {trusting[1]:>9.2f} {verifying[1]:>9.2f}"
        f" {verifying[1] / trusting[1]:>6.2f}x"
    )


def main() -> None:
    with bench_database() as url:
        asyncio.run(run(url))


if __name__ == "__main__":
    main()
