"""The generated projects pass ruff (lint with the default rules and import sorting, format)
and mypy --strict.

They are checked as `golden/` holds them; `test_golden.py` proves that is what the generator
writes. Caches go to a temporary folder so the golden files stay untouched.
"""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.golden_cases import CASES, GOLDEN


def run_tool(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *command], cwd=cwd, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_project_passes_ruff_check(case: str) -> None:
    result = run_tool(
        "ruff", "check", "--isolated", "--no-cache", "--extend-select", "I", ".", cwd=GOLDEN / case
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_project_is_ruff_formatted(case: str) -> None:
    result = run_tool(
        "ruff", "format", "--isolated", "--no-cache", "--check", ".", cwd=GOLDEN / case
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_project_passes_mypy_strict(case: str, tmp_path: Path) -> None:
    project = GOLDEN / case
    package = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["scaffold"]["package"]
    result = run_tool(
        "mypy",
        "--strict",
        "--config-file=pyproject.toml",  # the project's own, not this repository's above it
        "--cache-dir",
        str(tmp_path / "mypy"),
        package,
        "tests",
        cwd=project,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
