"""What any FastAPI service of this kind has before its stream route: its settings, a JWT check
with pyjwt, and one asyncpg connection that LISTENs for events and hands each to the hub.

The peers share it so that they differ only in their hub and route, the part under test.
"""

import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
import jwt
from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

JWT_SECRET = os.environ["JWT_SECRET"]
Event = dict[str, Any]
"""A notification's payload: {"id", "type", "target_user_id", "data"}."""

bearer = HTTPBearer()


def current_user(
    credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)],
) -> str:
    """The `sub` of a valid HS256 token, else a 401."""
    try:
        claims = jwt.decode(credentials.credentials, JWT_SECRET, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"}
        ) from None
    user: str = claims["sub"]
    return user


CurrentUser = Annotated[str, Depends(current_user)]


def peer_app(publish: Callable[[Event], None]) -> FastAPI:
    """An app that LISTENs on PEER_CHANNEL while it runs and calls `publish` with each event,
    decoded once; /health answers once it listens."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        connection = await asyncpg.connect(os.environ["DATABASE_URL"])
        await connection.add_listener(
            os.environ["PEER_CHANNEL"],
            lambda _connection, _pid, _channel, payload: publish(json.loads(payload)),
        )
        yield
        await connection.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
