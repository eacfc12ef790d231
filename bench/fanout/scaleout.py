"""Scale-out: the generated app as several uvicorn workers on one port (the kernel spreads the
connections) or as several processes on ports of their own (the load generator spreads them),
all on one database; frames/s per process count, and every event once per connection."""

import asyncio
import time
from pathlib import Path

from bench.fanout import targets
from bench.fanout.load import Load
from bench.fanout.measure import Run, expected_frames
from bench.fanout.process import ServerProcess
from bench.fanout.report import ScaleOutRow
from demo.server import free_port


async def scale_out_row(run: Run, project_root: Path, mode: str, count: int) -> ScaleOutRow:
    """One maximum-rate phase against `count` workers or processes (not pinned)."""
    options = run.options
    if mode == "workers":
        apps = [targets.generated(project_root, run.database_url, run.secret, workers=count)]
    else:
        apps = [targets.generated(project_root, run.database_url, run.secret)] * count
    servers = [
        ServerProcess(
            app.command,
            app.cwd,
            app.environment,
            free_port(),
            None,
            None,
            run.scratch / f"generated-{count}-{mode}-{index}.log",
        )
        for index, app in enumerate(apps)
    ]
    load = Load()
    try:
        await asyncio.gather(*(server.wait_until_ready() for server in servers))
        ports = [server.port for server in servers]
        await load.open(ports, apps[0].path, run.clients(options.connections))
        window: dict[str, float] = {}

        def start_window() -> None:
            window.update(
                cpu=sum(server.cpu_seconds() for server in servers), at=time.perf_counter()
            )

        emitted = await run.emit(apps[0], options.max_seconds, None, on_start=start_window)
        expected = expected_frames(emitted, load.connections_per_user())
        await load.wait_for(expected, options.stalled_seconds)
        cpu = sum(server.cpu_seconds() for server in servers) - window["cpu"]
        frames = load.delivered()
        return ScaleOutRow(
            mode=mode,
            count=count,
            connections=options.connections,
            frames_per_second=frames / (load.last_frame_at - window["at"]) if frames else 0.0,
            cpu_us_per_frame=cpu / frames * 1e6 if frames else float("inf"),
            delivered_percent=100 * frames / expected if expected else 0.0,
            duplicates=load.duplicates(),
            misdelivered=load.misdelivered(),
        )
    finally:
        load.close()
        for server in servers:
            server.stop()
