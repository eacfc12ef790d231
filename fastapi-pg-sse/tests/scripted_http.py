"""An HTTP/1.1 server on a loopback socket that answers as a test scripts it: the refusals and
faults a real server gives only now and then (a 503 with a `Retry-After` date, a 403, a page
that is not an event stream, a stream that stays silent)."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus


@dataclass
class Answer:
    """What the server answers a request: a status, headers and a body. An event stream (a
    `Content-Type: text/event-stream` header) stays open after its body until `release` is set."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    release: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class ScriptedServer:
    """Answers the `n`-th request (from 0) with `script(n, its headers)`; keeps the headers of
    each request, and counts the event streams it holds open."""

    script: Callable[[int, dict[str, str]], Answer]
    requests: list[dict[str, str]] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    open_streams: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            lines = head.split("\r\n")[1:]
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines if line)
            }
            self.requests.append(headers)
            answer = self.script(len(self.requests) - 1, headers)
            self.answers.append(answer)
            streaming = answer.headers.get("Content-Type") == "text/event-stream"
            sent = {**answer.headers, "Connection": "close"}
            if not streaming:
                sent["Content-Length"] = str(len(answer.body))
            status = HTTPStatus(answer.status)
            writer.write(f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode())
            writer.write("".join(f"{name}: {value}\r\n" for name, value in sent.items()).encode())
            writer.write(b"\r\n" + answer.body)
            await writer.drain()
            if streaming:
                self.open_streams += 1
                try:
                    await answer.release.wait()
                finally:
                    self.open_streams -= 1
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the consumer went away
        finally:
            writer.close()


@asynccontextmanager
async def scripted_server(
    script: Callable[[int, dict[str, str]], Answer],
) -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer(script)
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listening.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        for answer in server.answers:
            answer.release.set()
        listening.close()
        await listening.wait_closed()
