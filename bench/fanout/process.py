"""A server under test as a process tree: started on given CPUs, its readiness, and what the
kernel says it used (CPU time and resident memory of the process and its workers)."""

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.fanout.serve import GC_REPORT

START_SECONDS = 120
STOP_SECONDS = 15
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class GcTotals:
    """What a Python server's cyclic collector did (see `bench.fanout.serve`)."""

    collections: int
    cpu_seconds: float
    max_pause_seconds: float
    by_generation: list[int]
    """Collections of each generation, 0 to 2."""


class ServerProcess:
    """`command` run in `cwd` with `environment`, pinned to `cpus` when given."""

    def __init__(
        self,
        command: Sequence[str],
        cwd: Path,
        environment: Mapping[str, str],
        port: int,
        cpus: set[int] | None,
        gc_report: Path | None,
        log: Path,
    ) -> None:
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}"
        self.gc_report = gc_report
        # The developer's own REALTIME_* settings stay out: the bench says what it runs with.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_")}
        env = {**inherited, **environment, "PORT": str(port)}
        if gc_report is not None:
            env[GC_REPORT] = str(gc_report)
        with log.open("ab") as output:  # the child keeps its own copy of the descriptor
            self._process = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Before exec, so that every thread and worker it starts inherits the CPUs.
                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
            )
        self.pid = self._process.pid

    async def wait_until_ready(self) -> None:
        """Return once GET /health answers 200 (the server LISTENs)."""
        deadline = time.monotonic() + START_SECONDS
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise RuntimeError(
                        f"the server exited with {self._process.returncode}:\n{self.log_tail()}"
                    )
                try:
                    if (await client.get(f"{self.url}/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(
            f"the server did not answer {self.url}/health in {START_SECONDS} s:\n{self.log_tail()}"
        )

    def log_tail(self, characters: int = 3000) -> str:
        """The end of what the server printed (its log file)."""
        return self.log.read_text(errors="replace")[-characters:]

    def cpu_seconds(self) -> float:
        """User and system CPU time of the process and its live descendants so far."""
        total = 0
        for pid in self._tree():
            fields = _stat_fields(pid)
            if fields:
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / TICKS

    def rss_bytes(self) -> int:
        """Resident memory of the process and its live descendants (VmRSS)."""
        total = 0
        for pid in self._tree():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        return total

    async def gc_totals(self) -> GcTotals:
        """Ask the server for its collector's totals (SIGUSR1) and wait for the answer."""
        assert self.gc_report is not None, "started without a GC report"
        self.gc_report.unlink(missing_ok=True)
        self._process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + START_SECONDS
        while not self.gc_report.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not report its collector")
            await asyncio.sleep(0.01)
        return GcTotals(**json.loads(self.gc_report.read_text()))

    def stop(self) -> None:
        """SIGTERM, as a deployment stops it; SIGKILL to the whole tree if it lingers."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()

    def _tree(self) -> list[int]:
        parents = _parents()
        pids, index = [self.pid], 0
        while index < len(pids):
            pids += [pid for pid, parent in parents.items() if parent == pids[index]]
            index += 1
        return pids


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name (fields 3 onwards), or [] once it ended."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat[stat.rindex(")") + 2 :].split()


def _parents() -> dict[int, int]:
    """Every live process's parent, read from /proc (which may lack `task/*/children`)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
            parents[int(entry.name)] = int(fields[1])
    return parents
