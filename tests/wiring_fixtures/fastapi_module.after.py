import fastapi

from inventory.http import stock_routes
from inventory.sse.levels import router as inventory_levels_sse_router

api = fastapi.FastAPI(
    title="Inventory",  # shown in /docs
)
api.include_router(stock_routes.router)
api.include_router(inventory_levels_sse_router)
