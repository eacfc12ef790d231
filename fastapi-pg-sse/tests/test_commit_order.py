"""Ids are given as transactions commit, in commit order: emitters never wait for each other
while their transactions are open, whatever users or groups they emit to (or everyone), and an
event that commits late gets an id larger than every id already given out, so that neither a
stream nor a reader reading on from the last id it saw ever skips it."""

import random
from contextlib import AsyncExitStack
from datetime import datetime

import anyio
import asyncpg
import pytest

from fastapi_pg_sse.testing import ServedApp, committed_event_ids, connected, next_event
from tests.app import FEED, NEWS, STREAM
from tests.helpers import blocking_pids, committing, emit, new_channel, new_users

pytestmark = pytest.mark.anyio


async def _xact_id(connection: asyncpg.Connection) -> object:
    return await connection.fetchval("SELECT pg_current_xact_id()")


@pytest.mark.parametrize("same_user", [False, True], ids=["different-users", "same-user"])
async def test_an_event_that_emitted_first_but_commits_last_is_delivered_with_the_larger_id(
    served_app: ServedApp, same_user: bool
) -> None:
    """The first transaction emits, then the second emits and commits, then the first commits.
    Neither emit waited for the other transaction. A stream that opened between the two commits
    resumes after the newest id, the second event's: the first event still reaches it, and a
    client that saw the second event replays the first."""
    first_user, second_user = new_users("first", "second")
    if same_user:
        second_user = first_user
    async with (
        connected(served_app.database_url) as observer,
        connected(served_app.database_url) as first,
        connected(served_app.database_url) as second,
        served_app.stream(STREAM, second_user) as open_before,
    ):
        first_transaction, second_transaction = first.transaction(), second.transaction()
        await first_transaction.start()
        await second_transaction.start()
        with anyio.fail_after(30):
            await FEED.emit(first, target_user_id=first_user, event_type="emitted_first")
            await FEED.emit(second, target_user_id=second_user, event_type="emitted_second")
        for emitter in (first, second):
            assert await blocking_pids(observer, emitter.get_server_pid()) == []
        advisory_locks = await observer.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = ANY ($1)",
            [first.get_server_pid(), second.get_server_pid()],
        )
        first_xact, second_xact = await _xact_id(first), await _xact_id(second)
        await second_transaction.commit()
        on_second_commit = await next_event(open_before)
        async with served_app.stream(STREAM, first_user) as opened_between:
            await first_transaction.commit()
            on_first_commit = await next_event(opened_between)
        [first_id] = await committed_event_ids(observer, first_xact)
        [second_id] = await committed_event_ids(observer, second_xact)
    async with served_app.stream(STREAM, first_user, last_event_id=second_id) as resumed:
        replayed = await next_event(resumed)
    assert second_id < first_id
    assert (on_second_commit.id, on_second_commit.event) == (str(second_id), "emitted_second")
    assert (on_first_commit.id, on_first_commit.event) == (str(first_id), "emitted_first")
    assert (replayed.id, replayed.event) == (str(first_id), "emitted_first")
    assert advisory_locks == 0, "no lock an application's own advisory locks could share"


async def test_transactions_emitting_to_one_user_stay_open_together_and_number_in_commit_order(
    realtime_database_url: str,
) -> None:
    """Eight transactions emit to the same user, each while all the others are open; they
    commit in an order of their own, and the ids follow it, not the order they emitted in."""
    channel = new_channel()
    (user,) = new_users("shared")
    async with AsyncExitStack() as stack:
        observer = await stack.enter_async_context(connected(realtime_database_url))
        emitters: list[tuple[asyncpg.Connection, object]] = []
        transactions = []
        for number in range(8):
            connection = await stack.enter_async_context(connected(realtime_database_url))
            transaction = connection.transaction()
            await transaction.start()
            with anyio.fail_after(30):
                await channel.emit(connection, target_user_id=user, event_type=f"emit_{number}")
            emitters.append((connection, await _xact_id(connection)))
            transactions.append(transaction)
        for connection, _ in emitters:
            assert await blocking_pids(observer, connection.get_server_pid()) == []
        commit_order = random.Random(20261207).sample(range(8), 8)
        for number in commit_order:
            await transactions[number].commit()
        ids = [(await committed_event_ids(observer, emitters[n][1]))[0] for n in commit_order]
        stored = await observer.fetch(
            "SELECT id, type FROM fastapi_pg_sse.events WHERE channel = $1 ORDER BY id",
            channel.name,
        )
    assert ids == sorted(ids)
    assert [row["type"] for row in stored] == [f"emit_{number}" for number in commit_order]


async def test_reading_on_from_the_last_id_read_never_skips_an_event_of_concurrent_commits(
    realtime_database_url: str,
) -> None:
    """What the listener and a resuming stream do, under eight emitters committing at once:
    a reader that sees an id already sees every smaller one."""
    channel = new_channel()
    committed: list[int] = []
    read: list[int] = []
    emitters_done = anyio.Event()

    async def emitter(number: int) -> None:
        async with connected(realtime_database_url) as connection:
            for _ in range(40):
                async with committing(connection) as ids:
                    await channel.emit(
                        connection, target_user_id=f"user-{number}", event_type="concurrent"
                    )
                    await connection.execute("SELECT count(*) FROM fastapi_pg_sse.events")
                committed.extend(ids)

    async def reader() -> None:
        async with connected(realtime_database_url) as connection:
            last = 0
            while True:
                finished = emitters_done.is_set()  # before the query: it sees every commit
                ids = await connection.fetchval(
                    "SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM fastapi_pg_sse.events"
                    " WHERE channel = $1 AND id > $2",
                    channel.name,
                    last,
                )
                read.extend(ids)
                last = ids[-1] if ids else last
                if finished:
                    return

    async with anyio.create_task_group() as readers:
        readers.start_soon(reader)
        async with anyio.create_task_group() as emitters:
            for number in range(8):
                emitters.start_soon(emitter, number)
        emitters_done.set()
    assert len(committed) == 8 * 40
    assert read == sorted(committed)


async def test_an_event_is_stamped_with_its_commit_time_not_its_transactions_start(
    realtime_database_url: str,
) -> None:
    """So that what `prune` keeps follows the ids: a transaction that began long ago but
    commits now is as young as its id."""
    channel = new_channel()
    async with (
        connected(realtime_database_url) as late,
        connected(realtime_database_url) as early,
    ):
        async with committing(late) as late_ids:
            started = await late.fetchval("SELECT now()")
            await channel.emit(late, target_user_id="time", event_type="late")
            early_id = await emit(early, channel, "time", "early")
        rows = await late.fetch(
            "SELECT id, created_at FROM fastapi_pg_sse.events WHERE id = ANY ($1)",
            [early_id, *late_ids],
        )
    stamps: dict[int, datetime] = {row["id"]: row["created_at"] for row in rows}
    [late_id] = late_ids
    assert early_id < late_id
    assert started < stamps[early_id] < stamps[late_id]


async def test_a_transactions_events_on_several_channels_get_consecutive_ids_in_emit_order(
    realtime_database_url: str,
) -> None:
    (user,) = new_users("multi")
    async with connected(realtime_database_url) as connection:
        async with committing(connection) as ids:
            await FEED.emit(connection, target_user_id=user, event_type="one")
            await NEWS.emit(connection, target_user_id=user, event_type="two")
            await FEED.emit(connection, target_user_id="someone-else", event_type="three")
            await NEWS.emit(connection, target_user_id=user, event_type="four")
        stored = await connection.fetch(
            "SELECT channel, type FROM fastapi_pg_sse.events WHERE id = ANY ($1) ORDER BY id", ids
        )
    assert ids == list(range(ids[0], ids[0] + 4))
    assert [tuple(row) for row in stored] == [
        ("test_feed", "one"),
        ("test_news", "two"),
        ("test_feed", "three"),
        ("test_news", "four"),
    ]


async def test_a_savepoint_rolled_back_takes_its_events_with_it_and_the_others_commit(
    realtime_database_url: str,
) -> None:
    channel = new_channel()
    async with connected(realtime_database_url) as connection:
        async with committing(connection) as ids:
            rolled_back = connection.transaction()  # a savepoint, inside the transaction
            await rolled_back.start()
            await channel.emit(connection, target_user_id="sp", event_type="rolled_back_first")
            await rolled_back.rollback()
            await channel.emit(connection, target_user_id="sp", event_type="kept")
            async with connection.transaction():
                await channel.emit(connection, target_user_id="sp", event_type="released")
            rolled_back_later = connection.transaction()
            await rolled_back_later.start()
            await channel.emit(connection, target_user_id="sp", event_type="rolled_back_later")
            await rolled_back_later.rollback()
        types = await connection.fetchval(
            "SELECT array_agg(type ORDER BY id) FROM fastapi_pg_sse.events WHERE id = ANY ($1)",
            ids,
        )
    assert types == ["kept", "released"]


async def test_a_transaction_whose_only_emit_was_rolled_back_to_a_savepoint_commits_nothing(
    realtime_database_url: str,
) -> None:
    channel = new_channel()
    async with connected(realtime_database_url) as connection:
        async with committing(connection) as ids:
            savepoint = connection.transaction()
            await savepoint.start()
            await channel.emit(connection, target_user_id="sp", event_type="rolled_back")
            await savepoint.rollback()
        recorded = await connection.fetchval(
            "SELECT count(*) FROM fastapi_pg_sse.events WHERE channel = $1", channel.name
        )
    assert (ids, recorded) == ([], 0)


async def test_nothing_of_a_committed_or_rolled_back_transaction_stays_staged(
    realtime_database_url: str,
) -> None:
    """Events wait in `pending_events` only while their transaction runs."""
    channel = new_channel()
    async with connected(realtime_database_url) as connection:
        xact_ids = []
        for outcome in ("commit", "rollback"):
            transaction = connection.transaction()
            await transaction.start()
            await channel.emit(connection, target_user_id="st", event_type=outcome)
            xact_ids.append(await _xact_id(connection))
            staged_meanwhile = await connection.fetchval(
                "SELECT count(*) FROM fastapi_pg_sse.pending_events WHERE xact_id = $1",
                xact_ids[-1],
            )
            assert staged_meanwhile == 1
            await (transaction.commit() if outcome == "commit" else transaction.rollback())
        staged = await connection.fetchval(
            "SELECT (SELECT count(*) FROM fastapi_pg_sse.pending_events"
            " WHERE xact_id = ANY ($1)) + (SELECT count(*) FROM fastapi_pg_sse.pending_commits"
            " WHERE xact_id = ANY ($1))",
            xact_ids,
        )
        committed = await connection.fetchval(
            "SELECT array_agg(type) FROM fastapi_pg_sse.events WHERE channel = $1", channel.name
        )
    assert staged == 0
    assert committed == ["commit"]


AUDIENCES = {
    "user": "SELECT fastapi_pg_sse.emit($1, $2, $3, NULL)",
    "group": "SELECT fastapi_pg_sse.emit_to_group($1, $2, $3, NULL)",
    "everyone": "SELECT fastapi_pg_sse.broadcast($1, $2, NULL)",
}
"""Emits on channel $1 to the user or the group $2 the event type $3, or to everyone the event
type $2."""


@pytest.mark.parametrize(
    ("first", "second"),
    [("user", "group"), ("group", "user"), ("everyone", "group"), ("group", "everyone")],
)
async def test_events_to_two_audiences_committing_in_reverse_order_get_ids_in_commit_order(
    realtime_database_url: str, first: str, second: str
) -> None:
    """The first transaction emits to one audience, the second to another and commits, then the
    first commits. Neither emit waited for the other transaction, and the first event's id is
    the larger: a stream of a user in the group, reading its user's, its group's and everyone's
    events on from the second event's id, reads the first."""
    channel = new_channel()
    (user,) = new_users("member")
    targets = {"user": [user], "group": ["team-7"], "everyone": []}
    async with (
        connected(realtime_database_url) as observer,
        connected(realtime_database_url) as first_emitter,
        connected(realtime_database_url) as second_emitter,
    ):
        transactions = first_emitter.transaction(), second_emitter.transaction()
        xacts = []
        for transaction, connection, audience in zip(
            transactions, (first_emitter, second_emitter), (first, second), strict=True
        ):
            await transaction.start()
            with anyio.fail_after(30):
                await connection.execute(
                    AUDIENCES[audience], channel.name, *targets[audience], f"to_{audience}"
                )
            xacts.append(await _xact_id(connection))
        for emitter in (first_emitter, second_emitter):
            assert await blocking_pids(observer, emitter.get_server_pid()) == []
        await transactions[1].commit()
        await transactions[0].commit()
        [first_id] = await committed_event_ids(observer, xacts[0])
        [second_id] = await committed_event_ids(observer, xacts[1])
        read_on = await observer.fetch(
            "SELECT id, type FROM fastapi_pg_sse.events WHERE channel = $1 AND id > $2"
            " AND (target_user_id, target_group) IN (($3, ''), ('', 'team-7'), ('', ''))",
            channel.name,
            second_id,
            user,
        )
    assert second_id < first_id
    assert [tuple(row) for row in read_on] == [(first_id, f"to_{first}")]
