"""The OpenAPI document of a stream route tells what the route really does: how to
authenticate, what it answers, and the `Last-Event-ID` header it reads."""

from typing import Any

import httpx
import pytest

from fastapi_pg_sse.testing import Server
from tests.app import STREAM

pytestmark = pytest.mark.anyio


@pytest.fixture
async def document(realtime_server: Server) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=realtime_server.url, timeout=30) as client:
        response = await client.get("/openapi.json")
    response.raise_for_status()
    openapi: dict[str, Any] = response.json()
    return openapi


def _stream_operation(document: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = document["paths"][STREAM]["get"]
    return operation


async def test_the_stream_route_lists_the_three_ways_to_send_a_token(
    document: dict[str, Any],
) -> None:
    assert _stream_operation(document)["security"] == [
        {"bearerToken": []},
        {"tokenCookie": []},
        {"tokenQuery": []},
    ]
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerToken"] | {"description": ""} == {
        "type": "http",
        "scheme": "bearer",
        "description": "",
    }
    for scheme, located in (("tokenCookie", "cookie"), ("tokenQuery", "query")):
        assert (schemes[scheme]["type"], schemes[scheme]["in"]) == ("apiKey", located)
        assert schemes[scheme]["name"] == "access_token"


async def test_the_stream_route_documents_the_responses_it_sends_and_no_other(
    document: dict[str, Any],
) -> None:
    responses = _stream_operation(document)["responses"]
    assert set(responses) == {"200", "400", "401"}
    assert list(responses["200"]["content"]) == ["text/event-stream"]
    assert responses["200"]["content"]["text/event-stream"]["itemSchema"]["required"] == [
        "id",
        "event",
        "data",
    ]
    assert "content" not in responses["400"]
    assert "content" not in responses["401"]
    assert set(responses["401"]["headers"]) == {"WWW-Authenticate"}
    media_types = [
        media for response in responses.values() for media in response.get("content", {})
    ]
    assert media_types == ["text/event-stream"], "no application/json content"


async def test_last_event_id_is_documented_as_an_optional_header(
    document: dict[str, Any],
) -> None:
    parameters = _stream_operation(document)["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in parameters] == [
        ("Last-Event-ID", "header", False)
    ]
    assert parameters[0]["schema"] == {"type": "string", "pattern": "^[0-9]{1,18}$"}
