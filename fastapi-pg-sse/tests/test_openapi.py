"""The OpenAPI document of a stream route tells what the route really does: how to
authenticate, what it answers, each event type it streams with its payload's schema, and where it
reads the id to resume from."""

import json
from typing import Any, ClassVar

import httpx
import pytest
from pydantic import BaseModel

from fastapi_pg_sse import (
    JWT_STREAM_RESPONSES,
    STREAM_RESPONSES,
    Channel,
    ChannelEvent,
    jwt_stream_responses,
    stream_responses,
)
from fastapi_pg_sse.testing import Server
from tests.app import NEWS_STREAM, ORDERS_STREAM, OWN_AUTH_STREAM, STREAM

pytestmark = pytest.mark.anyio

JWT_SCHEMES: list[dict[str, list[str]]] = [
    {"bearerToken": []},
    {"tokenCookie": []},
    {"tokenQuery": []},
]
ERROR_BODY: dict[str, Any] = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["detail"],
            "properties": {"detail": {"type": "string"}},
        }
    }
}


@pytest.fixture
async def document(realtime_server: Server) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=realtime_server.url, timeout=30) as client:
        response = await client.get("/openapi.json")
    response.raise_for_status()
    openapi: dict[str, Any] = response.json()
    return openapi


def _operation(document: dict[str, Any], path: str) -> dict[str, Any]:
    operation: dict[str, Any] = document["paths"][path]["get"]
    return operation


@pytest.mark.parametrize("path", [STREAM, NEWS_STREAM, ORDERS_STREAM])
async def test_a_jwt_stream_route_lists_the_three_ways_to_send_a_token(
    document: dict[str, Any], path: str
) -> None:
    assert _operation(document, path)["security"] == JWT_SCHEMES
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerToken"] | {"description": ""} == {
        "type": "http",
        "scheme": "bearer",
        "description": "",
    }
    for scheme, located in (("tokenCookie", "cookie"), ("tokenQuery", "query")):
        assert (schemes[scheme]["type"], schemes[scheme]["in"]) == ("apiKey", located)
        assert schemes[scheme]["name"] == "access_token"


def _item_schema(responses: dict[str, Any]) -> dict[str, Any]:
    """The schema of an event of the stream; 200 is the event stream, and only that: no
    `application/json` body."""
    assert list(responses["200"]["content"]) == ["text/event-stream"]
    item_schema: dict[str, Any] = responses["200"]["content"]["text/event-stream"]["itemSchema"]
    return item_schema


def _assert_streams_its_events(responses: dict[str, Any]) -> None:
    """An untyped channel's events: any type, any JSON data."""
    item_schema = _item_schema(responses)
    assert item_schema["required"] == ["id", "event", "data"]
    assert item_schema["properties"]["event"]["type"] == "string"
    assert item_schema["properties"]["data"] == {
        "type": "string",
        "contentMediaType": "application/json",
    }


@pytest.mark.parametrize("path", [STREAM, NEWS_STREAM, ORDERS_STREAM])
async def test_a_jwt_stream_route_documents_its_200_400_401_and_503_and_no_other(
    document: dict[str, Any], path: str
) -> None:
    responses = _operation(document, path)["responses"]
    assert set(responses) == {"200", "400", "401", "503"}
    if path != ORDERS_STREAM:
        _assert_streams_its_events(responses)
    for status in ("400", "401", "503"):
        assert responses[status]["content"] == ERROR_BODY
    assert set(responses["401"]["headers"]) == {"WWW-Authenticate"}
    assert set(responses["503"]["headers"]) == {"Retry-After"}


async def test_a_route_with_its_own_auth_documents_no_401_and_no_bearer_scheme_of_ours(
    document: dict[str, Any],
) -> None:
    operation = _operation(document, OWN_AUTH_STREAM)
    responses = operation["responses"]
    assert set(responses) == {"200", "400", "503"}, "the app documents its own auth's answers"
    _assert_streams_its_events(responses)
    assert responses["400"]["content"] == ERROR_BODY
    assert operation["security"] == [{"userHeader": []}], "only the app's own scheme"


@pytest.mark.parametrize("path", [STREAM, NEWS_STREAM, ORDERS_STREAM, OWN_AUTH_STREAM])
async def test_the_resume_id_is_documented_as_an_optional_header_or_query_parameter(
    document: dict[str, Any], path: str
) -> None:
    parameters = _operation(document, path)["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in parameters] == [
        ("Last-Event-ID", "header", False),
        ("last_event_id", "query", False),
    ]
    for parameter in parameters:
        assert parameter["schema"] == {"type": "string", "pattern": "^[0-9]{1,18}$"}


def _events_by_type(item_schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {event["properties"]["event"]["const"]: event for event in item_schema["oneOf"]}


async def test_a_typed_channels_route_documents_each_event_type_with_its_payload_schema(
    document: dict[str, Any],
) -> None:
    events = _events_by_type(_item_schema(_operation(document, ORDERS_STREAM)["responses"]))
    assert list(events) == ["order_placed", "order_shipped", "reset", "expired"]
    for event in events.values():
        assert event["properties"]["data"]["type"] == "string"
        assert event["properties"]["data"]["contentMediaType"] == "application/json"
    placed = events["order_placed"]["properties"]["data"]["contentSchema"]
    assert (placed["title"], placed["required"]) == ("OrderPlaced", ["order_id", "lines"])
    assert placed["properties"]["order_id"] == {"title": "Order Id", "type": "integer"}
    line = placed["properties"]["lines"]["items"]
    assert line["required"] == ["sku", "quantity"], "the nested model, inlined"
    assert line["properties"]["quantity"] == {"title": "Quantity", "type": "integer"}
    shipped = events["order_shipped"]["properties"]["data"]["contentSchema"]
    assert shipped["required"] == ["order_id", "carrier"]
    assert shipped["description"] == "An order left the warehouse."


async def test_a_typed_channels_payload_schemas_refer_to_nothing_outside_themselves(
    document: dict[str, Any],
) -> None:
    """The document has no `$defs`, and the payload models are not components of it."""
    responses = _operation(document, ORDERS_STREAM)["responses"]
    assert "$ref" not in json.dumps(responses)
    assert "$defs" not in json.dumps(document)
    assert not {"OrderPlaced", "OrderLine"} & set(document["components"].get("schemas", {}))


async def test_reset_carries_an_id_and_expired_none(document: dict[str, Any]) -> None:
    events = _events_by_type(_item_schema(_operation(document, ORDERS_STREAM)["responses"]))
    reset, expired = events["reset"], events["expired"]
    assert reset["required"] == ["id", "event", "data"]
    assert reset["properties"]["data"]["contentSchema"]["properties"] == {
        "replayable": {"const": False}
    }
    assert expired["required"] == ["event", "data"]
    assert "id" not in expired["properties"]
    assert expired["properties"]["data"]["contentSchema"]["properties"] == {
        "reason": {"const": "token_expired"}
    }


class _Category(BaseModel):
    name: str
    parent: "_Category | None" = None


class _Categorised(ChannelEvent):
    event_type: ClassVar[str] = "categorised"

    category: _Category


def test_a_recursive_payload_keeps_its_definitions_under_an_id_of_its_own() -> None:
    """It cannot be inlined: its `#/$defs/...` references resolve within its `$id`."""
    responses = stream_responses(Channel("categories", events=_Categorised))
    events = _events_by_type(_item_schema({str(k): v for k, v in responses.items()}))
    schema = events["categorised"]["properties"]["data"]["contentSchema"]
    assert schema["$id"] == "urn:fastapi-pg-sse:categories:categorised"
    assert schema["properties"]["category"] == {"$ref": "#/$defs/_Category"}
    assert set(schema["$defs"]) == {"_Category"}


def test_an_untyped_channels_responses_are_the_constants() -> None:
    assert stream_responses(Channel("untyped")) == STREAM_RESPONSES
    assert jwt_stream_responses(Channel("untyped")) == JWT_STREAM_RESPONSES
