"""The command lines `scaffold._cli` reads itself, without typer's parser: read as typer reads them.

`scaffold create-sse-channel` and `scaffold check` skip typer's parser, which imports pydantic;
every parameter the command gets must be what typer would have given it, and any other command
line must go to typer, which parses and explains it.
"""

import functools
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scaffold import _app
from scaffold._cli import _check_options, _create_options

CREATE_LINES = [
    ["Stock", "in", "inventory"],
    ["Stock", "in", "inventory", "--table", "baskets", "--user-column", "user_id"],
    ["--table", "t", "Stock", "in", "inventory", "--columns", "a,b", "--columns", "c", "--json"],
    ["Stock", "--diff", "in", "--group-column", "", "inv", "--dry-run", "--dry-run", "--force"],
    ["Stock", "in", "inv", "--project", "x", "--project", "y"],
    ["Stock", "in", "inv", "--table", "--force"],
]

TYPERS_LINES = [
    ["--help"],
    ["Stock", "in", "inventory", "--help"],
    ["Stock", "on", "inventory"],
    ["Stock", "in"],
    ["Stock", "in", "inventory", "extra"],
    ["Stock", "in", "inventory", "--table=baskets"],
    ["Stock", "in", "inventory", "--table"],
    ["Stock", "in", "inventory", "--no-dry-run"],
    ["--", "Stock", "in", "inventory"],
]


@pytest.fixture
def given_by_typer() -> Iterator[list[dict[str, Any]]]:
    """The parameters typer calls `create-sse-channel` with, the command replaced by a spy."""
    command = next(c for c in _app.app.registered_commands if c.name == "create-sse-channel")
    real = command.callback
    assert real is not None
    calls: list[dict[str, Any]] = []

    @functools.wraps(real)
    def spy(**parameters: Any) -> None:
        calls.append(parameters)

    command.callback = spy
    try:
        yield calls
    finally:
        command.callback = real


@pytest.mark.parametrize("line", CREATE_LINES, ids=" ".join)
def test_create_sse_channel_gets_what_typer_gives_it(
    line: list[str], given_by_typer: list[dict[str, Any]]
) -> None:
    args = ["create-sse-channel", *line]
    _app.app(args, prog_name="scaffold", standalone_mode=False)
    read = _create_options(args)
    assert read is not None
    bound = inspect.signature(_app.create_sse_channel).bind(**read)
    bound.apply_defaults()
    assert bound.arguments == given_by_typer[0]


@pytest.mark.parametrize("line", TYPERS_LINES, ids=" ".join)
def test_any_other_create_sse_channel_line_goes_to_typer(line: list[str]) -> None:
    assert _create_options(["create-sse-channel", *line]) is None


def test_check_lines_are_read_as_typer_reads_them() -> None:
    assert _check_options(["check", "--project", "x", "--json", "--against", "HEAD"]) == (
        Path("x"),
        True,
        "HEAD",
        False,
    )
    assert _check_options(["check", "--help"]) is None
    assert _check_options(["create-sse-channel", "Stock", "in", "inventory"]) is None
