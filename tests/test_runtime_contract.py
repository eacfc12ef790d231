"""What ties the generator to the runtime it generates for (fastapi-pg-sse, in this repository).

They are released together at one version; the schema migration the generator writes is the
runtime's own SQL, and a channel's name is one the runtime takes; and a channel adds only its own
thin code to a project (the line budgets, the runtime's schema migration included).
"""

import difflib
import re
import tomllib
from pathlib import Path

import fastapi_pg_sse
import pytest
from fastapi_pg_sse import Channel, RealtimeSettings
from fastapi_pg_sse.schema import upgrade_sql

import scaffold
from scaffold.errors import BadInput
from scaffold.names import CHANNEL_NAME_MAX_BYTES, channel_names
from scaffold.render import MIGRATION_HEADER
from tests.golden_cases import TRIGGERED
from tests.helpers import REPO, copy_example, printed_schema, run_scaffold, snapshot

RUNTIME = REPO / "fastapi-pg-sse"
FIRST_CHANNEL_BUDGET = 500  # the runtime's schema migration and scaffold's lock included
FURTHER_CHANNEL_BUDGET = 100
FURTHER_CHANNEL_WITH_TRIGGER_BUDGET = 150
TRIGGER_BUDGET = FURTHER_CHANNEL_WITH_TRIGGER_BUDGET - FURTHER_CHANNEL_BUDGET
"""What `--table` may add to a channel, its first or a further one."""


def test_the_tool_and_the_runtime_share_one_version() -> None:
    assert scaffold.__version__ == fastapi_pg_sse.__version__


def test_the_runtime_depends_on_nothing_of_the_generator() -> None:
    project = tomllib.loads((RUNTIME / "pyproject.toml").read_text())["project"]
    names = " ".join(project["dependencies"]).lower()
    assert not any(tool in names for tool in ("typer", "jinja2", "libcst", "tomlkit", "scaffold"))


def test_the_schema_migration_the_generator_writes_is_what_the_runtime_prints(
    tmp_path: Path,
) -> None:
    project = copy_example(tmp_path / "shop")
    assert (
        run_scaffold("create-sse-channel", "Stock", "in", "inventory", cwd=project).exit_code == 0
    )
    written = (project / "migrations" / "0002_fastapi_pg_sse_schema_1_5.sql").read_text()
    printed = printed_schema()
    assert (
        written == f"-- {MIGRATION_HEADER}\n{printed}" == f"-- {MIGRATION_HEADER}\n{upgrade_sql()}"
    )


@pytest.mark.parametrize("size", [CHANNEL_NAME_MAX_BYTES, CHANNEL_NAME_MAX_BYTES + 1])
def test_the_generator_takes_exactly_the_channel_names_the_runtime_takes(size: int) -> None:
    module = "m" * (size - len("_stock"))
    try:
        name = channel_names("Stock", module).channel_name
    except BadInput:
        name = None
    try:
        Channel(f"{module}_stock")
    except ValueError:
        assert name is None, f"scaffold takes {size} bytes, the runtime does not"
    else:
        assert name == f"{module}_stock", f"the runtime takes {size} bytes, scaffold does not"


def added_lines(project: Path, *arguments: str) -> int:
    """Every line `scaffold create-sse-channel <arguments>` adds to `project`: new files whole
    (the runtime's schema migration and scaffold's lock among them), and the lines added to
    edited ones."""
    before = snapshot(project)
    result = run_scaffold("create-sse-channel", *arguments, cwd=project)
    assert result.exit_code == 0, result.stderr
    added = 0
    for path, text in snapshot(project).items():
        old = before.get(path, b"").decode().splitlines()
        new = text.decode().splitlines()
        added += sum(
            1
            for line in difflib.unified_diff(old, new, lineterm="", n=0)
            if line.startswith("+") and not line.startswith("+++")
        )
    return added


def test_a_first_channel_stays_within_the_budget_and_its_trigger_within_a_triggers(
    tmp_path: Path,
) -> None:
    plain = added_lines(copy_example(tmp_path / "plain"), "Stock", "in", "inventory")
    assert plain <= FIRST_CHANNEL_BUDGET
    triggered = copy_example(tmp_path / "triggered")
    assert added_lines(triggered, "Stock", "in", "inventory", *TRIGGERED) - plain <= TRIGGER_BUDGET


def test_further_channels_stay_within_their_line_budgets(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "shop")
    added_lines(project, "Stock", "in", "inventory")
    assert added_lines(project, "Order", "in", "sales") <= FURTHER_CHANNEL_BUDGET
    assert added_lines(project, "Basket", "in", "inventory", *TRIGGERED) <= (
        FURTHER_CHANNEL_WITH_TRIGGER_BUDGET
    )


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
