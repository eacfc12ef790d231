"""`scaffold create-sse-channel <ChannelName> in <module>`: render, plan, apply one channel."""

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from scaffold.apply import apply_plan
from scaffold.errors import BadInput
from scaffold.layout import channel_layout, creation_migration
from scaffold.names import channel_names, payload_columns, sql_identifier
from scaffold.pipeline import plan_project
from scaffold.plan import Plan
from scaffold.project import ChannelRecord, Project, Trigger, check_distinct, load_project


@dataclass(frozen=True)
class ChannelRequest:
    channel: str
    module: str
    table: str | None = None
    user_column: str | None = None
    columns: tuple[str, ...] | None = None
    """The columns the trigger's events carry; None: every column of the row."""


@dataclass(frozen=True)
class CreateResult:
    plan: Plan
    route: str
    migration: str
    trigger: Trigger | None
    """The channel's trigger, as recorded: what its events carry is part of the plan."""


def create_sse_channel(
    project_dir: Path, request: ChannelRequest, *, dry_run: bool = False, force: bool = False
) -> CreateResult:
    """Add the channel to the project; with `dry_run`, only say what would change."""
    recorded = load_project(project_dir)
    record = _record(recorded, request)
    project = dataclasses.replace(
        recorded, channels=(*[r for r in recorded.channels if r.names != record.names], record)
    )
    check_distinct(project.channels)
    plan = plan_project(project, recorded=recorded)
    if force:
        plan = plan.forced()
    layout = channel_layout(project, record)
    if not dry_run:
        apply_plan(plan, last="pyproject.toml")
    return CreateResult(plan, layout.route, layout.migration_path, record.trigger)


def _record(project: Project, request: ChannelRequest) -> ChannelRecord:
    names = channel_names(request.channel, request.module)
    trigger = _trigger(request)
    existing = next((r for r in project.channels if r.names == names), None)
    if existing is None:
        migration = creation_migration(project, names)
        return ChannelRecord(
            request.channel, request.module, migration.name, trigger, migration.down_revision
        )
    if trigger is not None and trigger != existing.trigger:
        raise BadInput(
            f"channel {existing.name} in {existing.module} already exists with"
            f" {_describe(existing.trigger)}; its migration cannot change: write a new migration"
            " for a different trigger"
        )
    return existing


def _trigger(request: ChannelRequest) -> Trigger | None:
    if (request.table is None) != (request.user_column is None):
        raise BadInput("--table and --user-column go together: name the table and its user column")
    if request.table is None or request.user_column is None:
        if request.columns is not None:
            raise BadInput(
                "--columns chooses what the events of a trigger carry: it needs --table and"
                " --user-column"
            )
        return None
    return Trigger(
        sql_identifier(request.table, "--table"),
        sql_identifier(request.user_column, "--user-column"),
        None if request.columns is None else payload_columns(request.columns, "--columns"),
    )


def _describe(trigger: Trigger | None) -> str:
    if trigger is None:
        return "no trigger"
    return f"a trigger on {trigger.target} carrying {trigger.payload}"
