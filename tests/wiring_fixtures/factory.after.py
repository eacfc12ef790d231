"""Shop service, built by a factory: `uvicorn --factory shop.main:create_app`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI

from shop.modules.catalog.adapters.inbound.product_controller import (
    router as products_router,
)
from shop.modules.inventory.adapters.inbound.stock_sse_controller import (
    router as inventory_stock_sse_router,
)
from shop.settings import Settings
from shop.sse_channels import realtime_router


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
    application.include_router(realtime_router)
    application.include_router(inventory_stock_sse_router)

    @application.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return application
