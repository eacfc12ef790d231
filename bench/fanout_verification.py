"""What reading each announced event from its table costs the listener, against trusting NOTIFY.

fastapi-pg-sse 0.2's listener took an event from its notification's payload, so a forged
notification could put a made-up event on a stream and hide the real one. Now a notification
(one per channel and audience of a committing transaction, on the NOTIFY channel
`fastapi_pg_sse`) only wakes the listener, which reads on from the runtime's table,
`fastapi_pg_sse.events`, after its watermark: one range scan per wake-up (the notifications that
came meanwhile join it). Both listeners run here in the same run, each on its version of
emitting (see `_database.py`): 0.2's channel, one notification per event carrying it, and
`fastapi_pg_sse.emit`.

- burst: 20,000 events for 200 users, each with an open stream, committed in one transaction;
  the figure is events delivered per second, from the end of the commit (which, now, gives the
  ids and moves the events into the table) to the last delivery;
- one by one: 500 events emitted one at a time, each awaited by its stream; the figure is the
  median time from commit to delivery.

    python bench/fanout_verification.py
"""

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable

import asyncpg
from _database import CHANNEL_LOCK, CURRENT, bench_database
from fastapi_pg_sse.channel import Event
from fastapi_pg_sse.hub import Hub, Subscriber
from fastapi_pg_sse.listener import Listener, Wakeups
from pydantic import SecretStr

USERS = 200
BURST_EVENTS = 20_000
ONE_BY_ONE = 500


class TrustingListener(Listener):
    """0.2's delivery: the event as its notification describes it, no query.

    0.2 notified on each channel's own name, with `<id> <type> <user>\\n<payload>`.
    """

    async def _listen(self, connection: asyncpg.Connection) -> Wakeups:
        wakeups = Wakeups()
        self._announced: list[Event] = []

        def on_notification(_: object, __: int, channel: str, payload: object) -> None:
            self._received += 1
            header, _, data = str(payload).partition("\n")
            event_id, event_type, user = header.split(" ", 2)
            self._announced.append(Event(int(event_id), event_type, user, data, channel=channel))
            wakeups.request("read")

        connection.add_termination_listener(lambda _: wakeups.request("lost"))
        for name in self._hub.channels():  # those with streams, before the listener starts
            await connection.add_listener(name, on_notification)
        self._connected.set()
        return wakeups

    async def _read_on(self, connection: asyncpg.Connection) -> Counter[str]:
        """Publish what the notifications carried, from the pump as the listener does."""
        announced, self._announced = self._announced, []
        for event in announced:
            self._hub.publish(event)
        return Counter(event.channel for event in announced)


async def drain(subscriber: Subscriber) -> None:
    while await subscriber.next_chunk() is not None:
        pass


def emit_0_2(user: str, payload: str) -> str:
    """A call of 0.2's emit function, as SQL."""
    return f"{CHANNEL_LOCK}_emit({user}, 'tick', {payload})"


def emit_now(user: str, payload: str) -> str:
    """A call of the runtime's emit, as SQL."""
    return f"fastapi_pg_sse.emit('{CURRENT}', {user}, 'tick', {payload})"


async def measure(
    url: str, channel: str, listener_class: type[Listener], emit: Callable[[str, str], str]
) -> tuple[float, float]:
    """(events delivered per second in the burst, median ms from commit to delivery), the events
    emitted with the SQL `emit(user, payload)` gives."""
    hub = Hub()
    subscribers = [Subscriber((channel,), f"user-{n}", 2**30) for n in range(USERS)]
    for subscriber in subscribers:
        hub.add(subscriber)
    drains = [asyncio.create_task(drain(subscriber)) for subscriber in subscribers]
    listener = listener_class(
        SecretStr(url), hub, keepalive_seconds=10, max_backoff_seconds=1,
        page_size=1000, page_bytes=4 * 2**20,
    )  # fmt: skip
    await listener.start()
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    statement = "SELECT " + emit("$1", """'{"n": 1}'::jsonb""")
    burst = "SELECT " + emit(f"'user-' || n % {USERS}", "'{}'")
    try:
        async with pool.acquire() as connection:
            await connection.execute(  # one transaction: its notifications arrive at once
                f"{burst} FROM generate_series(1, {BURST_EVENTS}) AS n"
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
    trusting = await measure(url, CHANNEL_LOCK, TrustingListener, emit_0_2)
    verifying = await measure(url, CURRENT, Listener, emit_now)
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
