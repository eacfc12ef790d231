"""An application whose stream routes add dependencies of their own, which the multiplexed route
does not run: NEWS's route is for admins (a route dependency), FEED's too (the dependencies of
`include_router`), AUDIT's needs a scope of its caller (`Security`); ORDERS's authenticates only
(`CurrentUser`), beside a dependency the app gives every route, the multiplexed one too."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Security, status

from fastapi_pg_sse import (
    AuthenticatedUser,
    Channel,
    CurrentUser,
    EventStream,
    Streams,
    authenticated_user,
    create_realtime_router,
    stream_route,
)
from tests.app import FEED, NEWS, ORDERS

AUDIT: Channel[Any] = Channel("test_audit")


def require_admin(user: CurrentUser) -> None:
    if not user.id.startswith("admin"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Admins only.")


admin_router = APIRouter()


@stream_route(admin_router, NEWS, "/admin/news/stream", dependencies=[Depends(require_admin)])
async def stream_news_to_admins(user: CurrentUser, streams: Streams) -> EventStream:
    return streams.open(NEWS, user)


included_for_admins = APIRouter()


@stream_route(included_for_admins, FEED, "/admin/feed/stream")
async def stream_feed_to_admins(user: CurrentUser, streams: Streams) -> EventStream:
    return streams.open(FEED, user)


scoped_router = APIRouter()


@stream_route(scoped_router, AUDIT, "/audit/stream")
async def stream_audit(
    user: Annotated[AuthenticatedUser, Security(authenticated_user, scopes=["audit:read"])],
    streams: Streams,
) -> EventStream:
    return streams.open(AUDIT, user)


open_router = APIRouter()


@stream_route(open_router, ORDERS, "/orders/stream")
async def stream_orders(user: CurrentUser, streams: Streams) -> EventStream:
    return streams.open(ORDERS, user)


def note_the_request() -> None:
    """What an app may give every route (a request id, a rate limit): no guard of a channel."""


app = FastAPI(
    title="fastapi-pg-sse tests, guarded stream routes", dependencies=[Depends(note_the_request)]
)
app.include_router(create_realtime_router())
app.include_router(admin_router)
app.include_router(included_for_admins, dependencies=[Depends(require_admin)])
app.include_router(open_router)
app.include_router(scoped_router)
