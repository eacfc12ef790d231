"""Which teams a user is in."""

from fastapi import Request
from fastapi_pg_sse import AuthenticatedUser


def teams_of(user: AuthenticatedUser, request: Request) -> frozenset[str]:
    """The teams the identity provider lists in the user's token."""
    return user.groups
