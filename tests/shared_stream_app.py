"""The app `test_browser_shared_stream.py` serves: three channels on the runtime's multiplexed
route, JWT from the `access_token` cookie (groups from the token's `groups` claim), the
kernel's metrics, and the test's page from the folder `SHARED_STREAM_PAGE` names."""

import os
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_pg_sse import Channel, Realtime, create_realtime_router, get_realtime

ORDERS: Channel[Any] = Channel("shared_orders")
"""Events to one user."""
NOTICES: Channel[Any] = Channel("shared_notices")
"""Events to a group."""
PRICES: Channel[Any] = Channel("shared_prices")
"""Events to everyone."""

app = FastAPI(title="A shared stream's test app")
app.include_router(create_realtime_router([ORDERS, NOTICES, PRICES]))


@app.get("/metrics")
async def metrics(realtime: Annotated[Realtime, Depends(get_realtime)]) -> dict[str, object]:
    return asdict(realtime.metrics())


app.mount("/page", StaticFiles(directory=os.environ["SHARED_STREAM_PAGE"], html=True))
