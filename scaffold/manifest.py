"""Edits of the target's `pyproject.toml` with tomlkit, keeping the rest of it byte for byte.

It adds the `[tool.scaffold]` table, records the channels in `[[tool.scaffold.channels]]` and the
versions of the runtime's schema its migrations apply in `[[tool.scaffold.schema]]`, and makes
the project require the packages the generated code and its tests import: it adds those it does
not list and raises the minimum of those it lists too low. Packages stay when channels go: the
project may have come to use them too.
"""

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import tomlkit
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from tomlkit.items import AoT, Array, String, Table

from scaffold.dependencies import (
    DEPENDENCIES,
    EXTRAS,
    GROUPS,
    TEST_LISTS,
    find,
    names,
    needed_in,
    place,
)
from scaffold.project import Project, scaffold_table
from scaffold.requirements import parse, provides, same_distribution, with_minimum


@dataclass(frozen=True)
class DependencyChange:
    """A requirement added to one of the project's lists, or whose minimum was raised there."""

    requirement: str
    key: tuple[str, ...]
    """Where in pyproject.toml: ("project", "dependencies"), an extra or a dependency group."""
    replaces: str | None = None
    """The requirement as the project listed it, when its minimum was raised."""

    def __str__(self) -> str:
        where = place(self.key)
        if self.replaces is None:
            return f"adds {self.requirement} to {where}"
        return (
            f"raises {self.replaces} to {self.requirement} in {where} (the generated code needs it)"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "action": "add" if self.replaces is None else "raise",
            "requirement": self.requirement,
            "replaces": self.replaces,
            "in": ".".join(self.key),
        }


def edit_pyproject(text: str, project: Project, *, add_packages: bool) -> str:
    """`text` with exactly the records of `project` (its channels, its schema's versions) and
    every requirement of the generated code listed too low raised; with `add_packages`, those it
    does not list added (`create-sse-channel`; `scaffold sync` adds none)."""
    document = tomlkit.parse(text)
    table = document["tool"]["scaffold"]
    schema = [record.as_toml() for record in project.schema]
    if schema and "schema" not in table:
        table.pop("channels", None)  # written again after the schema's, as a new project has them
    _record(table, "schema", schema)
    _record(table, "channels", [record.as_toml() for record in project.channels])
    _require_packages(document, add_missing=add_packages)
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


def _record(table: Table, key: str, wanted: list[dict[str, Any]]) -> None:
    """Make `[[tool.scaffold.<key>]]` hold exactly the `wanted` entries (none: no such key)."""
    existing = table.get(key)
    if isinstance(existing, AoT) and [dict(entry) for entry in existing] == wanted:
        return
    if not wanted:
        table.pop(key, None)
        return
    entries = tomlkit.aot()
    for values in wanted:
        entries.append(_new_table(values, blank_line_after=values is wanted[-1]))
    table[key] = entries


def _new_table(values: Mapping[str, object], *, blank_line_after: bool = True) -> Table:
    """A table of `values`, followed by a blank line as a person would write it."""
    table = tomlkit.table()
    for key, value in values.items():
        table.add(key, value)
    if blank_line_after:
        table.add(tomlkit.nl())
    return table


def _require_packages(
    document: tomlkit.TOMLDocument, *, add_missing: bool = True
) -> list[DependencyChange]:
    """Raise the minimum of what the generated code needs where the project lists it too low
    (`dependencies.needed_in`), and add what it does not list: the runtime's requirements to
    `[project] dependencies`, its tests' to the project's test list (`_test_list_key`).

    A test package counts as listed when `[project] dependencies` or any test list has it.
    """
    changes = []
    for need in needed_in(document):
        add_to = _test_list_key(document) if need.tests else DEPENDENCIES
        changes += _require(
            document, need.requirements, need.lists, add_to=add_to if add_missing else None
        )
    return changes


def _test_list_key(document: tomlkit.TOMLDocument) -> tuple[str, ...]:
    """Where test dependencies go: the first of TEST_LISTS that is a dependency group, else the
    first that is an extra; without either, a new `test` group if the project has dependency
    groups, else a new `test` extra."""
    for table in (GROUPS, EXTRAS):
        listed: dict[str, str] = {canonicalize_name(name): name for name in names(document, table)}
        for wanted in TEST_LISTS:
            if wanted in listed:
                return (*table, listed[wanted])
    return (*GROUPS, "test") if GROUPS[0] in document else (*EXTRAS, "test")


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
        raised = with_minimum(text, needed, place(self.key))
        if raised == text:
            return None
        self.requirements[self.index] = String.from_raw(raised, item.type)
        return DependencyChange(raised, self.key, replaces=text)


def _require(
    document: tomlkit.TOMLDocument,
    wanted: Sequence[str],
    searched: Sequence[tuple[str, ...]],
    *,
    add_to: tuple[str, ...] | None,
) -> list[DependencyChange]:
    """Raise the minimum of the `wanted` requirements wherever the `searched` lists hold them,
    and add to the `add_to` list, if any, those they do not provide."""
    entries = [entry for key in searched for entry in _entries(document, key)]
    changes, missing = [], []
    for requirement in wanted:
        needed = Requirement(requirement)
        listed = [entry for entry in entries if same_distribution(entry.requirement, needed)]
        changes += [change for entry in listed if (change := entry.raise_to(requirement))]
        if not any(provides(entry.requirement, needed) for entry in listed):
            missing.append(requirement)
    if missing and add_to is not None:
        _append(_make(document, add_to), missing)
        changes += [DependencyChange(requirement, add_to) for requirement in missing]
    return changes


def _entries(document: tomlkit.TOMLDocument, key: tuple[str, ...]) -> list[_Entry]:
    """The requirement strings of the list at `key`; none if it does not exist."""
    requirements = find(document, key)
    if not isinstance(requirements, Array):
        return []
    return [
        _Entry(key, requirements, index, parse(str(item), place(key)))
        for index, item in enumerate(requirements)
        if isinstance(item, String)  # not a dependency group's {include-group = "..."}
    ]


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
