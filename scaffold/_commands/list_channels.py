"""`scaffold list`: the recorded channels, with their routes, PostgreSQL names and files."""

from dataclasses import dataclass
from pathlib import Path

from scaffold.layout import channel_layout
from scaffold.project import ChannelRecord, Project, load_project


@dataclass(frozen=True)
class ChannelSummary:
    name: str
    module: str
    route: str
    pg_channel: str
    events_table: str
    trigger: str | None
    """`table.user_column` of the trigger that emits the channel's events, if any."""
    columns: tuple[str, ...] | None
    """The columns the trigger's events carry; None: every column of the row (or no trigger)."""
    payload: str | None
    """What the trigger's events carry, in words, if there is a trigger."""
    files: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "module": self.module,
            "route": self.route,
            "pg_channel": self.pg_channel,
            "events_table": self.events_table,
            "trigger": self.trigger,
            "columns": None if self.columns is None else list(self.columns),
            "files": list(self.files),
        }


def list_channels(project_dir: Path) -> tuple[Project, tuple[ChannelSummary, ...]]:
    project = load_project(project_dir)
    return project, tuple(_summary(project, record) for record in project.channels)


def _summary(project: Project, record: ChannelRecord) -> ChannelSummary:
    layout = channel_layout(project, record)
    trigger = record.trigger
    return ChannelSummary(
        name=record.name,
        module=record.module,
        route=layout.route,
        pg_channel=layout.names.pg_channel,
        events_table=layout.names.events_table,
        trigger=f"{trigger.table}.{trigger.user_column}" if trigger else None,
        columns=trigger.columns if trigger else None,
        payload=trigger.payload if trigger else None,
        files=layout.files,
    )
