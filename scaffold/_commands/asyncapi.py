"""`scaffold asyncapi`: the project's AsyncAPI document, as its app serves it at /asyncapi.json.

scaffold never imports the runtime, nor the project: the project's interpreter writes the
document (`python -m fastapi_pg_sse asyncapi <app>`) in a process of its own, the project's
source folder on its `PYTHONPATH`.
"""

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from scaffold.apply import write_atomically
from scaffold.errors import BadInput
from scaffold.layout import source_root
from scaffold.project import Project, load_project

_TIMEOUT_SECONDS = 120
"""How long importing the app and writing its document may take."""


@dataclass(frozen=True)
class AsyncApiDocument:
    text: str
    """The document, as JSON."""
    channels: int
    """How many channels it describes."""


def asyncapi(
    project_dir: Path, *, output: Path | None = None, python: Path | None = None
) -> AsyncApiDocument:
    """The project's AsyncAPI document, written to `output` if given (through a temporary file
    and a rename: a failure leaves the file as it was); `python` runs the runtime that makes it,
    by default the project's `.venv` interpreter if it has one, else scaffold's own."""
    project = load_project(project_dir)
    interpreter = python or project_interpreter(project)
    with tempfile.TemporaryDirectory(prefix="scaffold-asyncapi-") as folder:
        written = Path(folder) / "asyncapi.json"
        _write_with_runtime(project, interpreter, written)
        text = written.read_text(encoding="utf-8")
    document = AsyncApiDocument(text, len(json.loads(text)["channels"]))
    if output is not None:
        try:
            write_atomically(output, text)
        except OSError as error:
            raise BadInput(f"cannot write {output}: {error.strerror}") from error
    return document


def project_interpreter(project: Project) -> Path:
    """The interpreter of the project's `.venv` if it has one, else the one running scaffold."""
    for candidate in (".venv/bin/python", ".venv/Scripts/python.exe"):
        if (project.root / candidate).is_file():
            return project.root / candidate
    return Path(sys.executable)


def _write_with_runtime(project: Project, interpreter: Path, output: Path) -> None:
    """Have `python -m fastapi_pg_sse asyncapi` write the document of the project's app to
    `output`: an error unless it did, whatever its exit status."""
    app = f"{project.app_module}:{project.app_variable}"
    path = os.pathsep.join(filter(None, [str(source_root(project)), os.environ.get("PYTHONPATH")]))
    command = [str(interpreter), "-m", "fastapi_pg_sse", "asyncapi", app, "--output", str(output)]
    try:
        finished = subprocess.run(
            command,
            cwd=project.root,
            env={**os.environ, "PYTHONPATH": path},
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_SECONDS,
            check=False,
        )
    except OSError as error:
        raise BadInput(
            f"cannot run {interpreter}: {error.strerror}; name the project's Python interpreter"
            " with --python"
        ) from error
    except subprocess.TimeoutExpired as timeout:
        raise BadInput(
            f"importing {app} with {interpreter} took longer than {_TIMEOUT_SECONDS} s: does the"
            " module connect to something as it is imported?"
        ) from timeout
    if finished.returncode != 0:
        raise BadInput(_failure(app, interpreter, finished.stderr))
    if not output.is_file():
        raise BadInput(
            f"no AsyncAPI document of {app} (run with {interpreter}): the runtime exited without"
            " writing it; does the app's module exit (sys.exit) as it is imported?"
        )


def _failure(app: str, interpreter: Path, stderr: str) -> str:
    """What went wrong, from what the runtime's command (or Python) wrote, and what to do."""
    if "No module named fastapi_pg_sse" in stderr:
        return (
            f"fastapi-pg-sse is not installed for {interpreter}: install the project's"
            " dependencies there, or name the project's Python interpreter with --python"
        )
    if "invalid choice: 'asyncapi'" in stderr:
        return (
            f"the fastapi-pg-sse installed for {interpreter} cannot write AsyncAPI documents:"
            " upgrade it (pip install --upgrade fastapi-pg-sse)"
        )
    reason = stderr.strip().removeprefix("error: ")
    return f"no AsyncAPI document of {app} (run with {interpreter}): {reason}"
