"""The servers under test, each as a command, its environment and its stream's route."""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.fanout import nestjs, project
from bench.fanout.protocol import PEER_CHANNEL

REPO = Path(__file__).resolve().parents[2]
SERVE = (sys.executable, "-m", "bench.fanout.serve")
PYTHON_PEERS = {
    "floor": "bench.fanout.peers.floor:app",
    "sse-starlette": "bench.fanout.peers.sse_starlette_hub:app",
    "fastapi-yield": "bench.fanout.peers.fastapi_yield:app",
}
LABELS = {
    "generated": "generated runtime (fastapi-pg-sse)",
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

    @property
    def label(self) -> str:
        return LABELS[self.name]


def generated(project_root: Path, database_url: str, secret: str, workers: int = 1) -> Target:
    """The generated app, as its users serve it (with uvloop and httptools)."""
    return Target(
        name="generated",
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
            # The checkout's runtime (a worktree's, on the caller's PYTHONPATH) before any
            # installed one: the bench measures the code beside it.
            "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))),
        },
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
