"""The emitter: one event per transaction, for a fixed time, as fast as it can or at a fixed
rate, round-robin over the users; a process of its own beside the load generator.

    python -m bench.fanout.emit URL (channel:<channel>|notify:<channel>) --users N
        --seconds S [--rate R] [--connections C] [--first-seq K] [--delivery poll]

It prints `ready` once connected, starts on a line from stdin, and ends with a JSON line:
{"emitted": {user: events}, "seconds": how long emitting took}. The generated app's events go
through the runtime's `fastapi_pg_sse.emit(channel, ...)`, the peers' through pg_notify (the
server protocol); with `--delivery poll`, its sessions queue the channel's events for a
polling listener (`fastapi_pg_sse.delivery = 'poll'`: no commit turn, no NOTIFY).
"""

import argparse
import asyncio
import itertools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import uvloop

from bench.fanout.protocol import event_data, user_of

REPO = Path(__file__).resolve().parents[2]


def statement_for(target: str) -> str:
    """The emitter's statement: of $1 (the user) and $2 (the event's data) for a channel, of $1
    (the notification) for a peer."""
    kind, _, name = target.partition(":")
    if kind == "channel":
        return f"SELECT fastapi_pg_sse.emit('{name}', $1, 'tick', $2::jsonb)"
    if kind == "notify":
        return f"SELECT pg_notify('{name}', $1)"
    raise ValueError(f"unknown target {target!r}")


async def emit(arguments: argparse.Namespace) -> None:
    statement = statement_for(arguments.target)
    peer = arguments.target.startswith("notify:")
    pool = await asyncpg.create_pool(
        arguments.url,
        min_size=arguments.connections,
        max_size=arguments.connections,
        # Commits do not wait for the disk: the emit rate is bounded by PostgreSQL's work,
        # not by how often the machine's disk flushes, which says nothing of the servers.
        server_settings={
            "synchronous_commit": "off",
            "fastapi_pg_sse.delivery": arguments.delivery,
        },
    )
    sequence = itertools.count(arguments.first_seq)
    emitted: dict[str, int] = {}
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    started = time.perf_counter()
    deadline = started + arguments.seconds

    async def emitter(connection: asyncpg.pool.PoolConnectionProxy) -> None:
        while (now := time.perf_counter()) < deadline:
            seq = next(sequence)
            if arguments.rate:
                due = started + (seq - arguments.first_seq) / arguments.rate
                if due >= deadline:
                    return
                if due > now:
                    await asyncio.sleep(due - now)
            user = user_of(seq, arguments.users)
            data = event_data(user, seq)
            if peer:
                notification = {"id": seq, "type": "tick", "target_user_id": user, "data": data}
                await connection.execute(statement, json.dumps(notification))
            else:
                await connection.execute(statement, user, json.dumps(data))
            emitted[user] = emitted.get(user, 0) + 1

    async def worker() -> None:
        async with pool.acquire() as connection:
            await emitter(connection)

    await asyncio.gather(*(worker() for _ in range(arguments.connections)))
    elapsed = time.perf_counter() - started
    await pool.close()
    print(json.dumps({"emitted": emitted, "seconds": elapsed}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout.emit", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("target", help="channel:<channel> or notify:<channel>")
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--rate", type=float, help="events per second (default: as fast as it can)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--first-seq", type=int, default=0)
    parser.add_argument("--delivery", choices=("notify", "poll"), default="notify")
    uvloop.run(emit(parser.parse_args()))


async def run_emitter(
    url: str,
    target: str,
    *,
    users: int,
    seconds: float,
    rate: float | None,
    connections: int,
    first_seq: int,
    delivery: str = "notify",
    on_start: Callable[[], None] = lambda: None,
) -> dict[str, int]:
    """Run the emitter process; call `on_start` once it is connected, just before it starts;
    return how many events it emitted to each user."""
    command = [sys.executable, "-m", "bench.fanout.emit", url, target, f"--users={users}"]
    command += [f"--seconds={seconds}", f"--connections={connections}", f"--first-seq={first_seq}"]
    command.append(f"--delivery={delivery}")
    if rate:
        command.append(f"--rate={rate}")
    process = await asyncio.create_subprocess_exec(
        *command, cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdin is not None and process.stdout is not None
    if await process.stdout.readline() != b"ready\n":
        raise RuntimeError(f"the emitter failed to start (exit {await process.wait()})")
    on_start()
    process.stdin.write(b"go\n")
    await process.stdin.drain()
    result = await process.stdout.readline()
    if await process.wait() != 0:
        raise RuntimeError(f"the emitter failed (exit {process.returncode})")
    emitted: dict[str, int] = json.loads(result)["emitted"]
    return emitted


if __name__ == "__main__":
    main()
