"""The `scaffold` command line as typer parses it: parses arguments, calls a command, prints what
it returned.

Kept thin on purpose: commands live in `scaffold._commands`, and are imported only when run so
that start-up stays fast. `scaffold._cli`, the entry point, runs the commonest command lines
without typer's parser, and `scaffold check` in sync without typer at all.
"""

import json
import shlex
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from scaffold.errors import ConflictError, ScaffoldError

if TYPE_CHECKING:
    from scaffold._commands.check import CheckReport, Finding
    from scaffold.against import Comparison
    from scaffold.plan import Plan
    from scaffold.project import Trigger

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


_ACTION_COLOURS = {
    "create": "green",
    "update": "yellow",
    "delete": "yellow",
    "conflict": "red",
    "kept": "yellow",
}
_STATUS_COLOURS = {
    "missing": "yellow",
    "outdated": "yellow",
    "modified": "red",
    "missing wiring": "yellow",
    "too low": "yellow",
    "new schema": "yellow",
    "upgrade": "yellow",
    "records": "yellow",
    "old wiring": "yellow",
    "unused": "yellow",
}

ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project",
        help="The project folder (default: the nearest one with a pyproject.toml).",
        show_default=False,
    ),
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Print the plan; write nothing.")]
DiffOption = Annotated[bool, typer.Option("--diff", help="With the plan, show unified diffs.")]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Overwrite (or delete) generated files edited by hand.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON, for tools.")]
ChannelArgument = Annotated[
    str, typer.Argument(help="Channel name: Stock, StockLevel, stock_level.")
]
InArgument = Annotated[str, typer.Argument(metavar="in", help="The word 'in'.", show_default=False)]
ModuleArgument = Annotated[str, typer.Argument(help="Module name: inventory, warehouse-ops.")]


@app.command(
    "create-sse-channel",
    epilog=(
        "Example: scaffold create-sse-channel Stock in inventory"
        " --table baskets --user-column user_id"
    ),
)
def create_sse_channel(
    channel: ChannelArgument,
    in_: InArgument,
    module: ModuleArgument,
    project: ProjectOption = None,
    table: Annotated[
        str | None, typer.Option(help="Also emit from a trigger on this table.", show_default=False)
    ] = None,
    user_column: Annotated[
        str | None,
        typer.Option(
            help=(
                "The --table column holding the target user id, or FK_COLUMN.USER_COLUMN: the"
                " user column of the row that a foreign key of the changed row references."
            ),
            show_default=False,
        ),
    ] = None,
    group_column: Annotated[
        str | None,
        typer.Option(
            help=(
                "Instead of --user-column: the --table column naming the group each row's events"
                " go to (every member of it), or FK_COLUMN.GROUP_COLUMN."
            ),
            show_default=False,
        ),
    ] = None,
    columns: Annotated[
        list[str] | None,
        typer.Option(
            metavar="COL[,COL...]",
            help=(
                "With --table: the columns each event carries, such as id,status. Default: every"
                " column of the row, secrets included."
            ),
            show_default=False,
        ),
    ] = None,
    dry_run: DryRunOption = False,
    diff: DiffOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Add a real-time SSE channel: notify service, SSE route, tests, and the migrations it needs
    (the runtime's schema, once per project; the trigger of --table)."""
    from scaffold._commands.create_sse_channel import ChannelRequest
    from scaffold._commands.create_sse_channel import create_sse_channel as run

    with _reported():
        _expect_in(in_)
        request = ChannelRequest(
            channel, module, table, user_column, group_column, _listed(columns)
        )
        result = run(project or Path.cwd(), request, dry_run=dry_run, force=force)
    trigger = result.trigger
    if _show(
        result.plan,
        json_output=json_output,
        diff=diff,
        dry_run=dry_run,
        notes=[
            *(_trigger_notes(trigger, result.unchecked, result.membership) if trigger else ()),
            *(f"pyproject.toml: {change}" for change in result.dependencies),
        ],
        fields={
            "trigger": trigger.as_json() if trigger else None,
            "unchecked": result.unchecked,
            "membership": result.membership,
            "dependencies": [change.as_json() for change in result.dependencies],
        },
    ):
        _say_what_create_did(result.plan, channel, module, result.route, result.migrations)


def _say_what_create_did(
    plan: "Plan", channel: str, module: str, route: str, migrations: Sequence[str]
) -> None:
    """The next step: applying the migrations this run wrote, if any."""
    if not plan.pending:
        typer.secho(
            f"\nChannel {channel} in {module} is already in place (GET {route}): nothing changed.",
            bold=True,
        )
        return
    typer.secho(f"\nChannel ready: GET {route}", bold=True)
    written = _written(plan, migrations)
    typer.echo(f"{_apply_step(written)}, then run your tests." if written else "Run your tests.")


def _written(plan: "Plan", migrations: Sequence[str]) -> list[str]:
    """Those of `migrations` the plan creates, in their order."""
    from scaffold.plan import Action

    created = {change.path for change in plan.changes if change.action is Action.CREATE}
    return [migration for migration in migrations if migration in created]


@app.command("remove-sse-channel", epilog="Example: scaffold remove-sse-channel Stock in inventory")
def remove_sse_channel(
    channel: ChannelArgument,
    in_: InArgument,
    module: ModuleArgument,
    project: ProjectOption = None,
    drop_data: Annotated[
        bool,
        typer.Option("--drop-data", help="Also delete the channel's events."),
    ] = False,
    dry_run: DryRunOption = False,
    diff: DiffOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Remove a channel: its generated files, wiring and manifest entry. A new migration drops
    its trigger, if it has one, and with --drop-data deletes its events; earlier migrations are
    never touched."""
    from scaffold._commands.remove_sse_channel import remove_sse_channel as run

    with _reported():
        _expect_in(in_)
        result = run(
            project or Path.cwd(),
            channel,
            module,
            drop_data=drop_data,
            dry_run=dry_run,
            force=force,
        )
    if _show(result.plan, json_output=json_output, diff=diff, dry_run=dry_run):
        typer.secho(f"\nChannel {channel} in {module} removed.", bold=True)
        if result.migration is not None:
            typer.echo(f"{_apply_step([result.migration])}.")


@app.command(
    "check",
    epilog=(
        "Exit status: 0 in sync, 1 out of sync or a breaking change to the events, 2 bad"
        " configuration or an unknown REF."
    ),
)
def check(
    project: ProjectOption = None,
    json_output: JsonOption = False,
    against: Annotated[
        str | None,
        typer.Option(
            metavar="REF",
            help=(
                "Also compare every channel's events with those at this git commit (HEAD,"
                " origin/main): a field or event type gone, a type old readers or replayed"
                " events cannot read, a field made required fails."
            ),
            show_default=False,
        ),
    ] = None,
    accept: Annotated[
        bool,
        typer.Option(
            "--accept",
            help=(
                "With --against: accept the breaking changes found, on purpose, by adding them to"
                " [[tool.scaffold.accepted_breaks]] of pyproject.toml (it removes none)."
            ),
        ),
    ] = False,
) -> None:
    """Compare every recorded channel's generated files and wiring with the disk."""
    from scaffold._cli import run_check

    with _reported():
        exit_code = run_check(project, json_output, against, accept)
    if exit_code:
        raise typer.Exit(exit_code)


def print_check(report: "CheckReport", fix: str | None, project: Path | None) -> None:
    """What `scaffold check` found out of sync, and with `--against` the breaking changes."""
    if fix is not None:
        _print_findings(report.findings)
        typer.echo(f"\nOut of sync. To fix: {fix}")
    if report.against is not None:
        _print_breaks(report.against, project)


def _print_findings(findings: "Sequence[Finding]") -> None:
    """Each finding, with its diff but for outdated files: their update is scaffold's own."""
    for finding in findings:
        status = typer.style(f"{finding.status:>14}", fg=_STATUS_COLOURS[finding.status])
        details = ", ".join(finding.routers) or "; ".join(finding.requirements) or finding.detail
        typer.echo(f"{status}  {finding.path}{f' ({details})' if details else ''}")
        if finding.status != "outdated":
            typer.echo(finding.diff or "", nl=False)
    if any(finding.status == "outdated" for finding in findings):
        typer.echo(
            "\nOutdated files hold what scaffold last wrote, not edited since, and their source"
            " changed\n(a newer scaffold, or an events file the TypeScript client is read from):\n"
            "`scaffold sync` updates them; `scaffold sync --dry-run --diff` shows how."
        )


def _print_breaks(comparison: "Comparison", project: Path | None) -> None:
    """The breaking changes of the events since the commit compared against, those accepted,
    and the accepted entries that match none against it."""
    ref = comparison.revision.ref
    if comparison.revision.commit is None:
        typer.echo(f"{ref} has no commit yet (this is the first one): no events to compare with.")
        return
    for title, breaks in (("Accepted", comparison.accepted), ("Breaking", comparison.breaks)):
        for found in breaks:
            status = typer.style(f"{title.lower():>14}", fg="red" if title == "Breaking" else None)
            typer.echo(f"{status}  {found.location(ref)}: {found.describe()}")
    for hidden in comparison.not_compared:
        typer.echo(f"{'not compared':>14}  {hidden.path}:{hidden.line}: {hidden.describe()}")
    for entry in comparison.stale:
        listed = ", ".join(f"{key} = {json.dumps(value)}" for key, value in entry.items())
        typer.echo(f"{'not matched':>14}  [[tool.scaffold.accepted_breaks]] {listed}")
    channels = f"{comparison.channels} channel{'' if comparison.channels == 1 else 's'}"
    since = f"{ref} ({comparison.revision.commit[:12]})"
    if comparison.written:
        typer.echo(
            f"\nAccepted in pyproject.toml: the breaking changes to the events since {since}."
        )
    elif comparison.breaks:
        words = ["scaffold", "check", "--against", ref, "--accept"]
        words += ["--project", str(project)] if project is not None else []
        typer.echo(
            f"\nBreaking changes to the events of {channels} since {since}: readers on one side"
            " of the deploy cannot read the events of the other. Undo them, or accept them on"
            f" purpose: {shlex.join(words)}"
        )
    else:
        but = ", but those accepted" if comparison.accepted else ""
        typer.echo(f"No breaking change to the events of {channels} since {since}{but}.")
    if comparison.stale:
        typer.echo(
            f"Accepted breaks marked `not matched` match no break against {ref}, which may"
            " already have the change. Keep them while a commit you check against (the target"
            " branch in CI) lacks it; delete them by hand once it has it."
        )


@app.command("sync")
def sync(
    project: ProjectOption = None,
    dry_run: DryRunOption = False,
    diff: DiffOption = False,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Regenerate what `scaffold check` reports: every recorded channel's files and wiring, and
    the migrations to the runtime's newest schema."""
    from scaffold._commands.sync import sync as run

    with _reported():
        result = run(project or Path.cwd(), dry_run=dry_run, force=force)
    if _show(result.plan, json_output=json_output, diff=diff, dry_run=dry_run) and (
        written := _written(result.plan, result.migrations)
    ):
        typer.echo(f"\n{_apply_step(written)}.")


@app.command("init")
def init(
    project: ProjectOption = None,
    prefix: Annotated[
        str,
        typer.Option(
            help="The path before every stream route, where the app serves its API: /api/v1.",
            show_default=False,
        ),
    ] = "",
    dry_run: DryRunOption = False,
) -> None:
    """Add a [tool.scaffold] table to an existing FastAPI project's pyproject.toml."""
    from scaffold._commands.init import init as run

    with _reported():
        result = run(project or Path.cwd(), prefix=prefix, dry_run=dry_run)
    if not result.settings:
        typer.echo("pyproject.toml already has a [tool.scaffold] table: nothing to do.")
    elif _show(result.plan, json_output=False, diff=True, dry_run=dry_run):
        typer.echo("\nNext: scaffold create-sse-channel <ChannelName> in <module>")


@app.command("list")
def list_channels(project: ProjectOption = None, json_output: JsonOption = False) -> None:
    """Show the recorded channels: their routes, PostgreSQL channel names and files."""
    from scaffold._commands.list_channels import list_channels as run

    with _reported():
        found, channels = run(project or Path.cwd())
    if json_output:
        listed = {"project": str(found.root), "channels": [c.as_json() for c in channels]}
        typer.echo(json.dumps(listed, indent=2))
        return
    if not channels:
        typer.echo(
            f"No channel is recorded in {found.pyproject}; add one with"
            " scaffold create-sse-channel <ChannelName> in <module>"
        )
    for summary in channels:
        typer.secho(f"{summary.name} in {summary.module}", bold=True)
        typer.echo(f"  route               GET {summary.route}")
        typer.echo(f"  channel name        {summary.channel_name}")
        if summary.trigger:
            typer.echo(f"  trigger on          {summary.trigger.target}")
            typer.echo(f"  events go to        {summary.trigger.recipient}")
            typer.echo(f"  events carry        {summary.trigger.payload}")
        typer.echo("  files               " + "\n                      ".join(summary.files))


@app.command("asyncapi", epilog="Example: scaffold asyncapi --output asyncapi.json")
def asyncapi(
    project: ProjectOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="The file to write (default: stdout).", show_default=False),
    ] = None,
    python: Annotated[
        Path | None,
        typer.Option(
            "--python",
            help=(
                "The project's Python interpreter, with fastapi-pg-sse installed (default: its"
                " .venv's, else scaffold's)."
            ),
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write the AsyncAPI 3.0 document of the project's channels, as its app serves it at
    /asyncapi.json."""
    from scaffold._commands.asyncapi import asyncapi as run

    with _reported():
        document = run(project or Path.cwd(), output=output, python=python)
    if output is None:
        typer.echo(document.text, nl=False)
    else:
        channels = f"{document.channels} channel{'' if document.channels == 1 else 's'}"
        typer.echo(f"Wrote the AsyncAPI document of {channels} to {output}.")


def _apply_step(migrations: Sequence[str]) -> str:
    """How the user applies migrations scaffold wrote: Alembic revisions, or SQL files."""
    listed = ", ".join(migrations)
    if migrations[0].endswith(".py"):
        return f"Run `alembic upgrade head` to apply {listed}"
    return f"Apply {listed} to your database"


def _listed(values: list[str] | None) -> tuple[str, ...] | None:
    """`--columns id,status --columns stock` as ("id", "status", "stock")."""
    if values is None:
        return None
    return tuple(item.strip() for value in values for item in value.split(",") if item.strip())


def _trigger_notes(trigger: "Trigger", unchecked: str | None, membership: str | None) -> list[str]:
    """What the plan says of a trigger: to whom its events go (and why none would receive
    them), what they carry to the browser, and what scaffold could not check of its table."""
    notes = [f"Trigger on {trigger.table}: each event goes to {trigger.recipient}."]
    if trigger.columns is not None:
        notes.append(
            f"Trigger on {trigger.table}: each event carries the columns {trigger.payload}."
        )
    else:
        notes += [
            f"Trigger on {trigger.table}: each event carries every column of the row to the"
            " browser.",
            f"Choose them with --columns if {trigger.table} holds secrets (password hashes,"
            " tokens).",
        ]
    if membership:
        notes.insert(1, f"Trigger on {trigger.table}: {membership}.")
    if unchecked:
        notes.append(f"Trigger on {trigger.table}: {unchecked}.")
    return notes


def _expect_in(word: str) -> None:
    if word != "in":
        raise typer.BadParameter(
            f"expected the word 'in' between the channel and the module, got {word!r}",
            param_hint="'in'",
        )


def _show(
    plan: "Plan",
    *,
    json_output: bool,
    diff: bool,
    dry_run: bool,
    notes: Sequence[str] = (),
    fields: Mapping[str, object] | None = None,
) -> bool:
    """Print the plan as asked, with `notes` after its files or `fields` in its JSON; return
    whether the command should go on to say what it did."""
    if json_output:
        typer.echo(plan.to_json(**(fields or {})))
        return False
    _print_plan(plan, diff=diff, notes=notes)
    if dry_run:
        typer.echo("\nDry run: nothing was written.")
    return not dry_run


def _print_plan(plan: "Plan", *, diff: bool, notes: Sequence[str] = ()) -> None:
    kept = plan.kept
    unchanged = 0
    for change in plan.changes:
        action = change.action.value
        if change in kept:
            action = "kept"
        elif action == "unchanged":
            unchanged += 1
            continue
        typer.echo(typer.style(f"{action:>8}", fg=_ACTION_COLOURS[action]) + f"  {change.path}")
    if unchanged:
        typer.echo(f"{unchanged} file{'s' if unchanged > 1 else ''} unchanged")
    if kept:
        typer.echo(
            "Kept files were written by scaffold once and edited since, and no channel needs them"
            " any more: delete them once you no longer need what they hold (what a row factory"
            " of scaffold 0.4 inserts goes in a realtime_row_factory fixture now)."
        )
    for note in notes:
        typer.echo(note)
    if diff:
        for change in plan.pending:
            typer.echo(change.diff(), nl=False)


@contextmanager
def _reported() -> Iterator[None]:
    """Turn a `ScaffoldError` into its message on stderr and its exit code."""
    try:
        yield
    except ScaffoldError as error:
        raise typer.Exit(report_error(error)) from None


def report_error(error: ScaffoldError) -> int:
    """Print `error` on stderr (a conflict's diffs first); return its exit code."""
    if isinstance(error, ConflictError):
        for change in error.plan.conflicts:
            typer.echo(change.diff(), nl=False, err=True)
    typer.secho(f"error: {error}", fg="red", err=True)
    return error.exit_code
