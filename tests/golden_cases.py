"""The generator runs pinned by `golden/`: each case is a list of commands run on the example."""

from pathlib import Path

from tests.helpers import REPO, copy_example, run_scaffold

GOLDEN = REPO / "golden"
TRIGGERED = ("--table", "baskets", "--user-column", "user_id")

CASES: dict[str, list[tuple[str, ...]]] = {
    "stock-in-inventory": [("Stock", "in", "inventory")],
    "stock-level-in-warehouse-ops-with-trigger": [
        ("StockLevel", "in", "warehouse-ops", *TRIGGERED),
    ],
    "second-channel": [
        ("Stock", "in", "inventory"),
        ("StockLevel", "in", "warehouse-ops", *TRIGGERED),
    ],
}


def generate(case: str, destination: Path) -> Path:
    """Copy `examples/shop` to `destination` and run the case's commands in it."""
    project = copy_example(destination)
    for arguments in CASES[case]:
        result = run_scaffold("create-sse-channel", *arguments, cwd=project)
        assert result.exit_code == 0, result.stderr
    return project
