"""`scaffold.lock`: what scaffold last wrote into each generated file, as a sha256.

With it, a generated file that differs from what scaffold renders today is one of two things:
text that scaffold itself wrote (an earlier scaffold's output, which `sync` may update) or text
edited by hand (a conflict). The generated files stay clean: the record is kept beside them.

The format is the one `sha256sum` writes, `<sha256>  <path>`, one line per generated file in
path order: a diff of the lock reads as the list of generated files that changed, reading it
needs no parser, and `sha256sum -c scaffold.lock` verifies a checkout with LF endings. The hash
is taken of the text with LF endings, as scaffold compares files, so a CRLF checkout matches
too.
"""

import hashlib
from collections.abc import Mapping
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


def lock_text(generated: Mapping[str, str]) -> str | None:
    """The lock recording `generated` ({path: text}); None, no lock, when there is nothing."""
    if not generated:
        return None
    lines = (f"{sha256_of(text)}  {path}\n" for path, text in sorted(generated.items()))
    return _HEADER + "".join(lines)


def read_lock(root: Path) -> dict[str, str]:
    """The sha256 recorded for each path in the project's lock; empty without a lock.

    Lines that are not `<sha256>  <path>` (comments, merge conflict markers) are skipped: what
    they held is then unknown, and a file that differs from its rendering is a conflict, as it
    would be without a lock.
    """
    lock = root / LOCK_PATH
    if not lock.is_file():
        return {}
    recorded = {}
    for line in lock.read_text(encoding="utf-8", errors="replace").splitlines():
        digest, separator, path = line.partition("  ")
        if separator and path and _is_sha256(digest):
            recorded[path] = digest
    return recorded


def _is_sha256(digest: str) -> bool:
    return len(digest) == 64 and all(character in "0123456789abcdef" for character in digest)
