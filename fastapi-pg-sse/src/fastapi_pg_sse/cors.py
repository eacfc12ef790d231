"""Streams opened by pages of other origins: Starlette's CORS, for the origins of the settings.

With `REALTIME_CORS_ORIGINS=https://app.example.com`:

    app.add_middleware(RealtimeCORSMiddleware)
"""

from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from fastapi_pg_sse.settings import RealtimeSettings


class RealtimeCORSMiddleware:
    """Lets the pages of `REALTIME_CORS_ORIGINS` open streams with their cookies or an
    `Authorization` header, and resume with `Last-Event-ID`. A request from another origin, and
    every request when no origin is set, passes through untouched: no CORS header at all.

    The settings are read when the app builds its middleware, as it starts, unless given.
    """

    def __init__(self, app: ASGIApp, settings: RealtimeSettings | None = None) -> None:
        self.app = app
        self._origins: frozenset[str] = frozenset()
        self._invalid_settings: ValidationError | None = None
        try:
            origins = (settings or RealtimeSettings()).cors_origins  # type: ignore[call-arg]
        except ValidationError as error:
            # Raised now, before the lifespan began, uvicorn would take the app for one without
            # a lifespan, and serve it: the kernel's lifespan refuses to start with this error.
            self._invalid_settings = error
            return
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
        allowed = scope["type"] == "http" and Headers(scope=scope).get("origin") in self._origins
        await (self._cors if allowed else self.app)(scope, receive, send)
