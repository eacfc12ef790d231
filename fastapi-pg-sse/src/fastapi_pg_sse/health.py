"""Health checks an app mounts for its orchestrator (Kubernetes' probes): `create_health_router`.

Readiness says whether this process can serve streams now: its kernel runs, its listener is
connected and has read on from the table since it last (re)connected, and the database answers
a query of the stream pool with a schema this runtime works with. A listener behind (it dropped
notifications under a burst, and reads on from the table) is reported, not a failure: it delivers
everything all the same, and failing busy pods would move their load onto the others.

Liveness says whether the process should be restarted: its event loop answers the request, and
the kernel's background tasks (the listener's supervisor, the heartbeats) still run. It does not
ask the database: an outage of PostgreSQL makes processes unready, never restarts them (the
listener reconnects on its own).

Both answer JSON: 200 when all is well, else 503 with the problems, each saying what is wrong.
"""

from typing import Any

from fastapi import APIRouter, Request
from starlette import status
from starlette.responses import JSONResponse

from fastapi_pg_sse.realtime import Realtime
from fastapi_pg_sse.schema import SchemaMismatch, check_schema

CHECK_TIMEOUT_SECONDS = 2.0
"""How long readiness waits for a pooled connection, then for its query: keep the probe's
`timeoutSeconds` above it."""
NOT_RUNNING = "the real-time kernel is not running: include create_realtime_router() in the app"


def create_health_router(
    *,
    ready_path: str = "/health/ready",
    live_path: str = "/health/live",
    timeout_seconds: float = CHECK_TIMEOUT_SECONDS,
) -> APIRouter:
    """A router of two GET routes, left out of the OpenAPI document: readiness at `ready_path`
    and liveness at `live_path` (see the module's docstring). `app.include_router(...)` it beside
    `create_realtime_router()`."""
    router = APIRouter()

    async def ready(request: Request) -> JSONResponse:
        realtime: Realtime | None = getattr(request.app.state, "realtime", None)
        if realtime is None:
            return _answer({"ready": False, "problems": [NOT_RUNNING]}, "ready")
        return _answer(await readiness(realtime, timeout_seconds), "ready")

    async def live(request: Request) -> JSONResponse:
        realtime: Realtime | None = getattr(request.app.state, "realtime", None)
        if realtime is None:
            problems = [NOT_RUNNING]
        else:
            problems = [f"the kernel's {name} task has ended" for name in realtime.stopped_tasks()]
        return _answer({"live": not problems, "problems": problems}, "live")

    router.add_api_route(ready_path, ready, methods=["GET"], include_in_schema=False)
    router.add_api_route(live_path, live, methods=["GET"], include_in_schema=False)
    return router


async def readiness(realtime: Realtime, timeout_seconds: float) -> dict[str, Any]:
    """Whether `realtime` can serve streams now: `ready`, `problems`, and what it found of the
    listener (`connected`, `catching up`, which is no problem, or `reconnecting`) and the schema
    (its version)."""
    problems: list[str] = []
    listener = realtime.listener
    if listener.caught_up:
        listener_state = "connected"
    elif listener.connected:
        listener_state = "catching up"
    else:
        listener_state = "reconnecting"
        problems.append("the listener is not connected to PostgreSQL: it is reconnecting")
    schema = None
    try:
        async with realtime.pool.acquire(timeout=timeout_seconds) as connection:
            schema = str(await check_schema(connection, timeout=timeout_seconds))
    except SchemaMismatch as mismatch:
        problems.append(str(mismatch))
    except Exception as error:  # whatever fails, the process is not ready: say what failed
        problems.append(f"the database does not answer: {error!r}")
    return {
        "ready": not problems,
        "listener": listener_state,
        "schema": schema,
        "problems": problems,
    }


def _answer(body: dict[str, Any], key: str) -> JSONResponse:
    """200 when `body[key]`, else 503; never cached."""
    code = status.HTTP_200_OK if body[key] else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse(body, code, headers={"Cache-Control": "no-store"})
