"""Emitting many events in one statement (`Channel.emit_many`, `fastapi_pg_sse.emit_many` in
SQL) keeps every promise of emitting one: ids in the order given, each user's events delivered
in order on commit and never on rollback, replay from any of them, the same refusals; and bulk
emitters for the same users never wait for each other, whatever order they give the users in."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import asyncpg
import pytest

from fastapi_pg_sse.testing import ServedApp, connected, next_event, payload_of
from tests.app import FEED, ORDERS, ORDERS_STREAM, STREAM
from tests.helpers import blocking_pids, committing, emit, new_users
from tests.order_events import Order, OrderPlaced, OrderShipped
from tests.test_typed_events import Refunded

pytestmark = pytest.mark.anyio

EMIT_MANY = "SELECT fastapi_pg_sse.emit_many($1, $2::text[], $3::text[], $4::jsonb[])"
users = new_users


async def emit_many_sql(
    connection: asyncpg.Connection, events: list[tuple[str | None, str | None, str | None]]
) -> None:
    """`fastapi_pg_sse.emit_many` on FEED, called from SQL with (user, type, payload JSON)
    triples."""
    columns = ([event[column] for event in events] for column in range(3))
    await connection.execute(EMIT_MANY, FEED.name, *columns)


async def emit_many_committed(
    connection: asyncpg.Connection, events: list[tuple[str | None, str | None, str | None]]
) -> list[int]:
    """`emit_many_sql` in a transaction of its own; the ids its events committed with."""
    async with committing(connection) as ids:
        await emit_many_sql(connection, events)
    return ids


@asynccontextmanager
async def notifications(database_url: str) -> AsyncIterator[asyncio.Queue[str]]:
    """The payloads NOTIFY sends on the runtime's NOTIFY channel from now on."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    async with connected(database_url) as listener:
        await listener.add_listener("fastapi_pg_sse", lambda *args: queue.put_nowait(args[3]))
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
            ids = await emit_many_committed(
                connection, [(user, "note", f'{{"n": "{n}"}}') for user, n in given]
            )
        assert ids == list(range(ids[0], ids[0] + len(given)))
        received = {
            ada: [await next_event(ada_stream) for _ in range(3)],
            bo: [await next_event(bo_stream) for _ in range(2)],
        }
    for user, stream in received.items():
        expected = [(str(i), {"n": n}) for i, (u, n) in zip(ids, given, strict=True) if u == user]
        assert [(event.id, payload_of(event)) for event in stream] == expected


async def test_one_notify_per_channel_and_user_announces_their_newest_event_on_commit(
    served_app: ServedApp,
) -> None:
    """On the one NOTIFY channel `fastapi_pg_sse`, as `<id> <channel> <user>`."""
    ada, bo = users("ada", "bo")
    async with notifications(served_app.database_url) as queue:
        async with connected(served_app.database_url) as connection:
            async with committing(connection) as ids:
                await emit_many_sql(
                    connection, [(ada, "first", None), (bo, "second", None), (ada, "third", None)]
                )
                await ORDERS.emit(
                    connection, OrderShipped(order_id=1, carrier="post"), target_user_id=ada
                )
            marker = await emit(connection, FEED, ada, "marker")
        announced = await until_marker(queue, marker)
    assert sorted(announced) == sorted(
        [f"{ids[1]} test_feed {bo}", f"{ids[2]} test_feed {ada}", f"{ids[3]} test_orders {ada}"]
    )


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
            await emit_many_sql(connection, [(cy, "lost", None), (cy, "lost", None)])
            await transaction.rollback()
            marker = await emit(connection, FEED, cy, "kept")
            recorded = await connection.fetchval(
                "SELECT count(*) FROM fastapi_pg_sse.events WHERE target_user_id = $1", cy
            )
        assert await until_marker(queue, marker) == []
        first = await next_event(stream)
    assert recorded == 1, "the marker only"
    assert (first.id, first.event) == (str(marker), "kept")


async def test_a_client_resumes_with_last_event_id_from_inside_a_bulk_emit(
    served_app: ServedApp,
) -> None:
    (di,) = users("di")
    async with connected(served_app.database_url) as connection:
        ids = await emit_many_committed(
            connection, [(di, "tick", f'{{"n": {n}}}') for n in range(5)]
        )
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
            async with committing(connection) as to_ed:
                await ORDERS.emit_many(connection, [placed, shipped], target_user_id=ed)
            async with committing(connection) as to_each:
                await ORDERS.emit_many(connection, [(flo, shipped), (ed, placed)])
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
    async with connected(realtime_database_url) as connection, committing(connection) as ids:
        with pytest.raises(TypeError, match=f"not {type(events[1]).__name__}"):
            await ORDERS.emit_many(connection, events, target_user_id="gus")  # type: ignore[arg-type]
        await connection.execute("SELECT 1")  # the transaction is still usable
    assert ids == []


async def test_events_without_their_users_are_refused_with_what_emit_many_takes(
    realtime_database_url: str,
) -> None:
    async with connected(realtime_database_url) as connection:
        with pytest.raises(TypeError, match=r"\(target_user_id, event\) pairs"):
            await ORDERS.emit_many(connection, [OrderShipped(order_id=1, carrier="post")])  # type: ignore[list-item]


async def test_nothing_to_emit_emits_nothing(realtime_database_url: str) -> None:
    async with connected(realtime_database_url) as connection, committing(connection) as ids:
        await ORDERS.emit_many(connection, [], target_user_id="hal")
        await ORDERS.emit_many(connection, [])
        await emit_many_sql(connection, [])
        await connection.execute(EMIT_MANY, FEED.name, None, None, None)
        staged = await connection.fetchval(
            "SELECT count(*) FROM fastapi_pg_sse.pending_events"
            " WHERE xact_id = pg_current_xact_id()"
        )
    assert (staged, ids) == (0, [])


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
        count = "SELECT count(*) FROM fastapi_pg_sse.events WHERE target_user_id = 'ok'"
        before = await connection.fetchval(count)
        with pytest.raises(asyncpg.InvalidParameterValueError) as single:
            await connection.execute(
                "SELECT fastapi_pg_sse.emit($1, $2, $3, NULL)", FEED.name, user_id, event_type
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
            await connection.execute(EMIT_MANY, FEED.name, ["a", "b"], ["t"], [None, None])


async def test_bulk_emitters_giving_shared_users_in_opposite_orders_never_wait_for_each_other(
    served_app: ServedApp,
) -> None:
    """Emitting locks no user: the second bulk emit returns while the first emitter's
    transaction is open, and neither waits for the other. The one that commits first gets the
    smaller ids, though it emitted last, and a stream of a shared user receives each batch once,
    in commit order."""
    a, m, z = users("a", "m", "z")
    async with (
        connected(served_app.database_url) as observer,
        connected(served_app.database_url) as first,
        connected(served_app.database_url) as second,
        served_app.stream(STREAM, a) as a_stream,
    ):
        async with committing(first) as first_ids:
            await emit_many_sql(first, [(u, "first", None) for u in (a, m, z)])
            async with committing(second) as second_ids:
                with anyio.fail_after(30):
                    await emit_many_sql(second, [(u, "second", None) for u in (z, a)])
                for emitter in (first, second):
                    assert await blocking_pids(observer, emitter.get_server_pid()) == []
            on_second_commit = await next_event(a_stream)
        on_first_commit = await next_event(a_stream)
    assert max(second_ids) < min(first_ids)
    assert (on_second_commit.id, on_second_commit.event) == (str(second_ids[1]), "second")
    assert (on_first_commit.id, on_first_commit.event) == (str(first_ids[0]), "first")
