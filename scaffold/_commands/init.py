"""`scaffold init`: add a `[tool.scaffold]` table to an existing FastAPI project.

It looks for the module-level `<name> = FastAPI(...)`, or a factory function that returns one,
with libcst in the project's own Python files (not its tests, virtualenvs, builds or hidden
folders), and proposes the package, app, migrations and tests settings from what it finds:
Alembic's configuration instead of a migrations folder when the project has one. A module with
both `app = create_app()` and the factory proposes the factory: routers are wired inside it,
where `uvicorn --factory` finds them too.
"""

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from scaffold import alembic
from scaffold.apply import apply_plan
from scaffold.errors import BadInput
from scaffold.manifest import add_scaffold_table
from scaffold.plan import Desired, Ownership, Plan, make_plan
from scaffold.project import CONFIG_EXAMPLE, checked_prefix, find_pyproject, read_pyproject
from scaffold.wiring import fastapi_apps, parse_python

_SKIPPED_FOLDERS = frozenset(
    {"__pycache__", "build", "dist", "node_modules", "site-packages", "test", "tests"}
)
_MIGRATIONS_FOLDERS = ("migrations", "db/migrations")
_TESTS_FOLDERS = ("tests", "test")


@dataclass(frozen=True)
class InitResult:
    plan: Plan
    settings: dict[str, str]
    """The settings written (or, with a dry run, proposed); empty if the table was there."""


def init(project_dir: Path, *, prefix: str = "", dry_run: bool = False) -> InitResult:
    """Propose the settings from what the project holds, and `prefix`, the path before every
    stream route, if given; write them unless `dry_run`."""
    pyproject = find_pyproject(project_dir)
    root = pyproject.parent
    text = pyproject.read_text(encoding="utf-8")
    checked_prefix(prefix, "--prefix")
    configured = "scaffold" in read_pyproject(pyproject).get("tool", {})
    if configured and prefix:
        raise BadInput(
            f"{pyproject} already has a [tool.scaffold] table: set prefix = {json.dumps(prefix)}"
            " in it, then run `scaffold sync` to move the routes of its channels"
        )
    settings = {} if configured else _propose(root) | ({"prefix": prefix} if prefix else {})
    new_text = add_scaffold_table(text, settings) if settings else text
    plan = make_plan(root, {pyproject.name: Desired(new_text, Ownership.EDITED)})
    if not dry_run:
        apply_plan(plan)
    return InitResult(plan, settings)


def _propose(root: Path) -> dict[str, str]:
    apps = [(path, name) for path in _python_files(root) for name in _fastapi_apps(root, path)]
    if not apps:
        raise BadInput(
            f"found no FastAPI application in {root}: scaffold looks for a module-level"
            " `app = FastAPI(...)`, or a factory function that returns one, outside tests and"
            f" virtualenvs. Define one, or add the table by hand:\n\n{CONFIG_EXAMPLE}"
        )
    if len(apps) > 1:
        found = ", ".join(f"{path} ({name})" for path, name in apps)
        raise BadInput(
            f"found several FastAPI applications: {found}. Add the table by hand with the one"
            f" scaffold should wire channels into:\n\n{CONFIG_EXAMPLE}"
        )
    ((path, name),) = apps
    module = _module_of(path)
    package = module.split(".")[0]
    if not (root / package).is_dir() and not (root / "src" / package).is_dir():
        raise BadInput(
            f"the FastAPI application in {path} is not inside a package, and scaffold generates"
            " its code into the application's package: move the app into one (e.g."
            f" shop/main.py), or add the table by hand:\n\n{CONFIG_EXAMPLE}"
        )
    return {
        "package": package,
        "app": f"{module}:{name}",
        **_migrations(root),
        "tests": _first_folder(root, _TESTS_FOLDERS),
    }


def _migrations(root: Path) -> dict[str, str]:
    """Alembic's configuration if the project has one (its revisions must be found: they are
    where channels' migrations go), else the folder of plain SQL migrations."""
    config = alembic.find_config(root)
    if config is None:
        return {"migrations": _first_folder(root, _MIGRATIONS_FOLDERS)}
    alembic.versions_folder(root, config)
    return {"alembic": config}


def _python_files(root: Path) -> Iterator[str]:
    """The project's own Python files, relative to `root`, in a stable order."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(
            name
            for name in subfolders
            if not name.startswith(".")
            and name not in _SKIPPED_FOLDERS
            and not (Path(folder) / name / "pyvenv.cfg").exists()
        )
        for name in sorted(files):
            if name.endswith(".py") and not _is_test_file(name):
                yield (Path(folder) / name).relative_to(root).as_posix()


def _is_test_file(name: str) -> bool:
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def _fastapi_apps(root: Path, path: str) -> list[str]:
    """The FastAPI applications and factories at the top level of the module at `path`."""
    source = (root / path).read_text(encoding="utf-8")
    return fastapi_apps(parse_python(source, path)) if "FastAPI" in source else []


def _module_of(path: str) -> str:
    parts = PurePosixPath(path).with_suffix("").parts
    if parts[0] == "src" and len(parts) > 1:
        parts = parts[1:]
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _first_folder(root: Path, candidates: tuple[str, ...]) -> str:
    """The first candidate folder the project has, else the first candidate."""
    return next((folder for folder in candidates if (root / folder).is_dir()), candidates[0])
