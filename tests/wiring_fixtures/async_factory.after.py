"""Inventory service."""

import fastapi

from inventory.settings import load_settings
from inventory.sse.levels import router as inventory_levels_sse_router


async def make_api() -> fastapi.FastAPI:
    settings = await load_settings()
    api = fastapi.FastAPI(debug=settings.debug)
    api.include_router(inventory_levels_sse_router)
    return api
