"""Files of the project as a commit of its git repository holds them, read with `git` itself.

The project may be a folder of the repository: paths are relative to the project, as
everywhere else in scaffold.
"""

import subprocess
from dataclasses import dataclass
from pathlib import Path

from scaffold.errors import BadInput

_TIMEOUT = 60
"""Seconds one git command may take."""
_MISSING = ("does not exist in", "exists on disk, but not in")
"""What git says when a commit has no such path."""


@dataclass(frozen=True)
class Revision:
    """A commit of the repository that holds the project, as the user named it."""

    root: Path
    """The project's folder."""
    ref: str
    """What the user named it by: `HEAD`, `origin/main`, a tag or a commit."""
    commit: str | None
    """None when `ref` is HEAD in a repository without a commit yet: nothing to compare."""
    prefix: str
    """The project's folder relative to the repository's, with a trailing slash; empty at the
    top of the repository."""

    def read(self, path: str) -> str | None:
        """The text of `path` (relative to the project) at this commit; None if it has none."""
        if self.commit is None:
            return None
        completed = _git(self.root, "show", f"{self.commit}:{self.prefix}{path}")
        if completed.returncode != 0:
            said = _said(completed)
            if any(words in said for words in _MISSING):
                return None
            raise BadInput(f"git cannot read {self.ref}:{path}: {said}")
        try:
            return completed.stdout.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BadInput(f"{self.ref}:{path} is not UTF-8 text: {error}") from error


def revision(root: Path, ref: str) -> Revision:
    """The commit `ref` names in the repository that holds `root`; raise `BadInput` when there
    is no such repository or commit."""
    located = _git(root, "rev-parse", "--show-prefix")
    if located.returncode != 0:
        raise BadInput(
            f"git cannot read the repository of {root}: {_said(located)}. --against reads the"
            " channels' events as a commit has them, from git: run it in a clone of the"
            " project's repository that git can read"
        )
    prefix = located.stdout.decode("utf-8").strip()
    resolved = _git(
        root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"
    )
    if resolved.returncode == 0 and ref.strip():
        return Revision(root, ref, resolved.stdout.decode("ascii").strip(), prefix)
    if ref == "HEAD" and _git(root, "rev-parse", "--verify", "--quiet", "HEAD").returncode != 0:
        return Revision(root, ref, None, prefix)  # the first commit is being made
    shallow = _git(root, "rev-parse", "--is-shallow-repository").stdout.strip() == b"true"
    fetch = (
        "This clone is shallow (it holds only the last commits): fetch the history, with `git"
        " fetch --unshallow` (in CI, actions/checkout with fetch-depth: 0)"
        if shallow
        else "In CI, fetch the target branch first (actions/checkout with fetch-depth: 0)"
    )
    raise BadInput(
        f"--against {ref}: git knows no such commit in this repository. Name a branch, a tag"
        f" or a commit. {fetch}"
    )


def _said(completed: subprocess.CompletedProcess[bytes]) -> str:
    """What git wrote on stderr, on one line."""
    return " ".join(completed.stderr.decode("utf-8", "replace").split()) or "no message"


def _git(root: Path, *arguments: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *arguments], cwd=root, capture_output=True, check=False, timeout=_TIMEOUT
        )
    except FileNotFoundError as error:
        raise BadInput(
            "git is not installed, or not on PATH: --against reads the channels' events from git"
        ) from error
    except subprocess.TimeoutExpired as error:
        raise BadInput(
            f"git {' '.join(arguments)} took more than {_TIMEOUT} seconds in {root}: is the"
            " repository on a slow or locked disk? Run the check again once git answers"
        ) from error
