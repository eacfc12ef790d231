"""Write a plan to disk all or nothing: temp file + rename, restoring everything on failure."""

import os
import tempfile
from pathlib import Path

from scaffold.plan import Action, Plan


def apply_plan(plan: Plan, *, last: str | None = None) -> None:
    """Write every create/update of `plan`; `last` (the manifest) is written after the rest.

    If any write fails, the files already written are restored, new files and folders are
    removed, and the error propagates: the project is left as it was.
    """
    writes = sorted(plan.writes, key=lambda change: change.path == last)
    created_folders: list[Path] = []
    written: list[tuple[Path, str | None]] = []
    try:
        for change in writes:
            target = plan.root / change.path
            created_folders += _make_parents(target)
            _write_atomically(target, change.new)
            written.append((target, change.old if change.action is Action.UPDATE else None))
    except BaseException:
        for target, old in reversed(written):
            if old is None:
                target.unlink(missing_ok=True)
            else:
                _write_atomically(target, old)
        for folder in reversed(created_folders):
            folder.rmdir()
        raise


def _make_parents(target: Path) -> list[Path]:
    """Create the missing folders above `target`; return them, outermost first."""
    missing = [folder for folder in target.parents if not folder.exists()][::-1]
    for folder in missing:
        folder.mkdir()
    return missing


def _write_atomically(target: Path, text: str) -> None:
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
