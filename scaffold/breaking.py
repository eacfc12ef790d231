"""Breaking changes between two versions of a channel's events, as its events file declares them.

A channel's events have readers on both sides of a deploy, and the rules are those of a schema
registry's FULL compatibility, in both directions:

- forward: readers built before the change (pages still running yesterday's bundle, Python
  consumers that validate each payload with the old models, `fastapi_pg_sse.consumer`) read every
  payload the new code sends;
- backward: readers built after it read the events stored before it, which the channel replays
  as they are (`Last-Event-ID`, a reconnect after the deploy).

So a field's values may neither widen (`int` to `int | None` or `float`: an old reader refuses
`null` or `1.5`) nor narrow (`int | None` to `int`, a `Literal` or an enum losing a value, a
tighter constraint: a stored value is refused), and the comparison is of what pydantic accepts
(`scaffold.kinds`), not of the TypeScript type the generator writes. A field or an event type
gone (its wire name: aliases followed), or renamed, breaks; a new field without a default breaks
the stored events, which lack it; a field that loses its default breaks the code that builds the
event without it (the JSON always has the field, so readers do not notice). A new event, or a new
field with a default, does not break. Nested models are compared field by field, whatever their
class is called (the wire does not carry it).
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from scaffold.kinds import Kind, ModelFields, Reading, render
from scaffold.typescript import ChannelEvents, Interface, Property

Change = Literal[
    "channel removed", "event removed", "event renamed", "field removed", "field renamed",
    "type changed", "made required", "required field added",
]  # fmt: skip
Reader = Literal["old readers", "stored events", "event builders"]
"""Who a break breaks: readers built before the change, readers built after it that read the
events stored before it, or the code that builds the event."""
READERS: Mapping[Reader, str] = {
    "old readers": "readers built before it (pages, Python consumers)",
    "stored events": "events stored before it, replayed to readers built after it",
    "event builders": "code that builds the event without it (here, or in a service that emits"
    " this channel's events)",
}
CHANGES: tuple[Change, ...] = get_args(Change)
BOTH: tuple[Reader, ...] = ("old readers", "stored events")


@dataclass(frozen=True)
class Break:
    """One breaking change of a channel's events."""

    channel: str
    """The channel's name, as its events carry it: `inventory_stock`."""
    change: Change
    event: str | None = None
    """The event's type, as the old version sends it."""
    field: str | None = None
    """The field's wire name, the way to it through nested models joined with dots (`item.qty`;
    `items[].qty` through a list): as the old version names it, but for an added field."""
    old: str | None = None
    """What the old version had: the field's type (as Python writes it, a model as the JSON
    object it sends), its wire name or the event's type."""
    new: str | None = None
    """What the new version has instead."""
    path: str = ""
    """The file where the change shows: the events file, or pyproject.toml."""
    line: int | None = None
    at_ref: bool = False
    """Whether `path` and `line` are those of the old version (what is gone is only there)."""
    readers: tuple[Reader, ...] = ()
    """Whom it breaks (`READERS`)."""

    @property
    def entry(self) -> dict[str, str]:
        """What names the break precisely, whatever line it is on: its record once accepted."""
        return {key: value for key, value in self._names().items() if value is not None}

    def _names(self) -> dict[str, str | None]:
        return {
            "channel": self.channel,
            "change": self.change,
            "event": self.event,
            "field": self.field,
            "old": self.old,
            "new": self.new,
        }

    def location(self, ref: str) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where} (at {ref})" if self.at_ref else where

    def describe(self) -> str:
        """The break in words, and whom it breaks."""
        return f"{self._what()}; it breaks {' and '.join(READERS[r] for r in self.readers)}"

    def _what(self) -> str:
        event = f"event {self.event!r} of channel {self.channel}"
        field = f"field {self.field!r} of {event}"
        match self.change:
            case "channel removed":
                return f"channel {self.channel} removed: its stream is gone"
            case "event removed":
                return f"{event} removed: nobody sends it any more"
            case "event renamed":
                return f"{event} renamed to {self.new!r}"
            case "field removed":
                return f"{field} removed"
            case "field renamed":
                return f"{field} renamed to {self.new!r}"
            case "type changed":
                return f"{field} changed type from {self.old} to {self.new}"
            case "made required":
                return f"{field} has no default any more"
            case "required field added":
                return f"{field} added without a default ({self.new}): give it one"

    def as_json(self, ref: str) -> dict[str, object]:
        return {
            **self._names(),
            "path": self.path,
            "line": self.line,
            "at_ref": self.at_ref,
            "location": self.location(ref),
            "readers": list(self.readers),
            "message": self.describe(),
        }


@dataclass(frozen=True)
class Unseen:
    """An event some of whose fields the events file does not show, so that they are not
    compared: those it inherits from a base imported from another module."""

    channel: str
    event: str
    bases: tuple[str, ...]
    """The bases outside the file, as the events file names them now."""
    path: str
    line: int

    def describe(self) -> str:
        bases = ", ".join(self.bases)
        return (
            f"event {self.event!r} of channel {self.channel}: the fields it inherits from {bases}"
            " (not in the events file) are not compared"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "channel": self.channel,
            "event": self.event,
            "bases": list(self.bases),
            "path": self.path,
            "line": self.line,
            "message": self.describe(),
        }


def unseen(channel: str, old: ChannelEvents, new: ChannelEvents, new_path: str) -> list[Unseen]:
    """The events of both versions whose bases outside the file hide fields from the check."""
    old_bases = {event.event_type: event.outside_bases for event in old.events}
    return [
        Unseen(channel, str(event.event_type), event.outside_bases, new_path, event.line)
        for event in new.events
        if event.event_type in old_bases and (event.outside_bases or old_bases[event.event_type])
    ]


def event_breaks(
    channel: str, old: ChannelEvents, old_path: str, new: ChannelEvents, new_path: str
) -> list[Break]:
    """Each breaking change from `old` (the events file at `old_path`, as the old version has
    it) to `new` (at `new_path` now)."""
    return list(_Comparison(channel, old, old_path, new, new_path).events())


def _fields(events: ChannelEvents) -> ModelFields:
    """The fields of each model of `events`, by class name."""
    models = {interface.name: interface for interface in events.interfaces}

    def fields(model: str) -> dict[str, tuple[Kind, bool]]:
        return {f.name: (f.kind, f.optional) for f in models[model].wire}

    return fields


class _Comparison:
    def __init__(
        self, channel: str, old: ChannelEvents, old_path: str, new: ChannelEvents, new_path: str
    ) -> None:
        self._channel = channel
        self._old, self._new = old, new
        self._old_path, self._new_path = old_path, new_path
        self._old_models = {interface.name: interface for interface in old.interfaces}
        self._new_models = {interface.name: interface for interface in new.interfaces}
        old_fields, new_fields = _fields(old), _fields(new)
        self._old_fields, self._new_fields = old_fields, new_fields
        self._forward = Reading(old_fields, new_fields)
        """Old readers reading what the new code sends."""
        self._backward = Reading(new_fields, old_fields)
        """New readers reading events the old code stored."""

    def events(self) -> Iterator[Break]:
        by_type = {event.event_type: event for event in self._new.events}
        by_class = {event.name: event for event in self._new.events}
        old_types = {event.event_type for event in self._old.events}
        for event in self._old.events:
            found = by_type.get(event.event_type)
            if found is not None:
                yield from self._shape(
                    event.event_type, "", event, found, {(event.name, found.name)}
                )
                continue
            renamed = by_class.get(event.name)
            if renamed is not None and renamed.event_type not in old_types:
                yield self._break(
                    "event renamed", event.event_type, None, event.event_type,
                    renamed.event_type, renamed.line, BOTH,
                )  # fmt: skip
            else:
                yield self._gone("event removed", event.event_type, None, None, event.line)

    def _shape(
        self,
        event: str | None,
        prefix: str,
        old: Interface,
        new: Interface,
        seen: set[tuple[str, str]],
    ) -> Iterator[Break]:
        """The breaks from the fields of `old` to those of `new`, named after `prefix`."""
        old_fields = {field.name: field for field in old.wire}
        new_fields = {field.name: field for field in new.wire}
        removed = [field for name, field in old_fields.items() if name not in new_fields]
        added = [field for name, field in new_fields.items() if name not in old_fields]
        renamed = self._renames(removed, added)
        for field in removed:
            if (renamed_to := renamed.get(field.name)) is not None:
                yield self._break(
                    "field renamed", event, prefix + field.name, field.name, renamed_to.name,
                    renamed_to.line, BOTH,
                )  # fmt: skip
            else:
                old_type = render(field.kind, self._old_fields)
                yield self._gone("field removed", event, prefix + field.name, old_type, field.line)
        renamed_to_names = {field.name for field in renamed.values()}
        for field in added:
            if field.name not in renamed_to_names and not field.optional:
                new_type = render(field.kind, self._new_fields)
                yield self._break(
                    "required field added", event, prefix + field.name, None, new_type,
                    field.line, ("stored events", "event builders"),
                )  # fmt: skip
        for name, field in old_fields.items():
            if name in new_fields:
                yield from self._field(event, prefix + name, field, new_fields[name], seen)

    def _renames(self, removed: list[Property], added: list[Property]) -> dict[str, Property]:
        """The added field each removed one was renamed to, by the removed one's name: the one
        added field of a kind compatible with the removed one's, when there is one."""
        renames: dict[str, Property] = {}
        for field in removed:
            candidates = [
                new
                for new in added
                if new not in renames.values() and not self._readers(field.kind, new.kind)
            ]
            if len(candidates) == 1:
                renames[field.name] = candidates[0]
        return renames

    def _readers(self, old: Kind, new: Kind) -> tuple[Reader, ...]:
        """Whom a field's change from `old` values to `new` ones breaks."""
        broken: list[Reader] = []
        if not self._forward.accepts(old, new):
            broken.append("old readers")
        if not self._backward.accepts(new, old):
            broken.append("stored events")
        return tuple(broken)

    def _field(
        self,
        event: str | None,
        name: str,
        old: Property,
        new: Property,
        seen: set[tuple[str, str]],
    ) -> Iterator[Break]:
        if old.optional and not new.optional:
            yield self._break(
                "made required", event, name, None, None, new.line, ("event builders",)
            )
        yield from self._kind(event, name, old.kind, new.kind, new.line, seen)

    def _kind(
        self,
        event: str | None,
        name: str,
        old: Kind,
        new: Kind,
        line: int,
        seen: set[tuple[str, str]],
    ) -> Iterator[Break]:
        """A field's values: the fields of a model it holds in both versions the same way (alone,
        through a list, a mapping or `| None` kept) compared one by one, anything else as a
        whole."""
        nested = _nested(old, new)
        if nested is None:
            if readers := self._readers(old, new):
                old_type = render(old, self._old_fields)
                new_type = render(new, self._new_fields)
                yield self._break("type changed", event, name, old_type, new_type, line, readers)
            return
        old_model, new_model, suffix = nested
        if (old_model, new_model) not in seen:
            seen = seen | {(old_model, new_model)}
            yield from self._shape(
                event, f"{name}{suffix}.", self._old_models[old_model],
                self._new_models[new_model], seen,
            )  # fmt: skip

    def _break(
        self,
        change: Change,
        event: str | None,
        field: str | None,
        old: str | None,
        new: str | None,
        line: int,
        readers: tuple[Reader, ...],
    ) -> Break:
        """A break that shows in the events file as it is now."""
        return Break(
            self._channel, change, event, field, old, new, self._new_path, line, False, readers
        )

    def _gone(
        self, change: Change, event: str | None, field: str | None, old: str | None, line: int
    ) -> Break:
        """A break that shows only in the old version of the events file: what is gone, which
        readers built before the change still look for."""
        return Break(
            self._channel, change, event, field, old, None, self._old_path, line, True,
            ("old readers",),
        )  # fmt: skip


def _nested(old: Kind, new: Kind) -> tuple[str, str, str] | None:
    """The models `old` and `new` hold the same way, and how the way to their fields is written:
    `""` (alone, or with the same other members of a union), `"[]"` (a list), `"{}"` (a
    mapping's values); None when they do not."""
    if old.constraints != new.constraints:
        return None
    if old.shape == new.shape == "model":
        return old.name, new.name, ""
    if old.shape == new.shape == "union":
        old_models = [m for m in old.args if m.shape == "model"]
        new_models = [m for m in new.args if m.shape == "model"]
        old_others = {m for m in old.args if m.shape != "model"}
        new_others = {m for m in new.args if m.shape != "model"}
        if len(old_models) == len(new_models) == 1 and old_others == new_others:
            return _nested(old_models[0], new_models[0])
        return None
    if old.shape == new.shape == "list" or (
        old.shape == new.shape == "dict" and old.args[0] == new.args[0]
    ):
        inner = _nested(old.args[-1], new.args[-1])
        suffix = "[]" if old.shape == "list" else "{}"
        return None if inner is None else (inner[0], inner[1], suffix + inner[2])
    return None
