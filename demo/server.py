"""The demo's app under uvicorn on a port of its own, stopped and started again on that port.

The proofs restart it: a page's stream reconnects to the same URL, as it would in production.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

STOP_SECONDS = 30
START_SECONDS = 60


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Whether the app could listen on 127.0.0.1:`port` now."""
    with socket.socket() as probe:
        # As uvicorn binds: a port whose last connections linger in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class AppServer:
    """`app` (module:variable) of the project at `root`, served on 127.0.0.1:`port`."""

    def __init__(self, app: str, root: Path, port: int, environment: Mapping[str, str]) -> None:
        self.app = app
        self.root = root
        self.port = port
        # The developer's own REALTIME_* settings stay out: the demo says what it runs with.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_")}
        self.environment = {**inherited, **environment}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def other_origin(self) -> str:
        """The same server under its other name: another origin for the browser."""
        return f"http://localhost:{self.port}"

    def start(self, **environment: str) -> None:
        """Start serving (with `environment` over the server's own) and return once it answers."""
        command = [sys.executable, "-m", "uvicorn", self.app, "--host", "127.0.0.1"]
        command += [f"--port={self.port}", "--log-level=warning"]
        # A session of its own: a Ctrl-C in the terminal reaches the demo, which stops it.
        self._process = subprocess.Popen(
            command,
            cwd=self.root,
            env={**self.environment, **environment},
            start_new_session=True,
        )
        self._wait_until_serving(self._process)

    def stop(self) -> None:
        """Stop serving as a deployment does (SIGTERM), and wait for the process to end."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise

    def _wait_until_serving(self, process: "subprocess.Popen[bytes]") -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {process.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.app} did not serve {self.url} within {START_SECONDS} s")
