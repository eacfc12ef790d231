"""What ties the generator to the runtime it generates for (fastapi-pg-sse, in this repository).

They are released together at one version; the runtime's own tests run on the schema the
generator writes; and a channel adds only its own thin code to a project (the line budget).
"""

import difflib
import re
import tomllib
from pathlib import Path

import fastapi_pg_sse
from fastapi_pg_sse import RealtimeSettings

import scaffold
from scaffold.lock import LOCK_PATH
from tests.golden_cases import GOLDEN
from tests.helpers import EXAMPLE, REPO, copy_example, run_scaffold, snapshot

RUNTIME = REPO / "fastapi-pg-sse"
FIRST_CHANNEL_BUDGET = 500
FURTHER_CHANNEL_BUDGET = 390  # with a trigger: its row factory, events file, test and bulk emit


def test_the_tool_and_the_runtime_share_one_version() -> None:
    assert scaffold.__version__ == fastapi_pg_sse.__version__


def test_the_runtime_depends_on_nothing_of_the_generator() -> None:
    project = tomllib.loads((RUNTIME / "pyproject.toml").read_text())["project"]
    names = " ".join(project["dependencies"]).lower()
    assert not any(tool in names for tool in ("typer", "jinja2", "libcst", "tomlkit", "scaffold"))


def test_the_runtimes_tests_run_on_the_schema_the_generator_writes(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    for channel in ("Feed", "News", "Orders"):
        assert run_scaffold("create-sse-channel", channel, "in", "test", cwd=project).exit_code == 0
    written = sorted((project / "migrations").glob("*_test_*_sse_channel.sql"))
    pinned = sorted((RUNTIME / "tests" / "migrations").glob("*.sql"))
    assert [path.name[5:] for path in pinned] == [path.name[5:] for path in written]
    for pinned_file, written_file in zip(pinned, written, strict=True):
        assert pinned_file.read_text() == written_file.read_text(), f"copy it to {pinned_file}"


def added_lines(before: dict[str, bytes], after: dict[str, bytes]) -> int:
    """Lines a command added to a project: new files whole, and the lines added to edited ones.

    scaffold's lock is not counted: it is the tool's bookkeeping, not code anyone reads.
    """
    added = 0
    for path, text in after.items():
        if path == LOCK_PATH:
            continue
        old = before.get(path, b"").decode().splitlines()
        new = text.decode().splitlines()
        added += sum(
            1
            for line in difflib.unified_diff(old, new, lineterm="", n=0)
            if line.startswith("+") and not line.startswith("+++")
        )
    return added


def test_a_first_channel_with_its_trigger_stays_within_the_line_budget() -> None:
    example = snapshot(EXAMPLE)
    first = snapshot(GOLDEN / "stock-level-in-warehouse-ops-with-trigger")
    assert added_lines(example, first) <= FIRST_CHANNEL_BUDGET


def test_a_further_channel_stays_within_the_line_budget() -> None:
    first = snapshot(GOLDEN / "stock-in-inventory")
    second = snapshot(GOLDEN / "second-channel")
    assert added_lines(first, second) <= FURTHER_CHANNEL_BUDGET


def test_the_readme_lists_every_setting_of_the_runtime_with_its_default() -> None:
    readme = (RUNTIME / "README.md").read_text()
    rows = {
        match.group(1): match.group(2)
        for match in re.finditer(r"^\| `(\w+)` \| ([^|]+) \|", readme, flags=re.MULTILINE)
    }
    for name, field in RealtimeSettings.model_fields.items():
        variable = "DATABASE_URL" if name == "database_url" else f"REALTIME_{name.upper()}"
        assert variable in rows, f"{variable} is missing from the README's settings table"
        if field.is_required() or field.default in (None, ()):
            continue  # the README says "none"
        assert rows[variable].strip() == f"`{_as_written(field.default)}`", variable


def _as_written(default: object) -> str:
    """A default as the README writes it: `HS256`, `4194304`, `15` (not `15.0`), `true`."""
    if isinstance(default, tuple):
        return ",".join(default)
    if isinstance(default, bool):
        return str(default).lower()
    return f"{default:g}" if isinstance(default, float) else str(default)
