"""Files of the project as a commit of its git repository holds them, read with `git` itself.

The project may be a folder of the repository: paths are relative to the project, as
everywhere else in scaffold.
"""

import subprocess
from dataclasses import dataclass
from pathlib import Path

from scaffold.errors import BadInput


@dataclass(frozen=True)
class Revision:
    """A commit of the repository that holds the project, as the user named it."""

    root: Path
    """The project's folder."""
    ref: str
    """What the user named it by: `HEAD`, `origin/main`, a tag or a commit."""
    commit: str
    prefix: str
    """The project's folder relative to the repository's, with a trailing slash; empty at the
    top of the repository."""

    def read(self, path: str) -> str | None:
        """The text of `path` (relative to the project) at this commit; None if it has none."""
        completed = _git(self.root, "cat-file", "blob", f"{self.commit}:{self.prefix}{path}")
        if completed.returncode != 0:
            return None
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
            f"{root} is not in a git repository: --against reads the channels' events as a"
            " commit has them, from git; run it in a clone of the project's repository"
        )
    resolved = _git(
        root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"
    )
    if resolved.returncode != 0 or not ref.strip():
        raise BadInput(
            f"--against {ref}: git knows no such commit in this repository. Name a branch, a tag"
            " or a commit; in CI, fetch the target branch first (actions/checkout with"
            " fetch-depth: 0)"
        )
    prefix = located.stdout.decode("utf-8").strip()
    return Revision(root, ref, resolved.stdout.decode("ascii").strip(), prefix)


def _git(root: Path, *arguments: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *arguments], cwd=root, capture_output=True, check=False, timeout=60
        )
    except FileNotFoundError as error:
        raise BadInput(
            "git is not installed, or not on PATH: --against reads the channels' events from git"
        ) from error
