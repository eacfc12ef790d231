"""One connection for every tab (issue 20, item 5), in Chromium (Debian's package), against the
real runtime over HTTP/1.1 (uvicorn) and a real PostgreSQL.

Ten tabs of alice and one of bob, each a page of its own on one origin, each subscribed with the
generated client's `connect()` to three channels: alice's orders, her team's notices (a group,
from her token's `groups` claim) and everyone's prices. Every tab receives every event of its
user, its groups and the broadcasts, once, in order, and no other; the server holds one stream
for alice's ten tabs; and closing the tab that holds it loses nothing of what is emitted around
the takeover.
"""

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi_pg_sse.testing import connected, schema_database, serve, sign_token
from playwright.async_api import Browser, BrowserContext, Page, Request

from demo.browser import WAIT_MS, chromium
from tests.golden_cases import GOLDEN
from tests.helpers import REPO
from tests.test_typescript_client import TSC

CLIENT = GOLDEN / "typescript-client" / "web" / "realtime" / "client.ts"
PAGE = Path(__file__).parent / "shared_stream_page"
ALICE_TABS = 10
ALICE = ("alice", "team-a")
BOB = ("bob", "team-b")

Received = tuple[str, str, int, int]
"""What a tab received: (channel, event type, id, payload's n)."""


@pytest.fixture
def page_folder(tmp_path: Path) -> Path:
    """The test's page, compiled with the generated client.ts (what the app serves at /page/)."""
    folder = tmp_path / "page"
    folder.mkdir()
    shutil.copy(CLIENT, folder / "client.ts")
    shutil.copy(PAGE / "page.ts", folder / "page.ts")
    shutil.copy(PAGE / "index.html", folder / "index.html")
    result = subprocess.run(
        [str(TSC), "--strict", "--target", "ES2022", "--module", "ES2022", "--lib", "ES2022,DOM",
         "--skipLibCheck", "client.ts", "page.ts"],
        cwd=folder, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


@pytest.mark.e2e
def test_ten_tabs_share_one_stream_and_lose_nothing_when_its_tab_closes(
    postgres_url: str, page_folder: Path
) -> None:
    with (
        schema_database(postgres_url) as database_url,
        serve(
            "tests.shared_stream_app:app",
            REPO,
            {"DATABASE_URL": database_url, "SHARED_STREAM_PAGE": str(page_folder)},
        ) as server,
    ):
        asyncio.run(_prove(server.url, database_url))


async def _prove(url: str, database_url: str) -> None:
    async with (
        chromium() as browser,
        _user(browser, url, *ALICE) as alice,
        _user(browser, url, *BOB) as bob,
    ):
        requests = {"alice": 0, "bob": 0}
        for name, context in (("alice", alice), ("bob", bob)):
            context.on("request", _stream_counter(requests, name))
        alice_tabs = [await _open_tab(alice, url) for _ in range(ALICE_TABS)]
        bob_tab = await _open_tab(bob, url)
        await _wait_for_roles(alice_tabs, leaders=1)
        await _wait_for_roles([bob_tab], leaders=1)

        async with connected(database_url) as connection:
            await _emit_round(connection, 0, 10)
            await _all_received(database_url, alice_tabs, bob_tab)
            # One stream for alice's ten tabs, one for bob's: one request each, and the server's.
            assert requests == {"alice": 1, "bob": 1}
            assert await _open_streams(url) == 2

            roles = [await _role(tab) for tab in alice_tabs]
            leader = alice_tabs[roles.index("leader")]
            await _emit_round(connection, 10, 15)
            await leader.close()
            await _emit_round(connection, 15, 30)
            remaining = [tab for tab in alice_tabs if tab is not leader]
            await _wait_for_roles(remaining, leaders=1)
            await _all_received(database_url, remaining, bob_tab)
        assert requests == {"alice": 2, "bob": 1}  # the new leader's stream, only


def _stream_counter(requests: dict[str, int], name: str) -> Callable[[Request], None]:
    """Counts in `requests[name]` the requests of the multiplexed stream."""

    def count(request: Request) -> None:
        if "/realtime/stream?" in request.url:
            requests[name] += 1

    return count


@asynccontextmanager
async def _user(browser: Browser, url: str, user: str, group: str) -> AsyncIterator[BrowserContext]:
    """A browser context (a profile of its own: its cookies) signed in as `user` of `group`."""
    context = await browser.new_context()
    context.set_default_timeout(WAIT_MS)
    token = sign_token(user, groups=[group])
    await context.add_cookies([{"name": "access_token", "value": token, "url": url}])
    try:
        yield context
    finally:
        await context.close()


async def _open_tab(context: BrowserContext, url: str) -> Page:
    page = await context.new_page()
    await page.goto(f"{url}/page/")
    await page.wait_for_function("() => window.realtime !== undefined", timeout=WAIT_MS)
    return page


async def _role(tab: Page) -> str:
    role: str = await tab.evaluate("() => window.realtime.role")
    return role


async def _wait_for_roles(tabs: list[Page], *, leaders: int) -> None:
    """Wait until `leaders` of `tabs` hold the stream and every tab shows it open."""
    for tab in tabs:
        await tab.wait_for_function(
            "() => window.statuses.at(-1) === 'open' && window.realtime.role !== 'alone'",
            timeout=WAIT_MS,
        )
    roles = [await _role(tab) for tab in tabs]
    assert roles.count("leader") == leaders, roles


async def _emit_round(connection: asyncpg.Connection, start: int, stop: int) -> None:
    """Events `start` to `stop` - 1, each in a transaction of its own, on each channel and to
    each audience: alice, bob, alice's team, bob's team, everyone."""
    for n in range(start, stop):
        payload = json.dumps({"n": n})
        await connection.execute(
            "SELECT fastapi_pg_sse.emit('shared_orders', $1, 'order_placed', $2::jsonb)",
            ALICE[0] if n % 2 else BOB[0],
            payload,
        )
        await connection.execute(
            "SELECT fastapi_pg_sse.emit_to_group('shared_notices', $1, 'notice_posted', $2::jsonb)",
            ALICE[1] if n % 3 else BOB[1],
            payload,
        )
        if n % 4 == 0:
            await connection.execute(
                "SELECT fastapi_pg_sse.broadcast('shared_prices', 'price_changed', $1::jsonb)",
                payload,
            )


async def _expected(database_url: str, user: str, group: str) -> list[Received]:
    """Every event of `user`, of `group` and of everyone, in id order, as the table holds them."""
    async with connected(database_url) as connection:
        rows = await connection.fetch(
            "SELECT channel, type, id, (payload->>'n')::int AS n FROM fastapi_pg_sse.events"
            " WHERE channel LIKE 'shared\\_%' AND ((target_user_id = $1 AND target_group = '')"
            " OR (target_user_id = '' AND target_group IN ($2, ''))) ORDER BY id",
            user,
            group,
        )
    return [(row["channel"], row["type"], row["id"], row["n"]) for row in rows]


async def _received(tab: Page) -> list[Received]:
    items = await tab.evaluate("() => window.received.map(r => [r.channel, r.type, r.id, r.n])")
    return [(channel, event_type, event_id, n) for channel, event_type, event_id, n in items]


async def _all_received(database_url: str, alice_tabs: list[Page], bob_tab: Page) -> None:
    """Every tab shows exactly its user's events, once, in order: waited for by count, then
    compared (a duplicate or another's event would make the list differ)."""
    for tabs, (user, group) in ((alice_tabs, ALICE), ([bob_tab], BOB)):
        expected = await _expected(database_url, user, group)
        for tab in tabs:
            await tab.wait_for_function(
                "count => window.received.length >= count", arg=len(expected), timeout=WAIT_MS
            )
            assert await _received(tab) == expected, f"{user}'s tab differs from the table"


async def _open_streams(url: str) -> int:
    """The streams the server holds open, by the kernel's metrics."""
    async with httpx.AsyncClient(base_url=url) as client:
        count: int = (await client.get("/metrics")).json()["open_streams"]
    return count
