"""The load generator: thousands of SSE streams on raw sockets in one event loop.

Each stream is an asyncio Protocol; httptools parses the response (and undoes chunked transfer
encoding), and the body is cut into frames on blank lines. A frame with `data` is checked
against the stream's user (another user's is misdelivered), its id against those the stream
already had (a duplicate), and its `sent_at` gives the latency while `recording`.
"""

import asyncio
import json
import time
from collections.abc import Sequence
from typing import cast

import httptools

OPEN_AT_ONCE = 100
"""Connections being opened concurrently (the server's accept backlog is larger)."""
OPEN_SECONDS = 120
"""How long opening every stream may take on a loaded machine before the run fails."""


class Stream(asyncio.Protocol):
    """One client's stream: its counts, and its frames' ids."""

    def __init__(self, load: "Load", user: str, request: bytes) -> None:
        self.load = load
        self.user = user
        self.request = request
        self.answered: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.delivered = 0
        self.misdelivered = 0
        self.duplicates = 0
        self.ids: set[bytes] = set()
        self._parser = httptools.HttpResponseParser(self)
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answered.done():
            self.answered.set_exception(ConnectionError(f"closed before an answer: {exc}"))

    def on_headers_complete(self) -> None:
        self.answered.set_result(self._parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        if b"\r" in body:  # sse-starlette ends lines with CRLF
            body = body.replace(b"\r\n", b"\n")
        frames = (self._buffer + body).split(b"\n\n")
        self._buffer = frames.pop()
        for frame in frames:
            self._frame(frame)

    def _frame(self, frame: bytes) -> None:
        event_id = data = None
        for line in frame.split(b"\n"):
            if line.startswith(b"data:"):
                data = line[5:]
            elif line.startswith(b"id:"):
                event_id = line[3:].strip()
        if data is None:  # a retry hint, a comment, a ping
            return
        payload = json.loads(data)
        if payload["user"] != self.user:
            self.misdelivered += 1
            return
        if event_id in self.ids:
            self.duplicates += 1
            return
        if event_id is not None:
            self.ids.add(event_id)
        self.delivered += 1
        self.load.last_frame_at = time.perf_counter()
        if self.load.recording:
            self.load.latencies.append(time.time() - payload["sent_at"])

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class Load:
    """Streams opened against one server (or several, spread round-robin)."""

    def __init__(self) -> None:
        self.streams: list[Stream] = []
        self.recording = False
        self.latencies: list[float] = []
        self.last_frame_at = 0.0

    async def open(
        self, ports: Sequence[int], path: str, users_and_tokens: Sequence[tuple[str, str]]
    ) -> None:
        """Open a stream per (user, token), each answered 200, else raise."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(OPEN_AT_ONCE)

        async def open_one(index: int, user: str, token: str) -> Stream:
            port = ports[index % len(ports)]
            request = (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
            ).encode()
            async with gate:
                _, stream = await loop.create_connection(
                    lambda: Stream(self, user, request), "127.0.0.1", port
                )
                status = await stream.answered
            if status != 200:
                stream.close()
                raise RuntimeError(f"GET {path} answered {status} for {user}")
            return stream

        async with asyncio.timeout(OPEN_SECONDS):
            results = await asyncio.gather(
                *(open_one(index, *pair) for index, pair in enumerate(users_and_tokens)),
                return_exceptions=True,
            )
        streams = [result for result in results if isinstance(result, Stream)]
        self.streams += streams
        if failed := [result for result in results if isinstance(result, BaseException)]:
            self.close()
            raise failed[0]

    def delivered(self) -> int:
        return sum(stream.delivered for stream in self.streams)

    def misdelivered(self) -> int:
        return sum(stream.misdelivered for stream in self.streams)

    def duplicates(self) -> int:
        return sum(stream.duplicates for stream in self.streams)

    def connections_per_user(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for stream in self.streams:
            counts[stream.user] = counts.get(stream.user, 0) + 1
        return counts

    async def wait_for(self, delivered: int, stalled_seconds: float, tail_seconds: float) -> None:
        """Return once `delivered` frames have arrived in all; or when none has arrived for
        `stalled_seconds`, or `tail_seconds` have passed (what is missing then shows as less
        than 100% delivered)."""
        started = since = time.monotonic()
        progress = self.delivered()
        while (now := self.delivered()) < delivered:
            if now != progress:
                progress, since = now, time.monotonic()
            elif time.monotonic() - since > stalled_seconds:
                return
            if time.monotonic() - started > tail_seconds:
                return
            await asyncio.sleep(0.02)

    def close(self) -> None:
        for stream in self.streams:
            stream.close()
        self.streams.clear()
