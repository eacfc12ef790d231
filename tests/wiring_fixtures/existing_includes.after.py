from fastapi import FastAPI

from shop.modules.billing.adapters.inbound.invoice_controller import (
    router as invoices_router,
)
from shop.modules.catalog.adapters.inbound.price_sse_controller import (
    router as catalog_price_sse_router,
)
from shop.modules.catalog.adapters.inbound.product_controller import (
    router as products_router,
)
from shop.modules.inventory.adapters.inbound.stock_sse_controller import (
    router as inventory_stock_sse_router,
)

app = FastAPI(title="Shop")

# Plain HTTP routers.
app.include_router(products_router, prefix="/products")
app.include_router(invoices_router)  # mounted last: see ADR-7
app.include_router(inventory_stock_sse_router)
app.include_router(catalog_price_sse_router)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
