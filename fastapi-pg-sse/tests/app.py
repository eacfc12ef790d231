"""The application the runtime's tests serve: three channels in one kernel (one declaring its
event types), a JWT stream route for each (declared with `stream_route`, but one written by hand
with the documented constants), a route with an auth dependency of its own, metrics, a route
of padding bytes, and CORS for the origins of `REALTIME_CORS_ORIGINS`.

Its channels need no migration of their own: every channel's events live in the runtime's schema,
which the session's database gets from the pytest plugin."""

import threading
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, status
from fastapi.security import APIKeyHeader

from fastapi_pg_sse import (
    JWT_STREAM_RESPONSES,
    STREAM_OPENAPI,
    AuthenticatedUser,
    Channel,
    CurrentUser,
    EventStream,
    Realtime,
    RealtimeCORSMiddleware,
    Streams,
    create_realtime_router,
    get_realtime,
    stream_route,
)
from tests.order_events import OrderEvent

FEED: Channel[Any] = Channel("test_feed")
"""Untyped: any event type, any payload."""
NEWS: Channel[Any] = Channel("test_news")
"""Untyped, like FEED: a second channel of the same kernel."""
ORDERS: Channel[OrderEvent] = Channel("test_orders", events=OrderEvent)
"""Typed: mypy checks what is emitted on it."""

STREAM = "/feed/stream"
"""The caller's FEED events, authenticated by JWT (`CurrentUser`)."""
NEWS_STREAM = "/news/stream"
"""The caller's NEWS events, authenticated by JWT (`CurrentUser`)."""
ORDERS_STREAM = "/orders/stream"
"""The caller's ORDERS events, authenticated by JWT (`CurrentUser`)."""
OWN_AUTH_STREAM = "/feed/own-auth/stream"
"""The caller's FEED events, authenticated by the app's own dependency (`X-User`)."""
USER_HEADER = "X-User"

_user_header = APIKeyHeader(name=USER_HEADER, scheme_name="userHeader", auto_error=False)


def user_from_header(user_id: Annotated[str | None, Depends(_user_header)]) -> str:
    """An auth dependency of the app's own: the user id is the `X-User` header."""
    if not user_id:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"{USER_HEADER} is required.")
    return user_id


jwt_router = APIRouter()


@jwt_router.get(
    STREAM,
    response_class=EventStream,
    responses=JWT_STREAM_RESPONSES,
    openapi_extra=STREAM_OPENAPI,
)
async def stream_feed_events(user: CurrentUser, streams: Streams) -> EventStream:
    """Written by hand, as before `stream_route`: documented as NEWS_STREAM is."""
    return streams.open(FEED, user)


@stream_route(jwt_router, NEWS, NEWS_STREAM)
async def stream_news_events(user: CurrentUser, streams: Streams) -> EventStream:
    return streams.open(NEWS, user)


@stream_route(jwt_router, ORDERS, ORDERS_STREAM)
async def stream_order_events(user: CurrentUser, streams: Streams) -> EventStream:
    return streams.open(ORDERS, user)


own_auth_router = APIRouter()
"""Routes that need no JWT setting: `tests.own_auth_app` serves only these."""


@stream_route(own_auth_router, FEED, OWN_AUTH_STREAM)
async def stream_feed_events_of_the_header_user(
    user_id: Annotated[str, Depends(user_from_header)], streams: Streams
) -> EventStream:
    return streams.open(FEED, user_id)


@own_auth_router.get("/metrics")
async def metrics(realtime: Annotated[Realtime, Depends(get_realtime)]) -> dict[str, object]:
    return asdict(realtime.metrics())


@own_auth_router.post("/disconnect/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def disconnect(user_id: str, realtime: Annotated[Realtime, Depends(get_realtime)]) -> None:
    """End `user_id`'s streams in every process (an application's logout would)."""
    await realtime.disconnect(user_id)


padding_router = APIRouter()
"""A route of no stream, for tests of a connection's other responses."""


@padding_router.get("/padding")
async def padding(size: int) -> Response:
    """`size` bytes in one write: a response a client may leave unread before its stream."""
    return Response(b"x" * size, media_type="application/octet-stream")


def may_stream(user: AuthenticatedUser, channel: Channel[Any], request: Request) -> bool:
    """Who may read which channel on the multiplexed route (`authorize`), which runs no stream
    route's dependencies: FEED's recorded route authenticates by a header of its own, so the
    route would refuse it otherwise. A user whose id starts with `outsider` may not read ORDERS.
    Sync: it must run in the threadpool, not on the event loop's thread (a 500 otherwise)."""
    if threading.current_thread() is threading.main_thread():
        raise RuntimeError("a sync authorize function ran on the event loop")
    return not (channel is ORDERS and user.id.startswith("outsider"))


app = FastAPI(title="fastapi-pg-sse tests")
app.include_router(create_realtime_router([FEED, NEWS, ORDERS], authorize=may_stream))
app.include_router(jwt_router)
app.include_router(own_auth_router)
app.include_router(padding_router)
app.add_middleware(RealtimeCORSMiddleware)
