"""An application that authenticates with a dependency of its own, on its multiplexed route too
(`create_realtime_router(user=...)`), and names no channels: the multiplexed route serves those
of its `stream_route`s."""

from fastapi import FastAPI

from fastapi_pg_sse import create_realtime_router
from tests.app import own_auth_router, user_from_header

app = FastAPI(title="fastapi-pg-sse tests, the multiplexed route of an app's own auth")
app.include_router(create_realtime_router(user=user_from_header))
app.include_router(own_auth_router)
