"""Edits of the target's `pyproject.toml` with tomlkit, keeping the rest of it byte for byte.

It adds the `[tool.scaffold]` table, records the channels in `[[tool.scaffold.channels]]` and the
versions of the runtime's schema its migrations apply in `[[tool.scaffold.schema]]`, and makes
the project require the packages the generated code and its tests import (`scaffold.dependencies`,
which knows every table a project keeps them in). Packages stay when channels go: the project may
have come to use them too.
"""

from collections.abc import Mapping
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table

from scaffold.dependencies.changes import DependencyChange
from scaffold.dependencies.edit import require_packages
from scaffold.project import Project, scaffold_table


def edit_pyproject(text: str, project: Project, *, add_packages: bool) -> str:
    """`text` with exactly the records of `project` (its channels, its schema's versions) and,
    while it has channels, every requirement of the generated code listed too low raised; with
    `add_packages`, those it does not list added (`create-sse-channel`; `scaffold sync` adds
    none). Without channels, its dependencies are the user's alone: removing the last channel
    neither adds a package back nor refuses a pin that excludes what channels needed."""
    document = tomlkit.parse(text)
    table = document["tool"]["scaffold"]
    schema = [record.as_toml() for record in project.schema]
    if schema and "schema" not in table:
        table.pop("channels", None)  # written again after the schema's, as a new project has them
    _record(table, "schema", schema)
    _record(table, "channels", [record.as_toml() for record in project.channels])
    if project.channels:
        require_packages(document, add_missing=add_packages)
    return _dumps(document, text)


def record_accepted_breaks(text: str, entries: list[dict[str, str]]) -> str:
    """`text` with `[[tool.scaffold.accepted_breaks]]` holding exactly `entries` (none: no such
    key): the breaking changes of the channels' events accepted on purpose."""
    document = tomlkit.parse(text)
    _record(document["tool"]["scaffold"], "accepted_breaks", entries)
    return _dumps(document, text)


def dependency_changes(text: str) -> tuple[DependencyChange, ...]:
    """What `edit_pyproject` changes in the dependencies of `text`, to show with the plan."""
    return tuple(require_packages(tomlkit.parse(text), add_missing=True))


def add_scaffold_table(text: str, settings: Mapping[str, str]) -> str:
    """`text` with a `[tool.scaffold]` table of `settings`, after its other `[tool.*]` tables."""
    document = tomlkit.parse(text)
    table = tomlkit.parse(f"{scaffold_table(settings)}\n")["tool"]["scaffold"]
    table.add(tomlkit.nl())  # before a table that follows, such as Poetry's [build-system]
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
