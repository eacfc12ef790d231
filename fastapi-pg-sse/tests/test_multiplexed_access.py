"""The multiplexed route runs no channel's own stream route dependencies: it serves a channel
whose stream routes guard it with more than authentication only as the app's `authorize` says,
and refuses it otherwise, naming it."""

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from fastapi_pg_sse.testing import (
    ServedApp,
    Server,
    emit_event,
    next_event,
    open_stream,
    sign_token,
)
from tests.app import ORDERS
from tests.helpers import new_users, serving

pytestmark = pytest.mark.anyio

MULTIPLEXED = "/realtime/stream"


@pytest.fixture
async def guarded_server(
    realtime_database_url: str, pytestconfig: pytest.Config
) -> AsyncIterator[Server]:
    environment = {"DATABASE_URL": realtime_database_url}
    async with serving("tests.guarded_app:app", pytestconfig.rootpath, environment) as server:
        yield server


@pytest.mark.parametrize(
    ("channels", "guarded"),
    [
        ("test_orders,test_news", "'test_news'"),  # a route dependency
        ("test_feed", "'test_feed'"),  # include_router's
        ("test_audit", "'test_audit'"),  # a scope its route's authentication requires
    ],
    ids=["route", "include_router", "scope"],
)
async def test_a_channel_guarded_by_its_stream_routes_dependencies_is_refused_by_default(
    guarded_server: Server, channels: str, guarded: str
) -> None:
    """The 403 names the channel, not what guards it (the guarding route and dependencies are
    logged, not told to any caller)."""
    async with (
        httpx.AsyncClient(base_url=guarded_server.url, timeout=30) as client,
        client.stream(
            "GET",
            f"{MULTIPLEXED}?channels={channels}",
            headers={"Authorization": f"Bearer {sign_token('admin-ann')}"},
        ) as response,
    ):
        assert response.status_code == 403  # before reading: a stream would not end
        detail = json.loads(await response.aread())["detail"]
    assert detail.startswith(f"channels names {guarded}, guarded by the dependencies")
    assert "require_admin" not in detail and "/admin/" not in detail
    assert "create_realtime_router(authorize=...)" in detail


async def test_a_channel_whose_route_only_authenticates_is_served(
    guarded_server: Server, realtime_database_url: str
) -> None:
    (user,) = new_users("ola")
    url = f"{guarded_server.url}{MULTIPLEXED}?channels=test_orders"
    async with open_stream(url, sign_token(user)) as stream:
        event_id = await emit_event(realtime_database_url, ORDERS, user, "order_placed")
        event = await next_event(stream)
    assert (event.id, event.event) == (str(event_id), "test_orders.order_placed")


async def test_the_apps_authorize_decides_which_channels_a_caller_reads(
    served_app: ServedApp,
) -> None:
    """FEED's stream route authenticates by a header of its own, yet `authorize` serves it."""
    (insider,) = new_users("insider")
    url = f"{served_app.server.url}{MULTIPLEXED}?channels=test_feed,test_orders"
    async with open_stream(url, sign_token(insider)) as stream:
        event_id = await served_app.emit(ORDERS, insider, "order_placed")
        event = await next_event(stream)
    refused = await served_app.get(
        f"{MULTIPLEXED}?channels=test_feed,test_orders", token=sign_token("outsider-oz")
    )
    assert (event.id, event.event) == (str(event_id), "test_orders.order_placed")
    assert refused.status_code == 403
    assert "'test_orders'" in refused.json()["detail"]
