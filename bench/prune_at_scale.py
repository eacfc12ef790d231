"""Pruning at scale: whether pruning a channel of a million events holds up its emitters, and
whether the events table stops growing under a steady load of emitting and pruning.

Emitters during a prune. `fastapi_pg_sse.prune` deletes the channel's events older than `keep`
in one statement, then raises the channel's horizon (`continue_after`), which takes
`fastapi_pg_sse.commit_order`, the lock every emitting commit takes in turn, until the prune's
transaction ends. The DELETE itself takes no lock an emitter waits for; what it can cost them is
its write-ahead log, which their commits flush behind it. Setup, not measured: a channel is
filled with `--events` old events by one INSERT ... SELECT from generate_series straight into
`fastapi_pg_sse.events` (ids from its sequence, `created_at` 30 days ago, a millisecond apart,
ten users), then vacuumed and checkpointed, so that every mode starts from the same table. Then
`--emitters` connections emit one event per transaction (`fastapi_pg_sse.emit` on the same
channel, autocommit) as fast as they can, and each commit's latency is recorded while:

- nothing prunes, for `--baseline-seconds` (the baseline);
- `Channel.prune(keep=1 day)` deletes the filled events in one statement;
- the same in slices of `--batch-size` (`prune_in_slices`: `fastapi_pg_sse.prune` up to the
  `created_at` of the slice's last event, each slice in a transaction of its own, then with
  `keep` itself), the alternative measured here and not taken: each slice holds the commit turn
  while its own WAL is flushed, and the slices take longer and write more WAL in all.

The modes run interleaved (each going first in turn), `--repeats` times. Reported: emit latency
p50, p99 and max, each mode's ratio to the baseline of the same repeat, the emitters' commits
per second, the prune's duration and the WAL written meanwhile; medians over the repeats and
their ranges. Checked: the prune deleted exactly the filled events, and every emitted event is
in the table.

Steady load. `--rate` events a second (one per transaction, from four connections, each on a
schedule) on a channel pruned every `--interval` seconds with keep `--keep` seconds, for
`--cycles` cycles; after each prune, `pg_total_relation_size` of `fastapi_pg_sse.events`, its
heap and its indexes, its live and dead rows and how many times autovacuum has run on it. The
table stops growing once autovacuum reclaims what the prunes delete: PostgreSQL's defaults are
relied on (`autovacuum = on`, `autovacuum_naptime = 1min`, `autovacuum_vacuum_scale_factor =
0.2`, `autovacuum_vacuum_threshold = 50`), so the run must span several naptimes (an index
page a vacuum empties is reused only after the next one); the largest size of each third of the
cycles is compared.

    python bench/prune_at_scale.py [--smoke] [--events N] [--emitters C] [--batch-size B]
        [--repeats R] [--baseline-seconds S] [--rate E] [--interval S] [--keep S] [--cycles K]
        [--only emitters|steady] [--json PATH]
"""

import argparse
import asyncio
import json
import math
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from _database import bench_database
from fastapi_pg_sse import Channel, Connection

CHANNEL: Channel = Channel("bench_prune")
USERS = 10
FILL = f"""
INSERT INTO fastapi_pg_sse.events (id, channel, target_user_id, type, payload, created_at, xact_id)
SELECT nextval('fastapi_pg_sse.event_ids'), $1, 'user-' || n % {USERS}, 'filled', '{{"n": 1}}',
    now() - interval '30 days' + n * interval '1 millisecond', pg_current_xact_id()
FROM generate_series(1, $2::int) AS n
"""
EMIT = "SELECT fastapi_pg_sse.emit($1, $2, 'emitted', '{\"n\": 1}')"
KEEP = timedelta(days=1)
SIZES = """
SELECT pg_total_relation_size('fastapi_pg_sse.events') AS total,
    pg_relation_size('fastapi_pg_sse.events') AS heap,
    pg_indexes_size('fastapi_pg_sse.events') AS indexes,
    (SELECT count(*) FROM fastapi_pg_sse.events) AS live,
    n_dead_tup AS dead, autovacuum_count AS autovacuums
FROM pg_stat_user_tables WHERE relid = 'fastapi_pg_sse.events'::regclass
"""
SLICE = """
SELECT fastapi_pg_sse.prune($1, exact.age - interval '1 microsecond')
FROM (
    SELECT now() - created_at AS age FROM fastapi_pg_sse.events
    WHERE channel = $1 AND created_at < now() - $2::interval
    ORDER BY created_at OFFSET $3 - 1 LIMIT 1
) AS edge, LATERAL (
    SELECT edge.age - date_trunc('day', edge.age)
        + make_interval(hours => 24 * extract(day FROM edge.age)::int)
) AS exact (age)
"""
"""One slice: the channel's events committed at or before the `$3`-th oldest of those older
than `$2`, or no row if fewer remain. `prune`'s horizon is `now() - keep`, here that event's
`created_at` plus a microsecond, exactly: its age in hours, not days, which a time zone with
daylight saving time would make 23 or 25 hours long."""
Prune = Callable[[Connection], Awaitable[int | None]]


@dataclass
class Emitters:
    """Connections emitting one event per transaction until stopped, recording the latency of
    each commit that overlaps the action they run beside (see `run_while`)."""

    connections: list[Connection]
    window: list[float] = field(default_factory=lambda: [math.inf, math.inf])
    """When the action started and ended (perf_counter), until then infinite."""
    stopped: bool = False
    latencies: list[float] = field(default_factory=list)
    emitted: int = 0

    async def emit(self, connection: Connection, user: str, pause: float) -> None:
        due = time.perf_counter()
        while not self.stopped:
            started = time.perf_counter()
            await connection.execute(EMIT, CHANNEL.name, user)
            finished = time.perf_counter()
            self.emitted += 1
            if finished >= self.window[0] and started <= self.window[1]:
                self.latencies.append(finished - started)
            if pause:  # on a schedule: a slow commit is caught up with, not skipped
                due += pause
                await asyncio.sleep(max(0.0, due - time.perf_counter()))

    async def run_while(self, action: Awaitable[Any], *, settle: float, pause: float = 0) -> Any:
        """Emit from every connection, run `action` after `settle` seconds of emitting, and
        return what it returned; the commits in flight as it starts and ends count."""
        tasks = [
            asyncio.create_task(self.emit(connection, f"emitter-{number}", pause))
            for number, connection in enumerate(self.connections)
        ]
        await asyncio.sleep(settle)
        self.window[0] = time.perf_counter()
        try:
            return await action
        finally:
            self.window[1], self.stopped = time.perf_counter(), True
            await asyncio.gather(*tasks)


@dataclass
class Measurement:
    mode: str
    emits: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    seconds: float
    wal_mb: float
    deleted: int


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@asynccontextmanager
async def acquired(pool: asyncpg.Pool, count: int) -> AsyncIterator[list[Connection]]:
    """`count` connections of `pool`, released when the block ends."""
    async with AsyncExitStack() as stack:
        connections: list[Connection] = [
            await stack.enter_async_context(pool.acquire()) for _ in range(count)
        ]
        yield connections


async def fill(connection: Connection, events: int) -> None:
    """The setup: `events` old events on the channel, vacuumed and checkpointed."""
    await connection.execute(FILL, CHANNEL.name, events)
    await connection.execute("VACUUM (ANALYZE) fastapi_pg_sse.events")
    await connection.execute("CHECKPOINT")


async def empty(connection: Connection) -> None:
    await connection.execute("TRUNCATE fastapi_pg_sse.events, fastapi_pg_sse.pruned")


async def measure_mode(
    url: str, mode: str, prune: Prune, events: int, emitters: int, settle: float
) -> Measurement:
    """Fill the channel, then record emit latencies while `prune` runs; check what it left."""
    async with (
        asyncpg.create_pool(url, min_size=emitters + 1, max_size=emitters + 1) as pool,
        pool.acquire() as pruner,
    ):
        await fill(pruner, events)
        async with acquired(pool, emitters) as connections:
            start_lsn = await pruner.fetchval("SELECT pg_current_wal_lsn()")
            emitting = Emitters(connections)
            deleted, seconds = await emitting.run_while(timed(prune(pruner)), settle=settle)
            wal = await pruner.fetchval(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)", start_lsn
            )
        kept = await pruner.fetchrow(
            "SELECT count(*) FILTER (WHERE type = 'filled') AS filled,"
            " count(*) FILTER (WHERE type = 'emitted') AS emitted"
            " FROM fastapi_pg_sse.events WHERE channel = $1",
            CHANNEL.name,
        )
        assert kept is not None
        assert kept["emitted"] == emitting.emitted, (mode, kept, emitting.emitted)
        assert kept["filled"] == (events if deleted is None else 0), (mode, kept)
        assert deleted in (None, events), (mode, deleted)
        await empty(pruner)
    latencies = emitting.latencies
    return Measurement(
        mode=mode,
        emits=len(latencies),
        p50_ms=percentile(latencies, 0.5) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        max_ms=max(latencies) * 1000,
        seconds=seconds,
        wal_mb=float(wal) / 2**20,
        deleted=deleted or 0,
    )


async def prune_in_slices(connection: Connection, keep: timedelta, batch_size: int) -> int:
    """What `Channel.prune` would delete, in slices of at least `batch_size` of the oldest
    events (a slice ends after every event of its last commit, which share a `created_at`), each
    `fastapi_pg_sse.prune` in a transaction of its own, then the rest with `keep` itself."""
    deleted = 0
    while (sliced := await connection.fetchval(SLICE, CHANNEL.name, keep, batch_size)) is not None:
        deleted += sliced
    return deleted + await CHANNEL.prune(connection, keep=keep)


async def timed(action: Awaitable[int | None]) -> tuple[int | None, float]:
    """What `action` returns, and how long it took."""
    started = time.perf_counter()
    done = await action
    return done, time.perf_counter() - started


def modes(baseline_seconds: float, batch_size: int) -> dict[str, Prune]:
    async def nothing(_: Connection) -> None:
        await asyncio.sleep(baseline_seconds)

    async def one_statement(connection: Connection) -> int:
        return await CHANNEL.prune(connection, keep=KEEP)

    async def in_slices(connection: Connection) -> int:
        return await prune_in_slices(connection, KEEP, batch_size)

    return {
        "no prune (baseline)": nothing,
        "one statement": one_statement,
        f"slices of {batch_size:,}": in_slices,
    }


def median_range(values: list[float], digits: int = 2) -> str:
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"{middle:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


async def emitters_during_prune(url: str, arguments: argparse.Namespace) -> dict[str, Any]:
    pruners = modes(arguments.baseline_seconds, arguments.batch_size)
    names = list(pruners)
    rounds: list[dict[str, Measurement]] = []
    for repeat in range(arguments.repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        measured = {}
        for name in order:
            measured[name] = await measure_mode(
                url, name, pruners[name], arguments.events, arguments.emitters, arguments.settle
            )
        rounds.append(measured)
    baseline = names[0]
    print(
        f"\nEmit latency during a prune of {arguments.events:,} events,"
        f" {arguments.emitters} emitters, one event per transaction;"
        f" medians (ranges) over {arguments.repeats} repeats"
    )
    print(
        "| mode | emits/s | p50 ms | p99 ms | max ms | p99 / baseline | max / baseline"
        " | prune s | WAL MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        rows = [measured[name] for measured in rounds]
        p99_ratio = [m[name].p99_ms / m[baseline].p99_ms for m in rounds]
        max_ratio = [m[name].max_ms / m[baseline].max_ms for m in rounds]
        print(
            f"| {name} | {median_range([r.emits / r.seconds for r in rows], 0)}"
            f" | {median_range([r.p50_ms for r in rows])}"
            f" | {median_range([r.p99_ms for r in rows])}"
            f" | {median_range([r.max_ms for r in rows])} | {median_range(p99_ratio)}"
            f" | {median_range(max_ratio)} | {median_range([r.seconds for r in rows])}"
            f" | {median_range([r.wal_mb for r in rows], 1)} |"
        )
    return {name: [asdict(measured[name]) for measured in rounds] for name in names}


async def steady_load(url: str, arguments: argparse.Namespace) -> list[dict[str, Any]]:
    """Emit at `--rate` while pruning every `--interval` seconds; the table's size per cycle."""
    keep = timedelta(seconds=arguments.keep)
    connections = 4
    pause = connections / arguments.rate
    cycles: list[dict[str, Any]] = []
    async with asyncpg.create_pool(url, min_size=connections + 1, max_size=connections + 1) as pool:

        async def prune_in_cycles() -> None:
            async with pool.acquire() as pruner:
                for cycle in range(1, arguments.cycles + 1):
                    await asyncio.sleep(arguments.interval)
                    deleted = await CHANNEL.prune(pruner, keep=keep)
                    sizes = await pruner.fetchrow(SIZES)
                    assert sizes is not None, "the events table has statistics"
                    cycles.append({"cycle": cycle, "deleted": deleted, **dict(sizes)})

        started = time.perf_counter()
        async with acquired(pool, connections) as emitters:
            emitting = Emitters(emitters)
            await emitting.run_while(prune_in_cycles(), settle=0, pause=pause)
        seconds = time.perf_counter() - started
        async with pool.acquire() as checker:
            stored = await checker.fetchval(
                "SELECT count(*) FROM fastapi_pg_sse.events WHERE channel = $1", CHANNEL.name
            )
        pruned = sum(cycle["deleted"] for cycle in cycles)
        assert stored + pruned == emitting.emitted, (stored, pruned, emitting.emitted)
    print(
        f"\nSteady load: {arguments.rate} events/s, one per transaction, pruned every"
        f" {arguments.interval} s keeping {arguments.keep} s, {arguments.cycles} cycles"
        f" ({emitting.emitted:,} emitted, {pruned:,} pruned)"
    )
    print("| cycle | deleted | live | dead | autovacuums | heap KB | indexes KB | total KB |")
    print("|---|---|---|---|---|---|---|---|")
    for cycle in cycles:
        print(
            f"| {cycle['cycle']} | {cycle['deleted']} | {cycle['live']} | {cycle['dead']}"
            f" | {cycle['autovacuums']} | {cycle['heap'] // 1024} | {cycle['indexes'] // 1024}"
            f" | {cycle['total'] // 1024} |"
        )
    thirds = [cycles[part * len(cycles) // 3 : (part + 1) * len(cycles) // 3] for part in range(3)]
    largest = [max(cycle["total"] for cycle in part) // 1024 for part in thirds if part]
    print(
        f"largest total size in the first, middle and last third of the cycles (KB): {largest};"
        f" {emitting.emitted / seconds:.0f} events/s emitted"
    )
    return cycles


def arguments_of() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="small counts, seconds")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--emitters", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-seconds", type=float, default=3.0)
    parser.add_argument("--settle", type=float, default=0.5)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--interval", type=float, default=5)
    parser.add_argument("--keep", type=float, default=10)
    parser.add_argument("--cycles", type=int, default=48)
    parser.add_argument("--only", choices=["emitters", "steady"])
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    if arguments.smoke:
        arguments.events, arguments.batch_size, arguments.repeats = 2_000, 500, 1
        arguments.baseline_seconds, arguments.settle = 0.3, 0.1
        arguments.rate, arguments.interval, arguments.keep, arguments.cycles = 50, 0.5, 1, 4
    return arguments


async def run(url: str, arguments: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if arguments.only in (None, "emitters"):
        results["emitters"] = await emitters_during_prune(url, arguments)
    if arguments.only in (None, "steady"):
        results["steady"] = await steady_load(url, arguments)
    return results


def main() -> None:
    arguments = arguments_of()
    with bench_database() as url:
        results = asyncio.run(run(url, arguments))
    if arguments.json:
        arguments.json.write_text(json.dumps({"results": results}, indent=2, default=str))


if __name__ == "__main__":
    main()
