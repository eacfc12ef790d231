"""A TCP proxy to PostgreSQL that can lose the network silently, as a dead NAT entry, a failed
firewall or a partition does: the sockets stay open, and the bytes are dropped."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, urlencode, urlsplit

import asyncpg

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class BlackholeProxy:
    """Forwards 127.0.0.1:`port` to the PostgreSQL server until `blackhole()`.

    During an outage, the connections already open stay open but their bytes are dropped both
    ways (neither side learns anything: no reset, no end of stream), and a new connection waits
    unanswered; it gets through once `forward()` ends the outage, as after TCP retransmission.
    """

    def __init__(self, open_upstream: Callable[[], Awaitable[Streams]]) -> None:
        self._open_upstream = open_upstream
        self._forwarding = asyncio.Event()
        self._forwarding.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._stopping = False
        self.port = 0

    def blackhole(self) -> None:
        self._forwarding.clear()

    def forward(self) -> None:
        self._forwarding.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every connection (a closed socket ends its pumps) and stop listening."""
        self._stopping = True
        self._forwarding.set()  # a connection waiting for the end of an outage gives up
        if self._server is not None:
            self._server.close()
        for writer in tuple(self._writers):
            writer.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None, "start_server runs each connection in a task of its own"
        self._tasks.add(task)
        self._writers.add(writer)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            await self._forwarding.wait()
            if self._stopping:
                return
            upstream_reader, upstream_writer = await self._open_upstream()
            self._writers.add(upstream_writer)
            async with asyncio.TaskGroup() as pumps:
                pumps.create_task(self._pump(reader, upstream_writer))
                pumps.create_task(self._pump(upstream_reader, writer))
        except* OSError:
            pass  # a side reset its connection: the other one is closed below
        finally:
            for side in (writer, upstream_writer):
                if side is not None:
                    side.close()
                    self._writers.discard(side)
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy until the end of the stream, dropping what arrives during an outage; then close
        the other side, which ends its pump too."""
        while data := await reader.read(65536):
            if self._forwarding.is_set():
                writer.write(data)
                await writer.drain()
        writer.close()


async def upstream_of(database_url: str) -> Callable[[], Awaitable[Streams]]:
    """How to open a connection to the server of `database_url`: its TCP address, or its unix
    socket (a `DATABASE_URL` may name one)."""
    url = urlsplit(database_url)
    socket_folder = parse_qs(url.query).get("host", [url.hostname or ""])[0]
    if not socket_folder.startswith("/"):
        host, port = socket_folder or "localhost", url.port or 5432
        return lambda: asyncio.open_connection(host, port)
    connection = await asyncpg.connect(database_url)
    try:
        port = int(await connection.fetchval("SHOW port"))
    finally:
        await connection.close()
    path = f"{socket_folder}/.s.PGSQL.{port}"
    return lambda: asyncio.open_unix_connection(path)


@asynccontextmanager
async def blackhole_proxy(database_url: str) -> AsyncIterator[tuple[BlackholeProxy, str]]:
    """A proxy to the server of `database_url`, and the URL of the same database through it."""
    proxy = BlackholeProxy(await upstream_of(database_url))
    await proxy.start()
    url = urlsplit(database_url)
    query = {name: values for name, values in parse_qs(url.query).items() if name != "host"}
    query["sslmode"] = ["disable"]
    user = f"{url.username}:{url.password or ''}@" if url.username else ""
    proxied = url._replace(
        netloc=f"{user}127.0.0.1:{proxy.port}", query=urlencode(query, doseq=True)
    ).geturl()
    try:
        yield proxy, proxied
    finally:
        await proxy.stop()
