"""The installed wheel, not only the source checkout, runs with its templates."""

import subprocess
import sys
from pathlib import Path

from tests.golden_cases import GOLDEN
from tests.helpers import REPO, copy_example, run_scaffold, snapshot


def test_installed_wheel_generates_the_golden_project(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("scaffold-*.whl")
    venv = tmp_path / "venv"
    # A fresh environment: the wheel's declared dependencies must be enough to run it.
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel],
        check=True,
        capture_output=True,
    )
    project = copy_example(tmp_path / "shop")
    located = subprocess.run(
        [venv / "bin" / "python", "-c", "import scaffold; print(scaffold.__file__)"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(located.stdout.strip()).is_relative_to(venv)

    installed_cli = (str(venv / "bin" / "scaffold"),)
    result = run_scaffold(
        "create-sse-channel", "Stock", "in", "inventory", cwd=project, command=installed_cli
    )
    assert result.exit_code == 0, result.stderr
    assert snapshot(project) == snapshot(GOLDEN / "stock-in-inventory")
