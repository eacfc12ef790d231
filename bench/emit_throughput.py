"""Emit throughput: the user's row lock against 0.2's channel-wide lock, and emitting in bulk
against one call per event, each pair in the same run.

Locks. fastapi-pg-sse 0.2's emit function took one advisory lock per channel and held it until
commit, so every emitter of a channel waited for every other. Now it locks the target user's
row of `<channel>_event_locks`: a user's events still commit in id order, which replay relies
on, and emitters for different users run side by side. Both functions run here, in one
database, interleaved: each connection emits to a user of its own, in transactions of 1 or 100
events.

Bulk. A transaction of 100 events for 10 users (each connection its own users) goes out in
each of these forms, interleaved, and repeated:

- SQL, one `<channel>_emit` call per event (one round trip each): the baseline;
- SQL, `<channel>_emit` over `unnest` of the events (one statement);
- SQL, `<channel>_emit_many` (one statement);
- Python, `Channel.emit` per event, and `Channel.emit_many` once;
- the `--table` trigger on an INSERT of 100 rows: per row (as scaffold 0.3 wrote it,
  `baseline/row_trigger_0.3.sql`) and per statement (as it writes it now, the golden case),
  and the same INSERT into a table without trigger.

The figure is events committed per second; the ratios are to one call per event of their kind
(SQL, Python, the trigger per row), the median of the repeats and their range. The last line
is what the trigger adds to the INSERT, in microseconds of wall time per event: its
throughput includes the user's own INSERT, which no trigger makes faster.

    python bench/emit_throughput.py [--seconds S] [--repeats R]
"""

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import ClassVar

import asyncpg
from _database import AFTER, BEFORE, BENCH, bench_database
from fastapi_pg_sse import Channel, ChannelEvent, Connection

CONNECTIONS = (1, 4, 16)
EVENTS_PER_TRANSACTION = (1, 100)
BULK_CONNECTIONS = (1, 4)
BULK_EVENTS, BULK_USERS = 100, 10
TRIGGER_CASE = BENCH.parent / "golden" / "stock-level-in-warehouse-ops-with-trigger" / "migrations"
PAYLOAD = '{"n": 1}'


class Tick(ChannelEvent):
    event_type: ClassVar[str] = "tick"

    n: int


CHANNEL = Channel(AFTER, events=Tick)
Emit = Callable[[Connection, list[str]], Awaitable[int]]
"""Emits one transaction's events, round robin over the users given; returns how many."""


def spread(users: list[str]) -> list[str]:
    """The target user of each of a bulk transaction's events."""
    return [users[number % len(users)] for number in range(BULK_EVENTS)]


async def sql_one_per_transaction(connection: Connection, users: list[str]) -> int:
    await connection.fetchval(f"SELECT {AFTER}_emit($1, 'tick', $2::jsonb)", users[0], PAYLOAD)
    return 1


async def sql_per_event(connection: Connection, users: list[str]) -> int:
    for user in spread(users):
        await connection.fetchval(f"SELECT {AFTER}_emit($1, 'tick', $2::jsonb)", user, PAYLOAD)
    return BULK_EVENTS


async def sql_over_unnest(connection: Connection, users: list[str]) -> int:
    emitted: int = await connection.fetchval(
        f"SELECT count({AFTER}_emit(target_user_id, 'tick', $2::jsonb))"
        " FROM unnest($1::text[]) AS target_user_id",
        spread(users),
        PAYLOAD,
    )
    return emitted


async def sql_bulk(connection: Connection, users: list[str]) -> int:
    emitted: int = await connection.fetchval(
        f"SELECT count(*) FROM {AFTER}_emit_many($1::text[], $2::text[], $3::jsonb[])",
        spread(users),
        ["tick"] * BULK_EVENTS,
        [PAYLOAD] * BULK_EVENTS,
    )
    return emitted


async def python_per_event(connection: Connection, users: list[str]) -> int:
    for user in spread(users):
        await CHANNEL.emit(connection, Tick(n=1), target_user_id=user)
    return BULK_EVENTS


async def python_bulk(connection: Connection, users: list[str]) -> int:
    ids = await CHANNEL.emit_many(connection, [(user, Tick(n=1)) for user in spread(users)])
    return len(ids)


def trigger_insert(table: str) -> Emit:
    """An INSERT of BULK_EVENTS rows into `table`, whose trigger emits an event per row."""

    async def insert(connection: Connection, users: list[str]) -> int:
        await connection.execute(
            f"INSERT INTO {table} (user_id, stock) SELECT unnest($1::text[]), 1", spread(users)
        )
        return BULK_EVENTS

    return insert


BULK_FORMS: dict[str, Emit] = {
    "SQL: emit, 1 per tx": sql_one_per_transaction,
    "SQL: emit per event": sql_per_event,
    "SQL: emit over unnest": sql_over_unnest,
    "SQL: emit_many": sql_bulk,
    "Python: emit per event": python_per_event,
    "Python: emit_many": python_bulk,
    "trigger per row (0.3)": trigger_insert("bench_row_baskets"),
    "trigger per statement": trigger_insert("baskets"),
    "INSERT, no trigger": trigger_insert("bench_plain_baskets"),
}
RATIOS = (
    ("SQL: emit_many", "SQL: emit per event"),
    ("SQL: emit_many", "SQL: emit, 1 per tx"),
    ("SQL: emit over unnest", "SQL: emit per event"),
    ("Python: emit_many", "Python: emit per event"),
    ("trigger per statement", "trigger per row (0.3)"),
)
"""(form, baseline): the throughput ratios reported."""
TRIGGERS = ("trigger per row (0.3)", "trigger per statement")
"""The forms whose cost beyond the INSERT's own ("INSERT, no trigger") is the trigger's."""


async def emitted_per_second(url: str, emit: Emit, connections: int, seconds: float) -> float:
    """Events committed per second by `connections` emitters, each to users of its own, each
    transaction's events emitted by `emit`."""
    pool = await asyncpg.create_pool(url, min_size=connections, max_size=connections)
    deadline = time.perf_counter() + seconds
    committed = 0

    async def emitter(number: int) -> None:
        nonlocal committed
        users = [f"user-{number}-{user}" for user in range(BULK_USERS)]
        async with pool.acquire() as connection:
            while time.perf_counter() < deadline:
                async with connection.transaction():
                    emitted = await emit(connection, users)
                committed += emitted

    started = time.perf_counter()
    await asyncio.gather(*(emitter(number) for number in range(connections)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return committed / elapsed


def lock_form(channel: str, per_transaction: int) -> Emit:
    """`per_transaction` calls of `channel`'s emit function, to the emitter's first user."""
    statement = f"SELECT {channel}_emit($1, 'tick', '{PAYLOAD}'::jsonb)"

    async def emit(connection: Connection, users: list[str]) -> int:
        for _ in range(per_transaction):
            await connection.fetchval(statement, users[0])
        return per_transaction

    return emit


async def compare_locks(url: str, seconds: float) -> None:
    print(f"Locks: events/s committed, {seconds:g} s per figure; each connection its own user")
    print(f"{'connections':>11} {'per tx':>6} {'before':>9} {'after':>9} {'after/before':>12}")
    for per_transaction in EVENTS_PER_TRANSACTION:
        for connections in CONNECTIONS:
            before, after = [
                await emitted_per_second(
                    url, lock_form(channel, per_transaction), connections, seconds
                )
                for channel in (BEFORE, AFTER)
            ]
            print(
                f"{connections:>11} {per_transaction:>6} {before:>9.0f} {after:>9.0f}"
                f" {after / before:>11.2f}x"
            )


async def compare_bulk(url: str, seconds: float, repeats: int) -> None:
    print(
        f"\nBulk: events/s committed, {seconds:g} s per figure, {repeats} interleaved repeats;"
        f" each connection emits to {BULK_USERS} users of its own, {BULK_EVENTS} events per"
        " transaction (1 for 'emit, 1 per tx')"
    )
    figures: dict[tuple[str, int], list[float]] = {}
    for _ in range(repeats):
        for connections in BULK_CONNECTIONS:
            for name, emit in BULK_FORMS.items():
                rate = await emitted_per_second(url, emit, connections, seconds)
                figures.setdefault((name, connections), []).append(rate)
    columns = "".join(f" {f'{n} conn: median (range)':>28}" for n in BULK_CONNECTIONS)
    print(f"{'form':<24}{columns}")
    for name in BULK_FORMS:
        print(f"{name:<24}", end="")
        for connections in BULK_CONNECTIONS:
            rates = figures[name, connections]
            median = f"{statistics.median(rates):.0f} ({min(rates):.0f}-{max(rates):.0f})"
            print(f" {median:>28}", end="")
        print()
    print("\nratios, each of one repeat's figures: median (range)")
    for form, baseline in RATIOS:
        print(f"{form} / {baseline}:".ljust(52), end="")
        for connections in BULK_CONNECTIONS:
            pairs = zip(figures[form, connections], figures[baseline, connections], strict=True)
            print(f" {_ratio([rate / base for rate, base in pairs]):>18}", end="")
        print()
    # What each event costs beyond the INSERT's own: the trigger's share of the time.
    print("trigger's own us per event, per row / per statement:".ljust(52), end="")
    for connections in BULK_CONNECTIONS:
        plain = figures["INSERT, no trigger", connections]
        row, statement = (
            [1e6 / r - 1e6 / p for r, p in zip(figures[form, connections], plain, strict=True)]
            for form in TRIGGERS
        )
        ratios = [r / s for r, s in zip(row, statement, strict=True)]
        costs = f"{statistics.median(row):.0f}/{statistics.median(statement):.0f}"
        print(f" {costs:>7} {_ratio(ratios):>10}", end="")
    print()


def _ratio(ratios: list[float]) -> str:
    """The median ratio and the range of the repeats."""
    return f"{statistics.median(ratios):.1f}x ({min(ratios):.1f}-{max(ratios):.1f})"


async def add_trigger_tables(url: str) -> None:
    """The golden trigger case's table, channel and trigger, and 0.3's trigger beside them."""
    connection = await asyncpg.connect(url)
    try:
        for migration in sorted(TRIGGER_CASE.glob("*.sql")):
            await connection.execute(migration.read_text())
        await connection.execute((BENCH / "baseline" / "row_trigger_0.3.sql").read_text())
        await connection.execute("CREATE TABLE bench_plain_baskets (LIKE baskets INCLUDING ALL)")
    finally:
        await connection.close()


async def run(url: str, seconds: float, repeats: int, parts: set[str]) -> None:
    if "locks" in parts:
        await compare_locks(url, seconds)
    if "bulk" in parts:
        await add_trigger_tables(url)
        await compare_bulk(url, seconds, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3, help="per figure (3)")
    parser.add_argument("--repeats", type=int, default=3, help="of the bulk figures (3)")
    parser.add_argument(
        "--only", choices=("locks", "bulk"), help="run one comparison (default: both)"
    )
    arguments = parser.parse_args()
    parts = {arguments.only} if arguments.only else {"locks", "bulk"}
    with bench_database() as url:
        asyncio.run(run(url, arguments.seconds, arguments.repeats, parts))


if __name__ == "__main__":
    main()
