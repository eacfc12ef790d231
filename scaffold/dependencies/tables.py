"""Every table a project may keep its dependencies in, what each lists, and where new ones go.

A `pyproject.toml` is read as mappings and lists, which `tomllib`'s data and tomlkit's documents
both are. The tables:

- PEP 621: `[project] dependencies`, `[project.optional-dependencies]` (extras) and
  `requires-python`;
- PEP 735: `[dependency-groups]` (uv, PDM, Poetry 2.2+);
- Poetry: `[tool.poetry.dependencies]` (with `python`), `[tool.poetry.group.<name>.dependencies]`
  and the older `[tool.poetry.dev-dependencies]`, each a table of constraints in Poetry's syntax,
  strings or tables such as `{version = "^1.2", extras = ["x"]}`;
- uv's older `[tool.uv] dev-dependencies` and PDM's `[tool.pdm.dev-dependencies]`.

A project keeps its main dependencies in `[project] dependencies` (PEP 621, Poetry 2), or, when
it has none there and a `[tool.poetry]` table, in `[tool.poetry.dependencies]` (Poetry 1, or
Poetry 2 with dynamic dependencies): it never gets a `[project]` table it does not have.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum

from packaging.utils import canonicalize_name

from scaffold.dependencies.needs import PYTHON
from scaffold.dependencies.pep508 import parse


class Syntax(Enum):
    PEP508 = "a list of PEP 508 requirements"
    POETRY = "a table of Poetry constraints, by name"
    SPECIFIERS = "PEP 440 specifiers: requires-python"


@dataclass(frozen=True)
class Kind:
    """A kind of table: where it is (`*` for the name of one of several, such as an extra's),
    its syntax, and how to say it in words (`{}` for that name)."""

    key: tuple[str, ...]
    syntax: Syntax
    words: str

    def named(self, name: str = "") -> "Table":
        return Table(self, name)


DEPENDENCIES = Kind(("project", "dependencies"), Syntax.PEP508, "[project] dependencies")
REQUIRES_PYTHON = Kind(("project", "requires-python"), Syntax.SPECIFIERS, "[project]")
EXTRAS = Kind(("project", "optional-dependencies", "*"), Syntax.PEP508, "the {} extra")
GROUPS = Kind(("dependency-groups", "*"), Syntax.PEP508, "the {} dependency group")
POETRY = Kind(("tool", "poetry", "dependencies"), Syntax.POETRY, "[tool.poetry.dependencies]")
POETRY_GROUPS = Kind(
    ("tool", "poetry", "group", "*", "dependencies"),
    Syntax.POETRY,
    "[tool.poetry.group.{}.dependencies]",
)
POETRY_DEV = Kind(
    ("tool", "poetry", "dev-dependencies"), Syntax.POETRY, "[tool.poetry.dev-dependencies]"
)
PDM_DEV = Kind(
    ("tool", "pdm", "dev-dependencies", "*"),
    Syntax.PEP508,
    "the {} group of [tool.pdm.dev-dependencies]",
)
UV_DEV = Kind(("tool", "uv", "dev-dependencies"), Syntax.PEP508, "[tool.uv] dev-dependencies")
KINDS = (
    REQUIRES_PYTHON,
    DEPENDENCIES,
    POETRY,
    EXTRAS,
    GROUPS,
    POETRY_GROUPS,
    POETRY_DEV,
    PDM_DEV,
    UV_DEV,
)
"""Every kind, in the order their changes are shown."""

TEST_LISTS = ("test", "tests", "testing", "dev")
"""The names of the extra or group that holds a project's test dependencies, in order of
preference; those of a kind without names (`[tool.poetry.dev-dependencies]`) count as `dev`."""
TEST_KINDS = (GROUPS, POETRY_GROUPS, POETRY_DEV, PDM_DEV, UV_DEV, EXTRAS)
"""The kinds that may hold test dependencies, in order of preference."""


@dataclass(frozen=True)
class Table:
    """One table (or list) of dependencies of the project."""

    kind: Kind
    name: str = ""
    """Its name, for a kind of several (an extra's, a group's)."""

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(self.name if part == "*" else part for part in self.kind.key)

    @property
    def syntax(self) -> Syntax:
        return self.kind.syntax

    @property
    def place(self) -> str:
        """In words: `[project] dependencies`, `the dev extra`."""
        return self.kind.words.format(self.name)

    @property
    def test_name(self) -> str:
        """The name that tells whether it holds test dependencies."""
        return canonicalize_name(self.name) if "*" in self.kind.key else "dev"


@dataclass(frozen=True)
class Listing:
    """A package (or Python) a table lists, and the text of its constraint."""

    table: Table
    at: tuple[str | int, ...]
    """Where the text is in the document."""
    name: str
    """The canonical distribution name, or PYTHON."""
    extras: frozenset[str]
    text: str
    """A PEP 508 requirement, a Poetry constraint, or `requires-python`'s specifiers."""

    def shown(self, text: str | None = None) -> str:
        """The listing (or, with `text`, the listing with that text) in words: the requirement,
        or name and constraint: `fastapi ^0.100`, `requires-python >=3.10`."""
        text = self.text if text is None else text
        if self.table.syntax is Syntax.PEP508:
            return text
        if self.table.syntax is Syntax.SPECIFIERS:
            return f"requires-python {text}"
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        return f"{self.at[len(self.table.key)]}{extras} {text}"


def tables(document: Mapping[str, object]) -> list[Table]:
    """Every table of dependencies the document has, in the order of KINDS."""
    found = []
    for kind in KINDS:
        if "*" not in kind.key:
            if find(document, kind.key) is not None:
                found.append(kind.named())
            continue
        parent, after = kind.key[: kind.key.index("*")], kind.key[kind.key.index("*") + 1 :]
        for name in names(document, parent):
            if find(document, (*parent, name, *after)) is not None:
                found.append(kind.named(name))
    return found


def listings(document: Mapping[str, object], table: Table) -> Iterator[Listing]:
    """What the table lists; a dependency group's `{include-group = "..."}` is no listing, nor
    a Poetry dependency without a version (a path, a URL, a Git repository)."""
    value = find(document, table.key)
    if table.syntax is Syntax.SPECIFIERS:
        if isinstance(value, str):
            yield Listing(table, table.key, PYTHON, frozenset(), value)
    elif table.syntax is Syntax.PEP508:
        for index, item in enumerate(value if isinstance(value, list) else ()):
            if isinstance(item, str):
                requirement = parse(item, table.place)
                name = canonicalize_name(requirement.name)
                yield Listing(table, (*table.key, index), name, frozenset(requirement.extras), item)
    elif isinstance(value, Mapping):
        for key, constraint in value.items():
            python = key == PYTHON and table.kind is POETRY
            named = PYTHON if python else canonicalize_name(key)
            yield from _poetry_listings(table, (*table.key, key), named, constraint)


def _poetry_listings(
    table: Table, at: tuple[str | int, ...], name: str, constraint: object
) -> Iterator[Listing]:
    """A Poetry dependency: a constraint, a table with one (and extras), or a list of tables,
    each for some Pythons or platforms."""
    if isinstance(constraint, str):
        yield Listing(table, at, name, frozenset(), constraint)
    elif isinstance(constraint, Mapping):
        extras = constraint.get("extras", [])
        extras = frozenset(extras) if isinstance(extras, list) else frozenset()
        version = constraint.get("version")
        text = version if isinstance(version, str) else ""
        yield Listing(table, (*at, "version"), name, extras, text)
    elif isinstance(constraint, list):
        for index, each in enumerate(constraint):
            yield from _poetry_listings(table, (*at, index), name, each)


def main_table(document: Mapping[str, object]) -> Table | None:
    """Where the project keeps its main dependencies; None if it has no such table nor one it
    may add (no `[project]`, no `[tool.poetry]`, or dependencies the build backend computes)."""
    project, poetry = find(document, ("project",)), find(document, ("tool", "poetry"))
    if isinstance(project, Mapping) and "dependencies" in project:
        return DEPENDENCIES.named()
    if isinstance(poetry, Mapping) and ("dependencies" in poetry or project is None):
        return POETRY.named()
    if isinstance(project, Mapping) and "dependencies" not in project.get("dynamic", ()):
        return DEPENDENCIES.named()
    return None


def test_lists(document: Mapping[str, object]) -> list[Table]:
    """The tables named like test lists (TEST_LISTS), in order of preference: by kind, then
    by name."""
    found = [table for table in tables(document) if table.kind in TEST_KINDS]
    found = [table for table in found if table.test_name in TEST_LISTS]
    return sorted(found, key=lambda t: (TEST_KINDS.index(t.kind), TEST_LISTS.index(t.test_name)))


def test_table(document: Mapping[str, object]) -> Table | None:
    """Where test dependencies go: the first test list; without one, a new `test` dependency
    group if the project has dependency groups, else a new Poetry group if it uses Poetry, a
    new PDM group if it has PDM's, or a new `test` extra; None if it may have none of those."""
    existing = test_lists(document)
    if existing:
        return existing[0]
    if isinstance(find(document, ("dependency-groups",)), Mapping):
        return GROUPS.named("test")
    if isinstance(find(document, ("tool", "poetry")), Mapping):
        return POETRY_GROUPS.named("test")
    if isinstance(find(document, ("tool", "pdm", "dev-dependencies")), Mapping):
        return PDM_DEV.named("test")
    project = find(document, ("project",))
    if isinstance(project, Mapping) and "optional-dependencies" not in project.get("dynamic", ()):
        return EXTRAS.named("test")
    return None


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
