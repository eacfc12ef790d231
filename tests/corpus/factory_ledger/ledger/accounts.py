"""The accounts API."""

from fastapi import APIRouter

router = APIRouter(prefix="/accounts", tags=["accounts"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
