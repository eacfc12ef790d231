"""Add SSE routers to, and remove them from, the module that defines a user's FastAPI app.

The app is a module-level `app = FastAPI(...)`, or a factory: a function that assigns the app to
a name and returns it, as `uvicorn --factory` runs. A factory's routers are included in its body,
before it returns. A router counts as included whatever name it was imported under.

Every edit goes through libcst, so each line the edit does not touch keeps its exact text.
"""

import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import takewhile
from typing import TypeVar, cast

import libcst as cst
from libcst.helpers import get_full_name_for_node_or_raise

from scaffold.errors import BadInput
from scaffold.layout import Router
from scaffold.pycode import from_import, module_sort_key

_Node = TypeVar("_Node", bound=cst.CSTNode)
_Statement = cst.SimpleStatementLine | cst.BaseCompoundStatement
_Unwired = Callable[[cst.BaseSmallStatement], cst.BaseSmallStatement | None]


def parse_python(source: str, filename: str) -> cst.Module:
    """`source` parsed; a syntax error is reported as Python reports it: file, line, message."""
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        try:
            ast.parse(source, filename)
        except SyntaxError as python_error:
            line = f", line {python_error.lineno}" if python_error.lineno else ""
            message = f"{filename}{line}: {python_error.msg}"
        except ValueError as python_error:  # a null byte, before Python 3.12
            message = f"{filename}: {python_error}"
        else:  # Python reads it, libcst does not: syntax newer than libcst
            raise BadInput(
                f"{filename}, line {error.editor_line}: scaffold's Python parser (libcst) cannot"
                f" read this yet: {error.message}"
            ) from error
        raise BadInput(f"{message}; fix it and run the command again") from error


def fastapi_apps(module: cst.Module) -> list[str]:
    """The names `[tool.scaffold] app` may give in this module: each module-level
    `name = FastAPI(...)`, each factory function that can be called without arguments (as
    `uvicorn --factory` and the test servers call it), and `name = factory(...)` for the others."""
    names: list[str] = []
    needing_arguments: set[str] = set()
    for statement in module.body:
        if isinstance(statement, cst.FunctionDef) and _factory(statement) is not None:
            if _callable_without_arguments(statement):
                names.append(statement.name.value)
            else:
                needing_arguments.add(statement.name.value)
        elif isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                names += _fastapi_names(small)
                names += [
                    name
                    for name in _assignment(small)[0]
                    if _caller(small, name) in needing_arguments
                ]
    return names


def _callable_without_arguments(function: cst.FunctionDef) -> bool:
    parameters = function.params
    named = (*parameters.posonly_params, *parameters.params, *parameters.kwonly_params)
    return all(parameter.default is not None for parameter in named)


def wire_routers(
    source: str,
    app_name: str,
    wirings: Sequence[Router],
    *,
    filename: str,
    package: str,
    first_party: str,
) -> str:
    """Return `source` with each wiring's router imported and included in the app.

    A router already imported under any name is included under that name (relative imports are
    read in `package`, the app module's). Includes go after the app's existing ones. Imports go
    where ruff's isort wants them: sorted into the block of `first_party` imports, or into a new
    block after the last import; one too long for a line is wrapped as ruff format does.
    """
    module, app = _parse(source, app_name, filename, package)
    included = app.included
    wired = app.wired
    imports: list[Router] = []
    includes: list[str] = []
    for wiring in dict.fromkeys(wirings):
        if wiring.path in wired:
            continue
        reference = _reference(wiring, app.references)
        if reference is None:
            imports.append(wiring)
            reference = wiring.alias
        if reference not in included and reference not in includes:
            includes.append(reference)
    scope = list(app.scope)
    include_at = 1 + max(
        index
        for index in range(app.at, len(scope))
        if index == app.at or _calls_include_router(scope[index], app.variable)
    )
    scope[include_at:include_at] = [
        _statement(f"{app.variable}.include_router({reference})") for reference in includes
    ]
    body = app.module_body(module, scope)
    for end, wiring in enumerate(imports, start=app.index):
        _insert_import(body, end, wiring, first_party)
    return module.with_changes(body=body).code


def unwire_routers(
    source: str, app_name: str, wirings: Sequence[Router], *, filename: str, package: str
) -> str:
    """Return `source` without the imports and include_router calls of those routers.

    Every other line is left untouched; comments and blank lines above a removed line stay, but
    for the blank line that wire_routers adds above an import.
    """
    module, app = _parse(source, app_name, filename, package)
    routers = {wiring.path for wiring in wirings}
    imported = routers | {wiring.module for wiring in wirings}  # the router, or its module
    aliases = {wiring.alias for wiring in wirings}

    def unwired(node: cst.BaseSmallStatement) -> cst.BaseSmallStatement | None:
        if _is_include_call(node, app.variable):
            argument = _argument(cast(cst.Expr, node))
            removed = argument in aliases or _denoted(argument, app.references) in routers
            return None if removed else node
        if not isinstance(node, cst.Import | cst.ImportFrom) or isinstance(
            node.names, cst.ImportStar
        ):
            return node
        names = _rebuilt(
            node.names,
            lambda alias: None if _imported_path(node, alias, package) in imported else alias,
            "comma",
        )
        return node.with_changes(names=names) if names else None

    packages = {wiring.module.partition(".")[0] for wiring in wirings}
    body: Sequence[_Statement] = module.body
    if app.factory is not None:
        block = cast(cst.IndentedBlock, app.factory.body)
        scope, block_footer = _without(app.scope, block.footer, unwired, packages)
        body = app.module_body(module, scope, block_footer)
    body, footer = _without(body, module.footer, unwired, packages)
    return module.with_changes(body=body, footer=footer).code


def missing_wirings(
    source: str, app_name: str, wirings: Sequence[Router], *, filename: str, package: str
) -> list[Router]:
    """The wirings whose router the app does not include, under any name."""
    _, app = _parse(source, app_name, filename, package)
    wired = app.wired
    return [wiring for wiring in wirings if wiring.path not in wired]


@dataclass(frozen=True)
class _App:
    """Where the app module makes its app and includes its routers, and what its imports name."""

    index: int
    """In the module's body: the `app = FastAPI(...)` statement, or the factory."""
    variable: str
    """The name the app has where its routers are included: `app.include_router(...)`."""
    scope: Sequence[_Statement]
    """The statements that include routers: the module's, or the factory's body."""
    at: int
    """In `scope`: the statement that assigns the app."""
    factory: cst.FunctionDef | None
    references: dict[str, str]
    """What each name bound by an import denotes (see `_references`)."""

    @property
    def included(self) -> list[str | None]:
        """The router of each `app.include_router(router, **options)` among the app's
        statements, as a dotted name (None if it is another expression)."""
        return [
            _argument(cast(cst.Expr, small))
            for statement in self.scope
            if isinstance(statement, cst.SimpleStatementLine)
            for small in statement.body
            if _is_include_call(small, self.variable)
        ]

    @property
    def wired(self) -> set[str | None]:
        """The dotted paths of the routers the app includes, under whatever name."""
        return {_denoted(argument, self.references) for argument in self.included}

    def module_body(
        self,
        module: cst.Module,
        scope: Sequence[_Statement],
        footer: Sequence[cst.EmptyLine] | None = None,
    ) -> list[_Statement]:
        """The module's statements with `scope`, and a factory's `footer`, as the app's."""
        if self.factory is None:
            return list(scope)
        block = cast(cst.IndentedBlock, self.factory.body)
        body = list(module.body)
        body[self.index] = self.factory.with_changes(
            body=block.with_changes(body=scope, footer=block.footer if footer is None else footer)
        )
        return body


def _parse(source: str, app_name: str, filename: str, package: str) -> tuple[cst.Module, _App]:
    """The parsed module and where its app is: `app_name = FastAPI(...)`, the factory
    `app_name`, or the factory that makes it in `app_name = factory(...)`."""
    module = parse_python(source, filename)
    assignments = [
        (index, small)
        for index, statement in enumerate(module.body)
        if isinstance(statement, cst.SimpleStatementLine)
        for small in statement.body
    ]
    for index, small in assignments:
        if app_name in _fastapi_names(small):
            references = _references(module.body, package)
            return module, _App(index, app_name, module.body, index, None, references)
    functions = {
        statement.name.value: (index, statement)
        for index, statement in enumerate(module.body)
        if isinstance(statement, cst.FunctionDef)
    }
    made_by = (_caller(small, app_name) for _, small in assignments)  # app = create_app()
    name = app_name if app_name in functions else next(filter(None, made_by), app_name)
    if name not in functions:
        raise BadInput(
            f"{filename} defines no '{app_name} = FastAPI(...)' and no factory {app_name}() that"
            " returns one; set [tool.scaffold] app to your FastAPI application or to its"
            " factory, as module:name"
        )
    index, function = functions[name]
    found = _factory(function)
    if found is None:
        raise BadInput(
            f"{filename}: scaffold cannot include routers in {name}(): a factory assigns the app"
            " to a name, as in `app = FastAPI(...)`, and ends with `return app`"
        )
    variable, at = found
    scope = _block(function)
    references = _references([*module.body, *scope], package)
    return module, _App(index, variable, scope, at, function, references)


def _caller(small: cst.BaseSmallStatement, name: str) -> str | None:
    """`function` if `small` is `name = function(...)`."""
    names, value = _assignment(small)
    if name in names and isinstance(value, cst.Call) and isinstance(value.func, cst.Name):
        return value.func.value
    return None


def _factory(function: cst.FunctionDef) -> tuple[str, int] | None:
    """(the app's name, the index of the statement that assigns it) if `function` is a factory.

    A factory, sync or async, ends with `return name`, and assigns `name` in its body: to
    `FastAPI(...)`, or to anything if the function is annotated `-> FastAPI`.
    """
    if not isinstance(function.body, cst.IndentedBlock) or not function.body.body:
        return None
    *body, last = _block(function)
    variable = _returned_name(last)
    if variable is None:
        return None
    values = {
        index: value
        for index, statement in enumerate(body)
        if isinstance(statement, cst.SimpleStatementLine)
        for small in statement.body
        for names, value in [_assignment(small)]
        if variable in names
    }
    annotated = function.returns is not None and _is_fastapi(function.returns.annotation)
    if values and (annotated or any(_is_fastapi_call(value) for value in values.values())):
        return variable, max(values)
    return None


def _block(function: cst.FunctionDef) -> list[_Statement]:
    """The statements of a function's indented body."""
    return [
        statement
        for statement in cast(cst.IndentedBlock, function.body).body
        if isinstance(statement, cst.SimpleStatementLine | cst.BaseCompoundStatement)
    ]


def _fastapi_names(small: cst.BaseSmallStatement) -> list[str]:
    """The names `small` assigns `FastAPI(...)` to."""
    names, value = _assignment(small)
    return names if _is_fastapi_call(value) else []


def _assignment(small: cst.BaseSmallStatement) -> tuple[list[str], cst.BaseExpression | None]:
    """The plain names an assignment binds, and the value it binds them to."""
    if isinstance(small, cst.Assign):
        names = [target.target for target in small.targets]
        return [name.value for name in names if isinstance(name, cst.Name)], small.value
    if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
        return [small.target.value], small.value
    return [], None


def _references(statements: Sequence[_Statement], package: str) -> dict[str, str]:
    """What each name bound by an import among `statements` denotes, as a dotted path: `from a.b
    import c as d` binds `d` to a.b.c, `import a.b as c` binds `c` to a.b, and `import a.b` binds
    `a.b`; in a module of package `a`, `from .b import c` binds `c` to a.b.c."""
    references: dict[str, str] = {}
    for statement in statements:
        for node in statement.body if isinstance(statement, cst.SimpleStatementLine) else ():
            if isinstance(node, cst.Import | cst.ImportFrom) and not isinstance(
                node.names, cst.ImportStar
            ):
                for alias in node.names:
                    if (path := _imported_path(node, alias, package)) is not None:
                        references[alias.evaluated_alias or alias.evaluated_name] = path
    return references


def _imported_path(
    node: cst.Import | cst.ImportFrom, alias: cst.ImportAlias, package: str
) -> str | None:
    """The dotted path an alias of an import denotes, a relative one in `package`; None if that
    climbs above the top-level package."""
    if isinstance(node, cst.Import):
        return alias.evaluated_name
    parts = [get_full_name_for_node_or_raise(node.module)] if node.module else []
    if node.relative:
        up = len(node.relative) - 1  # `from . import` is the package itself
        outer = package.split(".") if package else []
        if up >= len(outer):
            return None
        parts = [*outer[: len(outer) - up], *parts]
    return ".".join([*parts, alias.evaluated_name])


def _denoted(argument: str | None, references: dict[str, str]) -> str | None:
    """The dotted path a name or attribute denotes through the imports: with `from a.b import c
    as d`, `d` denotes a.b.c and `d.router` a.b.c.router."""
    if argument is None:
        return None
    if argument in references:
        return references[argument]
    head, _, attribute = argument.rpartition(".")
    return f"{references[head]}.{attribute}" if head in references else None


def _reference(wiring: Router, references: dict[str, str]) -> str | None:
    """How the module's imports already name the wiring's router, if they do."""
    for name, path in references.items():
        if path == wiring.path:
            return name
        if path == wiring.module:
            return f"{name}.{wiring.name}"
    return None


def _argument(include: cst.Expr) -> str | None:
    """The router an include_router call mounts, as a dotted name; None if it is not one."""
    return _dotted(cast(cst.Call, include.value).args[0].value)


def _dotted(expression: cst.BaseExpression) -> str | None:
    if isinstance(expression, cst.Name):
        return expression.value
    if isinstance(expression, cst.Attribute) and (value := _dotted(expression.value)) is not None:
        return f"{value}.{expression.attr.value}"
    return None


def _without(
    statements: Sequence[_Statement],
    footer: Sequence[cst.EmptyLine],
    unwired: _Unwired,
    packages: set[str],
) -> tuple[list[_Statement], list[cst.EmptyLine]]:
    """`statements` and `footer` without what `unwired` drops from each line.

    The blank lines and comments above a removed line go to the next statement kept (or to the
    footer), but for the blank line wire_routers adds above an import of the `packages`.
    """
    kept: list[_Statement | None] = []  # each statement rebuilt; None if nothing is left of it
    for statement in statements:
        if isinstance(statement, cst.SimpleStatementLine):
            small = _rebuilt(statement.body, unwired, "semicolon")
            kept.append(statement.with_changes(body=small) if small else None)
        else:
            kept.append(statement)
    block_left = any(
        _in_package(name, package)
        for statement in kept
        if statement is not None
        for _, name in _imported(statement)
        for package in packages
    )
    body: list[_Statement] = []
    orphaned: list[cst.EmptyLine] = []  # blank lines and comments above a removed line
    for index, (original, rebuilt) in enumerate(zip(statements, kept, strict=True)):
        if rebuilt is None:
            lines = original.leading_lines
            if not orphaned and _imported(original) and _is_blank_line(lines):
                below = next(
                    (later.leading_lines for later in kept[index:] if later is not None), footer
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
    return body, [*orphaned, *footer]


def _rebuilt(
    items: Sequence[_Node], rebuild: Callable[[_Node], _Node | None], separator: str
) -> list[_Node]:
    """Each item rebuilt, minus those it drops; a dropped last item hands its separator on."""
    rebuilt = [rebuild(item) for item in items]
    kept = [item for item in rebuilt if item is not None]
    if kept and rebuilt[-1] is None:
        kept[-1] = kept[-1].with_changes(**{separator: getattr(items[-1], separator)})
    return kept


def _insert_import(body: list[_Statement], end: int, wiring: Router, first_party: str) -> None:
    """Insert the wiring's import into `body[:end]` where ruff's isort would put it."""
    imports = {index: names for index in range(end) if (names := _imported(body[index]))}
    block = [
        index
        for index, names in imports.items()
        if any(_in_package(name, first_party) for _, name in names)
    ]
    key = module_sort_key(wiring.module)
    if block:  # before the first first-party `from` import that sorts after it, else at the end
        at = next(
            (
                index
                for index in block
                if any(
                    is_from and _in_package(name, first_party) and module_sort_key(name) > key
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


def _import_end(body: Sequence[_Statement]) -> int:
    """Index just past the docstring and import statements that open the module."""
    return next(
        (
            index
            for index, statement in enumerate(body)
            if not _is_import_line(statement) and not (index == 0 and _is_docstring(statement))
        ),
        len(body),
    )


def _is_name(node: cst.CSTNode | None, name: str) -> bool:
    return isinstance(node, cst.Name) and node.value == name


def _is_fastapi(node: cst.BaseExpression) -> bool:
    """`FastAPI` or `fastapi.FastAPI`."""
    if isinstance(node, cst.Attribute):
        return _is_name(node.value, "fastapi") and node.attr.value == "FastAPI"
    return _is_name(node, "FastAPI")


def _is_fastapi_call(node: cst.BaseExpression | None) -> bool:
    """`FastAPI(...)` or `fastapi.FastAPI(...)`."""
    return isinstance(node, cst.Call) and _is_fastapi(node.func)


def _returned_name(statement: _Statement) -> str | None:
    """`name` if the statement is `return name` alone on its line."""
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        returned = statement.body[0]
        if isinstance(returned, cst.Return) and isinstance(returned.value, cst.Name):
            return returned.value.value
    return None


def _is_docstring(statement: _Statement) -> bool:
    """A string literal alone on its line."""
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )


def _is_import_line(statement: _Statement) -> bool:
    """A line of imports only."""
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and bool(statement.body)
        and all(isinstance(small, cst.Import | cst.ImportFrom) for small in statement.body)
    )


def _calls_include_router(statement: _Statement, variable: str) -> bool:
    """Whether the line calls `<variable>.include_router`, with whatever arguments."""
    return isinstance(statement, cst.SimpleStatementLine) and any(
        _include_router_call(small, variable) is not None for small in statement.body
    )


def _is_include_call(small: cst.BaseSmallStatement, variable: str) -> bool:
    """`<variable>.include_router(router, **options)`."""
    call = _include_router_call(small, variable)
    if call is None or not call.args:
        return False
    router, *options = call.args
    return (
        router.keyword is None
        and router.star == ""
        and all(isinstance(option.keyword, cst.Name) for option in options)
    )


def _include_router_call(small: cst.BaseSmallStatement, variable: str) -> cst.Call | None:
    """The call if `small` is `<variable>.include_router(...)`."""
    if not (isinstance(small, cst.Expr) and isinstance(small.value, cst.Call)):
        return None
    function = small.value.func
    if not (isinstance(function, cst.Attribute) and _is_name(function.value, variable)):
        return None
    return small.value if function.attr.value == "include_router" else None


def _statement(code: str) -> _Statement:
    return cst.parse_statement(f"{code}\n")
