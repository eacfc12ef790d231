"""Add SSE routers to, and remove them from, the module that defines a user's FastAPI app.

Every edit goes through libcst, so each line the edit does not touch keeps its exact text.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import takewhile
from typing import TypeVar

import libcst as cst
import libcst.matchers as m
from libcst.helpers import get_full_name_for_node, get_full_name_for_node_or_raise

from scaffold.errors import BadInput
from scaffold.pycode import from_import

_Node = TypeVar("_Node", bound=cst.CSTNode)
_Statement = cst.SimpleStatementLine | cst.BaseCompoundStatement

_FASTAPI_CALL = m.Call(func=m.Name("FastAPI") | m.Attribute(m.Name("fastapi"), m.Name("FastAPI")))
_DOCSTRING = m.SimpleStatementLine(body=[m.Expr(m.SimpleString() | m.ConcatenatedString())])
_IMPORT_LINE = m.SimpleStatementLine(body=[m.AtLeastN(m.Import() | m.ImportFrom(), n=1)])


@dataclass(frozen=True)
class RouterWiring:
    """A router the app module imports from `module` as `alias` and mounts with include_router."""

    module: str
    name: str
    alias: str


def wire_routers(
    source: str,
    app_name: str,
    wirings: Sequence[RouterWiring],
    *,
    filename: str,
    first_party: str,
) -> str:
    """Return `source` with each wiring's import and `app.include_router(alias)` present.

    Imports go where ruff's isort wants them: sorted into the block of `first_party` imports, or
    into a new block after the last import; one too long for a line is wrapped as ruff format does.
    """
    module, app_at = _parse(source, app_name, filename)
    body = list(module.body)
    includes = [
        _statement(f"{app_name}.include_router({alias})")
        for alias in dict.fromkeys(wiring.alias for wiring in wirings)
        if not _has(body, _include_of(app_name, alias))
    ]
    any_include = _line_with(m.Expr(m.Call(func=_include_router(app_name))))
    include_at = 1 + max(
        index
        for index in range(app_at, len(body))
        if index == app_at or m.matches(body[index], any_include)
    )
    body[include_at:include_at] = includes
    for wiring in dict.fromkeys(wirings):
        if not _has(body, _import_of(wiring)):
            _insert_import(body, app_at, wiring, first_party)
            app_at += 1
    return module.with_changes(body=body).code


def unwire_routers(
    source: str, app_name: str, wirings: Sequence[RouterWiring], *, filename: str
) -> str:
    """Return `source` without those imports and include_router calls.

    Every other line is left untouched; comments and blank lines above a removed line stay, but
    for the blank line that wire_routers adds above an import.
    """
    module, _ = _parse(source, app_name, filename)
    kept: list[_Statement | None] = []  # each statement rebuilt; None if nothing is left of it
    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            small = _rebuilt(
                statement.body, lambda node: _unwired(node, app_name, wirings), "semicolon"
            )
            kept.append(statement.with_changes(body=small) if small else None)
        else:
            kept.append(statement)
    packages = {wiring.module.partition(".")[0] for wiring in wirings}
    block_left = any(
        _in_package(name, package)
        for statement in kept
        if statement is not None
        for _, name in _imported(statement)
        for package in packages
    )
    body: list[_Statement] = []
    orphaned: list[cst.EmptyLine] = []  # blank lines and comments above a removed line
    for index, (original, rebuilt) in enumerate(zip(module.body, kept, strict=True)):
        if rebuilt is None:
            lines = original.leading_lines
            if not orphaned and _imported(original) and _is_blank_line(lines):
                below = next(
                    (later.leading_lines for later in kept[index:] if later is not None),
                    module.footer,
                )
                # the blank line wire_routers gave the import: it doubled one below, or set off a
                # first-party block the removal empties from the imports above it
                if _is_blank_line(below[:1]) or (not block_left and body and _imported(body[-1])):
                    lines = []
            orphaned.extend(lines)
            continue
        if orphaned:
            rebuilt = rebuilt.with_changes(leading_lines=[*orphaned, *rebuilt.leading_lines])
            orphaned = []
        body.append(rebuilt)
    return module.with_changes(body=body, footer=[*orphaned, *module.footer]).code


def missing_wirings(
    source: str, app_name: str, wirings: Sequence[RouterWiring], *, filename: str
) -> list[RouterWiring]:
    """The wirings whose import or include_router call is absent."""
    module, _ = _parse(source, app_name, filename)
    return [
        wiring
        for wiring in wirings
        if not (
            _has(module.body, _import_of(wiring))
            and _has(module.body, _include_of(app_name, wiring.alias))
        )
    ]


def _parse(source: str, app_name: str, filename: str) -> tuple[cst.Module, int]:
    """The parsed module and the index of its `<app_name> = FastAPI(...)` statement."""
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        raise BadInput(
            f"{filename} does not parse as Python: {error.message}, line {error.editor_line}; "
            "fix it and run the command again"
        ) from error
    app = _line_with(
        m.Assign(
            targets=[m.ZeroOrMore(), m.AssignTarget(m.Name(app_name)), m.ZeroOrMore()],
            value=_FASTAPI_CALL,
        )
    ) | _line_with(m.AnnAssign(target=m.Name(app_name), value=_FASTAPI_CALL))
    for index, statement in enumerate(module.body):
        if m.matches(statement, app):
            return module, index
    raise BadInput(
        f"{filename} defines no '{app_name} = FastAPI(...)'; set [tool.scaffold] app to the "
        "module and variable of your FastAPI application"
    )


def _unwired(
    node: cst.BaseSmallStatement, app_name: str, wirings: Sequence[RouterWiring]
) -> cst.BaseSmallStatement | None:
    """`node` without the wirings' imports and include_router calls; None if nothing is left."""
    if any(m.matches(node, _include_of(app_name, wiring.alias)) for wiring in wirings):
        return None
    if not isinstance(node, cst.ImportFrom) or isinstance(node.names, cst.ImportStar):
        return node
    wired = [_alias_of(wiring) for wiring in wirings if m.matches(node, _import_of(wiring))]
    names = _rebuilt(
        node.names,
        lambda alias: None if any(m.matches(alias, name) for name in wired) else alias,
        "comma",
    )
    return node.with_changes(names=names) if names else None


def _rebuilt(
    items: Sequence[_Node], rebuild: Callable[[_Node], _Node | None], separator: str
) -> list[_Node]:
    """Each item rebuilt, minus those it drops; a dropped last item hands its separator on."""
    rebuilt = [rebuild(item) for item in items]
    kept = [item for item in rebuilt if item is not None]
    if kept and rebuilt[-1] is None:
        kept[-1] = kept[-1].with_changes(**{separator: getattr(items[-1], separator)})
    return kept


def _insert_import(
    body: list[_Statement], end: int, wiring: RouterWiring, first_party: str
) -> None:
    """Insert the wiring's import into `body[:end]` where ruff's isort would put it."""
    imports = {index: names for index in range(end) if (names := _imported(body[index]))}
    block = [
        index
        for index, names in imports.items()
        if any(_in_package(name, first_party) for _, name in names)
    ]
    key = _module_key(wiring.module)
    if block:  # before the first first-party `from` import that sorts after it, else at the end
        at = next(
            (
                index
                for index in block
                if any(
                    is_from and _in_package(name, first_party) and _module_key(name) > key
                    for is_from, name in imports[index]
                )
            ),
            block[-1] + 1,
        )
    else:
        at = max(imports) + 1 if imports else _import_end(body)
    new = _statement(from_import(wiring.module, wiring.name, wiring.alias))
    if imports and not block:  # a new first-party block, one blank line below the imports above
        new = new.with_changes(leading_lines=[cst.EmptyLine()])
    elif not block or at == block[0]:  # first in the block, or in a module without imports
        lines = body[at].leading_lines  # the blank lines above the statement it goes before
        blank = sum(1 for _ in takewhile(lambda line: line.comment is None, lines))
        new = new.with_changes(leading_lines=lines[:blank])
        if block and blank == len(lines):  # no blank line between two imports of a block...
            body[at] = body[at].with_changes(leading_lines=[])
        # ...but one above a comment that follows an import, as ruff format wants
    body.insert(at, new)


def _imported(statement: _Statement) -> list[tuple[bool, str]]:
    """(whether a `from` import, module) of each absolute import in a top-level statement."""
    if not isinstance(statement, cst.SimpleStatementLine):
        return []
    found: list[tuple[bool, str]] = []
    for node in statement.body:
        if isinstance(node, cst.Import):
            found += [(False, get_full_name_for_node_or_raise(alias.name)) for alias in node.names]
        elif isinstance(node, cst.ImportFrom) and node.module is not None and not node.relative:
            found.append((True, get_full_name_for_node_or_raise(node.module)))
    return found


def _is_blank_line(lines: Sequence[cst.EmptyLine]) -> bool:
    return len(lines) == 1 and lines[0].comment is None


def _in_package(module: str, package: str) -> bool:
    return f"{module}.".startswith(f"{package}.")


def _module_key(module: str) -> list[int | str]:
    """ruff's isort order of module names: case-insensitive, runs of digits compared as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split("([0-9]+)", module.lower())]


def _import_end(body: Sequence[_Statement]) -> int:
    """Index just past the docstring and import statements that open the module."""
    return next(
        (
            index
            for index, statement in enumerate(body)
            if not m.matches(statement, _IMPORT_LINE)
            and not (index == 0 and m.matches(statement, _DOCSTRING))
        ),
        len(body),
    )


def _has(body: Sequence[_Statement], small: m.BaseSmallStatement) -> bool:
    return any(m.matches(statement, _line_with(small)) for statement in body)


def _line_with(small: m.BaseSmallStatement) -> m.SimpleStatementLine:
    return m.SimpleStatementLine(body=[m.ZeroOrMore(), small, m.ZeroOrMore()])


def _import_of(wiring: RouterWiring) -> m.ImportFrom:
    return m.ImportFrom(
        module=m.MatchIfTrue(
            lambda module: module is not None and get_full_name_for_node(module) == wiring.module
        ),
        names=[m.ZeroOrMore(), _alias_of(wiring), m.ZeroOrMore()],
        relative=[],
    )


def _alias_of(wiring: RouterWiring) -> m.ImportAlias | m.OneOf[m.ImportAlias]:
    """`name as alias`, or also plain `name` when the two are the same."""
    aliased = m.ImportAlias(name=m.Name(wiring.name), asname=m.AsName(name=m.Name(wiring.alias)))
    if wiring.alias != wiring.name:
        return aliased
    return aliased | m.ImportAlias(name=m.Name(wiring.name), asname=None)


def _include_of(app_name: str, alias: str) -> m.Expr:
    """`<app_name>.include_router(<alias>, **options)`."""
    return m.Expr(
        m.Call(
            func=_include_router(app_name),
            args=[
                m.Arg(m.Name(alias), keyword=None, star=""),
                m.ZeroOrMore(m.Arg(keyword=m.Name())),
            ],
        )
    )


def _include_router(app_name: str) -> m.Attribute:
    return m.Attribute(value=m.Name(app_name), attr=m.Name("include_router"))


def _statement(code: str) -> _Statement:
    return cst.parse_statement(f"{code}\n")
