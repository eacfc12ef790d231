"""An application whose stream routes authenticate with an auth dependency of its own only: it
needs no `REALTIME_JWT_*` setting to start. Its router names no channels: its streams may open
any."""

from fastapi import FastAPI

from fastapi_pg_sse import create_realtime_router
from tests.app import own_auth_router

app = FastAPI(title="fastapi-pg-sse tests, own auth only")
app.include_router(create_realtime_router())
app.include_router(own_auth_router)
