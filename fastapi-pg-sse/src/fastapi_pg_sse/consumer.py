"""A consumer of a channel's stream, for services and workers: the typed events of one user, as
the generated TypeScript client reads them, in Python. Install the `consumer` extra
(`fastapi-pg-sse[consumer]`, for httpx).

    async with consume(ORDERS, "https://api.example.com/orders/stream", token=get_token) as stream:
        async for item in stream:
            match item:
                case Received(event=OrderPlaced() as placed):
                    ...  # item.id is the event's id
                case Reset():
                    ...  # what the events keep up to date: reload it

A stream resumes where it stopped (`Last-Event-ID`): after a network error or the server's
end, retrying with exponential backoff and full jitter, and after its token expired (the token
source is called again, then a new stream from the last event id). Event ids increase per user,
so an event is never delivered twice. A stream the server revoked (`revoked`: the application
ended the user's streams) reconnects only with a new token from the token source; without one it
ends with `StreamRevoked`.

A connection "worked" once it delivered something (an event or a heartbeat) or stayed open
`backoff.max` seconds. Only such a connection starts the delays again from the shortest, and
only after such a connection does a stream that expired reconnect at once: a server that
accepts and drops a stream straight away is retried ever more slowly.
"""

import asyncio
import email.utils
import inspect
import logging
import math
import random
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, aclosing, asynccontextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

from pydantic import ValidationError

from fastapi_pg_sse.channel import Channel
from fastapi_pg_sse.events import ChannelEvent
from fastapi_pg_sse.frames import EXPIRED, RESET, REVOKED
from fastapi_pg_sse.sse_parser import Comment, Dispatched, Found, RetryHint, SseParser
from fastapi_pg_sse.wire_validation import wire_validator

try:
    import httpx
except ImportError as missing:  # pragma: no cover - the extra is installed wherever it is tested
    raise ImportError(
        'fastapi_pg_sse.consumer needs httpx: pip install "fastapi-pg-sse[consumer]"'
    ) from missing

E = TypeVar("E", bound=ChannelEvent)

logger = logging.getLogger(__name__)

TokenSource = Callable[[], str | Awaitable[str]]
"""Gives a token, sync or async: called for the first connection, and again after the server
said the token expired or refused it."""

_EVENT_ID = re.compile(r"[0-9]{1,18}")
_CONNECT_SECONDS = 10.0
"""How long connecting, sending the request and waiting for a connection of a pool may take."""


@dataclass(frozen=True, slots=True)
class Received(Generic[E]):
    """An event of the channel: its id (ids increase, per user) and its payload's model."""

    id: int
    event: E


@dataclass(frozen=True, slots=True)
class Reset:
    """The events since the last id cannot be replayed (pruned, or from another database):
    reload what the events keep up to date. The stream goes on after `id`."""

    id: int


@dataclass(frozen=True)
class Backoff:
    """Reconnection delays, in seconds: each is drawn at random (`jitter()` times the ceiling,
    full jitter) below a ceiling that is `initial` (replaced by the server's `retry:` hint once
    one arrives) and doubles with each connection that failed or expired without having worked,
    up to `max`."""

    initial: float = 1.0
    max: float = 30.0
    jitter: Callable[[], float] = random.random
    """A number in [0, 1): the fraction of the ceiling to wait."""

    def __post_init__(self) -> None:
        if not (0 < self.initial <= self.max < math.inf):
            raise ValueError(
                f"Backoff(initial={self.initial!r}, max={self.max!r}): give seconds with"
                " 0 < initial <= max (a ceiling of 0 would never grow, nor one above max)"
            )


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """What `on_reconnect` is told before the consumer waits to reconnect."""

    cause: str
    """Why: `expired`, `HTTP 503`, `the stream ended`, the network error, or `the token source
    raised ...`."""
    delay: float
    """How long it waits, in seconds: a `Retry-After` the server sent (at most `backoff.max`),
    plus the backoff delay; 0 after a connection that worked and then expired."""


class ConsumerError(Exception):
    """Ends a stream: what reconnecting would not mend."""


class StreamUnauthorized(ConsumerError):
    """The server refused (401) a token the token source had just given for that request, or
    the stream has no token source to ask again (no token, or a string)."""

    def __init__(self, url: str, challenge: str | None, detail: str, remedy: str) -> None:
        self.challenge = challenge
        """The server's `WWW-Authenticate` header, which names its scheme word."""
        super().__init__(
            f"{url} refused the stream's credentials (401, WWW-Authenticate: {challenge}):"
            f" {detail} {remedy}"
        )


class StreamRevoked(ConsumerError):
    """The server ended the stream with `revoked` (the application ended the user's streams,
    a logout), and there is no new token to reconnect with: the token source gave the revoked
    one again, or the stream has none."""

    def __init__(self, url: str, remedy: str) -> None:
        super().__init__(f"{url} revoked the stream: {remedy}")


class StreamRefused(ConsumerError):
    """The server answered a request it will answer the same way again (a 4xx but 401, 408 and
    429, or not an event stream)."""

    def __init__(self, url: str, status_code: int, detail: str) -> None:
        self.status_code = status_code
        super().__init__(f"{url} refused the stream ({status_code}): {detail}")


class InvalidEventPayload(ConsumerError):
    """An event's payload is not what its model declares: the server emits events of another
    version of the channel's events. The stream's `last_event_id` stays before it: to go on past
    it, consume again with `last_event_id=error.event_id`."""

    def __init__(self, event_id: int, event_type: str, error: ValidationError) -> None:
        self.event_id = event_id
        self.event_type = event_type
        super().__init__(f"event {event_id} ({event_type}) does not match {error.title}: {error}")


class _TokenSourceFailed(Exception):
    """The token source raised (its error is the cause): retried after a delay, as the
    TypeScript client retries a failed `refreshToken`."""


async def _given_token(source: TokenSource) -> str:
    try:
        given = source()
        return await given if inspect.isawaitable(given) else given
    except Exception as error:
        logger.warning("the token source raised; retrying after a delay", exc_info=True)
        raise _TokenSourceFailed from error


@dataclass
class _Connection:
    """What the consumer learns of one connection, for the "worked" rule."""

    opened_at: float | None = None
    delivered: bool = False
    expired: bool = False
    """The server said the token expired, and ended the stream."""
    revoked: bool = False
    """The server said the user's streams were revoked, and ended the stream."""


@dataclass(eq=False)
class ChannelStream(Generic[E]):
    """The typed events of one channel's stream, as an async iterator of `Received` and `Reset`
    items (see `consume`); it reconnects by itself until closed or an error that reconnecting
    would not mend (`ConsumerError`)."""

    channel: Channel[E]
    url: str
    client: httpx.AsyncClient
    token: str | TokenSource | None
    scheme: str
    headers: Mapping[str, str]
    last_event_id: int | None
    """The id of the last event received (or of a `reset`): where the next connection resumes."""
    backoff: Backoff
    idle_timeout: float
    on_reconnect: Callable[[Reconnecting], object] | None
    _initial_delay: float = field(init=False)
    _failures: int = field(init=False, default=0)
    _token: str | None = field(init=False, default=None, repr=False)
    _token_is_fresh: bool = field(init=False, default=False)
    """Whether the source gave the token for the request that was sent last: a 401 of a token
    held for earlier requests (a server down, or answering 503, meanwhile) asks it again."""
    _skipped_types: set[str] = field(init=False, default_factory=set)
    _items: AsyncGenerator["Received[E] | Reset", None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._initial_delay = self.backoff.initial
        self._items = self._run()

    def __aiter__(self) -> "ChannelStream[E]":
        return self

    async def __anext__(self) -> Received[E] | Reset:
        return await anext(self._items)

    async def aclose(self) -> None:
        """Close the connection, if one is open; the stream yields nothing more."""
        await self._items.aclose()

    async def _run(self) -> AsyncGenerator[Received[E] | Reset, None]:
        timeout = httpx.Timeout(_CONNECT_SECONDS, read=self.idle_timeout)
        while True:
            connection = _Connection()
            try:
                async with self.client.stream(
                    "GET", self.url, headers=await self._request_headers(), timeout=timeout
                ) as response:
                    if response.status_code != httpx.codes.OK or not _is_event_stream(response):
                        delay, cause = await self._refused(response)
                    else:
                        async with aclosing(self._read(response, connection)) as items:
                            async for item in items:
                                yield item
                        if connection.revoked:
                            delay, cause = await self._revoked(), "revoked"
                        elif connection.expired:
                            delay, cause = self._expired(connection), "expired"
                        else:
                            delay, cause = self._failed(connection), "the stream ended"
            except httpx.TransportError as error:  # network errors, timeouts, a cut response
                delay, cause = self._failed(connection), f"{type(error).__name__}: {error}"
            except _TokenSourceFailed as failed:
                delay, cause = self._next_delay(), f"the token source raised {failed.__cause__!r}"
            await self._report(Reconnecting(cause, delay))
            if delay:
                await asyncio.sleep(delay)

    async def _read(
        self, response: httpx.Response, connection: _Connection
    ) -> AsyncGenerator[Received[E] | Reset, None]:
        """The items of an open stream, until it ends or says the token expired."""
        connection.opened_at = time.monotonic()
        parser = SseParser()
        async for chunk in response.aiter_bytes():
            for found in parser.feed(chunk):
                item = self._take(found, connection)
                if connection.expired or connection.revoked:
                    return
                if item is not None:
                    yield item

    async def _request_headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store", **self.headers}
        self._token_is_fresh = False
        if isinstance(self.token, str):
            headers["Authorization"] = f"{self.scheme} {self.token}"
        elif self.token is not None:
            if self._token is None:
                self._token = await _given_token(self.token)
                self._token_is_fresh = True
            headers["Authorization"] = f"{self.scheme} {self._token}"
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        return headers

    def _take(self, found: Found, connection: _Connection) -> Received[E] | Reset | None:
        """The item a parsed line makes, if any."""
        if isinstance(found, Comment):
            connection.delivered = True  # a heartbeat
            return None
        if isinstance(found, RetryHint):
            self._initial_delay = max(found.milliseconds, 1) / 1000  # 0 would never grow
            return None
        return self._event(found, connection)

    def _event(self, found: Dispatched, connection: _Connection) -> Received[E] | Reset | None:
        if found.type == EXPIRED:
            connection.expired = True
            return None
        if found.type == REVOKED:
            connection.revoked = True
            return None
        connection.delivered = True
        if found.id is None or not _EVENT_ID.fullmatch(found.id):
            return None  # not a channel event
        event_id = int(found.id)
        if found.type == RESET:
            # The server goes on after its own newest id, which may be below ours (a new
            # database).
            self.last_event_id = event_id
            return Reset(event_id)
        if self.last_event_id is not None and event_id <= self.last_event_id:
            return None  # seen already
        event_class = self.channel.event_classes.get(found.type)
        if event_class is None:
            self._skip(found.type)
            self.last_event_id = event_id
            return None
        try:
            event = wire_validator(event_class).validate_json(
                found.data, by_alias=True, by_name=False
            )
        except ValidationError as error:
            raise InvalidEventPayload(event_id, found.type, error) from error
        self.last_event_id = event_id
        return Received(event_id, cast(E, event))

    def _skip(self, event_type: str) -> None:
        """An event type the channel does not declare (one the server added since): skipped,
        and logged once per stream."""
        if event_type not in self._skipped_types:
            self._skipped_types.add(event_type)
            logger.warning(
                "skipping %r events of channel %r: not among its declared events (%s)",
                event_type,
                self.channel.name,
                ", ".join(self.channel.event_classes),
            )

    async def _refused(self, response: httpx.Response) -> tuple[float, str]:
        """The delay before the next connection, after a refusal; raise if another connection
        would be refused the same way."""
        status = response.status_code
        detail = await _detail(response)
        if status == httpx.codes.UNAUTHORIZED:
            if self.token is None or isinstance(self.token, str) or self._token_is_fresh:
                raise StreamUnauthorized(
                    self.url, response.headers.get("WWW-Authenticate"), detail, self._remedy()
                )
            self._token = None  # ask the source again
        elif status in (httpx.codes.REQUEST_TIMEOUT, httpx.codes.TOO_MANY_REQUESTS) or (
            status >= httpx.codes.INTERNAL_SERVER_ERROR
        ):
            pass
        elif status == httpx.codes.OK:
            content_type = response.headers.get("Content-Type")
            raise StreamRefused(self.url, status, f"not an event stream ({content_type})")
        else:
            raise StreamRefused(self.url, status, detail)
        retry_after = min(_retry_after(response.headers.get("Retry-After")), self.backoff.max)
        return retry_after + self._next_delay(), f"HTTP {status}"

    def _remedy(self) -> str:
        """What to do about a 401 that asking the token source again would not mend."""
        if self.token is None:
            return "The stream sends no token: give consume() a token, or your own headers."
        if isinstance(self.token, str):
            return (
                "The token is a string, which cannot be renewed once it expired: give consume()"
                " a callable that returns a new token (sync or async)."
            )
        return (
            "The token source had just given that token, so asking it again would not help:"
            " check that it gives tokens this server accepts (its key, audience and type) after"
            f" the scheme word it expects (the stream sends {self.scheme!r})."
        )

    def _expired(self, connection: _Connection) -> float:
        """The delay after the server said the token expired: none after a connection that
        worked; a new token is asked for either way."""
        worked = self._worked(connection)
        self._token = None
        return 0.0 if worked else self._next_delay()

    async def _revoked(self) -> float:
        """After the server revoked the stream: reconnect at once with a new token from the
        token source; raise `StreamRevoked` if it has none to give."""
        if self.token is None:
            raise StreamRevoked(self.url, "the stream sends no token to renew; sign in again.")
        revoked, self._token = self._token, None
        await self._request_headers()  # asks the token source
        if self._token == revoked:
            raise StreamRevoked(
                self.url,
                "the token source gave the revoked token again; sign the user in again and give"
                " a new token.",
            )
        return 0.0

    def _failed(self, connection: _Connection) -> float:
        self._worked(connection)
        return self._next_delay()

    def _worked(self, connection: _Connection) -> bool:
        """Whether the connection that ended worked: it delivered something, or stayed open
        `backoff.max` seconds. One that worked starts the delays again from the shortest."""
        opened_at = connection.opened_at
        lived = 0.0 if opened_at is None else time.monotonic() - opened_at
        worked = connection.delivered or lived >= self.backoff.max
        if worked:
            self._failures = 0
        return worked

    def _next_delay(self) -> float:
        """A delay drawn between 0 and a ceiling that doubles with each failure."""
        ceiling = min(self.backoff.max, self._initial_delay * 2.0**self._failures)
        self._failures += 1
        return self.backoff.jitter() * ceiling

    async def _report(self, reconnecting: Reconnecting) -> None:
        logger.info(
            "stream of channel %r reconnects in %.2f s (%s)",
            self.channel.name,
            reconnecting.delay,
            reconnecting.cause,
        )
        if self.on_reconnect is None:
            return
        try:  # as the TypeScript client's callbacks: what it raises is logged, the stream goes on
            told = self.on_reconnect(reconnecting)
            if inspect.isawaitable(told):
                await told
        except Exception:
            logger.exception("on_reconnect raised; the stream of %r goes on", self.channel.name)


@asynccontextmanager
async def consume(
    channel: Channel[E],
    url: str,
    *,
    token: str | TokenSource | None = None,
    scheme: str = "Bearer",
    headers: Mapping[str, str] | None = None,
    last_event_id: int | None = None,
    backoff: Backoff | None = None,
    idle_timeout: float = 45.0,
    client: httpx.AsyncClient | None = None,
    on_reconnect: Callable[[Reconnecting], object] | None = None,
) -> AsyncIterator[ChannelStream[E]]:
    """Read the typed events of `channel` from its stream route at `url`, resuming after
    `last_event_id` if given; the connection is closed when the block ends.

    `token` (a string, or a sync or async callable giving one) goes in the `Authorization`
    header after `scheme`, the word of the server's `REALTIME_AUTH_SCHEME`; the callable is asked
    again after the token expired or was refused, and a 401 of a token it has just given ends the
    stream with `StreamUnauthorized` (as does a 401 of a string token); what it raises is logged
    and retried after a delay. Without a token, authenticate with `headers` (sent with every
    request) or with the cookies of your own `client` (not closed here). A stream silent for
    `idle_timeout` seconds (the server sends a heartbeat every `REALTIME_HEARTBEAT_SECONDS`, 15
    by default) is taken for dead and reconnected. `on_reconnect` (sync or async) is told each
    reconnection before its delay; what it raises is logged, and the stream goes on.

    Event types the channel does not declare (added on the server since) are skipped; a payload
    its model refuses raises `InvalidEventPayload`: consume again with `last_event_id` set to its
    `event_id` to go on past it.
    """
    if not channel.event_classes:
        raise TypeError(
            f"channel {channel.name!r} declares no events: consume() reads typed events,"
            " declare them with Channel(..., events=...)"
        )
    async with AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(httpx.AsyncClient())
        stream = ChannelStream(
            channel=channel,
            url=url,
            client=client,
            token=token,
            scheme=scheme,
            headers=headers or {},
            last_event_id=last_event_id,
            backoff=backoff or Backoff(),
            idle_timeout=idle_timeout,
            on_reconnect=on_reconnect,
        )
        stack.push_async_callback(stream.aclose)
        yield stream


def _is_event_stream(response: httpx.Response) -> bool:
    media_type: str = response.headers.get("Content-Type", "").partition(";")[0].strip()
    return media_type.lower() == "text/event-stream"


async def _detail(response: httpx.Response) -> str:
    """What a refusal says: its JSON `detail`, else its text."""
    await response.aread()
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail else response.text[:200]


def _retry_after(value: str | None) -> float:
    """The seconds a `Retry-After` header asks to wait (a number of seconds, or an HTTP date);
    0 without one."""
    if value is None:
        return 0.0
    if value.strip().isascii() and value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, when.timestamp() - time.time())
