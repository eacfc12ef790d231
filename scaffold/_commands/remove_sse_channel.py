"""`scaffold remove-sse-channel <ChannelName> in <module>`: undo a channel through the pipeline.

Its generated files are deleted, its wiring and manifest entry removed, and the channel registry
with them when it was the last channel. Its migrations stay, being history: a new one (a SQL file,
or an Alembic revision after the current head) drops its trigger and, with `--drop-data`, deletes
its events; a channel without either needs none.
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from scaffold.apply import apply_plan
from scaffold.errors import BadInput
from scaffold.layout import migration_path, removal_slug
from scaffold.names import channel_names
from scaffold.pipeline import desired_state, up_to_date
from scaffold.plan import Desired, Ownership, Plan, make_plan
from scaffold.project import ChannelRecord, Project, load_project
from scaffold.render import removal_needed, render_removal


@dataclass(frozen=True)
class RemoveResult:
    plan: Plan
    migration: str | None
    """The migration that drops its trigger or deletes its events; None if it needs neither."""


def remove_sse_channel(
    project_dir: Path,
    channel: str,
    module: str,
    *,
    drop_data: bool = False,
    dry_run: bool = False,
    force: bool = False,
) -> RemoveResult:
    """Remove the channel from the project; with `dry_run`, only say what would change."""
    recorded = load_project(project_dir)
    record = _recorded(recorded, channel, module)
    if recorded.legacy:
        raise BadInput(
            f"the channels of {recorded.pyproject} were made before fastapi-pg-sse kept their"
            " events in its own schema: run `scaffold sync` first, which upgrades them, then"
            " remove the channel"
        )
    then = [removal_slug(record.names)] if removal_needed(record, drop_data=drop_data) else []
    upgraded, own = up_to_date(recorded, then=then)
    project = dataclasses.replace(
        upgraded, channels=tuple(r for r in upgraded.channels if r != record)
    )
    desired = desired_state(project, recorded=recorded)
    path = None
    if own:
        path = migration_path(project, own[0])
        removal = render_removal(project, record, own[0], drop_data=drop_data)
        desired[path] = Desired(removal, Ownership.CREATED_ONCE)
    plan = make_plan(project.root, desired)
    if force:
        plan = plan.forced()
    if not dry_run:
        apply_plan(plan, last="pyproject.toml")
    return RemoveResult(plan, path)


def _recorded(project: Project, channel: str, module: str) -> ChannelRecord:
    names = channel_names(channel, module)
    for record in project.channels:
        if record.names == names:
            return record
    recorded = ", ".join(f"{r.name} in {r.module}" for r in project.channels) or "none"
    raise BadInput(
        f"channel {channel} in {module} is not recorded in {project.pyproject}"
        f" (recorded channels: {recorded}); see `scaffold list`"
    )
