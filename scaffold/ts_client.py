"""The TypeScript client, when `[tool.scaffold] typescript` names its folder: `client.ts`, the
same in every project, and `channels.ts`, each channel's event types and descriptor.

A channel's types come from its events file as the disk holds it (the user's), or, when it is
missing, as this same command writes it (it is created once, and written again when missing). An
events file that does not parse is an error naming the file and line: the application could not
import it either.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from scaffold.errors import BadInput
from scaffold.layout import ChannelLayout, TypeScriptPaths
from scaffold.names import ChannelNames, TypeScriptNames, typescript_names
from scaffold.render import render_template
from scaffold.typescript import (
    ChannelEvents,
    Interface,
    doc_comment,
    property_name,
    read_channel_events,
)

RESERVED_EVENT_TYPES = ("reset", "expired", "revoked")
# Names channels.ts uses besides the interfaces: an interface of the same name gets a prefix.
_TAKEN = frozenset(
    {
        "Channel", "Record", "any", "bigint", "boolean", "never", "null", "number", "object",
        "string", "symbol", "undefined", "unknown", "void",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ChannelTypes:
    """One channel as `channels.ts` declares it."""

    title: str
    """What the comments call it: "Stock level events of the warehouse-ops module"."""
    source: str
    """Its events file, relative to the project."""
    names: TypeScriptNames
    name: str
    """The runtime's name of the channel, for the multiplexed stream: "inventory_stock"."""
    path: str
    interfaces: tuple[Interface, ...]
    events: tuple[Interface, ...]


def typescript_files(
    root: Path,
    paths: TypeScriptPaths,
    layouts: Sequence[ChannelLayout],
    rendered: Mapping[str, str],
) -> dict[str, str]:
    """The client's two files at `paths`, for the channels of `layouts`; none without channels.

    `root` is the project's folder; `rendered` holds the other files this command writes,
    among them the events files it creates.
    """
    if not layouts:
        return {}
    sources = {layout.events_path: _events_source(root, layout, rendered) for layout in layouts}
    found = {
        path: read_channel_events(sources[path], path, layout.events_alias)
        for layout in layouts
        for path in [layout.events_path]
    }
    renames = _renames(layouts, found)
    channels = []
    for layout in layouts:
        path = layout.events_path
        events = read_channel_events(sources[path], path, layout.events_alias, renames[path])
        _check_event_types(layout, events)
        channels.append(
            ChannelTypes(
                title=_title(layout.names),
                source=layout.events_path,
                names=typescript_names(layout.names),
                name=layout.names.channel_name,
                path=layout.route,
                interfaces=events.interfaces,
                events=events.events,
            )
        )
    _check_distinct(channels)
    return {
        paths.client: render_template("typescript/client.ts.jinja", paths.client),
        paths.channels: render_template(
            "typescript/channels.ts.jinja",
            paths.channels,
            channels=channels,
            doc_comment=doc_comment,
            property_name=property_name,
        ),
    }


def _title(names: ChannelNames) -> str:
    """The channel as the other generated files title it, an acronym kept as it is."""
    title = names.channel_title
    return f"{title[:1].upper()}{title[1:]} events of the {names.module_url} module"


def _events_source(root: Path, layout: ChannelLayout, rendered: Mapping[str, str]) -> str:
    """The events file's text: the user's on disk, else the one this command writes."""
    path = root / layout.events_path
    if not path.is_file():
        return rendered[layout.events_path]
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise BadInput(f"{layout.events_path} is not UTF-8 text: {error}") from error


def _renames(
    layouts: Sequence[ChannelLayout], found: Mapping[str, ChannelEvents]
) -> dict[str, dict[str, str]]:
    """For each events file, the prefixed name of each class whose name another channel's file
    uses too, or that names something else in channels.ts: `InventoryStock` + `StockUpdated`."""
    counts = Counter(interface.name for events in found.values() for interface in events.interfaces)
    taken = _TAKEN | {typescript_names(layout.names).events for layout in layouts}
    renames: dict[str, dict[str, str]] = {}
    for layout in layouts:
        prefix = typescript_names(layout.names).prefix
        renames[layout.events_path] = {
            interface.name: f"{prefix}{interface.name}"
            for interface in found[layout.events_path].interfaces
            if counts[interface.name] > 1 or interface.name in taken
        }
    return renames


def _check_event_types(layout: ChannelLayout, events: ChannelEvents) -> None:
    """Refuse what the runtime refuses too: an event type listed twice, or a reserved one."""
    event_types = [event.event_type for event in events.events]
    for index, event_type in enumerate(event_types):
        repeated = event_type in event_types[:index]
        if repeated or event_type in RESERVED_EVENT_TYPES:
            problem = "twice" if repeated else "which the stream itself sends"
            raise BadInput(
                f"{layout.events_path}: {layout.events_alias} lists the event type"
                f" {event_type!r} {problem}; give each event its own event_type"
            )


def _check_distinct(channels: list[ChannelTypes]) -> None:
    names = Counter(
        name
        for channel in channels
        for name in (
            channel.names.events,
            channel.names.descriptor,
            *(interface.name for interface in channel.interfaces),
        )
    )
    clash = next((name for name, count in names.items() if count > 1), None)
    if clash is not None:
        raise BadInput(
            f"channels.ts would declare {clash} twice: rename one of the event classes called"
            f" {clash} in the channels' events files"
        )
