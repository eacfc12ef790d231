"""The application of `tests.own_auth_app`, made by factories, as `uvicorn --factory` runs them:
`serve` calls a sync one, and awaits an async one in the server's event loop."""

import asyncio

from fastapi import FastAPI

from fastapi_pg_sse import create_realtime_router
from tests.app import FEED, own_auth_router


def create_app() -> FastAPI:
    app = FastAPI(title="fastapi-pg-sse tests, made by a factory")
    app.include_router(create_realtime_router([FEED]))
    app.include_router(own_auth_router)
    return app


async def create_app_async() -> FastAPI:
    await asyncio.sleep(0)  # what an async factory awaits: settings, a secret store
    return create_app()
