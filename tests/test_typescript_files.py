"""The TypeScript client's files are generated files: checked, rewritten by sync, removed with
the last channel; and they follow the channels' events files, which are the user's."""

from pathlib import Path

import pytest

from tests.helpers import run_scaffold, snapshot
from tests.test_check import generated_copy

CHANNELS_TS = "web/realtime/channels.ts"
CLIENT_TS = "web/realtime/client.ts"
STOCK_EVENTS = "shop/modules/inventory/services/stock_events.py"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of `examples/shop` with a typed channel, a trigger channel and the client."""
    return generated_copy("typescript-client", tmp_path / "shop")


def test_a_project_with_the_client_is_in_sync(project: Path) -> None:
    result = run_scaffold("check", cwd=project)
    assert result.exit_code == 0, result.stdout + result.stderr


def test_an_edited_events_file_outdates_channels_ts_until_sync(project: Path) -> None:
    events = project / STOCK_EVENTS
    events.write_text(events.read_text().replace("    id: int\n", "    id: int\n    sku: str\n"))
    check = run_scaffold("check", cwd=project)
    assert check.exit_code == 1
    assert f"      outdated  {CHANNELS_TS}\n" in check.stdout
    sync = run_scaffold("sync", cwd=project)
    assert sync.exit_code == 0, sync.stderr
    assert "  id: number;\n  sku: string;\n" in (project / CHANNELS_TS).read_text()
    assert run_scaffold("check", cwd=project).exit_code == 0


def test_a_hand_edit_of_the_client_is_a_conflict(project: Path) -> None:
    client = project / CLIENT_TS
    client.write_text(client.read_text() + "// a hand edit\n")
    result = run_scaffold("check", cwd=project)
    assert result.exit_code == 1
    assert f"      modified  {CLIENT_TS}\n" in result.stdout


def test_removing_the_last_channel_removes_the_client(project: Path) -> None:
    first = run_scaffold("remove-sse-channel", "Stock", "in", "inventory", cwd=project)
    assert first.exit_code == 0, first.stderr
    assert "inventoryStock" not in (project / CHANNELS_TS).read_text()
    last = run_scaffold("remove-sse-channel", "StockLevel", "in", "warehouse-ops", cwd=project)
    assert last.exit_code == 0, last.stderr
    assert not (project / "web").exists()


def test_an_events_file_that_does_not_parse_is_refused_naming_it(project: Path) -> None:
    events = project / STOCK_EVENTS
    lines = events.read_text().split("\n")
    line = lines.index("    id: int") + 1
    events.write_text(events.read_text().replace("    id: int\n", "    id: int =\n"))
    before = snapshot(project)
    result = run_scaffold("sync", cwd=project)
    assert result.exit_code == 2
    assert f"{STOCK_EVENTS}:{line}: invalid syntax" in result.stderr
    assert snapshot(project) == before


def test_an_event_based_on_a_class_of_another_module_keeps_the_project_in_sync(
    project: Path,
) -> None:
    events = project / STOCK_EVENTS
    source = events.read_text()
    events.write_text(
        source.replace(
            "from fastapi_pg_sse import ChannelEvent\n", "from shop.shared import Audited\n"
        ).replace("class StockUpdated(ChannelEvent):", "class StockUpdated(Audited):")
    )
    sync = run_scaffold("sync", cwd=project)
    assert sync.exit_code == 0, sync.stderr
    channels = (project / CHANNELS_TS).read_text()
    assert (
        "export interface StockUpdated {\n  id: number;\n  [key: string]: unknown;\n}" in channels
    )
    assert "// StockUpdated is based on Audited, which is not in the events file" in channels
    assert run_scaffold("check", cwd=project).exit_code == 0


@pytest.mark.parametrize("folder", ["/web", "../web", ""])
def test_a_typescript_folder_outside_the_project_is_refused(folder: str, project: Path) -> None:
    pyproject = project / "pyproject.toml"
    setting = 'typescript = "web/realtime"'
    pyproject.write_text(pyproject.read_text().replace(setting, f'typescript = "{folder}"'))
    result = run_scaffold("check", cwd=project)
    assert result.exit_code == 2
    assert "typescript in" in result.stderr
    assert "must be a folder inside the project" in result.stderr


def test_a_deleted_events_file_is_written_again_and_channels_ts_follows_it(
    project: Path,
) -> None:
    events = project / STOCK_EVENTS
    events.write_text(events.read_text().replace("    id: int\n", "    sku: str\n"))
    assert run_scaffold("sync", cwd=project).exit_code == 0
    events.unlink()
    check = run_scaffold("check", cwd=project)
    assert check.exit_code == 1
    assert f"       missing  {STOCK_EVENTS}\n" in check.stdout
    assert f"      outdated  {CHANNELS_TS}\n" in check.stdout
    assert run_scaffold("sync", cwd=project).exit_code == 0
    assert "  id: number;\n}" in (project / CHANNELS_TS).read_text()
    assert run_scaffold("check", cwd=project).exit_code == 0
