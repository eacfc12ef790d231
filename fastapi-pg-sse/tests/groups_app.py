"""An application that says its users' groups itself (`create_realtime_router(groups=...)`):
from the table `test_memberships`, read each time a stream opens; a user whose id starts with
`banned` is answered 403, and one whose id starts with `blank` is said to be in a group
named '' (which no stream can serve); for one whose id starts with `slow`, it times out; for one
whose id starts with `claimed`, it gives the groups of the token's claim (`user.groups`)."""

from fastapi import FastAPI, HTTPException, Request, status

from fastapi_pg_sse import AuthenticatedUser, create_realtime_router
from tests.app import FEED, NEWS, jwt_router, may_stream, own_auth_router

MEMBERSHIPS = "CREATE TABLE IF NOT EXISTS test_memberships (user_id text, group_name text)"
"""The table `groups_of` reads; its tests create it before they start the app."""


async def groups_of(user: AuthenticatedUser, request: Request) -> list[str]:
    if user.id.startswith("banned"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "This user may not stream.")
    if user.id.startswith("blank"):
        return [""]
    if user.id.startswith("slow"):
        raise TimeoutError("the membership service did not answer")
    if user.id.startswith("claimed"):
        return sorted(user.groups)
    async with request.app.state.realtime.pool.acquire() as connection:
        rows = await connection.fetch(
            "SELECT group_name FROM test_memberships WHERE user_id = $1", user.id
        )
    return [row[0] for row in rows]


app = FastAPI(title="fastapi-pg-sse tests, groups said by the app")
app.include_router(create_realtime_router([FEED, NEWS], groups=groups_of, authorize=may_stream))
app.include_router(jwt_router)
app.include_router(own_auth_router)
