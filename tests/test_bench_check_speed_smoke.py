"""The generator's speed benchmark cannot rot: one round of `python bench/check_speed.py` runs
every command it times on this checkout's scaffold, each successfully, and reports each one's
time and ratio to the floor. It asserts no speed: that is the benchmark's to measure."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

COMMANDS = (
    'python -c "import jinja2"',
    "scaffold create-sse-channel Stock in inventory",
    "scaffold check",
    "scaffold check --json",
    "scaffold check --project <dir>",
)


def test_one_round_times_every_command_of_this_checkout() -> None:
    path = os.pathsep.join([str(REPO), str(REPO / "fastapi-pg-sse" / "src")])
    done = subprocess.run(
        [sys.executable, "bench/check_speed.py", "--rounds", "1"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f" runs {REPO / 'scaffold'};" in done.stdout
    ratios = {}
    for command in COMMANDS:
        line = next(line for line in done.stdout.splitlines() if line.startswith(f"{command} "))
        found = re.search(r" ([\d.]+) ms \[[\d.]+-[\d.]+\] +([\d.]+)x \[", line)
        assert found is not None, line
        assert float(found[1]) > 0
        ratios[command] = float(found[2])
    assert ratios[COMMANDS[0]] == 1.0
    assert all(ratio > 0 for ratio in ratios.values())
