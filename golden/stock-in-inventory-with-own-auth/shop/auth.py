"""The shop's own authentication: a signed session cookie."""

from typing import Annotated

from fastapi import Cookie, HTTPException, status


async def current_user_id(session: Annotated[str | None, Cookie()] = None) -> str:
    if session is None or not session.startswith("user:"):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Sign in first.")
    return session.removeprefix("user:")
