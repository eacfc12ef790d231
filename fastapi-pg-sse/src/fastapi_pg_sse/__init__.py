"""PostgreSQL-backed Server-Sent Events for FastAPI.

Events are rows of the runtime's own table (schema `fastapi_pg_sse`, see `fastapi_pg_sse.schema`),
written in the emitter's transaction and numbered and announced with NOTIFY as it commits. Each
process holds one LISTEN connection for every channel and hands each event, encoded once, to the
open streams of its target user; a client that reconnects with `Last-Event-ID` (or
`?last_event_id=`) replays what it missed from the table.

    class StockUpdated(ChannelEvent):                      # an event type and its payload
        event_type: ClassVar[str] = "stock_updated"
        sku: str
        stock: int

    INVENTORY_STOCK: Channel[StockUpdated] = Channel("inventory_stock", events=StockUpdated)
    app.include_router(create_realtime_router([INVENTORY_STOCK]))      # once per app

    @stream_route(router, INVENTORY_STOCK)                 # GET /stream, documented
    async def stream_stock_events(user: CurrentUser, streams: Streams) -> EventStream:
        return streams.open(INVENTORY_STOCK, user)         # the caller's stream

    await INVENTORY_STOCK.emit(connection, StockUpdated(sku="A1", stock=3),
                               target_user_id="alice")    # emit in a transaction
"""

from fastapi_pg_sse.auth import AuthenticatedUser, CurrentUser, authenticated_user
from fastapi_pg_sse.channel import Channel, Connection
from fastapi_pg_sse.cors import RealtimeCORSMiddleware
from fastapi_pg_sse.events import ChannelEvent
from fastapi_pg_sse.openapi import (
    JWT_STREAM_RESPONSES,
    STREAM_OPENAPI,
    STREAM_RESPONSES,
    jwt_stream_responses,
    stream_responses,
)
from fastapi_pg_sse.realtime import EventStream, Realtime, RealtimeMetrics, get_realtime
from fastapi_pg_sse.routing import Streams, create_realtime_router, stream_route
from fastapi_pg_sse.settings import RealtimeSettings

__version__ = "0.10.0"

__all__ = [
    "JWT_STREAM_RESPONSES",
    "STREAM_OPENAPI",
    "STREAM_RESPONSES",
    "AuthenticatedUser",
    "Channel",
    "ChannelEvent",
    "Connection",
    "CurrentUser",
    "EventStream",
    "Realtime",
    "RealtimeCORSMiddleware",
    "RealtimeMetrics",
    "RealtimeSettings",
    "Streams",
    "authenticated_user",
    "create_realtime_router",
    "get_realtime",
    "jwt_stream_responses",
    "stream_responses",
    "stream_route",
]
