"""The `scaffold-check` pre-commit hook, run for real with `pre-commit try-repo`.

pre-commit installs this repository into an environment of its own from the package index, as
it would for a user; the environments are kept for the test session.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.test_check import generated_copy

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A git repository holding a generated copy of `examples/shop`, committed."""
    project = generated_copy("stock-in-inventory", tmp_path / "shop")
    for command in (["init", "--quiet"], ["add", "--all"], ["commit", "--quiet", "-m", "shop"]):
        subprocess.run(["git", *command], cwd=project, env=_environment(), check=True)
    return project


def try_hook(
    repository: Path, pre_commit_home: Path, hook: str = "scaffold-check"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pre_commit",
            "try-repo",
            str(REPO),
            hook,
            "--all-files",
        ],
        cwd=repository,
        env={**_environment(), "PRE_COMMIT_HOME": str(pre_commit_home)},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def _environment() -> dict[str, str]:
    # The hook must run the scaffold pre-commit installed, not this checkout.
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return {**environment, **GIT_IDENTITY, "NO_COLOR": "1"}


def test_the_hook_passes_on_a_project_in_sync(repository: Path, pre_commit_home: Path) -> None:
    result = try_hook(repository, pre_commit_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "scaffold check" in result.stdout and "Passed" in result.stdout


def test_the_hook_fails_after_a_hand_edit(repository: Path, pre_commit_home: Path) -> None:
    hub = repository / "shop/sse_channels.py"
    hub.write_text(hub.read_text() + "# a hand edit\n")
    result = try_hook(repository, pre_commit_home)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "modified  shop/sse_channels.py" in result.stdout
    assert "To fix: scaffold sync --force" in result.stdout


def test_the_hook_fails_after_the_include_router_line_is_deleted(
    repository: Path, pre_commit_home: Path
) -> None:
    main = repository / "shop/main.py"
    main.write_text(main.read_text().replace("app.include_router(realtime_router)\n", ""))
    result = try_hook(repository, pre_commit_home)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "missing wiring  shop/main.py (realtime_router)" in result.stdout


def test_the_events_hook_fails_on_a_renamed_field_of_an_event(
    repository: Path, pre_commit_home: Path
) -> None:
    events = repository / "shop/modules/inventory/services/stock_events.py"
    assert try_hook(repository, pre_commit_home, "scaffold-check-events").returncode == 0
    events.write_text(events.read_text().replace("    id: int\n", "    stock_id: int\n"))
    result = try_hook(repository, pre_commit_home, "scaffold-check-events")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "scaffold check --against HEAD" in result.stdout
    assert (
        "breaking  shop/modules/inventory/services/stock_events.py:15: field 'id' of event"
        " 'stock_updated' of channel inventory_stock renamed to 'stock_id'"
    ) in result.stdout


def test_the_events_hook_lets_the_first_commit_of_a_repository_through(
    tmp_path: Path, pre_commit_home: Path
) -> None:
    project = generated_copy("stock-in-inventory", tmp_path / "shop")
    for command in (["init", "--quiet"], ["add", "--all"]):
        subprocess.run(["git", *command], cwd=project, env=_environment(), check=True)
    result = try_hook(project, pre_commit_home, "scaffold-check-events")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "scaffold check --against HEAD....." in result.stdout  # it ran, and passed
