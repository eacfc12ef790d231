"""`scaffold list`: the recorded channels, with their routes, names and files."""

from dataclasses import dataclass
from pathlib import Path

from scaffold.layout import channel_layout
from scaffold.project import ChannelRecord, Project, Trigger, load_project


@dataclass(frozen=True)
class ChannelSummary:
    name: str
    module: str
    route: str
    channel_name: str
    """Its name in the runtime: `Channel(...)`, and its events' `channel` in PostgreSQL."""
    trigger: Trigger | None
    """The trigger that emits the channel's events, if any."""
    files: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        columns = self.trigger.columns if self.trigger else None
        return {
            "name": self.name,
            "module": self.module,
            "route": self.route,
            "channel_name": self.channel_name,
            "trigger": self.trigger.target if self.trigger else None,
            "audience": self.trigger.audience if self.trigger else None,
            "columns": None if columns is None else list(columns),
            "files": list(self.files),
        }


def list_channels(project_dir: Path) -> tuple[Project, tuple[ChannelSummary, ...]]:
    project = load_project(project_dir)
    return project, tuple(_summary(project, record) for record in project.channels)


def _summary(project: Project, record: ChannelRecord) -> ChannelSummary:
    layout = channel_layout(project, record)
    return ChannelSummary(
        name=record.name,
        module=record.module,
        route=layout.route,
        channel_name=layout.names.channel_name,
        trigger=record.trigger,
        files=layout.files,
    )
