"""PostgreSQL-backed Server-Sent Events for FastAPI.

Events are rows of a per-channel table, written in the emitter's transaction and announced with
NOTIFY on commit. Each process holds one LISTEN connection for every channel and hands each event,
encoded once, to the open streams of its target user; a client that reconnects with
`Last-Event-ID` replays what it missed from the table.

    INVENTORY_STOCK = Channel("inventory_stock")           # declare a channel
    app.include_router(create_realtime_router([INVENTORY_STOCK]))  # once per app

    @router.get("/stream", response_class=EventStream, responses=JWT_STREAM_RESPONSES,
                openapi_extra=STREAM_OPENAPI)
    async def stream_stock_events(user: CurrentUser, streams: Streams) -> EventStream:
        return streams.open(INVENTORY_STOCK, user)         # the caller's stream

    await INVENTORY_STOCK.emit(connection, target_user_id="alice", event_type="stock_updated",
                               payload={"sku": "A1", "stock": 3})   # emit in a transaction
"""

from fastapi_pg_sse.auth import AuthenticatedUser, CurrentUser, authenticated_user
from fastapi_pg_sse.channel import Channel, Connection
from fastapi_pg_sse.realtime import EventStream, Realtime, RealtimeMetrics, get_realtime
from fastapi_pg_sse.routing import (
    JWT_STREAM_RESPONSES,
    STREAM_OPENAPI,
    STREAM_RESPONSES,
    Streams,
    create_realtime_router,
)
from fastapi_pg_sse.settings import RealtimeSettings

__version__ = "0.2.0"

__all__ = [
    "JWT_STREAM_RESPONSES",
    "STREAM_OPENAPI",
    "STREAM_RESPONSES",
    "AuthenticatedUser",
    "Channel",
    "Connection",
    "CurrentUser",
    "EventStream",
    "Realtime",
    "RealtimeMetrics",
    "RealtimeSettings",
    "Streams",
    "authenticated_user",
    "create_realtime_router",
    "get_realtime",
]
