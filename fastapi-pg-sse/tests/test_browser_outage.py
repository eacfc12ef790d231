"""A browser's own `EventSource` outlives a database outage: opened while PostgreSQL is stopped,
it keeps reconnecting by itself (a 503 would end it for good), and once PostgreSQL is back it
receives every event emitted since, once and in order, without a reload.

Debian's Chromium (/usr/bin/chromium) driven by Playwright; a PostgreSQL server of the test's
own, stopped and started again on the same port with the same data.
"""

import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from playwright.async_api import Page, async_playwright

from fastapi_pg_sse._loopback_postgres import LoopbackPostgres
from fastapi_pg_sse.testing import (
    Server,
    emit_event,
    next_event,
    open_stream,
    schema_database,
    sign_token,
)
from tests.app import FEED, STREAM
from tests.helpers import serving

pytestmark = pytest.mark.anyio

CHROMIUM = "/usr/bin/chromium"
"""Debian's `chromium` package: Playwright downloads no browser here."""
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu"]  # root in a container has no user namespace
WAIT_MS = 60_000
"""How long the test waits for a condition of the page (a loaded machine)."""
PAGE = "/outage-page"
"""Served by the test itself (Playwright's routing), from the app's origin."""
HTML = f"""<!doctype html>
<script>
  window.received = [];
  window.failures = 0;
  const source = new EventSource("{STREAM}");
  source.addEventListener("after_restart", (event) => {{
    window.received.push(event.lastEventId);
  }});
  source.onerror = () => {{ window.failures += 1; }};
  window.source = source;
</script>
"""


@pytest.fixture
def own_postgres() -> Iterator[LoopbackPostgres]:
    """A PostgreSQL server of this test alone, which it stops and starts again."""
    with tempfile.TemporaryDirectory(prefix="realtime-outage-") as folder:
        server = LoopbackPostgres(Path(folder) / "data")
        try:
            yield server
        finally:
            server.cleanup()


@pytest.fixture
def outage_database(own_postgres: LoopbackPostgres) -> Iterator[str]:
    """A database of `own_postgres` with the runtime's schema."""
    with schema_database(own_postgres.url) as database_url:
        yield database_url


@pytest.fixture
async def outage_server(outage_database: str, pytestconfig: pytest.Config) -> AsyncIterator[Server]:
    """The test app on `outage_database`, reconnecting quickly once it is back."""
    environment = {
        "DATABASE_URL": outage_database,
        "REALTIME_RETRY_MILLISECONDS": "1500",
        "REALTIME_RECONNECT_MAX_BACKOFF_SECONDS": "1",
        "REALTIME_HEARTBEAT_SECONDS": "1",
    }
    async with serving("tests.app:app", pytestconfig.rootpath, environment) as server:
        yield server


@asynccontextmanager
async def _outage(postgres: LoopbackPostgres) -> AsyncIterator[Callable[[], None]]:
    """PostgreSQL stopped, until the function given is called (or the block ends)."""
    postgres.stop()
    ended = False

    def end() -> None:
        nonlocal ended
        postgres.start_again()
        ended = True

    try:
        yield end
    finally:
        if not ended:
            postgres.start_again()  # for the fixtures to drop the test's database


async def _page_of(page: Page, server: Server, user: str) -> None:
    """Load the test's page from the app's origin, with `user`'s token in the cookie that a
    stream route reads."""
    await page.context.add_cookies(
        [{"name": "access_token", "value": sign_token(user, expires_in=600), "url": server.url}]
    )
    await page.route(
        f"{server.url}{PAGE}",
        lambda route: route.fulfill(status=200, content_type="text/html", body=HTML),
    )
    await page.goto(f"{server.url}{PAGE}")


async def test_an_eventsource_opened_during_an_outage_receives_every_event_emitted_after_it(
    own_postgres: LoopbackPostgres, outage_server: Server, outage_database: str
) -> None:
    server, database_url = outage_server, outage_database
    user = "uma"
    async with open_stream(server.url + STREAM, sign_token(user)) as earlier:
        before = await emit_event(database_url, FEED, user, "before_outage")
        assert (await next_event(earlier)).id == str(before), "the listener saw it"
    async with _outage(own_postgres) as end_outage, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            loads: list[str] = []
            page.on("load", lambda _: loads.append(page.url))
            await _page_of(page, server, user)
            # Two answers of the outage, and the EventSource still reconnects (2 is CLOSED).
            await page.wait_for_function("window.failures >= 2", timeout=WAIT_MS)
            assert await page.evaluate("window.source.readyState") != 2
            end_outage()
            emitted = [
                str(await emit_event(database_url, FEED, user, "after_restart")) for _ in range(5)
            ]
            await page.wait_for_function("window.received.length >= 5", timeout=WAIT_MS)
            marker = str(await emit_event(database_url, FEED, user, "after_restart"))
            await page.wait_for_function("window.received.length >= 6", timeout=WAIT_MS)
            received = await page.evaluate("window.received")
            assert await page.evaluate("window.source.readyState") == 1, "open"
        finally:
            with anyio.CancelScope(shield=True):
                await browser.close()
    assert received == [*emitted, marker], "each once, in order, and nothing from before"
    assert str(before) not in received
    assert loads == [f"{server.url}{PAGE}"], "no reload"
