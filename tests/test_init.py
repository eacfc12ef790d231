"""`scaffold init`: finds the FastAPI app and writes `[tool.scaffold]`, or says why it cannot."""

import shutil
from pathlib import Path

import pytest

from scaffold.project import CONFIG_EXAMPLE, load_project
from tests.helpers import run_scaffold, snapshot

SCAFFOLD_TABLE = "# Where scaffold"


@pytest.fixture
def unconfigured(shop: Path) -> Path:
    """The example project without its `[tool.scaffold]` table."""
    pyproject = shop / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().split(SCAFFOLD_TABLE)[0])
    return shop


def refused(project: Path, *args: str) -> str:
    """Run init, asserting exit 2 and that nothing changed; return the message."""
    before = snapshot(project)
    result = run_scaffold("init", *args, cwd=project)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert snapshot(project) == before
    return result.stderr


def test_init_writes_the_settings_of_the_example(unconfigured: Path) -> None:
    result = run_scaffold("init", cwd=unconfigured)
    assert result.exit_code == 0, result.stderr
    assert "  update  pyproject.toml\n" in result.stdout
    project = load_project(unconfigured)
    assert (project.package, project.app_module, project.app_variable) == (
        "shop",
        "shop.main",
        "app",
    )
    assert (project.migrations, project.tests) == ("migrations", "tests")
    written = (unconfigured / "pyproject.toml").read_text()
    assert written.endswith(f"\n\n{CONFIG_EXAMPLE}\n"), "not the table the README documents"


def test_an_initialised_project_takes_a_channel(unconfigured: Path) -> None:
    assert run_scaffold("init", cwd=unconfigured).exit_code == 0
    created = run_scaffold("create-sse-channel", "Stock", "in", "inventory", cwd=unconfigured)
    assert created.exit_code == 0, created.stderr
    assert run_scaffold("check", cwd=unconfigured).exit_code == 0


def test_init_keeps_every_line_of_the_pyproject(unconfigured: Path) -> None:
    original = (unconfigured / "pyproject.toml").read_text()
    assert run_scaffold("init", cwd=unconfigured).exit_code == 0
    assert (unconfigured / "pyproject.toml").read_text().startswith(original.rstrip("\n"))


def test_init_dry_run_proposes_and_writes_nothing(unconfigured: Path) -> None:
    before = snapshot(unconfigured)
    result = run_scaffold("init", "--dry-run", cwd=unconfigured)
    assert result.exit_code == 0, result.stderr
    assert 'app = "shop.main:app"' in result.stdout
    assert "Dry run: nothing was written." in result.stdout
    assert snapshot(unconfigured) == before


def test_init_on_a_configured_project_changes_nothing(shop: Path) -> None:
    before = snapshot(shop)
    result = run_scaffold("init", cwd=shop)
    assert result.exit_code == 0, result.stderr
    assert "already has a [tool.scaffold] table" in result.stdout
    assert snapshot(shop) == before


def test_init_finds_an_app_in_a_src_layout_with_its_own_folders(unconfigured: Path) -> None:
    (unconfigured / "src").mkdir()
    shutil.move(unconfigured / "shop", unconfigured / "src" / "shop")
    (unconfigured / "src/shop/main.py").rename(unconfigured / "src/shop/api.py")
    api = unconfigured / "src/shop/api.py"
    api.write_text(api.read_text().replace("app = FastAPI(", "application: FastAPI = FastAPI("))
    (unconfigured / "db").mkdir()
    shutil.move(unconfigured / "migrations", unconfigured / "db" / "migrations")
    assert run_scaffold("init", cwd=unconfigured).exit_code == 0
    project = load_project(unconfigured)
    assert (project.package, project.app_module, project.app_variable) == (
        "shop",
        "shop.api",
        "application",
    )
    assert project.migrations == "db/migrations"


def test_apps_in_tests_and_virtualenvs_are_ignored(unconfigured: Path) -> None:
    app = "from fastapi import FastAPI\n\napp = FastAPI()\n"
    (unconfigured / "tests/test_app.py").write_text(app)
    (unconfigured / ".venv/lib").mkdir(parents=True)
    (unconfigured / ".venv/lib/other.py").write_text(app)
    (unconfigured / "env/lib").mkdir(parents=True)
    (unconfigured / "env/pyvenv.cfg").write_text("home = /usr/bin\n")
    (unconfigured / "env/lib/other.py").write_text(app)
    assert run_scaffold("init", cwd=unconfigured).exit_code == 0
    assert load_project(unconfigured).app_module == "shop.main"


def test_no_app_is_refused(unconfigured: Path) -> None:
    main = unconfigured / "shop/main.py"
    main.write_text(main.read_text().replace("app = FastAPI(", "app = make("))
    message = refused(unconfigured)
    assert "found no FastAPI application" in message
    assert 'app = "shop.main:app"' in message


def test_several_apps_are_refused_by_name(unconfigured: Path) -> None:
    (unconfigured / "shop/admin.py").write_text("import fastapi\n\nadmin = fastapi.FastAPI()\n")
    message = refused(unconfigured)
    assert (
        "found several FastAPI applications: shop/admin.py (admin), shop/main.py (app)" in message
    )


def test_an_app_outside_a_package_is_refused(unconfigured: Path) -> None:
    (unconfigured / "shop/main.py").rename(unconfigured / "main.py")
    message = refused(unconfigured)
    assert "the FastAPI application in main.py is not inside a package" in message


def test_a_module_that_does_not_parse_is_refused_as_python_reports_it(unconfigured: Path) -> None:
    (unconfigured / "shop/broken.py").write_text(
        "from fastapi import FastAPI\n\nrouter = make_router(\n    prefix='/broken',\n\n\n"
        "def health() -> None: ...\n"
    )
    assert refused(unconfigured) == (
        "error: shop/broken.py, line 3: '(' was never closed; fix it and run the command again\n"
    )


FACTORY = """\
from fastapi import FastAPI


def create_app() -> FastAPI:
    application = FastAPI(title="Shop")
    return application
"""


@pytest.mark.parametrize(
    "main",
    [
        pytest.param(FACTORY, id="factory"),
        pytest.param(FACTORY.replace("def create_app", "async def create_app"), id="async"),
        pytest.param(f"{FACTORY}\n\napp = create_app()\n", id="with_module_level_app"),
    ],
)
def test_init_proposes_the_factory_of_the_app(unconfigured: Path, main: str) -> None:
    (unconfigured / "shop/main.py").write_text(main)
    result = run_scaffold("init", cwd=unconfigured)
    assert result.exit_code == 0, result.stderr
    project = load_project(unconfigured)
    assert (project.app_module, project.app_variable) == ("shop.main", "create_app")


def test_a_factory_that_needs_arguments_is_proposed_through_the_app_it_builds(
    unconfigured: Path,
) -> None:
    """The test servers, like `uvicorn --factory`, call a factory without arguments."""
    needs_settings = FACTORY.replace("create_app()", "create_app(title: str)").replace(
        'title="Shop"', "title=title"
    )
    (unconfigured / "shop/main.py").write_text(f'{needs_settings}\n\napp = create_app("Shop")\n')
    result = run_scaffold("init", cwd=unconfigured)
    assert result.exit_code == 0, result.stderr
    project = load_project(unconfigured)
    assert (project.app_module, project.app_variable) == ("shop.main", "app")


def test_a_factory_and_an_app_elsewhere_are_several_apps(unconfigured: Path) -> None:
    (unconfigured / "shop/factory.py").write_text(FACTORY)
    message = refused(unconfigured)
    assert "found several FastAPI applications: shop/factory.py (create_app), shop/main.py" in (
        message
    )


def test_a_missing_project_path_is_refused(unconfigured: Path) -> None:
    assert "does not exist" in refused(unconfigured, "--project", str(unconfigured / "nowhere"))


def test_init_records_a_route_prefix_that_every_stream_route_starts_with(
    unconfigured: Path,
) -> None:
    assert run_scaffold("init", "--prefix", "/api/v1", cwd=unconfigured).exit_code == 0
    assert load_project(unconfigured).prefix == "/api/v1"
    created = run_scaffold("create-sse-channel", "Stock", "in", "inventory", cwd=unconfigured)
    assert created.exit_code == 0, created.stderr
    assert "GET /api/v1/inventory/events/stock/stream" in created.stdout
    listed = run_scaffold("list", cwd=unconfigured)
    assert "GET /api/v1/inventory/events/stock/stream" in listed.stdout


@pytest.mark.parametrize("prefix", ["api/v1", "/api/v1/", "/api/{version}", "/api v1"])
def test_a_prefix_that_is_not_a_plain_path_is_refused(unconfigured: Path, prefix: str) -> None:
    assert "--prefix must be a path such as" in refused(unconfigured, "--prefix", prefix)


def test_a_prefix_for_a_configured_project_says_where_to_set_it(shop: Path) -> None:
    message = refused(shop, "--prefix", "/api/v1")
    assert 'set prefix = "/api/v1"' in message
    assert "scaffold sync" in message
