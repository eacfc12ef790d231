"""The generator's speed benchmark cannot rot: one round of `python bench/check_speed.py` runs
every command it times on this checkout's scaffold, each successfully, and reports each one's
time and ratio to the floor. It asserts no speed: that is the benchmark's to measure."""

import re

from tests.helpers import REPO, run_benchmark

COMMANDS = (
    'python -c "import jinja2"',
    "scaffold create-sse-channel Stock in inventory",
    "scaffold check",
    "scaffold check --json",
    "scaffold check --project <dir>",
)


def test_one_round_times_every_command_of_this_checkout() -> None:
    printed = run_benchmark("bench/check_speed.py", "--rounds", "1")
    assert f" runs {REPO / 'scaffold'};" in printed
    ratios = {}
    for command in COMMANDS:
        line = next(line for line in printed.splitlines() if line.startswith(f"{command} "))
        found = re.search(r" ([\d.]+) ms \[[\d.]+-[\d.]+\] +([\d.]+)x \[", line)
        assert found is not None, line
        assert float(found[1]) > 0
        ratios[command] = float(found[2])
    assert ratios[COMMANDS[0]] == 1.0
    assert all(ratio > 0 for ratio in ratios.values())
