"""Snippets of Python source come out as ruff writes them: imports in the order of ruff's isort,
calls wrapped as `ruff format` wraps them, at any length."""

import random
import subprocess
import sys

from scaffold.pycode import (
    LINE_LENGTH,
    Import,
    import_block,
    import_lines,
    module_sort_key,
    parenthesized,
    wrapped_call,
    wrapped_def,
)

# Module names where natural order, case and the characters around digits decide.
NATURALLY_ORDERED = [
    "zz.a.b",
    "zz.a0",
    "zz.a00",
    "zz.a01",
    "zz.a02x",
    "zz.a09",
    "zz.a1",
    "zz.a2.c",
    "zz.a2_c",
    "zz.a9b",
    "zz.a10",
    "zz.a10b",
    "zz.a_b",
    "zz.ab",
    "zz.Inventory.x",
    "zz.inventory.x",
    "zz.inventory2.x",
    "zz.inventory_replenishment.x",
]


def ruff(*arguments: str, source: str) -> str:
    """What ruff, with its defaults and `arguments`, says about `source`; "" if it passes."""
    run = subprocess.run(
        [sys.executable, "-m", "ruff", *arguments, "--isolated", "--stdin-filename", "code.py"],
        input=source,
        capture_output=True,
        text=True,
        check=False,
    )
    return "" if run.returncode == 0 else run.stdout + run.stderr


def test_modules_sort_naturally_ignoring_case_then_by_case() -> None:
    shuffled = random.Random(9).sample(NATURALLY_ORDERED, len(NATURALLY_ORDERED))

    assert sorted(shuffled, key=module_sort_key) == NATURALLY_ORDERED


def test_import_lines_come_in_the_order_ruffs_isort_wants() -> None:
    shuffled = random.Random(9).sample(NATURALLY_ORDERED, len(NATURALLY_ORDERED))
    lines = import_lines((module, f"NAME_{index}") for index, module in enumerate(shuffled))

    assert ruff("check", "--select", "I", source="\n".join(lines) + "\n") == ""


def test_an_import_block_is_sectioned_and_sorted_as_ruffs_isort_wants() -> None:
    names = ["payload_of", "UUID", "ServedApp", "X", "a10", "Literal", "a9", "JSON_VALUE", "_x"]
    imports = [Import("fastapi_pg_sse.testing", name) for name in names]
    imports += [Import("zz"), Import("collections.abc", "Iterable"), Import("zz")]
    ordered = ["JSON_VALUE", "UUID", "Literal", "ServedApp", "X", "_x", "a9", "a10", "payload_of"]

    block = import_block(imports)

    assert block == "\n".join(
        [
            "from collections.abc import Iterable",
            "",
            "import zz",
            "from fastapi_pg_sse.testing import (",
            *(f"    {name}," for name in ordered),
            ")",
        ]
    )
    assert ruff("check", "--select", "I", source=block + "\n") == ""
    assert ruff("format", "--check", source=block + "\n") == ""


def test_names_that_fit_share_one_line() -> None:
    assert import_lines([("typing", "Literal"), ("typing", "ClassVar")]) == [
        "from typing import ClassVar, Literal"
    ]


def test_a_call_that_fits_stays_on_one_line() -> None:
    assert wrapped_call("X = Channel(", ['"stock"']) == 'X = Channel("stock")'


def test_arguments_that_fit_one_line_go_on_an_indented_line_of_their_own() -> None:
    opening = "router = APIRouter("
    arguments = [f'prefix="/{"p" * 40}"', 'tags=["inventory"]']

    assert wrapped_call(opening, arguments) == f"{opening}\n    {', '.join(arguments)}\n)"


def test_arguments_that_do_not_fit_one_line_go_one_a_line_with_a_trailing_comma() -> None:
    arguments = [f'prefix="/{"p" * 60}"', 'tags=["inventory"]']

    assert wrapped_call("router = APIRouter(", arguments) == (
        f"router = APIRouter(\n    {arguments[0]},\n    {arguments[1]},\n)"
    )


def test_a_lone_argument_takes_no_trailing_comma_even_when_too_long() -> None:
    argument = f'"{"c" * LINE_LENGTH}"'

    assert wrapped_call("X = Channel(", [argument]) == f"X = Channel(\n    {argument}\n)"


def test_an_indented_call_wraps_one_level_deeper() -> None:
    constant = f"{'S' * 52}_CHANNEL"

    assert wrapped_call("    return streams.open(", [constant, "user"]) == (
        f"    return streams.open(\n        {constant}, user\n    )"
    )


def test_a_value_too_long_for_its_line_goes_in_parentheses_on_a_line_of_its_own() -> None:
    value = f'"{"a" * 76}"'

    assert parenthesized("    return ", value) == f"    return (\n        {value}\n    )"


def test_a_value_that_fits_or_cannot_fit_anyway_stays_on_its_line() -> None:
    fits, too_long = f'"{"a" * 75}"', f'"{"a" * 79}"'

    assert parenthesized("    return ", fits) == f"    return {fits}"
    assert parenthesized("    return ", too_long) == f"    return {too_long}"


def test_wrapped_and_parenthesized_code_of_every_length_is_ruff_formatted() -> None:
    statements = []
    for length in range(60, 92):  # across each threshold of the three shapes
        target = "x" * (length - len(' = f("")'))  # `{target} = f(` fits on a line
        statements.append(wrapped_call(f"{target} = f(", ['"a"']))
        statements.append(wrapped_call(f"{target} = f(", [f'"{target}"']))
        statements.append(wrapped_call("y = f(", [f"a={target}", "b=1"]))
        statements.append(wrapped_call("y = f(", [f'"{target}"', "b=1", f"c={target}"]))
        signature = wrapped_def(f"def f_{target}(", ["a: int", "b: str"], ") -> None:")
        lone = wrapped_def(f"def h_{target}(", ["connection: int"], ") -> None:")
        statements.append(f"\n\n{lone}\n    pass\n\n")
        body = wrapped_call(f"    return f_{target}(", [f"b_{target}", "a"])
        statements.append(parenthesized("long_name_of_a_string = ", f'"{target}"'))
        string = parenthesized("    return ", f'"{target}"')
        statements.append(f"\n\n{signature}\n{body}\n\n\ndef g() -> str:\n{string}\n\n")
    source = "\n".join(statements).strip() + "\n"

    assert ruff("format", "--check", "--diff", source=source) == ""
