"""How long `scaffold check` takes on a project with 50 recorded channels, against a floor.

`scaffold check` runs on every commit from pre-commit, so what matters is the wall time of the
whole command: Python's start-up, imports, rendering every channel and comparing with the disk.
The floor is `python -c "import jinja2"` measured in the same run, on the same machine: start
Python and import the template engine that check cannot do without. Target: under 3x.

    python bench/check_speed.py [--rounds N]

It times `scaffold check` run in the project, as the pre-commit hook runs it, and for
comparison `scaffold check --json`, whose option goes through typer's parser (which imports
pydantic). It uses the `scaffold` installed beside the running Python, and prints medians.
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scaffold._commands.create_sse_channel import ChannelRequest, create_sse_channel

REPO = Path(__file__).resolve().parent.parent
CHANNELS = 50
MODULES = ("inventory", "orders", "billing", "shipping", "catalog")
TARGET = 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="runs of each command (20)")
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as folder:
        project = make_project(Path(folder))
        files = sum(1 for path in project.rglob("*") if path.is_file())
        scaffold = str(Path(sys.executable).parent / "scaffold")
        commands = {
            "scaffold check": [scaffold, "check"],
            "scaffold check --json": [scaffold, "check", "--json"],
            'python -c "import jinja2"': [sys.executable, "-c", "import jinja2"],
        }
        for command in commands.values():
            run(command, project)  # once to fail early, and to warm the file system cache
        timings: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):  # interleaved, so that all see the same machine load
            for name, command in commands.items():
                timings[name].append(run(command, project))
    medians = {name: statistics.median(times) for name, times in timings.items()}
    floor = medians['python -c "import jinja2"']
    print(f"{CHANNELS} channels, {files} files; median of {rounds} runs each")
    for name, median in medians.items():
        print(f"{name:<27} {median * 1000:6.1f} ms  {median / floor:4.2f}x")
    print(f"target: scaffold check under {TARGET:g}x the floor")


def make_project(folder: Path) -> Path:
    """A copy of `examples/shop` with CHANNELS channels, spread over a few modules."""
    project = Path(shutil.copytree(REPO / "examples" / "shop", folder / "shop"))
    for number in range(CHANNELS):
        request = ChannelRequest(f"Feed{number}", MODULES[number % len(MODULES)])
        create_sse_channel(project, request)
    return project


def run(command: list[str], cwd: Path) -> float:
    """The wall time of `command`, which must succeed."""
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
