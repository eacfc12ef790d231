"""Tracing: an emit stores the W3C traceparent of the span current where it runs, and the
delivery of the event to its user's streams is a span linked to it; each stream and each replay
is a span. Recorded with the OpenTelemetry SDK's in-memory exporter, on an app served in the test
process (so that its spans reach the exporter) over a real socket."""

import asyncio
import re
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI, Header
from httpx_sse import aconnect_sse
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fastapi_pg_sse import (
    Channel,
    EventStream,
    Streams,
    create_realtime_router,
    stream_route,
    tracing,
)
from fastapi_pg_sse.testing import connected, next_event
from tests.helpers import committing, kernel_settings, new_channel, new_users, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans the test process records from now on (its tracer provider is the SDK's)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def traced_app(database_url: str, channel: Channel[Any]) -> FastAPI:
    router = APIRouter()

    @stream_route(router, channel)
    async def stream(user: Annotated[str, Header(alias="X-User")], streams: Streams) -> EventStream:
        return streams.open(channel, user)

    app = FastAPI()
    app.include_router(create_realtime_router([channel], settings=kernel_settings(database_url)))
    app.include_router(router)
    return app


@asynccontextmanager
async def served_here(app: FastAPI) -> AsyncIterator[str]:
    """`app` served by uvicorn on this event loop, on a loopback port; its URL."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        await wait_until(_async(lambda: server.started), "the server started")
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving


def _async(condition: Callable[[], object]) -> Callable[[], Awaitable[bool]]:
    async def holds() -> bool:
        return bool(condition())

    return holds


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


async def test_the_delivery_of_an_event_is_linked_to_the_span_that_emitted_it(
    spans: InMemorySpanExporter, realtime_database_url: str
) -> None:
    channel = new_channel("traced")
    (ada,) = new_users("ada")
    tracer = trace.get_tracer("the application")
    async with (
        served_here(traced_app(realtime_database_url, channel)) as url,
        httpx.AsyncClient(timeout=30) as client,
        aconnect_sse(client, "GET", url + "/stream", headers={"X-User": ada}) as source,
        connected(realtime_database_url) as connection,
    ):
        events = source.aiter_sse()
        with tracer.start_as_current_span("POST /orders") as request:
            async with committing(connection) as ids:
                await channel.emit(connection, target_user_id=ada, event_type="placed")
        assert (await next_event(events)).id == str(ids[0])
        emitted = request.get_span_context()
        traceparent = f"00-{emitted.trace_id:032x}-{emitted.span_id:016x}-{emitted.trace_flags:02x}"
        stored = await connection.fetchval(
            "SELECT traceparent FROM fastapi_pg_sse.events WHERE id = $1", ids[0]
        )
        assert stored == traceparent
        await wait_until(_async(lambda: named(spans, f"deliver {channel.name}")), "delivered")
        [delivery] = named(spans, f"deliver {channel.name}")
        assert [link.context.span_id for link in delivery.links] == [emitted.span_id]
        assert [link.context.trace_id for link in delivery.links] == [emitted.trace_id]
        assert delivery.kind == trace.SpanKind.CONSUMER
        assert delivery.attributes is not None
        assert delivery.attributes["messaging.message.id"] == str(ids[0])
        assert delivery.attributes["fastapi_pg_sse.streams"] == 1
    await wait_until(_async(lambda: named(spans, f"stream {channel.name}")), "stream ended")
    [stream] = named(spans, f"stream {channel.name}")
    [replay] = named(spans, f"replay {channel.name}")
    assert replay.parent is not None
    assert replay.parent.span_id == stream.context.span_id
    assert stream.attributes is not None
    assert stream.attributes["fastapi_pg_sse.end"] == "closed"


async def test_a_replay_is_a_span_that_counts_the_events_it_sent(
    spans: InMemorySpanExporter, realtime_database_url: str
) -> None:
    channel = new_channel("traced")
    (ada,) = new_users("ada")
    async with connected(realtime_database_url) as connection:
        async with committing(connection) as before:
            await connection.execute(
                "SELECT fastapi_pg_sse.emit($1, $2, 'first', '{}')", channel.name, ada
            )
        async with committing(connection) as missed:
            await connection.execute(
                "SELECT fastapi_pg_sse.emit_many($1, $2, $3, $4, $5)",
                channel.name,
                [ada, ada],
                ["second", "third"],
                ["{}", "{}"],
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
        traced = await connection.fetch(
            "SELECT traceparent FROM fastapi_pg_sse.events WHERE id = ANY($1) ORDER BY id", missed
        )
        assert [row[0] for row in traced] == [
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        ] * 2
    headers = {"X-User": ada, "Last-Event-ID": str(before[0])}
    async with (
        served_here(traced_app(realtime_database_url, channel)) as url,
        httpx.AsyncClient(timeout=30) as client,
        aconnect_sse(client, "GET", url + "/stream", headers=headers) as source,
    ):
        events = source.aiter_sse()
        assert [(await next_event(events)).id for _ in missed] == [str(id_) for id_ in missed]
        await wait_until(_async(lambda: named(spans, f"replay {channel.name}")), "replayed")
    [replay] = named(spans, f"replay {channel.name}")
    assert replay.attributes is not None
    assert replay.attributes["fastapi_pg_sse.events"] == 2


async def test_an_emit_outside_any_span_stores_no_traceparent_and_a_bad_one_is_refused(
    spans: InMemorySpanExporter, realtime_database_url: str
) -> None:
    channel = new_channel("traced")
    (ada,) = new_users("ada")
    async with connected(realtime_database_url) as connection:
        async with committing(connection) as ids:
            await channel.emit(connection, target_user_id=ada, event_type="untraced")
        stored = await connection.fetchval(
            "SELECT traceparent FROM fastapi_pg_sse.events WHERE id = $1", ids[0]
        )
        assert stored is None
        with pytest.raises(asyncpg.InvalidParameterValueError) as refused:
            await connection.execute(
                "SELECT fastapi_pg_sse.emit($1, $2, 'bad', '{}', 'not-a-traceparent')",
                channel.name,
                ada,
            )
    assert "traceparent must be a W3C traceparent" in str(refused.value)


async def test_without_opentelemetry_nothing_is_traced() -> None:
    """With `opentelemetry` not importable, the runtime's tracing module imports, emits store no
    traceparent and spans are no-ops. (FastAPI 0.165 depends on opentelemetry-api itself, so the
    module is loaded alone.)"""
    script = (
        "import importlib.util, sys; sys.modules['opentelemetry'] = None\n"
        f"spec = importlib.util.spec_from_file_location('tracing', {str(tracing.__file__)!r})\n"
        "tracing = importlib.util.module_from_spec(spec); spec.loader.exec_module(tracing)\n"
        "assert tracing.current_traceparent() is None\n"
        "assert tracing.start_span('stream x', {}) is tracing.NO_SPAN\n"
        "tracing.record_delivery('x', 1, 't', '00-' + '1' * 32 + '-' + '1' * 16 + '-01', 1)\n"
        "print('untraced')\n"
    )
    ran = await anyio.run_process([sys.executable, "-c", script], check=False)
    assert ran.stdout.decode() == "untraced\n", ran.stderr.decode()


async def test_with_no_tracer_provider_an_emit_stores_no_traceparent() -> None:
    """The API's default provider records nothing: the current span is not recording."""
    script = (
        "from opentelemetry import trace\n"
        "from fastapi_pg_sse.tracing import current_traceparent\n"
        "with trace.get_tracer('app').start_as_current_span('request'):\n"
        "    print(current_traceparent())\n"
    )
    ran = await anyio.run_process([sys.executable, "-c", script], check=False)
    assert ran.stdout.decode() == "None\n", ran.stderr.decode()


def readme_block(section: str, language: str) -> str:
    """The first `language` block of the README's section `section`."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    text = readme.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(rf"```{language}\n(.*?)```", text, re.DOTALL)
    assert found is not None, f"the README's {section} section has a {language} block"
    return found.group(1)


async def test_the_readme_example_stores_the_trace_of_its_span(
    spans: InMemorySpanExporter, realtime_database_url: str
) -> None:
    namespace: dict[str, Any] = {"__name__": "readme_tracing"}
    exec(readme_block("Tracing", "python"), namespace)
    (ada,) = new_users("ada")
    async with connected(realtime_database_url) as connection:
        await namespace["place_order"](connection, ada, 7)
        stored = await connection.fetchrow(
            "SELECT traceparent, payload::text FROM fastapi_pg_sse.events"
            " WHERE channel = 'orders' AND target_user_id = $1",
            ada,
        )
    assert stored is not None and stored[1] == '{"order_id": 7}'
    [placed] = [
        span
        for span in named(spans, "place order")
        if stored[0].split("-")[2] == f"{span.context.span_id:016x}"
    ]
    assert stored[0].split("-")[1] == f"{placed.context.trace_id:032x}"
