"""The OpenAPI document of a stream route tells what the route really does: how to
authenticate, what it answers, each event type it streams with its payload's schema, and where it
reads the id to resume from; `stream_route` documents a route so, its 401 only if it depends on
`CurrentUser`. The document is valid OpenAPI 3.1 for the validators teams use, offline."""

import importlib
import json
import re
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute
from pydantic import BaseModel

from fastapi_pg_sse import (
    JWT_STREAM_RESPONSES,
    STREAM_RESPONSES,
    Channel,
    ChannelEvent,
    CurrentUser,
    EventStream,
    Streams,
    authenticated_user,
    jwt_stream_responses,
    stream_responses,
    stream_route,
)
from fastapi_pg_sse.openapi import ITEM_SCHEMA, payload_schema
from fastapi_pg_sse.testing import Server
from tests.app import (
    FEED,
    NEWS_STREAM,
    ORDERS,
    ORDERS_STREAM,
    OWN_AUTH_STREAM,
    STREAM,
    app,
    user_from_header,
)
from tests.helpers import openapi_errors

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


async def test_the_token_schemes_say_which_routes_accept_them_and_that_the_query_is_off(
    document: dict[str, Any],
) -> None:
    """The document is built before the settings are read: it lists the three schemes, and
    says that the cookie and the query parameter are read by stream routes only, the query
    parameter only when the server enables it."""
    schemes = document["components"]["securitySchemes"]
    assert "accepted by every route" in schemes["bearerToken"]["description"]
    assert "accepted by stream routes only" in schemes["tokenCookie"]["description"]
    query = schemes["tokenQuery"]["description"]
    assert "accepted by stream routes only" in query
    assert "only when the server sets REALTIME_QUERY_TOKEN=true (off by default" in query


def _item_schema(responses: dict[str, Any]) -> dict[str, Any]:
    """The schema of an event of the stream; 200 is the event stream, and only that: no
    `application/json` body. OpenAPI 3.1 knows it only as text."""
    assert list(responses["200"]["content"]) == ["text/event-stream"]
    stream = responses["200"]["content"]["text/event-stream"]
    assert set(stream) == {"schema", ITEM_SCHEMA}
    assert stream["schema"]["type"] == "string"
    item_schema: dict[str, Any] = stream[ITEM_SCHEMA]
    return item_schema


def _assert_streams_its_events(responses: dict[str, Any]) -> None:
    """An untyped channel's events: any type, any JSON data."""
    item_schema = _item_schema(responses)
    assert item_schema["required"] == ["event", "data"]  # `expired` comes without an id
    assert item_schema["properties"]["event"]["type"] == "string"
    assert item_schema["properties"]["data"] == {
        "type": "string",
        "contentMediaType": "application/json",
    }


@pytest.mark.parametrize("path", [STREAM, NEWS_STREAM, ORDERS_STREAM])
async def test_a_jwt_stream_route_documents_its_200_400_401_and_429_and_no_other(
    document: dict[str, Any], path: str
) -> None:
    """No 503: with the database unreachable, the 200 ends at once, and says so."""
    responses = _operation(document, path)["responses"]
    assert set(responses) == {"200", "400", "401", "429"}
    if path != ORDERS_STREAM:
        _assert_streams_its_events(responses)
    for status in ("400", "401", "429"):
        assert responses[status]["content"] == ERROR_BODY
    assert set(responses["401"]["headers"]) == {"WWW-Authenticate"}
    assert set(responses["429"]["headers"]) == {"Retry-After"}
    assert "While the database is unreachable, it ends at once" in (responses["200"]["description"])


async def test_a_route_with_its_own_auth_documents_no_401_and_no_bearer_scheme_of_ours(
    document: dict[str, Any],
) -> None:
    operation = _operation(document, OWN_AUTH_STREAM)
    responses = operation["responses"]
    assert set(responses) == {"200", "400", "429"}, "the app documents its own auth's answers"
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
    assert list(events) == ["order_placed", "order_shipped", "reset", "expired", "revoked"]
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
    assert "trackingUrl" in shipped["properties"], "a field by its alias, as it is sent"
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


async def test_revoked_is_documented_without_an_id(document: dict[str, Any]) -> None:
    revoked = _events_by_type(_item_schema(_operation(document, ORDERS_STREAM)["responses"]))[
        "revoked"
    ]
    assert revoked["required"] == ["event", "data"]
    assert revoked["properties"]["data"]["contentSchema"]["properties"] == {
        "reason": {"const": "revoked"}
    }
    assert "same token" in revoked["description"]


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


async def test_a_stream_route_is_documented_as_a_route_written_by_hand_with_the_constants(
    document: dict[str, Any],
) -> None:
    """NEWS_STREAM is declared with `stream_route`, STREAM by hand with `JWT_STREAM_RESPONSES`
    and `STREAM_OPENAPI`: their channels declare no events, so they read the same."""
    by_hand, declared = _operation(document, STREAM), _operation(document, NEWS_STREAM)
    for part in ("responses", "parameters", "security"):
        assert declared[part] == by_hand[part], part


def _declared_app(*declarations: tuple[str, Callable[..., Any], dict[str, Any]]) -> FastAPI:
    """An app whose routes, one per (path, endpoint, options), are declared with
    `stream_route` on a router of their own, as a module of a project declares them."""
    router = APIRouter()
    for path, endpoint, options in declarations:
        stream_route(router, FEED, path, **options)(endpoint)
    app = FastAPI()
    app.include_router(router)
    return app


async def _by_current_user(user: CurrentUser, streams: Streams) -> EventStream:
    return streams.open(FEED, user)


def _user_of_a_dependency(user: CurrentUser) -> str:
    return user.id


async def _by_a_dependency_on_current_user(
    user_id: Annotated[str, Depends(_user_of_a_dependency)], streams: Streams
) -> EventStream:
    return streams.open(FEED, user_id)


async def _by_an_api_key(
    user_id: Annotated[str, Depends(user_from_header)], streams: Streams
) -> EventStream:
    return streams.open(FEED, user_id)


async def _anonymous(streams: Streams) -> EventStream:
    return streams.open(FEED, "anyone")


def test_stream_route_documents_the_401_only_of_a_route_that_depends_on_current_user() -> None:
    app = _declared_app(
        ("/direct", _by_current_user, {}),
        ("/nested", _by_a_dependency_on_current_user, {}),
        ("/option", _anonymous, {"dependencies": [Depends(authenticated_user)]}),
        ("/own-auth", _by_an_api_key, {}),
        ("/anonymous", _anonymous, {}),
    )
    paths = app.openapi()["paths"]
    documented = {path: set(paths[path]["get"]["responses"]) for path in paths}
    assert documented == {
        "/direct": {"200", "400", "401", "429"},
        "/nested": {"200", "400", "401", "429"},
        "/option": {"200", "400", "401", "429"},
        "/own-auth": {"200", "400", "429"},
        "/anonymous": {"200", "400", "429"},
    }
    challenge = paths["/direct"]["get"]["responses"]["401"]
    assert set(challenge["headers"]) == {"WWW-Authenticate"}
    assert challenge["content"] == ERROR_BODY


def test_stream_route_declares_a_get_route_streaming_its_channels_documented_events() -> None:
    router = APIRouter()
    stream_route(router, ORDERS, "/orders", summary="Order events", tags=["orders"])(
        _by_current_user
    )
    [route] = router.routes
    assert isinstance(route, APIRoute)
    assert (route.path, route.methods, route.response_class) == ("/orders", {"GET"}, EventStream)
    app = FastAPI()
    app.include_router(router)
    operation = app.openapi()["paths"]["/orders"]["get"]
    assert (operation["summary"], operation["tags"]) == ("Order events", ["orders"])
    events = _events_by_type(_item_schema(operation["responses"]))
    assert list(events) == ["order_placed", "order_shipped", "reset", "expired", "revoked"]
    assert [parameter["name"] for parameter in operation["parameters"]] == [
        "Last-Event-ID",
        "last_event_id",
    ]


def test_stream_route_returns_the_endpoint_unchanged_and_defaults_to_the_stream_path() -> None:
    router = APIRouter(prefix="/feed")
    assert stream_route(router, FEED)(_anonymous) is _anonymous
    assert [route.path for route in router.routes if isinstance(route, APIRoute)] == [
        "/feed/stream"
    ]


NO_NETWORK = ("unshare", "--net", "--map-root-user")
"""A network namespace of its own, with no interface up: nothing outside can be reached."""


def _written(document: dict[str, Any], folder: Path) -> Path:
    written = folder / "openapi.json"
    written.write_text(json.dumps(document), encoding="utf-8")
    return written


async def test_the_document_is_valid_openapi_3_1_for_its_validators_without_a_network(
    document: dict[str, Any], tmp_path: Path
) -> None:
    """`openapi-spec-validator` and `@redocly/cli lint` (its minimal ruleset) find no error in
    the document of typed, untyped and own-auth stream routes, run where no network is."""
    assert document["openapi"] == "3.1.0"
    assert openapi_errors(_written(document, tmp_path), command=NO_NETWORK) == ""


@pytest.mark.parametrize(
    "module",
    ["tests.own_auth_app", "tests.readme_auth_app", "tests.factory_app"],
)
def test_the_document_of_every_test_app_is_valid_openapi_3_1(module: str, tmp_path: Path) -> None:
    imported = importlib.import_module(module)
    built: FastAPI = imported.create_app() if hasattr(imported, "create_app") else imported.app
    assert openapi_errors(_written(built.openapi(), tmp_path)) == ""


README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readmes_example_reads_each_events_payload_schema(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The python block of "Typed events", `shop.main` answered by the test app: it prints
    what its comment says, and the schemas it reads are the payloads' own."""
    section = README.read_text(encoding="utf-8").split("\n## Typed events\n", 1)[1]
    code = re.search(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.DOTALL)
    assert code is not None, "the section has a python block"
    for name, attributes in {"shop": {}, "shop.main": {"app": app}}.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)
    shown = re.search(r"^print\(.*\)  # (.*)$", code.group(1), re.MULTILINE)
    assert shown is not None, "the print has its output as a comment"
    assert capsys.readouterr().out == f"{shown.group(1)}\n"
    for event_type, event_class in ORDERS.event_classes.items():
        schema = payload_schema(ORDERS, event_type, event_class)
        # as FastAPI encodes the document, which drops null values (a default of None)
        assert namespace["payloads"][event_type] == jsonable_encoder(schema, exclude_none=True)


async def test_the_multiplexed_route_documents_each_channels_events_by_channel_and_what_it_reads(
    document: dict[str, Any],
) -> None:
    operation = _operation(document, "/realtime/stream")
    responses = operation["responses"]
    assert set(responses) == {"200", "400", "401", "429"}
    assert operation["security"] == JWT_SCHEMES
    events = _item_schema(responses)["oneOf"]
    untyped = [event for event in events if "pattern" in event["properties"]["event"]]
    assert [event["properties"]["event"]["pattern"] for event in untyped] == [
        "^test_feed\\.",
        "^test_news\\.",
    ]
    typed = _events_by_type({"oneOf": [e for e in events if e not in untyped]})
    assert list(typed) == [
        "test_orders.order_placed",
        "test_orders.order_shipped",
        "reset",
        "expired",
        "revoked",
    ]
    reset = typed["reset"]["properties"]["data"]["contentSchema"]
    assert reset["required"] == ["replayable", "channels"]
    parameters = [(p["name"], p["in"], p["required"]) for p in operation["parameters"]]
    assert parameters == [
        ("channels", "query", True),
        ("Last-Event-ID", "header", False),
        ("last_event_id", "query", False),
    ]
