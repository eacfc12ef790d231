from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from app.api.main import api_router
from app.core.config import settings

app = FastAPI(title=settings.PROJECT_NAME, openapi_url=f"{settings.API_V1_STR}/openapi.json")


@app.exception_handler(HTTPException)
async def http_exception_handler(request: Request, exc: HTTPException) -> JSONResponse:
    """Every error as {"detail": ...}, with the headers the exception carries."""
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


app.include_router(api_router, prefix=settings.API_V1_STR)
