"""A project's dependencies, as it keeps them: every table style read, raised, added to in its own
syntax, or refused when it excludes what the generated code runs on.

`tests/dependency_styles/<style>/` holds a `pyproject.toml` of each style as a project has it
(`before.toml`), exactly as scaffold leaves it (`after.toml`), and what the plan says
(`changes.txt`).
"""

import shutil
import tomllib
from pathlib import Path

import pytest
import tomlkit

from scaffold.dependencies.changes import dependency_changes, too_low
from scaffold.dependencies.edit import require_packages
from scaffold.dependencies.needs import Need, needs
from scaffold.dependencies.poetry import with_minimum
from scaffold.errors import BadInput
from tests.helpers import REPO, copy_example, heavy_modules_loaded, run_scaffold, snapshot

STYLES = REPO / "tests" / "dependency_styles"
POETRY_BLOG = REPO / "tests" / "corpus" / "poetry_blog"
NOTICE = ("create-sse-channel", "Notice", "in", "accounts")
ORDER = ("create-sse-channel", "Order", "in", "sales", "--table", "posts", "--user-column")


def style(name: str) -> tuple[str, str, list[str]]:
    """A style's pyproject.toml before and after, and the lines of the plan."""
    folder = STYLES / name
    before, after = ((folder / f"{when}.toml").read_text() for when in ("before", "after"))
    return before, after, (folder / "changes.txt").read_text().splitlines()


STYLE_NAMES = sorted(path.name for path in STYLES.iterdir())


@pytest.mark.parametrize("name", STYLE_NAMES)
def test_each_table_style_gets_what_the_generated_code_needs_in_its_own_syntax(name: str) -> None:
    before, after, plan = style(name)
    document = tomlkit.parse(before)
    changes = require_packages(document, add_missing=True)
    assert tomlkit.dumps(document) == after
    assert [str(change) for change in changes] == plan


@pytest.mark.parametrize("name", STYLE_NAMES)
def test_a_pyproject_scaffold_edited_needs_nothing_more(name: str) -> None:
    _, after, _ = style(name)
    document = tomlkit.parse(after)
    changes = require_packages(document, add_missing=True)
    assert tomlkit.dumps(document) == after
    assert not [change for change in changes if "lists no" not in str(change)]


@pytest.mark.parametrize("name", STYLE_NAMES)
def test_check_finds_the_same_minimums_too_low_with_the_standard_library(name: str) -> None:
    before, _, plan = style(name)
    raised = [str(change) for change in too_low(tomllib.loads(before))]
    assert raised == [line for line in plan if line.startswith("raises ")]


@pytest.mark.parametrize("name", [name for name in STYLE_NAMES if name.startswith("poetry1")])
def test_a_poetry_1_project_never_gets_a_project_table(name: str) -> None:
    _, after, _ = style(name)
    assert "project" not in tomllib.loads(after)


FASTAPI = needs()["fastapi"]
RUNTIME = needs()["fastapi-pg-sse"]
PYTHON = needs()["python"]


@pytest.mark.parametrize(
    ("constraint", "raised"),
    [
        (">=0.100,<1", ">=0.137.2,<1"),
        (">= 0.100, < 1", ">= 0.137.2, < 1"),
        (">=0.100 <1", ">=0.137.2 <1"),
        ("<1", ">=0.137.2,<1"),
        ("^0.137", "^0.137.2"),  # caret on 0.x pins the minor: the same upper bound
        ("~0.137", "~0.137.2"),
        ("^0", ">=0.137.2,<1"),  # ^0.137.2 would stop at 0.138, ^0 at 1
        ("~=0.100", ">=0.137.2,<1"),
        ("0.*", ">=0.137.2,<1"),
        ("^0.95 || ^0.137", "^0.137.2"),  # an alternative that allows only older ones goes
        ("^0.95 || >=0.140", ">=0.140"),
        ("*", "*"),
        (">=0.140", ">=0.140"),
        ("^0.137.2", "^0.137.2"),
    ],
)
def test_a_poetry_constraint_has_its_minimum_raised_in_poetrys_syntax(
    constraint: str, raised: str
) -> None:
    assert with_minimum(constraint, FASTAPI.allowed, FASTAPI.minimum, "fastapi") == raised


@pytest.mark.parametrize(
    ("constraint", "raised"),
    [
        ("^3.10", "^3.11"),
        (">=3.8,<3.14", ">=3.11,<3.14"),
        ("3.*", ">=3.11,<4"),
        ("~3.10 || ~3.11", "~3.11"),
        ("~3.11", "~3.11"),
        ("^3.12", "^3.12"),
    ],
)
def test_poetrys_python_is_raised_to_the_runtimes(constraint: str, raised: str) -> None:
    assert with_minimum(constraint, PYTHON.allowed, PYTHON.minimum, "python") == raised


@pytest.mark.parametrize(
    ("need", "constraint"),
    [
        (FASTAPI, "^0.100"),  # >=0.100,<0.101
        (FASTAPI, "^0.79.1"),
        (FASTAPI, "~0.110"),
        (FASTAPI, "0.110.0"),
        (FASTAPI, "==0.110.*"),
        (FASTAPI, "<0.100"),
        (RUNTIME, "^1.0"),
        (PYTHON, "~3.10"),
        (PYTHON, "3.10.*"),
        (PYTHON, "<3.11"),
    ],
)
def test_a_poetry_constraint_that_allows_no_needed_version_is_refused(
    need: Need, constraint: str
) -> None:
    assert with_minimum(constraint, need.allowed, need.minimum, need.name) is None


def test_a_constraint_poetry_could_not_read_is_bad_input() -> None:
    with pytest.raises(BadInput) as refused:
        dependency_changes(
            {"tool": {"poetry": {"dependencies": {"fastapi": "^^1"}}}}, add_missing=False
        )
    assert str(refused.value) == (
        "pyproject.toml: 'fastapi ^^1' in [tool.poetry.dependencies] is not a Poetry version"
        " constraint, such as '^1.2' or '>=1.2,<2'"
    )


def project_with(requires_python: str, *dependencies: str) -> dict[str, object]:
    return {
        "project": {
            "name": "shop",
            "requires-python": requires_python,
            "dependencies": list(dependencies),
        }
    }


@pytest.mark.parametrize(
    ("requires_python", "raised"),
    [(">=3.10", ">=3.11"), (">=3.10, <4", ">=3.11, <4"), (">=3.12", None), ("~=3.11", None)],
)
def test_requires_python_below_the_runtimes_is_raised(
    requires_python: str, raised: str | None
) -> None:
    changes = too_low(project_with(requires_python))
    assert [change.text for change in changes] == ([raised] if raised else [])


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (
            project_with("<3.11"),
            "[project] lists requires-python <3.11, but fastapi-pg-sse needs Python >=3.11",
        ),
        (
            project_with("==3.10.*"),
            "[project] lists requires-python ==3.10.*, but fastapi-pg-sse needs Python >=3.11",
        ),
        (
            project_with(">=3.11", "pydantic<2"),
            "[project] dependencies lists pydantic<2, but fastapi-pg-sse needs pydantic>=2.7",
        ),
        (
            project_with(">=3.11", "pydantic-settings~=1.0"),
            "[project] dependencies lists pydantic-settings~=1.0, but fastapi-pg-sse needs"
            " pydantic-settings>=2.7",
        ),
        (
            {"tool": {"poetry": {"dependencies": {"python": "^3.10", "fastapi": "^0.79.1"}}}},
            "[tool.poetry.dependencies] lists fastapi ^0.79.1, but the generated code needs"
            " fastapi>=0.137.2",
        ),
        (
            {"dependency-groups": {"docs": ["pydantic==1.10.13"]}},
            "the docs dependency group lists pydantic==1.10.13, but fastapi-pg-sse needs"
            " pydantic>=2.7",
        ),
    ],
)
def test_a_constraint_that_excludes_what_the_runtime_needs_is_refused_with_the_reason(
    document: dict[str, object], reason: str
) -> None:
    with pytest.raises(BadInput) as refused:
        dependency_changes(document, add_missing=True)
    assert str(refused.value) == (
        f"pyproject.toml: {reason}: allow that version, then run the command again"
    )


def test_a_package_the_runtime_requires_is_only_checked_not_raised() -> None:
    """Resolvers pick pydantic 2 from `pydantic>=1.10`: it is no minimum too low."""
    assert too_low(project_with(">=3.11", "pydantic>=1.10", "pyjwt>=2.0")) == []


def test_every_reason_to_refuse_is_given_at_once() -> None:
    with pytest.raises(BadInput) as refused:
        dependency_changes(project_with(">=3.11", "fastapi<0.80", "pydantic<2"), add_missing=True)
    assert str(refused.value).splitlines() == [
        "pyproject.toml: [project] dependencies lists fastapi<0.80, but the generated code needs"
        " fastapi>=0.137.2: allow that version, then run the command again",
        "pyproject.toml: [project] dependencies lists pydantic<2, but fastapi-pg-sse needs"
        " pydantic>=2.7: allow that version, then run the command again",
    ]


@pytest.fixture
def poetry_blog(tmp_path: Path) -> Path:
    """A copy of the corpus' Poetry 1 project, with its `[tool.scaffold]` table."""
    project = Path(shutil.copytree(POETRY_BLOG, tmp_path / "blog"))
    assert run_scaffold("init", cwd=project).exit_code == 0
    return project


def scaffold(project: Path, *arguments: str) -> str:
    result = run_scaffold(*arguments, cwd=project)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


def set_dependency(project: Path, line: str, replacement: str) -> None:
    pyproject = project / "pyproject.toml"
    assert line in pyproject.read_text()
    pyproject.write_text(pyproject.read_text().replace(line, replacement))


def test_a_poetry_project_keeps_its_tables_and_gets_its_requirements_in_them(
    poetry_blog: Path,
) -> None:
    initialised = (poetry_blog / "pyproject.toml").read_text()
    planned = scaffold(poetry_blog, *NOTICE)
    assert (
        "pyproject.toml: raises python ^3.10 to python ^3.11 in [tool.poetry.dependencies]"
        " (fastapi-pg-sse needs it)\n"
        "pyproject.toml: raises fastapi >=0.100,<1 to fastapi >=0.137.2,<1 in"
        " [tool.poetry.dependencies] (the generated code needs it)\n"
        "pyproject.toml: adds fastapi-pg-sse >=0.10,<1 to [tool.poetry.dependencies]\n"
        "pyproject.toml: adds fastapi-pg-sse[testing] >=0.10,<1 to"
        " [tool.poetry.group.dev.dependencies]\n"
        "pyproject.toml: adds asyncpg-stubs >=0.29 to [tool.poetry.group.dev.dependencies]\n"
    ) in planned
    scaffold(poetry_blog, *ORDER, "author_id")
    scaffold(poetry_blog, "remove-sse-channel", "Notice", "in", "accounts")
    scaffold(poetry_blog, "remove-sse-channel", "Order", "in", "sales")

    left = (poetry_blog / "pyproject.toml").read_text()
    assert "project" not in tomllib.loads(left)
    assert left == (
        initialised.replace('python = "^3.10"', 'python = "^3.11"')
        .replace('fastapi = ">=0.100,<1"', 'fastapi = ">=0.137.2,<1"')
        .replace(
            'extras = ["standard"]}\n',
            'extras = ["standard"]}\nfastapi-pg-sse = ">=0.10,<1"\n',
        )
        .replace(
            'pytest = "^8.0"\n',
            'pytest = "^8.0"\nfastapi-pg-sse = {version = ">=0.10,<1", extras = ["testing"]}\n'
            'asyncpg-stubs = ">=0.29"\n',
        )
        .replace(
            "\n[build-system]",
            '\n[[tool.scaffold.schema]]\nversion = "1.5"\n'
            'migration = "0003_fastapi_pg_sse_schema_1_5.sql"\n\n[build-system]',
        )
    ), "the user's pyproject.toml but for its requirements and the runtime schema's record"


def test_a_poetry_pin_that_excludes_fastapi_is_refused_and_nothing_written(
    poetry_blog: Path,
) -> None:
    set_dependency(poetry_blog, 'fastapi = ">=0.100,<1"', 'fastapi = "^0.79.1"')
    before = snapshot(poetry_blog)
    result = run_scaffold(*NOTICE, cwd=poetry_blog)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: pyproject.toml: [tool.poetry.dependencies] lists fastapi ^0.79.1, but the"
        " generated code needs fastapi>=0.137.2: allow that version, then run the command"
        " again\n"
    )
    assert snapshot(poetry_blog) == before


@pytest.mark.parametrize(
    ("listed", "replacement", "reason"),
    [
        (
            'requires-python = ">=3.11"',
            'requires-python = "==3.10.*"',
            "[project] lists requires-python ==3.10.*, but fastapi-pg-sse needs Python >=3.11",
        ),
        (
            '"fastapi>=0.135"',
            '"fastapi<0.80"',
            "[project] dependencies lists fastapi<0.80, but the generated code needs"
            " fastapi>=0.137.2",
        ),
        (
            '"pytest>=8",',
            '"pytest>=8",\n    "pydantic<2",',
            "the test extra lists pydantic<2, but fastapi-pg-sse needs pydantic>=2.7",
        ),
    ],
)
def test_create_refuses_a_project_that_excludes_what_the_runtime_needs(
    tmp_path: Path, listed: str, replacement: str, reason: str
) -> None:
    shop = copy_example(tmp_path / "shop")
    set_dependency(shop, listed, replacement)
    before = snapshot(shop)
    result = run_scaffold(*NOTICE, cwd=shop)
    assert result.exit_code == 2
    assert f"error: pyproject.toml: {reason}: allow that version, then run" in result.stderr
    assert snapshot(shop) == before


def test_check_reports_poetry_requirements_too_low_and_sync_raises_them(
    poetry_blog: Path,
) -> None:
    scaffold(poetry_blog, *NOTICE)
    in_sync = snapshot(poetry_blog)
    set_dependency(poetry_blog, 'python = "^3.11"', 'python = "^3.10"')
    set_dependency(poetry_blog, 'fastapi = ">=0.137.2,<1"', 'fastapi = ">=0.110,<1"')

    checked = run_scaffold("check", cwd=poetry_blog)
    assert checked.exit_code == 1
    assert checked.stdout.startswith(
        "       too low  pyproject.toml (python ^3.10 in [tool.poetry.dependencies]:"
        " fastapi-pg-sse needs python ^3.11; fastapi >=0.110,<1 in"
        " [tool.poetry.dependencies]: the generated code needs fastapi >=0.137.2,<1)\n"
    )
    scaffold(poetry_blog, "sync")
    assert snapshot(poetry_blog) == in_sync
    assert scaffold(poetry_blog, "check").startswith("In sync")


def test_check_refuses_a_poetry_pin_that_excludes_the_runtimes_python(poetry_blog: Path) -> None:
    scaffold(poetry_blog, *NOTICE)
    set_dependency(poetry_blog, 'python = "^3.11"', 'python = "~3.10"')
    checked = run_scaffold("check", cwd=poetry_blog)
    assert checked.exit_code == 2
    assert checked.stderr == (
        "error: pyproject.toml: [tool.poetry.dependencies] lists python ~3.10, but"
        " fastapi-pg-sse needs Python >=3.11: allow that version, then run the command again\n"
    )


def test_check_of_a_poetry_project_in_sync_loads_no_tomlkit(poetry_blog: Path) -> None:
    scaffold(poetry_blog, *NOTICE)
    assert heavy_modules_loaded(poetry_blog, "check") == []


def test_the_runtimes_needs_are_read_from_its_own_pyproject() -> None:
    """The one place that says what fastapi-pg-sse runs on."""
    runtime = tomllib.loads((REPO / "fastapi-pg-sse" / "pyproject.toml").read_text())["project"]
    assert PYTHON.specifiers == runtime["requires-python"]
    assert {str(FASTAPI), str(needs()["pydantic"])} <= set(runtime["dependencies"])
