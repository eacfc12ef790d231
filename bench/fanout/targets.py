"""The servers under test, each as a command, its environment and its stream's route."""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from fastapi_pg_sse.settings import RealtimeSettings

from bench.fanout import nestjs, project
from bench.fanout.protocol import PEER_CHANNEL

REPO = Path(__file__).resolve().parents[2]
SERVE = (sys.executable, "-m", "bench.fanout.serve")
PYTHON_PEERS = {
    "floor": "bench.fanout.peers.floor:app",
    "sse-starlette": "bench.fanout.peers.sse_starlette_hub:app",
    "fastapi-yield": "bench.fanout.peers.fastapi_yield:app",
}
READ_MODES = {"generated": "notify", "generated-poll": "poll"}
"""The generated app's servers, by the runtime's read mode (`REALTIME_READ_MODE`), which is also
how their emitter's sessions deliver (`fastapi_pg_sse.delivery`)."""
POLL_INTERVAL_MS = 1000 * RealtimeSettings.model_fields["poll_interval_seconds"].default
"""The runtime's default, which the bench keeps: every frame waits for the next poll, up to this
long, which its latency includes."""
LABELS = {
    "generated": "generated runtime (fastapi-pg-sse)",
    "generated-poll": f"generated runtime, poll mode (every {POLL_INTERVAL_MS:g} ms)",
    "floor": "floor: minimal FastAPI route, pre-encoded frames",
    "sse-starlette": "FastAPI + sse-starlette hub",
    "fastapi-yield": "FastAPI yield route (fastapi.sse)",
    "nestjs": "NestJS recipe (rxjs filter per connection)",
}


@dataclass(frozen=True)
class Target:
    name: str
    command: tuple[str, ...]
    cwd: Path
    path: str
    """The stream's route."""
    emit: str
    """What the emitter calls: `channel:<channel>` (`fastapi_pg_sse.emit`) or `notify:<channel>`
    (`pg_notify`)."""
    python: bool
    environment: dict[str, str] = field(default_factory=dict)
    delivery: str = "notify"
    """How the emitter's sessions deliver (`fastapi_pg_sse.delivery`): `poll` queues events
    without the commit turn or NOTIFY, for the poll read mode."""

    @property
    def label(self) -> str:
        return LABELS[self.name]


def generated(
    project_root: Path, database_url: str, secret: str, workers: int = 1, name: str = "generated"
) -> Target:
    """The generated app, as its users serve it (with uvloop and httptools), in the read mode
    of `name` (`READ_MODES`), its emitter's sessions delivering to match."""
    read_mode = READ_MODES[name]
    return Target(
        name=name,
        command=(*SERVE, project.APP, f"--workers={workers}"),
        cwd=project_root,
        path=project.STREAM_PATH,
        emit=f"channel:{project.CHANNEL_NAME}",
        python=True,
        environment={
            "DATABASE_URL": database_url,
            "REALTIME_JWT_SECRET": secret,
            # The load generator opens many streams per user, as many as it likes in all.
            "REALTIME_MAX_STREAMS_PER_USER": "1000000",
            "REALTIME_MAX_STREAMS": "1000000",
            "REALTIME_READ_MODE": read_mode,
            # The checkout's runtime (a worktree's, on the caller's PYTHONPATH) before any
            # installed one: the bench measures the code beside it.
            "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))),
        },
        delivery=read_mode,
    )


def peer(name: str, database_url: str, secret: str) -> Target:
    """A peer of bench/fanout/peers, or the NestJS recipe."""
    python = name in PYTHON_PEERS
    return Target(
        name=name,
        command=(*SERVE, PYTHON_PEERS[name]) if python else ("node", str(nestjs.ENTRY)),
        cwd=REPO if python else nestjs.FOLDER,
        path="/events",
        emit=f"notify:{PEER_CHANNEL}",
        python=python,
        environment={
            "DATABASE_URL": database_url,
            "JWT_SECRET": secret,
            "PEER_CHANNEL": PEER_CHANNEL,
        },
    )
