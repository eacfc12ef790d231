"""Who is asking: the user id carried by a JWT, read through `fastapi.security`.

A browser's `EventSource` cannot send headers, so besides `Authorization: Bearer <token>` the
token is also read from the `access_token` cookie or the `access_token` query parameter; all
three are security schemes of the OpenAPI document. Query strings end up in access logs: prefer
the cookie where you can, and keep tokens short-lived.
"""

from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, status
from fastapi.security import APIKeyCookie, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from fastapi_pg_sse.realtime import Realtime, get_realtime
from fastapi_pg_sse.settings import RealtimeSettings

TOKEN_NAME = "access_token"
"""The cookie and the query parameter that may carry the token."""

_bearer = HTTPBearer(
    scheme_name="bearerToken", auto_error=False, description="A JWT whose `sub` is the user id."
)
_cookie = APIKeyCookie(
    name=TOKEN_NAME,
    scheme_name="tokenCookie",
    auto_error=False,
    description="The JWT, for a browser's EventSource.",
)
_query = APIKeyQuery(
    name=TOKEN_NAME,
    scheme_name="tokenQuery",
    auto_error=False,
    description="The JWT, where a cookie cannot be used (query strings are logged).",
)


@dataclass(frozen=True)
class AuthenticatedUser:
    """The caller of a stream route, as its credentials tell."""

    id: str
    expires_at: float | None = None
    """When the credentials expire, as a Unix time: the user's streams end then."""


def verify_token(token: str, settings: RealtimeSettings) -> AuthenticatedUser:
    """The token's user; raise `jwt.PyJWTError` if the token must not be trusted."""
    if settings.jwt_key is None:
        raise RuntimeError(settings.missing_jwt_key())
    claims = jwt.decode(
        token,
        settings.jwt_key.get_secret_value(),
        algorithms=list(settings.jwt_algorithms),
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        options={"require": ["exp", "sub"]},
    )
    return AuthenticatedUser(id=str(claims["sub"]), expires_at=float(claims["exp"]))


async def authenticated_user(
    realtime: Annotated[Realtime, Depends(get_realtime)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
    query: Annotated[str | None, Depends(_query)],
) -> AuthenticatedUser:
    """The caller, from the first token found; 401 with `WWW-Authenticate` otherwise."""
    token = (bearer.credentials if bearer else None) or cookie or query
    if not token:
        raise _unauthorized('Bearer realm="realtime"')
    try:
        return verify_token(token, realtime.settings)
    except jwt.PyJWTError as error:
        raise _unauthorized('Bearer realm="realtime", error="invalid_token"') from error


def _unauthorized(challenge: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="A valid bearer token is required.",
        headers={"WWW-Authenticate": challenge},
    )


CurrentUser = Annotated[AuthenticatedUser, Depends(authenticated_user)]
"""The caller of a stream route, authenticated by a JWT."""
