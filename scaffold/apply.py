"""Carry a plan out on disk all or nothing: temp file + rename, restoring everything on failure."""

import os
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

from scaffold.errors import ConflictError
from scaffold.plan import Action, Ownership, Plan


def apply_plan(plan: Plan, *, last: str | None = None) -> None:
    """Write every create/update of `plan` and delete every deletion; scaffold's record of what
    it wrote goes after the files it records, and `last` (the manifest) after everything. A plan
    with conflicts is refused whole: nothing is written. Each file keeps its line endings.

    If any step fails, the files already written are restored, deleted files come back, new files
    and folders are removed, and the error propagates: the project is left as it was. Folders a
    deletion leaves empty are removed once everything succeeded.
    """
    if plan.conflicts:
        raise ConflictError(_conflict_message(plan), plan=plan)
    steps = sorted(
        (change for change in plan.changes if change.action in _CARRIED_OUT),
        key=lambda change: (change.path == last, change.ownership is Ownership.RECORD),
    )
    created_folders: list[Path] = []
    set_aside: list[Path] = []
    undo: list[Callable[[], object]] = []
    try:
        for change in steps:
            target = plan.root / change.path
            if change.new is None:
                set_aside.append(_set_aside(target))
                undo.append(partial(os.replace, set_aside[-1], target))
                continue
            created_folders += _make_parents(target)
            original = _exact_text(target) if change.old is not None else None
            write_atomically(target, change.new.replace("\n", change.newline))
            if original is None:
                undo.append(partial(target.unlink, missing_ok=True))
            else:
                undo.append(partial(write_atomically, target, original))
    except BaseException as failure:
        folders = [partial(_remove_if_empty, folder) for folder in reversed(created_folders)]
        _undo([*reversed(undo), *folders], failure)
        raise
    for aside in set_aside:
        aside.unlink()
    _remove_empty_folders(plan.root, [plan.root / c.path for c in steps if c.new is None])


_CARRIED_OUT = (Action.CREATE, Action.UPDATE, Action.DELETE)


def _conflict_message(plan: Plan) -> str:
    paths = ", ".join(change.path for change in plan.conflicts)
    return (
        f"generated files differ from what scaffold would write: {paths}. Nothing was written."
        " Review the diff (--dry-run --diff); --force overwrites generated files edited by hand"
        " (or deletes them)"
    )


def _undo(steps: list[Callable[[], object]], failure: BaseException) -> None:
    """Run every undo step, even after one fails (on a full disk, say), noting its error."""
    for step in steps:
        try:
            step()
        except OSError as error:
            failure.add_note(f"scaffold could not restore the project completely: {error}")


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _make_parents(target: Path) -> list[Path]:
    """Create the missing folders above `target`; return them, outermost first."""
    missing = [folder for folder in target.parents if not folder.exists()][::-1]
    for folder in missing:
        folder.mkdir()
    return missing


def _exact_text(target: Path) -> str:
    """The file's text as it is on disk, line endings included, to restore it byte for byte."""
    return target.read_bytes().decode("utf-8")


def write_atomically(target: Path, text: str) -> None:
    """Write `text` as it is (no line-ending translation) through a temp file and a rename."""
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _set_aside(target: Path) -> Path:
    """Move `target` to a hidden name beside it, from which a rename brings it back unchanged."""
    descriptor, aside = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.deleted.")
    os.close(descriptor)
    os.replace(target, aside)
    return Path(aside)


def _remove_empty_folders(root: Path, deleted: list[Path]) -> None:
    """Remove the folders, up to `root`, that the deletions left empty."""
    for target in deleted:
        for folder in target.parents:
            if folder == root or not folder.is_dir() or any(folder.iterdir()):
                break
            folder.rmdir()
