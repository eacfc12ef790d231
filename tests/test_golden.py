"""Golden files: every case renders byte for byte what `golden/<case>/` holds.

When a template change is intended, rewrite them with

    SCAFFOLD_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py

and review the diff of `golden/` like code before committing it.
"""

import difflib
import os
import shutil
from pathlib import Path

import pytest

from tests.golden_cases import CASES, GOLDEN, generate, without_runtime_schema
from tests.helpers import snapshot

UPDATE = os.environ.get("SCAFFOLD_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_project_matches_golden_files(case: str, tmp_path: Path) -> None:
    project = generate(case, tmp_path / "shop")
    expected_dir = GOLDEN / case
    actual = without_runtime_schema(snapshot(project))
    if UPDATE:
        shutil.rmtree(expected_dir, ignore_errors=True)
        for path, text in actual.items():
            (expected_dir / path).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / path).write_bytes(text)
    expected = snapshot(expected_dir)
    differences = [
        _describe(path, expected.get(path), actual.get(path))
        for path in sorted(expected.keys() | actual.keys())
        if expected.get(path) != actual.get(path)
    ]
    assert not differences, (
        f"golden/{case} differs from the generator's output:\n\n"
        + "\n".join(differences)
        + "\n\nIf the change is intended, run: SCAFFOLD_UPDATE_GOLDEN=1 python -m pytest"
        " tests/test_golden.py, then review the diff of golden/ before committing it."
    )


def _describe(path: str, expected: bytes | None, actual: bytes | None) -> str:
    if expected is None:
        return f"unexpected file {path}"
    if actual is None:
        return f"missing file {path}"
    return "".join(
        difflib.unified_diff(
            expected.decode().splitlines(keepends=True),
            actual.decode().splitlines(keepends=True),
            f"golden/{path}",
            f"generated/{path}",
        )
    )


def test_golden_cases_are_all_present() -> None:
    """A case without its folder (or a stray folder) would silently test nothing."""
    assert sorted(path.name for path in GOLDEN.iterdir() if path.is_dir()) == sorted(CASES)
