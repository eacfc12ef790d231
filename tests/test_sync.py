"""`scaffold sync`: writes back what `scaffold check` reports, and nothing of the user's."""

import hashlib
import json
from pathlib import Path

import pytest

from scaffold import apply
from scaffold._commands.sync import sync
from tests.helpers import run_scaffold, snapshot
from tests.test_check import generated_copy

SERVICE = "shop/modules/inventory/services/stock_notify_service.py"
INCLUDE = "app.include_router(realtime_router)\n"


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    return generated_copy("second-channel", tmp_path / "shop")


def test_sync_restores_deleted_files_and_wiring(generated: Path) -> None:
    in_sync = snapshot(generated)
    (generated / "shop/sse_channels.py").unlink()
    (generated / SERVICE).unlink()
    main = generated / "shop/main.py"
    main.write_text(main.read_text().replace(INCLUDE, ""))
    result = run_scaffold("sync", cwd=generated)
    assert result.exit_code == 0, result.stderr
    assert "  create  shop/sse_channels.py\n" in result.stdout
    assert "  update  shop/main.py\n" in result.stdout
    assert snapshot(generated) == in_sync


def test_a_prefix_set_by_hand_moves_every_stream_route_at_sync(generated: Path) -> None:
    pyproject = generated / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("[tool.scaffold]\n", '[tool.scaffold]\nprefix = "/api/v1"\n')
    )
    assert run_scaffold("check", cwd=generated).exit_code == 1
    result = run_scaffold("sync", cwd=generated)
    assert result.exit_code == 0, result.stderr
    controller = generated / "shop/modules/inventory/adapters/inbound/stock_sse_controller.py"
    assert 'prefix="/api/v1/inventory/events/stock"' in controller.read_text()
    test = generated / "tests/realtime/test_inventory_stock_sse_channel.py"
    assert 'STREAM = "/api/v1/inventory/events/stock/stream"' in test.read_text()
    assert run_scaffold("check", cwd=generated).exit_code == 0


def test_sync_refuses_a_hand_edit_and_writes_nothing(generated: Path) -> None:
    service = generated / SERVICE
    service.write_text(service.read_text() + "# a hand edit\n")
    (generated / "shop/sse_channels.py").unlink()
    before = snapshot(generated)
    result = run_scaffold("sync", cwd=generated)
    assert result.exit_code == 1
    assert "-# a hand edit" in result.stderr
    assert "--force overwrites generated files" in result.stderr
    assert snapshot(generated) == before


def test_sync_force_overwrites_a_hand_edit(generated: Path) -> None:
    in_sync = snapshot(generated)
    service = generated / SERVICE
    service.write_text(service.read_text() + "# a hand edit\n")
    result = run_scaffold("sync", "--force", cwd=generated)
    assert result.exit_code == 0, result.stderr
    assert snapshot(generated) == in_sync


def test_sync_dry_run_diff_shows_the_change_and_writes_nothing(generated: Path) -> None:
    main = generated / "shop/main.py"
    main.write_text(main.read_text().replace(INCLUDE, ""))
    before = snapshot(generated)
    result = run_scaffold("sync", "--dry-run", "--diff", cwd=generated)
    assert result.exit_code == 0, result.stderr
    assert "--- a/shop/main.py\n+++ b/shop/main.py\n" in result.stdout
    assert f"\n+{INCLUDE}" in result.stdout
    assert "Dry run: nothing was written." in result.stdout
    assert snapshot(generated) == before


def test_sync_in_sync_changes_nothing(generated: Path) -> None:
    before = snapshot(generated)
    result = run_scaffold("sync", "--json", cwd=generated)
    assert result.exit_code == 0, result.stderr
    assert {change["action"] for change in json.loads(result.stdout)["changes"]} == {"unchanged"}
    assert snapshot(generated) == before


def test_sync_leaves_the_users_files_alone(generated: Path) -> None:
    init = generated / "shop/modules/inventory/__init__.py"
    init.unlink()
    pyproject = generated / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('    "pyjwt>=2.8",\n', ""))
    (generated / "shop/sse_channels.py").unlink()
    before = snapshot(generated)
    assert run_scaffold("sync", cwd=generated).exit_code == 0
    after = snapshot(generated)
    assert after.pop("shop/sse_channels.py")
    assert after == before


def test_a_runtime_requirement_below_what_the_code_needs_is_reported_and_raised_by_sync(
    generated: Path,
) -> None:
    """As after upgrading scaffold: the generated code needs a newer runtime than listed."""
    pyproject = generated / "pyproject.toml"
    needed = pyproject.read_text()
    pyproject.write_text(needed.replace('"fastapi-pg-sse>=0.10,<1"', '"fastapi-pg-sse >=0.2, <1"'))

    checked = run_scaffold("check", "--json", cwd=generated)
    (finding,) = json.loads(checked.stdout)["findings"]
    synced = run_scaffold("sync", cwd=generated)

    assert checked.exit_code == 1
    assert (finding["path"], finding["status"]) == ("pyproject.toml", "too low")
    assert finding["requirements"] == [
        "fastapi-pg-sse >=0.2, <1 in [project] dependencies: the generated code needs"
        " fastapi-pg-sse >=0.10, <1"
    ]
    assert synced.exit_code == 0, synced.stderr
    assert pyproject.read_text() == needed.replace(
        '"fastapi-pg-sse>=0.10,<1"', '"fastapi-pg-sse >=0.10, <1"'
    )
    assert run_scaffold("check", cwd=generated).exit_code == 0


def test_check_names_a_test_requirement_below_what_the_tests_need(generated: Path) -> None:
    pyproject = generated / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("[testing]>=0.10,<1", "[testing]>=0.1"))

    checked = run_scaffold("check", cwd=generated)

    assert checked.exit_code == 1
    assert checked.stdout.startswith(
        "       too low  pyproject.toml (fastapi-pg-sse[testing]>=0.1 in the test extra: the"
        " generated code needs fastapi-pg-sse[testing]>=0.10)\n--- a/pyproject.toml\n"
    )


def test_sync_adds_no_package_the_project_does_not_list(generated: Path) -> None:
    """Only `create-sse-channel` adds packages: the project may have moved them elsewhere."""
    pyproject = generated / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('    "asyncpg-stubs>=0.29",\n', ""))
    before = snapshot(generated)
    assert run_scaffold("check", cwd=generated).exit_code == 0
    assert run_scaffold("sync", cwd=generated).exit_code == 0
    assert snapshot(generated) == before


OLD_ROW_FACTORY = "tests/realtime/baskets_rows.py"
OLD_ROW_FACTORY_TEXT = """\
# Written by scaffold once: yours to edit, scaffold never checks or rewrites it.
\"\"\"The baskets row that the trigger tests insert.\"\"\"
"""


def with_old_row_factory(project: Path, text: str) -> None:
    """As scaffold 0.4 left a trigger channel: the row factory its test imported, recorded in
    the lock as a file written once for the user, which then edited it or not (`text`)."""
    (project / OLD_ROW_FACTORY).write_text(text)
    written = hashlib.sha256(OLD_ROW_FACTORY_TEXT.encode()).hexdigest()
    lock = project / "scaffold.lock"
    lock.write_text(f"{lock.read_text()}# {written}  {OLD_ROW_FACTORY}\n")


def test_sync_deletes_a_row_factory_of_an_earlier_scaffold_still_as_written(
    generated: Path,
) -> None:
    in_sync = snapshot(generated)
    with_old_row_factory(generated, OLD_ROW_FACTORY_TEXT)
    checked = run_scaffold("check", cwd=generated)
    assert checked.exit_code == 1
    assert f"  {OLD_ROW_FACTORY}\n" in checked.stdout
    synced = run_scaffold("sync", cwd=generated)
    assert synced.exit_code == 0, synced.stderr
    assert f"  delete  {OLD_ROW_FACTORY}\n" in synced.stdout
    assert snapshot(generated) == in_sync


def test_sync_keeps_a_row_factory_of_an_earlier_scaffold_edited_by_the_user(
    generated: Path,
) -> None:
    edited = OLD_ROW_FACTORY_TEXT + "# mine now\n"
    with_old_row_factory(generated, edited)
    synced = run_scaffold("sync", cwd=generated)
    assert synced.exit_code == 0, synced.stderr
    assert (generated / OLD_ROW_FACTORY).read_text() == edited
    assert OLD_ROW_FACTORY not in (generated / "scaffold.lock").read_text()
    assert run_scaffold("check", cwd=generated).exit_code == 0


def test_a_failure_while_syncing_restores_the_project(
    generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in ("shop/sse_channels.py", "tests/realtime/conftest.py", SERVICE):
        (generated / path).unlink()
    main = generated / "shop/main.py"
    main.write_text(main.read_text().replace(INCLUDE, ""))
    before = snapshot(generated)
    write = apply.write_atomically

    def failing_write(target: Path, text: str) -> None:
        if target.name == "conftest.py":
            raise OSError("disk full")
        write(target, text)

    monkeypatch.setattr(apply, "write_atomically", failing_write)
    with pytest.raises(OSError, match="disk full"):
        sync(generated)
    assert snapshot(generated) == before
