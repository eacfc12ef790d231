"""Streams opened by pages of other origins: Starlette's CORS, for the origins of the settings,
on the app's stream routes only.

With `REALTIME_CORS_ORIGINS=https://app.example.com`:

    app.add_middleware(RealtimeCORSMiddleware)
"""

import ipaddress
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from fastapi_pg_sse.realtime import is_event_stream
from fastapi_pg_sse.settings import RealtimeSettings

logger = logging.getLogger(__name__)


class RealtimeCORSMiddleware:
    """Lets the pages of `REALTIME_CORS_ORIGINS` open streams with their cookies or an
    `Authorization` header, and resume with `Last-Event-ID`. Only requests to a stream route
    (`response_class=EventStream`, in the app, a router it includes or an app it mounts), and the
    preflights announcing one, get CORS headers. Any other request (another route, another
    origin, every request when no origin is set) passes through untouched: no CORS header at all.

    The settings are read when the app builds its middleware, as it starts, unless given; an
    `http://` origin off the loopback interface is then logged as a warning. The stream routes are
    those the app has when a listed origin first calls it.
    """

    def __init__(self, app: ASGIApp, settings: RealtimeSettings | None = None) -> None:
        self.app = app
        self._origins: frozenset[str] = frozenset()
        self._invalid_settings: ValidationError | None = None
        self._stream_routes: tuple[object, StreamRoutes] | None = None
        try:
            origins = (settings or RealtimeSettings()).cors_origins  # type: ignore[call-arg]
        except ValidationError as error:
            # Raised now, before the lifespan began, uvicorn would take the app for one without
            # a lifespan, and serve it: the kernel's lifespan refuses to start with this error.
            self._invalid_settings = error
            return
        _warn_of_plain_http(origins)
        self._origins = frozenset(origins)
        self._cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_credentials=True,
            allow_methods=["GET"],
            allow_headers=["Authorization", "Last-Event-ID"],
            expose_headers=["Retry-After", "WWW-Authenticate"],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if self._invalid_settings is not None:
            raise self._invalid_settings
        await (self._cors if self._allowed(scope) else self.app)(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        """Whether `scope` is a request of a listed origin to a stream route."""
        if scope["type"] != "http":
            return False
        headers = Headers(scope=scope)
        if headers.get("origin") not in self._origins:
            return False
        return self._streams_of(scope.get("app")).serve(_announced(scope, headers))

    def _streams_of(self, app: object) -> "StreamRoutes":
        """The stream routes of `app` (the application the middleware runs in: Starlette sets
        `scope["app"]` before its middleware), found once, on its first request that needs them.
        """
        if self._stream_routes is None or self._stream_routes[0] is not app:
            self._stream_routes = (app, StreamRoutes.of(getattr(app, "routes", ())))
        return self._stream_routes[1]


@dataclass(frozen=True)
class StreamRoutes:
    """The routes of an app that lead to a stream: its stream routes (those of the routers it
    includes too), and its mounts that hold some, each with the stream routes of what it mounts.
    """

    routes: tuple[RouteContext, ...]
    mounts: tuple[tuple[Mount, "StreamRoutes"], ...]

    @classmethod
    def of(cls, routes: Sequence[BaseRoute]) -> "StreamRoutes":
        contexts = list(iter_route_contexts(routes))
        mounts = []
        for context in contexts:
            if isinstance(context.route, Mount):
                inner = cls.of(context.route.routes)
                if inner.routes or inner.mounts:
                    mounts.append((context.route, inner))
        return cls(tuple(filter(_is_stream, contexts)), tuple(mounts))

    def serve(self, scope: Scope) -> bool:
        """Whether one of these routes serves the request of `scope`, its path and method."""
        if any(route.matches(scope)[0] is Match.FULL for route in self.routes):
            return True
        for mount, inner in self.mounts:
            match, child_scope = mount.matches(scope)
            if match is Match.FULL and inner.serve({**scope, **child_scope}):
                return True
        return False


def _is_stream(context: RouteContext) -> bool:
    """Whether the route streams: an API route whose response class is `EventStream`."""
    return isinstance(context.original_route, APIRoute) and is_event_stream(context.response_class)


def _announced(scope: Scope, headers: Headers) -> Scope:
    """The request a route will see: for a preflight, the one it announces (its method)."""
    method = headers.get("access-control-request-method")
    if scope["method"] == "OPTIONS" and method:
        return {**scope, "method": method}
    return scope


def _warn_of_plain_http(origins: Iterable[str]) -> None:
    """Warn of each `http://` origin that is not on the loopback interface: anyone on the
    network can change its pages on the way, and their scripts read the streams with the
    user's credentials."""
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme.lower() == "http" and not _is_loopback(parts.hostname or ""):
            logger.warning(
                "REALTIME_CORS_ORIGINS allows %r over plain HTTP: its pages read streams with"
                " the user's credentials, and anyone on the network can change those pages on"
                " the way; serve them over https://",
                origin,
            )


def _is_loopback(host: str) -> bool:
    """Whether `host` (as `urlsplit` gives it: lower case, an IPv6 address unbracketed) names
    this machine: `localhost`, 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
