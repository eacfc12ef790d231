"""The shop's live demo: the shop's app plus what only a demo wants.

`./scripts/demo` serves it as `shop.demo:app`; never serve it in production: it signs
anyone in. It adds a sign-in that mints a token for any user name, with a lifetime of
your choice (a cookie, and the token in the body for pages that send it in a header), a
button route that changes the caller's basket (the table's trigger emits the stock
event), the page in `frontend/`, and the origins of `REALTIME_CORS_ORIGINS`.
"""

import time
from pathlib import Path
from typing import Annotated

import jwt
from fastapi import Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi_pg_sse import CurrentUser, Realtime, RealtimeCORSMiddleware, get_realtime
from pydantic import BaseModel

from .main import app

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"
"""The page, and its script compiled from TypeScript (`tsc --project frontend`)."""


class SignedIn(BaseModel):
    access_token: str
    expires_in: int


class Basket(BaseModel):
    id: int
    stock: int


@app.post("/demo/sign-in", tags=["demo"])
def sign_in(
    realtime: Annotated[Realtime, Depends(get_realtime)],
    response: Response,
    user: Annotated[str, Query(pattern="^[a-z][a-z0-9_-]{0,31}$")],
    lifetime: Annotated[int, Query(ge=1, le=3600)] = 600,
    cookie: bool = True,
) -> SignedIn:
    """A token for `user`, valid `lifetime` seconds; also as the cookie if asked."""
    key = realtime.settings.jwt_key
    if key is None:
        raise RuntimeError(realtime.settings.missing_jwt_key())
    claims = {"sub": user, "exp": int(time.time()) + lifetime}
    token = jwt.encode(
        claims, key.get_secret_value(), algorithm=realtime.settings.jwt_algorithms[0]
    )
    if cookie:
        response.set_cookie(
            "access_token", token, max_age=lifetime, httponly=True, samesite="strict"
        )
    return SignedIn(access_token=token, expires_in=lifetime)


@app.post("/demo/basket", tags=["demo"])
async def add_to_basket(user: CurrentUser, request: Request) -> Basket:
    """Add one to the caller's basket (made on first use): the trigger emits."""
    async with request.app.state.pool.acquire() as connection:
        row = await connection.fetchrow(
            "UPDATE baskets SET stock = stock + 1 WHERE id ="
            " (SELECT min(id) FROM baskets WHERE user_id = $1) RETURNING id, stock",
            user.id,
        ) or await connection.fetchrow(
            "INSERT INTO baskets (user_id, stock) VALUES ($1, 1) RETURNING id, stock",
            user.id,
        )
    return Basket(id=row["id"], stock=row["stock"])


@app.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/demo/")


app.mount("/demo", StaticFiles(directory=FRONTEND, html=True), name="demo")
app.add_middleware(RealtimeCORSMiddleware)
