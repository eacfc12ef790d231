"""What an application includes once (`create_realtime_router`), what declares a stream route
(`stream_route`), and what a stream route depends on (`Streams`: the kernel, and where the
caller resumes from).
"""

import inspect
import logging
import re
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.concurrency import run_in_threadpool

from fastapi_pg_sse.asyncapi import (
    record_stream_route,
    serve_asyncapi_document,
    stream_route_contexts,
    streamed_channels,
)
from fastapi_pg_sse.auth import (
    AccessLogTokenFilter,
    AuthenticatedUser,
    authenticated_user,
    jwt_key_problem,
    token_user_if_configured,
)
from fastapi_pg_sse.channel import Channel, user_id_problem
from fastapi_pg_sse.openapi import (
    STREAM_OPENAPI,
    multiplexed_openapi,
    multiplexed_responses,
    stream_responses,
    with_401,
)
from fastapi_pg_sse.realtime import EventStream, Realtime, get_realtime, groups_problem
from fastapi_pg_sse.settings import RealtimeSettings

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])

GroupsOf = Callable[[AuthenticatedUser, Request], Iterable[str] | Awaitable[Iterable[str]]]
"""The app's function that says a user's groups: `groups_of(user, request)`, sync or async."""

Authorize = Callable[[AuthenticatedUser, Channel[Any], Request], bool | Awaitable[bool]]
"""The app's function that says whether a caller may read a channel on the multiplexed route:
`authorize(user, channel, request)`, sync or async."""

logger = logging.getLogger(__name__)

_EVENT_ID = re.compile(r"[0-9]{1,18}")
"""An id of a `bigint` identity column, in ASCII digits (`str.isdigit` also takes '²')."""


def create_realtime_router(
    channels: Sequence[Channel[Any]] = (),
    *,
    settings: RealtimeSettings | None = None,
    asyncapi_url: str | None = "/asyncapi.json",
    stream_url: str | None = "/realtime/stream",
    user: Callable[..., Any] | None = None,
    groups: GroupsOf | None = None,
    authorize: Authorize | None = None,
) -> APIRouter:
    """The router to include once in the app, with the app's stream routes: its lifespan runs
    the kernel, one LISTEN connection for every channel, and keeps tokens sent in query
    strings out of uvicorn's access log.

    `channels`, if given, are the only ones its streams may open. Settings are read from the
    environment when the app starts, unless given. The app's AsyncAPI document is served at
    `asyncapi_url` (None: not served), unless the app hides its OpenAPI document.

    `stream_url` (None: not served) is the multiplexed route, `?channels=<name>,<name>`: one
    stream of the caller's events on several channels, of the channels given here, or, if none
    are, of the app's `stream_route`s; `user` is the dependency that gives its caller
    (`AuthenticatedUser` or a user id; by default `CurrentUser`'s, and, in an app that verifies
    no token, the route is neither served nor documented). `groups`, if given,
    says the groups of the caller of every stream route, each time a stream opens or resumes,
    instead of the token's groups claim; an exception it raises answers the request.

    The multiplexed route does not run the dependencies of each channel's own stream route: by
    default it serves only the channels that have a stream route that depends on nothing but
    the caller's authentication and `Streams` (a 403 names the others, guarded by their route's
    dependencies). `authorize`, if given, decides instead, for every channel requested, each
    time the route opens a stream: False is a 403 naming the channel.
    """
    caller = user or token_user_if_configured

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings_in_force = settings or RealtimeSettings()  # type: ignore[call-arg]
        if _depends_on(app, authenticated_user):
            _check_token_settings(settings_in_force)
        realtime = Realtime(settings_in_force, channels)
        realtime.groups_of = groups
        realtime.verifies_tokens = jwt_key_problem(settings_in_force) is None
        # Given channels are the only ones a stream may open; else, those of the stream routes.
        served = {channel.name: channel for channel in channels or streamed_channels(app)}
        realtime.multiplexed_channels = served
        realtime.multiplexed_guards = (
            {} if authorize is not None else _guards(app, caller, multiplexed)
        )
        if multiplexed is not None:  # its document, now that the app's routes are known
            _document(
                app,
                multiplexed,
                _multiplexed_responses(served.values(), multiplexed),
                # Not served without a user dependency nor a key to verify tokens.
                shown=user is not None or realtime.verifies_tokens,
            )
        await realtime.start()
        app.state.realtime = realtime
        access_log, redaction = logging.getLogger("uvicorn.access"), AccessLogTokenFilter()
        access_log.addFilter(redaction)
        try:
            yield
        finally:
            await realtime.stop()  # its streams' access log lines come as they end
            access_log.removeFilter(redaction)

    router = APIRouter(lifespan=lifespan)
    if asyncapi_url is not None:
        router.add_api_route(
            asyncapi_url, serve_asyncapi_document, methods=["GET"], include_in_schema=False
        )
    multiplexed = (
        None
        if stream_url is None
        else _add_multiplexed_route(router, stream_url, caller, channels, authorize)
    )
    return router


def _add_multiplexed_route(
    router: APIRouter,
    path: str,
    caller: Callable[..., Any],
    channels: Sequence[Channel[Any]],
    authorize: Authorize | None,
) -> APIRoute:
    """Add the multiplexed route, documented with `channels` until the app starts."""

    async def stream_channels(
        request: Request,
        user: Annotated[AuthenticatedUser | str, Depends(caller)],
        streams: Streams,
    ) -> EventStream:
        """The caller's events of every channel `channels` names, in one stream: each event's
        `event` field is `<channel>.<type>`."""
        requested = _requested_channels(request, streams.realtime)
        caller = AuthenticatedUser(user) if isinstance(user, str) else user
        await _check_access(authorize, streams.realtime, caller, requested, request)
        return streams.open(requested, caller)

    router.add_api_route(
        path,
        stream_channels,
        methods=["GET"],
        response_class=EventStream,
        openapi_extra=multiplexed_openapi(),
        summary="Stream the caller's events of several channels",
    )
    route = router.routes[-1]
    assert isinstance(route, APIRoute), "add_api_route adds an APIRoute"
    route.responses = _multiplexed_responses(channels, route)  # no model: nothing to validate
    return route


def _document(app: FastAPI, route: APIRoute, responses: dict[Any, Any], *, shown: bool) -> None:
    """Document `route` of `app` with `responses`, or hide it from the documents: on the route,
    and on the copies FastAPI made of it as its router was included."""
    copies = (
        getattr(context, "_route_context", None)
        for context in iter_route_contexts(app.routes)
        if context.original_route is route
    )
    for documented in (route, *(copy for copy in copies if copy is not None)):
        documented.responses = {**documented.responses, **responses}
        documented.include_in_schema = shown
    app.openapi_schema = None  # one built before would not show it


def _multiplexed_responses(channels: Iterable[Channel[Any]], route: APIRoute) -> dict[Any, Any]:
    responses = multiplexed_responses(list(channels))
    authenticates = any(
        _uses(route.dependant, dependency)
        for dependency in (authenticated_user, token_user_if_configured)
    )
    return with_401(responses) if authenticates else responses


def _requested_channels(request: Request, realtime: Realtime) -> list[Channel[Any]]:
    """The channels `?channels=` names, comma-separated; 400 for none, the parameter given more
    than once, more names than the route serves, an empty or a repeated name, or one the route
    does not serve. Linear in what it reads, which it bounds, and what it echoes is cut short."""
    served = realtime.multiplexed_channels
    given = request.query_params.getlist("channels")
    raw = given[0] if given else ""
    names = raw.split(",", len(served)) if raw else []  # one more than it serves, at most
    problem = None
    if len(given) > 1:
        problem = "channels is given more than once: name every channel in one, comma-separated"
    elif not names:
        problem = "channels must name at least one channel, comma-separated"
    elif len(names) > len(served):
        problem = f"channels names more channels than the {len(served)} this route serves"
    elif "" in names:
        problem = f"channels holds an empty name: {_echo(raw)}"
    elif repeated := sorted(name for name, count in Counter(names).items() if count > 1):
        problem = f"channels names {', '.join(map(_echo, repeated))} more than once"
    elif unknown := [name for name in names if name not in served]:
        problem = (
            f"channels names {', '.join(map(_echo, unknown[:_ECHOED]))}, which this route does"
            f" not serve; it serves: {', '.join(sorted(served)) or 'none'}"
        )
    if problem is not None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{problem}.")
    return [served[name] for name in names]


_ECHOED = 5
"""How many of the names a request got wrong its 400 repeats."""


def _echo(text: str) -> str:
    """Part of a request, repeated in an answer: quoted, and cut short."""
    return repr(text[:64]) + ("..." if len(text) > 64 else "")


async def _check_access(
    authorize: Authorize | None,
    realtime: Realtime,
    user: AuthenticatedUser,
    channels: Sequence[Channel[Any]],
    request: Request,
) -> None:
    """403 for a requested channel the caller may not read on the multiplexed route: one the app's
    `authorize` refuses, else one guarded by its stream route's dependencies, which this route
    does not run."""
    if authorize is None:
        guards = realtime.multiplexed_guards
        if guarded := [channel.name for channel in channels if channel.name in guards]:
            logger.info(
                "realtime multiplexed stream refused guarded channels: %s",
                "; ".join(f"{name} ({guards[name]})" for name in guarded),
            )
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"channels names {', '.join(repr(name) for name in guarded)}, guarded by the"
                " dependencies of its stream route, which this route does not run: it serves a"
                " guarded channel only to the callers that create_realtime_router(authorize=...)"
                " allows.",
            )
        return
    for channel in channels:
        if not await call_app_function(authorize, user, channel, request):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"The caller may not stream {channel.name!r}.",
            )


def _guards(
    app: FastAPI, caller: Callable[..., Any], multiplexed: APIRoute | None
) -> dict[str, str]:
    """What guards each channel of `app` that has stream routes but none that depends on nothing
    the multiplexed route does not run itself: `caller` (its authentication, without scopes),
    the runtime's own dependencies, and those the app or `include_router` gives the multiplexed
    route too. Each route's path and the dependencies it adds, by channel name, for the log."""
    allowed: set[tuple[Any, tuple[str, ...]]] = {
        (call, ()) for call in (caller, stream_opener, get_realtime, last_event_id)
    }
    if caller is token_user_if_configured:
        allowed.add((authenticated_user, ()))  # CurrentUser: the same tokens
    for context in iter_route_contexts(app.routes):
        if multiplexed is not None and context.original_route is multiplexed:
            allowed |= {_requirement(sub) for sub in context.dependant.dependencies}
    guarded: dict[str, list[str]] = {}
    open_channels: set[str] = set()
    for channel, context in stream_route_contexts(app):
        extra = [
            getattr(sub.call, "__name__", repr(sub.call))
            for sub in context.dependant.dependencies
            if _requirement(sub) not in allowed
        ]
        if extra:
            guarded.setdefault(channel.name, []).append(f"{context.path} on {', '.join(extra)}")
        else:
            open_channels.add(channel.name)
    return {
        name: ", ".join(routes) for name, routes in guarded.items() if name not in open_channels
    }


def _requirement(dependency: Dependant) -> tuple[Any, tuple[str, ...]]:
    """A dependency as a guard: what it calls, and the OAuth scopes it requires of the caller
    (`Security(current_user, scopes=[...])` guards what plain `current_user` does not)."""
    return dependency.call, tuple(sorted(dependency.own_oauth_scopes or ()))


async def call_app_function(function: Callable[..., Any], *args: Any) -> Any:
    """What an app's function (`groups`, `authorize`) answers: a sync one runs in the threadpool,
    so that one that blocks (a database read) does not hold the event loop."""
    if inspect.iscoroutinefunction(function):
        answer = function(*args)
    else:
        answer = await run_in_threadpool(function, *args)
    if inspect.isawaitable(answer):
        answer = await answer
    return answer


def _check_token_settings(settings: RealtimeSettings) -> None:
    """Refuse to start without a key that verifies the tokens; warn, once, when any token the
    key signs is accepted, whatever it was minted for."""
    if problem := jwt_key_problem(settings):
        raise RuntimeError(f"{problem}: routes of this app authenticate with CurrentUser")
    if settings.jwt_audience is None and settings.jwt_type is None:
        logger.warning(
            "realtime tokens are checked for neither audience nor type: a token the same key"
            " signs for another purpose (a refresh token, a password-reset link) is accepted;"
            " set REALTIME_JWT_AUDIENCE or REALTIME_JWT_TYPE to refuse them"
        )


def stream_route(
    router: APIRouter, channel: Channel[Any], path: str = "/stream", **options: Any
) -> Callable[[Endpoint], Endpoint]:
    """Declare the decorated function as a GET route of `router` at `path` that streams
    `channel`, documented in `/openapi.json` as it answers:

        @stream_route(router, INVENTORY_STOCK)
        async def stream_stock_events(user: CurrentUser, streams: Streams) -> EventStream:
            return streams.open(INVENTORY_STOCK, user)

    Its 200 lists each event the channel declares with its payload's schema; a route that
    depends on `CurrentUser` (itself, or through its router's dependencies) also documents its
    401, but not one that gets it from `include_router(..., dependencies=...)`, which comes
    later. `options` go to `add_api_route` (`summary`, `dependencies`, ...).
    """

    def declare(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(
            path,
            endpoint,
            methods=["GET"],
            response_class=EventStream,
            responses=stream_responses(channel),
            openapi_extra=STREAM_OPENAPI,
            **options,
        )
        route = router.routes[-1]
        assert isinstance(route, APIRoute), "add_api_route adds an APIRoute"
        record_stream_route(route, channel)
        if _uses(route.dependant, authenticated_user):
            route.responses = with_401(route.responses)
        return endpoint

    return declare


def _depends_on(app: FastAPI, dependency: Callable[..., Any]) -> bool:
    """Whether a route of `app` depends on `dependency`, directly or through another one."""
    return any(_uses(dependant, dependency) for dependant in _route_dependants(app))


def _uses(dependant: Dependant, dependency: Callable[..., Any]) -> bool:
    """Whether `dependant` depends on `dependency`, directly or through another dependency."""
    return dependant.call is dependency or any(
        _uses(sub, dependency) for sub in dependant.dependencies
    )


def _route_dependants(app: FastAPI) -> Iterator[Dependant]:
    """The dependants of every API route of `app`, those of included routers (and the
    dependencies given to `include_router`) too."""
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context.dependant


async def last_event_id(request: Request) -> int | None:
    """The id a reconnecting client saw last: the `Last-Event-ID` header, else the
    `last_event_id` query parameter (a new `EventSource` cannot send the header); 400 if it is
    not one of ours.

    Read from the request rather than declared as parameters, so that FastAPI adds no 422
    (`STREAM_OPENAPI` documents them)."""
    name, value = "Last-Event-ID", request.headers.get("last-event-id")
    if not value:
        name, value = "last_event_id", request.query_params.get("last_event_id")
    if not value:
        return None
    if not _EVENT_ID.fullmatch(value):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{name} must be an event id.")
    return int(value)


@dataclass(frozen=True)
class StreamOpener:
    """Opens the caller's stream of a channel (or several), resuming after the id it received
    last."""

    realtime: Realtime
    last_event_id: int | None
    request: Request

    def open(
        self,
        channel: Channel[Any] | Sequence[Channel[Any]],
        user: AuthenticatedUser | str,
    ) -> EventStream:
        """`user`'s stream; one authenticated by a JWT ends when the token expires. It carries
        the user's groups' events too: those the app's `groups` function says, else the token's.

        A user id no stream can serve (`user_id_problem`), such as one an auth dependency of the
        app's own read from a request, is a 401 that says why, before any database work.
        """
        if isinstance(user, str):
            user = AuthenticatedUser(user)
        if problem := user_id_problem(user.id):
            raise self._unservable(
                f"The user id the app's authentication gave {problem}: no stream can serve it."
            )
        caller = user

        async def groups() -> frozenset[str]:
            return await self._groups(caller)

        return self.realtime.open(
            channel,
            user.id,
            self.last_event_id,
            groups=groups,
            expires_at=user.expires_at,
            issued_at=user.issued_at,
        )

    async def _groups(self, user: AuthenticatedUser) -> frozenset[str]:
        """The groups of `user` now: what the app's function says, else the token's.

        A group no stream can serve is the app's fault, answered 500 and logged. A connection
        error or a timeout it raises (reading memberships from a database that is down) is
        answered as an outage of the runtime's database is: the client comes back after the
        retry hint."""
        groups_of = self.realtime.groups_of
        if groups_of is None:
            return user.groups
        answer = await call_app_function(groups_of, user, self.request)
        groups: frozenset[str] = frozenset()
        if isinstance(answer, str) or not isinstance(answer, Iterable):
            problem: str | None = f"{type(answer).__name__}, not an iterable of group names"
        else:
            groups = frozenset(answer)
            problem = groups_problem(groups)
        if problem is not None:
            logger.error("the app's groups function gave what no stream can serve: %s", problem)
            raise HTTPException(
                status.HTTP_500_INTERNAL_SERVER_ERROR,
                "The app's groups function gave a group no stream can serve.",
            )
        return groups

    def _unservable(self, detail: str) -> HTTPException:
        challenge = f'{self.realtime.settings.auth_scheme} realm="realtime"'
        return HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail,
            headers={"WWW-Authenticate": f'{challenge}, error="invalid_token"'},
        )


async def stream_opener(
    request: Request,
    realtime: Annotated[Realtime, Depends(get_realtime)],
    resume_after: Annotated[int | None, Depends(last_event_id)],
) -> StreamOpener:
    return StreamOpener(realtime, resume_after, request)


Streams = Annotated[StreamOpener, Depends(stream_opener)]
"""The dependency that gives a stream route its stream: `streams.open(channel, user)`."""
