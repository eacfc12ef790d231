"""The live demo proves itself in a real browser: Debian's Chromium, driven by Playwright, on
the demo's page served from a generated copy of examples/shop (what `./scripts/demo --check`
runs). One demo serves the six proofs; each starts its own browser.
"""

import asyncio
from collections.abc import Iterator
from http.cookies import Morsel, SimpleCookie

import httpx
import pytest

from demo import proofs
from demo.browser import chromium
from demo.server import free_port
from demo.session import Demo, running_demo

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(postgres_url: str) -> Iterator[Demo]:
    with running_demo(postgres_url, free_port()) as demo:
        yield demo


def prove(proof: proofs.Proof, demo: Demo) -> None:
    async def in_chromium() -> None:
        async with chromium() as browser:
            await proof(demo, browser)

    asyncio.run(in_chromium())


def test_an_event_reaches_its_users_page_and_not_the_others(demo: Demo) -> None:
    prove(proofs.an_event_reaches_its_user_only, demo)


def test_events_emitted_while_the_app_is_down_arrive_in_order_once(demo: Demo) -> None:
    prove(proofs.events_emitted_while_the_app_is_down_arrive_once, demo)


def test_nothing_is_lost_when_the_page_refreshes_an_expired_token(demo: Demo) -> None:
    prove(proofs.nothing_is_lost_across_a_token_refresh, demo)


def test_a_page_on_another_origin_works_with_cors_and_is_refused_without(demo: Demo) -> None:
    prove(proofs.a_page_on_another_origin_needs_cors, demo)


def test_a_team_notice_reaches_every_members_page_and_no_other(demo: Demo) -> None:
    prove(proofs.a_team_notice_reaches_every_member_only, demo)


def test_a_screenshot_of_the_demo_is_kept_as_an_artifact(demo: Demo) -> None:
    prove(proofs.a_screenshot_shows_both_users_events, demo)
    assert proofs.SCREENSHOT.read_bytes().startswith(b"\x89PNG")


STREAM = "/realtime/stream"
"""The runtime's multiplexed stream route, which the demo's page reads both channels from."""


def signed_in_cookie(demo: Demo, headers: dict[str, str] | None = None) -> "Morsel[str]":
    """The cookie the demo's sign-in sets for a token of 60 s."""
    response = httpx.post(
        f"{demo.server.url}/demo/sign-in",
        params={"user": "gina", "lifetime": "60"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return SimpleCookie(response.headers["set-cookie"])["access_token"]


def test_the_sign_in_cookie_goes_to_the_stream_only_and_expires_with_the_token(
    demo: Demo,
) -> None:
    cookie = signed_in_cookie(demo)
    assert cookie["path"] == STREAM
    assert cookie["max-age"] == "60"
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() == "strict"
    assert not cookie["secure"], "served over http on loopback"


def test_the_sign_in_cookie_is_secure_when_the_demo_is_reached_over_https(demo: Demo) -> None:
    # uvicorn trusts the proxy headers of 127.0.0.1: as a TLS-terminating proxy there would.
    assert signed_in_cookie(demo, {"X-Forwarded-Proto": "https"})["secure"] is True
