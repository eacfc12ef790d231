"""Line endings: the files scaffold edits keep theirs, and a CRLF checkout is in sync.

git's autocrlf gives every text file CRLF endings on Windows; scaffold compares text whatever its
line endings, and rewrites a file with the endings it had.
"""

from pathlib import Path

import pytest

from scaffold import apply
from scaffold._commands.create_sse_channel import ChannelRequest, create_sse_channel
from tests.helpers import run_scaffold, snapshot
from tests.test_check import generated_copy

STOCK = ("Stock", "in", "inventory")
EDITED = ("shop/main.py", "pyproject.toml")


def to_crlf(path: Path) -> None:
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))


def every_line_ends_in_crlf(path: Path) -> bool:
    data = path.read_bytes()
    return data.endswith(b"\r\n") and data.count(b"\n") == data.count(b"\r\n")


def test_create_keeps_crlf_in_the_app_module_and_pyproject(shop: Path) -> None:
    for name in EDITED:
        to_crlf(shop / name)
    created = run_scaffold("create-sse-channel", *STOCK, cwd=shop)
    assert created.exit_code == 0, created.stderr
    for name in EDITED:
        assert every_line_ends_in_crlf(shop / name), name
    assert b"\r\napp.include_router(realtime_router)\r\n" in (shop / "shop/main.py").read_bytes()
    assert (
        b'\r\n[[tool.scaffold.schema]]\r\nversion = "1.5"\r\n'
        in (shop / "pyproject.toml").read_bytes()
    )
    assert (
        b'\r\n[[tool.scaffold.channels]]\r\nname = "Stock"\r\n'
        in (shop / "pyproject.toml").read_bytes()
    )
    checked = run_scaffold("check", cwd=shop)
    assert checked.exit_code == 0, checked.stdout


def test_remove_keeps_crlf_and_gives_the_app_module_back_byte_for_byte(shop: Path) -> None:
    for name in EDITED:
        to_crlf(shop / name)
    app_module = (shop / "shop/main.py").read_bytes()
    assert run_scaffold("create-sse-channel", *STOCK, cwd=shop).exit_code == 0
    removed = run_scaffold("remove-sse-channel", *STOCK, cwd=shop)
    assert removed.exit_code == 0, removed.stderr
    assert (shop / "shop/main.py").read_bytes() == app_module
    assert every_line_ends_in_crlf(shop / "pyproject.toml")


def test_a_crlf_checkout_of_a_generated_project_is_in_sync(tmp_path: Path) -> None:
    project = generated_copy("second-channel", tmp_path / "shop")
    for path in project.rglob("*"):
        if path.is_file():
            to_crlf(path)
    before = snapshot(project)
    checked = run_scaffold("check", cwd=project)
    assert checked.exit_code == 0, checked.stdout
    assert run_scaffold("sync", cwd=project).exit_code == 0
    assert snapshot(project) == before


def test_sync_keeps_crlf_in_a_generated_file_it_rewrites(tmp_path: Path) -> None:
    project = generated_copy("stock-in-inventory", tmp_path / "shop")
    registry = project / "shop/sse_channels.py"
    to_crlf(registry)
    registry.write_bytes(registry.read_bytes() + b"# a hand edit\r\n")
    assert run_scaffold("sync", "--force", cwd=project).exit_code == 0
    assert b"hand edit" not in registry.read_bytes()
    assert every_line_ends_in_crlf(registry)


def test_a_failure_while_writing_restores_crlf_files_byte_for_byte(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in EDITED:
        to_crlf(shop / name)
    before = snapshot(shop)
    write = apply.write_atomically

    def failing_write(target: Path, text: str) -> None:
        if target.name == "pyproject.toml":  # written last: the app module is written by then
            raise OSError("disk full")
        write(target, text)

    monkeypatch.setattr(apply, "write_atomically", failing_write)
    with pytest.raises(OSError, match="disk full"):
        create_sse_channel(shop, ChannelRequest("Stock", "inventory"))
    assert snapshot(shop) == before
