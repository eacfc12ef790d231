"""Emitting many events in one statement (`Channel.emit_many`, `<channel>_emit_many` in SQL)
keeps every promise of emitting one: ids in the order given, each user's events delivered in
order on commit and never on rollback, replay from any of them, the same refusals; and bulk
emitters for the same users do not deadlock, whatever order they give the users in."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from fastapi_pg_sse.testing import ServedApp, next_event, payload_of
from tests.app import FEED, ORDERS, ORDERS_STREAM, STREAM
from tests.helpers import connected, wait_until_blocked
from tests.order_events import Order, OrderPlaced, OrderShipped
from tests.test_typed_events import Refunded

pytestmark = pytest.mark.anyio

EMIT_MANY = f"SELECT * FROM {FEED.emit_many_function}($1::text[], $2::text[], $3::jsonb[])"


def users(*names: str) -> list[str]:
    """Users of the test's own: the session's database is shared by every test."""
    suffix = uuid.uuid4().hex[:8]
    return [f"{name}-{suffix}" for name in names]


async def emit_many_sql(
    connection: asyncpg.Connection, events: list[tuple[str, str, str | None]]
) -> list[int]:
    """`<channel>_emit_many` called from SQL with (user, type, payload JSON) triples."""
    columns = ([event[column] for event in events] for column in range(3))
    rows = await connection.fetch(EMIT_MANY, *columns)
    return [row[0] for row in rows]


@asynccontextmanager
async def notifications(database_url: str) -> AsyncIterator[asyncio.Queue[str]]:
    """The payloads NOTIFY sends on FEED's channel from now on."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    async with connected(database_url) as listener:
        await listener.add_listener(FEED.name, lambda *args: queue.put_nowait(args[3]))
        yield queue


async def until_marker(queue: asyncio.Queue[str], marker: int) -> list[str]:
    """The notifications received before the one announcing event `marker`."""
    received = []
    while not (payload := await asyncio.wait_for(queue.get(), 30)).startswith(f"{marker} "):
        received.append(payload)
    return received


async def test_ids_ascend_in_the_order_given_and_each_user_gets_their_events_in_order(
    served_app: ServedApp,
) -> None:
    ada, bo = users("ada", "bo")
    given = [(ada, "a1"), (bo, "b1"), (ada, "a2"), (ada, "a3"), (bo, "b2")]
    async with (
        served_app.stream(STREAM, ada) as ada_stream,
        served_app.stream(STREAM, bo) as bo_stream,
    ):
        async with connected(served_app.database_url) as connection:
            ids = await emit_many_sql(
                connection, [(user, "note", f'{{"n": "{n}"}}') for user, n in given]
            )
        assert ids == sorted(ids) and len(set(ids)) == len(given)
        received = {
            ada: [await next_event(ada_stream) for _ in range(3)],
            bo: [await next_event(bo_stream) for _ in range(2)],
        }
    for user, stream in received.items():
        expected = [(str(i), {"n": n}) for i, (u, n) in zip(ids, given, strict=True) if u == user]
        assert [(event.id, payload_of(event)) for event in stream] == expected


async def test_one_notify_per_user_announces_their_newest_event_on_commit(
    served_app: ServedApp,
) -> None:
    ada, bo = users("ada", "bo")
    async with notifications(served_app.database_url) as queue:
        async with connected(served_app.database_url) as connection:
            async with connection.transaction():
                ids = await emit_many_sql(
                    connection, [(ada, "first", None), (bo, "second", None), (ada, "third", None)]
                )
            marker = await FEED.emit(connection, target_user_id=ada, event_type="marker")
        announced = await until_marker(queue, marker)
    assert sorted(announced) == sorted([f"{ids[1]} second {bo}", f"{ids[2]} third {ada}"])


async def test_a_rolled_back_bulk_emit_records_announces_and_delivers_nothing(
    served_app: ServedApp,
) -> None:
    (cy,) = users("cy")
    async with (
        notifications(served_app.database_url) as queue,
        served_app.stream(STREAM, cy) as stream,
    ):
        async with connected(served_app.database_url) as connection:
            transaction = connection.transaction()
            await transaction.start()
            rolled_back = await emit_many_sql(connection, [(cy, "lost", None), (cy, "lost", None)])
            await transaction.rollback()
            marker = await FEED.emit(connection, target_user_id=cy, event_type="kept")
            recorded = await connection.fetchval(
                f"SELECT count(*) FROM {FEED.events_table} WHERE id = ANY ($1)", rolled_back
            )
        assert await until_marker(queue, marker) == []
        first = await next_event(stream)
    assert recorded == 0
    assert (first.id, first.event) == (str(marker), "kept")


async def test_a_client_resumes_with_last_event_id_from_inside_a_bulk_emit(
    served_app: ServedApp,
) -> None:
    (di,) = users("di")
    async with connected(served_app.database_url) as connection:
        ids = await emit_many_sql(connection, [(di, "tick", f'{{"n": {n}}}') for n in range(5)])
    async with served_app.stream(STREAM, di, last_event_id=str(ids[1])) as stream:
        replayed = [await next_event(stream) for _ in ids[2:]]
    assert [(event.id, payload_of(event)) for event in replayed] == [
        (str(event_id), {"n": n}) for n, event_id in enumerate(ids) if n > 1
    ]


async def test_typed_events_go_to_one_user_or_each_to_its_own_under_their_event_types(
    served_app: ServedApp,
) -> None:
    ed, flo = users("ed", "flo")
    placed, shipped = OrderPlaced(order_id=1, lines=[]), OrderShipped(order_id=1, carrier="post")
    async with (
        served_app.stream(ORDERS_STREAM, ed) as ed_stream,
        served_app.stream(ORDERS_STREAM, flo) as flo_stream,
    ):
        async with connected(served_app.database_url) as connection:
            to_ed = await ORDERS.emit_many(connection, [placed, shipped], target_user_id=ed)
            to_each = await ORDERS.emit_many(connection, [(flo, shipped), (ed, placed)])
        ed_events = [await next_event(ed_stream) for _ in range(3)]
        flo_event = await next_event(flo_stream)
    assert [(e.id, e.event) for e in ed_events] == [
        (str(to_ed[0]), "order_placed"),
        (str(to_ed[1]), "order_shipped"),
        (str(to_each[1]), "order_placed"),
    ]
    assert (flo_event.id, flo_event.event) == (str(to_each[0]), "order_shipped")
    assert payload_of(flo_event) == {"order_id": 1, "carrier": "post", "trackingUrl": None}


@pytest.mark.parametrize(
    "events",
    [
        [OrderPlaced(order_id=1, lines=[]), Refunded(order_id=1)],
        [OrderPlaced(order_id=1, lines=[]), Order(order_id=1)],
    ],
    ids=["undeclared", "abstract"],
)
async def test_an_undeclared_event_class_refuses_the_whole_batch_before_any_sql(
    realtime_database_url: str, events: list[Order]
) -> None:
    async with connected(realtime_database_url) as connection:
        count = f"SELECT count(*) FROM {ORDERS.events_table}"
        before = await connection.fetchval(count)
        async with connection.transaction():
            with pytest.raises(TypeError, match=f"not {type(events[1]).__name__}"):
                await ORDERS.emit_many(connection, events, target_user_id="gus")
            assert await connection.fetchval(count) == before  # the transaction is still usable


async def test_events_without_their_users_are_refused_with_what_emit_many_takes(
    realtime_database_url: str,
) -> None:
    async with connected(realtime_database_url) as connection:
        with pytest.raises(TypeError, match=r"\(target_user_id, event\) pairs"):
            await ORDERS.emit_many(connection, [OrderShipped(order_id=1, carrier="post")])  # type: ignore[list-item]


async def test_nothing_to_emit_emits_nothing(realtime_database_url: str) -> None:
    async with connected(realtime_database_url) as connection:
        assert await ORDERS.emit_many(connection, [], target_user_id="hal") == []
        assert await emit_many_sql(connection, []) == []


@pytest.mark.parametrize(
    ("user_id", "event_type"),
    [
        ("", "ok"),
        ("two\nlines", "ok"),
        ("carriage\rreturn", "ok"),
        (None, "ok"),
        ("u", ""),
        ("u", "a b"),
        ("u", "1st"),
        ("u", None),
    ],
)
async def test_one_invalid_event_refuses_the_batch_as_emit_refuses_it(
    realtime_database_url: str, user_id: str, event_type: str
) -> None:
    async with connected(realtime_database_url) as connection:
        count = f"SELECT count(*) FROM {FEED.events_table}"
        before = await connection.fetchval(count)
        with pytest.raises(asyncpg.InvalidParameterValueError) as single:
            await connection.execute(
                f"SELECT {FEED.emit_function}($1, $2, NULL)", user_id, event_type
            )
        with pytest.raises(asyncpg.InvalidParameterValueError) as bulk:
            await emit_many_sql(connection, [("ok", "fine", None), (user_id, event_type, None)])
        assert await connection.fetchval(count) == before
    assert str(bulk.value) == str(single.value)


async def test_arrays_of_different_lengths_are_refused(realtime_database_url: str) -> None:
    async with connected(realtime_database_url) as connection:
        with pytest.raises(
            asyncpg.InvalidParameterValueError, match="must be as long, got 2, 1 and 2"
        ):
            await connection.fetch(EMIT_MANY, ["a", "b"], ["t"], [None, None])


async def test_bulk_emitters_giving_shared_users_in_opposite_orders_do_not_deadlock(
    realtime_database_url: str,
) -> None:
    """Locking in the order given would deadlock here: the first emitter holds `a` and waits for
    `m`, held by a third transaction; the second would take `z` and then wait for `a`, and once
    `m` is free the first would wait for `z`. Locked in sorted order, the second waits for `a`
    before it takes `z`, and both commit."""
    a, m, z = users("a", "m", "z")
    async with (
        connected(realtime_database_url) as holder,
        connected(realtime_database_url) as first,
        connected(realtime_database_url) as second,
    ):
        await emit_many_sql(holder, [(user, "known", None) for user in (a, m, z)])
        async with holder.transaction():
            await FEED.emit(holder, target_user_id=m, event_type="holds")

            async def emit_in_transaction(
                connection: asyncpg.Connection, to: list[str]
            ) -> list[int]:
                async with connection.transaction():
                    return await emit_many_sql(connection, [(u, "bulk", None) for u in to])

            first_emit = asyncio.create_task(emit_in_transaction(first, [a, m, z]))
            await wait_until_blocked(holder, first.get_server_pid())
            second_emit = asyncio.create_task(emit_in_transaction(second, [z, a]))
            await wait_until_blocked(holder, second.get_server_pid())
        first_ids, second_ids = await first_emit, await second_emit
    assert max(first_ids) < min(second_ids)
