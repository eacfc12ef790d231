"""Scale-out: the generated app as several uvicorn workers on one port (the kernel spreads the
connections) or as several processes on ports of their own (the load generator spreads them),
all on one database; frames/s per process count, and every event once per connection."""

import asyncio
from math import inf
from pathlib import Path

from bench.fanout import targets
from bench.fanout.load import Load
from bench.fanout.measure import Run, at_maximum_rate, start
from bench.fanout.report import ScaleOutRow


async def scale_out_row(run: Run, project_root: Path, mode: str, count: int) -> ScaleOutRow:
    """One maximum-rate phase against `count` workers or processes (not pinned)."""
    options = run.options
    if mode == "workers":
        apps = [targets.generated(project_root, run.database_url, run.secret, workers=count)]
    else:
        apps = [targets.generated(project_root, run.database_url, run.secret)] * count
    servers = [
        start(run, app, None, f"generated-{mode}-{count}-{index}") for index, app in enumerate(apps)
    ]
    load = Load()
    try:
        await asyncio.gather(*(server.wait_until_ready() for server in servers))
        ports = [server.port for server in servers]
        await load.open(ports, apps[0].path, run.clients(options.connections))
        window = await at_maximum_rate(run, apps[0], servers, load)
        return ScaleOutRow(
            mode=mode,
            count=count,
            connections=options.connections,
            frames_per_second=window.frames / window.seconds if window.seconds > 0 else 0.0,
            cpu_us_per_frame=window.cpu_seconds / window.frames * 1e6 if window.frames else inf,
            delivered_percent=100 * window.frames / window.expected if window.expected else 0.0,
            duplicates=load.duplicates(),
            misdelivered=load.misdelivered(),
        )
    finally:
        load.close()
        for server in servers:
            server.stop()
