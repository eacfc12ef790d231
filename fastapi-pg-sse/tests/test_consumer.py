"""The Python consumer (`fastapi_pg_sse.consumer`) reads a channel's typed events from a real
server, on a real socket, and goes on through the faults the TypeScript client is tested with:
a server restart, a token expiry, a connection gone silent, a reset, refusals. Each event is
delivered once, in order, whatever happens in between."""

import asyncio
import email.utils
import math
import sys
import time
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import pytest
from pydantic import AliasGenerator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from fastapi_pg_sse import Channel, ChannelEvent
from fastapi_pg_sse.consumer import (
    Backoff,
    ConsumerError,
    InvalidEventPayload,
    Received,
    Reconnecting,
    Reset,
    StreamRefused,
    StreamRevoked,
    StreamUnauthorized,
    consume,
)
from fastapi_pg_sse.frames import HEARTBEAT
from fastapi_pg_sse.pytest_plugin import TEST_ENVIRONMENT
from fastapi_pg_sse.testing import TEST_JWT_SECRET, ServedApp, connected, free_port, sign_token
from tests.app import ORDERS, ORDERS_STREAM
from tests.helpers import committing, new_users, newest_id, server_metrics, serving, wait_until
from tests.order_events import OrderEvent, OrderLine, OrderPlaced, OrderShipped
from tests.proxy import BlackholeProxy, blackhole_proxy
from tests.scripted_http import Answer, scripted_server
from tests.test_replay import _backdate

pytestmark = pytest.mark.anyio

APP = "tests.app:app"
FAST_RETRY = {"REALTIME_RETRY_MILLISECONDS": "40"}
"""The `retry:` hint of the servers the tests restart: 40 ms, the consumer's first delay."""
ANOTHER_KEY = "another-key-of-at-least-thirty-two-bytes"


def with_another_key(environment: dict[str, str]) -> dict[str, str]:
    """`environment` for a server that accepts only the tokens signed with `ANOTHER_KEY`."""
    return {**environment, "REALTIME_JWT_SECRET": ANOTHER_KEY}


@dataclass
class Seen:
    """What a consumer running in the background has received, and what it was told."""

    items: list[Received[OrderEvent] | Reset] = field(default_factory=list)
    reconnects: list[Reconnecting] = field(default_factory=list)
    error: ConsumerError | None = None

    @property
    def ids(self) -> list[int]:
        return [item.id for item in self.items]


async def collect(url: str, seen: "Seen", **options: Any) -> None:
    """Read `consume(ORDERS, url, **options)` into `seen` until cancelled, or until the stream
    ends with a `ConsumerError` (kept in `seen.error`)."""
    try:
        async with consume(ORDERS, url, on_reconnect=seen.reconnects.append, **options) as stream:
            async for item in stream:
                seen.items.append(item)
    except ConsumerError as error:
        seen.error = error


@asynccontextmanager
async def consuming(url: str, **options: Any) -> AsyncIterator[Seen]:
    """`collect` in a task until the block ends."""
    seen = Seen()
    async with anyio.create_task_group() as group:
        group.start_soon(partial(collect, url, seen, **options))
        try:
            yield seen
        finally:
            group.cancel_scope.cancel()


async def until(condition: Callable[[], bool], what: str, *, timeout: float = 30) -> None:
    """Wait until `condition` holds (see `wait_until`)."""

    async def holds() -> bool:
        return condition()

    await wait_until(holds, what, timeout=timeout)


async def emit_order(database_url: str, user_id: str, event: OrderEvent) -> int:
    """Emit `event` on ORDERS for `user_id` in a transaction of its own; return its id."""
    async with connected(database_url) as connection, committing(connection) as ids:
        await ORDERS.emit(connection, event, target_user_id=user_id)
    [event_id] = ids
    return event_id


def placed(order_id: int) -> OrderPlaced:
    return OrderPlaced(order_id=order_id, lines=[OrderLine(sku="A1", quantity=order_id)])


def placed_in_order(ids: list[int]) -> list[Received[OrderEvent] | Reset]:
    """What a consumer receives of the events `ids`, emitted as `placed(1)`, `placed(2)`..."""
    return [Received(event_id, placed(n)) for n, event_id in enumerate(ids, start=1)]


async def newest(database_url: str) -> int:
    async with connected(database_url) as connection:
        return await newest_id(connection)


def open_streams_are(served_app: ServedApp, count: int) -> Callable[[], Awaitable[bool]]:
    """Whether the served app holds `count` open streams (of every test's users)."""

    async def condition() -> bool:
        return (await server_metrics(served_app.server))["open_streams"] == count

    return condition


def tokens_of(user_id: str) -> Callable[[], str]:
    return lambda: sign_token(user_id)


async def test_events_arrive_as_their_models_with_their_ids_and_undeclared_types_are_skipped(
    served_app: ServedApp,
) -> None:
    (olga,) = new_users("olga")
    database = served_app.database_url
    url = served_app.server.url + ORDERS_STREAM
    shipped = OrderShipped(order_id=7, carrier="post", trackingUrl="https://t.example/7")
    async with consuming(url, token=tokens_of(olga), last_event_id=await newest(database)) as seen:
        first = await emit_order(database, olga, placed(7))
        unknown = await served_app.emit(ORDERS, olga, "order_refunded", {"order_id": 7})
        last = await emit_order(database, olga, shipped)
        await until(lambda: len(seen.items) == 2, "two events arrived")
    assert seen.items == [Received(first, placed(7)), Received(last, shipped)]
    assert first < unknown < last


async def test_a_payload_its_model_refuses_ends_the_stream_naming_the_event(
    served_app: ServedApp,
) -> None:
    (pia,) = new_users("pia")
    url = served_app.server.url + ORDERS_STREAM
    start = await newest(served_app.database_url)
    async with consuming(url, token=tokens_of(pia), last_event_id=start) as seen:
        bad = await served_app.emit(ORDERS, pia, "order_placed", {"order_id": "seven"})
        await until(lambda: seen.error is not None, "the stream ended")
    assert isinstance(seen.error, InvalidEventPayload)
    assert (seen.error.event_id, seen.error.event_type) == (bad, "order_placed")
    assert f"event {bad} (order_placed) does not match OrderPlaced" in str(seen.error)


class Shelf(BaseModel):
    model_config = ConfigDict(alias_generator=AliasGenerator(serialization_alias=to_camel))

    shelf_code: str


class Restocked(ChannelEvent):
    """An event whose fields go by other names on the wire, each in its own way."""

    model_config = ConfigDict(alias_generator=to_camel)
    event_type: ClassVar[str] = "restocked"

    stock_id: int = Field(serialization_alias="id")
    note_text: str = Field(alias="note")
    units_left: int
    shelves: list[Shelf]


async def test_fields_are_read_by_the_names_the_server_writes_them_under(
    served_app: ServedApp,
) -> None:
    """`Channel.emit` writes each field by its serialization alias (`serialization_alias=`,
    `alias=`, an `alias_generator` or an `AliasGenerator`'s `serialization_alias`, also in a
    nested model): the consumer reads the payload by those names."""
    (alma,) = new_users("alma")
    database = served_app.database_url
    stock: Channel[Restocked] = Channel(ORDERS.name, events=Restocked)
    event = Restocked.model_validate(
        {"stockId": 4, "note": "back", "unitsLeft": 12, "shelves": [{"shelf_code": "B2"}]}
    )
    url = served_app.server.url + ORDERS_STREAM
    async with (
        consume(stock, url, token=tokens_of(alma), last_event_id=await newest(database)) as stream,
        connected(database) as connection,
    ):
        async with committing(connection) as ids:
            await stock.emit(connection, event, target_user_id=alma)
        item = await anext(stream)
    assert item == Received(ids[0], event)


@pytest.mark.parametrize("credentials", ["cookie", "headers"])
async def test_without_a_token_the_clients_cookies_or_the_headers_given_authenticate(
    served_app: ServedApp, credentials: str
) -> None:
    (nils,) = new_users("nils")
    database = served_app.database_url
    token = sign_token(nils)
    cookies = {"access_token": token} if credentials == "cookie" else {}
    headers = {"Authorization": f"Bearer {token}"} if credentials == "headers" else {}
    url = served_app.server.url + ORDERS_STREAM
    start = await newest(database)
    async with (
        httpx.AsyncClient(cookies=cookies) as client,
        consuming(url, client=client, headers=headers, last_event_id=start) as seen,
    ):
        emitted = [await emit_order(database, nils, placed(1))]
        await until(lambda: seen.ids == emitted, "the event arrived")
    assert seen.items == placed_in_order(emitted)


async def test_a_restarted_server_is_resumed_without_loss_or_duplicate(
    served_app: ServedApp, pytestconfig: pytest.Config
) -> None:
    """The server stops with a stream open, events are emitted while it is down, and it starts
    again on the same port: the consumer reconnects and replays them."""
    (quentin,) = new_users("quentin")
    database = served_app.database_url
    port = free_port()
    environment = {"DATABASE_URL": database, **TEST_ENVIRONMENT, **FAST_RETRY}
    url = f"http://127.0.0.1:{port}{ORDERS_STREAM}"
    async with AsyncExitStack() as server:
        await server.enter_async_context(
            serving(APP, pytestconfig.rootpath, environment, port=port)
        )
        start = await newest(database)
        async with consuming(url, token=tokens_of(quentin), last_event_id=start) as seen:
            emitted = [await emit_order(database, quentin, placed(1))]
            await until(lambda: seen.ids == emitted, "the first event arrived")
            await server.aclose()  # the server stops
            emitted += [await emit_order(database, quentin, placed(n)) for n in (2, 3)]
            await until(lambda: len(seen.reconnects) >= 2, "the consumer tried again")
            await server.enter_async_context(
                serving(APP, pytestconfig.rootpath, environment, port=port)
            )
            emitted.append(await emit_order(database, quentin, placed(4)))
            await until(lambda: len(seen.items) >= 4, "the missed and new events arrived")
    assert seen.items == placed_in_order(emitted)


async def test_a_token_the_restarted_server_refuses_is_renewed_on_its_401(
    served_app: ServedApp, pytestconfig: pytest.Config
) -> None:
    """The server restarts with another signing key, as when the token the stream opened with
    expired while it was down: it refuses that token (401), the consumer asks for a new one and
    resumes."""
    (rhys,) = new_users("rhys")
    database = served_app.database_url
    port = free_port()
    environment = {"DATABASE_URL": database, **TEST_ENVIRONMENT, **FAST_RETRY}
    url = f"http://127.0.0.1:{port}{ORDERS_STREAM}"
    tokens: list[str] = []

    def token() -> str:
        tokens.append(sign_token(rhys, key=TEST_JWT_SECRET if not tokens else ANOTHER_KEY))
        return tokens[-1]

    backoff = Backoff(initial=0.05, max=0.2)
    async with AsyncExitStack() as server:
        await server.enter_async_context(
            serving(APP, pytestconfig.rootpath, environment, port=port)
        )
        start = await newest(database)
        async with consuming(url, token=token, last_event_id=start, backoff=backoff) as seen:
            emitted = [await emit_order(database, rhys, placed(1))]
            await until(lambda: seen.ids == emitted, "the first event arrived")
            await server.aclose()
            emitted.append(await emit_order(database, rhys, placed(2)))
            await server.enter_async_context(
                serving(APP, pytestconfig.rootpath, with_another_key(environment), port=port)
            )
            await until(lambda: len(seen.items) >= 2, "the missed event arrived")
    assert seen.items == placed_in_order(emitted)
    assert len(tokens) == 2
    assert "HTTP 401" in [reconnect.cause for reconnect in seen.reconnects]


async def test_a_consumer_started_before_the_server_renews_the_token_it_held_meanwhile(
    served_app: ServedApp, pytestconfig: pytest.Config
) -> None:
    """A worker starts before the API: its first token is refused once the server is up, after
    connections that failed meanwhile. That token was given for the first request, not for the
    one refused: the source is asked again, and the stream opens."""
    (rene,) = new_users("rene")
    database = served_app.database_url
    port = free_port()
    environment = with_another_key({"DATABASE_URL": database, **TEST_ENVIRONMENT, **FAST_RETRY})
    url = f"http://127.0.0.1:{port}{ORDERS_STREAM}"
    tokens: list[str] = []

    def token() -> str:
        tokens.append(sign_token(rene, key=TEST_JWT_SECRET if not tokens else ANOTHER_KEY))
        return tokens[-1]

    start = await newest(database)
    backoff = Backoff(initial=0.05, max=0.2)
    async with consuming(url, token=token, last_event_id=start, backoff=backoff) as seen:
        await until(lambda: len(seen.reconnects) >= 2, "two connections were refused")
        async with serving(APP, pytestconfig.rootpath, environment, port=port):
            emitted = [await emit_order(database, rene, placed(1))]
            await until(lambda: bool(seen.items) or seen.error is not None, "the event arrived")
    assert seen.error is None
    assert seen.items == placed_in_order(emitted)
    assert len(tokens) == 2


async def test_an_expired_token_is_renewed_and_the_stream_resumes_without_loss(
    served_app: ServedApp,
) -> None:
    """The first token lives six seconds (room for a loaded machine to open the stream and
    deliver the first event before it expires): the server ends the stream with `expired`; the
    consumer asks for a new token (an event is emitted meanwhile) and reconnects at once, the
    stream having delivered the first event, which it replays as it opens."""
    (rosa,) = new_users("rosa")
    database = served_app.database_url
    start = await newest(database)
    emitted = [await emit_order(database, rosa, placed(1))]

    async def token() -> str:
        tokens.append(sign_token(rosa, expires_in=6 if not tokens else 300))
        if len(tokens) == 2:  # the stream expired: no stream is open
            emitted.append(await emit_order(database, rosa, placed(2)))
        return tokens[-1]

    tokens: list[str] = []
    url = served_app.server.url + ORDERS_STREAM
    async with consuming(url, token=token, last_event_id=start) as seen:
        await until(lambda: len(emitted) == 2, "the token expired and was renewed")
        emitted.append(await emit_order(database, rosa, placed(3)))
        await until(lambda: len(seen.items) >= 3, "every event arrived")
    assert seen.items == placed_in_order(emitted)
    assert seen.reconnects[0] == Reconnecting("expired", 0.0)


async def revoke(database_url: str, user_id: str) -> None:
    async with connected(database_url) as connection:
        await connection.execute("SELECT fastapi_pg_sse.disconnect($1)", user_id)


async def test_a_revoked_stream_reconnects_only_with_a_new_token_and_resumes_without_loss(
    served_app: ServedApp,
) -> None:
    """The server ends the stream with `revoked`: the consumer asks the token source for a new
    token (issued after the revocation, as a sign-in again would), and resumes from its last id."""
    (rosa,) = new_users("rosa")
    database = served_app.database_url
    tokens: list[str] = []

    def token() -> str:
        issued_at = int(time.time()) - (5 if not tokens else 0)
        tokens.append(sign_token(rosa, iat=issued_at))
        return tokens[-1]

    url = served_app.server.url + ORDERS_STREAM
    async with consuming(url, token=token, last_event_id=await newest(database)) as seen:
        emitted = [await emit_order(database, rosa, placed(1))]
        await until(lambda: len(seen.items) == 1, "the first event arrived")
        await revoke(database, rosa)
        await until(lambda: len(tokens) == 2, "the stream was revoked and a new token asked for")
        emitted.append(await emit_order(database, rosa, placed(2)))
        await until(lambda: len(seen.items) >= 2, "the event after the revocation arrived")
    assert seen.items == placed_in_order(emitted)
    assert seen.reconnects[0] == Reconnecting("revoked", 0.0)
    assert seen.error is None


async def test_a_revoked_stream_without_a_new_token_ends_with_stream_revoked(
    served_app: ServedApp,
) -> None:
    (rosa,) = new_users("rosa")
    database = served_app.database_url
    token = sign_token(rosa, iat=int(time.time()) - 5)
    url = served_app.server.url + ORDERS_STREAM
    async with consuming(url, token=token, last_event_id=await newest(database)) as seen:
        await emit_order(database, rosa, placed(1))
        await until(lambda: len(seen.items) == 1, "the stream is open")
        await revoke(database, rosa)
        await until(lambda: seen.error is not None, "the stream ended")
    assert isinstance(seen.error, StreamRevoked)
    assert "the token source gave the revoked token again" in str(seen.error)
    assert seen.reconnects == []


async def test_a_connection_gone_silent_is_taken_for_dead_and_resumed(
    served_app: ServedApp,
) -> None:
    """A proxy between consumer and server drops every byte both ways, as a dead NAT entry
    does: no heartbeat arrives for `idle_timeout`, the consumer reconnects, and once the
    network is back it replays what the silent connection swallowed."""
    (sven,) = new_users("sven")
    database = served_app.database_url
    server_port = int(served_app.server.url.rpartition(":")[2])
    proxy = BlackholeProxy(lambda: asyncio.open_connection("127.0.0.1", server_port))
    await proxy.start()
    url = f"http://127.0.0.1:{proxy.port}{ORDERS_STREAM}"
    options: dict[str, Any] = {"idle_timeout": 3, "backoff": Backoff(jitter=lambda: 0.1)}
    try:
        start = await newest(database)
        async with consuming(url, token=tokens_of(sven), last_event_id=start, **options) as seen:
            emitted = [await emit_order(database, sven, placed(1))]
            await until(lambda: seen.ids == emitted, "the first event arrived")
            proxy.blackhole()
            emitted.append(await emit_order(database, sven, placed(2)))
            await until(lambda: bool(seen.reconnects), "the silent connection was given up")
            proxy.forward()
            emitted.append(await emit_order(database, sven, placed(3)))
            await until(lambda: len(seen.items) >= 3, "every event arrived")
    finally:
        await proxy.stop()
    assert seen.items == placed_in_order(emitted)
    assert seen.reconnects[0].cause.startswith("ReadTimeout")


async def test_a_resume_id_below_the_pruned_horizon_yields_a_reset_then_live_events(
    served_app: ServedApp,
) -> None:
    tess, other = new_users("tess", "other")
    database = served_app.database_url
    before = await emit_order(database, tess, placed(1))
    pruned = await emit_order(database, other, placed(2))
    async with connected(database) as connection:
        await _backdate(connection, [before, pruned], days=30)
        await ORDERS.prune(connection)
        reset_id = await newest_id(connection)
    url = served_app.server.url + ORDERS_STREAM
    async with consuming(url, token=tokens_of(tess), last_event_id=before) as seen:
        await until(lambda: bool(seen.items), "the reset arrived")
        live = await emit_order(database, tess, placed(3))
        await until(lambda: len(seen.items) >= 2, "the live event arrived")
    assert seen.items == [Reset(reset_id), Received(live, placed(3))]


async def test_delays_grow_while_the_server_refuses_and_start_again_after_a_connection_that_worked(
    served_app: ServedApp, pytestconfig: pytest.Config
) -> None:
    """Each delay is half its ceiling (`jitter`), which starts at the server's `retry:` hint
    (40 ms, not the 0.32 s given) and doubles with each refused connection up to `max`; a
    connection that delivered an event starts it again from the hint."""
    (uma,) = new_users("uma")
    database = served_app.database_url
    port = free_port()
    environment = {"DATABASE_URL": database, **TEST_ENVIRONMENT, **FAST_RETRY}
    url = f"http://127.0.0.1:{port}{ORDERS_STREAM}"
    backoff = Backoff(initial=0.32, max=0.32, jitter=lambda: 0.5)
    async with AsyncExitStack() as server:
        await server.enter_async_context(
            serving(APP, pytestconfig.rootpath, environment, port=port)
        )
        start = await newest(database)
        async with consuming(
            url, token=tokens_of(uma), last_event_id=start, backoff=backoff
        ) as seen:
            first = await emit_order(database, uma, placed(1))
            await until(lambda: seen.ids == [first], "the first event arrived")
            await server.aclose()  # connections are refused from now on
            await until(lambda: len(seen.reconnects) >= 6, "six connections were refused")
            await server.enter_async_context(
                serving(APP, pytestconfig.rootpath, environment, port=port)
            )
            second = await emit_order(database, uma, placed(2))
            await until(lambda: seen.ids == [first, second], "the second event arrived")
            while_down = len(seen.reconnects)
            await server.aclose()
            await until(lambda: len(seen.reconnects) > while_down, "the consumer tried again")
    delays = [reconnect.delay for reconnect in seen.reconnects]
    assert delays[:6] == pytest.approx([0.02, 0.04, 0.08, 0.16, 0.16, 0.16])
    assert delays[while_down] == pytest.approx(0.02)


class HeartbeatWatch(httpx.AsyncBaseTransport):
    """httpx's transport, counting the heartbeats that pass on the way to the consumer."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.heartbeats = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Watched(response.stream, self)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Watched(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, watch: HeartbeatWatch) -> None:
        self.stream, self.watch = stream, watch

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            self.watch.heartbeats += chunk.count(HEARTBEAT)
            yield chunk

    async def aclose(self) -> None:
        await self.stream.aclose()


async def test_a_connection_that_delivered_only_a_heartbeat_starts_the_delays_again(
    served_app: ServedApp, pytestconfig: pytest.Config
) -> None:
    """Connections are refused until the server starts; its stream delivers no event, only a
    heartbeat, before the server stops: that connection worked, the next delay is the
    shortest again. (It did not work by staying open `backoff.max` seconds: a minute, twice
    as long as any wait of the test.)"""
    (ines,) = new_users("ines")
    port = free_port()
    environment = {"DATABASE_URL": served_app.database_url, **TEST_ENVIRONMENT, **FAST_RETRY}
    watch = HeartbeatWatch()
    backoff = Backoff(initial=0.04, max=60.0, jitter=lambda: 0.5)
    url = f"http://127.0.0.1:{port}{ORDERS_STREAM}"
    async with (
        httpx.AsyncClient(transport=watch) as client,
        consuming(url, token=tokens_of(ines), backoff=backoff, client=client) as seen,
    ):
        await until(lambda: len(seen.reconnects) >= 3, "three connections were refused")
        async with serving(APP, pytestconfig.rootpath, environment, port=port):
            await until(lambda: watch.heartbeats > 0, "a heartbeat arrived")
            refused = len(seen.reconnects)
        await until(lambda: len(seen.reconnects) > refused, "the consumer tried again")
    delays = [reconnect.delay for reconnect in seen.reconnects]
    assert delays[:3] == pytest.approx([0.02, 0.04, 0.08])
    assert delays[refused] == pytest.approx(0.02)
    assert seen.items == []


async def test_a_429_is_retried_after_its_retry_after_with_the_servers_scheme_word(
    served_app: ServedApp, pytestconfig: pytest.Config
) -> None:
    """A server of one stream per user, whose tokens follow the word `Token`: a second stream
    of the same user is refused with `Retry-After: 1`, waits at least that, and opens once the
    first one is closed."""
    (vera,) = new_users("vera")
    database = served_app.database_url
    environment = {
        "DATABASE_URL": database,
        **TEST_ENVIRONMENT,
        **FAST_RETRY,
        "REALTIME_MAX_STREAMS_PER_USER": "1",
        "REALTIME_AUTH_SCHEME": "Token",
    }
    async with serving(APP, pytestconfig.rootpath, environment) as server:
        url = server.url + ORDERS_STREAM
        options: dict[str, Any] = {
            "token": tokens_of(vera),
            "scheme": "Token",
            "last_event_id": await newest(database),
        }
        first = Seen()
        first_stream = asyncio.create_task(collect(url, first, **options))
        emitted = [await emit_order(database, vera, placed(1))]
        await until(lambda: first.ids == emitted, "the first stream is open")
        async with consuming(url, **options) as second:
            await until(lambda: bool(second.reconnects), "the second stream was refused")
            first_stream.cancel()
            await asyncio.wait([first_stream])
            emitted.append(await emit_order(database, vera, placed(2)))
            await until(lambda: second.ids == emitted, "the second stream opened")
    refused = second.reconnects[0]
    assert refused.cause == "HTTP 429"
    assert refused.delay >= 1.0


async def test_a_token_refused_as_soon_as_it_is_given_ends_the_stream(
    served_app: ServedApp,
) -> None:
    (wim,) = new_users("wim")
    calls: list[str] = []

    def token() -> str:
        calls.append(sign_token(wim, key=ANOTHER_KEY))
        return calls[-1]

    async with consuming(served_app.server.url + ORDERS_STREAM, token=token) as seen:
        await until(lambda: seen.error is not None, "the stream ended")
    assert isinstance(seen.error, StreamUnauthorized)
    assert seen.error.challenge == 'Bearer realm="realtime", error="invalid_token"'
    assert "asking it again would not help" in str(seen.error)
    assert len(calls) == 1


async def test_a_renewal_that_gives_a_refused_token_ends_the_stream_after_the_expiry(
    served_app: ServedApp,
) -> None:
    """The first token is good for six seconds (room for a loaded machine to deliver an event
    first); the one given after it expired is refused: the stream ends with `StreamUnauthorized`
    rather than asking for ever."""
    (xena,) = new_users("xena")
    database = served_app.database_url
    calls: list[str] = []

    def token() -> str:
        key = {} if not calls else {"key": ANOTHER_KEY}
        calls.append(sign_token(xena, expires_in=6, **key))
        return calls[-1]

    url = served_app.server.url + ORDERS_STREAM
    async with consuming(url, token=token, last_event_id=await newest(database)) as seen:
        emitted = await emit_order(database, xena, placed(1))
        await until(lambda: seen.error is not None, "the stream ended")
    assert isinstance(seen.error, StreamUnauthorized)
    assert (seen.ids, len(calls)) == ([emitted], 2)


async def test_cancelling_a_consumer_closes_its_connection_and_leaves_no_task(
    served_app: ServedApp,
) -> None:
    (yann,) = new_users("yann")
    open_before = (await server_metrics(served_app.server))["open_streams"]
    tasks_before = asyncio.all_tasks()
    received: list[Received[OrderEvent] | Reset] = []

    async def read(stream_url: str) -> None:
        async with consume(ORDERS, stream_url, token=tokens_of(yann)) as stream:
            async for item in stream:
                received.append(item)

    reader = asyncio.create_task(read(served_app.server.url + ORDERS_STREAM))
    await wait_until(open_streams_are(served_app, open_before + 1), "the stream opened")
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    await wait_until(open_streams_are(served_app, open_before), "the server saw it close")
    assert asyncio.all_tasks() == tasks_before
    assert received == []


async def test_leaving_the_block_mid_iteration_closes_the_connection_of_a_clients_own(
    served_app: ServedApp,
) -> None:
    """The stream is left suspended after an item, on an httpx client the caller keeps open:
    the end of the block closes the connection, not the garbage collector."""
    (yusuf,) = new_users("yusuf")
    database = served_app.database_url
    open_before = (await server_metrics(served_app.server))["open_streams"]
    url = served_app.server.url + ORDERS_STREAM
    options: dict[str, Any] = {"token": tokens_of(yusuf), "last_event_id": await newest(database)}
    async with httpx.AsyncClient() as client:
        async with consume(ORDERS, url, client=client, **options) as stream:
            emitted = await emit_order(database, yusuf, placed(1))
            item = await anext(stream)
            await wait_until(open_streams_are(served_app, open_before + 1), "the stream is open")
        await wait_until(open_streams_are(served_app, open_before), "the server saw it close")
    assert item == Received(emitted, placed(1))
    assert stream.last_event_id == emitted


def test_a_channel_that_declares_no_events_is_refused() -> None:
    from tests.app import FEED

    async def open_untyped() -> None:
        async with consume(FEED, "http://127.0.0.1:1/feed/stream"):
            pass

    with pytest.raises(TypeError, match="declares no events"):
        asyncio.run(open_untyped())


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example(number: int) -> str:
    """The `number`-th python block (from 0) of the README's "A Python consumer" section."""
    section = README.read_text(encoding="utf-8").split("## A Python consumer", 1)[1]
    section = section.split("\n## ", 1)[0]
    return section.split("```python\n")[number + 1].split("```", 1)[0]


def run_readme_example(
    number: int, user_id: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """What the README's `number`-th example defines, its imports of the project's modules
    answered by the test app's, its token signed for `user_id`."""
    modules: dict[str, dict[str, Any]] = {
        "shop": {},
        "shop.auth": {"service_token": tokens_of(user_id)},
        "shop.orders": {
            "ORDERS": ORDERS,
            "OrderEvent": OrderEvent,
            "OrderPlaced": OrderPlaced,
            "OrderShipped": OrderShipped,
        },
    }
    for name, attributes in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)
    namespace: dict[str, Any] = {"__name__": "readme_consumer"}
    exec(readme_example(number), namespace)
    return namespace


async def test_the_readmes_example_follows_a_users_orders(
    served_app: ServedApp, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's code, its imports of the project's modules answered by the test app's."""
    (zoe,) = new_users("zoe")
    namespace = run_readme_example(0, zoe, monkeypatch)
    open_before = (await server_metrics(served_app.server))["open_streams"]
    follow = asyncio.create_task(namespace["follow_orders"](served_app.server.url))
    try:
        await wait_until(open_streams_are(served_app, open_before + 1), "the example connected")
        first = await emit_order(served_app.database_url, zoe, placed(5))
        await emit_order(served_app.database_url, zoe, OrderShipped(order_id=5, carrier="post"))
        printed: list[str] = []

        def two_lines() -> bool:
            printed.extend(capsys.readouterr().out.splitlines())
            return len(printed) >= 2

        await until(two_lines, "the example printed both events")
    finally:
        follow.cancel()
    assert printed == [f"order 5 placed (event {first})", "order 5 shipped by post"]


def stream_of(*events: tuple[int, str, str]) -> Answer:
    """An event stream that sends `events` (id, type, data) and stays open."""
    body = "".join(f"id: {id}\nevent: {type}\ndata: {data}\n\n" for id, type, data in events)
    return Answer(200, {"Content-Type": "text/event-stream"}, body.encode())


PLACED_1 = (1, "order_placed", placed(1).model_dump_json())
NO_JITTER = Backoff(initial=0.05, max=0.3, jitter=lambda: 0.0)


@pytest.mark.parametrize(
    "retry_after",
    [
        "86400",
        email.utils.format_datetime(datetime.now(UTC) + timedelta(days=1), usegmt=True),
    ],
    ids=["seconds", "http-date"],
)
async def test_a_503_waits_its_retry_after_at_most_backoff_max(retry_after: str) -> None:
    """A `Retry-After` a day away, in seconds or as an HTTP date, waits `backoff.max`."""

    def script(n: int, headers: dict[str, str]) -> Answer:
        return Answer(503, {"Retry-After": retry_after}) if n == 0 else stream_of(PLACED_1)

    async with scripted_server(script) as server, consuming(server.url, backoff=NO_JITTER) as seen:
        await until(lambda: bool(seen.items), "the event arrived")
    assert seen.reconnects == [Reconnecting("HTTP 503", 0.3)]
    assert seen.items == [Received(1, placed(1))]


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (Answer(403, {"Content-Type": "application/json"}, b'{"detail":"not yours"}'), "not yours"),
        (Answer(404, {}, b"no such page"), "no such page"),
        (Answer(200, {"Content-Type": "text/html"}, b"<p>a login page"), "not an event stream"),
    ],
    ids=["403", "404", "200-html"],
)
async def test_an_answer_that_would_be_the_same_again_ends_the_stream(
    answer: Answer, detail: str
) -> None:
    async with (
        scripted_server(lambda n, headers: answer) as server,
        consuming(server.url, backoff=NO_JITTER) as seen,
    ):
        await until(lambda: seen.error is not None, "the stream ended")
    assert isinstance(seen.error, StreamRefused)
    assert seen.error.status_code == answer.status
    assert detail in str(seen.error)
    assert (len(server.requests), seen.reconnects) == (1, [])


@pytest.mark.parametrize(("stays_open", "next_delay"), [(True, 0.125), (False, 1.0)])
async def test_a_silent_connection_worked_once_it_stayed_open_backoff_max_seconds(
    stays_open: bool, next_delay: float
) -> None:
    """Three 503s grow the delays (0.125, 0.25, 0.5 s: half of each ceiling); then a stream
    opens and sends nothing. Ended after `backoff.max` (2 s), it worked: the next delay is the
    shortest again; ended at once, it did not: the ceiling doubles on (1 s)."""
    silent = Answer(200, {"Content-Type": "text/event-stream"})
    backoff = Backoff(initial=0.25, max=2.0, jitter=lambda: 0.5)

    def script(n: int, headers: dict[str, str]) -> Answer:
        return silent if n == 3 else Answer(503)

    async with scripted_server(script) as server, consuming(server.url, backoff=backoff) as seen:
        await until(lambda: server.open_streams == 1, "the silent stream opened")
        opened = time.monotonic()
        if stays_open:
            await until(lambda: time.monotonic() - opened >= backoff.max, "max seconds passed")
        silent.release.set()
        await until(lambda: len(seen.reconnects) == 4, "the consumer tried again")
    delays = [reconnect.delay for reconnect in seen.reconnects]
    assert delays == pytest.approx([0.125, 0.25, 0.5, next_delay])
    assert seen.reconnects[3].cause == "the stream ended"


async def test_a_token_source_that_raises_is_asked_again_after_a_delay() -> None:
    """As the TypeScript client retries a `refreshToken` that failed: an identity provider
    down for a moment does not end the stream."""
    calls: list[int] = []

    async def token() -> str:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("the identity provider is down")
        return "the-token"

    async with (
        scripted_server(lambda n, headers: stream_of(PLACED_1)) as server,
        consuming(server.url, token=token, backoff=NO_JITTER) as seen,
    ):
        await until(lambda: bool(seen.items), "the event arrived")
    assert seen.reconnects == [
        Reconnecting("the token source raised RuntimeError('the identity provider is down')", 0.0)
    ]
    assert [request["authorization"] for request in server.requests] == ["Bearer the-token"]


@pytest.mark.parametrize("kind", ["raises", "async"])
async def test_on_reconnect_may_be_async_and_what_it_raises_does_not_end_the_stream(
    kind: str,
) -> None:
    told: list[Reconnecting] = []

    def raises(reconnecting: Reconnecting) -> None:
        told.append(reconnecting)
        raise RuntimeError("a bug in the callback")

    async def tells(reconnecting: Reconnecting) -> None:
        await asyncio.sleep(0)
        told.append(reconnecting)

    def script(n: int, headers: dict[str, str]) -> Answer:
        return Answer(503) if n == 0 else stream_of(PLACED_1)

    received: list[Received[OrderEvent] | Reset] = []
    callback = raises if kind == "raises" else tells
    async with (
        scripted_server(script) as server,
        consume(ORDERS, server.url, backoff=NO_JITTER, on_reconnect=callback) as stream,
    ):
        received.append(await anext(stream))
    assert told == [Reconnecting("HTTP 503", 0.0)]
    assert received == [Received(1, placed(1))]


async def test_a_string_token_refused_ends_the_stream_saying_to_give_a_callable() -> None:
    def script(n: int, headers: dict[str, str]) -> Answer:
        return Answer(401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, b"expired")

    async with (
        scripted_server(script) as server,
        consuming(server.url, token="a-token", backoff=NO_JITTER) as seen,
    ):
        await until(lambda: seen.error is not None, "the stream ended")
    assert isinstance(seen.error, StreamUnauthorized)
    assert "a callable that returns a new token" in str(seen.error)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("initial", "maximum"), [(0, 30), (1, 0), (-1, 30), (5, 1), (1, math.inf), (math.nan, 1)]
)
def test_a_backoff_that_could_not_grow_or_would_pass_its_max_is_refused(
    initial: float, maximum: float
) -> None:
    with pytest.raises(ValueError, match=r"0 < initial <= max"):
        Backoff(initial=initial, max=maximum)


async def test_the_readmes_example_goes_on_past_a_refused_event_from_its_id(
    served_app: ServedApp, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused payload ends a stream before it, every time it is consumed from before it; the
    README's loop consumes again from `error.event_id`, and goes on with the events after it."""
    (pete,) = new_users("pete")
    database = served_app.database_url
    start = await newest(database)
    bad = await served_app.emit(ORDERS, pete, "order_placed", {"order_id": "seven"})
    after = [await emit_order(database, pete, placed(1))]
    follow = run_readme_example(1, pete, monkeypatch)["follow_orders_past_refused_events"]
    received: list[Received[OrderEvent] | Reset] = []
    task = asyncio.create_task(follow(served_app.server.url, received.append, start))
    try:
        await until(lambda: bool(received), "the event after the refused one arrived")
        after.append(await emit_order(database, pete, placed(2)))
        await until(lambda: len(received) >= 2, "the next event arrived")
    finally:
        task.cancel()
    assert received == placed_in_order(after)
    assert [
        record.getMessage().split(":")[0]
        for record in caplog.records
        if record.levelname == "ERROR"
    ] == [f"skipping event {bad}"]


async def test_a_stream_opened_while_the_database_is_silent_is_reconnected_until_it_is_back(
    realtime_database_url: str, pytestconfig: pytest.Config
) -> None:
    """The server cannot reach PostgreSQL: each stream ends at once with the retry hint, and the
    consumer reconnects after it, from its own resume id, until the database answers again."""
    (ulla,) = new_users("ulla")
    start = await newest(realtime_database_url)
    async with blackhole_proxy(realtime_database_url) as (proxy, proxied_url):
        environment = {
            "DATABASE_URL": proxied_url,
            "REALTIME_POOL_TIMEOUT_SECONDS": "1",
            **TEST_ENVIRONMENT,
            **FAST_RETRY,
        }
        async with serving(APP, pytestconfig.rootpath, environment) as server:
            url = server.url + ORDERS_STREAM
            proxy.blackhole()
            async with consuming(url, token=tokens_of(ulla), last_event_id=start) as seen:
                await until(lambda: len(seen.reconnects) >= 2, "two streams ended at once")
                emitted = [await emit_order(realtime_database_url, ulla, placed(n)) for n in (1, 2)]
                proxy.forward()
                await until(lambda: len(seen.items) >= 2, "the events arrived")
    assert seen.items == placed_in_order(emitted)
    assert {reconnect.cause for reconnect in seen.reconnects} == {"the stream ended"}
