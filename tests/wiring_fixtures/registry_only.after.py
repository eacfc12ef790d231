"""Shop service."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI

from shop.settings import database_url
from shop.sse_channels import realtime_router


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # One pool per process.
    app.state.pool = await asyncpg.create_pool(database_url())
    yield
    await app.state.pool.close()


app = FastAPI(title="Shop", lifespan=lifespan)
app.include_router(realtime_router)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
