"""How long scaffold's commands take, as ratios to a floor measured in the same run.

What matters is the wall time of a whole command: Python's start-up, imports, rendering and file
I/O. The floor is `python -c "import jinja2"`: start Python and import the template engine that
no command can do without. Targets (ratios to the floor):

- `scaffold create-sse-channel Stock in inventory` on a fresh copy of `examples/shop`: 4x;
- `scaffold check` on a project with 50 recorded channels, as the pre-commit hook runs it and
  with each option (`--json`, `--project <dir>`): 3x.

    python bench/check_speed.py [--rounds N]

The commands run interleaved, round after round, so that all see the same machine load; each
creation runs on its own fresh copy, made before its timer starts. It uses the `scaffold`
installed beside the running Python (the package it imports, which PYTHONPATH may choose, is
printed first), and prints each command's median time and range over the rounds, and the median
and range of its ratio to the floor of the same round (on a busy machine, a ratio within one
round holds steadier than one of medians taken over all rounds). Python may
write its bytecode caches (whatever PYTHONDONTWRITEBYTECODE says), as on a user's machine: an
installed scaffold has them.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scaffold._commands.create_sse_channel import ChannelRequest, create_sse_channel

REPO = Path(__file__).resolve().parent.parent
SHOP = REPO / "examples" / "shop"
CHANNELS = 50
MODULES = ("inventory", "orders", "billing", "shipping", "catalog")
FLOOR = 'python -c "import jinja2"'
CREATE = "scaffold create-sse-channel Stock in inventory"
TARGETS = {
    CREATE: 4.0,
    "scaffold check": 3.0,
    "scaffold check --json": 3.0,
    "scaffold check --project <dir>": 3.0,
}

ENVIRONMENT = {
    name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"
}
Timer = Callable[[], float]
"""One run of a command: its wall time, in seconds."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="runs of each command (20)")
    rounds = parser.parse_args().rounds
    scaffold = str(Path(sys.executable).parent / "scaffold")
    print(f"{scaffold} runs {scaffold_package()}; load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        project = make_project(work / "checked")
        files = sum(1 for path in project.rglob("*") if path.is_file())
        timers: dict[str, Timer] = {
            FLOOR: lambda: run([sys.executable, "-c", "import jinja2"], work),
            CREATE: lambda: run_on_fresh_shop(
                [scaffold, "create-sse-channel", "Stock", "in", "inventory"], work / "created"
            ),
            "scaffold check": lambda: run([scaffold, "check"], project),
            "scaffold check --json": lambda: run([scaffold, "check", "--json"], project),
            "scaffold check --project <dir>": lambda: run(
                [scaffold, "check", "--project", str(project)], work
            ),
        }
        timings = interleaved_timings(timers, rounds)
    floors = timings[FLOOR]
    print(f"check: {CHANNELS} channels, {files} files; median of {rounds} runs each [range]")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    for name, times in timings.items():
        ratios = [time / floor for time, floor in zip(times, floors, strict=True)]
        target = f"  (target: at most {TARGETS[name]:g}x)" if name in TARGETS else ""
        print(
            f"{name:<47} {statistics.median(times) * 1000:6.1f} ms"
            f" [{min(times) * 1000:.1f}-{max(times) * 1000:.1f}]"
            f"  {statistics.median(ratios):5.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]"
            f"{target}"
        )


def scaffold_package() -> str:
    """The folder of the scaffold package the commands run: this environment's, or the one
    PYTHONPATH puts first."""
    printed = subprocess.run(
        # -P: not the current folder first, which a console script does not put there either
        [sys.executable, "-P", "-c", "import scaffold; print(scaffold.__file__)"],
        env=ENVIRONMENT,
        capture_output=True,
        text=True,
        check=True,
    )
    return str(Path(printed.stdout.strip()).parent)


def interleaved_timings(timers: dict[str, Timer], rounds: int) -> dict[str, list[float]]:
    """Each timer's wall times over `rounds`, run in turn round after round so that all see the
    same load; each runs once first, to fail early and to warm the file system's cache."""
    for timer in timers.values():
        timer()
    timings: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            timings[name].append(timer())
    return timings


def make_project(folder: Path) -> Path:
    """A copy of `examples/shop` with CHANNELS channels, spread over a few modules."""
    project = Path(shutil.copytree(SHOP, folder))
    for number in range(CHANNELS):
        request = ChannelRequest(f"Feed{number}", MODULES[number % len(MODULES)])
        create_sse_channel(project, request)
    return project


def run_on_fresh_shop(command: list[str], folder: Path) -> float:
    """The wall time of `command` in a fresh copy of `examples/shop`, copied untimed."""
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(SHOP, folder)
    return run(command, folder)


def run(command: list[str], cwd: Path) -> float:
    """The wall time of `command`, which must succeed."""
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=ENVIRONMENT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
