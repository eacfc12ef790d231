"""`./scripts/demo --check`: the six proofs in headless Chromium, one verdict each."""

import traceback
from pathlib import Path

from demo.browser import chromium
from demo.proofs import PROOFS, SCREENSHOT, a_screenshot_shows_both_users_events
from demo.session import Demo


async def check(demo: Demo, screenshot: Path = SCREENSHOT) -> bool:
    """Run every proof on `demo`, saving the screenshot at `screenshot`; True if all hold."""
    failed = 0
    async with chromium() as browser:
        for proof in PROOFS:
            summary = (proof.__doc__ or proof.__name__).split("\n")[0]
            try:
                if proof is a_screenshot_shows_both_users_events:
                    await a_screenshot_shows_both_users_events(demo, browser, screenshot)
                else:
                    await proof(demo, browser)
            except Exception:
                failed += 1
                print(f"FAIL {summary}\n{traceback.format_exc()}", flush=True)
            else:
                print(f"ok   {summary}", flush=True)
    print(f"{len(PROOFS) - failed} passed, {failed} failed; screenshot: {screenshot}")
    return failed == 0
