"""The application the runtime's tests serve: one channel, its stream route, and metrics."""

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI

from fastapi_pg_sse import (
    STREAM_OPENAPI,
    STREAM_RESPONSES,
    Channel,
    CurrentUser,
    EventStream,
    Realtime,
    Streams,
    create_realtime_router,
    get_realtime,
)

FEED = Channel("test_feed")
"""Created by `migrations/0001_test_feed_sse_channel.sql`, as scaffold generates it."""
STREAM = "/feed/stream"

router = APIRouter()


@router.get(
    STREAM,
    response_class=EventStream,
    responses=STREAM_RESPONSES,
    openapi_extra=STREAM_OPENAPI,
)
async def stream_feed_events(user: CurrentUser, streams: Streams) -> EventStream:
    return streams.open(FEED, user)


@router.get("/metrics")
async def metrics(realtime: Annotated[Realtime, Depends(get_realtime)]) -> dict[str, object]:
    return asdict(realtime.metrics())


app = FastAPI(title="fastapi-pg-sse tests")
app.include_router(create_realtime_router([FEED]))
app.include_router(router)
