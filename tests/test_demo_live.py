"""`./scripts/demo` for a person: it prints the URL of a page that answers, and a Ctrl-C
stops everything it started (the app, PostgreSQL) and removes its files."""

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from demo.__main__ import main
from demo.server import free_port
from tests.helpers import REPO

pytestmark = pytest.mark.e2e


def test_the_demo_serves_its_page_until_ctrl_c_then_leaves_nothing_behind() -> None:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # its own server
    with subprocess.Popen(
        [sys.executable, "-m", "demo", f"--port={port}"],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal's foreground job
    ) as demo:
        assert demo.stdout is not None
        printed = ""
        while "Ctrl-C stops" not in printed:
            line = demo.stdout.readline()
            assert line, f"the demo ended before it was live:\n{printed}"
            printed += line
        url = re.search(r"The demo is live: (\S+)", printed)
        project = re.search(r"\(removed on exit\): (\S+)", printed)
        database = re.search(r"Its database: postgresql://\S+@127\.0\.0\.1:([0-9]+)/", printed)
        assert url and project and database, printed
        [postgres] = _processes_naming(f" -h 127.0.0.1 -p {database[1]} ")
        data = re.search(r" -D (\S+)", postgres)  # the server's data folder
        assert data, postgres
        assert "alice" in httpx.get(url[1], timeout=30).text
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert demo.wait(timeout=120) == 0  # stopped as asked
    with pytest.raises(httpx.ConnectError):
        httpx.get(url[1], timeout=30)
    assert not Path(project[1]).exists()
    assert not Path(data[1]).exists()
    assert not _processes_naming(data[1])


def _processes_naming(text: str) -> list[str]:
    """Command lines of running processes that contain `text`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            arguments = cmdline.read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in arguments:
            found.append(arguments)
    return found


def test_the_demo_on_a_port_in_use_says_so_and_starts_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main([f"--port={port}"]) == 2
    assert capsys.readouterr().err == (
        f"error: port {port} of 127.0.0.1 is in use: pass --port with a free one\n"
    )
