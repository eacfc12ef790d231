"""The Server-Sent Events wire format, through FastAPI's own encoder.

Each event is encoded once, whatever its number of readers, and streamed as bytes: FastAPI's
per-item `yield` mode would encode it again for every recipient.
"""

import json
from collections.abc import Sequence

from fastapi.sse import format_sse_event

HEARTBEAT = format_sse_event(comment="keep-alive")
RESET = "reset"
"""The event that tells a client its `Last-Event-ID` cannot be replayed."""
EXPIRED = "expired"
"""The event that tells a client its stream ended because its token expired."""
REVOKED = "revoked"
"""The event that tells a client its stream ended because the application revoked its user's
streams (`Realtime.disconnect`)."""


def event_frame(event_id: int, event_type: str, data: str) -> bytes:
    """Encode one event; `data` is its JSON text."""
    return format_sse_event(id=str(event_id), event=event_type, data_str=data)


def wire_type(channel: str, event_type: str, *, multiplexed: bool) -> str:
    """An event's `event:` field: its type, or, on the multiplexed route, `<channel>.<type>`
    (a channel's name has no `.`: the channel is what precedes the first one)."""
    return f"{channel}.{event_type}" if multiplexed else event_type


def opening_frame(resume_after: int, retry_milliseconds: int) -> bytes:
    """The first frame of every stream: the id it resumes after, and how long to wait before
    reconnecting.

    No event is dispatched, but an `EventSource` (and the clients) take up the id, so a stream
    that ends before its first event resumes from where it opened rather than from whatever is
    newest when it reconnects: nothing committed in between is skipped.
    """
    return format_sse_event(id=str(resume_after), retry=retry_milliseconds)


def reset_frame(event_id: int, channels: Sequence[str] | None = None) -> bytes:
    """Tell a client its `Last-Event-ID` cannot be replayed (pruned, or not one of ours).

    The client should reload its state (of every channel in `channels`, the multiplexed route's
    list); the stream goes on after `event_id`, which becomes the client's last event id.
    """
    data: dict[str, object] = {"replayable": False}
    if channels is not None:
        data["channels"] = list(channels)
    return event_frame(event_id, RESET, json.dumps(data))


def expired_frame() -> bytes:
    """Tell a client its stream ends because its token expired, not because of the network.

    It has no id, so the client's last event id stays the one to resume from, with a new token.
    """
    return format_sse_event(event=EXPIRED, data_str='{"reason": "token_expired"}')


def outage_frame(resume_after: int, retry_milliseconds: int) -> bytes:
    """The whole of a stream opened while the database is unreachable: a comment saying so, the
    id to resume after and the retry hint, and no event.

    The response ends after it: an `EventSource` reconnects on its own after the hint (a non-200
    answer would make it give up for good), sending the id as `Last-Event-ID`, which it takes up
    even though no event is dispatched.
    """
    return format_sse_event(
        comment="the event store is unavailable: reconnect after the retry hint",
        id=str(resume_after),
        retry=retry_milliseconds,
    )


def revoked_frame() -> bytes:
    """Tell a client its stream ends because its user's streams were revoked: it must not
    reconnect with the same token. No id, as `expired_frame`."""
    return format_sse_event(event=REVOKED, data_str='{"reason": "revoked"}')
