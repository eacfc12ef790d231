"""Every error the tool reports to a user, and the exit code each one maps to.

Commands raise these; only the CLI turns them into a message and an exit status.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scaffold.plan import Plan


class ScaffoldError(Exception):
    """A failure the user can act on; its message says what is wrong and what to do."""

    exit_code = 2


class BadInput(ScaffoldError):
    """Invalid arguments, names or project configuration (exit 2)."""

    exit_code = 2


class ConflictError(ScaffoldError):
    """Files on disk differ from what the generator would write and may not be touched (exit 1).

    It carries the plan so that the CLI can show what differs.
    """

    exit_code = 1

    def __init__(self, message: str, *, plan: "Plan") -> None:
        super().__init__(message)
        self.plan = plan
