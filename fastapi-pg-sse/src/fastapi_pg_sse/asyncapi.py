"""The AsyncAPI 3.0 document of an app's streams, for the tools that read event-driven APIs
(viewers, code generators, linters).

Each route declared with `stream_route` is a channel whose address is the route's path; its
messages are the event types its channel declares, with the schema `/openapi.json` gives their
data, and `reset` and `expired`; the application sends them (one `send` operation per channel),
to callers authenticated as the route's OpenAPI operation says. `create_realtime_router` serves
it at `/asyncapi.json`; `python -m fastapi_pg_sse asyncapi shop.main:app` prints it.

An event's SSE fields but `data`, its `id` and `event`, are its message's headers: AsyncAPI's
correlation ids pair a reply with its request, and a stream has no requests.
"""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.routing import RouteContext, iter_route_contexts
from starlette.routing import BaseRoute

from fastapi_pg_sse.auth import QUERY_TOKEN_SCHEME
from fastapi_pg_sse.channel import Channel
from fastapi_pg_sse.events import ChannelEvent
from fastapi_pg_sse.openapi import EVENT_ID, RUNTIME_EVENTS, Schema, payload_schema
from fastapi_pg_sse.settings import TokenSources

ASYNCAPI_VERSION = "3.0.0"
_HTTP_BINDING_VERSION = "0.3.0"
_UNSAFE_IN_KEYS = re.compile(r"[^A-Za-z0-9_-]")
"""What the keys of channels, operations, messages and components may not hold."""
_ADDRESS_PARAMETER = re.compile(r"{([^}]+)}")

_CHANNEL_ATTRIBUTE = "fastapi_pg_sse_channel"
"""The attribute of a route that `stream_route` declared: the channel it streams."""

_DEFINITIONS = "#/$defs/"


def record_stream_route(route: BaseRoute, channel: Channel[Any]) -> None:
    """Remember, on the route itself, that `route` streams `channel`: wherever the app includes
    it, FastAPI keeps the route of an included router as its `original_route`."""
    setattr(route, _CHANNEL_ATTRIBUTE, channel)


def _streamed_channel(route: BaseRoute) -> Channel[Any] | None:
    channel = getattr(route, _CHANNEL_ATTRIBUTE, None)
    return channel if isinstance(channel, Channel) else None


def stream_route_contexts(app: FastAPI) -> Iterator[tuple[Channel[Any], RouteContext]]:
    """Each stream route of `app` that `stream_route` declared, those of included routers too,
    with the channel it streams."""
    for context in iter_route_contexts(app.routes):
        channel = _streamed_channel(context.original_route)
        if channel is not None:
            yield channel, context


def streamed_channels(app: FastAPI) -> list[Channel[Any]]:
    """The channels of the stream routes of `app` that `stream_route` declared, those of
    included routers too."""
    return [channel for channel, _ in stream_route_contexts(app)]


def asyncapi_document(
    app: FastAPI,
    sources: TokenSources | None = None,
    *,
    root_path: str | None = None,
    base_url: str | None = None,
) -> Schema:
    """The AsyncAPI 3.0.0 document of the stream routes of `app` that `stream_route` declared and
    its OpenAPI document shows, with the token sources of `sources` (the settings in force, else
    the environment's): the query parameter only when `REALTIME_QUERY_TOKEN` enables it.

    `root_path` is the path the app is served under (default: `FastAPI(root_path=...)`), a server
    of its own as in `/openapi.json`; `base_url`, the URL of the app's root where it is served,
    against which relative URLs are resolved: a server without a host (no `base_url`) is none in
    AsyncAPI, and the first one's path, if no server has a host, prefixes the channels' addresses
    instead; a relative OAuth2 or OpenID Connect URL is resolved against the first server."""
    openapi = app.openapi()
    root_path = app.root_path if root_path is None else root_path
    servers, address_prefix, server_url = _servers(
        _openapi_servers(app, openapi, root_path), base_url
    )
    query_token = (sources or TokenSources()).query_token
    streams = list(_stream_routes(app, openapi))
    channel_keys = _unique_keys(stream.channel.name for stream in streams)
    operation_keys = _unique_keys(
        stream.operation.get("operationId", key)
        for stream, key in zip(streams, channel_keys, strict=True)
    )
    declared_schemes: dict[str, Schema] = openapi.get("components", {}).get("securitySchemes", {})
    scheme_keys = dict(zip(declared_schemes, _unique_keys(declared_schemes), strict=True))
    scopes: dict[str, list[str]] = {}
    """Each scheme an operation accepts, with the scopes the operations need of it."""
    channels, operations = {}, {}
    for stream, key, operation_key in zip(streams, channel_keys, operation_keys, strict=True):
        messages = _messages(stream.channel, key)
        channels[key] = _channel(stream, address_prefix, messages)
        required = {
            name: needed
            for requirement in stream.operation.get("security", [])
            for name, needed in requirement.items()
            if name in declared_schemes and (query_token or name != QUERY_TOKEN_SCHEME)
        }
        for name, needed in required.items():
            scopes.setdefault(name, []).extend(s for s in needed if s not in scopes[name])
        security = [scheme_keys[name] for name in required]
        operations[operation_key] = _operation(stream, key, messages, security)
    schemes = {
        scheme_keys[name]: _security_scheme(declared_schemes[name], needed, server_url)
        for name, needed in scopes.items()
    }
    document = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": _info(openapi["info"]),
        **({"servers": servers} if servers else {}),
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": _runtime_messages(),
            **({"securitySchemes": schemes} if schemes else {}),
        },
    }
    # Encoded as FastAPI encodes the OpenAPI document, whose schemas lose their null values (a
    # default of None): the payloads of both documents are the same.
    encoded: Schema = jsonable_encoder(document, exclude_none=True)
    return encoded


async def serve_asyncapi_document(request: Request) -> JSONResponse:
    """The app's AsyncAPI document, with the settings in force once the kernel runs; 404 when the
    app hides its OpenAPI document (`FastAPI(openapi_url=None)`): it describes the same routes."""
    app: FastAPI = request.app
    if app.openapi_url is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")
    realtime = getattr(app.state, "realtime", None)
    sources = realtime.settings if realtime else None
    root_path = request.scope.get("root_path", "")
    return JSONResponse(
        asyncapi_document(app, sources, root_path=root_path, base_url=str(request.base_url))
    )


@dataclass(frozen=True)
class _StreamRoute:
    channel: Channel[Any]
    path: str
    operation: Schema
    """Its operation in the app's OpenAPI document."""


def _stream_routes(app: FastAPI, openapi: Schema) -> Iterator[_StreamRoute]:
    """The stream routes of `app`, those of included routers too, with their prefixes, in the
    order the app matches them; a route the OpenAPI document hides is left out."""
    paths: dict[str, Schema] = openapi.get("paths", {})
    for context in iter_route_contexts(app.routes):
        channel = _streamed_channel(context.original_route)
        path = context.path_format
        operation = paths.get(path, {}).get("get") if path else None
        if channel is not None and path is not None and operation is not None:
            yield _StreamRoute(channel, path, operation)


def _unique_keys(names: Iterable[str]) -> list[str]:
    """`names` as keys AsyncAPI accepts (letters, digits, `_` and `-`), a number after those
    already taken."""
    keys: list[str] = []
    for name in names:
        key = candidate = _UNSAFE_IN_KEYS.sub("_", name) or "_"
        number = 1
        while key in keys:
            number += 1
            key = f"{candidate}_{number}"
        keys.append(key)
    return keys


def _info(info: Schema) -> Schema:
    """The title, version and description of the app's OpenAPI document."""
    return {key: info[key] for key in ("title", "version", "description") if info.get(key)}


def _openapi_servers(app: FastAPI, openapi: Schema, root_path: str) -> list[Schema]:
    """The servers `/openapi.json` lists: the app's (`FastAPI(servers=[...])`), after its root
    path, which FastAPI adds unless `root_path_in_servers` is false or a server has its URL."""
    servers: list[Schema] = openapi.get("servers", [])
    root_path = root_path.rstrip("/")
    if root_path and app.root_path_in_servers and root_path not in {s.get("url") for s in servers}:
        return [{"url": root_path}, *servers]
    return servers


def _servers(servers: list[Schema], base_url: str | None) -> tuple[Schema, str, str | None]:
    """The AsyncAPI servers of OpenAPI's `servers`, their URLs resolved against `base_url`,
    keyed by host; the prefix of the channels' addresses: an AsyncAPI server has a host, so when
    none has one, the path of the first server (`root_path`) goes in the addresses instead; and
    the URL relative ones resolve against, as OpenAPI's do: the first server's with a host, else
    `base_url`."""
    resolved = [(urlsplit(urljoin(base_url or "", s.get("url", ""))), s) for s in servers]
    absolute = [(url, server) for url, server in resolved if url.scheme and url.hostname]
    keys = _unique_keys(str(url.hostname) for url, _ in absolute)
    described = {
        key: {
            "host": url.netloc,
            "protocol": url.scheme,
            **({"pathname": url.path.rstrip("/")} if url.path.rstrip("/") else {}),
            **_described(server),
        }
        for key, (url, server) in zip(keys, absolute, strict=True)
    }
    address_prefix = "" if absolute or not resolved else resolved[0][0].path.rstrip("/")
    first = absolute[0][0].geturl().rstrip("/") + "/" if absolute else base_url
    return described, address_prefix, first


def _messages(channel: Channel[Any], channel_key: str) -> dict[str, Schema]:
    """The messages of `channel`'s streams, by key: each event type it declares (or any event,
    if it declares none), then the runtime's own events."""
    declared: dict[str, type[ChannelEvent] | None] = {**channel.event_classes} or {"event": None}
    keys = _unique_keys([*declared, *RUNTIME_EVENTS])
    messages: dict[str, Schema] = {}
    for key, (event_type, event_class) in zip(keys, declared.items(), strict=False):
        pointer = f"#/channels/{channel_key}/messages/{key}/payload"
        messages[key] = (
            _ANY_EVENT
            if event_class is None
            else _declared_message(channel, event_type, event_class, pointer)
        )
    for key, event_type in zip(keys[len(declared) :], RUNTIME_EVENTS, strict=True):
        messages[key] = {"$ref": f"#/components/messages/{event_type}"}
    return messages


def _declared_message(
    channel: Channel[Any], event_type: str, event_class: type[ChannelEvent], pointer: str
) -> Schema:
    """The message of an event type, its payload the schema OpenAPI gives its data; where it is
    a recursive model's, whose references resolve within its `$id`, each reference points
    instead to the same definition at `pointer`, where the payload is in the document: the
    AsyncAPI parser does not resolve references against an `$id`."""
    payload = payload_schema(channel, event_type, event_class)
    if "$id" in payload:
        payload = _rebased(
            {key: value for key, value in payload.items() if key != "$id"}, f"{pointer}/$defs/"
        )
    return {
        "name": event_type,
        "title": event_class.__name__,
        "contentType": "application/json",
        "headers": _headers(event_type, has_id=True),
        "payload": payload,
    }


def _rebased(node: Any, definitions: str) -> Any:
    """`node` with each `#/$defs/...` reference pointing below `definitions` instead."""
    if isinstance(node, list):
        return [_rebased(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    rebased = {key: _rebased(value, definitions) for key, value in node.items()}
    reference = rebased.get("$ref")
    if isinstance(reference, str) and reference.startswith(_DEFINITIONS):
        rebased["$ref"] = definitions + reference.removeprefix(_DEFINITIONS)
    return rebased


def _runtime_messages() -> dict[str, Schema]:
    """`reset` and `expired`, which every stream may carry."""
    return {
        event_type: {
            "name": event_type,
            "summary": event.description,
            "contentType": "application/json",
            "headers": _headers(event_type, has_id=event.has_id),
            "payload": event.data,
        }
        for event_type, event in RUNTIME_EVENTS.items()
    }


def _headers(event_type: str | None, *, has_id: bool) -> Schema:
    """The fields of an event's SSE frame but its data: its `id`, if it has one, and its type
    (`event_type`, or any)."""
    event = {"type": "string"} if event_type is None else {"const": event_type}
    return {
        "type": "object",
        "required": ["id", "event"] if has_id else ["event"],
        "properties": {**({"id": EVENT_ID} if has_id else {}), "event": event},
    }


_ANY_EVENT: Schema = {
    "title": "Any event",
    "summary": "An event of any type the application emits on this channel, with any JSON data.",
    "contentType": "application/json",
    "headers": _headers(None, has_id=True),
    "payload": {},
}
"""The message of a channel that declares no event types."""


def _channel(stream: _StreamRoute, address_prefix: str, messages: dict[str, Schema]) -> Schema:
    channel: Schema = {
        "address": address_prefix + stream.path,
        "title": stream.channel.name,
        "description": f"The caller's {stream.channel.name} events as they commit, after those it"
        " missed since the event whose id it sends as the `Last-Event-ID` header (or the"
        " `last_event_id` query parameter).",
        "messages": messages,
    }
    if parameters := _address_parameters(stream):
        channel["parameters"] = parameters
    return channel


def _address_parameters(stream: _StreamRoute) -> Schema:
    """The route's path parameters, described as its OpenAPI operation describes them."""
    described = {
        parameter["name"]: parameter.get("description")
        for parameter in stream.operation.get("parameters", [])
        if parameter.get("in") == "path"
    }
    return {
        name: {"description": described[name]} if described.get(name) else {}
        for name in _ADDRESS_PARAMETER.findall(stream.path)
    }


def _operation(
    stream: _StreamRoute, channel_key: str, messages: dict[str, Schema], security: list[str]
) -> Schema:
    """The application sending the channel's messages, documented as the route's OpenAPI
    operation is: its summary, description, tags, security and query parameters."""
    documented = stream.operation
    operation: Schema = {
        "action": "send",
        "channel": {"$ref": f"#/channels/{channel_key}"},
        **{key: documented[key] for key in ("summary", "description") if documented.get(key)},
        "messages": [{"$ref": f"#/channels/{channel_key}/messages/{key}"} for key in messages],
        "bindings": {"http": _http_binding(documented)},
    }
    if tags := documented.get("tags"):
        operation["tags"] = [{"name": tag} for tag in tags]
    if security:
        operation["security"] = [{"$ref": f"#/components/securitySchemes/{k}"} for k in security]
    return operation


def _http_binding(documented: Schema) -> Schema:
    """An HTTP GET, with the query parameters its OpenAPI operation lists."""
    query = [p for p in documented.get("parameters", []) if p.get("in") == "query"]
    binding: Schema = {"method": "GET", "bindingVersion": _HTTP_BINDING_VERSION}
    if query:
        binding["query"] = {
            "type": "object",
            "properties": {p["name"]: {**p.get("schema", {}), **_described(p)} for p in query},
            **(
                {"required": required}
                if (required := [p["name"] for p in query if p.get("required")])
                else {}
            ),
        }
    return binding


def _security_scheme(scheme: Schema, scopes: list[str], server_url: str | None) -> Schema:
    """An OpenAPI security scheme as AsyncAPI 3.0 writes it, with the `scopes` routes need; its
    URLs (AsyncAPI's are absolute) resolved against `server_url`, if known."""
    kind = scheme["type"]
    if kind == "apiKey":
        return {
            "type": "httpApiKey",
            "name": scheme["name"],
            "in": scheme["in"],
            **_described(scheme),
        }
    if kind == "http":
        bearer_format = {"bearerFormat": scheme["bearerFormat"]} if "bearerFormat" in scheme else {}
        return {"type": "http", "scheme": scheme["scheme"], **bearer_format, **_described(scheme)}
    if kind == "oauth2":
        flows = {
            name: {
                **{k: _resolved(v, server_url) for k, v in flow.items() if k != "scopes"},
                "availableScopes": flow.get("scopes", {}),
            }
            for name, flow in scheme.get("flows", {}).items()
        }
        return {"type": "oauth2", "flows": flows, "scopes": scopes, **_described(scheme)}
    if kind == "openIdConnect":
        return {
            "type": "openIdConnect",
            "openIdConnectUrl": _resolved(scheme["openIdConnectUrl"], server_url),
            "scopes": scopes,
            **_described(scheme),
        }
    return {"type": "X509", **_described(scheme)}  # OpenAPI's mutualTLS


def _resolved(url: str, server_url: str | None) -> str:
    return urljoin(server_url, url) if server_url else url


def _described(item: Schema) -> Schema:
    return {"description": item["description"]} if item.get("description") else {}
