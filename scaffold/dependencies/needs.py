"""What the generated code needs of a project's dependencies, and what scaffold lists for it.

The versions come from the runtime's own `pyproject.toml` (its `requires-python`, dependencies and
`testing` extra), the one place that says what fastapi-pg-sse runs on: in scaffold's wheel the
copy of the runtime released with it, in a checkout `fastapi-pg-sse/pyproject.toml`. Read as
data, never imported.
"""

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from scaffold import __version__


def _compatible_range(version: str) -> str:
    """`>=X.Y,<X+1`: the runtime releases that generated code of this version works with."""
    major, minor = version.split(".")[:2]
    return f">={major}.{minor},<{int(major) + 1}"


RUNTIME = "fastapi-pg-sse"
RUNTIME_RANGE = _compatible_range(__version__)
PYTHON = "python"
"""The name a need of the interpreter goes by (`requires-python`, Poetry's `python`)."""


@dataclass(frozen=True)
class Package:
    """A package scaffold lists for the generated code, when the project lists it nowhere."""

    name: str
    specifiers: str
    """As scaffold writes them: `>=0.10,<1`."""
    extras: tuple[str, ...] = ()
    tests: bool = False
    """Whether only the generated tests need it: it then goes to the project's test list."""

    @property
    def requirement(self) -> str:
        """As a PEP 508 requirement: `fastapi-pg-sse[testing]>=0.10,<1`."""
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.name}{extras}{self.specifiers}"


@dataclass(frozen=True)
class Need:
    """The versions of a package (or of Python) that a project's every listing must allow."""

    name: str
    """Its canonical distribution name, or PYTHON."""
    specifiers: str
    by: str
    """Who needs it, for messages: `the generated code`, or the runtime."""
    raised: bool
    """Whether a listing that allows older versions too has its minimum raised; otherwise it
    only must allow one of these (a package the runtime requires, which resolvers pick)."""

    @property
    def allowed(self) -> SpecifierSet:
        return SpecifierSet(self.specifiers)

    @property
    def minimum(self) -> Version:
        """The version of its `>=` specifier: each need has one."""
        (minimum,) = (Version(s.version) for s in self.allowed if s.operator == ">=")
        return minimum

    def __str__(self) -> str:
        """`fastapi>=0.137.2`, `Python >=3.11`."""
        return f"Python {self.specifiers}" if self.name == PYTHON else self.name + self.specifiers


GENERATED_CODE_IMPORTS = ("fastapi",)
"""What the generated code imports directly, besides the runtime."""
GENERATED_TESTS_IMPORT = ("asyncpg", "asyncpg-stubs", "pytest")
"""What the generated tests import directly, besides the runtime's testing extra: asyncpg
inserts a trigger's rows, and mypy --strict needs its stubs."""


def generated_code_packages() -> tuple[Package, ...]:
    """What `[project] dependencies`, or the project's main list, gets: the runtime and what the
    generated code imports."""
    return (
        *(Package(name, _runtime_requirements()[name]) for name in GENERATED_CODE_IMPORTS),
        Package(RUNTIME, RUNTIME_RANGE),
    )


def generated_tests_packages() -> tuple[Package, ...]:
    """What the project's test list gets: the runtime's pytest plugin and fastapi_pg_sse.testing,
    and what the generated tests import."""
    return (
        Package(RUNTIME, RUNTIME_RANGE, ("testing",), tests=True),
        *(Package(n, _runtime_requirements()[n], tests=True) for n in GENERATED_TESTS_IMPORT),
    )


@cache
def needs() -> Mapping[str, Need]:
    """Every need, by name: what scaffold lists, raised where too low; the runtime's Python,
    raised too (uv and Poetry lock no project that allows an older one); and every other
    package the runtime or its testing extra requires, which the project must only allow."""
    runtime = _runtime_requirements()
    found = {name: Need(name, text, RUNTIME, False) for name, text in runtime.items()}
    found[PYTHON] = Need(PYTHON, _runtime_project()["requires-python"], RUNTIME, True)
    for package in (*generated_code_packages(), *generated_tests_packages()):
        found[package.name] = Need(package.name, package.specifiers, "the generated code", True)
    return found


@cache
def _runtime_requirements() -> dict[str, str]:
    """The runtime's dependencies and its testing extra's that name a minimum (any version of
    the others will do): each specifiers, by name."""
    project = _runtime_project()
    listed = [*project["dependencies"], *project["optional-dependencies"]["testing"]]
    requirements = [Requirement(text) for text in listed]
    return {
        canonicalize_name(r.name): str(r.specifier)
        for r in requirements
        if any(specifier.operator == ">=" for specifier in r.specifier)
    }


@cache
def _runtime_project() -> dict[str, Any]:
    """The `[project]` table of the runtime's `pyproject.toml`."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "runtime_pyproject.toml"
    path = packaged if packaged.is_file() else here.parent / "fastapi-pg-sse" / "pyproject.toml"
    project: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    return project
