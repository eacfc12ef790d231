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
  the figure is events delivered per second, from the listener's first read after the commit
  (its wake-up: for 0.2's, its first notifications already parsed) to the last delivery. (The
  clock once started as the emitter's commit returned, which races the listener: 0.2's, woken
  by the first of its 20,000 notifications, had sometimes delivered them all by then.)
- one by one: 500 events emitted one at a time, each awaited by its stream; the figure is the
  median time from commit to delivery.

Both listeners run in each round, in turn (each going first in every other round); the figures
are the medians of the rounds and their ranges, each ratio taken within a round. Every event is
checked to reach its user's stream once, in id order, for both.

    python bench/fanout_verification.py              # 3 rounds, about half a minute
    python bench/fanout_verification.py --smoke      # 20 users, 2,000 events, 1 round
    python bench/fanout_verification.py --burst 100000   # a page costs its rows, not the burst's
    python bench/fanout_verification.py --json figures.json
"""

import argparse
import asyncio
import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import asyncpg
from _database import CHANNEL_LOCK, CURRENT, bench_database
from fastapi_pg_sse.channel import Event
from fastapi_pg_sse.hub import Hub, Subscriber
from fastapi_pg_sse.listener import Listener, Wakeups
from pydantic import SecretStr

_FRAME_ID = re.compile(rb"^id: ([0-9]+)$", re.MULTILINE)


@dataclass(frozen=True)
class Load:
    """How many streams, and events, a round takes."""

    users: int = 200
    burst_events: int = 20_000
    one_by_one: int = 500


SMOKE = Load(users=20, burst_events=2_000, one_by_one=20)


class ClockedListener(Listener):
    """The runtime's listener, noting when it first reads after `woken_at` is cleared."""

    woken_at: float | None = None

    async def _read_on(self, connection: asyncpg.Connection) -> Counter[str]:
        if self.woken_at is None:
            self.woken_at = time.perf_counter()
        return await super()._read_on(connection)


class TrustingListener(ClockedListener):
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
        for name in self._hub.open_streams():  # those with streams, before the listener starts
            await connection.add_listener(name, on_notification)
        self._connected.set()
        return wakeups

    async def _read_on(self, connection: asyncpg.Connection) -> Counter[str]:
        """Publish what the notifications carried, from the pump as the listener does."""
        if self.woken_at is None:
            self.woken_at = time.perf_counter()
        announced, self._announced = self._announced, []
        for event in announced:
            self._hub.publish(event)
        return Counter(event.channel for event in announced)


@dataclass(frozen=True)
class Measurement:
    burst_events_per_second: float
    median_ms: float
    """Commit to delivery, one event at a time."""


async def collect(subscriber: Subscriber, ids: list[int]) -> None:
    """Note the id of every frame the stream gets, until it closes."""
    while (chunk := await subscriber.next_chunk()) is not None:
        ids.extend(int(found) for found in _FRAME_ID.findall(chunk))


def emit_0_2(user: str, payload: str) -> str:
    """A call of 0.2's emit function, as SQL."""
    return f"{CHANNEL_LOCK}_emit({user}, 'tick', {payload})"


def emit_now(user: str, payload: str) -> str:
    """A call of the runtime's emit, as SQL."""
    return f"fastapi_pg_sse.emit('{CURRENT}', {user}, 'tick', {payload})"


def check_delivery(load: Load, received: list[list[int]]) -> None:
    """Each user got each of its events once, in id order: its share of the burst, and user-0
    the events one by one too."""
    for user, ids in enumerate(received):
        expected = load.burst_events // load.users + (user < load.burst_events % load.users)
        expected += load.one_by_one if user == 0 else 0
        if len(ids) != expected or ids != sorted(set(ids)):
            raise AssertionError(
                f"user-{user} got {len(ids)} event(s), {len(set(ids))} distinct, of {expected}"
                f"{'' if ids == sorted(ids) else ', out of order'}"
            )


async def measure(
    url: str,
    channel: str,
    listener_class: type[ClockedListener],
    emit: Callable[[str, str], str],
    load: Load,
) -> Measurement:
    """The burst's delivery rate, and the median commit to delivery one event at a time, the
    events emitted with the SQL `emit(user, payload)` gives; every event checked delivered."""
    hub = Hub()
    subscribers = [Subscriber((channel,), f"user-{n}", 2**30) for n in range(load.users)]
    received: list[list[int]] = [[] for _ in subscribers]
    for subscriber in subscribers:
        hub.add(subscriber)
    collectors = [
        asyncio.create_task(collect(subscriber, ids))
        for subscriber, ids in zip(subscribers, received, strict=True)
    ]
    listener = listener_class(
        SecretStr(url), hub, keepalive_seconds=10, max_backoff_seconds=1,
        page_size=1000, page_bytes=4 * 2**20,
    )  # fmt: skip
    await listener.start()
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    statement = "SELECT " + emit("$1", """'{"n": 1}'::jsonb""")
    burst = "SELECT " + emit(f"'user-' || (n - 1) % {load.users}", "'{}'")
    try:
        async with pool.acquire() as connection:
            listener.woken_at = None
            await connection.execute(  # one transaction: its notifications arrive at once
                f"{burst} FROM generate_series(1, {load.burst_events}) AS n"
            )
        while hub.counters.events_delivered < load.burst_events:
            await asyncio.sleep(0.001)
        assert listener.woken_at is not None, "the listener read the burst"
        burst_rate = load.burst_events / (time.perf_counter() - listener.woken_at)

        latencies = []
        async with pool.acquire() as connection:
            for _ in range(load.one_by_one):
                delivered = hub.counters.events_delivered
                await connection.fetchval(statement, "user-0")
                committed = time.perf_counter()
                while hub.counters.events_delivered == delivered:
                    await asyncio.sleep(0)
                latencies.append(time.perf_counter() - committed)
    finally:
        await pool.close()
        await listener.stop()
        hub.close_all()
        await asyncio.gather(*collectors)
    check_delivery(load, received)
    return Measurement(burst_rate, statistics.median(latencies) * 1000)


LISTENERS = {
    "trusting": (CHANNEL_LOCK, TrustingListener, emit_0_2),
    "verifying": (CURRENT, ClockedListener, emit_now),
}


async def run(url: str, load: Load, rounds: int) -> dict[str, list[Measurement]]:
    """Each listener's measurements, a round each, the two in turn (each first in every other
    round)."""
    results: dict[str, list[Measurement]] = {name: [] for name in LISTENERS}
    for round_ in range(rounds):
        names = list(LISTENERS) if round_ % 2 == 0 else list(reversed(LISTENERS))
        for name in names:
            results[name].append(await measure(url, *LISTENERS[name], load))
    return results


def spread(values: list[float], digits: int) -> str:
    """`median (low-high)`."""
    return (
        f"{statistics.median(values):.{digits}f}"
        f" ({min(values):.{digits}f}-{max(values):.{digits}f})"
    )


def table(load: Load, results: dict[str, list[Measurement]]) -> str:
    trusting, verifying = results["trusting"], results["verifying"]
    rates = [[m.burst_events_per_second for m in ms] for ms in (trusting, verifying)]
    medians = [[m.median_ms for m in ms] for ms in (trusting, verifying)]
    rate_ratios = [v / t for t, v in zip(*rates, strict=True)]
    latency_gaps = [v - t for t, v in zip(*medians, strict=True)]
    rounds = len(trusting)
    return "\n".join(
        [
            f"{load.users} users with a stream each; a burst of {load.burst_events} events in one"
            f" commit, then {load.one_by_one} one by one; medians (ranges) of {rounds} round(s)",
            f"burst, events/s:        trusting {spread(rates[0], 0)}",
            f"                        verifying {spread(rates[1], 0)}",
            f"                        ratio {spread(rate_ratios, 2)}",
            f"one by one, median ms:  trusting {spread(medians[0], 3)}",
            f"                        verifying {spread(medians[1], 3)}",
            f"                        verifying - trusting {spread(latency_gaps, 3)}",
            "every event delivered once, in id order, to its user's stream, by both listeners",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a small load, one round")
    parser.add_argument("--rounds", type=int, help="rounds (default 3, 1 with --smoke)")
    parser.add_argument("--burst", type=int, help="events in the burst (default 20,000)")
    parser.add_argument("--json", type=Path, help="write the measurements there")
    arguments = parser.parse_args()
    load = SMOKE if arguments.smoke else Load()
    if arguments.burst is not None:
        load = replace(load, burst_events=arguments.burst)
    rounds = arguments.rounds or (1 if arguments.smoke else 3)
    with bench_database() as url:
        results = asyncio.run(run(url, load, rounds))
    print(table(load, results))
    if arguments.json is not None:
        measured = {name: [asdict(m) for m in ms] for name, ms in results.items()}
        arguments.json.write_text(json.dumps({"load": asdict(load), "results": measured}))


if __name__ == "__main__":
    main()
