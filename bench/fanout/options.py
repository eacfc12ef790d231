"""What a run measures, and how long: the command line's options as one value."""

import argparse
from dataclasses import dataclass
from pathlib import Path

SERVERS = ("generated", "generated-poll", "floor", "sse-starlette", "fastapi-yield", "nestjs")


@dataclass(frozen=True)
class Options:
    connections: int
    users: int
    repeats: int
    max_seconds: float
    """How long the emitter goes as fast as it can (CPU per frame, frames/s); 0 for none (the
    streams mode)."""
    latency_seconds: float
    rate: float
    """Events per second of the latency phase."""
    emit_connections: int
    stalled_seconds: float
    """How long the tail may go without a frame before what is missing counts as lost."""
    tail_seconds: float
    """How long the tail may take in all after the emitter stops (a server that queues without
    bound may fall minutes behind); what is missing then counts as lost."""
    servers: tuple[str, ...]
    workers: int
    processes: int
    output: Path | None
    json: Path | None
    pin: bool

    @property
    def scale_out(self) -> bool:
        return self.workers > 1 or self.processes > 1


def parse(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout",
        description="Fan-out benchmark: the generated runtime against its peers, in one run.",
    )
    parser.add_argument("--smoke", action="store_true", help="300 connections, 2 s, 1 repeat")
    parser.add_argument("--connections", type=int, help="SSE streams (1000)")
    parser.add_argument(
        "--streams",
        type=int,
        help="capacity mode: this many streams (users: a tenth), their memory and delivery at"
        " --rate; no maximum-rate phase",
    )
    parser.add_argument("--users", type=int, help="users they sign in as, round-robin (100)")
    parser.add_argument("--repeats", type=int, help="rounds, servers interleaved (3)")
    parser.add_argument("--seconds", type=float, help="of emitting at maximum rate (10)")
    parser.add_argument("--latency-seconds", type=float, help="of emitting at --rate (10)")
    parser.add_argument("--rate", type=float, default=200, help="events/s for latency (200)")
    parser.add_argument(
        "--tail-seconds", type=float, default=120, help="the most a tail may take (120)"
    )
    parser.add_argument("--emit-connections", type=int, default=4, help="emitter's (4)")
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help=f"comma-separated, of {', '.join(SERVERS)}"
    )
    parser.add_argument("--workers", type=int, default=1, help="scale-out: uvicorn workers")
    parser.add_argument("--processes", type=int, default=1, help="scale-out: app processes")
    parser.add_argument("--no-pin", action="store_true", help="leave CPU placement to the OS")
    parser.add_argument("--output", type=Path, help="also write the table here (markdown)")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    arguments = parser.parse_args(argv)
    smoke = arguments.smoke
    streams = arguments.streams
    servers = tuple(name.strip() for name in arguments.servers.split(",") if name.strip())
    if streams and arguments.connections:
        parser.error("--streams says how many connections: drop --connections")
    if unknown := set(servers) - set(SERVERS):
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    return Options(
        connections=streams or arguments.connections or (300 if smoke else 1000),
        users=arguments.users or (max(streams // 10, 1) if streams else 30 if smoke else 100),
        repeats=arguments.repeats or (1 if smoke else 3),
        max_seconds=0 if streams else arguments.seconds or (2 if smoke else 10),
        latency_seconds=arguments.latency_seconds or (1 if smoke else 10),
        rate=arguments.rate,
        emit_connections=arguments.emit_connections,
        stalled_seconds=30,
        tail_seconds=arguments.tail_seconds,
        servers=servers,
        workers=arguments.workers,
        processes=arguments.processes,
        output=arguments.output,
        json=arguments.json,
        pin=not arguments.no_pin,
    )
