"""Edits of the target's `pyproject.toml` with tomlkit, keeping the rest of it byte for byte.

It adds the `[tool.scaffold]` table, records the channels in `[[tool.scaffold.channels]]`, and
makes the project require the packages the generated code and its tests import: it adds those
it does not list and raises the minimum of those it lists too low. Packages stay when channels
go: the project may have come to use them too.
"""

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import tomlkit
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from tomlkit.items import AoT, Array, String, Table

from scaffold import __version__
from scaffold.project import ChannelRecord, scaffold_table
from scaffold.requirements import parse, provides, same_distribution, with_minimum


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

_DEPENDENCIES = ("project", "dependencies")
_EXTRAS = ("project", "optional-dependencies")
_GROUPS = ("dependency-groups",)


@dataclass(frozen=True)
class DependencyChange:
    """A requirement added to one of the project's lists, or whose minimum was raised there."""

    requirement: str
    key: tuple[str, ...]
    """Where in pyproject.toml: ("project", "dependencies"), an extra or a dependency group."""
    replaces: str | None = None
    """The requirement as the project listed it, when its minimum was raised."""

    def __str__(self) -> str:
        place = _place(self.key)
        if self.replaces is None:
            return f"adds {self.requirement} to {place}"
        return (
            f"raises {self.replaces} to {self.requirement} in {place} (the generated code needs it)"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "action": "add" if self.replaces is None else "raise",
            "requirement": self.requirement,
            "replaces": self.replaces,
            "in": ".".join(self.key),
        }


def edit_pyproject(text: str, channels: Sequence[ChannelRecord]) -> str:
    """`text` with exactly `channels` recorded and every required package listed."""
    document = tomlkit.parse(text)
    _record_channels(document["tool"]["scaffold"], channels)
    _require_packages(document)
    return _dumps(document, text)


def dependency_changes(text: str) -> tuple[DependencyChange, ...]:
    """What `edit_pyproject` changes in the dependencies of `text`, to show with the plan."""
    return tuple(_require_packages(tomlkit.parse(text)))


def add_scaffold_table(text: str, settings: Mapping[str, str]) -> str:
    """`text` with a `[tool.scaffold]` table of `settings`, after its other `[tool.*]` tables."""
    document = tomlkit.parse(text)
    table = tomlkit.parse(scaffold_table(settings))["tool"]["scaffold"]
    if "tool" not in document:
        document.append("tool", tomlkit.table(is_super_table=True))
    document["tool"].append("scaffold", table)
    return _dumps(document, text)


def _dumps(document: tomlkit.TOMLDocument, text: str) -> str:
    edited = tomlkit.dumps(document)
    # New tables end with a blank line to separate them from what follows; not at the very end.
    return edited.rstrip("\n") + "\n" if text.endswith("\n") else edited.rstrip("\n")


def _record_channels(table: Table, channels: Sequence[ChannelRecord]) -> None:
    wanted = [record.as_toml() for record in channels]
    existing = table.get("channels")
    if isinstance(existing, AoT) and [dict(entry) for entry in existing] == wanted:
        return
    if not wanted:
        table.pop("channels", None)
        return
    entries = tomlkit.aot()
    for values in wanted:
        entries.append(_new_table(values, blank_line_after=values is wanted[-1]))
    table["channels"] = entries


def _new_table(values: Mapping[str, object], *, blank_line_after: bool = True) -> Table:
    """A table of `values`, followed by a blank line as a person would write it."""
    table = tomlkit.table()
    for key, value in values.items():
        table.add(key, value)
    if blank_line_after:
        table.add(tomlkit.nl())
    return table


def _require_packages(document: tomlkit.TOMLDocument) -> list[DependencyChange]:
    """Require what the generated code imports in `[project] dependencies`, and what its tests
    import in the project's test list (`_test_list_key`).

    A test package counts as listed when `[project] dependencies` or any test list has it.
    """
    test_lists = [
        (*table, name)
        for table in (_GROUPS, _EXTRAS)
        for name in _names(document, table)
        if canonicalize_name(name) in TEST_LISTS
    ]
    changes = _require(document, RUNTIME_REQUIREMENTS, [_DEPENDENCIES], add_to=_DEPENDENCIES)
    changes += _require(
        document, TEST_REQUIREMENTS, [_DEPENDENCIES, *test_lists], add_to=_test_list_key(document)
    )
    return changes


def _test_list_key(document: tomlkit.TOMLDocument) -> tuple[str, ...]:
    """Where test dependencies go: the first of TEST_LISTS that is a dependency group, else the
    first that is an extra; without either, a new `test` group if the project has dependency
    groups, else a new `test` extra."""
    for table in (_GROUPS, _EXTRAS):
        names: dict[str, str] = {canonicalize_name(name): name for name in _names(document, table)}
        for wanted in TEST_LISTS:
            if wanted in names:
                return (*table, names[wanted])
    return (*_GROUPS, "test") if _GROUPS[0] in document else (*_EXTRAS, "test")


@dataclass(frozen=True)
class _Entry:
    """One requirement string of a list in the document."""

    key: tuple[str, ...]
    requirements: Array
    index: int
    requirement: Requirement

    def raise_to(self, needed: str) -> DependencyChange | None:
        """Raise the entry's minimum to `needed`'s, in place; the change, if any."""
        item = self.requirements[self.index]
        text = str(item)
        raised = with_minimum(text, needed, _place(self.key))
        if raised == text:
            return None
        self.requirements[self.index] = String.from_raw(raised, item.type)
        return DependencyChange(raised, self.key, replaces=text)


def _require(
    document: tomlkit.TOMLDocument,
    wanted: Sequence[str],
    searched: Sequence[tuple[str, ...]],
    *,
    add_to: tuple[str, ...],
) -> list[DependencyChange]:
    """Raise the minimum of the `wanted` requirements wherever the `searched` lists hold them,
    and add to the `add_to` list those they do not provide."""
    entries = [entry for key in searched for entry in _entries(document, key)]
    changes, missing = [], []
    for requirement in wanted:
        needed = Requirement(requirement)
        listed = [entry for entry in entries if same_distribution(entry.requirement, needed)]
        changes += [change for entry in listed if (change := entry.raise_to(requirement))]
        if not any(provides(entry.requirement, needed) for entry in listed):
            missing.append(requirement)
    if missing:
        _append(_make(document, add_to), missing)
        changes += [DependencyChange(requirement, add_to) for requirement in missing]
    return changes


def _entries(document: tomlkit.TOMLDocument, key: tuple[str, ...]) -> list[_Entry]:
    """The requirement strings of the list at `key`; none if it does not exist."""
    requirements = _find(document, key)
    if not isinstance(requirements, Array):
        return []
    return [
        _Entry(key, requirements, index, parse(str(item), _place(key)))
        for index, item in enumerate(requirements)
        if isinstance(item, String)  # not a dependency group's {include-group = "..."}
    ]


def _place(key: tuple[str, ...]) -> str:
    """The list at `key` in words: `[project] dependencies`, `the dev extra`."""
    if key == _DEPENDENCIES:
        return "[project] dependencies"
    kind = "extra" if key[:2] == _EXTRAS else "dependency group"
    return f"the {key[-1]} {kind}"


def _names(document: tomlkit.TOMLDocument, key: tuple[str, ...]) -> list[str]:
    """The keys of the table at `key`; none if it does not exist."""
    table = _find(document, key)
    return list(table) if isinstance(table, Mapping) else []


def _find(document: tomlkit.TOMLDocument, key: tuple[str, ...]) -> object:
    """The value at `key`, such as ("project", "dependencies"); None if it does not exist."""
    value: object = document
    for part in key:
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _make(table: MutableMapping[str, Any], key: Sequence[str]) -> Array:
    """The array at `key` in `table`, created with the tables that hold it if missing."""
    first, *rest = key
    if first not in table:
        table[first] = _nested(rest)
    value = table[first]
    return _make(value, rest) if rest else value


def _nested(key: Sequence[str]) -> Array | Table:
    """An empty array, in new tables named by `key`."""
    if not key:
        return tomlkit.array()
    return _new_table({key[0]: _nested(key[1:])})


def _append(requirements: Array, missing: Sequence[str]) -> None:
    """Append `missing`, one per line unless the user keeps the array on one line."""
    one_line = bool(requirements) and "\n" not in requirements.as_string()
    requirements.extend(missing)
    requirements.multiline(not one_line)
