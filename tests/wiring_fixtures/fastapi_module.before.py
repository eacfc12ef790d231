import fastapi

from inventory.http import stock_routes

api = fastapi.FastAPI(
    title="Inventory",  # shown in /docs
)
api.include_router(stock_routes.router)
