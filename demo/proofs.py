"""The demo's six proofs in a real browser. Each waits on conditions of the page or the
database, never on time; "nothing else arrived" is proven by a later event that did arrive.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, ConsoleMessage, Frame, Page, Route

from demo.browser import WAIT_MS, UserPage
from demo.database import add_basket, events_of
from demo.session import Demo

SCREENSHOT = Path(__file__).resolve().parent.parent / "build" / "artifacts" / "demo.png"
TEAM = "blue"
"""The team of alice and bob on the demo's page (frontend/index.html)."""


@asynccontextmanager
async def new_tab(browser: Browser) -> AsyncIterator[Page]:
    """A tab of its own: its own cookies, as another browser would have."""
    context = await browser.new_context(viewport={"width": 1280, "height": 760})
    context.set_default_timeout(WAIT_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def user_frames(demo: Demo, page: Page) -> tuple[UserPage, UserPage]:
    """alice's and bob's pages inside the demo's page, each with its stream open and showing
    what its user received before (a page starts from its user's first event)."""
    users = []
    for name in ("alice", "bob"):
        element = await page.locator(f"iframe#{name}").element_handle()
        frame = await element.content_frame()
        assert isinstance(frame, Frame), f"{name}'s frame has no document"
        user = UserPage(frame)
        await user.wait_for_status("open")
        await user.wait_for_event_count(len(await events_of(demo.database_url, name, TEAM)))
        users.append(user)
    return users[0], users[1]


async def add_one(user: UserPage) -> None:
    """Click the user's button and wait until the page shows one event more."""
    shown = len(await user.events())
    await user.add_to_basket()
    await user.wait_for_event_count(shown + 1)


async def shows_exactly_its_events(
    demo: Demo, user: UserPage, name: str, team: str | None = None
) -> None:
    """The page shows every event of `name`'s and of their team's in the table, in order, once,
    and no other."""
    expected = await events_of(demo.database_url, name, team)
    assert await user.events() == expected, f"{name}'s page differs from the table"


async def an_event_reaches_its_user_only(demo: Demo, browser: Browser) -> None:
    """(a) A click on alice's button reaches alice's page, not bob's, and the other way round."""
    async with new_tab(browser) as page:
        await page.goto(demo.page_url())
        alice, bob = await user_frames(demo, page)
        for user in (alice, bob, alice):  # each event is followed by one of the other user's
            await add_one(user)
        await shows_exactly_its_events(demo, alice, "alice", TEAM)
        await shows_exactly_its_events(demo, bob, "bob", TEAM)


async def events_emitted_while_the_app_is_down_arrive_once(demo: Demo, browser: Browser) -> None:
    """(b) Events emitted in SQL while the app is down reach the page, in order, once.

    The app is stopped (SIGTERM), the trigger emits twice, and the app starts again on the same
    port; then one more event, which any duplicate would have come before."""
    async with new_tab(browser) as page:
        await page.goto(demo.page_url("user.html", user="dora"))
        dora = UserPage(page.main_frame)
        await dora.wait_for_status("open")
        await add_basket(demo.database_url, "dora")
        await dora.wait_for_event_count(1)
        await asyncio.to_thread(demo.server.stop)
        await add_basket(demo.database_url, "dora")
        await add_basket(demo.database_url, "dora")
        await asyncio.to_thread(demo.server.start)
        await dora.wait_for_event_count(3)
        await dora.wait_for_status("open", times=2)
        await add_basket(demo.database_url, "dora")  # any duplicate would come before it
        await dora.wait_for_event_count(4)
        await shows_exactly_its_events(demo, dora, "dora")


async def nothing_is_lost_across_a_token_refresh(demo: Demo, browser: Browser) -> None:
    """(c) Nothing is lost when the token expires and the page gets a new one.

    The stream ends with `expired`; the client's refreshToken calls the sign-in route, which the
    test holds while it emits, then lets through: the page resumes from its last id."""
    refreshes: asyncio.Queue[Route] = asyncio.Queue()
    erin: UserPage | None = None
    held = False

    async def hold_the_refresh(route: Route) -> None:
        # Only the first sign-in after the stream said `expired` is held: a slow first
        # connection that the client renews is not mistaken for the refresh.
        nonlocal held
        if not held and erin is not None and "expired" in await erin.statuses():
            held = True
            await refreshes.put(route)
        else:
            await route.continue_()

    async with new_tab(browser) as page:
        await page.route(lambda url: "/demo/sign-in" in url, hold_the_refresh)
        await page.goto(demo.page_url("user.html", user="erin", lifetime="10"))
        erin = UserPage(page.main_frame)
        await erin.wait_for_status("open")
        await add_basket(demo.database_url, "erin")
        refresh = await asyncio.wait_for(refreshes.get(), WAIT_MS / 1000)
        await add_basket(demo.database_url, "erin")  # while the page has no valid token
        await add_basket(demo.database_url, "erin")
        await refresh.continue_()
        await erin.wait_for_event_count(3)
        await shows_exactly_its_events(demo, erin, "erin")


async def a_page_on_another_origin_needs_cors(demo: Demo, browser: Browser) -> None:
    """(d) A page on another origin streams with REALTIME_CORS_ORIGINS, and is refused without.

    The refusal is Chromium's CORS error in the console and the client's `error` status."""
    url = demo.other_origin_url("user.html", user="fred", auth="header", api=demo.server.url)
    async with new_tab(browser) as page:
        await page.goto(url)
        fred = UserPage(page.main_frame)
        await fred.wait_for_status("open")
        await fred.add_to_basket()
        await fred.wait_for_event_count(1)
        await shows_exactly_its_events(demo, fred, "fred")

    await asyncio.to_thread(demo.server.stop)
    await asyncio.to_thread(demo.server.start, REALTIME_CORS_ORIGINS="")
    try:
        refused = asyncio.Event()

        def on_console(message: ConsoleMessage) -> None:
            if "blocked by CORS policy" in message.text:
                refused.set()

        async with new_tab(browser) as page:
            page.on("console", on_console)
            await page.goto(url)
            await asyncio.wait_for(refused.wait(), WAIT_MS / 1000)
            await UserPage(page.main_frame).wait_for_status("error")
            assert "open" not in await UserPage(page.main_frame).statuses()
    finally:
        await asyncio.to_thread(demo.server.stop)
        await asyncio.to_thread(demo.server.start)


async def a_team_notice_reaches_every_member_only(demo: Demo, browser: Browser) -> None:
    """(f) A notice posted to team blue reaches alice's and bob's pages, both members, and not
    the page of hank, of another team.

    hank's page is opened first; after the notices, an event of his own arrives, which any
    notice he was sent would have come before."""
    async with new_tab(browser) as other, new_tab(browser) as page:
        await other.goto(demo.page_url("user.html", user="hank"))
        hank = UserPage(other.main_frame)
        await hank.wait_for_status("open")
        await page.goto(demo.page_url())
        alice, bob = await user_frames(demo, page)
        for poster in (alice, bob):
            shown = [len(await member.events()) for member in (alice, bob)]
            await poster.post_notice()
            for member, count in zip((alice, bob), shown, strict=True):
                await member.wait_for_event_count(count + 1)
        await add_one(hank)
        await shows_exactly_its_events(demo, alice, "alice", TEAM)
        await shows_exactly_its_events(demo, bob, "bob", TEAM)
        await shows_exactly_its_events(demo, hank, "hank")
        assert [event_type for _, event_type in await hank.events()] == ["stock_created"]


async def a_screenshot_shows_both_users_events(
    demo: Demo, browser: Browser, path: Path = SCREENSHOT
) -> None:
    """(e) A screenshot of the demo's page, both users' events and a team notice on it, is saved
    as a PNG."""
    async with new_tab(browser) as page:
        await page.goto(demo.page_url())
        alice, bob = await user_frames(demo, page)
        for user in (alice, bob, alice, bob):
            await add_one(user)
        shown = len(await bob.events())
        await alice.post_notice()
        await bob.wait_for_event_count(shown + 1)
        await add_one(alice)
        path.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=path)
    assert path.stat().st_size > 0


Proof = Callable[[Demo, Browser], Awaitable[None]]
PROOFS: tuple[Proof, ...] = (
    an_event_reaches_its_user_only,
    events_emitted_while_the_app_is_down_arrive_once,
    nothing_is_lost_across_a_token_refresh,
    a_page_on_another_origin_needs_cors,
    a_team_notice_reaches_every_member_only,
    a_screenshot_shows_both_users_events,
)
