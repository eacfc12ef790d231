"""The blog's application: `uvicorn blog.main:app`."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI

from blog.routers import posts


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ["DATABASE_URL"])
    yield
    await app.state.pool.close()


app = FastAPI(title="Blog", lifespan=lifespan)
app.include_router(posts.router, prefix="/posts", tags=["posts"])
