"""The OpenAPI description of a stream route: its responses, each event type of its stream with
its payload's schema, and where it reads the id to resume from.

The document is OpenAPI 3.1 (FastAPI's), which has no schema for the items of a stream: the 200's
`text/event-stream` is a string, and the schema of each of its events is the media type's
`x-oai-itemSchema`, the extension the OpenAPI Initiative registers to carry OpenAPI 3.2's
`itemSchema` in earlier versions (what OpenAPI.NET writes for 3.1 too): validators accept it, and
a document moved to 3.2 renames it.

`stream_route` documents a route with them; by hand:

    @router.get("/stream", response_class=EventStream, openapi_extra=STREAM_OPENAPI,
                responses=jwt_stream_responses(INVENTORY_STOCK))
"""

from collections.abc import Sequence
from typing import Any, NamedTuple

from fastapi_pg_sse.channel import Channel
from fastapi_pg_sse.events import ChannelEvent
from fastapi_pg_sse.frames import EXPIRED, RESET, REVOKED

Schema = dict[str, Any]
Responses = dict[int | str, dict[str, Any]]

_EVENT_ID_PATTERN = "^[0-9]{1,18}$"
EVENT_ID: Schema = {"type": "string", "description": "The event's id, to resume after it."}

_EVENT_SCHEMA: Schema = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "id": EVENT_ID,
        "event": {
            "type": "string",
            "description": "The event type; `reset` after a gap, `expired` (without an id) when"
            " the token expires.",
        },
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}
"""An event of a channel that declares no event types."""


class RuntimeEvent(NamedTuple):
    """An event the runtime itself sends on every stream."""

    data: Schema
    """The schema of its JSON data."""
    description: str
    has_id: bool
    """Whether it carries an id to resume after."""


RUNTIME_EVENTS: dict[str, RuntimeEvent] = {
    RESET: RuntimeEvent(
        {
            "type": "object",
            "required": ["replayable"],
            "properties": {"replayable": {"const": False}},
        },
        "The resume id cannot be replayed: reload your state.",
        has_id=True,
    ),
    EXPIRED: RuntimeEvent(
        {
            "type": "object",
            "required": ["reason"],
            "properties": {"reason": {"const": "token_expired"}},
        },
        "The token expired: reconnect with a new one.",
        has_id=False,
    ),
    REVOKED: RuntimeEvent(
        {
            "type": "object",
            "required": ["reason"],
            "properties": {"reason": {"const": "revoked"}},
        },
        "The application ended the user's streams (a logout): do not reconnect with the same"
        " token; a token issued before is refused (401).",
        has_id=False,
    ),
}
"""`reset`, `expired` and `revoked`, after the events a channel declares."""

_ERROR_BODY: dict[str, Any] = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["detail"],
            "properties": {"detail": {"type": "string"}},
        }
    }
}

_RETRY_AFTER: dict[str, Any] = {
    "Retry-After": {
        "description": "Seconds to wait before reconnecting.",
        "schema": {"type": "integer"},
    }
}


ITEM_SCHEMA = "x-oai-itemSchema"
"""The key of a stream's `text/event-stream` media type that holds the schema of each event."""

_STREAM: Schema = {
    "type": "string",
    "description": f"Server-sent events, each as `{ITEM_SCHEMA}` describes it.",
}


def _responses(item_schema: Schema) -> Responses:
    return {
        200: {
            "description": "The caller's events as they commit, after those it missed. While"
            " the database is unreachable, it ends at once with no event, only the retry hint"
            " and the `id` to resume after: reconnect after the hint, with that `Last-Event-ID`.",
            "content": {"text/event-stream": {"schema": _STREAM, ITEM_SCHEMA: item_schema}},
        },
        400: {
            "description": "`Last-Event-ID` or `last_event_id` is not an event id.",
            "content": _ERROR_BODY,
        },
        429: {
            "description": "The caller, or this server, has as many open streams as allowed.",
            "headers": _RETRY_AFTER,
            "content": _ERROR_BODY,
        },
    }


def with_401(responses: Responses) -> Responses:
    """`responses` and the 401 of `CurrentUser`, with its `WWW-Authenticate` challenge."""
    return {
        **responses,
        401: {
            "description": "No valid token.",
            "headers": {
                "WWW-Authenticate": {
                    "description": 'The challenge, such as `Bearer realm="realtime"`: its'
                    " scheme word is the one the `Authorization` header needs.",
                    "schema": {"type": "string"},
                }
            },
            "content": _ERROR_BODY,
        },
    }


STREAM_RESPONSES: Responses = _responses(_EVENT_SCHEMA)
"""The responses a stream route really sends, for its OpenAPI document, events untyped; with
an auth dependency of your own, add the responses it sends. See `stream_responses`."""

JWT_STREAM_RESPONSES: Responses = with_401(STREAM_RESPONSES)
"""The responses of a stream route that authenticates with `CurrentUser`, events untyped. See
`jwt_stream_responses`."""

STREAM_OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": "Last-Event-ID",
            "in": "header",
            "required": False,
            "description": "The last event id received: what followed it is replayed first.",
            "schema": {"type": "string", "pattern": _EVENT_ID_PATTERN},
        },
        {
            "name": "last_event_id",
            "in": "query",
            "required": False,
            "description": "The last event id received, for a new EventSource, which cannot"
            " send the `Last-Event-ID` header; used only when the header is absent.",
            "schema": {"type": "string", "pattern": _EVENT_ID_PATTERN},
        },
    ]
}
"""Where a stream resumes from, documented without a validation (422) response it never
sends."""


def stream_responses(channel: Channel[Any]) -> Responses:
    """The responses of a stream route of `channel`, each event type it declares documented
    with its payload's schema; with an auth dependency of your own, add the responses it
    sends."""
    return _responses(_typed_event_schema(channel) if channel.event_classes else _EVENT_SCHEMA)


def jwt_stream_responses(channel: Channel[Any]) -> Responses:
    """The responses of a stream route of `channel` that authenticates with `CurrentUser`."""
    return with_401(stream_responses(channel))


def _typed_event_schema(channel: Channel[Any]) -> Schema:
    """One entry per event the stream may carry: the declared ones, `reset` and `expired`."""
    declared = [
        _event(event_type, payload_schema(channel, event_type, event_class))
        for event_type, event_class in channel.event_classes.items()
    ]
    runtime = [_event(event_type, *event) for event_type, event in RUNTIME_EVENTS.items()]
    return {"oneOf": [*declared, *runtime]}


def _event(event_type: str, data: Schema, description: str = "", has_id: bool = True) -> Schema:
    schema: Schema = {
        "type": "object",
        "required": ["id", "event", "data"] if has_id else ["event", "data"],
        "properties": {
            **({"id": EVENT_ID} if has_id else {}),
            "event": {"const": event_type},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": data,
            },
        },
    }
    if description:
        schema["description"] = description
    return schema


def payload_schema(
    channel: Channel[Any], event_type: str, event_class: type[ChannelEvent]
) -> Schema:
    """The model's JSON schema, self-contained: its definitions inlined where they are used; the
    schema of the event's data in the OpenAPI and AsyncAPI documents alike.

    A recursive model cannot be inlined: it keeps its `$defs`, and an `$id` of its own so that
    its `#/$defs/...` references resolve within it rather than in the OpenAPI document.
    """
    schema = event_class.model_json_schema(mode="serialization")
    definitions: dict[str, Schema] = schema.pop("$defs", {})
    try:
        inlined: Schema = _inlined(schema, definitions, ())
    except _Recursive:
        return {
            "$id": f"urn:fastapi-pg-sse:{channel.name}:{event_type}",
            **schema,
            "$defs": definitions,
        }
    return inlined


_DEFINITIONS = "#/$defs/"


class _Recursive(Exception):
    """A definition refers to itself, directly or not."""


def _inlined(node: Any, definitions: dict[str, Schema], using: tuple[str, ...]) -> Any:
    """`node` with each `{"$ref": "#/$defs/X", ...}` replaced by X's schema (and the keywords
    beside the reference, which win)."""
    if isinstance(node, list):
        return [_inlined(item, definitions, using) for item in node]
    if not isinstance(node, dict):
        return node
    inlined = {key: _inlined(value, definitions, using) for key, value in node.items()}
    reference = inlined.get("$ref")
    if not (isinstance(reference, str) and reference.startswith(_DEFINITIONS)):
        return inlined
    del inlined["$ref"]
    name = reference.removeprefix(_DEFINITIONS)
    if name in using:
        raise _Recursive(name)
    return {**_inlined(definitions[name], definitions, (*using, name)), **inlined}


_MULTIPLEXED_RESET: Schema = {
    "type": "object",
    "required": ["replayable", "channels"],
    "properties": {
        "replayable": {"const": False},
        "channels": {"type": "array", "items": {"type": "string"}},
    },
}


def multiplexed_responses(channels: Sequence[Channel[Any]]) -> Responses:
    """The responses of the multiplexed route serving `channels`: each event is named
    `<channel>.<type>`; a `reset` lists the channels to reload."""
    return _responses({"oneOf": _multiplexed_events(channels)})


def _multiplexed_events(channels: Sequence[Channel[Any]]) -> list[Schema]:
    declared: list[Schema] = []
    for channel in channels:
        if not channel.event_classes:
            declared.append(
                {
                    **_event("", {}),
                    "properties": {
                        "id": EVENT_ID,
                        "event": {"type": "string", "pattern": f"^{channel.name}\\."},
                        "data": {"type": "string", "contentMediaType": "application/json"},
                    },
                }
            )
        for event_type, event_class in channel.event_classes.items():
            schema = payload_schema(channel, event_type, event_class)
            declared.append(_event(f"{channel.name}.{event_type}", schema))
    runtime = [
        _event(RESET, _MULTIPLEXED_RESET, *RUNTIME_EVENTS[RESET][1:])
        if event_type == RESET
        else _event(event_type, *event)
        for event_type, event in RUNTIME_EVENTS.items()
    ]
    return [*declared, *runtime]


def multiplexed_openapi() -> dict[str, Any]:
    """Where the multiplexed route resumes from, and its `channels` parameter."""
    return {
        "parameters": [
            {
                "name": "channels",
                "in": "query",
                "required": True,
                "description": "The channels to stream, by name, comma-separated"
                " (`inventory_stock,orders`). One `Last-Event-ID` resumes every one of them.",
                "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_]*(,[a-z][a-z0-9_]*)*$"},
            },
            *STREAM_OPENAPI["parameters"],
        ]
    }
