"""Debian's Chromium driven by Playwright (no browser download), and a user's page as the proofs
read it: its stream's status and the events it shows."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from playwright.async_api import Browser, Frame, async_playwright

CHROMIUM = "/usr/bin/chromium"
"""Debian's `chromium` package: `apt-get install chromium` (.ci/run and the set-up do)."""
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container has no user namespace for the sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 60_000
"""How long a proof waits for a condition of the page before it fails (a loaded machine)."""


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium for the block."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


class UserPage:
    """One user's page of the demo (frontend/user.html), a tab or a frame of the demo's page."""

    def __init__(self, frame: Frame) -> None:
        self.frame = frame

    async def events(self) -> list[tuple[str, str]]:
        """The events the page shows (id, type), in the order they arrived."""
        items: list[list[str]] = await self.frame.eval_on_selector_all(
            "#events li", "items => items.map(item => [item.dataset.id, item.dataset.type])"
        )
        return [(event_id, event_type) for event_id, event_type in items]

    async def wait_for_event_count(self, count: int) -> None:
        """Wait until the page shows `count` events (or more)."""
        await self.frame.wait_for_function(
            "count => document.querySelectorAll('#events li').length >= count",
            arg=count,
            timeout=WAIT_MS,
        )

    async def statuses(self) -> list[str]:
        """Every status the client reported, in order."""
        history = await self.frame.get_attribute("#status", "data-history") or ""
        return history.split()

    async def wait_for_status(self, status: str, *, times: int = 1) -> None:
        """Wait until the client has reported `status` `times` times."""
        await self.frame.wait_for_function(
            """([status, times]) => (document.querySelector('#status').dataset.history ?? '')
                   .split(' ').filter(seen => seen === status).length >= times""",
            arg=[status, times],
            timeout=WAIT_MS,
        )

    async def add_to_basket(self) -> None:
        """Click the page's basket button (enabled while the stream is open)."""
        await self.frame.click("#add", timeout=WAIT_MS)

    async def post_notice(self) -> None:
        """Click the page's button that posts a notice to the user's team."""
        await self.frame.click("#notice", timeout=WAIT_MS)
