"""Python source snippets written the way ruff writes them, whatever names they hold.

Import lines in the order of ruff's isort (rules I), calls wrapped as `ruff format` wraps them:
generated code passes both at the default line length for any name `scaffold.names` accepts.
"""

import re
import sys
from collections.abc import Iterable, Sequence
from typing import NamedTuple

LINE_LENGTH = 88
"""ruff's default, which the generated code and the wired app module are held to."""

_TOKENS = re.compile(r"([0-9]+)|(.)", re.DOTALL)
"""A run of ASCII digits, or any one other character."""

NaturalOrder = list[tuple[str | int, ...]]


class Import(NamedTuple):
    """`from module import name`, or `import module` without a name."""

    module: str
    name: str | None = None


def from_import(module: str, name: str, alias: str | None = None) -> str:
    """`from module import name [as alias]`, parenthesised if it does not fit on one line."""
    return _from_line(module, [name if alias in (None, name) else f"{name} as {alias}"])


def import_lines(imports: Iterable[tuple[str, str | None]]) -> list[str]:
    """The lines of one section of imports (the standard library's, say) as ruff's isort writes
    them: the `import module` lines, then one `from` line per module with all its names, modules
    and names each in ruff's order."""
    names: dict[str, set[str]] = {}
    for module, name in set(imports):
        names.setdefault(module, set())
        if name is not None:
            names[module].add(name)
    modules = sorted(names, key=lambda module: (bool(names[module]), module_sort_key(module)))
    return [
        _from_line(module, sorted(names[module], key=_member_sort_key))
        if names[module]
        else f"import {module}"
        for module in modules
    ]


def import_block(imports: Iterable[Import]) -> str:
    """The imports as ruff's isort writes them at the top of a module: the standard library's
    section, then the third-party one (anything else), a blank line between them."""
    imports = list(imports)
    standard = [i for i in imports if i.module.split(".")[0] in sys.stdlib_module_names]
    sections = [standard, [i for i in imports if i not in standard]]
    return "\n\n".join("\n".join(import_lines(section)) for section in sections if section)


def _from_line(module: str, names: Sequence[str]) -> str:
    """`from module import` the names, one a line in parentheses if they do not fit on one."""
    code = f"from {module} import {', '.join(names)}"
    if len(code) <= LINE_LENGTH:
        return code
    return "\n".join([f"from {module} import (", *(f"    {name}," for name in names), ")"])


def _member_sort_key(name: str) -> tuple[int, NaturalOrder, NaturalOrder]:
    """The order ruff's isort gives the names of one `from` import (`order-by-type`): constants
    (`UUID`), then classes, then anything else, each group as `module_sort_key` orders."""
    kind = 0 if len(name) > 1 and name.isupper() else 1 if name[0].isupper() else 2
    return (kind, *module_sort_key(name))


def module_sort_key(module: str) -> tuple[NaturalOrder, NaturalOrder]:
    """The order ruff's isort gives the modules of `from` imports in one section: natural order
    ignoring case, then natural order (so `inventory.x` < `inventory2.x` < `inventory_x.x`)."""
    return _natural_order(module.lower()), _natural_order(module)


def wrapped_call(opening: str, arguments: Sequence[str], closing: str = ")") -> str:
    """`opening` + the arguments + `closing`, wrapped as ruff format wraps a call it splits.

    On one line if it fits; else the arguments on one line of their own, indented one level more
    than `opening`, between the brackets; else one argument a line with a trailing comma, but for
    a lone argument, which ruff leaves alone. `opening` fits on a line and ends with the bracket,
    e.g. `X = Channel(` or `    return streams.open(`; each argument is an atom ruff does not
    split (a name, a string, `key="value"`). For a `def`, see `wrapped_def`.
    """
    indent = opening[: len(opening) - len(opening.lstrip())]
    inner = f"{indent}    "
    joined = ", ".join(arguments)
    if len(f"{opening}{joined}{closing}") <= LINE_LENGTH:
        return f"{opening}{joined}{closing}"
    if len(arguments) == 1 or len(f"{inner}{joined}") <= LINE_LENGTH:
        return f"{opening}\n{inner}{joined}\n{indent}{closing}"
    lines = [f"{inner}{argument}," for argument in arguments]
    return "\n".join([opening, *lines, f"{indent}{closing}"])


def wrapped_def(opening: str, parameters: Sequence[str], closing: str) -> str:
    """A `def` line as ruff format writes it: as `wrapped_call` writes a call, but a lone
    parameter that does not fit goes on a line of its own with a trailing comma."""
    wrapped = wrapped_call(opening, parameters, closing)
    if len(parameters) != 1 or "\n" not in wrapped:
        return wrapped
    indent = opening[: len(opening) - len(opening.lstrip())]
    return f"{opening}\n{indent}    {parameters[0]},\n{indent}{closing}"


def parenthesized(head: str, value: str) -> str:
    """`head` + `value`, such as `    return ` and a string, as ruff format writes it when the
    line is too long: the value in parentheses on a line of its own, if it fits there."""
    indent = head[: len(head) - len(head.lstrip())]
    inner = f"{indent}    {value}"
    if len(f"{head}{value}") <= LINE_LENGTH or len(inner) > LINE_LENGTH:
        return f"{head}{value}"
    return f"{head}(\n{inner}\n{indent})"


def _natural_order(text: str) -> NaturalOrder:
    """A sort key for the natural order ruff compares names in (the `natord` crate's): a run of
    digits compares with another as a number, any other character as itself."""
    return [(char,) if char else _digit_run_key(digits) for digits, char in _TOKENS.findall(text)]


def _digit_run_key(digits: str) -> tuple[str | int, ...]:
    """Runs of digits in natural order: by value, but one with a leading zero digit by digit and
    before any run without. The leading "0" makes a run compare with a character as a digit."""
    if digits.startswith("0"):
        return ("0", 0, digits)
    return ("0", 1, len(digits), digits)


def union(head: str, members: Sequence[str]) -> str:
    """`head` + the union of `members`, such as `StockEvent = ` and three classes, as ruff
    format writes it: on one line, else in parentheses on a line of its own, else one member a
    line, each after the first led by `| `."""
    value = " | ".join(members)
    if len(f"{head}{value}") <= LINE_LENGTH or len(f"    {value}") <= LINE_LENGTH:
        return parenthesized(head, value)
    lines = [f"    {members[0]}", *(f"    | {member}" for member in members[1:])]
    return "\n".join([f"{head}(", *lines, ")"])


def annotated(name: str, annotation: str) -> str:
    """A class attribute `name: annotation`, one level in, as ruff format writes it when too
    long: a `list[...]` split inside its brackets, any other annotation in parentheses."""
    line = f"    {name}: {annotation}"
    if len(line) <= LINE_LENGTH:
        return line
    if annotation.startswith("list[") and annotation.endswith("]") and "] |" not in annotation:
        return f"    {name}: list[\n        {annotation[5:-1]}\n    ]"
    return f"    {name}: (\n        {annotation}\n    )"
