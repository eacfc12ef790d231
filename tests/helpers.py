"""Helpers of the tool's tests: the example project, the real CLI, and disk snapshots."""

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from scaffold.layout import source_root
from scaffold.project import load_project

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "shop"


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


SOURCE_CLI = (sys.executable, "-m", "scaffold")


def run_scaffold(*args: str, cwd: Path, command: tuple[str, ...] = SOURCE_CLI) -> CliResult:
    """Run the real command line in a subprocess, as a user would."""
    completed = subprocess.run(
        [*command, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


def extract_release(commit: str, folder: Path) -> Path:
    """The repository as it was at `commit` (a release: its scaffold, its runtime and its
    example projects), extracted into `folder`."""
    archived = subprocess.run(
        ["git", "-C", REPO, "archive", "--format=tar", commit], capture_output=True, check=False
    )
    assert archived.returncode == 0, (
        f"this test needs the repository's history, commit {commit}: {archived.stderr.decode()}"
    )
    with tarfile.open(fileobj=BytesIO(archived.stdout)) as archive:
        archive.extractall(folder, filter="data")
    return folder


def run_released_scaffold(release: Path, project: Path, *arguments: str) -> None:
    """Run the command line of the scaffold of `release` (see `extract_release`) on `project`,
    beside the runtime of that release."""
    path = os.pathsep.join([str(release), str(release / "fastapi-pg-sse" / "src")])
    result = subprocess.run(
        [sys.executable, "-m", "scaffold", *arguments],
        cwd=project,
        env={**os.environ, "PYTHONPATH": path, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


DEMO_ONLY = ("frontend",)
"""The live demo's page in examples/shop (its app and routes are demo/app.py, outside the
shop), which the generator's tests leave out: they start from the shop's own code."""


def copy_example(destination: Path) -> Path:
    """A copy of examples/shop, without the demo's parts."""
    ignored = shutil.ignore_patterns("__pycache__", ".*cache", *DEMO_ONLY)
    shutil.copytree(EXAMPLE, destination, ignore=ignored)
    return destination


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` and its bytes, to prove a command wrote nothing."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


@asynccontextmanager
async def new_database(server_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a database of its own on the server at `server_url`, dropped afterwards."""
    name = f"scaffold_test_{uuid.uuid4().hex[:10]}"
    server = await asyncpg.connect(server_url)
    await server.execute(f'CREATE DATABASE "{name}"')
    try:
        database = await asyncpg.connect(urlsplit(server_url)._replace(path=f"/{name}").geturl())
        try:
            yield database
        finally:
            await database.close()
    finally:
        await server.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await server.close()


def run_generated_tests(
    project: Path,
    postgres_url: str,
    basetemp: Path,
    *options: str,
    python: str | Path = sys.executable,
) -> int:
    """Run a generated project's own test suite on `postgres_url` with `python` (and pytest's
    `options`); return how many passed."""
    result = _generated_tests(project, postgres_url, basetemp, *options, python=python)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failed" not in result.stdout and "skipped" not in result.stdout, result.stdout
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed is not None, result.stdout
    return int(passed.group(1))


def failed_generated_tests(project: Path, postgres_url: str, basetemp: Path) -> str:
    """Run a generated project's own test suite, expecting a test to fail; return its report."""
    result = _generated_tests(project, postgres_url, basetemp, python=sys.executable)
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout


def _generated_tests(
    project: Path, postgres_url: str, basetemp: Path, *options: str, python: str | Path
) -> "subprocess.CompletedProcess[str]":
    """A generated project's own test suite, run on `postgres_url` with `python`.

    `--basetemp` keeps the nested pytest session out of the shared temporary root, whose
    rotation would otherwise delete the data folder of this session's running PostgreSQL.
    """
    return subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", basetemp, *options],
        cwd=project,
        env={
            **_environment_of_a_new_session(),
            "DATABASE_URL": postgres_url,
            # The project as installed in its virtualenv: its root, or its src/ folder.
            "PYTHONPATH": os.pathsep.join([str(project), str(project / "src")]),
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def printed_schema() -> str:
    """What `python -m fastapi_pg_sse schema` prints: the runtime's schema, from nothing."""
    printed = subprocess.run(
        [sys.executable, "-m", "fastapi_pg_sse", "schema"],
        capture_output=True,
        text=True,
        check=True,
    )
    return printed.stdout


HEAVY_MODULES = ("libcst", "libcst.matchers", "tomlkit", "pglast", "pydantic", "rich")
"""Modules slow to import (each takes from a third to three times as long as starting Python and
importing jinja2), which a command imports only when its work needs them."""


def heavy_modules_loaded(
    project: Path, *args: str, among: tuple[str, ...] = HEAVY_MODULES
) -> list[str]:
    """Which of HEAVY_MODULES (or `among`) `scaffold <args>` imports when run in `project`; it
    must succeed."""
    script = (
        "import sys\n"
        "from scaffold._cli import main\n"
        "sys.argv = ['scaffold', *sys.argv[1:]]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    assert exit.code in (0, None), exit.code\n"
        f"print(sorted(m for m in {among!r} if m in sys.modules))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: list[str] = ast.literal_eval(completed.stdout.splitlines()[-1])
    return loaded


def run_benchmark(*command: str, postgres_url: str | None = None) -> str:
    """Run `python <command>` (`bench/<script>.py ...`, or `-m bench.fanout ...`) from the
    repository root as a person types it, on this checkout's scaffold and runtime and, if given,
    `postgres_url`'s server; return what it printed. A failed run fails the test with its output."""
    path = [str(REPO), str(REPO / "fastapi-pg-sse" / "src"), os.environ.get("PYTHONPATH", "")]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}
    if postgres_url is not None:
        environment["DATABASE_URL"] = postgres_url
    done = subprocess.run(
        [sys.executable, *command],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def channel_test_count(project: Path) -> int:
    """How many test functions the generated channel tests of `project` define."""
    tests = project.glob("tests/realtime/test_*.py")
    return sum(path.read_text().count("\nasync def test_") for path in tests)


def _environment_of_a_new_session() -> dict[str, str]:
    """This environment without the options meant for this pytest session."""
    return {name: value for name, value in os.environ.items() if name != "PYTEST_ADDOPTS"}


def app_openapi(project: Path) -> dict[str, Any]:
    """The OpenAPI document of the project's app, imported in a process of its own."""
    loaded = load_project(project)
    app = f"from {loaded.app_module} import {loaded.app_variable} as app"
    printed = subprocess.run(
        [sys.executable, "-c", f"import json; {app}; print(json.dumps(app.openapi()))"],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(source_root(loaded))},
        capture_output=True,
        text=True,
        check=False,
    )
    assert printed.returncode == 0, printed.stderr
    document: dict[str, Any] = json.loads(printed.stdout)
    return document


def _runtime_test_module(name: str) -> ModuleType:
    """A module of the runtime's tests, loaded from its file: their folder is a package named
    `tests` too."""
    path = REPO / "fastapi-pg-sse" / "tests" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"fastapi_pg_sse_tests_{name}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_asyncapi_checks = _runtime_test_module("asyncapi_checks")
asyncapi_errors = _asyncapi_checks.asyncapi_errors
"""The errors `@asyncapi/parser` finds in an AsyncAPI document: empty when it is valid."""
contains = _asyncapi_checks.contains
"""Whether a JSON value holds every key of an excerpt, with the excerpt's values."""


VALIDATE_OPENAPI = REPO / "scripts" / "validate_openapi.py"
"""The script that validates OpenAPI documents with `openapi-spec-validator` and `@redocly/cli`."""


def openapi_errors(document: Path) -> str:
    """The errors `openapi-spec-validator` and `@redocly/cli lint` (its minimal ruleset) find in
    the document at `document`, one a line: empty when it is valid. Without either tool
    (`scripts/_environment.sh` installs them), the test fails, saying so."""
    finished = subprocess.run(
        [sys.executable, str(VALIDATE_OPENAPI), str(document)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert finished.returncode in (0, 1), finished.stderr
    return finished.stdout
