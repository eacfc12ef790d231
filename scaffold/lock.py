"""`scaffold.lock`: what scaffold last wrote into each generated file, as a sha256.

With it, a generated file that differs from what scaffold renders today is one of two things:
text that scaffold itself wrote (an earlier scaffold's output, which `sync` may update) or text
edited by hand (a conflict). The generated files stay clean: the record is kept beside them.

The format is the one `sha256sum` writes, `<sha256>  <path>`, one line per generated file in
path order: a diff of the lock reads as the list of generated files that changed, reading it
needs no parser, and `sha256sum -c scaffold.lock` verifies a checkout with LF endings. The hash
is taken of the text with LF endings, as scaffold compares files, so a CRLF checkout matches
too.

The files scaffold writes once and leaves to the user (events files, row factories) follow, as
comment lines `# <sha256>  <path>` that `sha256sum -c` skips (the user edits them): what scaffold
wrote there, so that removing a channel deletes those still as written, and only those.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

LOCK_PATH = "scaffold.lock"
"""The lock's path, relative to the project root: beside `pyproject.toml`."""

_HEADER = """\
# Written by scaffold: the sha256 of each generated file as scaffold last wrote it, so that
# `scaffold check` can tell a file from an earlier scaffold from one edited by hand.
# Do not edit it; commit it with the generated files. `scaffold sync` rewrites it.
"""


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_USERS_HEADER = """\
# Written once, then yours: the sha256 of each as scaffold wrote it, so that removing its channel
# deletes it only if unedited. Commented out: `sha256sum -c` checks only the files above.
"""
_USERS_PREFIX = "# "


@dataclass(frozen=True)
class Lock:
    """What the lock records: the sha256 of each file as scaffold last wrote it."""

    generated: dict[str, str] = field(default_factory=dict)
    """Generated files, checked by `scaffold check`."""
    users: dict[str, str] = field(default_factory=dict)
    """Files written once, then the user's."""


def lock_text(generated: Mapping[str, str], users: Mapping[str, str]) -> str | None:
    """The lock recording `generated` ({path: text}) and `users` ({path: sha256}); None, no
    lock, when nothing is generated."""
    if not generated:
        return None
    lines = [f"{sha256_of(text)}  {path}\n" for path, text in sorted(generated.items())]
    if users:
        lines += [
            _USERS_HEADER,
            *(f"{_USERS_PREFIX}{sha}  {path}\n" for path, sha in sorted(users.items())),
        ]
    return _HEADER + "".join(lines)


def read_lock(root: Path) -> Lock:
    """What the project's lock records; nothing without a lock.

    Other lines than `<sha256>  <path>` and `# <sha256>  <path>` (comments, merge conflict
    markers) are skipped: what they held is then unknown. A generated file that differs from its
    rendering is then a conflict, as it would be without a lock, and a user's file goes with its
    channel only if it is what scaffold writes today.
    """
    path = root / LOCK_PATH
    if not path.is_file():
        return Lock()
    generated: dict[str, str] = {}
    users: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        is_users = line.startswith(_USERS_PREFIX)
        digest, separator, recorded = line.removeprefix(_USERS_PREFIX).partition("  ")
        if separator and recorded and _is_sha256(digest):
            (users if is_users else generated)[recorded] = digest
    return Lock(generated, users)


def _is_sha256(digest: str) -> bool:
    return len(digest) == 64 and all(character in "0123456789abcdef" for character in digest)
