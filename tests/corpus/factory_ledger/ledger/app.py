"""The ledger's application factory: `uvicorn --factory ledger.app:create_app`."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI

from ledger import accounts


@asynccontextmanager
async def lifespan(application: FastAPI) -> AsyncIterator[None]:
    application.state.pool = await asyncpg.create_pool(os.environ["DATABASE_URL"])
    yield
    await application.state.pool.close()


def create_app() -> FastAPI:
    """Build the application; every router is included here."""
    application = FastAPI(title="Ledger", lifespan=lifespan)
    application.include_router(accounts.router)
    return application
