"""Edits of the target's pyproject.toml keep the user's text and add only what is missing."""

from scaffold import __version__
from scaffold.manifest import edit_pyproject
from scaffold.project import ChannelRecord, Trigger

PYPROJECT = """\
# The shop service.
[project]
name = "shop"   # keep this comment
dependencies = ["FastAPI>=0.140", "FastAPI_PG.SSE >= 0.2.1"]  # spelled the user's way

[tool.scaffold]
package = "shop"
app = "shop.main:app"
migrations = "db/migrations"
tests = "tests"

[tool.other]
value = 1
"""

STOCK = ChannelRecord("Stock", "inventory", "0002_inventory_stock_sse_channel.sql")


def test_existing_requirements_are_recognised_whatever_their_spelling() -> None:
    edited = edit_pyproject(PYPROJECT, [STOCK])
    dependencies = edited.split("[project.optional-dependencies]")[0]
    assert '"FastAPI>=0.140", "FastAPI_PG.SSE >= 0.2.1"' in dependencies
    assert dependencies.lower().count("fastapi") == 2


def test_the_users_comments_and_other_tables_are_kept() -> None:
    edited = edit_pyproject(PYPROJECT, [STOCK])
    for line in ("# The shop service.", 'name = "shop"   # keep this comment', "[tool.other]"):
        assert line in edited.splitlines()
    assert "# spelled the user's way" in edited


def test_a_missing_test_extra_is_created() -> None:
    edited = edit_pyproject(PYPROJECT, [STOCK])
    assert "[project.optional-dependencies]" in edited
    assert 'test = [\n    "fastapi-pg-sse[testing]>=0.2,<1",\n    "httpx>=0.27",\n' in edited


def test_editing_twice_gives_the_same_text() -> None:
    once = edit_pyproject(PYPROJECT, [STOCK])
    assert edit_pyproject(once, [STOCK]) == once


def test_channels_are_recorded_with_their_trigger() -> None:
    trigger = Trigger("baskets", "user_id")
    level = ChannelRecord("StockLevel", "warehouse-ops", "0003_x.sql", trigger)
    edited = edit_pyproject(PYPROJECT, [STOCK, level])
    assert edited.count("[[tool.scaffold.channels]]") == 2
    assert 'table = "baskets"\nuser_column = "user_id"\n' in edited


def test_the_columns_a_trigger_sends_are_recorded_only_when_chosen() -> None:
    every = ChannelRecord(
        "StockLevel", "warehouse-ops", "0003_x.sql", Trigger("baskets", "user_id")
    )
    chosen = ChannelRecord(
        "StockLevel", "warehouse-ops", "0003_x.sql", Trigger("baskets", "user_id", ("id", "stock"))
    )
    edited = edit_pyproject(PYPROJECT, [STOCK, chosen])
    assert 'user_column = "user_id"\ncolumns = ["id", "stock"]\n' in edited
    assert edit_pyproject(edited, [STOCK, chosen]) == edited
    assert "columns" not in edit_pyproject(PYPROJECT, [STOCK, every])


def test_the_runtime_is_required_in_the_range_of_the_tools_own_version() -> None:
    edited = edit_pyproject(PYPROJECT.replace(', "FastAPI_PG.SSE >= 0.2.1"', ""), [STOCK])
    major, minor = __version__.split(".")[:2]
    assert f'"fastapi-pg-sse>={major}.{minor},<{int(major) + 1}"' in edited
