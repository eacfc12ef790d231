"""Breaking changes between two versions of a channel's events, as its events file declares them.

The rule is the consumer's: a page or service still running the old client must read every
payload the new code sends, and the code that builds events (or events stored before the change,
replayed on resume) must still fit. So an event type or a field that is gone (its wire name:
aliases followed) breaks, and so does a field whose new values the old type does not accept
(`number` to `string`, or to `number | null`; not `number | null` to `number`; `unknown` on the
old side accepts anything), a field with a default that has none any more, and a new field
without a default. A new event, or a new field with a default, does not. Nested models are
compared field by field, whatever their class is called (the wire does not carry it).

Types are compared as the TypeScript generator writes them (`scaffold.typescript`): that is what
an old client was built from.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass

from scaffold.typescript import ChannelEvents, Interface, Property

_NUMBER = re.compile(r"^-?[0-9]")


@dataclass(frozen=True)
class Break:
    """One breaking change of a channel's events."""

    channel: str
    """The channel's name, as its events carry it: `inventory_stock`."""
    change: str
    """`channel removed`, `event removed`, `event renamed`, `field removed`, `field renamed`,
    `type changed`, `made required` or `required field added`."""
    event: str | None = None
    """The event's type, as the old version sends it."""
    field: str | None = None
    """The field's wire name, the way to it through nested models joined with dots (`item.qty`;
    `items[].qty` through a list): as the old version names it, but for an added field."""
    old: str | None = None
    """What the old version had: the field's type, its wire name or the event's type."""
    new: str | None = None
    """What the new version has instead."""
    path: str = ""
    """The file where the change shows: the events file, or pyproject.toml."""
    line: int | None = None
    at_ref: bool = False
    """Whether `path` and `line` are those of the old version (what is gone is only there)."""

    @property
    def entry(self) -> dict[str, str]:
        """What names the break precisely, whatever line it is on: its record once accepted."""
        named = {
            "channel": self.channel,
            "change": self.change,
            "event": self.event,
            "field": self.field,
            "old": self.old,
            "new": self.new,
        }
        return {key: value for key, value in named.items() if value is not None}

    def location(self, ref: str) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where} (at {ref})" if self.at_ref else where

    def describe(self) -> str:
        """The break in words, with what it does to a client still running the old code."""
        event = f"event {self.event!r} of channel {self.channel}"
        field = f"field {self.field!r} of {event}"
        match self.change:
            case "channel removed":
                return f"channel {self.channel} removed: its stream is gone"
            case "event removed":
                return f"{event} removed: clients waiting for it never get it again"
            case "event renamed":
                return f"{event} renamed to {self.new!r}: clients waiting for {self.old!r} miss it"
            case "field removed":
                return f"{field} removed: clients reading it get nothing"
            case "field renamed":
                return f"{field} renamed to {self.new!r}: clients reading {self.old!r} get nothing"
            case "type changed":
                return (
                    f"{field} changed type from {self.old} to {self.new}, which clients cannot read"
                )
            case "made required":
                return (
                    f"{field} has no default any more: code that builds the event without it fails"
                )
            case _:
                return (
                    f"{field} added without a default ({self.new}): code that builds the event,"
                    " and events stored before, lack it; give it a default"
                )

    def as_json(self, ref: str) -> dict[str, object]:
        return {
            **self.entry,
            "path": self.path,
            "line": self.line,
            "at_ref": self.at_ref,
            "location": self.location(ref),
            "message": self.describe(),
        }


def event_breaks(
    channel: str, old: ChannelEvents, old_path: str, new: ChannelEvents, new_path: str
) -> list[Break]:
    """Each breaking change from `old` (the events file at `old_path`, as the old version has
    it) to `new` (at `new_path` now)."""
    return list(_Comparison(channel, old, old_path, new, new_path).events())


class _Comparison:
    def __init__(
        self, channel: str, old: ChannelEvents, old_path: str, new: ChannelEvents, new_path: str
    ) -> None:
        self._channel = channel
        self._old, self._new = old, new
        self._old_path, self._new_path = old_path, new_path
        self._old_models = {interface.name: interface for interface in old.interfaces}
        self._new_models = {interface.name: interface for interface in new.interfaces}

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
                    renamed.event_type, renamed.line,
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
                    renamed_to.line,
                )  # fmt: skip
            else:
                yield self._gone(
                    "field removed", event, prefix + field.name, field.type, field.line
                )
        renamed_to_names = {field.name for field in renamed.values()}
        for field in added:
            if field.name not in renamed_to_names and not field.optional:
                yield self._break(
                    "required field added", event, prefix + field.name, None, field.type, field.line
                )
        for name, field in old_fields.items():
            if name in new_fields:
                yield from self._field(event, prefix + name, field, new_fields[name], seen)

    def _renames(self, removed: list[Property], added: list[Property]) -> dict[str, Property]:
        """The added field each removed one was renamed to, by the removed one's name: the one
        added field of a type the removed one's accepts, when there is one."""
        renames: dict[str, Property] = {}
        for field in removed:
            candidates = [
                new
                for new in added
                if new not in renames.values() and self._accepts(field.type, new.type)
            ]
            if len(candidates) == 1:
                renames[field.name] = candidates[0]
        return renames

    def _field(
        self,
        event: str | None,
        name: str,
        old: Property,
        new: Property,
        seen: set[tuple[str, str]],
    ) -> Iterator[Break]:
        if old.optional and not new.optional:
            yield self._break("made required", event, name, None, None, new.line)
        yield from self._type(event, name, old.type, new.type, new.line, seen)

    def _type(
        self,
        event: str | None,
        name: str,
        old: str,
        new: str,
        line: int,
        seen: set[tuple[str, str]],
    ) -> Iterator[Break]:
        """A field's type: the fields of a model it holds in both versions compared one by one
        (through a list, a mapping or `| null` kept), anything else as a whole."""
        nested = self._nested(old, new)
        if nested is None:
            if not self._accepts(old, new):
                yield self._break("type changed", event, name, old, new, line)
            return
        old_model, new_model, suffix = nested
        if (old_model, new_model) not in seen:
            seen = seen | {(old_model, new_model)}
            prefix = f"{name}{suffix}."
            yield from self._shape(
                event, prefix, self._old_models[old_model], self._new_models[new_model], seen
            )

    def _nested(self, old: str, new: str) -> tuple[str, str, str] | None:
        """The models a field holds in both versions, the same way, and how the way to their
        fields is written: `""`, `"[]"` (a list), `"{}"` (a mapping); None for other types."""
        old_members, new_members = _members(old), _members(new)
        old_models = [m for m in old_members if m in self._old_models]
        new_models = [m for m in new_members if m in self._new_models]
        if len(old_models) != 1 or len(new_models) != 1:
            return self._nested_container(old, new)
        others_old = " | ".join(m for m in old_members if m not in self._old_models)
        others_new = " | ".join(m for m in new_members if m not in self._new_models)
        if others_new and not (others_old and self._accepts(others_old, others_new)):
            return None
        return old_models[0], new_models[0], ""

    def _nested_container(self, old: str, new: str) -> tuple[str, str, str] | None:
        old_element, new_element = _array_element(old), _array_element(new)
        suffix = "[]"
        if old_element is None or new_element is None:
            old_element, new_element, suffix = _record_value(old), _record_value(new), "{}"
        if old_element is None or new_element is None:
            return None
        nested = self._nested(old_element, new_element)
        return None if nested is None else (nested[0], nested[1], suffix + nested[2])

    def _accepts(
        self, old: str, new: str, assumed: frozenset[tuple[str, str]] = frozenset()
    ) -> bool:
        """Whether a client that reads values of type `old` reads every value of type `new`."""
        return all(
            any(self._accepts_member(o, n, assumed) for o in _members(old)) for n in _members(new)
        )

    def _accepts_member(self, old: str, new: str, assumed: frozenset[tuple[str, str]]) -> bool:
        if old == "unknown":
            return True
        if old in self._old_models or new in self._new_models:
            if old not in self._old_models or new not in self._new_models:
                return old == "Record<string, unknown>" and new in self._new_models
            if (old, new) in assumed:  # a model that holds itself: the same pair again
                return True
            pair = assumed | {(old, new)}
            return self._models_compatible(self._old_models[old], self._new_models[new], pair)
        if old == new:
            return True
        if old == "string":
            return new.startswith('"')
        if old == "number":
            return bool(_NUMBER.match(new))
        if old == "boolean":
            return new in ("true", "false")
        if (old_element := _array_element(old)) is not None:
            if (new_element := _array_element(new)) is not None:
                return self._accepts(old_element, new_element, assumed)
            items = _tuple_items(new)
            return items is not None and all(self._accepts(old_element, i, assumed) for i in items)
        if (old_items := _tuple_items(old)) is not None:
            new_items = _tuple_items(new)
            return (
                new_items is not None
                and len(new_items) == len(old_items)
                and all(
                    self._accepts(o, n, assumed) for o, n in zip(old_items, new_items, strict=True)
                )
            )
        if (old_value := _record_value(old)) is not None:
            new_value = _record_value(new)
            return new_value is not None and self._accepts(old_value, new_value, assumed)
        return False

    def _models_compatible(
        self, old: Interface, new: Interface, assumed: frozenset[tuple[str, str]]
    ) -> bool:
        """Whether the JSON of `new` reads as `old`'s: each old field there, of a type `old`
        accepts, and no new field without a default."""
        new_fields = {field.name: field for field in new.wire}
        old_names = {field.name for field in old.wire}
        for field in old.wire:
            found = new_fields.get(field.name)
            if found is None or (field.optional and not found.optional):
                return False
            if not self._accepts(field.type, found.type, assumed):
                return False
        return all(field.optional for name, field in new_fields.items() if name not in old_names)

    def _break(
        self,
        change: str,
        event: str | None,
        field: str | None,
        old: str | None,
        new: str | None,
        line: int,
    ) -> Break:
        """A break that shows in the events file as it is now."""
        return Break(self._channel, change, event, field, old, new, self._new_path, line)

    def _gone(
        self, change: str, event: str | None, field: str | None, old: str | None, line: int
    ) -> Break:
        """A break that shows only in the old version of the events file: what is gone."""
        return Break(self._channel, change, event, field, old, None, self._old_path, line, True)


def _members(text: str) -> list[str]:
    """The members of a TypeScript union, as the generator writes it."""
    return _split(text, " | ")


def _split(text: str, separator: str) -> list[str]:
    """`text` split at each `separator` outside brackets and string literals."""
    parts, start = [], 0
    for index, depth in _outside_strings(text):
        if depth == 0 and index >= start and text.startswith(separator, index):
            parts.append(text[start:index])
            start = index + len(separator)
    parts.append(text[start:])
    return parts


def _outside_strings(text: str) -> Iterator[tuple[int, int]]:
    """Each index of `text` outside its string literals, with the depth of brackets there."""
    depth, index, quoted = 0, 0, False
    while index < len(text):
        character = text[index]
        if quoted:
            if character == "\\":
                index += 1
            quoted = character != '"'
        elif character == '"':
            quoted = True
        else:
            depth -= character in ")]>"
            yield index, depth
            depth += character in "([<"
        index += 1


def _array_element(text: str) -> str | None:
    """The element type of `T[]` or `(A | B)[]`; None for another type."""
    if not text.endswith("[]") or len(text) <= 2 or len(_members(text)) > 1:
        return None
    element = text[:-2]
    if element.startswith("(") and element.endswith(")") and _closes_at_end(element):
        return element[1:-1]
    return element


def _tuple_items(text: str) -> list[str] | None:
    """The item types of a tuple `[A, B]`; None for another type."""
    if not (text.startswith("[") and text.endswith("]")) or not _closes_at_end(text):
        return None
    inner = text[1:-1]
    return _split(inner, ", ") if inner else []


def _record_value(text: str) -> str | None:
    """The value type of `Record<string, T>`; None for another type."""
    head = "Record<string, "
    if text.startswith(head) and text.endswith(">") and _closes_at_end(text):
        return text[len(head) : -1]
    return None


def _closes_at_end(text: str) -> bool:
    """Whether the bracket that opens `text` closes at its last character."""
    for index, depth in _outside_strings(text):
        if depth == 0 and text[index] in ")]>":
            return index == len(text) - 1
    return False
