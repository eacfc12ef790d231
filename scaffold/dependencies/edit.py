"""The dependency changes (`changes.dependency_changes`) made in a tomlkit document, keeping the
rest of the file byte for byte: a raised constraint keeps its quotes and its line's comment; an
added package joins its table in that table's syntax, and a new table is made where the project
keeps its others.

Poetry gets PEP 440 ranges, which it reads as they are: `fastapi-pg-sse = ">=0.10,<1"`, and for an
extra `fastapi-pg-sse = {version = ">=0.10,<1", extras = ["testing"]}` (no caret says `<1` for a
0.x release).
"""

from collections.abc import Sequence
from itertools import groupby
from typing import Any

import tomlkit
from tomlkit.items import Array, String, Table

from scaffold.dependencies.changes import Addition, DependencyChange, Raise, dependency_changes
from scaffold.dependencies.needs import Package
from scaffold.dependencies.tables import Syntax, find


def require_packages(
    document: tomlkit.TOMLDocument, *, add_missing: bool
) -> list[DependencyChange]:
    """Make `document` require what the generated code needs; the changes made."""
    changes = dependency_changes(document, add_missing=add_missing)
    for change in changes:
        if isinstance(change, Raise):
            _replace(document, change)
    additions = [change for change in changes if isinstance(change, Addition)]
    for table, added in groupby(additions, key=lambda addition: addition.table):
        packages = [addition.package for addition in added]
        existing: Any = find(document, table.key)
        if existing is None:
            _create(document, table.key, _filled(table.syntax, packages))
        elif table.syntax is Syntax.PEP508:
            _append(existing, packages)
        else:
            _add_to_poetry_table(existing, packages)
    return changes


def _replace(document: tomlkit.TOMLDocument, change: Raise) -> None:
    """Write the raised text where the listing's was, with the same quotes."""
    *parents, last = change.listing.at
    container: Any = document
    for part in parents:
        container = container[part]
    container[last] = String.from_raw(change.text, container[last].type)


def _filled(syntax: Syntax, packages: Sequence[Package]) -> Array | Table:
    """A new table of the packages."""
    if syntax is Syntax.PEP508:
        requirements = tomlkit.array()
        _append(requirements, packages)
        return requirements
    table = tomlkit.table()
    _add_to_poetry_table(table, packages)
    return table


def _create(document: tomlkit.TOMLDocument, key: Sequence[str], value: Array | Table) -> None:
    """Put `value` at `key`, in the tables that hold it, made where missing; the innermost table
    made ends with a blank line, as a person would write it."""
    container: Any = document
    while key[0] in container:
        container, key = container[key[0]], key[1:]
    if isinstance(value, Table):
        value.add(tomlkit.nl())
    for depth, part in enumerate(reversed(key[1:])):
        table = tomlkit.table()
        table.add(part, value)
        if depth == 0 and isinstance(value, Array):
            table.add(tomlkit.nl())
        value = table
    container[key[0]] = value


def _append(requirements: Array, packages: Sequence[Package]) -> None:
    """Append the packages' requirements, one per line unless the user keeps the array on one
    line."""
    one_line = bool(requirements) and "\n" not in requirements.as_string()
    requirements.extend(package.requirement for package in packages)
    requirements.multiline(not one_line)


def _add_to_poetry_table(table: Table, packages: Sequence[Package]) -> None:
    """Add the packages as Poetry dependencies: a constraint, or a table of it and extras."""
    for package in packages:
        if package.extras:
            entry = tomlkit.inline_table()
            entry.update({"version": package.specifiers, "extras": list(package.extras)})
            table.add(package.name, entry)
        else:
            table.add(package.name, package.specifiers)
