from fastapi import FastAPI

from shop.modules.billing.adapters.inbound.invoice_controller import (
    router as invoices_router,
)
from shop.modules.catalog.adapters.inbound.product_controller import (
    router as products_router,
)

app = FastAPI(title="Shop")

# Plain HTTP routers.
app.include_router(products_router, prefix="/products")
app.include_router(invoices_router)  # mounted last: see ADR-7


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
