"""FastAPI's own yield-based SSE route (`fastapi.sse`), as a FastAPI user writes it first: the
path operation yields a `ServerSentEvent` per event, and FastAPI encodes each one, for each
recipient."""

import asyncio
from collections.abc import AsyncIterable

from fastapi.sse import EventSourceResponse, ServerSentEvent

from bench.fanout.peers.common import CurrentUser, Event, peer_app

streams: dict[str, set[asyncio.Queue[Event]]] = {}


def publish(event: Event) -> None:
    for queue in streams.get(event["target_user_id"], ()):
        queue.put_nowait(event)


app = peer_app(publish)


@app.get("/events", response_class=EventSourceResponse)
async def events(user: CurrentUser) -> AsyncIterable[ServerSentEvent]:
    queue: asyncio.Queue[Event] = asyncio.Queue()
    streams.setdefault(user, set()).add(queue)
    try:
        while True:
            event = await queue.get()
            yield ServerSentEvent(data=event["data"], event=event["type"], id=str(event["id"]))
    finally:
        streams[user].discard(queue)
