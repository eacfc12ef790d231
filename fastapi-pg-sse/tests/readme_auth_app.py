"""An application whose stream route authenticates with the README's hand-written dependency
(section "Tokens": the user id nested in a claim, `user.id`), run from the README's own code
block, and opens the stream of the id it returns, as scaffold's generated route does. It reads
its key from `JWT_SECRET`."""

import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI

from fastapi_pg_sse import EventStream, Streams, create_realtime_router, stream_route
from tests.app import FEED

README = Path(__file__).resolve().parents[1] / "README.md"
NESTED_CLAIM_STREAM = "/feed/nested-claim/stream"


def readme_dependency() -> Any:
    """`current_user_id`, from the python block of the README's "Tokens" section."""
    section = README.read_text(encoding="utf-8").split("### Tokens", 1)[1].split("\n### ", 1)[0]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the README gives the dependency in a python block"
    namespace: dict[str, Any] = {"__name__": "readme_auth"}
    exec(block.group(1), namespace)  # the README's code, as a module of its own
    return namespace["current_user_id"]


current_user_id = readme_dependency()
router = APIRouter()


@stream_route(router, FEED, NESTED_CLAIM_STREAM)
async def stream_feed_events_of_the_nested_claims_user(
    user_id: Annotated[str, Depends(current_user_id)], streams: Streams
) -> EventStream:
    return streams.open(FEED, user_id)


app = FastAPI(title="fastapi-pg-sse tests, the README's nested-claim dependency")
app.include_router(create_realtime_router([FEED]))
app.include_router(router)
