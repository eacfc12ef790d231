"""One round of one server: its streams opened, events at a fixed rate (latency), then as fast as
the emitter goes (CPU per frame, frames/s), and what the server used meanwhile."""

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import inf
from pathlib import Path
from typing import Any

from bench.fanout.emit import run_emitter
from bench.fanout.load import Load
from bench.fanout.options import Options
from bench.fanout.process import ServerProcess
from bench.fanout.protocol import token, user_of
from bench.fanout.targets import Target
from demo.server import free_port


@dataclass(frozen=True)
class Measurement:
    cpu_us_per_frame: float | None
    """None in the streams mode, which has no maximum-rate phase; so are the frames/s and the
    collector's figures."""
    frames_per_second: float | None
    delivered_percent: float
    misdelivered: int
    duplicates: int
    p50_ms: float
    p99_ms: float
    rss_mb: float
    idle_kb_per_connection: float
    gc_percent: float | None
    gc_max_pause_ms: float | None
    gc_collections: list[int] | None = None
    """Collections of each generation (0, 1, 2) at maximum rate."""
    cpu_us_per_frame_at_rate: float | None = None
    """CPU per frame while the events come at the fixed rate (the latency phase): the servers
    compared at the same load, which the maximum rate is not (each goes as fast as its emitter,
    and a server woken less often per event pays less per frame)."""


@dataclass
class Run:
    """What a round needs besides its server: the database, the key, the CPUs, a scratch folder,
    and the next event sequence number (unique across rounds, as the peers' event ids)."""

    options: Options
    database_url: str
    secret: str
    server_cpus: set[int] | None
    scratch: Path
    next_seq: int = 0

    def clients(self, connections: int) -> list[tuple[str, str]]:
        users = [user_of(index, self.options.users) for index in range(connections)]
        return [(user, token(user, self.secret)) for user in users]

    async def emit(
        self,
        target: Target,
        seconds: float,
        rate: float | None,
        on_start: Callable[[], None] = lambda: None,
    ) -> dict[str, int]:
        emitted = await run_emitter(
            self.database_url,
            target.emit,
            users=self.options.users,
            seconds=seconds,
            rate=rate,
            connections=self.options.emit_connections,
            first_seq=self.next_seq,
            delivery=target.delivery,
            on_start=on_start,
        )
        self.next_seq += sum(emitted.values()) + self.options.emit_connections
        return emitted


def expected_frames(emitted: dict[str, int], connections_per_user: dict[str, int]) -> int:
    """Frames the clients should get: each event once per connection of its user."""
    return sum(count * connections_per_user.get(user, 0) for user, count in emitted.items())


def start(run: Run, target: Target, cpus: set[int] | None, name: str) -> ServerProcess:
    """Start `target` on a free port, its output in the scratch folder as `<name>.log`."""
    return ServerProcess(
        target.command,
        target.cwd,
        target.environment,
        free_port(),
        cpus,
        run.scratch / f"gc-{name}.json" if target.python else None,
        run.scratch / f"{name}.log",
    )


async def measure(run: Run, target: Target) -> Measurement:
    """Serve `target`, open the streams, run both phases, and stop it."""
    options = run.options
    server = start(run, target, run.server_cpus, target.name)
    load = Load()
    try:
        await server.wait_until_ready()
        rss_before = server.rss_bytes()
        await load.open([server.port], target.path, run.clients(options.connections))
        rss_idle = server.rss_bytes()
        if target.python:
            await server.gc_totals()  # the longest pause from here on
        idle_kb = (rss_idle - rss_before) / options.connections / 1024
        latencies, expected, at_rate = await _at_fixed_rate(run, target, server, load)
        if not options.max_seconds:  # the streams mode: memory and delivery only
            return Measurement(
                cpu_us_per_frame=None,
                frames_per_second=None,
                **_outcome(server, load, expected, latencies, idle_kb),
                gc_percent=None,
                gc_max_pause_ms=None,
                cpu_us_per_frame_at_rate=at_rate,
            )
        gc_before = await server.gc_totals() if target.python else None
        window = await at_maximum_rate(run, target, server, load)
        expected += window.expected
        gc_after = await server.gc_totals() if target.python else None
        gc_percent = gc_pause = gc_collections = None
        if gc_before and gc_after:
            gc_collections = [
                after - before
                for before, after in zip(
                    gc_before.by_generation, gc_after.by_generation, strict=True
                )
            ]
            gc_cpu = gc_after.cpu_seconds - gc_before.cpu_seconds
            gc_percent = 100 * gc_cpu / window.cpu_seconds if window.cpu_seconds else None
            gc_pause = 1000 * max(gc_before.max_pause_seconds, gc_after.max_pause_seconds)
        return Measurement(
            cpu_us_per_frame=window.cpu_seconds / window.frames * 1e6 if window.frames else inf,
            frames_per_second=window.frames / window.seconds if window.seconds > 0 else 0.0,
            **_outcome(server, load, expected, latencies, idle_kb),
            gc_percent=gc_percent,
            gc_max_pause_ms=gc_pause,
            gc_collections=gc_collections,
            cpu_us_per_frame_at_rate=at_rate,
        )
    finally:
        load.close()
        server.stop()


def _outcome(
    server: ServerProcess, load: Load, expected: int, latencies: list[float], idle_kb: float
) -> dict[str, Any]:
    """What the clients got of the `expected` frames, and the server's memory: the figures both
    modes report."""
    return {
        "rss_mb": server.rss_bytes() / 2**20,
        "idle_kb_per_connection": idle_kb,
        "delivered_percent": 100 * load.delivered() / expected if expected else 0.0,
        "misdelivered": load.misdelivered(),
        "duplicates": load.duplicates(),
        "p50_ms": _quantile(latencies, 0.50) * 1000,
        "p99_ms": _quantile(latencies, 0.99) * 1000,
    }


async def _at_fixed_rate(
    run: Run, target: Target, server: ServerProcess, load: Load
) -> tuple[list[float], int, float | None]:
    """Emit at the options' rate; return every frame's latency, sorted, the frames due, and the
    server's CPU per frame delivered meanwhile (us)."""
    delivered, load.recording = load.delivered(), True
    cpu = server.cpu_seconds()
    emitted = await run.emit(target, run.options.latency_seconds, run.options.rate)
    expected = expected_frames(emitted, load.connections_per_user())
    await load.wait_for(delivered + expected, run.options.stalled_seconds, run.options.tail_seconds)
    load.recording = False
    frames = load.delivered() - delivered
    at_rate = (server.cpu_seconds() - cpu) / frames * 1e6 if frames else None
    return sorted(load.latencies), expected, at_rate


@dataclass(frozen=True)
class Window:
    """The maximum-rate phase, from the emitter's start to its last frame delivered."""

    expected: int
    frames: int
    seconds: float
    cpu_seconds: float
    """The server's, processes and workers together."""


async def at_maximum_rate(
    run: Run, target: Target, servers: ServerProcess | Sequence[ServerProcess], load: Load
) -> Window:
    """Emit as fast as the emitter goes, and wait for the tail."""
    servers = [servers] if isinstance(servers, ServerProcess) else servers
    start: dict[str, float] = {}

    def open_window() -> None:
        cpu = sum(server.cpu_seconds() for server in servers)
        start.update(cpu=cpu, at=time.perf_counter(), delivered=load.delivered())

    emitted = await run.emit(target, run.options.max_seconds, None, on_start=open_window)
    expected = expected_frames(emitted, load.connections_per_user())
    await load.wait_for(
        int(start["delivered"]) + expected, run.options.stalled_seconds, run.options.tail_seconds
    )
    return Window(
        expected=expected,
        frames=load.delivered() - int(start["delivered"]),
        seconds=load.last_frame_at - start["at"],
        cpu_seconds=sum(server.cpu_seconds() for server in servers) - start["cpu"],
    )


def _quantile(values: list[float], share: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]
