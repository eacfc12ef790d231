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
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest
from fastapi_pg_sse.testing import connected, schema_database, serve, sign_token
from playwright.async_api import Browser, BrowserContext, Page, Request, Route

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


@pytest.fixture
def served(postgres_url: str, page_folder: Path) -> Iterator[tuple[str, str]]:
    """The test app's URL and its database's, on a database of its own."""
    with (
        schema_database(postgres_url) as database_url,
        serve(
            "tests.shared_stream_app:app",
            REPO,
            {"DATABASE_URL": database_url, "SHARED_STREAM_PAGE": str(page_folder)},
        ) as server,
    ):
        yield server.url, database_url


@pytest.mark.e2e
def test_ten_tabs_share_one_stream_and_lose_nothing_when_its_tab_closes(
    served: tuple[str, str],
) -> None:
    asyncio.run(_ten_tabs_and_a_takeover(*served))


@pytest.mark.e2e
def test_a_takeover_before_any_event_loses_nothing(served: tuple[str, str]) -> None:
    asyncio.run(_takeover_before_any_event(*served))


@pytest.mark.e2e
def test_tabs_of_a_browser_without_web_locks_read_a_stream_each(served: tuple[str, str]) -> None:
    asyncio.run(_without_web_locks(*served))


@pytest.mark.e2e
def test_two_users_signed_in_in_one_profile_never_share_a_stream(served: tuple[str, str]) -> None:
    asyncio.run(_two_users_in_one_profile(*served))


async def _ten_tabs_and_a_takeover(url: str, database_url: str) -> None:
    async with (
        chromium() as browser,
        _user(browser, url, *ALICE) as alice,
        _user(browser, url, *BOB) as bob,
    ):
        requests = {"alice": 0, "bob": 0}
        for name, context in (("alice", alice), ("bob", bob)):
            context.on("request", _stream_counter(requests, name))
        alice_tabs = [await _open_tab(alice, f"{url}/page/?key=alice") for _ in range(ALICE_TABS)]
        bob_tab = await _open_tab(bob, f"{url}/page/?key=bob")
        assert await _roles_once_open(alice_tabs) == ["leader"] + ["follower"] * 9
        assert await _roles_once_open([bob_tab]) == ["leader"]

        async with connected(database_url) as connection:
            await _emit_round(connection, 0, 10)
            await _each_receives_its_events(database_url, {ALICE: alice_tabs, BOB: [bob_tab]})
            # One stream for alice's ten tabs, one for bob's: one request each, and the server's.
            assert requests == {"alice": 1, "bob": 1}
            assert await _open_streams(url) == 2

            leader = alice_tabs[0]
            await _emit_round(connection, 10, 15)
            await leader.close()
            await _emit_round(connection, 15, 30)
            remaining = alice_tabs[1:]
            await _until_one_leads(remaining)
            await _each_receives_its_events(database_url, {ALICE: remaining, BOB: [bob_tab]})
        assert requests == {"alice": 2, "bob": 1}  # the new leader's stream, only


async def _takeover_before_any_event(url: str, database_url: str) -> None:
    """The leader's tab closes before any event: the stream's first frame (the id it resumes
    after) is every tab's position, so the new leader resumes from it, and what was emitted
    while no tab held the stream arrives once."""
    async with chromium() as browser, _user(browser, url, *ALICE) as alice:
        tabs = [await _open_tab(alice, f"{url}/page/?key=alice") for _ in range(2)]
        assert await _roles_once_open(tabs) == ["leader", "follower"]
        # The new leader's request waits until the events are committed: they fall in the gap.
        takeover: asyncio.Future[Route] = asyncio.get_running_loop().create_future()

        async def hold_the_first(route: Route) -> None:
            if takeover.done():
                await route.continue_()
            else:
                takeover.set_result(route)

        await alice.route("**/realtime/stream?*", hold_the_first)
        await tabs[0].close()
        held = await asyncio.wait_for(takeover, WAIT_MS / 1000)
        async with connected(database_url) as connection:
            await _emit_round(connection, 0, 6)
        await held.continue_()
        await _until_one_leads(tabs[1:])
        await _each_receives_its_events(database_url, {ALICE: tabs[1:]})


async def _without_web_locks(url: str, database_url: str) -> None:
    """Two tabs of a browser without `navigator.locks`: each reads alone, and receives all."""
    async with chromium() as browser, _user(browser, url, *ALICE) as alice:
        await alice.add_init_script("delete Navigator.prototype.locks")
        requests = {"alice": 0}
        alice.on("request", _stream_counter(requests, "alice"))
        tabs = [await _open_tab(alice, f"{url}/page/?key=alice") for _ in range(2)]
        assert await _roles_once_open(tabs) == ["alone", "alone"]
        async with connected(database_url) as connection:
            await _emit_round(connection, 0, 6)
        await _each_receives_its_events(database_url, {ALICE: tabs})
        assert requests == {"alice": 2}


async def _two_users_in_one_profile(url: str, database_url: str) -> None:
    """alice's and bob's tabs in one browser context, each sending its token in a header, with
    its user as the share key: a stream each, and each its own events."""
    async with chromium() as browser:
        context = await browser.new_context()
        context.set_default_timeout(WAIT_MS)
        requests = {"both": 0}
        context.on("request", _stream_counter(requests, "both"))
        tabs: dict[tuple[str, str], list[Page]] = {}
        for user, group in (ALICE, BOB):
            query = urlencode({"token": sign_token(user, groups=[group]), "key": user})
            tabs[(user, group)] = [await _open_tab(context, f"{url}/page/?{query}")]
        assert await _roles_once_open([tab for [tab] in tabs.values()]) == ["leader", "leader"]
        async with connected(database_url) as connection:
            await _emit_round(connection, 0, 6)
        await _each_receives_its_events(database_url, tabs)
        assert requests == {"both": 2}
        await context.close()


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
    await page.goto(url)
    await page.wait_for_function("() => window.realtime !== undefined", timeout=WAIT_MS)
    return page


async def _role(tab: Page) -> str:
    role: str = await tab.evaluate("() => window.realtime.role")
    return role


async def _roles_once_open(tabs: list[Page]) -> list[str]:
    """Each tab's role, once every tab shows its stream open (a follower, its leader's)."""
    for tab in tabs:
        await tab.wait_for_function("() => window.statuses.at(-1) === 'open'", timeout=WAIT_MS)
    return [await _role(tab) for tab in tabs]


async def _until_one_leads(tabs: list[Page]) -> None:
    """Poll until one of `tabs` took the stream over; then every other follows it."""
    deadline = asyncio.get_running_loop().time() + WAIT_MS / 1000
    while "leader" not in (roles := [await _role(tab) for tab in tabs]):
        assert asyncio.get_running_loop().time() < deadline, f"no tab took over: {roles}"
        await asyncio.sleep(0.05)
    assert sorted(roles) == ["follower"] * (len(tabs) - 1) + ["leader"], roles


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


async def _each_receives_its_events(
    database_url: str, tabs: Mapping[tuple[str, str], list[Page]]
) -> None:
    """Every tab of each (user, group) shows exactly their events, once, in order: waited for
    by count, then compared (a duplicate or another's event would make the list differ)."""
    for (user, group), users_tabs in tabs.items():
        expected = await _expected(database_url, user, group)
        for tab in users_tabs:
            await tab.wait_for_function(
                "count => window.received.length >= count", arg=len(expected), timeout=WAIT_MS
            )
            assert await _received(tab) == expected, f"{user}'s tab differs from the table"


async def _open_streams(url: str) -> int:
    """The streams the server holds open, by the kernel's metrics."""
    async with httpx.AsyncClient(base_url=url) as client:
        count: int = (await client.get("/metrics")).json()["open_streams"]
    return count
