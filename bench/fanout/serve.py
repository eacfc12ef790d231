"""`python -m bench.fanout.serve module:app [--workers N]`: a server under test, run by uvicorn
with uvloop and httptools on 127.0.0.1:$PORT, and its cyclic garbage collector timed.

On SIGUSR1 the process writes what its collector did since it started (collections, CPU
seconds, and the longest pause since the previous report) as JSON to $BENCH_GC_REPORT. With
several workers, only the supervisor has the callback: their collectors are not reported.
"""

import argparse
import gc
import json
import os
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

GC_REPORT = "BENCH_GC_REPORT"


class CollectorClock:
    """Times each collection through `gc.callbacks`: CPU time for the share of the server's
    CPU, wall time for the pauses."""

    def __init__(self) -> None:
        self.collections = 0
        self.cpu_seconds = 0.0
        self.max_pause_seconds = 0.0
        self.by_generation = [0, 0, 0]
        self._started = (0.0, 0.0)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = (time.thread_time(), time.perf_counter())
            return
        cpu, wall = self._started
        self.collections += 1
        self.by_generation[info["generation"]] += 1
        self.cpu_seconds += time.thread_time() - cpu
        self.max_pause_seconds = max(self.max_pause_seconds, time.perf_counter() - wall)

    def report(self, path: Path) -> None:
        """Write the totals to `path` (atomically: the bench polls for it) and start a new
        longest pause."""
        totals = {
            "collections": self.collections,
            "cpu_seconds": self.cpu_seconds,
            "max_pause_seconds": self.max_pause_seconds,
            "by_generation": self.by_generation,
        }
        self.max_pause_seconds = 0.0
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(totals))
        partial.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout.serve", description=__doc__)
    parser.add_argument("app", help="module:variable")
    parser.add_argument("--workers", type=int, default=1)
    arguments = parser.parse_args()
    if report := os.environ.get(GC_REPORT):
        clock = CollectorClock()
        gc.callbacks.append(clock)

        def on_report(_signum: int, _frame: FrameType | None) -> None:
            clock.report(Path(report))

        signal.signal(signal.SIGUSR1, on_report)
    uvicorn.run(
        arguments.app,
        host="127.0.0.1",
        port=int(os.environ["PORT"]),
        loop="uvloop",
        http="httptools",
        workers=arguments.workers,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
