"""What the tests of AsyncAPI documents share, the runtime's and scaffold's: validating one with
the AsyncAPI project's own parser, and finding in one the excerpt a README shows.

Standard library only: scaffold's tests load this file by its path (both test folders are
packages named `tests`), so that each check is defined once.
"""

import subprocess
from pathlib import Path
from typing import Any

VALIDATE_ASYNCAPI = Path(__file__).resolve().parents[2] / "scripts" / "validate_asyncapi.cjs"
"""The repository's script that validates AsyncAPI documents with `@asyncapi/parser`."""


def asyncapi_errors(document: Path) -> str:
    """The errors the AsyncAPI project's own parser finds in the document at `document`, one a
    line: empty when it is valid. Without Node.js or the parser (`scripts/_environment.sh`
    installs it in .tools/), the test fails, saying so."""
    finished = subprocess.run(
        ["node", str(VALIDATE_ASYNCAPI), str(document)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert finished.returncode in (0, 1), finished.stderr
    return finished.stdout


def contains(whole: Any, part: Any) -> bool:
    """Whether `whole` has every key of `part`, each with a value that contains the part's
    (lists and other values: equal)."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(
            key in whole and contains(whole[key], value) for key, value in part.items()
        )
    return bool(whole == part)
