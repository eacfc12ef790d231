"""`scaffold check --against REF`: every channel's events compared with those at a git commit.

The channels recorded at REF (its pyproject.toml) are compared with those recorded now, each
events file at REF with the one on disk, both read with `ast` as the TypeScript generator reads
them (`scaffold.typescript`), never imported. Breaks the project accepts on purpose are listed in
`[[tool.scaffold.accepted_breaks]]`, each naming one break exactly (channel, change, event,
field, old and new; any other key, such as `reason`, is the user's and kept): it lets that break
pass, and no other. `--accept` adds the breaks found now that no entry accepts yet, and never
removes one: an entry that matches no break against this REF (HEAD, once the change is
committed) may still be needed against another (the target branch, in CI). The user deletes it
once every commit compared against has the change.

A channel's files are found where they are at REF, not where they are now: the project may have
moved its package into `src/` since.
"""

import ast
import dataclasses
import re
import tomllib
from dataclasses import dataclass
from typing import Any

from scaffold.breaking import Break, Unseen, event_breaks, unseen
from scaffold.errors import BadInput
from scaffold.git import Revision, revision
from scaffold.layout import ChannelLayout, channel_layout
from scaffold.project import Project, read_pyproject, recorded_channels
from scaffold.typescript import ChannelEvents, read_channel_events

ACCEPTED = "accepted_breaks"
"""The key of `[[tool.scaffold.accepted_breaks]]`."""
NAMING = ("channel", "change", "event", "field", "old", "new")
"""The keys of an accepted entry that name its break; the others (`reason`) are notes."""
_CHANNELS_HEADER = re.compile(r"^\s*\[\[\s*tool\.scaffold\.channels\s*\]\]")


@dataclass(frozen=True)
class Comparison:
    """The breaking changes of the project's events since a commit."""

    revision: Revision
    channels: int
    """How many channels the commit records, each compared."""
    breaks: tuple[Break, ...]
    """Those not accepted: they fail the check."""
    accepted: tuple[Break, ...]
    """Those `[[tool.scaffold.accepted_breaks]]` lists."""
    stale: tuple[dict[str, str], ...]
    """The accepted entries that match no break against this commit (kept: see the module)."""
    written: bool = False
    """Whether `--accept` added entries to the accepted breaks of pyproject.toml."""
    not_compared: tuple[Unseen, ...] = ()
    """The events whose inherited fields the events files do not show."""

    def as_json(self) -> dict[str, object]:
        ref = self.revision.ref
        return {
            "ref": ref,
            "commit": self.revision.commit,
            "channels": self.channels,
            "breaks": [b.as_json(ref) for b in self.breaks],
            "accepted": [b.as_json(ref) for b in self.accepted],
            "stale_accepted": list(self.stale),
            "written": self.written,
            "not_compared": [u.as_json() for u in self.not_compared],
        }


def compare_with(project: Project, ref: str, *, accept: bool = False) -> Comparison:
    """The breaks of `project`'s events since `ref`; with `accept`, those no entry accepts yet
    added to the accepted breaks of pyproject.toml."""
    commit = revision(project.root, ref)
    channels, breaks, not_compared = _breaks_since(project, commit)
    entries = _accepted_entries(project)
    stale = tuple(entry for entry in entries if not any(_matches(entry, b) for b in breaks))
    accepted = tuple(b for b in breaks if any(_matches(entry, b) for entry in entries))
    open_breaks = tuple(b for b in breaks if b not in accepted)
    if accept:
        new = [b.entry for b in open_breaks]
        added = [entry for index, entry in enumerate(new) if entry not in new[:index]]
        written = bool(added) and _record_accepted(project, [*entries, *added])
        return Comparison(commit, channels, (), tuple(breaks), stale, written, not_compared)
    return Comparison(commit, channels, open_breaks, accepted, stale, False, not_compared)


def _matches(entry: dict[str, str], found: Break) -> bool:
    """Whether an accepted entry names `found`: by its naming keys, whatever notes it has."""
    return {key: value for key, value in entry.items() if key in NAMING} == found.entry


def _breaks_since(
    project: Project, commit: Revision
) -> tuple[int, list[Break], tuple[Unseen, ...]]:
    """How many channels `commit` records, the breaks of their events since, and the events
    whose inherited fields neither version shows."""
    before, pyproject_at_ref = _project_at(project, commit)
    now = {r.names.channel_name: channel_layout(project, r) for r in project.channels}
    breaks: list[Break] = []
    hidden: list[Unseen] = []
    for index, record in enumerate(before.channels):
        name = record.names.channel_name
        if name not in now:
            line = _entry_line(pyproject_at_ref, index)
            removed = Break(name, "channel removed", path="pyproject.toml", line=line, at_ref=True)
            removed = dataclasses.replace(removed, readers=("old readers",))
            breaks.append(removed)
            continue
        old = channel_layout(before, record)
        found = _module_at(commit, old.events_module)
        if found is None:
            if _module_at(commit, old.service_module) is None:
                raise BadInput(_no_channel_files(commit, old))
            continue  # a channel made before events were typed: nothing to keep
        old_path, source = found
        old_events = _events_at(commit, old, old_path, source)
        new = now[name]
        new_events = read_channel_events(_source(project, new), new.events_path, new.events_alias)
        breaks += event_breaks(name, old_events, old_path, new_events, new.events_path)
        hidden += unseen(name, old_events, new_events, new.events_path)
    return len(before.channels), breaks, tuple(hidden)


def _module_at(commit: Revision, module: str) -> tuple[str, str] | None:
    """The path and text of a dotted module at `commit`, in the project's folder or its `src/`
    folder, as the project was laid out then; None when it has neither."""
    relative = "/".join(module.split(".")) + ".py"
    for path in (relative, f"src/{relative}"):
        text = commit.read(path)
        if text is not None:
            return path, text
    return None


def _no_channel_files(commit: Revision, layout: ChannelLayout) -> str:
    tried = " or ".join(
        f"{folder}{'/'.join(layout.events_module.split('.'))}.py" for folder in ("", "src/")
    )
    return (
        f"channel {layout.record.name} in {layout.record.module} is recorded in pyproject.toml at"
        f" {commit.ref}, but {commit.ref} has neither its events file ({tried}) nor its notify"
        " service, so its events cannot be compared. Is [tool.scaffold] package at"
        f" {commit.ref} the package the channels were in? Compare against another commit"
    )


def _accepted_entries(project: Project) -> list[dict[str, str]]:
    """The breaks `[[tool.scaffold.accepted_breaks]]` accepts."""
    table = read_pyproject(project.pyproject).get("tool", {}).get("scaffold", {})
    entries = table.get(ACCEPTED, [])
    if not isinstance(entries, list) or not all(
        isinstance(entry, dict) and all(isinstance(v, str) for v in entry.values())
        for entry in entries
    ):
        raise BadInput(
            f"[tool.scaffold] {ACCEPTED} in {project.pyproject} must be [[tool.scaffold."
            f"{ACCEPTED}]] tables of strings, as `scaffold check --against REF --accept` writes"
            " them"
        )
    return entries


def _project_at(project: Project, commit: Revision) -> tuple[Project, str]:
    """The project as `commit` records it (its channels and package; the rest as now), and the
    text of its pyproject.toml there (empty when it has none)."""
    text = commit.read("pyproject.toml")
    if text is None:
        return dataclasses.replace(project, channels=()), ""
    where = f"{commit.ref}:pyproject.toml"
    try:
        table: Any = tomllib.loads(text).get("tool", {}).get("scaffold")
    except tomllib.TOMLDecodeError as error:
        raise BadInput(f"{where} is not valid TOML: {error}") from error
    if not isinstance(table, dict):
        return dataclasses.replace(project, channels=()), text
    package = table.get("package")
    if not isinstance(package, str):
        raise BadInput(f"{where}: [tool.scaffold] has no package, which says where channels are")
    channels = recorded_channels(table, where)
    return dataclasses.replace(project, package=package, channels=channels), text


def _entry_line(pyproject: str, index: int) -> int | None:
    """The line of the `index`th `[[tool.scaffold.channels]]` header of `pyproject`."""
    headers = [
        number
        for number, line in enumerate(pyproject.splitlines(), start=1)
        if _CHANNELS_HEADER.match(line)
    ]
    return headers[index] if index < len(headers) else None


def _events_at(commit: Revision, layout: ChannelLayout, path: str, source: str) -> ChannelEvents:
    """The events of the file at `path` as `commit` has it: it cannot be fixed there."""
    where = f"{commit.ref}:{path}"
    try:
        ast.parse(source, where)
        return read_channel_events(source, where, layout.events_alias)
    except (SyntaxError, BadInput) as error:
        said = f"{where}:{error.lineno}: {error.msg}" if isinstance(error, SyntaxError) else error
        raise BadInput(
            f"the events of channel {layout.record.name} in {layout.record.module} cannot be read"
            f" as {commit.ref} has them, so nothing can be compared with them: {said}. Compare"
            " against a commit where they can be read"
        ) from error


def _source(project: Project, layout: ChannelLayout) -> str:
    """The events file as the disk holds it, or as scaffold writes it when it is missing."""
    path = project.root / layout.events_path
    if not path.is_file():
        from scaffold.render import render_events

        return render_events(project, layout)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise BadInput(f"{layout.events_path} is not UTF-8 text: {error}") from error


def _record_accepted(project: Project, wanted: list[dict[str, str]]) -> bool:
    """Write `wanted` as the accepted breaks; True."""
    from scaffold.apply import apply_plan
    from scaffold.manifest import record_accepted_breaks
    from scaffold.plan import Desired, Ownership, make_plan

    text = project.pyproject.read_text(encoding="utf-8")
    new_text = record_accepted_breaks(text, wanted)
    apply_plan(
        make_plan(project.root, {project.pyproject.name: Desired(new_text, Ownership.EDITED)})
    )
    return True
