"""`scaffold create-sse-channel <ChannelName> in <module>`: render, plan, apply one channel."""

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from scaffold.apply import apply_plan
from scaffold.errors import BadInput
from scaffold.layout import channel_layout, creation_migration, sql_migrations
from scaffold.manifest import DependencyChange, dependency_changes
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
    dependencies: tuple[DependencyChange, ...]
    """What the plan's edit of pyproject.toml adds to the project's dependencies or raises."""
    unchecked: str | None
    """What scaffold could not check of the trigger's table in the migrations, if anything."""


def create_sse_channel(
    project_dir: Path, request: ChannelRequest, *, dry_run: bool = False, force: bool = False
) -> CreateResult:
    """Add the channel to the project; with `dry_run`, only say what would change."""
    recorded = load_project(project_dir)
    record = _record(recorded, request)
    unchecked = _check_table(recorded, record.trigger) if record not in recorded.channels else None
    project = dataclasses.replace(
        recorded, channels=(*[r for r in recorded.channels if r.names != record.names], record)
    )
    check_distinct(project.channels)
    plan = plan_project(project, recorded=recorded)
    if force:
        plan = plan.forced()
    layout = channel_layout(project, record)
    dependencies = dependency_changes(project.pyproject.read_text(encoding="utf-8"))
    if not dry_run:
        apply_plan(plan, last="pyproject.toml")
    return CreateResult(
        plan, layout.route, layout.migration_path, record.trigger, dependencies, unchecked
    )


def _record(project: Project, request: ChannelRequest) -> ChannelRecord:
    trigger = _trigger(request)
    names = channel_names(request.channel, request.module, with_trigger=trigger is not None)
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


def _check_table(project: Project, trigger: Trigger | None) -> str | None:
    """Refuse a trigger whose table or columns the migrations show do not exist; say what they
    cannot tell."""
    if trigger is None:
        return None
    if project.alembic is not None:
        return (
            "scaffold does not read Alembic revisions: it cannot tell whether"
            f" {trigger.target} exists"
        )
    from scaffold.schema import read_schema

    wanted = [trigger.user_column, *(trigger.columns or ())]
    missing, unchecked = read_schema(sql_migrations(project)).table_problem(trigger.table, wanted)
    if missing:
        raise BadInput(
            f"--table {trigger.table} --user-column {trigger.user_column}: {missing}; check the"
            " names, or write the table's migration first"
        )
    return unchecked


def _describe(trigger: Trigger | None) -> str:
    if trigger is None:
        return "no trigger"
    return f"a trigger on {trigger.target} carrying {trigger.payload}"
