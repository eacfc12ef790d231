"""Emit throughput: the commit-order emit, to users, to groups and to everyone, against 0.4's
per-user lock and 0.2's channel lock, and emitting in bulk against one call per event, each
comparison in the same run, interleaved.

Locks. fastapi-pg-sse 0.2's emit function took one advisory lock per channel and held it until
commit, so every emitter of a channel waited for every other. 0.4's locked the target user's
row of `<channel>_event_locks` until commit: emitters for different users ran side by side, a
user's emitters one transaction after the other. Now `fastapi_pg_sse.emit` takes no lock: it
stages the event, and a deferred trigger numbers the transaction's events and moves them into
`fastapi_pg_sse.events` as it commits, holding `fastapi_pg_sse.commit_order` until the commit
ends, so emitters wait only for each other's commits (which PostgreSQL already serialises for
transactions that NOTIFY: what the lock adds to that turn is the numbering and the move). See
`_database.py` for where each version comes from. The commit-order emit runs in three forms,
each to its own audience (schema 1.4): `fastapi_pg_sse.emit` to a user, `emit_to_group` to a
group, `broadcast` to everyone on the channel, which take the same path (`fastapi_pg_sse.record`,
then the commit's turn). All five run here, in one database, interleaved (each going first in
turn), in transactions of 1 or 100 events, one call each: each connection emitting to a user (a
group) of its own, then all connections to the same user (group); everyone is everyone's.

Bulk. A transaction of 100 events for 10 users (each connection its own users) goes out in
each of these forms, interleaved, and repeated:

- SQL, one `fastapi_pg_sse.emit` call per event (one round trip each): the baseline;
- SQL, `fastapi_pg_sse.emit` over `unnest` of the events (one statement);
- SQL, `fastapi_pg_sse.emit_many` (one statement), and its forms to groups (`emit_to_groups`,
  each event to one of 10 groups of the connection's own) and to everyone (`broadcast_many`);
- SQL, 0.4's `<channel>_emit` per event and `<channel>_emit_many` (`baseline/user_lock_0.4.sql`);
- Python, `Channel.emit` per event, and `Channel.emit_many` once;
- the `--table` trigger on an INSERT of 100 rows: the runtime's generic one
  (`fastapi_pg_sse.create_trigger`: one statement-level trigger function for every table, its
  SQL built at each statement); the same statement written out in a trigger function of its
  own, which tells what building it costs; 0.4's per statement (a function of its own per
  channel, `baseline/statement_trigger_0.4.sql`) and 0.3's per row
  (`baseline/row_trigger_0.3.sql`); and the same INSERT into a table without trigger.

The figure is events committed per second, the median of the repeats and their range; each
ratio is taken between figures of the same repeat, and reported likewise. The last lines are
what each trigger adds to the INSERT, in microseconds of wall time per event (a trigger's
throughput includes the user's own INSERT, which no trigger makes faster), and the ratios of
those costs' medians.

Delivery (`--only delivery`). The same emit, one event per transaction, each connection to a
user of its own, from 1, 4 and 16 connections, by sessions that deliver by NOTIFY (the default:
each commit takes the commit turn) and by poll (`fastapi_pg_sse.delivery` 'poll', schema 1.5:
the event is queued, the commit takes no turn), interleaved. While poll-delivery sessions emit,
a sequencer numbers their events every POLL_INTERVAL_SECONDS, as a process in poll read mode
does (`sequence_queued`, in the commit turn): its work is in the figure. Each transaction goes
in one message, `BEGIN; SELECT fastapi_pg_sse.emit(...); COMMIT` (one round trip, as a client
that sends a transaction as one statement batch does): with three round trips per transaction,
16 emitting connections made the benchmark's own client the bound on two cores.

Commits wait for the disk, as PostgreSQL's default has them: with one event per transaction the
disk's flushes bound every version. `--synchronous-commit off` (as bench/fanout's emitter runs)
leaves PostgreSQL's own work and its locks.

    python bench/emit_throughput.py [--seconds S] [--repeats R] [--only locks|bulk|delivery]
        [--synchronous-commit on|off]
"""

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import ClassVar

import asyncpg
from _database import BASELINE, CHANNEL_LOCK, CURRENT, USER_LOCK, bench_database
from fastapi_pg_sse import Channel, ChannelEvent, Connection

CONNECTIONS = (1, 4, 16)
SAME_USER_CONNECTIONS = (4, 16)
"""With one connection, the same user for all is a user of its own."""
EVENTS_PER_TRANSACTION = (1, 100)
BULK_CONNECTIONS = (1, 4)
BULK_EVENTS, BULK_USERS = 100, 10
DELIVERIES = ("notify", "poll")
"""The value of the session's `fastapi_pg_sse.delivery` ('notify': unset, the default)."""
POLL_INTERVAL_SECONDS = 0.02
"""How often the sequencer numbers queued events: `REALTIME_POLL_INTERVAL_SECONDS`' default."""
PAYLOAD = '{"n": 1}'
BASKETS = """
CREATE TABLE baskets (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id text NOT NULL,
    stock integer NOT NULL DEFAULT 0 CHECK (stock >= 0)
);
CREATE INDEX baskets_user_id_idx ON baskets (user_id);
"""
"""The example's table (examples/shop), which each trigger watches a copy of."""
STATIC_TRIGGER = f"""
CREATE TABLE bench_static_baskets (LIKE baskets INCLUDING ALL);
CREATE FUNCTION bench_static_baskets_on_insert()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM fastapi_pg_sse.emit_many('{CURRENT}', array_agg(changed.user_id::text),
        array_agg('stock_level_created'::text), array_agg(to_jsonb(changed)))
    FROM changed_rows AS changed;
    RETURN NULL;
END;
$$;
CREATE TRIGGER bench_static_baskets_on_insert
    AFTER INSERT ON bench_static_baskets REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bench_static_baskets_on_insert();
"""
"""What `fastapi_pg_sse.emit_changes` runs on an INSERT into baskets, written out: the generic
trigger without its dynamic SQL."""


class Tick(ChannelEvent):
    event_type: ClassVar[str] = "tick"

    n: int


CHANNEL: Channel[Tick] = Channel(CURRENT, events=Tick)
Emit = Callable[[Connection, list[str]], Awaitable[int]]
"""Emits one transaction's events, round robin over the users given; returns how many."""

EMIT = f"SELECT fastapi_pg_sse.emit('{CURRENT}', $1, 'tick', '{PAYLOAD}'::jsonb)"
LOCK_VERSIONS = {
    "0.2 channel lock": f"SELECT {CHANNEL_LOCK}_emit($1, 'tick', '{PAYLOAD}'::jsonb)",
    "0.4 user lock": f"SELECT {USER_LOCK}_emit($1, 'tick', '{PAYLOAD}'::jsonb)",
    "now: user": EMIT,
    "now: group": f"SELECT fastapi_pg_sse.emit_to_group('{CURRENT}', $1, 'tick', '{PAYLOAD}')",
    "now: everyone": f"SELECT fastapi_pg_sse.broadcast('{CURRENT}', 'tick', '{PAYLOAD}')",
}
"""Each version's emit of one event to the user (or group) $1, or to everyone."""
LOCK_RATIOS = {
    "user / 0.4": ("now: user", "0.4 user lock"),
    "group / 0.4": ("now: group", "0.4 user lock"),
    "everyone / 0.4": ("now: everyone", "0.4 user lock"),
    "group / user": ("now: group", "now: user"),
    "everyone / user": ("now: everyone", "now: user"),
    "user / 0.2": ("now: user", "0.2 channel lock"),
}
"""Each ratio's heading, and its (version, baseline)."""


def spread(users: list[str]) -> list[str]:
    """The target user of each of a bulk transaction's events."""
    return [users[number % len(users)] for number in range(BULK_EVENTS)]


def per_event(statement: str, events: int) -> Emit:
    """`events` calls of `statement`, one round trip each, round robin over the users (or groups)
    if it takes one ($1)."""
    addressed = "$1" in statement

    async def emit(connection: Connection, users: list[str]) -> int:
        for number in range(events):
            target = [users[number % len(users)]] if addressed else []
            await connection.execute(statement, *target)
        return events

    return emit


async def transaction_in_one_trip(connection: Connection, users: list[str]) -> int:
    """One event to the first of `users`, in a transaction of its own sent as one message (the
    simple query protocol, which takes no parameters: the bench's user ids are plain words)."""
    statement = EMIT.replace("$1", f"'{users[0]}'")
    await connection.execute(f"BEGIN; {statement}; COMMIT")
    return 1


def bulk(function: str, *, addressed: bool = True) -> Emit:
    """One call of `fastapi_pg_sse.<function>` with BULK_EVENTS events, each to one of the
    connection's users (or groups), or, not `addressed`, to everyone."""

    async def emit(connection: Connection, users: list[str]) -> int:
        columns = [spread(users)] if addressed else []
        columns += [["tick"] * BULK_EVENTS, [PAYLOAD] * BULK_EVENTS]
        casts = [*["text[]"] * (len(columns) - 1), "jsonb[]"]
        placeholders = ", ".join(f"${n}::{cast}" for n, cast in enumerate(casts, start=2))
        await connection.execute(
            f"SELECT fastapi_pg_sse.{function}($1, {placeholders})", CURRENT, *columns
        )
        return BULK_EVENTS

    return emit


async def sql_over_unnest(connection: Connection, users: list[str]) -> int:
    await connection.execute(
        f"SELECT fastapi_pg_sse.emit('{CURRENT}', target_user_id, 'tick', $2::jsonb)"
        " FROM unnest($1::text[]) AS target_user_id",
        spread(users),
        PAYLOAD,
    )
    return BULK_EVENTS


async def sql_bulk_0_4(connection: Connection, users: list[str]) -> int:
    emitted: int = await connection.fetchval(
        f"SELECT count(*) FROM {USER_LOCK}_emit_many($1::text[], $2::text[], $3::jsonb[])",
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
    await CHANNEL.emit_many(connection, [(user, Tick(n=1)) for user in spread(users)])
    return BULK_EVENTS


def trigger_insert(table: str) -> Emit:
    """An INSERT of BULK_EVENTS rows into `table`, whose trigger emits an event per row."""

    async def insert(connection: Connection, users: list[str]) -> int:
        await connection.execute(
            f"INSERT INTO {table} (user_id, stock) SELECT unnest($1::text[]), 1", spread(users)
        )
        return BULK_EVENTS

    return insert


BULK_FORMS: dict[str, Emit] = {
    "SQL: emit, 1 per tx": per_event(EMIT, 1),
    "SQL: emit per event": per_event(EMIT, BULK_EVENTS),
    "SQL: emit over unnest": sql_over_unnest,
    "SQL: emit_many": bulk("emit_many"),
    "SQL: emit_to_groups": bulk("emit_to_groups"),
    "SQL: broadcast_many": bulk("broadcast_many", addressed=False),
    "SQL 0.4: emit per event": per_event(LOCK_VERSIONS["0.4 user lock"], BULK_EVENTS),
    "SQL 0.4: emit_many": sql_bulk_0_4,
    "Python: emit per event": python_per_event,
    "Python: emit_many": python_bulk,
    "trigger: generic": trigger_insert("baskets"),
    "trigger: generic, written out": trigger_insert("bench_static_baskets"),
    "trigger per statement (0.4)": trigger_insert("bench_statement_baskets"),
    "trigger per row (0.3)": trigger_insert("bench_row_baskets"),
    "INSERT, no trigger": trigger_insert("bench_plain_baskets"),
}
RATIOS = (
    ("SQL: emit_many", "SQL: emit per event"),
    ("SQL: emit_many", "SQL: emit, 1 per tx"),
    ("SQL: emit over unnest", "SQL: emit per event"),
    ("Python: emit_many", "Python: emit per event"),
    ("SQL: emit per event", "SQL 0.4: emit per event"),
    ("SQL: emit_many", "SQL 0.4: emit_many"),
    ("SQL: emit_to_groups", "SQL: emit_many"),
    ("SQL: broadcast_many", "SQL: emit_many"),
    ("trigger: generic", "trigger: generic, written out"),
    ("trigger: generic", "trigger per statement (0.4)"),
    ("trigger: generic", "trigger per row (0.3)"),
    ("trigger per statement (0.4)", "trigger per row (0.3)"),
)
"""(form, baseline): the throughput ratios reported."""
TRIGGERS = (
    "trigger: generic",
    "trigger: generic, written out",
    "trigger per statement (0.4)",
    "trigger per row (0.3)",
)
"""The forms whose cost beyond the INSERT's own ("INSERT, no trigger") is the trigger's."""
COST_RATIOS = (
    ("trigger: generic", "trigger: generic, written out"),
    ("trigger: generic", "trigger per statement (0.4)"),
    ("trigger per statement (0.4)", "trigger per row (0.3)"),
)
"""(trigger, baseline): the ratios of their own costs reported."""


@dataclass(frozen=True)
class Bench:
    """Where and how long each figure is measured."""

    url: str
    seconds: float
    """Per figure."""
    repeats: int
    synchronous_commit: str
    """`on` (PostgreSQL's default: commits wait for the disk) or `off`."""


async def emitted_per_second(
    bench: Bench,
    emit: Emit,
    connections: int,
    *,
    same_user: bool = False,
    delivery: str = "notify",
    own: bool = False,
) -> float:
    """Events committed per second by `connections` emitters, each to users of its own (or all
    to the same user), each transaction's events emitted by `emit` (which makes the transaction
    itself if `own`), in sessions of `delivery`; poll-delivery's events numbered meanwhile
    (`sequencing`)."""
    settings = {"synchronous_commit": bench.synchronous_commit}
    if delivery == "poll":
        settings["fastapi_pg_sse.delivery"] = "poll"
    pool = await asyncpg.create_pool(
        bench.url, min_size=connections, max_size=connections, server_settings=settings
    )
    deadline = time.perf_counter() + bench.seconds
    committed = 0

    async def emitter(number: int) -> None:
        nonlocal committed
        users = ["user-all"] if same_user else [f"user-{number}-{u}" for u in range(BULK_USERS)]
        async with pool.acquire() as connection:
            while time.perf_counter() < deadline:
                if own:
                    emitted = await emit(connection, users)
                else:
                    async with connection.transaction():
                        emitted = await emit(connection, users)
                committed += emitted  # not `committed += await ...`: that reads it before the await

    started = time.perf_counter()
    async with sequencing(bench.url, active=delivery == "poll"):
        await asyncio.gather(*(emitter(number) for number in range(connections)))
        elapsed = time.perf_counter() - started
    await pool.close()
    return committed / elapsed


@asynccontextmanager
async def sequencing(url: str, *, active: bool) -> AsyncIterator[None]:
    """While the block runs (if `active`), number queued events every POLL_INTERVAL_SECONDS, as
    a process in poll read mode does; then number what is left."""
    if not active:
        yield
        return
    connection = await asyncpg.connect(url)

    async def sequence() -> None:
        while True:
            await connection.execute("SELECT fastapi_pg_sse.sequence_queued()")
            await asyncio.sleep(POLL_INTERVAL_SECONDS)

    task = asyncio.create_task(sequence())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await connection.execute("SELECT fastapi_pg_sse.sequence_queued()")
        await connection.close()


LockCase = tuple[str, int, int]
"""(whose users: "own" or "same", events per transaction, connections)."""


def lock_cases() -> list[LockCase]:
    own = [("own", n, c) for n in EVENTS_PER_TRANSACTION for c in CONNECTIONS]
    same = [("same", n, c) for n in EVENTS_PER_TRANSACTION for c in SAME_USER_CONNECTIONS]
    return own + same


async def compare_locks(bench: Bench) -> None:
    print(
        f"Locks: events/s committed, {bench.seconds:g} s per figure, {bench.repeats} interleaved"
        f" repeats, synchronous_commit {bench.synchronous_commit}; users: 'own' = each"
        " connection its own user (group), 'same' = every connection the same user (group)"
    )
    versions = list(LOCK_VERSIONS)
    figures: dict[tuple[LockCase, str], list[float]] = {}
    for repeat in range(bench.repeats):
        for case in lock_cases():
            whose, per_transaction, connections = case
            shift = repeat % len(versions)  # each version goes first in turn
            for version in versions[shift:] + versions[:shift]:
                emit = per_event(LOCK_VERSIONS[version], per_transaction)
                rate = await emitted_per_second(bench, emit, connections, same_user=whose == "same")
                figures.setdefault((case, version), []).append(rate)
    header = "".join(f" {version:>20}" for version in versions)
    header += "".join(f" {heading:>17}" for heading in LOCK_RATIOS)
    print(f"{'users':<5} {'conn':>4} {'per tx':>6}{header}")
    for case in lock_cases():
        whose, per_transaction, connections = case
        print(f"{whose:<5} {connections:>4} {per_transaction:>6}", end="")
        for version in versions:
            print(f" {_figure(figures[case, version]):>20}", end="")
        for form, baseline in LOCK_RATIOS.values():
            pairs = zip(figures[case, form], figures[case, baseline], strict=True)
            print(f" {_ratio([rate / base for rate, base in pairs]):>17}", end="")
        print()


async def compare_delivery(bench: Bench) -> None:
    print(
        f"\nDelivery: events/s committed, one event per transaction, each connection to a user of"
        f" its own, {bench.seconds:g} s per figure, {bench.repeats} interleaved repeats,"
        f" synchronous_commit {bench.synchronous_commit}; poll: sessions whose"
        f" fastapi_pg_sse.delivery is 'poll', numbered every {POLL_INTERVAL_SECONDS:g} s"
    )
    figures: dict[tuple[str, int], list[float]] = {}
    for repeat in range(bench.repeats):
        for connections in CONNECTIONS:
            shift = repeat % len(DELIVERIES)  # each mode goes first in turn
            for delivery in DELIVERIES[shift:] + DELIVERIES[:shift]:
                rate = await emitted_per_second(
                    bench, transaction_in_one_trip, connections, delivery=delivery, own=True
                )
                figures.setdefault((delivery, connections), []).append(rate)
    print(f"{'conn':>4} {'notify':>20} {'poll':>20} {'poll / notify':>20}")
    for connections in CONNECTIONS:
        notify, poll = figures["notify", connections], figures["poll", connections]
        ratios = [rate / base for rate, base in zip(poll, notify, strict=True)]
        print(f"{connections:>4} {_figure(notify):>20} {_figure(poll):>20} {_ratio(ratios):>20}")


async def compare_bulk(bench: Bench) -> None:
    print(
        f"\nBulk: events/s committed, {bench.seconds:g} s per figure, {bench.repeats} interleaved"
        f" repeats, synchronous_commit {bench.synchronous_commit}; each connection emits to"
        f" {BULK_USERS} users of its own, {BULK_EVENTS} events per transaction (1 for 'emit, 1"
        " per tx')"
    )
    figures: dict[tuple[str, int], list[float]] = {}
    for _ in range(bench.repeats):
        for connections in BULK_CONNECTIONS:
            for name, emit in BULK_FORMS.items():
                rate = await emitted_per_second(bench, emit, connections)
                figures.setdefault((name, connections), []).append(rate)
    columns = "".join(f" {f'{n} conn: median (range)':>28}" for n in BULK_CONNECTIONS)
    print(f"{'form':<28}{columns}")
    for name in BULK_FORMS:
        print(f"{name:<28}", end="")
        for connections in BULK_CONNECTIONS:
            print(f" {_figure(figures[name, connections]):>28}", end="")
        print()
    print("\nratios, each of one repeat's figures: median (range)")
    for form, baseline in RATIOS:
        print(f"{form} / {baseline}:".ljust(60), end="")
        for connections in BULK_CONNECTIONS:
            pairs = zip(figures[form, connections], figures[baseline, connections], strict=True)
            print(f" {_ratio([rate / base for rate, base in pairs]):>18}", end="")
        print()
    # What each event costs beyond the INSERT's own: the trigger's share of the time.
    print("\ntrigger's own us per event (beyond the INSERT's): median (range)")
    costs: dict[tuple[str, int], list[float]] = {}
    for form in TRIGGERS:
        print(f"{form}:".ljust(60), end="")
        for connections in BULK_CONNECTIONS:
            plain = figures["INSERT, no trigger", connections]
            pairs = zip(figures[form, connections], plain, strict=True)
            costs[form, connections] = [1e6 / rate - 1e6 / base for rate, base in pairs]
            print(f" {_figure(costs[form, connections]):>18}", end="")
        print()
    # A ratio of the medians: one repeat's cost, a difference of two noisy figures, may be ~0.
    print("own costs' ratio, of the medians:")
    for form, baseline in COST_RATIOS:
        print(f"{form} / {baseline}:".ljust(60), end="")
        for connections in BULK_CONNECTIONS:
            ratio = statistics.median(costs[form, connections]) / statistics.median(
                costs[baseline, connections]
            )
            print(f" {f'{ratio:.2f}x':>18}", end="")
        print()


def _figure(figures: list[float]) -> str:
    """The median figure and the range of the repeats."""
    return f"{statistics.median(figures):.0f} ({min(figures):.0f}-{max(figures):.0f})"


def _ratio(ratios: list[float]) -> str:
    """The median ratio and the range of the repeats."""
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


async def add_trigger_tables(url: str) -> None:
    """The example's table with the runtime's generic trigger, copies of it with that trigger
    written out, with 0.4's and 0.3's triggers (baseline/), and without trigger."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(BASKETS)
        await connection.execute(
            "SELECT fastapi_pg_sse.create_trigger($1, 'baskets', 'user_id', 'stock_level')",
            CURRENT,
        )
        await connection.execute(STATIC_TRIGGER)
        await connection.execute((BASELINE / "statement_trigger_0.4.sql").read_text())
        await connection.execute((BASELINE / "row_trigger_0.3.sql").read_text())
        await connection.execute("CREATE TABLE bench_plain_baskets (LIKE baskets INCLUDING ALL)")
    finally:
        await connection.close()


async def run(bench: Bench, parts: set[str]) -> None:
    if "locks" in parts:
        await compare_locks(bench)
    if "bulk" in parts:
        await add_trigger_tables(bench.url)
        await compare_bulk(bench)
    if "delivery" in parts:
        await compare_delivery(bench)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3, help="per figure (3)")
    parser.add_argument("--repeats", type=int, default=3, help="of each figure (3)")
    parser.add_argument(
        "--only",
        choices=("locks", "bulk", "delivery"),
        help="run one comparison (default: all)",
    )
    parser.add_argument(
        "--synchronous-commit",
        choices=("on", "off"),
        default="on",
        help="whether commits wait for the disk (on)",
    )
    arguments = parser.parse_args()
    parts = {arguments.only} if arguments.only else {"locks", "bulk", "delivery"}
    with bench_database() as url:
        bench = Bench(url, arguments.seconds, arguments.repeats, arguments.synchronous_commit)
        asyncio.run(run(bench, parts))


if __name__ == "__main__":
    main()
