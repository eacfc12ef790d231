"""The app module as projects write it, through the real CLI: an app factory (end to end, on real
PostgreSQL), routers imported under names of the user's own, and syntax errors."""

import ast
from pathlib import Path

import pytest

from tests.helpers import (
    channel_test_count,
    failed_generated_tests,
    heavy_modules_loaded,
    run_generated_tests,
    run_scaffold,
    snapshot,
)

TRIGGERED = ("--table", "baskets", "--user-column", "user_id")

FACTORY_MAIN = '''\
"""The shop's FastAPI application: `uvicorn --factory shop.main:create_app`."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # One connection pool per process, shared by every request.
    app.state.pool = await asyncpg.create_pool(os.environ["DATABASE_URL"])
    yield
    await app.state.pool.close()


def create_app() -> FastAPI:
    app = FastAPI(title="Shop", lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
'''

FACTORY_HEALTH_TEST = """\
from fastapi.testclient import TestClient

from shop.main import create_app


def test_health_answers_ok() -> None:
    response = TestClient(create_app()).get("/health")
    assert response.json() == {"status": "ok"}
"""

WIRED_FACTORY_MAIN = FACTORY_MAIN.replace(
    "from fastapi import FastAPI\n",
    "from fastapi import FastAPI\n\nfrom shop.sse_channels import realtime_router\n",
).replace(
    '    app = FastAPI(title="Shop", lifespan=lifespan)\n',
    '    app = FastAPI(title="Shop", lifespan=lifespan)\n    app.include_router(realtime_router)\n',
)
"""The factory with channels: the registry's one router holds every channel's route."""


def scaffold(project: Path, *args: str) -> str:
    """Run a command that must succeed; return its output."""
    result = run_scaffold(*args, cwd=project)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def factory_shop(shop: Path) -> Path:
    """The example project as an app factory without a module-level app, and without its
    `[tool.scaffold]` table."""
    (shop / "shop/main.py").write_text(FACTORY_MAIN)
    (shop / "tests/test_health.py").write_text(FACTORY_HEALTH_TEST)
    pyproject = shop / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().split("# Where scaffold")[0])
    return shop


def test_an_app_factory_takes_channels_end_to_end_on_postgresql(
    factory_shop: Path, tmp_path: Path, postgres_url: str
) -> None:
    project = factory_shop
    assert 'app = "shop.main:create_app"' in scaffold(project, "init")
    scaffold(project, "create-sse-channel", "Stock", "in", "inventory")
    scaffold(project, "create-sse-channel", "Basket", "in", "baskets", *TRIGGERED)
    assert (project / "shop/main.py").read_text() == WIRED_FACTORY_MAIN
    scaffold(project, "check")
    passed = run_generated_tests(project, postgres_url, tmp_path / "basetemp")
    assert passed >= channel_test_count(project) + 1 > 1
    scaffold(project, "remove-sse-channel", "Stock", "in", "inventory")
    scaffold(project, "remove-sse-channel", "Basket", "in", "baskets")
    assert (project / "shop/main.py").read_text() == FACTORY_MAIN
    scaffold(project, "check")


def test_check_sees_a_router_missing_from_the_factory(factory_shop: Path) -> None:
    scaffold(factory_shop, "init")
    scaffold(factory_shop, "create-sse-channel", "Stock", "in", "inventory")
    main = factory_shop / "shop/main.py"
    main.write_text(main.read_text().replace("    app.include_router(realtime_router)\n", ""))
    result = run_scaffold("check", "--json", cwd=factory_shop)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert '"routers": [\n        "realtime_router"\n      ]' in result.stdout
    scaffold(factory_shop, "sync")
    scaffold(factory_shop, "check")


def test_check_of_a_factory_in_sync_loads_neither_libcst_nor_tomlkit(factory_shop: Path) -> None:
    scaffold(factory_shop, "init")
    scaffold(factory_shop, "create-sse-channel", "Stock", "in", "inventory")
    assert heavy_modules_loaded(factory_shop, "check") == []


REALTIME_IMPORT = "from shop.sse_channels import realtime_router\n"
REALTIME_INCLUDE = "app.include_router(realtime_router)"


@pytest.mark.parametrize(
    ("import_line", "reference"),
    [
        pytest.param(
            "from shop.sse_channels import realtime_router as channels_router\n",
            "channels_router",
            id="router_alias",
        ),
        pytest.param(
            "from shop import sse_channels\n", "sse_channels.realtime_router", id="module"
        ),
        pytest.param(
            "import shop.sse_channels as channels\n", "channels.realtime_router", id="import_as"
        ),
        pytest.param("from . import sse_channels\n", "sse_channels.realtime_router", id="relative"),
    ],
)
def test_the_realtime_router_renamed_by_the_user_stays_wired_while_channels_come_and_go(
    shop: Path, import_line: str, reference: str
) -> None:
    main = shop / "shop/main.py"
    pristine = main.read_text()
    scaffold(shop, "create-sse-channel", "Stock", "in", "inventory")
    wired = main.read_text()
    assert wired.count(REALTIME_IMPORT) == wired.count(REALTIME_INCLUDE) == 1
    renamed = wired.replace(REALTIME_IMPORT, import_line).replace(
        REALTIME_INCLUDE, f"app.include_router({reference})"
    )
    main.write_text(renamed)
    scaffold(shop, "check")
    before = snapshot(shop)
    scaffold(shop, "sync")
    assert snapshot(shop) == before
    scaffold(shop, "create-sse-channel", "Price", "in", "catalog", *TRIGGERED)
    assert main.read_text() == renamed, "a new channel joins the registry, not the app module"
    scaffold(shop, "check")
    scaffold(shop, "remove-sse-channel", "Stock", "in", "inventory")
    assert main.read_text() == renamed
    scaffold(shop, "check")
    scaffold(shop, "remove-sse-channel", "Price", "in", "catalog")
    # The same code (a blank line above the user's relative import may stay).
    assert ast.dump(ast.parse(main.read_text())) == ast.dump(ast.parse(pristine))
    scaffold(shop, "check")


@pytest.mark.parametrize(
    ("line", "broken", "message"),
    [
        pytest.param(
            'app = FastAPI(title="Shop", lifespan=lifespan)',
            'app = FastAPI(title="Shop",',
            "'(' was never closed",
            id="unclosed_paren",
        ),
        pytest.param(
            "    await app.state.pool.close()",
            "        await app.state.pool.close()",
            "unexpected indent",
            id="bad_indentation",
        ),
    ],
)
@pytest.mark.parametrize("command", ["create-sse-channel", "check"])
def test_a_syntax_error_in_the_app_module_is_reported_as_python_reports_it(
    shop: Path, line: str, broken: str, message: str, command: str
) -> None:
    if command == "check":
        scaffold(shop, "create-sse-channel", "Stock", "in", "inventory")
    main = shop / "shop/main.py"
    main.write_text(main.read_text().replace(f"{line}\n", f"{broken}\n"))
    number = main.read_text().splitlines().index(broken) + 1
    before = snapshot(shop)
    arguments = ("Price", "in", "catalog") if command == "create-sse-channel" else ()
    result = run_scaffold(command, *arguments, cwd=shop)
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: shop/main.py, line {number}: {message}; fix it and run the command again\n",
    )
    assert snapshot(shop) == before


HEADERS_DROPPED = """

@app.exception_handler(HTTPException)
async def plain_errors(request: Request, exc: HTTPException) -> JSONResponse:
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
"""


def test_an_exception_handler_that_drops_headers_fails_a_test_that_says_so(
    shop: Path, tmp_path: Path, postgres_url: str
) -> None:
    """The 401's `WWW-Authenticate` is what clients read the challenge from: a global handler
    of the app that returns HTTPException without its headers loses it, and the generated test
    that fails says why, in its assertion's message."""
    main = shop / "shop/main.py"
    imports = (
        "from fastapi import FastAPI, HTTPException, Request\n"
        "from fastapi.responses import JSONResponse\n"
    )
    main.write_text(
        main.read_text().replace("from fastapi import FastAPI\n", imports) + HEADERS_DROPPED
    )
    scaffold(shop, "create-sse-channel", "Stock", "in", "inventory")
    report = failed_generated_tests(shop, postgres_url, tmp_path / "basetemp")
    assert "1 failed" in report
    assert "AssertionError: dropped by an exception handler" in report
    assert "test_a_stream_needs_a_valid_token" in report
