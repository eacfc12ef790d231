"""`scaffold create-sse-channel <ChannelName> in <module>`: render, plan, apply one channel."""

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from scaffold.apply import apply_plan
from scaffold.dependencies.changes import DependencyChange
from scaffold.errors import BadInput
from scaffold.layout import channel_layout, sql_migrations, trigger_slug
from scaffold.manifest import dependency_changes
from scaffold.names import channel_names, column_path, payload_columns, sql_identifier
from scaffold.pipeline import migrations_in_order, plan_project, up_to_date
from scaffold.plan import Plan
from scaffold.project import ChannelRecord, Project, Trigger, check_distinct, load_project


@dataclass(frozen=True)
class ChannelRequest:
    channel: str
    module: str
    table: str | None = None
    user_column: str | None = None
    group_column: str | None = None
    """The --table column naming the group each row's events go to, instead of a user column."""
    columns: tuple[str, ...] | None = None
    """The columns the trigger's events carry; None: every column of the row."""


@dataclass(frozen=True)
class CreateResult:
    plan: Plan
    route: str
    migrations: tuple[str, ...]
    """Every migration scaffold renders for the project, in the order they apply: what the plan
    creates of them is what to apply next."""
    trigger: Trigger | None
    """The channel's trigger, as recorded: what its events carry is part of the plan."""
    dependencies: tuple[DependencyChange, ...]
    """What the plan's edit of pyproject.toml adds to the project's dependencies or raises."""
    unchecked: str | None
    """What scaffold could not check of the trigger's table in the migrations, if anything."""
    membership: str | None = None
    """Who would receive the events of a trigger to groups, if the plan must say it (see
    `_membership`)."""


def create_sse_channel(
    project_dir: Path, request: ChannelRequest, *, dry_run: bool = False, force: bool = False
) -> CreateResult:
    """Add the channel to the project; with `dry_run`, only say what would change."""
    recorded = load_project(project_dir)
    trigger = _trigger(request)
    names = channel_names(request.channel, request.module)
    existing = next((r for r in recorded.channels if r.names == names), None)
    if existing is not None and trigger is not None and trigger != existing.trigger:
        raise BadInput(
            f"channel {existing.name} in {existing.module} already exists with"
            f" {_describe(existing.trigger)}; a channel's trigger is made with it: remove the"
            " channel and create it again to change it"
        )
    unchecked = _check_table(recorded, trigger) if existing is None else None
    then = [trigger_slug(names)] if existing is None and trigger is not None else []
    project, own = up_to_date(recorded, adding_channel=True, then=then)
    if existing is None:
        record = ChannelRecord(request.channel, request.module, trigger, next(iter(own), None))
        project = dataclasses.replace(project, channels=(*project.channels, record))
        check_distinct(project.channels)
    else:
        record = next(r for r in project.channels if r.names == names)
    plan = plan_project(project, recorded=recorded)
    if force:
        plan = plan.forced()
    dependencies = dependency_changes(project.pyproject.read_text(encoding="utf-8"))
    if not dry_run:
        apply_plan(plan, last="pyproject.toml")
    return CreateResult(
        plan,
        channel_layout(project, record).route,
        tuple(migrations_in_order(project)),
        record.trigger,
        dependencies,
        unchecked,
        _membership(project, record.trigger),
    )


def _trigger(request: ChannelRequest) -> Trigger | None:
    """The trigger the options ask for: `--table` with either `--user-column` or
    `--group-column`, and perhaps `--columns`; or none."""
    given = {
        audience: column
        for audience, column in (("user", request.user_column), ("group", request.group_column))
        if column is not None
    }
    if request.table is None:
        if given:
            raise BadInput(
                f"--{next(iter(given))}-column says to whom the events of a trigger on --table"
                " go: it needs --table"
            )
        if request.columns is not None:
            raise BadInput(
                "--columns chooses what the events of a trigger carry: it needs --table and"
                " --user-column or --group-column"
            )
        return None
    if len(given) != 1:
        raise BadInput(
            f"--table {request.table} needs either --user-column (each row's events go to the"
            " user it names) or --group-column (to every member of the group it names),"
            f" {'not both' if given else 'to say to whom its events go'}"
        )
    [(audience, column)] = given.items()
    return Trigger(
        sql_identifier(request.table, "--table"),
        column_path(column, f"--{audience}-column"),
        None if request.columns is None else payload_columns(request.columns, "--columns"),
        audience=audience,
    )


def _membership(project: Project, trigger: Trigger | None) -> str | None:
    """Who would receive the events of a trigger to groups, where the plan must say it: none,
    for users of an app's own auth dependency, whose tokens list no groups, without a function
    that says them; with such a function, the channel's test assumes it honours the claim."""
    if trigger is None or trigger.audience != "group":
        return None
    if project.groups and project.auth:
        return (
            "the channel's test signs its user in with the row's group in their token's groups"
            " claim, which your own auth dependency does not pass on: make that user a member"
            f" where {':'.join(project.groups)} looks"
        )
    if project.groups:
        return (
            "the channel's test makes a user a member of the row's group by the groups claim of"
            f" their token: it passes if {':'.join(project.groups)} gives that claim's groups,"
            " else make its user a member where that function looks"
        )
    if project.auth is None:
        return None
    return (
        "the users of the project's own auth dependency are in no group until a function of"
        " yours says which they are in: name it in [tool.scaffold] groups"
    )


def _check_table(project: Project, trigger: Trigger | None) -> str | None:
    """Refuse a trigger whose table or columns the migrations show do not exist; say what they
    cannot tell."""
    if trigger is None:
        return None
    if project.alembic is not None:
        return (
            "scaffold does not read Alembic revisions: it cannot tell whether"
            f" {trigger.target} exists, but the migration refuses to apply if it does not"
        )
    from scaffold.schema import read_schema

    schema = read_schema(sql_migrations(project))
    foreign_key, recipient = trigger.foreign_key, trigger.recipient_column
    wanted = [foreign_key or recipient, *(trigger.columns or ())]
    missing, unchecked = schema.table_problem(trigger.table, wanted)
    if foreign_key and not (missing or unchecked):
        missing, unchecked = schema.referenced_problem(trigger.table, foreign_key, recipient)
    if missing:
        raise BadInput(
            f"--table {trigger.table} {trigger.option} {trigger.column}: {missing}; check the"
            " names, or write the table's migration first"
        )
    return unchecked


def _describe(trigger: Trigger | None) -> str:
    if trigger is None:
        return "no trigger"
    return f"a trigger on {trigger.target} carrying {trigger.payload}"
