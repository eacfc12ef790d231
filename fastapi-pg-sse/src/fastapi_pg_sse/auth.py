"""Who is asking: the user id carried by a JWT, read through `fastapi.security`.

Every route that uses `CurrentUser` reads the token from `Authorization: Bearer` (the scheme
word is `REALTIME_AUTH_SCHEME`'s). A browser's `EventSource` cannot send headers, so stream
routes (GET routes whose response class is `EventStream`) also read it from the `access_token`
cookie, and, when `REALTIME_QUERY_TOKEN` is true, from the `access_token` query parameter.
Other routes never read those two: a browser sends cookies with a cross-site request, and query
strings end up in logs.

A token is accepted if its signature and `exp` are valid, its user claim (`sub`, or
`REALTIME_JWT_USER_CLAIM`) holds a user id, and its audience, issuer and type (`typ` header) are
those of the settings that set them; it must also not be valid for longer than
`jwt_max_lifetime_seconds`.
"""

import logging
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import unquote_plus

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.openapi.models import APIKey, APIKeyIn, HTTPBearer
from fastapi.openapi.models import SecurityBase as SecuritySchemeModel
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie, APIKeyQuery
from fastapi.security.base import SecurityBase
from fastapi.security.utils import get_authorization_scheme_param

from fastapi_pg_sse.channel import user_id_problem
from fastapi_pg_sse.realtime import Realtime, get_realtime, groups_problem, is_event_stream
from fastapi_pg_sse.settings import RealtimeSettings, TokenFormat

TOKEN_NAME = "access_token"
"""The cookie and the query parameter that may carry the token to a stream route."""
QUERY_TOKEN_SCHEME = "tokenQuery"
"""The name of the security scheme of the `access_token` query parameter, in the documents."""
_REDACTED = "[redacted]"
"""What uvicorn's access log shows instead of a token sent in the query string."""


class _AuthorizationHeader(SecurityBase):
    """The `Authorization` header's value, whatever its scheme word: `authenticated_user` takes
    the token only after the word of the settings in force.

    Documented as `REALTIME_AUTH_SCHEME` and `REALTIME_JWT_USER_CLAIM` in the environment say,
    read as the OpenAPI document is built: `Bearer` as HTTP bearer authentication, any other
    word as an API key in the `Authorization` header, which the docs' Authorize dialog sends as
    typed, word included (Swagger UI supports no HTTP scheme but Basic and Bearer).
    """

    @property
    def model(self) -> SecuritySchemeModel:  # type: ignore[override]  # read from the environment
        token_format = TokenFormat()
        description = (
            f"A JWT whose `{token_format.jwt_user_claim}` claim is the user id: accepted by every"
            " route that needs one."
        )
        if token_format.uses_bearer_scheme:
            return HTTPBearer(description=description)
        return APIKey.model_validate(
            {
                "in": APIKeyIn.header,
                "name": "Authorization",
                "description": f"`{token_format.auth_scheme} <JWT>`, the word included."
                f" {description}",
            }
        )

    @property
    def scheme_name(self) -> str:  # type: ignore[override]
        return "bearerToken" if TokenFormat().uses_bearer_scheme else "authorizationHeader"

    async def __call__(self, request: Request) -> str | None:
        return request.headers.get("Authorization")


_authorization = _AuthorizationHeader()
_cookie = APIKeyCookie(
    name=TOKEN_NAME,
    scheme_name="tokenCookie",
    auto_error=False,
    description="The JWT, for a browser's EventSource: accepted by stream routes only (set it"
    " HttpOnly, Secure, SameSite=Strict or Lax).",
)
_query = APIKeyQuery(
    name=TOKEN_NAME,
    scheme_name=QUERY_TOKEN_SCHEME,
    auto_error=False,
    description="The JWT, where a cookie cannot be used: accepted by stream routes only, and only"
    " when the server sets REALTIME_QUERY_TOKEN=true (off by default: query strings are logged).",
)


@dataclass(frozen=True)
class AuthenticatedUser:
    """The caller of a stream route, as its credentials tell."""

    id: str
    expires_at: float | None = None
    """When the credentials expire, as a Unix time: the user's streams end then."""
    issued_at: float | None = None
    """When the credentials were issued (a JWT's `iat`), as a Unix time: a stream whose token
    was issued before the user's streams were revoked is refused (see `Realtime.disconnect`)."""
    groups: frozenset[str] = frozenset()
    """The groups the credentials say the user is a member of (the claim
    `REALTIME_JWT_GROUPS_CLAIM` names): their events reach the user's streams."""


def verify_token(
    token: str, settings: RealtimeSettings, *, refuse_bad_groups: bool = True
) -> AuthenticatedUser:
    """The token's user; raise `jwt.PyJWTError` if the token must not be trusted. A groups claim
    that holds no group names refuses the token only if `refuse_bad_groups` (not when the app's
    `groups` function says the groups: it may read `user.groups`, or ignore a claim it does not
    use); otherwise the user is in no group by the token."""
    if settings.jwt_key is None:
        raise RuntimeError(settings.missing_jwt_key())
    decoded = jwt.decode_complete(
        token,
        settings.jwt_key.get_secret_value(),
        algorithms=list(settings.jwt_algorithms),
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        options={
            "require": ["exp", settings.jwt_user_claim],
            "enforce_minimum_key_length": True,
        },
    )
    claims: dict[str, Any] = decoded["payload"]
    if settings.jwt_type is not None:
        _check_type(decoded["header"].get("typ"), settings.jwt_type)
    _check_lifetime(claims, settings.jwt_max_lifetime_seconds)
    user_id = _user_id(claims[settings.jwt_user_claim], settings.jwt_user_claim)
    issued_at = claims.get("iat")
    return AuthenticatedUser(
        id=user_id,
        expires_at=float(claims["exp"]),
        issued_at=float(issued_at) if isinstance(issued_at, int | float) else None,
        groups=_claimed_groups(claims, settings.jwt_groups_claim, refuse=refuse_bad_groups),
    )


class UnusableUserId(jwt.InvalidTokenError):
    """The token's user claim holds no user id a stream can serve, or its groups claim no group
    names: the 401 says why."""


def _user_id(value: object, claim: str) -> str:
    """The user id `claim` holds: a non-empty string as it is, an integer (many services number
    their users) as its decimal digits, if it is one a stream can serve (`user_id_problem`).
    Anything else would name no user, or, as an empty string, the same one for every token that
    carries it."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # a JSON integer too long for this is refused by PyJWT already
    if not isinstance(value, str):
        raise UnusableUserId(
            f"the token's {claim} claim is not a user id (a non-empty string or an integer)"
        )
    if problem := user_id_problem(value):
        raise UnusableUserId(f"the token's {claim} claim is not a user id: it {problem}")
    return value


def _claimed_groups(claims: dict[str, Any], claim: str, *, refuse: bool) -> frozenset[str]:
    """The group names `claim` holds: a list of names a stream can serve (`groups_problem`); for
    anything else `UnusableUserId` if `refuse`, else no group."""
    value = claims.get(claim, [])
    if not isinstance(value, list):
        problem: str | None = f"the token's {claim} claim is not a list of group names"
    elif found := groups_problem(value):
        problem = f"the token's {claim} claim is refused: {found}"
    else:
        return frozenset(value)
    if refuse:
        raise UnusableUserId(problem)
    return frozenset()


def _check_type(typ: object, expected: str) -> None:
    """Refuse a token whose `typ` header is not `expected`: one minted for another purpose."""
    if not isinstance(typ, str) or _media_type(typ) != _media_type(expected):
        raise jwt.InvalidTokenError(f"the token's type (typ) is not {expected}")


def _media_type(typ: str) -> str:
    """`typ` as RFC 7515 §4.1.9 compares it: case-insensitive, `application/` implied."""
    lowered = typ.lower()
    return lowered if "/" in lowered else f"application/{lowered}"


def _check_lifetime(claims: dict[str, Any], max_lifetime_seconds: int) -> None:
    """Refuse a token valid for longer than `max_lifetime_seconds` from its `iat` (from now
    without one): a leaked long-lived token would stay usable that long."""
    issued_at = float(claims.get("iat", time.time()))
    if float(claims["exp"]) - issued_at > max_lifetime_seconds:
        raise jwt.InvalidTokenError(f"the token is valid for longer than {max_lifetime_seconds} s")


def jwt_key_problem(settings: RealtimeSettings) -> str | None:
    """Why the settings' key cannot verify tokens of each of their algorithms (it is missing,
    the algorithm is unknown, PyJWT cannot load the key for it, or the key is shorter than it
    requires, such as an RSA key below 2048 bits), or None when it can."""
    if settings.jwt_key is None:
        return settings.missing_jwt_key()
    key = settings.jwt_key.get_secret_value()
    variable = "REALTIME_JWT_PUBLIC_KEY" if settings.uses_public_key else "REALTIME_JWT_SECRET"
    for name in settings.jwt_algorithms:
        try:
            algorithm = jwt.PyJWS().get_algorithm_by_name(name)
            problem = algorithm.check_key_length(algorithm.prepare_key(key))
        except NotImplementedError:
            problem = "PyJWT does not implement this algorithm"
        except (jwt.InvalidKeyError, ValueError, TypeError):
            problem = "PyJWT cannot load it as a key of this algorithm"
        if problem:
            return f"{variable} cannot verify {name} tokens: {problem}"
    return None


async def authenticated_user(
    request: Request,
    realtime: Annotated[Realtime, Depends(get_realtime)],
    authorization: Annotated[str | None, Depends(_authorization)],
    cookie: Annotated[str | None, Depends(_cookie)],
    query: Annotated[str | None, Depends(_query)],
) -> AuthenticatedUser:
    """The caller, from the first token this route accepts; 401 with `WWW-Authenticate`
    otherwise. A cookie or query token sent to a route that does not accept it, or an
    `Authorization` header of another scheme, counts as no token."""
    settings = realtime.settings
    scheme, credentials = get_authorization_scheme_param(authorization)
    token = credentials if scheme.lower() == settings.auth_scheme.lower() else None
    if not token and request.method == "GET" and _is_stream_route(request.scope.get("route")):
        token = cookie or (query if settings.query_token else None)
    challenge = f'{settings.auth_scheme} realm="realtime"'
    if not token:
        raise _unauthorized(challenge)
    try:
        return verify_token(token, settings, refuse_bad_groups=realtime.groups_of is None)
    except UnusableUserId as error:
        raise _unauthorized(f'{challenge}, error="invalid_token"', f"{error}.") from error
    except jwt.PyJWTError as error:
        raise _unauthorized(f'{challenge}, error="invalid_token"') from error


async def token_user_if_configured(
    request: Request,
    realtime: Annotated[Realtime, Depends(get_realtime)],
    authorization: Annotated[str | None, Depends(_authorization)],
    cookie: Annotated[str | None, Depends(_cookie)],
    query: Annotated[str | None, Depends(_query)],
) -> AuthenticatedUser:
    """`authenticated_user`, for the multiplexed route by default: in an app that authenticates
    with a dependency of its own, and so sets no JWT key, the route answers 404 rather than
    keep the app from starting (pass `create_realtime_router(user=...)` to serve it)."""
    if not realtime.verifies_tokens:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            "Not served: the app verifies no token (it sets no JWT key) and gave"
            " create_realtime_router no user dependency.",
        )
    return await authenticated_user(request, realtime, authorization, cookie, query)


def _is_stream_route(route: object) -> bool:
    """Whether `route` (a request's `scope["route"]`) is a stream route: a GET route whose
    response class is `EventStream`, as `stream_route` declares it."""
    return (
        isinstance(route, APIRoute)
        and "GET" in (route.methods or ())
        and is_event_stream(route.response_class)
    )


def _unauthorized(challenge: str, why: str = "") -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=f"A valid bearer token is required{': ' + why if why else '.'}",
        headers={"WWW-Authenticate": challenge},
    )


class AccessLogTokenFilter(logging.Filter):
    """Replaces the value of the `access_token` query parameter with `[redacted]` in the
    request lines of uvicorn's access log (logger `uvicorn.access`, whose records carry the
    path and query as their third argument), whether or not the server accepts it: a token
    sent in the query is a credential either way."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], _redacted_query_token(args[2]), *args[3:])
        return True


def _redacted_query_token(path: str) -> str:
    """`path` (with its query string) with the value of each `access_token` parameter
    replaced, however its name is percent-encoded (Starlette decodes it)."""
    route, question_mark, query = path.partition("?")
    if not question_mark:
        return path
    fields = [_redacted_field(field) for field in query.split("&")]
    return f"{route}?{'&'.join(fields)}"


def _redacted_field(field: str) -> str:
    name, equals, _ = field.partition("=")
    return f"{name}={_REDACTED}" if equals and unquote_plus(name) == TOKEN_NAME else field


CurrentUser = Annotated[AuthenticatedUser, Depends(authenticated_user)]
"""The caller, authenticated by a JWT: from the `Authorization` header, or on a stream route
also from the `access_token` cookie (and query parameter, when enabled)."""
