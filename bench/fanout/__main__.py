"""`python -m bench.fanout`: see the package's docstring and the README's "Benchmarks"."""

import json
import os
import resource
import secrets
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import uvloop

from bench.fanout import nestjs, targets
from bench.fanout.measure import Measurement, Run, measure
from bench.fanout.options import Options, parse
from bench.fanout.project import generate_project, generated_database
from bench.fanout.report import ScaleOutRow, scale_out_table, servers_table
from bench.fanout.scaleout import scale_out_row
from demo.session import postgres


def pin(options: Options) -> tuple[set[int] | None, str]:
    """Pin this process (and so PostgreSQL, the load generator and the emitter, its children)
    to one CPU and return the other, for the servers; unless scaling out or on one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if options.scale_out or not options.pin or len(cpus) < 2:
        return None, f"not pinned ({len(cpus)} CPUs)"
    os.sched_setaffinity(0, {cpus[0]})
    return {cpus[1]}, f"bench, PostgreSQL, load, emitter on CPU {cpus[0]}; server on CPU {cpus[1]}"


def allow_open_files() -> None:
    """Raise the soft limit of open files to the hard one, for this process and the servers:
    thousands of streams are as many sockets on each side."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    allow_open_files()
    # A `kill` stops the run as Ctrl-C does: the servers, PostgreSQL and the folder go too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    server_cpus, placement = pin(options)
    names = list(options.servers)
    notes = [placement]
    if "nestjs" in names and not options.scale_out and (reason := nestjs.build()):
        names.remove("nestjs")
        notes.append(f"nestjs skipped: {reason}")
        print(f"nestjs skipped: {reason}", file=sys.stderr, flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="bench-fanout-") as folder,
        postgres() as postgres_url,
    ):
        project_root = generate_project(Path(folder) / "shop")
        with generated_database(postgres_url, project_root) as database_url:
            run = Run(options, database_url, secrets.token_urlsafe(32), server_cpus, Path(folder))
            if options.scale_out:
                rows = uvloop.run(_scale_out(run, project_root))
                body = scale_out_table(rows)
                raw: object = {"scale_out": [asdict(row) for row in rows]}
            else:
                results = uvloop.run(_rounds(run, project_root, names))
                body = servers_table(results, targets.LABELS)
                raw = {name: [asdict(one) for one in ones] for name, ones in results.items()}
    text = f"{_heading(options, notes)}\n\n{body}\n"
    print(text)
    _write(options.output, text)
    _write(options.json, json.dumps({"notes": notes, "results": raw}, indent=2))
    return 0


def _write(path: Path | None, text: str) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


async def _rounds(run: Run, project_root: Path, names: list[str]) -> dict[str, list[Measurement]]:
    """Every server once per round, the order rotated each round."""
    results: dict[str, list[Measurement]] = {name: [] for name in names}
    for round_number in range(run.options.repeats):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            if name in targets.READ_MODES:
                target = targets.generated(project_root, run.database_url, run.secret, name=name)
            else:
                target = targets.peer(name, run.database_url, run.secret)
            print(f"round {round_number + 1}: {name}", file=sys.stderr, flush=True)
            results[name].append(await measure(run, target))
    return results


async def _scale_out(run: Run, project_root: Path) -> list[ScaleOutRow]:
    rows = []
    for _ in range(run.options.repeats):
        for mode, top in (("workers", run.options.workers), ("processes", run.options.processes)):
            if top > 1:
                for count in range(1, top + 1):
                    print(f"scale-out: {count} {mode}", file=sys.stderr, flush=True)
                    rows.append(await scale_out_row(run, project_root, mode, count))
    return sorted(rows, key=lambda row: (row.mode, row.count))


def _heading(options: Options, notes: Sequence[str]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    emitting = (
        f"{options.max_seconds:g} s at maximum rate ({options.emit_connections} emitting"
        " connections, one event per transaction, synchronous_commit off)"
    )
    if options.scale_out:
        return (
            f"Scale-out of the generated app, {when}: {options.connections} connections spread"
            f" over the processes, {options.users} users, {options.repeats} round(s); {emitting};"
            f" {'; '.join(notes)}. CPU/frame sums every process."
        )
    if not options.max_seconds:
        emitting = "no maximum-rate phase (the streams mode)"
    return (
        f"Fan-out, {when}: {options.connections} connections, {options.users} users,"
        f" {options.repeats} round(s) interleaved; {emitting},"
        f" {options.latency_seconds:g} s at {options.rate:g} events/s for latency;"
        f" {'; '.join(notes)}. Cells: median (min-max) xratio to the floor."
    )


if __name__ == "__main__":
    sys.exit(main())
