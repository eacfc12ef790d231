"""Shop service, built by a factory: `uvicorn --factory shop.main:create_app`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI

from shop.modules.catalog.adapters.inbound.product_controller import (
    router as products_router,
)
from shop.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application, configured by `settings` (from the environment by default)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(settings.database_url)
        yield
        await app.state.pool.close()

    application = FastAPI(title="Shop", lifespan=lifespan)
    # Plain HTTP routers.
    application.include_router(products_router, prefix="/products")

    @application.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return application
