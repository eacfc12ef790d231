"""The HTTP API of the orders service."""

from fastapi import FastAPI

from orders_service.api.health import router as health_router

app = FastAPI(title="Orders")
app.include_router(health_router)
