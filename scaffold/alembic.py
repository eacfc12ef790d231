"""Alembic projects, read without importing Alembic or the project's code.

Where a project's revisions live (its configuration's `script_location`), which revision is the
head a new one must follow (each revision's `revision` and `down_revision`, parsed with `ast`),
and the deterministic id of a revision scaffold writes.
"""

import ast
import configparser
import hashlib
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from scaffold.errors import BadInput
from scaffold.pycode import LINE_LENGTH

INI = "alembic.ini"
PYPROJECT = "pyproject.toml"


def find_config(root: Path) -> str | None:
    """The configuration `alembic` reads when run in `root` (what `alembic -c` would name), if
    the project has one: `alembic.ini`, or a `pyproject.toml` with a `[tool.alembic]` table."""
    if (root / INI).is_file():
        return INI
    if "alembic" in _pyproject_tool(root / PYPROJECT):
        return PYPROJECT
    return None


def versions_folder(root: Path, config: str) -> str:
    """The folder of the revisions, relative to `root`: `<script_location>/versions`, where
    `alembic -c <config>` run in `root` looks for them."""
    location = _script_location(root, config)
    if ":" in location:
        raise BadInput(
            f"Alembic's script_location {location!r} names a package resource, which scaffold"
            " does not resolve: set [tool.scaffold] migrations to the folder of its revisions"
        )
    folder = (root / location / "versions").resolve()
    if not folder.is_relative_to(root.resolve()):
        raise BadInput(f"Alembic's script_location {location!r} is outside the project {root}")
    return folder.relative_to(root.resolve()).as_posix()


def _script_location(root: Path, config: str) -> str:
    """`script_location` as Alembic reads it: from the ini file's `[alembic]` section, else from
    `[tool.alembic]` of pyproject.toml; `%(here)s` is the folder of the file that sets it."""
    ini = root / (INI if PurePosixPath(config).name == PYPROJECT else config)
    parser = configparser.ConfigParser(defaults={"here": ini.parent.as_posix()})
    try:
        parser.read(ini, encoding="utf-8")
        if parser.has_option("alembic", "script_location"):
            return parser.get("alembic", "script_location")
    except configparser.Error as error:
        raise BadInput(f"{ini} is not a valid Alembic configuration: {error}") from error
    pyproject = root / (config if PurePosixPath(config).name == PYPROJECT else PYPROJECT)
    section = _pyproject_tool(pyproject).get("alembic")
    location = section.get("script_location") if isinstance(section, dict) else None
    if isinstance(location, str):
        return location.replace("%(here)s", pyproject.parent.as_posix())
    raise BadInput(
        f"found no Alembic script_location in {ini.name} ([alembic]) nor in {pyproject.name}"
        " ([tool.alembic]): point [tool.scaffold] alembic at the configuration you run"
        " `alembic -c` with"
    )


def _pyproject_tool(pyproject: Path) -> dict[str, object]:
    if not pyproject.is_file():
        return {}
    try:
        tool = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
    except tomllib.TOMLDecodeError as error:
        raise BadInput(f"{pyproject} is not valid TOML: {error}") from error
    return tool if isinstance(tool, dict) else {}


@dataclass(frozen=True)
class Revision:
    """What Alembic needs of a revision file to chain it: its id and the ids it follows."""

    id: str
    down_revisions: tuple[str, ...]
    path: str
    """The file, relative to the project root, for messages."""


def head(root: Path, folder: str) -> str | None:
    """The one head of the revisions in `folder` (None when there is none yet), which a new
    revision follows. Several heads or a broken chain is refused: any choice would be a guess."""
    revisions = read_revisions(root, folder)
    known: dict[str, Revision] = {}
    for revision in revisions:
        if (twin := known.setdefault(revision.id, revision)) is not revision:
            raise BadInput(f"{twin.path} and {revision.path} both declare revision {revision.id}")
    for revision in revisions:
        for down in revision.down_revisions:
            if down not in known:
                raise BadInput(
                    f"{revision.path} follows revision {down}, which no file in {folder}"
                    " declares: repair the chain of revisions (see `alembic history`) first"
                )
    followed = {down for revision in revisions for down in revision.down_revisions}
    heads = sorted(known.keys() - followed)
    if revisions and not heads:
        raise BadInput(f"the revisions in {folder} form a cycle: repair the chain first")
    if len(heads) > 1:
        raise BadInput(
            f"the revisions in {folder} have several heads ({', '.join(heads)}): merge them with"
            " `alembic merge heads` first, so that a new revision has one to follow"
        )
    return heads[0] if heads else None


def read_revisions(root: Path, folder: str) -> list[Revision]:
    """The revision files of `folder`, as Alembic lists them: `*.py` but `__init__.py`."""
    directory = root / folder
    if not directory.is_dir():
        return []
    return [
        _read_revision(path, path.relative_to(root).as_posix())
        for path in sorted(directory.glob("*.py"))
        if not path.name.startswith(("__init__", ".#"))
    ]


def _read_revision(path: Path, name: str) -> Revision:
    try:
        module = ast.parse(path.read_text(encoding="utf-8"), filename=name)
    except SyntaxError as error:
        raise BadInput(f"{name}, line {error.lineno}: {error.msg}") from error
    constants = _chain_constants(module, name)
    revision = constants.get("revision")
    if not isinstance(revision, str) or not revision:
        raise BadInput(f'{name} declares no `revision = "<id>"` that scaffold can read')
    down = constants.get("down_revision")
    downs = (down,) if isinstance(down, str) else down
    if downs is None:
        return Revision(revision, (), name)
    if not isinstance(downs, tuple | list) or not all(isinstance(d, str) for d in downs):
        raise BadInput(f"{name}: down_revision must be None, a revision id or a tuple of them")
    return Revision(revision, tuple(downs), name)


def _chain_constants(module: ast.Module, name: str) -> dict[str, object]:
    """The values the module assigns to `revision` and `down_revision` at its top level."""
    constants: dict[str, object] = {}
    for node in module.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            try:
                constants[target.id] = ast.literal_eval(value)
            except ValueError as error:
                raise BadInput(
                    f"{name}, line {node.lineno}: {target.id} is not a literal, which scaffold"
                    " cannot read without running the file"
                ) from error
    return constants


def revision_id(slug: str, down_revision: str | None) -> str:
    """A revision id in Alembic's form (12 hex digits), the same on every run for the same
    revision: rendering never draws random ids or reads the clock."""
    return hashlib.sha256(f"{slug} after {down_revision}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a revision, with the comment lines written above it."""

    comments: tuple[str, ...]
    """The `--` comments above it, as Python comments."""
    sql: str
    """The statement, without its final `;`; empty for comments that stand alone."""

    @property
    def code(self) -> str:
        """The line of a revision's body that runs it; none for comments that stand alone."""
        return f"op.execute({self.literal})" if self.sql else ""

    @property
    def literal(self) -> str:
        """The statement as the Python string an `op.execute(...)` in a function body takes: on
        its line if it fits in ruff's line length, else a block of its own."""
        prefix = "r" if "\\" in self.sql else ""
        one_line = f'    op.execute({prefix}"{self.sql}")'
        if "\n" not in self.sql and '"' not in self.sql and len(one_line) <= LINE_LENGTH:
            return f'{prefix}"{self.sql}"'
        block = textwrap.indent(self.sql, " " * 8)
        return f'{prefix}"""\n{block}\n    """'


@dataclass(frozen=True)
class Call:
    """A line of Python of a revision's body, such as `alembic_upgrade("1.0")`."""

    code: str
    comments: tuple[str, ...] = ()


def sql_statements(script: str) -> list[Statement]:
    """The statements of a SQL script scaffold rendered, for one `op.execute` each: asyncpg (the
    driver of FastAPI projects) prepares what SQLAlchemy runs, and a prepared statement holds one.

    A statement ends with a line ending in `;` outside a `$$` body, and comment lines before it
    (or before a blank line, for those that stand alone) go with it: scaffold's SQL templates
    write nothing else.
    """
    statements: list[Statement] = []
    comments: list[str] = []
    lines: list[str] = []
    in_body = False
    for line in script.splitlines():
        if not lines and line.startswith("--"):
            comments.append(f"#{line[2:]}")
        elif not lines and not line.strip():
            if comments:
                statements.append(Statement(tuple(comments), ""))
                comments = []
        else:
            lines.append(line)
            in_body ^= line.count("$$") % 2 == 1
            if line.endswith(";") and not in_body:
                statements.append(Statement(tuple(comments), "\n".join(lines)[:-1]))
                comments, lines = [], []
    if lines:
        raise ValueError(f"a statement does not end with ';': {lines[0]}")
    if comments:
        statements.append(Statement(tuple(comments), ""))
    return statements
