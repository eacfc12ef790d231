"""The OpenAPI document of a stream route tells what the route really does: how to
authenticate, what it answers, and the `Last-Event-ID` header it reads."""

from typing import Any

import httpx
import pytest

from fastapi_pg_sse.testing import Server
from tests.app import NEWS_STREAM, OWN_AUTH_STREAM, STREAM

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


@pytest.mark.parametrize("path", [STREAM, NEWS_STREAM])
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


def _assert_streams_its_events(responses: dict[str, Any]) -> None:
    """200 is the event stream, and only that: no `application/json` body."""
    assert list(responses["200"]["content"]) == ["text/event-stream"]
    assert responses["200"]["content"]["text/event-stream"]["itemSchema"]["required"] == [
        "id",
        "event",
        "data",
    ]


@pytest.mark.parametrize("path", [STREAM, NEWS_STREAM])
async def test_a_jwt_stream_route_documents_its_200_400_401_and_503_and_no_other(
    document: dict[str, Any], path: str
) -> None:
    responses = _operation(document, path)["responses"]
    assert set(responses) == {"200", "400", "401", "503"}
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


@pytest.mark.parametrize("path", [STREAM, NEWS_STREAM, OWN_AUTH_STREAM])
async def test_last_event_id_is_documented_as_an_optional_header(
    document: dict[str, Any], path: str
) -> None:
    parameters = _operation(document, path)["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in parameters] == [
        ("Last-Event-ID", "header", False)
    ]
    assert parameters[0]["schema"] == {"type": "string", "pattern": "^[0-9]{1,18}$"}
