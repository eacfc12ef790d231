"""The `scaffold` command line: parses arguments, calls a command, prints what it returned.

Kept thin on purpose: commands live in `scaffold._commands`, and are imported only when run so
that start-up stays fast.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from scaffold.errors import ConflictError, ScaffoldError

if TYPE_CHECKING:
    from scaffold.plan import Plan

app = typer.Typer(
    help="Generate PostgreSQL-backed Server-Sent Events channels into FastAPI projects.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _commands() -> None:
    """Generate PostgreSQL-backed Server-Sent Events channels into FastAPI projects."""


_ACTION_COLOURS = {"create": "green", "update": "yellow", "conflict": "red"}

ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project",
        help="The project folder (default: the nearest one with a pyproject.toml).",
        show_default=False,
    ),
]


@app.command(
    "create-sse-channel",
    epilog=(
        "Example: scaffold create-sse-channel Stock in inventory"
        " --table baskets --user-column user_id"
    ),
)
def create_sse_channel(
    channel: Annotated[str, typer.Argument(help="Channel name: Stock, StockLevel, stock_level.")],
    in_: Annotated[str, typer.Argument(metavar="in", help="The word 'in'.", show_default=False)],
    module: Annotated[str, typer.Argument(help="Module name: inventory, warehouse-ops.")],
    project: ProjectOption = None,
    table: Annotated[
        str | None, typer.Option(help="Also emit from a trigger on this table.", show_default=False)
    ] = None,
    user_column: Annotated[
        str | None,
        typer.Option(help="The --table column holding the target user id.", show_default=False),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; write nothing.")
    ] = False,
    diff: Annotated[
        bool, typer.Option("--diff", help="With the plan, show unified diffs.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite generated files edited by hand.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the plan or result as JSON.")
    ] = False,
) -> None:
    """Add a real-time SSE channel: notify service, SSE route, SQL migration and tests."""
    from scaffold._commands.create_sse_channel import ChannelRequest
    from scaffold._commands.create_sse_channel import create_sse_channel as run

    with _reported():
        if in_ != "in":
            raise typer.BadParameter(
                f"expected the word 'in' between the channel and the module, got {in_!r}",
                param_hint="'in'",
            )
        request = ChannelRequest(channel, module, table, user_column)
        result = run(project or Path.cwd(), request, dry_run=dry_run, force=force)
        if json_output:
            typer.echo(result.plan.to_json())
            return
        _print_plan(result.plan, diff=diff)
        if result.applied:
            typer.secho(f"\nChannel ready: GET {result.route}", bold=True)
            typer.echo(f"Apply {result.migration} to your database, then run your tests.")
        elif dry_run:
            typer.echo("\nDry run: nothing was written.")


def _print_plan(plan: "Plan", *, diff: bool) -> None:
    unchanged = 0
    for change in plan.changes:
        action = change.action.value
        if action == "unchanged":
            unchanged += 1
            continue
        typer.echo(typer.style(f"{action:>8}", fg=_ACTION_COLOURS[action]) + f"  {change.path}")
    if unchanged:
        typer.echo(f"{unchanged} file{'s' if unchanged > 1 else ''} unchanged")
    if diff:
        for change in plan.changes:
            if change.action.value in ("create", "update", "conflict"):
                typer.echo(change.diff(), nl=False)


@contextmanager
def _reported() -> Iterator[None]:
    """Turn a `ScaffoldError` into its message on stderr and its exit code."""
    try:
        yield
    except ConflictError as error:
        for change in error.plan.conflicts:
            typer.echo(change.diff(), nl=False, err=True)
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(error.exit_code) from None
    except ScaffoldError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(error.exit_code) from None


def main() -> None:
    app(prog_name="scaffold")


if __name__ == "__main__":
    main()
