"""Inventory service."""

import fastapi

from inventory.settings import load_settings


async def make_api() -> fastapi.FastAPI:
    settings = await load_settings()
    api = fastapi.FastAPI(debug=settings.debug)
    return api
