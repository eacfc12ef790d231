"""OpenTelemetry spans, through `opentelemetry-api` when installed (the `opentelemetry` extra).

An emit stores the W3C traceparent of the span current where it runs with the event; the listener
delivers it in a span linked to that trace, so "why did my event not arrive?" is one trace. Each
stream and each replay has a span of its own. Without `opentelemetry-api`, or without a tracer
provider, emits store no traceparent and no span is recorded: nothing is spent per event.
"""

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

try:
    from opentelemetry import trace
    from opentelemetry.trace import Link, SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - the extra is not installed
    trace = None  # type: ignore[assignment]

TRACER_NAME = "fastapi_pg_sse"


class Span(Protocol):
    """What the runtime does with a span: `opentelemetry.trace.Span`, or `NO_SPAN`."""

    def set_attribute(self, key: str, value: Any) -> None: ...

    def end(self) -> None: ...


class _NoSpan:
    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def end(self) -> None:
        pass


NO_SPAN: Span = _NoSpan()
"""The span of a stream or replay when OpenTelemetry is not installed, or no tracer provider
is set."""


def current_traceparent() -> str | None:
    """The W3C traceparent of the span current here, if one is recording; else None."""
    if trace is None:
        return None
    span = trace.get_current_span()
    if not span.is_recording():
        return None
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def start_span(name: str, attributes: Mapping[str, Any]) -> Span:
    """A span the caller ends, child of the span current here; `NO_SPAN` until a tracer
    provider is set."""
    if trace is None or _unconfigured():
        return NO_SPAN
    return trace.get_tracer(TRACER_NAME).start_span(name, attributes=attributes)


def _unconfigured() -> bool:
    """Whether no tracer provider was set: the API's proxy stands in (the API has no public
    query for it; FastAPI asks the same way)."""
    assert trace is not None
    return type(trace.get_tracer_provider()) is trace.ProxyTracerProvider


def current_span(span: Span) -> AbstractContextManager[object]:
    """Make `span` the current span within a `with` block."""
    if trace is None or span is NO_SPAN:
        return nullcontext()
    return trace.use_span(span, end_on_exit=False)  # type: ignore[arg-type]


def record_delivery(
    channel: str, event_id: int, event_type: str, traceparent: str, streams: int
) -> None:
    """A span for the delivery of an emitted event to its user's streams here, linked to the
    span that emitted it."""
    if trace is None or _unconfigured():
        return
    emitted = trace.get_current_span(
        TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    ).get_span_context()
    links = [Link(emitted)] if emitted.is_valid else []
    attributes: dict[str, str | int] = {
        "messaging.system": "fastapi_pg_sse",
        "messaging.destination.name": channel,
        "messaging.message.id": str(event_id),
        "fastapi_pg_sse.event_type": event_type,
        "fastapi_pg_sse.streams": streams,
    }
    tracer = trace.get_tracer(TRACER_NAME)
    tracer.start_span(
        f"deliver {channel}", kind=SpanKind.CONSUMER, links=links, attributes=attributes
    ).end()
