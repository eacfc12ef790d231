"""What the project's dependencies need for the generated code: minimums raised, packages added,
or a refusal.

Every listing of a package the generated code, its tests or the runtime need (`needs.needs`), in
any table, must allow a version that is needed: one that allows none is refused, one that allows
older versions too has its minimum raised (but for packages only the runtime requires, which
resolvers pick). A package scaffold lists (`needs.generated_code_packages`,
`needs.generated_tests_packages`) that the project does not is added where the project keeps its
own, in its syntax. It reads TOML as mappings: `scaffold check` computes this with the standard
library's `tomllib` alone.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from scaffold.dependencies import pep508, poetry
from scaffold.dependencies.needs import (
    Need,
    Package,
    generated_code_packages,
    generated_tests_packages,
    needs,
)
from scaffold.dependencies.tables import (
    Listing,
    Syntax,
    Table,
    listings,
    main_table,
    tables,
    test_lists,
    test_table,
)
from scaffold.errors import BadInput


@dataclass(frozen=True)
class Raise:
    """A listing whose minimum is raised to what is needed."""

    listing: Listing
    text: str
    """Its text raised."""
    by: str
    """Who needs it: `the generated code`, or the runtime."""

    def __str__(self) -> str:
        return (
            f"raises {self.listing.shown()} to {self.listing.shown(self.text)} in"
            f" {self.listing.table.place} ({self.by} needs it)"
        )

    @property
    def shortfall(self) -> str:
        """What `scaffold check` says of it."""
        return (
            f"{self.listing.shown()} in {self.listing.table.place}: {self.by} needs"
            f" {self.listing.shown(self.text)}"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "action": "raise",
            "requirement": self.listing.shown(self.text),
            "replaces": self.listing.shown(),
            "in": ".".join(self.listing.table.key),
        }


@dataclass(frozen=True)
class Addition:
    """A package added to a table."""

    table: Table
    package: Package

    @property
    def shown(self) -> str:
        """As the table lists it: the requirement, or name and constraint."""
        if self.table.syntax is Syntax.PEP508:
            return self.package.requirement
        extras = f"[{','.join(self.package.extras)}]" if self.package.extras else ""
        return f"{self.package.name}{extras} {self.package.specifiers}"

    def __str__(self) -> str:
        return f"adds {self.shown} to {self.table.place}"

    def as_json(self) -> dict[str, object]:
        return {
            "action": "add",
            "requirement": self.shown,
            "replaces": None,
            "in": ".".join(self.table.key),
        }


@dataclass(frozen=True)
class Unlisted:
    """A package the project has no table to add to: the user lists it."""

    package: Package

    def __str__(self) -> str:
        return (
            f"lists no {self.package.requirement}, and has no table scaffold may add it to"
            " ([project] dependencies, or [tool.poetry.dependencies]): list it where the project"
            " keeps its dependencies"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "action": "unlisted",
            "requirement": self.package.requirement,
            "replaces": None,
            "in": None,
        }


DependencyChange = Raise | Addition | Unlisted


def dependency_changes(
    document: Mapping[str, object], *, add_missing: bool
) -> list[DependencyChange]:
    """The changes `document`, a pyproject.toml, needs: every minimum too low raised, and with
    `add_missing` every package scaffold lists that it lacks added; refused (`BadInput`, each
    reason on a line) when a listing allows no version that is needed."""
    listed = [listing for table in tables(document) for listing in listings(document, table)]
    changes: list[DependencyChange] = []
    refusals = []
    for listing in listed:
        need = needs().get(listing.name)
        if need is None:
            continue
        text = _with_minimum(listing, need)
        if text is None:
            refusals.append(
                f"pyproject.toml: {listing.table.place} lists {listing.shown()}, but {need.by}"
                f" needs {need}: allow that version, then run the command again"
            )
        elif text != listing.text and need.raised:
            changes.append(Raise(listing, text, need.by))
    if refusals:
        raise BadInput("\n".join(refusals))
    if add_missing:
        changes += _additions(document, listed)
    return changes


def too_low(document: Mapping[str, object]) -> list[Raise]:
    """The listings of `document` whose minimum the generated code needs raised."""
    return [c for c in dependency_changes(document, add_missing=False) if isinstance(c, Raise)]


def _with_minimum(listing: Listing, need: Need) -> str | None:
    """The listing's text with the minimum of `need`: itself when it allows no older version;
    None when it allows none that is needed."""
    allowed, minimum = need.allowed, need.minimum
    if listing.table.syntax is Syntax.PEP508:
        return pep508.requirement_with_minimum(listing.text, allowed, minimum)
    if listing.table.syntax is Syntax.SPECIFIERS:
        pep508.parse_specifiers(listing.text, f"{listing.table.place} requires-python")
        return pep508.specifiers_with_minimum(listing.text, allowed, minimum)
    where = f"{listing.shown()!r} in {listing.table.place}"
    return poetry.with_minimum(listing.text, allowed, minimum, where)


def _additions(document: Mapping[str, object], listed: list[Listing]) -> list[DependencyChange]:
    """The packages scaffold lists that the project does not: the runtime's where it keeps its
    main dependencies (`tables.main_table`), its tests' where it keeps test dependencies
    (`tables.test_table`). A test package counts as listed when the main table or any test
    list has it; one a table lists without an extra that is needed does not count."""
    main = main_table(document)
    searched = {main} if main is not None else set()
    searched_by_tests = searched | set(test_lists(document))
    tests = test_table(document)
    changes: list[DependencyChange] = []
    for package in (*generated_code_packages(), *generated_tests_packages()):
        where = searched_by_tests if package.tests else searched
        if any(_provides(listing, package) for listing in listed if listing.table in where):
            continue
        table = tests if package.tests else main
        changes.append(Unlisted(package) if table is None else Addition(table, package))
    return changes


def _provides(listing: Listing, package: Package) -> bool:
    """Whether installing what is listed installs the package with every extra it needs."""
    return listing.name == package.name and set(package.extras) <= listing.extras
