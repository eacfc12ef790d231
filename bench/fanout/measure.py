"""One round of one server: its streams opened, events at a fixed rate (latency), then as fast as
the emitter goes (CPU per frame, frames/s), and what the server used meanwhile."""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.fanout.emit import run_emitter
from bench.fanout.load import Load
from bench.fanout.options import Options
from bench.fanout.process import ServerProcess
from bench.fanout.protocol import token, user_of
from bench.fanout.targets import Target
from demo.server import free_port


@dataclass(frozen=True)
class Measurement:
    cpu_us_per_frame: float
    frames_per_second: float
    delivered_percent: float
    misdelivered: int
    duplicates: int
    p50_ms: float
    p99_ms: float
    rss_mb: float
    idle_kb_per_connection: float
    gc_percent: float | None
    gc_max_pause_ms: float | None


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
            on_start=on_start,
        )
        self.next_seq += sum(emitted.values()) + self.options.emit_connections
        return emitted


def expected_frames(emitted: dict[str, int], connections_per_user: dict[str, int]) -> int:
    """Frames the clients should get: each event once per connection of its user."""
    return sum(count * connections_per_user.get(user, 0) for user, count in emitted.items())


async def measure(run: Run, target: Target) -> Measurement:
    options = run.options
    gc_report = run.scratch / f"gc-{target.name}.json" if target.python else None
    server = ServerProcess(
        target.command,
        target.cwd,
        target.environment,
        free_port(),
        run.server_cpus,
        gc_report,
        run.scratch / f"{target.name}.log",
    )
    load = Load()
    try:
        await server.wait_until_ready()
        rss_before = server.rss_bytes()
        await load.open([server.port], target.path, run.clients(options.connections))
        rss_idle = server.rss_bytes()
        per_user = load.connections_per_user()
        if gc_report:
            await server.gc_totals()  # the longest pause from here on

        load.recording = True
        expected = expected_frames(
            await run.emit(target, options.latency_seconds, options.rate), per_user
        )
        await load.wait_for(expected, options.stalled_seconds)
        load.recording = False
        latencies = sorted(load.latencies)

        gc_before = await server.gc_totals() if gc_report else None
        window: dict[str, float] = {}

        def start_window() -> None:
            window.update(
                cpu=server.cpu_seconds(), at=time.perf_counter(), delivered=load.delivered()
            )

        expected += expected_frames(
            await run.emit(target, options.max_seconds, None, on_start=start_window), per_user
        )
        await load.wait_for(expected, options.stalled_seconds)
        cpu = server.cpu_seconds() - window["cpu"]
        frames = load.delivered() - int(window["delivered"])
        elapsed = load.last_frame_at - window["at"]
        gc_after = await server.gc_totals() if gc_report else None
        rss_end = server.rss_bytes()
        return Measurement(
            cpu_us_per_frame=cpu / frames * 1e6 if frames else float("inf"),
            frames_per_second=frames / elapsed if frames and elapsed > 0 else 0.0,
            delivered_percent=100 * load.delivered() / expected if expected else 0.0,
            misdelivered=load.misdelivered(),
            duplicates=load.duplicates(),
            p50_ms=_quantile(latencies, 0.50) * 1000,
            p99_ms=_quantile(latencies, 0.99) * 1000,
            rss_mb=rss_end / 2**20,
            idle_kb_per_connection=(rss_idle - rss_before) / options.connections / 1024,
            gc_percent=(
                100 * (gc_after.cpu_seconds - gc_before.cpu_seconds) / cpu
                if gc_after and gc_before and cpu
                else None
            ),
            gc_max_pause_ms=(
                1000 * max(gc_before.max_pause_seconds, gc_after.max_pause_seconds)
                if gc_after and gc_before
                else None
            ),
        )
    finally:
        load.close()
        server.stop()


def _quantile(values: list[float], share: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]
