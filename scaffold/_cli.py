"""The `scaffold` command line's entry point: the commonest command lines, read without typer.

typer coerces every option that is not a flag through pydantic, even one not given, and
importing that costs more than a check takes: `scaffold check` (what the pre-commit hook and CI
run) and `scaffold create-sse-channel` are read here, as typer reads them. A check in sync prints
one line of plain text (or JSON), which typer would print unchanged, so it does not import typer
at all. Any other command line goes to typer (`scaffold._app`), which parses and explains it.
"""

import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from scaffold.errors import BadInput, ScaffoldError

if TYPE_CHECKING:
    import typer

_CREATE_FLAGS = {
    "--dry-run": "dry_run",
    "--diff": "diff",
    "--force": "force",
    "--json": "json_output",
}
"""The flags of `create-sse-channel`, and the parameter of `scaffold._app.create_sse_channel`
each sets."""
_CREATE_VALUES = {
    "--project": "project",
    "--table": "table",
    "--user-column": "user_column",
    "--group-column": "group_column",
    "--columns": "columns",
}
"""Its options that take a value, and the parameter each gives it to."""


def main() -> None:
    args = sys.argv[1:]
    check_options = _check_options(args)
    if check_options is not None:
        try:
            exit_code = run_check(*check_options)
        except ScaffoldError as error:
            from scaffold._app import report_error

            exit_code = report_error(error)
        if exit_code:
            sys.exit(exit_code)
        return
    import typer

    from scaffold._app import app, create_sse_channel

    create_options = _create_options(args)
    if create_options is None:
        app(prog_name="scaffold")
        return
    try:
        create_sse_channel(**create_options)  # type: ignore[arg-type]
    except typer.Exit as done:
        sys.exit(done.exit_code)


def __getattr__(name: str) -> "typer.Typer":
    """`scaffold._cli.app`, the typer app, imported (with typer) only when asked for."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from scaffold._app import app

    return app


def run_check(
    project: Path | None, json_output: bool, against: str | None = None, accept: bool = False
) -> int:
    """`scaffold check`: print what it found, return its exit status (1 out of sync or a
    breaking change). Only what is out of sync, or compared `--against` a commit, is styled and
    printed by typer."""
    from scaffold._commands.check import check

    if accept and against is None:
        raise BadInput(
            "--accept records the breaking changes that --against REF finds: give the commit"
            " to compare with, such as `scaffold check --against origin/main --accept`"
        )
    report = check(project or Path.cwd(), against=against, accept=accept)
    fix = None if report.in_sync else _sync_command(force=report.needs_force, project=project)
    if json_output:
        _say(json.dumps({**report.as_json(), "fix": fix}, indent=2))
    elif fix is None:
        _say(f"In sync: {report.checked} files checked.")
    if not json_output and (fix is not None or report.against is not None):
        from scaffold._app import print_check

        print_check(report, fix, project)
    return 1 if fix is not None or report.breaking else 0


def _say(text: str) -> None:
    """`text` on a line of stdout, flushed: as typer prints plain text (JSON escapes all but
    ASCII)."""
    sys.stdout.write(f"{text}\n")
    sys.stdout.flush()


def _sync_command(*, force: bool, project: Path | None) -> str:
    """The command that brings the project in sync, as the user would type it."""
    words = ["scaffold", "sync", *(["--force"] if force else [])]
    words += ["--project", str(project)] if project is not None else []
    return shlex.join(words)


def _check_options(args: Sequence[str]) -> tuple[Path | None, bool, str | None, bool] | None:
    """The project, `--json`, `--against REF` and `--accept` of `scaffold check`, read as typer
    reads them (the word after `--project` or `--against` is its value); None for any other
    command line, which typer parses (and explains)."""
    if args[:1] != ["check"]:
        return None
    project, json_output, against, accept, rest = None, False, None, False, args[1:]
    while rest:
        if rest[0] == "--json":
            json_output, rest = True, rest[1:]
        elif rest[0] == "--accept":
            accept, rest = True, rest[1:]
        elif rest[0] == "--project" and len(rest) > 1:
            project, rest = Path(rest[1]), rest[2:]
        elif rest[0] == "--against" and len(rest) > 1:
            against, rest = rest[1], rest[2:]
        else:
            return None
    return project, json_output, against, accept


def _create_options(args: Sequence[str]) -> dict[str, object] | None:
    """The parameters of `scaffold create-sse-channel CHANNEL in MODULE [OPTIONS]`, read as
    typer reads them: options before, between or after the three words, the word after an
    option that takes one is its value, the last value given wins but for `--columns`, which
    adds up. None for any other command line (`--help`, `--table=x`, a word other than `in`),
    which typer parses (and explains)."""
    if args[:1] != ["create-sse-channel"]:
        return None
    words: list[str] = []
    options: dict[str, object] = {}
    columns: list[str] = []
    rest = list(args[1:])
    while rest:
        word = rest.pop(0)
        if word in _CREATE_FLAGS:
            options[_CREATE_FLAGS[word]] = True
        elif word in _CREATE_VALUES and rest:
            value = rest.pop(0)
            if word == "--columns":
                columns.append(value)
            else:
                options[_CREATE_VALUES[word]] = Path(value) if word == "--project" else value
        elif word.startswith("-") or len(words) == 3:
            return None
        else:
            words.append(word)
    if len(words) != 3 or words[1] != "in":
        return None
    channel, in_, module = words
    return {"channel": channel, "in_": in_, "module": module, **options} | (
        {"columns": columns} if columns else {}
    )
