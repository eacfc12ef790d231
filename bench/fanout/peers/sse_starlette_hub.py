"""A hand-written FastAPI + sse-starlette hub with dict routing, as a competent developer writes
it: a queue per client, the event's data encoded once, and sse-starlette's `EventSourceResponse`
(with its defaults: a ping every 15 s, its own disconnect handling) writing each frame."""

import asyncio
import json
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse

from bench.fanout.peers.common import CurrentUser, Event, peer_app

Message = dict[str, str]
streams: dict[str, set[asyncio.Queue[Message]]] = {}


def publish(event: Event) -> None:
    queues = streams.get(event["target_user_id"])
    if not queues:
        return
    message = {
        "id": str(event["id"]),
        "event": event["type"],
        "data": json.dumps(event["data"], separators=(",", ":")),
    }
    for queue in queues:
        queue.put_nowait(message)


app = peer_app(publish)


@app.get("/events")
async def events(user: CurrentUser) -> EventSourceResponse:
    queue: asyncio.Queue[Message] = asyncio.Queue()
    streams.setdefault(user, set()).add(queue)

    async def messages() -> AsyncIterator[Message]:
        try:
            while True:
                yield await queue.get()
        finally:
            streams[user].discard(queue)

    return EventSourceResponse(messages())
