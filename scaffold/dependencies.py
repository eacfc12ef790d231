"""The packages the generated code and its tests need, and where a project lists them.

It reads TOML as mappings and lists, which `tomllib`'s data and tomlkit's documents both are:
`scaffold check` tells a requirement too low with the standard library alone, and
`scaffold.manifest` edits the same lists with tomlkit.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from scaffold import __version__
from scaffold.requirements import parse, same_distribution, with_minimum


def _compatible_range(version: str) -> str:
    """`>=X.Y,<X+1`: the runtime releases that generated code of this version works with."""
    major, minor = version.split(".")[:2]
    return f">={major}.{minor},<{int(major) + 1}"


RUNTIME = "fastapi-pg-sse"
RUNTIME_RANGE = _compatible_range(__version__)
RUNTIME_REQUIREMENTS = ("fastapi>=0.137.2", f"{RUNTIME}{RUNTIME_RANGE}")
TEST_REQUIREMENTS = (
    f"{RUNTIME}[testing]{RUNTIME_RANGE}",  # its pytest plugin and fastapi_pg_sse.testing
    "asyncpg>=0.29",  # the tests of a trigger insert rows with it
    "asyncpg-stubs>=0.29",  # and mypy --strict needs its types
    "pytest>=8",
)
TEST_LISTS = ("test", "tests", "testing", "dev")
"""The names of the extra or dependency group that holds a project's test dependencies, in
order of preference."""

DEPENDENCIES = ("project", "dependencies")
EXTRAS = ("project", "optional-dependencies")
GROUPS = ("dependency-groups",)


@dataclass(frozen=True)
class LowRequirement:
    """A requirement the project lists that allows versions older than the generated code needs."""

    listed: str
    raised: str
    """The requirement with the minimum the generated code needs."""
    key: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.listed} in {place(self.key)}: the generated code needs {self.raised}"


class Need(NamedTuple):
    """Requirements of the generated code, and the lists of the project that may provide them."""

    requirements: Sequence[str]
    lists: list[tuple[str, ...]]
    tests: bool
    """Whether only its tests need them: they then go to the project's test list."""


def needed_in(document: Mapping[str, object]) -> tuple[Need, Need]:
    """What the generated code needs: the runtime's requirements, in `[project] dependencies`,
    and its tests', there or in a test list (an extra or dependency group named as in
    TEST_LISTS)."""
    test_lists = [
        (*table, name)
        for table in (GROUPS, EXTRAS)
        for name in names(document, table)
        if canonicalize_name(name) in TEST_LISTS
    ]
    return (
        Need(RUNTIME_REQUIREMENTS, [DEPENDENCIES], tests=False),
        Need(TEST_REQUIREMENTS, [DEPENDENCIES, *test_lists], tests=True),
    )


def too_low(document: Mapping[str, object]) -> list[LowRequirement]:
    """The requirements of `document`, a pyproject.toml, whose minimum the generated code needs
    raised, each once (`with_minimum` refuses those that allow none of the versions it needs)."""
    low: dict[tuple[tuple[str, ...], str], LowRequirement] = {}
    for wanted, searched, _ in needed_in(document):
        for key in searched:
            for listed in requirement_strings(document, key):
                for needed in wanted:
                    if not same_distribution(parse(listed, place(key)), Requirement(needed)):
                        continue
                    raised = with_minimum(listed, needed, place(key))
                    if raised != listed:
                        low.setdefault((key, listed), LowRequirement(listed, raised, key))
    return list(low.values())


def requirement_strings(document: Mapping[str, object], key: tuple[str, ...]) -> list[str]:
    """The requirements of the list at `key`; none if it does not exist. A dependency group's
    `{include-group = "..."}` is no requirement."""
    requirements = find(document, key)
    if not isinstance(requirements, list):
        return []
    return [item for item in requirements if isinstance(item, str)]


def place(key: tuple[str, ...]) -> str:
    """The list at `key` in words: `[project] dependencies`, `the dev extra`."""
    if key == DEPENDENCIES:
        return "[project] dependencies"
    kind = "extra" if key[:2] == EXTRAS else "dependency group"
    return f"the {key[-1]} {kind}"


def names(document: Mapping[str, object], key: tuple[str, ...]) -> list[str]:
    """The keys of the table at `key`; none if it does not exist."""
    table = find(document, key)
    return list(table) if isinstance(table, Mapping) else []


def find(document: Mapping[str, object], key: tuple[str, ...]) -> object:
    """The value at `key`, such as ("project", "dependencies"); None if it does not exist."""
    value: object = document
    for part in key:
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value
