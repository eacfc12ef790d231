"""The framework's floor for this job: a minimal FastAPI route, the same JWT check, a dict hub
of per-client queues, and each frame encoded once per event and sent as bytes. No replay,
heartbeat or bounds: the least a FastAPI app can do to fan events out."""

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse
from fastapi.sse import format_sse_event

from bench.fanout.peers.common import CurrentUser, Event, peer_app

streams: dict[str, set[asyncio.Queue[bytes]]] = {}


def publish(event: Event) -> None:
    queues = streams.get(event["target_user_id"])
    if not queues:
        return
    frame = format_sse_event(
        id=str(event["id"]),
        event=event["type"],
        data_str=json.dumps(event["data"], separators=(",", ":")),
    )
    for queue in queues:
        queue.put_nowait(frame)


app = peer_app(publish)


@app.get("/events")
async def events(user: CurrentUser) -> StreamingResponse:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    streams.setdefault(user, set()).add(queue)

    async def frames() -> AsyncIterator[bytes]:
        try:
            while True:
                yield await queue.get()
        finally:
            streams[user].discard(queue)

    return StreamingResponse(frames(), media_type="text/event-stream")
