"""Compare the files a command wants with the disk: the plan is a value to print or apply."""

import dataclasses
import difflib
import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from scaffold.lock import sha256_of


class Ownership(Enum):
    GENERATED = "generated"
    """Written by scaffold and checked for drift; edits by hand are conflicts."""
    CREATED_ONCE = "created-once"
    """Created when missing, then the user's (empty `__init__.py` files, removal migrations,
    events files): deleted only while it still holds what scaffold wrote (`baseline`)."""
    EDITED = "edited"
    """The user's file, edited in place (the app module, `pyproject.toml`)."""
    RECORD = "record"
    """scaffold's record of what it wrote (`scaffold.lock`): rewritten whenever it differs, after
    the files it records."""


class Action(Enum):
    CREATE = "create"
    UNCHANGED = "unchanged"
    UPDATE = "update"
    DELETE = "delete"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class Desired:
    text: str | None
    """What the file should hold; None when it should not exist."""
    ownership: Ownership
    baseline: str | None = None
    """What scaffold wrote here before this command; disk text equal to it may be replaced."""
    baseline_sha256: str | None = None
    """The sha256 of what scaffold last wrote here, as `scaffold.lock` records it: disk text with
    this hash was written by scaffold (an earlier version, say), and may be replaced too."""


@dataclass(frozen=True)
class FileChange:
    path: str
    action: Action
    ownership: Ownership
    old: str | None
    new: str | None
    """The text to write; None for a file to delete."""
    newline: str = "\n"
    """The line ending of the file on disk, which rewriting it keeps (CRLF in a checkout made
    with git's autocrlf); `old` and `new` have LF endings whatever the disk has."""

    def diff(self) -> str:
        """A unified diff with `a/` and `b/` paths relative to the project."""
        return "".join(
            difflib.unified_diff(
                (self.old or "").splitlines(keepends=True),
                (self.new or "").splitlines(keepends=True),
                "/dev/null" if self.old is None else f"a/{self.path}",
                "/dev/null" if self.new is None else f"b/{self.path}",
            )
        )


@dataclass(frozen=True)
class Plan:
    root: Path
    changes: tuple[FileChange, ...]

    @property
    def writes(self) -> tuple[FileChange, ...]:
        return tuple(c for c in self.changes if c.action in (Action.CREATE, Action.UPDATE))

    @property
    def conflicts(self) -> tuple[FileChange, ...]:
        return tuple(c for c in self.changes if c.action is Action.CONFLICT)

    @property
    def kept(self) -> tuple[FileChange, ...]:
        """Files no channel needs any more that stay: scaffold wrote them once for the user,
        who has edited them since."""
        return tuple(c for c in self.changes if c.action is Action.UNCHANGED and c.new is None)

    @property
    def pending(self) -> tuple[FileChange, ...]:
        """Every change but the unchanged files: what applying the plan would do or refuse."""
        return tuple(c for c in self.changes if c.action is not Action.UNCHANGED)

    def forced(self) -> "Plan":
        """The plan with its conflicts turned into updates or deletions (`--force`)."""
        return Plan(
            self.root,
            tuple(
                dataclasses.replace(c, action=Action.DELETE if c.new is None else Action.UPDATE)
                if c.action is Action.CONFLICT
                else c
                for c in self.changes
            ),
        )

    def to_json(self, **fields: object) -> str:
        """The plan as JSON; `fields` are what a command says besides its files."""
        changes = [
            {"path": c.path, "action": c.action.value, "ownership": c.ownership.value}
            for c in self.changes
        ]
        return json.dumps({"project": str(self.root), **fields, "changes": changes}, indent=2)


def make_plan(root: Path, desired: dict[str, Desired]) -> Plan:
    """Classify every desired file against the disk, in path order.

    A file that should not exist and does not is left out of the plan.
    """
    changes = []
    for path in sorted(desired):
        want = desired[path]
        old, newline = _read(root / path)
        if old is None and want.text is None:
            continue
        action = _action(old, want)
        changes.append(FileChange(path, action, want.ownership, old, want.text, newline))
    return Plan(root, tuple(changes))


def _read(target: Path) -> tuple[str | None, str]:
    """The file's text with LF line endings (None if there is no file), and the line ending it
    uses: CRLF when every line ends so, else LF."""
    if not target.is_file():
        return None, "\n"
    with target.open(encoding="utf-8") as stream:
        text = stream.read()
        return text, "\r\n" if stream.newlines == "\r\n" else "\n"


def _action(old: str | None, want: Desired) -> Action:
    if old is None:
        return Action.CREATE
    if old == want.text:
        return Action.UNCHANGED
    if want.ownership is Ownership.CREATED_ONCE:  # the user's now: deleted only if untouched
        deleted = want.text is None and _written_by_scaffold(old, want)
        return Action.DELETE if deleted else Action.UNCHANGED
    if want.ownership in (Ownership.EDITED, Ownership.RECORD) or _written_by_scaffold(old, want):
        return Action.DELETE if want.text is None else Action.UPDATE
    return Action.CONFLICT


def _written_by_scaffold(old: str, want: Desired) -> bool:
    return old == want.baseline or (
        want.baseline_sha256 is not None and sha256_of(old) == want.baseline_sha256
    )
