"""The installed wheels, not only the source checkout: the tool generates with its templates, and
the project it generates installs the runtime wheel, type-checks and passes its own tests.

Each runs in a fresh virtualenv that holds only what the wheel or the project declares, so a
missing dependency (the runtime's, or a typing stub the generated code needs) fails here.
"""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scaffold.render import MIGRATION_HEADER
from tests.golden_cases import GOLDEN, TRIGGERED, without_runtime_schema
from tests.helpers import (
    REPO,
    copy_example,
    printed_schema,
    run_generated_tests,
    run_scaffold,
    snapshot,
)

RUNTIME = REPO / "fastapi-pg-sse"
STOCK = ("Stock", "in", "inventory")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tool's and the runtime's wheels, built from this checkout."""
    dist = tmp_path_factory.mktemp("dist")
    for source in (REPO, RUNTIME):
        subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist],
            cwd=source,
            check=True,
            capture_output=True,
        )
    yield dist


def new_virtualenv(path: Path, *requirements: str, find_links: Path) -> Path:
    """A virtualenv with `requirements` installed; its Python."""
    subprocess.run([sys.executable, "-m", "venv", path], check=True)
    python = path / "bin" / "python"
    pip = (python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check")
    result = subprocess.run(
        [*pip, "--find-links", find_links, *requirements],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return python


def imported_from(python: Path, module: str, *, cwd: Path) -> Path:
    """The file `python` imports `module` from, run in `cwd`."""
    located = subprocess.run(
        [python, "-c", f"import {module}; print({module}.__file__)"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(located.stdout.strip())


@pytest.fixture(scope="module")
def installed_scaffold(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `scaffold` command of a virtualenv that holds the tool's wheel and what it declares."""
    venv = tmp_path_factory.mktemp("scaffold-venv")
    (wheel,) = wheels.glob("scaffold-*.whl")
    python = new_virtualenv(venv, str(wheel), find_links=wheels)
    assert imported_from(python, "scaffold", cwd=venv).is_relative_to(venv)
    return python.parent / "scaffold"


def test_installed_wheel_generates_the_golden_project(
    installed_scaffold: Path, tmp_path: Path
) -> None:
    project = copy_example(tmp_path / "shop")
    result = run_scaffold(
        "create-sse-channel", *STOCK, cwd=project, command=(str(installed_scaffold),)
    )
    assert result.exit_code == 0, result.stderr
    # The runtime's schema migration, which golden/ leaves out, is checked on the way.
    generated = without_runtime_schema(snapshot(project))
    assert generated == snapshot(GOLDEN / "stock-in-inventory")


def test_installed_wheel_writes_the_runtimes_schema_migration_from_the_copy_in_its_wheel(
    installed_scaffold: Path, tmp_path: Path
) -> None:
    python = installed_scaffold.parent / "python"
    runtime = subprocess.run(
        [python, "-c", "import fastapi_pg_sse"], capture_output=True, check=False
    )
    assert runtime.returncode != 0, "the runtime is installed beside scaffold: not the wheel's copy"
    project = copy_example(tmp_path / "shop")
    result = run_scaffold(
        "create-sse-channel", *STOCK, cwd=project, command=(str(installed_scaffold),)
    )
    assert result.exit_code == 0, result.stderr

    printed = printed_schema()
    written = (project / "migrations/0002_fastapi_pg_sse_schema_1_5.sql").read_text()
    assert written == f"-- {MIGRATION_HEADER}\n{printed}"


def test_a_generated_project_installs_the_runtime_wheel_and_passes_its_checks(
    wheels: Path, tmp_path: Path, postgres_url: str
) -> None:
    project = copy_example(tmp_path / "shop")
    arguments = ("create-sse-channel", *STOCK, *TRIGGERED)
    assert run_scaffold(*arguments, cwd=project).exit_code == 0
    # Only what the project declares (its test extra included), and the type checker.
    python = new_virtualenv(tmp_path / "venv", f"{project}[test]", "mypy", find_links=wheels)
    runtime = imported_from(python, "fastapi_pg_sse", cwd=tmp_path)
    assert runtime.is_relative_to(tmp_path / "venv"), "not the wheel"

    mypy = subprocess.run(
        [python, "-m", "mypy", "--strict", "--cache-dir", tmp_path / "mypy", "shop", "tests"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    assert "Success: no issues found" in mypy.stdout

    assert run_generated_tests(project, postgres_url, tmp_path / "basetemp", python=python) > 0
