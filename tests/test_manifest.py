"""Edits of the target's pyproject.toml keep the user's text and add only what is missing."""

import ast
import sys
from importlib.metadata import packages_distributions
from importlib.util import find_spec
from pathlib import Path

import pytest
import tomlkit
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from scaffold import __version__
from scaffold.dependencies.needs import generated_code_packages, generated_tests_packages
from scaffold.errors import BadInput
from scaffold.manifest import add_scaffold_table, dependency_changes, edit_pyproject
from scaffold.project import ChannelRecord, Migration, Project, SchemaRecord, Trigger
from tests.golden_cases import GOLDEN
from tests.helpers import EXAMPLE

PYPROJECT = """\
# The shop service.
[project]
name = "shop"   # keep this comment
dependencies = ["FastAPI>=0.140", "FastAPI_PG.SSE >= 0.10.1"]  # spelled the user's way

[tool.scaffold]
package = "shop"
app = "shop.main:app"
migrations = "db/migrations"
tests = "tests"

[tool.other]
value = 1
"""

SCHEMA = SchemaRecord("1.0", Migration("0002_fastapi_pg_sse_schema_1_0.sql"))
STOCK = ChannelRecord("Stock", "inventory")


def edit(
    text: str,
    *channels: ChannelRecord,
    schema: tuple[SchemaRecord, ...] = (SCHEMA,),
    add_packages: bool = True,
) -> str:
    """`text` edited for a project of those channels and versions of the runtime's schema."""
    project = Project(
        root=Path("shop"),
        package="shop",
        app_module="shop.main",
        app_variable="app",
        migrations="db/migrations",
        tests="tests",
        channels=channels,
        schema=schema,
    )
    return edit_pyproject(text, project, add_packages=add_packages)


def test_existing_requirements_are_recognised_whatever_their_spelling() -> None:
    edited = edit(PYPROJECT, STOCK)
    dependencies = edited.split("[project.optional-dependencies]")[0]
    assert '"FastAPI>=0.140", "FastAPI_PG.SSE >= 0.10.1"' in dependencies
    assert dependencies.lower().count("fastapi") == 2


def test_the_users_comments_and_other_tables_are_kept() -> None:
    edited = edit(PYPROJECT, STOCK)
    for line in ("# The shop service.", 'name = "shop"   # keep this comment', "[tool.other]"):
        assert line in edited.splitlines()
    assert "# spelled the user's way" in edited


def test_a_missing_test_extra_is_created() -> None:
    edited = edit(PYPROJECT, STOCK)
    assert (
        "[project.optional-dependencies]\n"
        "test = [\n"
        '    "fastapi-pg-sse[testing]>=0.10,<1",\n'
        '    "asyncpg>=0.29",\n'
        '    "asyncpg-stubs>=0.29",\n'
        '    "pytest>=8",\n'
        "]\n"
    ) in edited


def test_editing_twice_gives_the_same_text() -> None:
    once = edit(PYPROJECT, STOCK)
    assert edit(once, STOCK) == once


def test_channels_are_recorded_with_their_trigger_and_its_migration() -> None:
    trigger = Trigger("baskets", "user_id")
    migration = Migration("0003_warehouse_ops_stock_level_sse_trigger.sql")
    level = ChannelRecord("StockLevel", "warehouse-ops", trigger, migration)
    edited = edit(PYPROJECT, STOCK, level)
    assert edited.count("[[tool.scaffold.channels]]") == 2
    assert tomlkit.parse(edited)["tool"]["scaffold"]["channels"][1] == {
        "name": "StockLevel",
        "module": "warehouse-ops",
        "table": "baskets",
        "user_column": "user_id",
        "migration": "0003_warehouse_ops_stock_level_sse_trigger.sql",
    }


def test_a_channel_without_trigger_is_recorded_without_migration() -> None:
    edited = edit(PYPROJECT, STOCK)
    assert '[[tool.scaffold.channels]]\nname = "Stock"\nmodule = "inventory"\n' in edited
    assert "migration" not in tomlkit.parse(edited)["tool"]["scaffold"]["channels"][0]


def test_the_versions_of_the_runtimes_schema_are_recorded_with_their_migrations() -> None:
    edited = edit(PYPROJECT, STOCK)
    assert (
        '[[tool.scaffold.schema]]\nversion = "1.0"\n'
        'migration = "0002_fastapi_pg_sse_schema_1_0.sql"\n'
    ) in edited
    assert edit(edited, STOCK) == edited


def test_alembic_revisions_are_recorded_with_the_revision_each_follows() -> None:
    schema = SchemaRecord("1.0", Migration("aaaa_fastapi_pg_sse_schema_1_0.py", "base"))
    level = ChannelRecord(
        "StockLevel",
        "warehouse-ops",
        Trigger("baskets", "user_id"),
        Migration("bbbb_x.py", "aaaa"),
        upgrade=Migration("cccc_upgrade_x.py", "bbbb"),
    )
    recorded = tomlkit.parse(edit(PYPROJECT, level, schema=(schema,)))["tool"]["scaffold"]
    assert recorded["schema"] == [
        {
            "version": "1.0",
            "migration": "aaaa_fastapi_pg_sse_schema_1_0.py",
            "down_revision": "base",
        }
    ]
    assert recorded["channels"] == [
        {
            "name": "StockLevel",
            "module": "warehouse-ops",
            "table": "baskets",
            "user_column": "user_id",
            "migration": "bbbb_x.py",
            "down_revision": "aaaa",
            "upgrade": "cccc_upgrade_x.py",
            "upgrade_down_revision": "bbbb",
        }
    ]


def test_the_last_channel_going_removes_the_channels_records_but_not_the_schemas() -> None:
    edited = edit(edit(PYPROJECT, STOCK))
    assert "[[tool.scaffold.channels]]" not in edited
    assert "[[tool.scaffold.schema]]" in edited


def test_the_columns_a_trigger_sends_are_recorded_only_when_chosen() -> None:
    migration = Migration("0003_x.sql")
    every = ChannelRecord("StockLevel", "warehouse-ops", Trigger("baskets", "user_id"), migration)
    chosen = ChannelRecord(
        "StockLevel", "warehouse-ops", Trigger("baskets", "user_id", ("id", "stock")), migration
    )
    edited = edit(PYPROJECT, STOCK, chosen)
    assert 'user_column = "user_id"\ncolumns = ["id", "stock"]\n' in edited
    assert edit(edited, STOCK, chosen) == edited
    assert "columns" not in edit(PYPROJECT, STOCK, every)


def test_the_runtime_is_required_in_the_range_of_the_tools_own_version() -> None:
    edited = edit(PYPROJECT.replace(', "FastAPI_PG.SSE >= 0.10.1"', ""), STOCK)
    major, minor = __version__.split(".")[:2]
    assert f'"fastapi-pg-sse>={major}.{minor},<{int(major) + 1}"' in edited


def with_lists(dependencies: str, lists: str = "") -> str:
    """A pyproject.toml with these `[project] dependencies` and these lists after them."""
    return f"""\
[project]
name = "shop"
dependencies = [
    # The web framework.
{dependencies}
]
{lists}
[tool.scaffold]
package = "shop"
"""


def test_a_minimum_below_what_the_generated_code_needs_is_raised_in_place() -> None:
    text = with_lists("""\
    "fastapi[standard]>=0.110,<1.0; python_version>='3.11'",  # keep this comment
    'asyncpg >= 0.27',  # and this one
    "fastapi-pg-sse (>=0.1, <1)",""")
    edited = edit(text, STOCK)
    assert edited.startswith(
        with_lists("""\
    "fastapi[standard]>=0.137.2,<1.0; python_version>='3.11'",  # keep this comment
    'asyncpg >= 0.29',  # and this one
    "fastapi-pg-sse (>=0.10, <1)",""").split("[tool.scaffold]")[0]
    )
    assert edit(edited, STOCK) == edited


def test_without_adding_packages_only_those_listed_too_low_are_raised() -> None:
    """What `scaffold sync` does: only `create-sse-channel` adds packages."""
    edited = edit(with_lists('    "fastapi>=0.110",'), STOCK, add_packages=False)
    assert edited.startswith(with_lists('    "fastapi>=0.137.2",').split("[tool.scaffold]")[0])
    assert "fastapi-pg-sse" not in edited
    assert "[project.optional-dependencies]" not in edited
    assert "[[tool.scaffold.channels]]" in edited


@pytest.mark.parametrize("requirement", ["fastapi", "fastapi>=0.140", "fastapi>=0.137.2,<1"])
def test_a_requirement_that_allows_no_version_below_the_minimum_is_left_as_it_is(
    requirement: str,
) -> None:
    edited = edit(with_lists(f'    "{requirement}",'), STOCK)
    assert f'    "{requirement}",\n    "fastapi-pg-sse>=0.10,<1",\n]' in edited
    assert not [change for change in dependency_changes(edited) if change.replaces]


@pytest.mark.parametrize(
    ("requirement", "needed"),
    [
        ("fastapi<0.100", "fastapi>=0.137.2"),
        ("fastapi==0.110.0", "fastapi>=0.137.2"),
        ("fastapi~=0.110.0", "fastapi>=0.137.2"),
        ("fastapi-pg-sse>=1.0", "fastapi-pg-sse>=0.10,<1"),
    ],
)
def test_a_requirement_that_excludes_the_needed_version_is_refused(
    requirement: str, needed: str
) -> None:
    with pytest.raises(BadInput) as refused:
        edit(with_lists(f'    "{requirement}",'), STOCK)
    assert str(refused.value) == (
        f"pyproject.toml: [project] dependencies lists {requirement}, but the generated code"
        f" needs {needed}: allow that version, then run the command again"
    )


def test_test_dependencies_go_to_an_existing_dev_extra_rather_than_a_new_test_extra() -> None:
    text = with_lists(
        '    "fastapi>=0.140", "asyncpg>=0.29",',
        '[project.optional-dependencies]\ndev = ["pytest>=7", "ruff"]\n',
    )
    edited = edit(text, STOCK)
    extras = tomlkit.parse(edited)["project"]["optional-dependencies"]
    assert list(extras) == ["dev"]
    assert extras["dev"] == [
        "pytest>=8",
        "ruff",
        "fastapi-pg-sse[testing]>=0.10,<1",
        "asyncpg-stubs>=0.29",
    ]
    assert 'dev = ["pytest>=8", "ruff", ' in edited, "the one-line array became several"


def test_a_test_dependency_group_is_preferred_to_a_test_extra() -> None:
    groups = '[dependency-groups]\ndev = [\n    {include-group = "lint"},\n]\nlint = ["ruff"]\n'
    extras = '[project.optional-dependencies]\ntest = ["pytest>=8"]\n'
    edited = tomlkit.parse(edit(with_lists("", groups + extras), STOCK))
    assert edited["project"]["optional-dependencies"] == {"test": ["pytest>=8"]}
    assert edited["dependency-groups"] == {
        "dev": [
            {"include-group": "lint"},
            "fastapi-pg-sse[testing]>=0.10,<1",
            "asyncpg>=0.29",
            "asyncpg-stubs>=0.29",
        ],
        "lint": ["ruff"],
    }


@pytest.mark.parametrize(
    ("lists", "chosen"),
    [
        ("[project.optional-dependencies]\ndev = []\ntesting = []\n", ("extra", "testing")),
        ("[dependency-groups]\nTests = []\ndev = []\n", ("dependency group", "Tests")),
        ('[dependency-groups]\nlint = ["ruff"]\n', ("dependency group", "test")),
        ("[project.optional-dependencies]\npostgres = []\n", ("extra", "test")),
    ],
)
def test_test_dependencies_go_to_the_first_test_list_or_a_new_test_one(
    lists: str, chosen: tuple[str, str]
) -> None:
    kind, name = chosen
    changes = dependency_changes(with_lists('    "fastapi>=0.140",', lists))
    assert f"adds pytest>=8 to the {name} {kind}" in [str(change) for change in changes]


def test_the_changes_say_what_the_edit_does_to_the_dependencies() -> None:
    text = with_lists('    "fastapi>=0.110",', "[dependency-groups]\ndev = []\n")
    changes = dependency_changes(text)
    assert [str(change) for change in changes] == [
        "raises fastapi>=0.110 to fastapi>=0.137.2 in [project] dependencies"
        " (the generated code needs it)",
        "adds fastapi-pg-sse>=0.10,<1 to [project] dependencies",
        "adds fastapi-pg-sse[testing]>=0.10,<1 to the dev dependency group",
        "adds asyncpg>=0.29 to the dev dependency group",
        "adds asyncpg-stubs>=0.29 to the dev dependency group",
        "adds pytest>=8 to the dev dependency group",
    ]
    assert changes[0].as_json() == {
        "action": "raise",
        "requirement": "fastapi>=0.137.2",
        "replaces": "fastapi>=0.110",
        "in": "project.dependencies",
    }
    assert changes[2].as_json() == {
        "action": "add",
        "requirement": "fastapi-pg-sse[testing]>=0.10,<1",
        "replaces": None,
        "in": "dependency-groups.dev",
    }
    assert dependency_changes(edit(text, STOCK)) == ()


def test_the_scaffold_table_is_set_apart_from_a_table_that_follows_it() -> None:
    """Poetry writes `[build-system]` last: `[tool.scaffold]` goes before it."""
    text = '[tool.poetry]\nname = "blog"\n\n[build-system]\nrequires = ["poetry-core"]\n'
    added = add_scaffold_table(text, {"package": "blog"})
    assert added == (
        '[tool.poetry]\nname = "blog"\n\n'
        '[tool.scaffold]\npackage = "blog" # the Python package that holds the application\n\n'
        '[build-system]\nrequires = ["poetry-core"]\n'
    )


def test_the_requirements_name_every_distribution_the_generated_code_imports() -> None:
    """And the typing stubs of those that ship no types, for mypy --strict."""
    required = {
        canonicalize_name(Requirement(requirement).name)
        for requirement in (
            p.requirement for p in (*generated_code_packages(), *generated_tests_packages())
        )
    }
    modules = _generated_imports()
    assert {_distribution(module) for module in modules} - required == set()
    untyped = {_distribution(module) for module in modules if not _ships_types(module)}
    assert untyped == {"asyncpg"}, "a new import without types: require its stubs"
    assert {f"{distribution}-stubs" for distribution in untyped} <= required


def _generated_imports() -> set[str]:
    """The top-level modules the golden cases' generated files import, but the standard
    library's and the project's own (any module of the case)."""
    modules = set()
    own = set()
    for case in GOLDEN.iterdir():
        own |= {
            part
            for path in case.rglob("*.py")
            for part in path.relative_to(case).with_suffix("").parts
        }
        for path in case.rglob("*.py"):
            if (EXAMPLE / path.relative_to(case)).exists():  # the user's file
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - own


def _distribution(module: str) -> str:
    # An editable install (fastapi-pg-sse's, here) is not listed: its module is named after it.
    (distribution,) = packages_distributions().get(module, [module])
    return canonicalize_name(distribution)


def _ships_types(module: str) -> bool:
    """Whether the installed package has a `py.typed` marker (PEP 561)."""
    spec = find_spec(module)
    assert spec is not None and spec.submodule_search_locations, f"{module} is not a package"
    return any((Path(folder) / "py.typed").is_file() for folder in spec.submodule_search_locations)
