"""The demo's app: the shop's app, mounted unchanged, under what only the demo wants.

`./scripts/demo` serves it as `demo.app:app` from the generated project's folder (uvicorn's
working directory, where `shop` and `frontend/` are). Never serve it in production: its sign-in
mints a token for any user name. It lives in the repository's demo tooling, not in the shop:
`shop.main:app` has no demo route whatever of the shop a deployment imports, and the shop's
wheel holds no demo code.

Around the shop's app it adds a sign-in (a token with a lifetime of your choice and the team of
your choice in its `groups` claim, in the body for pages that send it in a header, and as the
stream cookie for pages that do not), a button route that adds to the caller's basket (the table's
trigger emits the stock event to the caller), one that posts a notice to the caller's team (the
table's trigger emits it to the team's members), the page in `frontend/`, and CORS for the
origins of `REALTIME_CORS_ORIGINS`.
"""

import importlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.staticfiles import StaticFiles
from fastapi_pg_sse import CurrentUser, Realtime, RealtimeCORSMiddleware, get_realtime
from fastapi_pg_sse.realtime import is_event_stream
from pydantic import BaseModel

from demo.project import TOKEN_TYPE

SHOP_MODULE = "shop.main"
"""Where the shop's app is (`app`, as its `[tool.scaffold] app` says)."""
FRONTEND = Path("frontend")
"""The page, in the project's folder, with its script compiled from TypeScript."""
TOKEN_COOKIE = "access_token"
"""The cookie the runtime's stream routes (and only they) read the token from."""
STREAM_PATH = "/realtime/stream"
"""The runtime's multiplexed stream route, which the page reads every channel from: the
cookie's `Path`."""
NAME = "^[a-z][a-z0-9_-]{0,31}$"
"""A user or team name the sign-in accepts."""

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Mapping[str, Any]]]


class SignedIn(BaseModel):
    access_token: str
    expires_in: int


class Basket(BaseModel):
    id: int
    stock: int


class Notice(BaseModel):
    id: int
    team: str


def shop_app(request: Request) -> FastAPI:
    """The shop's app, whose lifespan put its pool and its kernel in its state."""
    shop: FastAPI = request.app.state.shop
    return shop


def shop_kernel(shop: Annotated[FastAPI, Depends(shop_app)]) -> Realtime:
    """`get_realtime` for the demo's routes (`CurrentUser`'s too): the shop's kernel."""
    realtime: Realtime = shop.state.realtime
    return realtime


router = APIRouter(prefix="/demo", tags=["demo"])


@router.post("/sign-in")
def sign_in(
    realtime: Annotated[Realtime, Depends(get_realtime)],
    request: Request,
    response: Response,
    user: Annotated[str, Query(pattern=NAME)],
    team: Annotated[str | None, Query(pattern=NAME)] = None,
    lifetime: Annotated[int, Query(ge=1, le=3600)] = 600,
    cookie: bool = True,
) -> SignedIn:
    """A token for `user`, member of `team` (default: a team of their own), valid `lifetime`
    seconds; also as the stream cookie if asked: sent to the stream route only, gone when the
    token expires, never read by a script, never sent by another site's request, and over https
    only when served over https."""
    key = realtime.settings.jwt_key
    if key is None:
        raise RuntimeError(realtime.settings.missing_jwt_key())
    now = int(time.time())
    groups = [team or f"{user}-team"]  # the runtime reads a user's groups from this claim
    claims = {"sub": user, "groups": groups, "iat": now, "exp": now + lifetime}
    token = jwt.encode(
        claims,
        key.get_secret_value(),
        algorithm=realtime.settings.jwt_algorithms[0],
        headers={"typ": TOKEN_TYPE},
    )
    if cookie:
        response.set_cookie(
            TOKEN_COOKIE,
            token,
            max_age=lifetime,
            path=request.app.state.streams_path,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
    return SignedIn(access_token=token, expires_in=lifetime)


@router.post("/basket")
async def add_to_basket(user: CurrentUser, shop: Annotated[FastAPI, Depends(shop_app)]) -> Basket:
    """Add one to the caller's basket (made on first use), in the shop's pool: the trigger
    emits. The token comes in the `Authorization` header: the cookie authenticates stream
    routes only."""
    async with shop.state.pool.acquire() as connection:
        row = await connection.fetchrow(
            "UPDATE baskets SET stock = stock + 1 WHERE id ="
            " (SELECT min(id) FROM baskets WHERE user_id = $1) RETURNING id, stock",
            user.id,
        ) or await connection.fetchrow(
            "INSERT INTO baskets (user_id, stock) VALUES ($1, 1) RETURNING id, stock",
            user.id,
        )
    return Basket(id=row["id"], stock=row["stock"])


@router.post("/notice")
async def post_notice(user: CurrentUser, shop: Annotated[FastAPI, Depends(shop_app)]) -> Notice:
    """Post a notice to the caller's team (the first of their token's groups): the trigger
    emits it to every member of the team."""
    team = min(user.groups)
    async with shop.state.pool.acquire() as connection:
        notice_id = await connection.fetchval(
            "INSERT INTO notices (team_id, body) VALUES ($1, $2) RETURNING id",
            team,
            f"{user.id} says hello to {team}",
        )
    return Notice(id=notice_id, team=team)


def home() -> RedirectResponse:
    return RedirectResponse("/demo/")


def create_app(shop: FastAPI, frontend: Path) -> FastAPI:
    """The demo's routes and page, with `shop` mounted at the root for every other path."""
    app = FastAPI(title="Shop demo", lifespan=_running(shop), openapi_url=None)
    app.state.shop = shop
    app.state.streams_path = streams_path(shop)
    app.dependency_overrides[get_realtime] = shop_kernel
    app.include_router(router)
    for path in ("/", "/demo"):
        app.add_api_route(path, home, include_in_schema=False)
    app.mount("/demo", StaticFiles(directory=frontend, html=True), name="demo")
    app.mount("/", shop)
    app.add_middleware(RealtimeCORSMiddleware)
    return app


def _running(shop: FastAPI) -> Lifespan:
    """The demo's lifespan: the shop's, which Starlette does not run for a mounted app (its
    pool, and its realtime router's kernel), and whatever state it gives requests."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[Mapping[str, Any]]:
        async with shop.router.lifespan_context(shop) as state:
            yield state or {}

    return lifespan


def streams_path(shop: FastAPI) -> str:
    """The path of the shop's multiplexed stream route, which the page reads: the cookie's
    `Path`."""
    for context in iter_route_contexts(shop.routes):
        route = context.original_route
        if (
            context.path == STREAM_PATH
            and isinstance(route, APIRoute)
            and is_event_stream(route.response_class)
        ):
            return STREAM_PATH
    raise RuntimeError(f"{SHOP_MODULE}:app has no stream route at {STREAM_PATH}: add a channel")


def _shop_app() -> FastAPI:
    shop = importlib.import_module(SHOP_MODULE).app
    if not isinstance(shop, FastAPI):
        raise TypeError(f"{SHOP_MODULE}:app is not a FastAPI application")
    return shop


app = create_app(_shop_app(), FRONTEND.resolve())
