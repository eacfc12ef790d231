"""The AsyncAPI document of an app tells the ecosystem's tools what its streams send: each stream
route a channel at its address, each event type a message whose payload is the schema OpenAPI
gives its data, `reset` and `expired`, and the security schemes the route really accepts. It
validates with the AsyncAPI project's own parser, and the app serves it."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, ClassVar

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Security
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel

from fastapi_pg_sse import (
    Channel,
    ChannelEvent,
    CurrentUser,
    EventStream,
    Streams,
    create_realtime_router,
    stream_route,
)
from fastapi_pg_sse.asyncapi import asyncapi_document
from fastapi_pg_sse.openapi import ITEM_SCHEMA
from fastapi_pg_sse.settings import TokenSources
from fastapi_pg_sse.testing import Server, ServerFactory
from tests.app import FEED, NEWS_STREAM, ORDERS, ORDERS_STREAM, OWN_AUTH_STREAM, app
from tests.asyncapi_checks import asyncapi_errors, contains

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
JWT_OPERATIONS = ("stream_news_events_news_stream_get", "stream_order_events_orders_stream_get")
OWN_AUTH_OPERATION = "stream_feed_events_of_the_header_user_feed_own_auth_stream_get"


def _written(document: dict[str, Any], folder: Path) -> Path:
    path = folder / "asyncapi.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _command(*arguments: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`python -m fastapi_pg_sse asyncapi ...` in `cwd` (the runtime's folder), as a user runs it,
    without the developer's `REALTIME_*` variables."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_")}
    return subprocess.run(
        [sys.executable, "-m", "fastapi_pg_sse", "asyncapi", *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


async def _served(server: Server) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.get("/asyncapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


def _security(document: dict[str, Any], operation: str) -> dict[str, dict[str, Any]]:
    """The security schemes an operation accepts (any one of them), by name."""
    schemes = document["components"]["securitySchemes"]
    references = document["operations"][operation].get("security", [])
    names = [
        reference["$ref"].removeprefix("#/components/securitySchemes/") for reference in references
    ]
    return {name: schemes[name] for name in names}


def test_the_command_writes_a_document_the_asyncapi_parser_validates(tmp_path: Path) -> None:
    output = tmp_path / "asyncapi.json"
    finished = _command("tests.app:app", "--output", str(output))
    assert (finished.returncode, finished.stderr) == (0, "")
    assert asyncapi_errors(output) == ""
    document = json.loads(output.read_text(encoding="utf-8"))
    assert (document["asyncapi"], document["info"]) == (
        "3.0.0",
        {"title": "fastapi-pg-sse tests", "version": "0.1.0"},
    )


def test_each_stream_route_is_a_channel_at_its_path_and_a_send_operation() -> None:
    """Routes declared with `stream_route`, in routers the app includes; the route written by hand
    (`tests.app.STREAM`) names no channel, and is not in it."""
    document = asyncapi_document(app, TokenSources())
    addresses = {key: channel["address"] for key, channel in document["channels"].items()}
    assert addresses == {
        "test_news": NEWS_STREAM,
        "test_orders": ORDERS_STREAM,
        "test_feed": OWN_AUTH_STREAM,
    }
    for key, operation in document["operations"].items():
        assert operation["action"] == "send", key
        assert operation["bindings"]["http"]["method"] == "GET"
    channel_of = {key: op["channel"]["$ref"] for key, op in document["operations"].items()}
    assert channel_of == {
        JWT_OPERATIONS[0]: "#/channels/test_news",
        JWT_OPERATIONS[1]: "#/channels/test_orders",
        OWN_AUTH_OPERATION: "#/channels/test_feed",
    }


def test_a_message_per_declared_event_type_then_reset_and_expired() -> None:
    document = asyncapi_document(app, TokenSources())
    orders = document["channels"]["test_orders"]["messages"]
    assert list(orders) == ["order_placed", "order_shipped", "reset", "expired", "revoked"]
    assert [orders[key]["name"] for key in ("order_placed", "order_shipped")] == list(orders)[:2]
    operation = document["operations"][JWT_OPERATIONS[1]]
    assert operation["messages"] == [
        {"$ref": f"#/channels/test_orders/messages/{key}"} for key in orders
    ]
    untyped = document["channels"]["test_news"]["messages"]
    assert list(untyped) == ["event", "reset", "expired", "revoked"]
    assert untyped["event"]["payload"] == {}, "any JSON data"
    assert untyped["event"]["headers"]["properties"]["event"] == {"type": "string"}


def test_a_messages_payload_is_the_openapi_content_schema_of_its_event() -> None:
    document = asyncapi_document(app, TokenSources())
    operation = app.openapi()["paths"][ORDERS_STREAM]["get"]
    stream = operation["responses"]["200"]["content"]["text/event-stream"][ITEM_SCHEMA]
    documented = {
        event["properties"]["event"]["const"]: event["properties"]["data"]["contentSchema"]
        for event in stream["oneOf"]
    }
    messages = document["channels"]["test_orders"]["messages"]
    runtime = document["components"]["messages"]
    for event_type in ORDERS.event_classes:
        assert messages[event_type]["payload"] == documented[event_type], event_type
    for event_type in ("reset", "expired", "revoked"):
        assert messages[event_type] == {"$ref": f"#/components/messages/{event_type}"}
        assert runtime[event_type]["payload"] == documented[event_type], event_type


def test_the_id_and_type_of_each_event_are_its_headers_and_expired_has_no_id() -> None:
    document = asyncapi_document(app, TokenSources())
    placed = document["channels"]["test_orders"]["messages"]["order_placed"]["headers"]
    assert placed["required"] == ["id", "event"]
    assert placed["properties"]["event"] == {"const": "order_placed"}
    assert placed["properties"]["id"]["type"] == "string"
    reset = document["components"]["messages"]["reset"]["headers"]
    assert (reset["required"], reset["properties"]["event"]) == (
        ["id", "event"],
        {"const": "reset"},
    )
    expired = document["components"]["messages"]["expired"]["headers"]
    assert expired == {
        "type": "object",
        "required": ["event"],
        "properties": {"event": {"const": "expired"}},
    }


async def test_the_app_serves_its_document_and_it_validates(
    realtime_server: Server, tmp_path: Path
) -> None:
    served = await _served(realtime_server)
    assert asyncapi_errors(_written(served, tmp_path)) == ""
    assert served == asyncapi_document(app, TokenSources())


@pytest.mark.parametrize(
    ("environment", "header_scheme", "query"),
    [
        ({}, {"type": "http", "scheme": "bearer"}, False),
        ({"REALTIME_QUERY_TOKEN": "true"}, {"type": "http", "scheme": "bearer"}, True),
        (
            {"REALTIME_AUTH_SCHEME": "Token"},
            {"type": "httpApiKey", "in": "header", "name": "Authorization"},
            False,
        ),
    ],
    ids=["bearer", "query-token-on", "token-scheme"],
)
async def test_a_jwt_stream_accepts_the_header_the_cookie_and_the_query_only_when_enabled(
    start_realtime_server: ServerFactory,
    tmp_path: Path,
    environment: dict[str, str],
    header_scheme: dict[str, str],
    query: bool,
) -> None:
    """As the server's settings say: the scheme word of `REALTIME_AUTH_SCHEME`, the query
    parameter only with `REALTIME_QUERY_TOKEN=true`."""
    served = await _served(start_realtime_server(**environment))
    assert asyncapi_errors(_written(served, tmp_path)) == ""
    header = "bearerToken" if header_scheme["type"] == "http" else "authorizationHeader"
    cookie = {"type": "httpApiKey", "in": "cookie", "name": "access_token"}
    expected = {header: header_scheme, "tokenCookie": cookie}
    if query:
        expected["tokenQuery"] = {"type": "httpApiKey", "in": "query", "name": "access_token"}
    for operation in JWT_OPERATIONS:
        schemes = _security(served, operation)
        assert {
            name: {k: v for k, v in s.items() if k != "description"} for name, s in schemes.items()
        } == expected


async def test_a_route_with_its_own_auth_accepts_its_scheme_and_none_of_ours(
    realtime_server: Server,
) -> None:
    served = await _served(realtime_server)
    assert _security(served, OWN_AUTH_OPERATION) == {
        "userHeader": {"type": "httpApiKey", "name": "X-User", "in": "header"}
    }


class _Category(BaseModel):
    name: str
    parent: "_Category | None" = None


class _Categorised(ChannelEvent):
    event_type: ClassVar[str] = "catalogue.categorised"

    category: _Category


CATEGORIES: Channel[_Categorised] = Channel("categories", events=_Categorised)


async def _anonymous(room_id: int, streams: Streams) -> EventStream:
    return streams.open(CATEGORIES, str(room_id))


async def _by_current_user(user: CurrentUser, streams: Streams) -> EventStream:
    return streams.open(FEED, user)


def _nested_app() -> FastAPI:
    """A router in a router in the app, each with a prefix, as generated projects include their
    channels' routers in `realtime_router`; one route hidden from OpenAPI."""
    channels = APIRouter(prefix="/rooms")
    stream_route(channels, CATEGORIES, "/{room_id}/stream", tags=["rooms"])(_anonymous)
    stream_route(channels, FEED, "/hidden/stream", include_in_schema=False)(_by_current_user)
    realtime_router = create_realtime_router()
    realtime_router.include_router(channels, prefix="/events")
    nested = FastAPI(title="Rooms", version="2.1.0", description="Chat rooms.")
    nested.include_router(realtime_router, prefix="/api/v1")
    return nested


def test_routes_of_included_routers_are_found_at_their_full_paths(tmp_path: Path) -> None:
    document = asyncapi_document(_nested_app(), TokenSources())
    assert document["info"] == {"title": "Rooms", "version": "2.1.0", "description": "Chat rooms."}
    assert list(document["channels"]) == ["categories"], "the hidden route is left out"
    channel = document["channels"]["categories"]
    assert channel["address"] == "/api/v1/events/rooms/{room_id}/stream"
    assert channel["parameters"] == {"room_id": {}}
    [operation] = document["operations"].values()
    assert operation["tags"] == [{"name": "rooms"}]
    assert "security" not in operation, "an anonymous route documents no security"
    assert "securitySchemes" not in document["components"]
    assert asyncapi_errors(_written(document, tmp_path)) == ""


def test_a_recursive_payload_validates_its_references_pointing_into_the_document(
    tmp_path: Path,
) -> None:
    """OpenAPI keeps a recursive model's `$defs` under an `$id` of its own; the AsyncAPI parser
    resolves no reference against an `$id`: the same definitions are referred to where they are
    in the document."""
    document = asyncapi_document(_nested_app(), TokenSources())
    message = document["channels"]["categories"]["messages"]["catalogue_categorised"]
    assert message["name"] == "catalogue.categorised"
    payload = message["payload"]
    pointer = "#/channels/categories/messages/catalogue_categorised/payload/$defs/_Category"
    assert payload["properties"]["category"] == {"$ref": pointer}
    assert "$id" not in payload
    assert asyncapi_errors(_written(document, tmp_path)) == ""


def test_the_apps_servers_that_name_a_host_are_its_servers(tmp_path: Path) -> None:
    served = _nested_app()
    served.servers = [
        {"url": "https://api.example.com:8443/shop/", "description": "Production"},
        {"url": "/behind-a-proxy"},
        {"url": "http://localhost:8000"},
    ]
    document = asyncapi_document(served, TokenSources())
    assert document["servers"] == {
        "api_example_com": {
            "host": "api.example.com:8443",
            "protocol": "https",
            "pathname": "/shop",
            "description": "Production",
        },
        "localhost": {"host": "localhost:8000", "protocol": "http"},
    }
    assert asyncapi_errors(_written(document, tmp_path)) == ""
    assert "servers" not in asyncapi_document(_nested_app(), TokenSources())


def test_without_a_server_that_names_a_host_the_root_path_prefixes_the_addresses(
    tmp_path: Path,
) -> None:
    """An AsyncAPI server has a host: the path the app is served under, which FastAPI lists as a
    relative server, goes in the addresses instead."""
    document = asyncapi_document(_nested_app(), TokenSources(), root_path="/shop/")
    assert "servers" not in document
    [channel] = document["channels"].values()
    assert channel["address"] == "/shop/api/v1/events/rooms/{room_id}/stream"
    assert channel["parameters"] == {"room_id": {}}
    assert asyncapi_errors(_written(document, tmp_path)) == ""


async def test_served_behind_a_root_path_it_is_the_pathname_of_a_server_at_the_requests_host(
    tmp_path: Path,
) -> None:
    """Relative servers are resolved against the document's URL, as OpenAPI's are."""
    served = _nested_app()
    served.servers = [{"url": "/behind-a-proxy", "description": "The proxy"}]
    transport = httpx.ASGITransport(app=served, root_path="/shop")
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.example") as client:
        response = await client.get("/shop/api/v1/asyncapi.json")
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["servers"] == {
        "shop_example": {"host": "shop.example", "protocol": "http", "pathname": "/shop"},
        "shop_example_2": {
            "host": "shop.example",
            "protocol": "http",
            "pathname": "/behind-a-proxy",
            "description": "The proxy",
        },
    }
    [channel] = document["channels"].values()
    assert channel["address"] == "/api/v1/events/rooms/{room_id}/stream"
    assert asyncapi_errors(_written(document, tmp_path)) == ""


_SCOPES = {"rooms:read": "Read rooms", "feed:read": "Read the feed", "admin": "All"}
_OAUTH2 = OAuth2PasswordBearer("token", scopes=_SCOPES)


async def _rooms_by_scope(
    user: Annotated[str, Security(_OAUTH2, scopes=["rooms:read"])], streams: Streams
) -> EventStream:
    return streams.open(CATEGORIES, user)


async def _feed_by_scope(
    user: Annotated[str, Security(_OAUTH2, scopes=["feed:read"])], streams: Streams
) -> EventStream:
    return streams.open(FEED, user)


def test_the_scopes_each_operation_needs_are_merged_on_the_scheme_they_share(
    tmp_path: Path,
) -> None:
    """AsyncAPI 3.0 lists the scopes a scheme requires on the scheme, which operations refer to,
    not on each operation: those of every operation that accepts it (a documented limit). Its
    relative token URL, as FastAPI's are, is resolved against where the app is served."""
    router = APIRouter()
    stream_route(router, CATEGORIES, "/rooms/stream")(_rooms_by_scope)
    stream_route(router, FEED, "/feed/stream")(_feed_by_scope)
    realtime_router = create_realtime_router()
    realtime_router.include_router(router)
    scoped = FastAPI()
    scoped.include_router(realtime_router)
    document = asyncapi_document(scoped, TokenSources(), base_url="https://shop.example/api/")
    [scheme] = document["components"]["securitySchemes"].values()
    assert scheme["scopes"] == ["rooms:read", "feed:read"]
    assert scheme["flows"] == {
        "password": {"tokenUrl": "https://shop.example/api/token", "availableScopes": _SCOPES}
    }
    references = [operation["security"] for operation in document["operations"].values()]
    assert references == [[{"$ref": "#/components/securitySchemes/OAuth2PasswordBearer"}]] * 2
    assert asyncapi_errors(_written(document, tmp_path)) == ""


def _anonymous_app(**options: Any) -> FastAPI:
    router = APIRouter()
    stream_route(router, CATEGORIES, "/{room_id}/stream")(_anonymous)
    realtime_router = create_realtime_router(**options)
    realtime_router.include_router(router)
    served = FastAPI()
    served.include_router(realtime_router)
    return served


async def _status(served: FastAPI, path: str) -> int:
    transport = httpx.ASGITransport(app=served)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        return (await client.get(path)).status_code


async def test_the_document_is_served_at_the_url_given_or_not_at_all() -> None:
    assert await _status(_anonymous_app(), "/asyncapi.json") == 200
    assert (
        await _status(_anonymous_app(asyncapi_url="/docs/asyncapi.json"), "/docs/asyncapi.json")
        == 200
    )
    assert await _status(_anonymous_app(asyncapi_url=None), "/asyncapi.json") == 404


async def test_an_app_that_hides_its_openapi_document_hides_its_asyncapi_document() -> None:
    hidden = _anonymous_app()
    hidden.openapi_url = None
    assert await _status(hidden, "/asyncapi.json") == 404


@pytest.mark.parametrize("factory", ["create_app", "create_app_async"])
def test_the_command_calls_an_app_factory_sync_or_async(factory: str) -> None:
    finished = _command(f"tests.factory_app:{factory}")
    assert finished.returncode == 0, finished.stderr
    document = json.loads(finished.stdout)
    assert document["info"]["title"] == "fastapi-pg-sse tests, made by a factory"
    assert [c["address"] for c in document["channels"].values()] == [OWN_AUTH_STREAM]


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("tests.app", "'tests.app' is not module:name, such as shop.main:app"),
        ("tests.missing:app", "cannot load the app tests.missing:app: ModuleNotFoundError"),
        ("tests.app:missing", "tests.app has no missing"),
        (
            "tests.app:FEED",
            "tests.app:FEED is neither a FastAPI app nor a function that returns one",
        ),
    ],
)
def test_an_app_that_cannot_be_loaded_is_an_error_and_nothing_is_written(
    tmp_path: Path, reference: str, message: str
) -> None:
    output = tmp_path / "asyncapi.json"
    output.write_text("the previous document", encoding="utf-8")
    finished = _command(reference, "--output", str(output))
    assert finished.returncode == 2
    assert finished.stderr.startswith(f"error: {message}"), finished.stderr
    assert output.read_text(encoding="utf-8") == "the previous document"
    assert list(tmp_path.iterdir()) == [output]


def _app_module(folder: Path, source: str) -> Path:
    """`folder`, holding the module `shop_app` of `source`, and the file to write a document to,
    holding a previous document."""
    (folder / "shop_app.py").write_text(source, encoding="utf-8")
    (folder / "asyncapi.json").write_text("the previous document", encoding="utf-8")
    return folder


_ONE_CHANNEL_APP = """
from fastapi import APIRouter, FastAPI, Security
from fastapi.security import OAuth2PasswordBearer
from fastapi_pg_sse import Channel, EventStream, Streams, create_realtime_router, stream_route

ROOMS = Channel("rooms")
router = APIRouter()

@stream_route(router, ROOMS, "/rooms/{room_id}/stream")
async def stream_rooms(room_id: str, streams: Streams) -> EventStream:
    return streams.open(ROOMS, room_id)

realtime_router = create_realtime_router()
realtime_router.include_router(router)
app = FastAPI(title="Shop")
app.include_router(realtime_router)
"""


def test_an_app_module_that_exits_as_it_is_imported_is_an_error_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    folder = _app_module(tmp_path, _ONE_CHANNEL_APP + "raise SystemExit(0)\n")
    finished = _command("shop_app:app", "--output", "asyncapi.json", cwd=folder)
    assert (finished.returncode, finished.stderr) == (
        2,
        "error: cannot load the app shop_app:app: it exited (SystemExit: 0) as it was imported"
        " or built: is something it needs (a setting, a file) missing?\n",
    )
    assert (folder / "asyncapi.json").read_text(encoding="utf-8") == "the previous document"


def test_the_fastapi_app_an_asgi_middleware_wraps_is_documented(tmp_path: Path) -> None:
    """`CORSMiddleware(app)`, twice: the app of its `app` attribute, as far down as they go."""
    wrapped = _ONE_CHANNEL_APP + (
        "from starlette.middleware.cors import CORSMiddleware\n"
        "wrapped = CORSMiddleware(CORSMiddleware(app, allow_origins=['*']), allow_origins=['*'])\n"
    )
    finished = _command("shop_app:wrapped", cwd=_app_module(tmp_path, wrapped))
    assert finished.returncode == 0, finished.stderr
    document = json.loads(finished.stdout)
    assert [c["address"] for c in document["channels"].values()] == ["/rooms/{room_id}/stream"]


def test_an_asgi_app_that_wraps_no_fastapi_app_is_an_error_saying_what_is_wanted(
    tmp_path: Path,
) -> None:
    source = (
        "from starlette.applications import Starlette\n"
        "from starlette.middleware.cors import CORSMiddleware\n"
        "app = CORSMiddleware(Starlette(), allow_origins=['*'])\n"
    )
    finished = _command("shop_app:app", cwd=_app_module(tmp_path, source))
    assert (finished.returncode, finished.stdout, finished.stderr) == (
        2,
        "",
        "error: shop_app:app is an ASGI app (CORSMiddleware) that neither is a FastAPI app nor"
        " wraps one (as its `app` attribute, or that of the app it wraps): name the FastAPI app,"
        " or a function that returns it\n",
    )


def test_what_the_app_prints_as_it_is_imported_goes_to_stderr_not_into_the_document(
    tmp_path: Path,
) -> None:
    """By `print`, or below Python, as a C library or a child process would."""
    chatty = _ONE_CHANNEL_APP + (
        "import os\n"
        "print('connecting to the shop database')\n"
        "os.write(1, b'a C library says hello\\n')\n"
    )
    finished = _command("shop_app:app", cwd=_app_module(tmp_path, chatty))
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["info"]["title"] == "Shop"
    assert finished.stderr == "connecting to the shop database\na C library says hello\n"


def test_the_written_document_ends_its_lines_with_line_feeds(tmp_path: Path) -> None:
    """On every platform: the file is written with `newline=""` (only Windows would translate)."""
    folder = _app_module(tmp_path, _ONE_CHANNEL_APP)
    finished = _command("shop_app:app", "--output", "asyncapi.json", cwd=folder)
    assert (finished.returncode, finished.stderr) == (0, "")
    written = (folder / "asyncapi.json").read_bytes()
    assert b"\r" not in written
    assert written.endswith(b"}\n")


def test_the_readme_example_gives_the_document_the_readme_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's "AsyncAPI" section: its python block run as a module of its own, its
    document holds the excerpt of its json block, and validates."""
    for variable in ("REALTIME_QUERY_TOKEN", "REALTIME_AUTH_SCHEME", "REALTIME_JWT_USER_CLAIM"):
        monkeypatch.delenv(variable, raising=False)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## AsyncAPI\n", 1)[1].split("\n## ", 1)[0]
    code, shown = (
        re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
        for language in ("python", "json")
    )
    assert code is not None and shown is not None, "the section has a python and a json block"
    namespace: dict[str, Any] = {"__name__": "readme_asyncapi"}
    exec(code.group(1), namespace)
    document = namespace["document"]
    assert contains(document, json.loads(shown.group(1)))
    assert asyncapi_errors(_written(document, tmp_path)) == ""
