"""Orders service.

Mounted by the platform gateway under /orders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# FastAPI is pinned in requirements.txt.
from fastapi import FastAPI

from shop.modules.inventory.adapters.inbound.stock_sse_controller import (
    router as inventory_stock_sse_router,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

app: FastAPI = FastAPI(title="Orders")
app.include_router(inventory_stock_sse_router)


def describe(tags: Mapping[str, str]) -> str:
    return ", ".join(tags)
